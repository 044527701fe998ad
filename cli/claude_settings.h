/*
 * claude_settings.h - keywarden's wiring in Claude Code's settings.json:
 * which permission rules mirror the policy, and how they, the apiKeyHelper
 * and the PreToolUse hook are merged into settings someone already has
 * without losing anything of theirs.  Pure: no file is read or written here
 * (cmd_setup.c does that).
 */
#ifndef KW_CLI_CLAUDE_SETTINGS_H
#define KW_CLI_CLAUDE_SETTINGS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/macros.h"

/* What keywarden wants in the settings (all borrowed). */
struct kw_claude_wiring {
	const char *helper;	/* apiKeyHelper: "/usr/bin/keywarden key get anthropic" */
	const char *hook;	/* the PreToolUse command: "/usr/bin/keywarden hook claude" */
	json_t *deny;		/* permissions.deny rules to be there: an array of strings */
	/*
	 * setup claude --proxy: env.ANTHROPIC_BASE_URL to set (the API proxy's
	 * "http://127.0.0.1:8788"), and env.ANTHROPIC_API_KEY and
	 * env.ANTHROPIC_AUTH_TOKEN to remove (a key there would win over the
	 * helper's token, and the proxy refuses real keys).  NULL: no proxy.
	 */
	const char *base_url;
	/*
	 * Without --proxy: the proxy's URL, so that an env.ANTHROPIC_BASE_URL
	 * still naming it (an earlier --proxy) is removed -- the helper's real
	 * key would go to the proxy, which refuses it.  NULL: leave env alone.
	 */
	const char *drop_base_url;
};

/* The PreToolUse hook's timeout in seconds: the broker answers within it or the hook fails closed. */
#define KW_CLAUDE_HOOK_TIMEOUT	30

/*
 * The permission rules ("Read(//etc/\**)", "Edit(//etc/\**)", ...; "/\**"
 * is a slash and two stars) that
 * mirror security.deniedPaths and security.excludePatterns (arrays of
 * strings; NULL is empty), in order, without duplicates.  An entry that
 * cannot be written as a rule is added to *ret_skipped instead.  Both
 * results are new arrays.  0 or KW_ERR_NOMEM.
 */
int kw_claude_deny_rules(json_t *denied_paths, json_t *exclude_patterns, json_t **ret_rules,
    json_t **ret_skipped) KW_WUR KW_NONNULL(3, 4);

/*
 * Whether settings can be merged into: an object whose apiKeyHelper is a
 * string, hooks an object, hooks.PreToolUse an array of objects each with
 * an array of hooks, permissions an object, permissions.deny an array and
 * env an object (each where present).  0, or KW_ERR_INVALID with what is
 * wrong in err.
 */
int kw_claude_settings_check(json_t *settings, char *err, size_t err_len) KW_WUR KW_NONNULL(1, 2);

/*
 * Merge w into settings (checked above): set apiKeyHelper; add the hook
 * unless a hook of keywarden's is there, whose command is updated when its
 * path differs; add the deny rules that are missing; the env entries of
 * base_url and drop_base_url.  Nothing else changes, and nothing is removed
 * but those env entries.  Each change is appended to changes as {"setting",
 * "action": "set"|"replaced"|"added"|"removed", "value"[, "was"]}; "was" is
 * left out when the old value is not a keywarden command (a helper such as
 * `echo sk-ant-...` would show a key), and a removed entry's value is never
 * shown.  0 or KW_ERR_NOMEM.
 */
int kw_claude_settings_merge(json_t *settings, const struct kw_claude_wiring *w, json_t *changes)
	KW_WUR KW_NONNULL(1, 2, 3);

/*
 * A change as one line of text, "apiKeyHelper: set to X" (or with dry_run
 * "apiKeyHelper: would be set to X"), into buf.  Returns buf.
 */
const char *kw_claude_change_text(json_t *change, bool dry_run, char *buf, size_t len)
	KW_NONNULL(1, 3);

/* s quoted for the shell Claude Code runs commands with, when it needs to be; malloc'd. */
char *kw_claude_shell_word(const char *s) KW_NONNULL(1);

/*
 * What `setup claude --sandbox` mirrors into Claude Code's own "sandbox"
 * settings (claude_sandbox.c), from keywarden's configuration.  Arrays
 * borrowed; NULL is empty.
 */
struct kw_claude_sandbox {
	bool enabled;		/* security.sandbox.enabled */
	bool allow_network;	/* security.sandbox.allowNetwork && network.allowOutbound */
	bool allow_exec;	/* security.sandbox.allowExec */
	bool read_only;		/* security.readOnly */
	bool whitelist_mode;	/* security.execution.whitelistMode */
	bool managed;		/* the file is Claude Code's managed settings (--system) */
	json_t *allowed_paths;	/* security.allowedPaths */
	json_t *hosts;		/* security.network.allowedHosts */
	json_t *domains;	/* security.network.allowedDomains */
};

/*
 * Whether settings' "sandbox" can be merged into: an object whose
 * "network" is an object and "network.allowedDomains" an array, its
 * booleans booleans (each where present).  0, or KW_ERR_INVALID with what
 * is wrong in err.
 */
int kw_claude_sandbox_check(json_t *settings, char *err, size_t err_len) KW_WUR KW_NONNULL(1, 2);

/*
 * Merge sb into settings (checked by both checks): Claude Code's sandbox
 * settings set to agree with keywarden's, never widening what the user has
 * (nothing removed; a boolean is only moved the strict way).  Changes are
 * appended to changes as in kw_claude_settings_merge; each keywarden key
 * with no Claude Code equivalent, or a user entry left that keywarden's
 * sandbox overrides, is appended to notes as {"setting", "note"}.
 * 0 or KW_ERR_NOMEM.
 */
int kw_claude_sandbox_merge(json_t *settings, const struct kw_claude_sandbox *sb,
    json_t *changes, json_t *notes) KW_WUR KW_NONNULL(1, 2, 3, 4);

#endif
