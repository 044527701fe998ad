/*
 * policy.h - what an agent may read, write, run and reach.
 *
 * The security.* settings of the configuration (allowedPaths, deniedPaths,
 * readOnly, excludePatterns, detectSensitiveFiles, sensitivePatterns,
 * execution.*, network.*, hooks.unknownTools) compile once into an opaque
 * policy.  A tool call -- a path, a command line, a URL, or a whole Claude
 * Code tool call -- is decided against it: every effect the call would have
 * (each command a line would run, each file it would read or write, each
 * host it would reach) is decided on its own, and the most restrictive
 * answer wins.  What cannot be analysed is never "allow".
 *
 * Pure like rbac/: no sockets, no SQLite, no logging.  The one outside
 * world it may look at is the file system, and only when the context says
 * so (ctx->fs): symbolic links, glob expansion and a peek into small files
 * for sensitive content.
 */
#ifndef KW_POLICY_H
#define KW_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/config.h"
#include "common/macros.h"

struct kw_policy;

/* Ordered: a larger verdict is more restrictive, and the largest wins. */
enum kw_verdict {
	KW_VERDICT_ALLOW,
	KW_VERDICT_ASK,
	KW_VERDICT_DENY,
};

/* What one effect of a tool call is. */
enum kw_effect_kind {
	KW_EFFECT_EXEC,		/* runs a command: name is its basename */
	KW_EFFECT_READ,		/* reads a file: name is the resolved path */
	KW_EFFECT_WRITE,	/* writes a file */
	KW_EFFECT_DELETE,	/* deletes a file */
	KW_EFFECT_NET,		/* reaches a host: name is the host, "" when not known */
	KW_EFFECT_OPAQUE,	/* something that cannot be analysed (name says what) */
};

#define KW_EFFECT_NAME_MAX	4096

struct kw_effect {
	enum kw_effect_kind kind;
	char *name;		/* owned by the decision */
	enum kw_verdict verdict;
	char rule[160];		/* the setting that decided, "security.deniedPaths: ~/.ssh",
				   or "" when nothing restricted it */
	char reason[256];	/* one line for a person */
};

/* The answer for one tool call. */
struct kw_decision {
	enum kw_verdict verdict;	/* the most restrictive effect's, ALLOW for none */
	const char *action;		/* the audit action: file_read, file_write,
					   file_delete, command_execute or api_call */
	char rule[160];			/* of the first effect with that verdict */
	char reason[256];
	struct kw_effect *effects;	/* in the order found */
	size_t n_effects;
	char **leaves;			/* the command lines decided, one per leaf
					   command after wrappers (explain shows them) */
	size_t n_leaves;
	size_t cap_effects;		/* policy/'s own: room in effects */
	struct kw_path_memo *memo;	/* policy/'s own: path entries made absolute */
};

/* Whose tool call it is and where it runs. */
struct kw_policy_ctx {
	const char *cwd;	/* absolute: relative paths start here */
	const char *home;	/* "~" and $HOME */
	bool fs;		/* may look at the file system (links, globs, contents) */
	uid_t uid;		/* contents are read only from files this uid may read */
	gid_t gid;
};

/*
 * Compile the policy settings of cfg (borrowed; nothing of it is kept).
 * 0, KW_ERR_NOMEM, or KW_ERR_CONFIG with a message in err naming the key
 * and entry at fault.  Free with kw_policy_free (accepts NULL).
 */
int kw_policy_compile(const struct kw_config *cfg, struct kw_policy **ret_policy,
    char *err, size_t err_len) KW_WUR KW_NONNULL(1, 2, 3);
void kw_policy_free(struct kw_policy *policy);

/*
 * Decide a Claude Code tool call: tool is its name ("Bash", "Read", "Write",
 * "Edit", "MultiEdit", "NotebookEdit", "Glob", "Grep", "LS", "WebFetch",
 * "WebSearch", "mcp__server__tool", ...), input its tool_input object
 * (borrowed).  A tool the policy does not know is decided by
 * security.hooks.unknownTools.  Input of the wrong shape is a DENY that says
 * so.  0 with *ret (free with kw_decision_free), or KW_ERR_NOMEM.
 */
int kw_policy_tool(const struct kw_policy *policy, const struct kw_policy_ctx *ctx,
    const char *tool, json_t *input, struct kw_decision **ret) KW_WUR KW_NONNULL(1, 2, 3, 5);

/* The same for a bare command line, path (access: read, write or delete) or URL. */
int kw_policy_command(const struct kw_policy *policy, const struct kw_policy_ctx *ctx,
    const char *line, struct kw_decision **ret) KW_WUR KW_NONNULL(1, 2, 3, 4);
int kw_policy_path(const struct kw_policy *policy, const struct kw_policy_ctx *ctx,
    const char *path, enum kw_effect_kind access, struct kw_decision **ret)
	KW_WUR KW_NONNULL(1, 2, 3, 5);
int kw_policy_url(const struct kw_policy *policy, const struct kw_policy_ctx *ctx,
    const char *url, struct kw_decision **ret) KW_WUR KW_NONNULL(1, 2, 3, 4);

void kw_decision_free(struct kw_decision *d);

/* "allow", "ask", "deny"; kw_verdict_from_name returns -1 for other text. */
const char *kw_verdict_name(enum kw_verdict v);
int kw_verdict_from_name(const char *name) KW_NONNULL(1);
/* "exec", "read", "write", "delete", "net", "opaque". */
const char *kw_effect_kind_name(enum kw_effect_kind kind);

/*
 * The permission an effect needs from the caller's roles: *ret_verb
 * ("read", "write", "execute") and the resource in res ("file/PATH",
 * "command/NAME", "host/NAME").  A name that cannot be written as a
 * resource (too long) gives res "" -- only an unnarrowed permission grants
 * it.  Returns false for an effect that needs no permission (OPAQUE: it is
 * never allowed anyway).
 */
bool kw_effect_permission(const struct kw_effect *e, const char **ret_verb, char *res,
    size_t res_len) KW_NONNULL(1, 2, 3);

/* The decision as JSON (new reference; NULL on ENOMEM):
   {"decision", "rule", "reason", "action", "effects": [{kind, name, decision,
   rule, reason}], "leaves": [...]}. */
json_t *kw_decision_json(const struct kw_decision *d) KW_NONNULL(1);

/*
 * Mask the secrets in text, in place (a command line or URL about to be
 * recorded): known key shapes (sk-ant-..., AKIA..., ghp_...) and the value
 * after a word that names a secret (password=, token:, x-api-key: ,
 * Authorization: Bearer) become '*' after a short prefix.
 */
void kw_policy_mask(char *text) KW_NONNULL(1);

#endif
