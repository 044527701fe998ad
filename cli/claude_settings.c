/*
 * claude_settings.c - merging keywarden's wiring into Claude Code's
 * settings.json (claude_settings.h).  In the comments below a "\" keeps
 * "/" and "*" apart, as a C comment must ("/\**" is a slash and two stars).
 *
 * The permission rules follow Claude Code's documentation, "Configure
 * permissions" (code.claude.com/docs/en/permissions, section "Read and
 * Edit"; read in its docs/zh-CN translation of December 2026):
 *   - Read and Edit rules take gitignore patterns; "//path" is an absolute
 *     path from the file system's root ("Read(//Users/alice/secrets/\**)"),
 *     "~/path" a path from the home directory, "/path" a path relative to
 *     the settings file's source (in ~/.claude/settings.json: ~/.claude/path;
 *     the page warns that one slash never makes a path absolute), "path" or
 *     "./path" relative to the current directory;
 *   - "Read(**\/.env)", like "Read(.env)", blocks only a .env at or under
 *     the current directory; "Read(//\**\/.env)" blocks one anywhere on the
 *     file system;
 *   - Read deny rules cover the Read tool, Grep, Glob and the file commands
 *     Claude Code recognises in Bash (cat, head, ...), and Edit on the same
 *     path; Edit rules cover every built-in tool that edits files.  Neither
 *     stops an arbitrary program (a script opening the file itself).
 * keywarden's deniedPaths cover a directory and everything in it, and its
 * excludePatterns match anywhere on the file system (policy/match.h), so
 * "/etc" becomes "//etc/\**", "~/.ssh" "~/.ssh/\**" and "**\/.env"
 * "//\**\/.env": each rule covers what the policy covers, not only the
 * project's files.  The PreToolUse hook (`keywarden hook claude`) decides
 * with the policy itself; these rules are the second line, in Claude Code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/claude_settings.h"
#include "common/errors.h"

#define HOOK_SUFFIX " hook claude"

/* ---- the rules ------------------------------------------------------------ */

static bool
has_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

/* Append s to the rule being built; false when it does not fit. */
static bool
put(char *out, size_t len, size_t *at, const char *s, bool escape)
{
	for (; *s; s++) {
		/* A literal path's backslash would escape in gitignore syntax. */
		if (escape && *s == '\\') {
			if (*at + 1 >= len)
				return false;
			out[(*at)++] = '\\';
		}
		if (*at + 1 >= len)
			return false;
		out[(*at)++] = *s;
	}
	out[*at] = '\0';
	return true;
}

/*
 * A deniedPaths entry as a pattern: "/etc" -> "//etc/\**", "~/.ssh" ->
 * "~/.ssh/\**", "./x" -> "./x/\**"; an entry with a glob is matched as it
 * is (policy/rules_path.c), "**\/x" anywhere.  False when it has no form.
 */
static bool
path_pattern(const char *entry, char *out, size_t len)
{
	char path[4096];
	size_t n = strlen(entry), at = 0;
	bool glob = has_glob(entry);

	if (n == 0 || n >= sizeof(path))
		return false;
	memcpy(path, entry, n + 1);
	while (n > 1 && path[n - 1] == '/')
		path[--n] = '\0';
	if (strncmp(path, "**", 2) == 0)
		return put(out, len, &at, "//", false) && put(out, len, &at, path, false);
	if (path[0] == '/') {
		if (!put(out, len, &at, "/", false) || !put(out, len, &at, path, !glob))
			return false;
	} else if (strcmp(path, "~") == 0 || strncmp(path, "~/", 2) == 0 ||
	    strcmp(path, ".") == 0 || strncmp(path, "./", 2) == 0) {
		if (!put(out, len, &at, path, !glob))
			return false;
	} else {
		return false;
	}
	if (glob)
		return true;
	/* A directory and everything below it; "/" is all of it. */
	return put(out, len, &at, strcmp(path, "/") == 0 ? "**" : "/**", false);
}

/*
 * An excludePatterns entry: "/x/\*.key" -> "//x/\*.key"; "**\/.env" and
 * "a/b" (anchored at the root by the policy) -> "//\**\/.env", "//a/b";
 * a name alone ("*.pem") matches at any depth -> "//\**\/\*.pem"; "~/..."
 * and "./..." keep their anchor.
 */
static bool
exclude_pattern(const char *entry, char *out, size_t len)
{
	size_t n = strlen(entry), at = 0;
	const char *slash = strchr(entry, '/');

	if (n == 0)
		return false;
	if (entry[0] == '/')
		return put(out, len, &at, "/", false) && put(out, len, &at, entry, false);
	if (strncmp(entry, "~/", 2) == 0 || strncmp(entry, "./", 2) == 0)
		return put(out, len, &at, entry, false);
	if (slash && slash != entry + n - 1)
		return put(out, len, &at, "//", false) && put(out, len, &at, entry, false);
	return put(out, len, &at, "//**/", false) && put(out, len, &at, entry, false);
}

static bool
holds(json_t *array, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(array, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return true;
	return false;
}

/* Add Read(p) and Edit(p) to rules, each once. */
static int
add_rules(json_t *rules, const char *pattern)
{
	static const char *const tools[] = { "Read", "Edit" };
	char rule[4200];

	for (size_t i = 0; i < KW_ELEMENTSOF(tools); i++) {
		snprintf(rule, sizeof(rule), "%s(%s)", tools[i], pattern);
		if (!holds(rules, rule) && json_array_append_new(rules, json_string(rule)) < 0)
			return KW_ERR_NOMEM;
	}
	return 0;
}

static int
mirror(json_t *list, bool (*form)(const char *, char *, size_t), json_t *rules,
    json_t *skipped)
{
	char pattern[4100];
	size_t i;
	json_t *v;
	int r;

	json_array_foreach(list, i, v) {
		const char *e = json_string_value(v);
		if (e && form(e, pattern, sizeof(pattern)))
			r = add_rules(rules, pattern);
		else
			r = json_array_append(skipped, v) < 0 ? KW_ERR_NOMEM : 0;
		if (r < 0)
			return r;
	}
	return 0;
}

int
kw_claude_deny_rules(json_t *denied_paths, json_t *exclude_patterns, json_t **ret_rules,
    json_t **ret_skipped)
{
	json_t *rules = json_array(), *skipped = json_array();
	int r = KW_ERR_NOMEM;

	if (!rules || !skipped ||
	    (r = mirror(denied_paths, path_pattern, rules, skipped)) < 0 ||
	    (r = mirror(exclude_patterns, exclude_pattern, rules, skipped)) < 0) {
		json_decref(rules);
		json_decref(skipped);
		return r;
	}
	*ret_rules = rules;
	*ret_skipped = skipped;
	return 0;
}

/* ---- what is there -------------------------------------------------------- */

static const char *
type_name(json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: case JSON_REAL: return "a number";
	case JSON_TRUE: case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

/*
 * The hook events keywarden answers, each wired to `keywarden hook claude`:
 * PreToolUse decides every tool call, PostToolUse redacts what a tool
 * returns (security.autoRedact), UserPromptSubmit stops a prompt holding a
 * secret.  A matcher only for the tool events ("*": every tool).
 */
static const struct {
	const char *event;
	const char *matcher;
} hook_events[] = {
	{ "PreToolUse", "*" },
	{ "PostToolUse", "*" },
	{ "UserPromptSubmit", NULL },
};

static int
wrong(char *err, size_t len, const char *what, json_t *v, const char *want)
{
	snprintf(err, len, "%s is %s, not %s", what, type_name(v), want);
	return KW_ERR_INVALID;
}

int
kw_claude_settings_check(json_t *settings, char *err, size_t err_len)
{
	json_t *helper, *hooks, *pre, *perms, *deny, *entry;
	char what[64];
	size_t i;

	if (json_typeof(settings) != JSON_OBJECT)
		return wrong(err, err_len, "the top level", settings, "an object");
	if ((helper = json_object_get(settings, "apiKeyHelper")) && !json_is_string(helper))
		return wrong(err, err_len, "apiKeyHelper", helper, "a string");
	if ((hooks = json_object_get(settings, "hooks")) && !json_is_object(hooks))
		return wrong(err, err_len, "hooks", hooks, "an object");
	for (size_t e = 0; e < KW_ELEMENTSOF(hook_events); e++) {
		const char *ev = hook_events[e].event;
		snprintf(what, sizeof(what), "hooks.%s", ev);
		if ((pre = json_object_get(hooks, ev)) && !json_is_array(pre))
			return wrong(err, err_len, what, pre, "an array");
		json_array_foreach(pre, i, entry) {
			json_t *list = json_object_get(entry, "hooks");
			snprintf(what, sizeof(what), "hooks.%s[%zu]", ev, i);
			if (!json_is_object(entry))
				return wrong(err, err_len, what, entry, "an object");
			snprintf(what, sizeof(what), "hooks.%s[%zu].hooks", ev, i);
			if (list && !json_is_array(list))
				return wrong(err, err_len, what, list, "an array");
		}
	}
	if ((perms = json_object_get(settings, "permissions")) && !json_is_object(perms))
		return wrong(err, err_len, "permissions", perms, "an object");
	if ((deny = json_object_get(perms, "deny")) && !json_is_array(deny))
		return wrong(err, err_len, "permissions.deny", deny, "an array");
	if ((entry = json_object_get(settings, "env")) && !json_is_object(entry))
		return wrong(err, err_len, "env", entry, "an object");
	return 0;
}

/* Whether cmd's first word (quoted or not) names a program called keywarden. */
static bool
runs_keywarden(const char *cmd)
{
	const char *start = cmd, *end, *base;

	if (*start == '\'') {
		start++;
		end = strchr(start, '\'');
	} else {
		end = start + strcspn(start, " \t");
	}
	if (!end)
		return false;
	base = start;
	for (const char *p = start; p < end; p++)
		if (*p == '/')
			base = p + 1;
	return (size_t)(end - base) == strlen("keywarden") &&
	    strncmp(base, "keywarden", strlen("keywarden")) == 0;
}

/* A hook command of keywarden's: `[PATH/]keywarden ... hook claude`. */
static bool
is_our_hook(const char *cmd)
{
	size_t n = strlen(cmd), k = strlen(HOOK_SUFFIX);

	return n > k && strcmp(cmd + n - k, HOOK_SUFFIX) == 0 && runs_keywarden(cmd);
}

/* ---- the merge ------------------------------------------------------------ */

static int
note(json_t *changes, const char *setting, const char *action, const char *value,
    const char *was)
{
	json_t *c = json_pack("{s:s, s:s, s:s}", "setting", setting, "action", action,
	    "value", value);

	if (!c || (was && json_object_set_new(c, "was", json_string(was)) < 0)) {
		json_decref(c);
		return KW_ERR_NOMEM;
	}
	return json_array_append_new(changes, c) < 0 ? KW_ERR_NOMEM : 0;
}

/* The object at key in parent, made when absent (checked: never another type). */
static json_t *
child(json_t *parent, const char *key, json_t *(*make)(void))
{
	json_t *v = json_object_get(parent, key);

	if (v)
		return v;
	if (!(v = make()) || json_object_set_new(parent, key, v) < 0)
		return NULL;
	return v;
}

static int
merge_helper(json_t *settings, const char *helper, json_t *changes)
{
	const char *old = json_string_value(json_object_get(settings, "apiKeyHelper"));
	int r;

	if (old && strcmp(old, helper) == 0)
		return 0;
	/* Noted first: old goes with the value it is replaced by. */
	if (!old)
		r = note(changes, "apiKeyHelper", "set", helper, NULL);
	else
		r = note(changes, "apiKeyHelper", "replaced", helper,
		    runs_keywarden(old) ? old : NULL);
	if (r < 0)
		return r;
	return json_object_set_new(settings, "apiKeyHelper", json_string(helper)) < 0 ?
	    KW_ERR_NOMEM : 0;
}

static int
merge_hook(json_t *settings, const char *event, const char *matcher, const char *hook,
    json_t *changes)
{
	json_t *hooks, *pre, *entry, *h, *list;
	char setting[64];
	size_t i, j;
	bool found = false;
	int r = 0;

	snprintf(setting, sizeof(setting), "hooks.%s", event);
	if (!(hooks = child(settings, "hooks", json_object)) ||
	    !(pre = child(hooks, event, json_array)))
		return KW_ERR_NOMEM;
	json_array_foreach(pre, i, entry) {
		json_array_foreach(json_object_get(entry, "hooks"), j, h) {
			const char *cmd = json_string_value(json_object_get(h, "command"));
			if (!cmd || (strcmp(cmd, hook) != 0 && !is_our_hook(cmd)))
				continue;
			found = true;
			if (strcmp(cmd, hook) == 0)
				continue;
			/* Another keywarden's path (moved, reinstalled): this one's now. */
			if ((r = note(changes, setting, "replaced", hook, cmd)) < 0 ||
			    json_object_set_new(h, "command", json_string(hook)) < 0)
				return r < 0 ? r : KW_ERR_NOMEM;
		}
	}
	if (found)
		return 0;
	list = json_pack("[{s:s, s:s, s:i}]", "type", "command", "command", hook, "timeout",
	    KW_CLAUDE_HOOK_TIMEOUT);
	entry = list ? json_pack("{s:o}", "hooks", list) : NULL;
	if (entry && matcher && json_object_set_new(entry, "matcher", json_string(matcher)) < 0)
		entry = NULL;
	if (!entry || json_array_append_new(pre, entry) < 0)
		return KW_ERR_NOMEM;
	return note(changes, setting, "added", hook, NULL);
}

static int
merge_deny(json_t *settings, json_t *rules, json_t *changes)
{
	json_t *perms, *deny, *rule;
	size_t i;
	int r;

	if (json_array_size(rules) == 0)
		return 0;
	if (!(perms = child(settings, "permissions", json_object)) ||
	    !(deny = child(perms, "deny", json_array)))
		return KW_ERR_NOMEM;
	json_array_foreach(rules, i, rule) {
		const char *s = json_string_value(rule);
		if (!s || holds(deny, s))
			continue;
		if (json_array_append(deny, rule) < 0)
			return KW_ERR_NOMEM;
		if ((r = note(changes, "permissions.deny", "added", s, NULL)) < 0)
			return r;
	}
	return 0;
}

/* Remove env.NAME when it is there (its value is never shown: it may be a key). */
static int
drop_env(json_t *env, const char *name, json_t *changes)
{
	char setting[64];

	if (!json_object_get(env, name))
		return 0;
	snprintf(setting, sizeof(setting), "env.%s", name);
	if (json_object_del(env, name) < 0)
		return KW_ERR_INTERNAL;
	return note(changes, setting, "removed", "value not shown", NULL);
}

/*
 * --proxy: Claude Code's calls go to the API proxy (env.ANTHROPIC_BASE_URL)
 * with the helper's token, and no key of the settings' own goes with them.
 * Without it: a base URL still naming the proxy is removed.
 */
static int
merge_env(json_t *settings, const struct kw_claude_wiring *w, json_t *changes)
{
	json_t *env = json_object_get(settings, "env");
	const char *old = json_string_value(json_object_get(env, "ANTHROPIC_BASE_URL"));
	int r;

	if (!w->base_url) {
		if (!w->drop_base_url || !old || strcmp(old, w->drop_base_url) != 0)
			return 0;
		/* Noted first: old belongs to the entry deleted. */
		if ((r = note(changes, "env.ANTHROPIC_BASE_URL", "removed", old, NULL)) < 0)
			return r;
		return json_object_del(env, "ANTHROPIC_BASE_URL") < 0 ? KW_ERR_INTERNAL : 0;
	}
	if (!(env = child(settings, "env", json_object)))
		return KW_ERR_NOMEM;
	if ((r = drop_env(env, "ANTHROPIC_API_KEY", changes)) < 0 ||
	    (r = drop_env(env, "ANTHROPIC_AUTH_TOKEN", changes)) < 0)
		return r;
	if (old && strcmp(old, w->base_url) == 0)
		return 0;
	/* A base URL is no secret: the old one is shown. */
	r = old ? note(changes, "env.ANTHROPIC_BASE_URL", "replaced", w->base_url, old) :
	    note(changes, "env.ANTHROPIC_BASE_URL", "set", w->base_url, NULL);
	if (r < 0)
		return r;
	return json_object_set_new(env, "ANTHROPIC_BASE_URL", json_string(w->base_url)) < 0 ?
	    KW_ERR_NOMEM : 0;
}

int
kw_claude_settings_merge(json_t *settings, const struct kw_claude_wiring *w, json_t *changes)
{
	int r;

	if ((r = merge_helper(settings, w->helper, changes)) < 0)
		return r;
	for (size_t e = 0; e < KW_ELEMENTSOF(hook_events); e++)
		if ((r = merge_hook(settings, hook_events[e].event, hook_events[e].matcher, w->hook,
		    changes)) < 0)
			return r;
	if ((r = merge_deny(settings, w->deny, changes)) < 0)
		return r;
	return merge_env(settings, w, changes);
}

const char *
kw_claude_change_text(json_t *change, bool dry_run, char *buf, size_t len)
{
	const char *setting = json_string_value(json_object_get(change, "setting"));
	const char *action = json_string_value(json_object_get(change, "action"));
	const char *value = json_string_value(json_object_get(change, "value"));
	const char *was = json_string_value(json_object_get(change, "was"));
	char hook_label[64];
	const char *label = setting ? setting : "?";

	/* "hooks.PreToolUse" reads "hook PreToolUse". */
	if (setting && strncmp(setting, "hooks.", 6) == 0) {
		snprintf(hook_label, sizeof(hook_label), "hook %s", setting + 6);
		label = hook_label;
	}

	if (!was)
		was = "another command (not shown: it may hold a key)";
	if (!action || !value)
		snprintf(buf, len, "%s: changed", label);
	else if (strcmp(action, "set") == 0)
		snprintf(buf, len, "%s: %s %s", label, dry_run ? "would be set to" : "set to", value);
	else if (strcmp(action, "replaced") == 0)
		snprintf(buf, len, dry_run ? "%s: is %s, would be %s" : "%s: was %s, now %s", label,
		    was, value);
	else if (strcmp(action, "removed") == 0)
		snprintf(buf, len, "%s: %s (%s)", label, dry_run ? "would be removed" : "removed",
		    value);
	else
		snprintf(buf, len, "%s: %s %s", label, dry_run ? "would add" : "added", value);
	return buf;
}

char *
kw_claude_shell_word(const char *s)
{
	static const char safe[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789/._+,:@%-";
	size_t n = 3;
	char *out, *o;

	if (*s && strspn(s, safe) == strlen(s))
		return strdup(s);
	/* '...', each ' as '\'' */
	for (const char *p = s; *p; p++)
		n += *p == '\'' ? 4 : 1;
	if (!(out = malloc(n)))
		return NULL;
	o = out;
	*o++ = '\'';
	for (const char *p = s; *p; p++) {
		if (*p == '\'') {
			memcpy(o, "'\\''", 4);
			o += 4;
		} else {
			*o++ = *p;
		}
	}
	*o++ = '\'';
	*o = '\0';
	return out;
}

/* ---- Claude Code's own sandbox (setup claude --sandbox) -------------------- */

/*
 * Claude Code's "sandbox" settings, as its settings schema has them
 * (Claude Code 2.1.197, the version the tests install; the schema's
 * descriptions are quoted where they decide something):
 *   enabled, failIfUnavailable ("exit with an error at startup if
 *   sandbox.enabled is true but the sandbox cannot start"; not set, see
 *   kw_claude_sandbox_merge), allowUnsandboxedCommands ("when false, the dangerouslyDisableSandbox
 *   parameter is completely ignored"), network.allowedDomains (wildcards
 *   "*.example.com"), network.allowManagedDomainsOnly (managed settings
 *   only: user and project domains are then ignored),
 *   network.allowAllUnixSockets ("disables blocking on both platforms"),
 *   network.allowUnixSockets ("macOS only ... ignored on Linux"), and
 *   filesystem.denyRead / denyWrite, "merged with paths from Read(...) /
 *   Edit(...) deny permission rules" - so the permissions.deny mirrors
 *   above already reach Claude Code's sandbox and are not written twice.
 */
static const char *const sandbox_bools[] = {
	"enabled", "failIfUnavailable", "allowUnsandboxedCommands", "autoAllowBashIfSandboxed",
};
static const char *const network_bools[] = {
	"allowAllUnixSockets", "allowManagedDomainsOnly", "allowLocalBinding",
};

int
kw_claude_sandbox_check(json_t *settings, char *err, size_t err_len)
{
	json_t *sb = json_object_get(settings, "sandbox"), *net, *v;
	char what[64];

	if (!sb)
		return 0;
	if (!json_is_object(sb))
		return wrong(err, err_len, "sandbox", sb, "an object");
	for (size_t i = 0; i < KW_ELEMENTSOF(sandbox_bools); i++) {
		snprintf(what, sizeof(what), "sandbox.%s", sandbox_bools[i]);
		if ((v = json_object_get(sb, sandbox_bools[i])) && !json_is_boolean(v))
			return wrong(err, err_len, what, v, "a boolean");
	}
	if (!(net = json_object_get(sb, "network")))
		return 0;
	if (!json_is_object(net))
		return wrong(err, err_len, "sandbox.network", net, "an object");
	for (size_t i = 0; i < KW_ELEMENTSOF(network_bools); i++) {
		snprintf(what, sizeof(what), "sandbox.network.%s", network_bools[i]);
		if ((v = json_object_get(net, network_bools[i])) && !json_is_boolean(v))
			return wrong(err, err_len, what, v, "a boolean");
	}
	if ((v = json_object_get(net, "allowedDomains")) && !json_is_array(v))
		return wrong(err, err_len, "sandbox.network.allowedDomains", v, "an array");
	return 0;
}

static int
add_note(json_t *notes, const char *setting, const char *text)
{
	json_t *n = json_pack("{s:s, s:s}", "setting", setting, "note", text);

	return !n || json_array_append_new(notes, n) < 0 ? KW_ERR_NOMEM : 0;
}

/* obj.key = want unless it already is; setting names it in the change. */
static int
set_bool(json_t *obj, const char *key, bool want, const char *setting, json_t *changes)
{
	json_t *old = json_object_get(obj, key);
	int r;

	if (old && json_boolean_value(old) == want)
		return 0;
	r = note(changes, setting, old ? "replaced" : "set", want ? "true" : "false",
	    old ? (json_is_true(old) ? "true" : "false") : NULL);
	if (r < 0)
		return r;
	return json_object_set_new(obj, key, json_boolean(want)) < 0 ? KW_ERR_NOMEM : 0;
}

static int
add_domain(json_t *list, const char *domain, json_t *changes)
{
	if (holds(list, domain))
		return 0;
	if (json_array_append_new(list, json_string(domain)) < 0)
		return KW_ERR_NOMEM;
	return note(changes, "sandbox.network.allowedDomains", "added", domain, NULL);
}

/*
 * The hosts keywarden admits, as Claude Code's allow list: an allowedHosts
 * entry is an exact name; an allowedDomains entry is the name or any name
 * under it, which Claude Code writes as two entries, "D" and "*.D".
 */
static int
merge_domains(json_t *net, const struct kw_claude_sandbox *sb, json_t *changes)
{
	json_t *list, *v;
	char wild[300];
	size_t i;
	int r;

	if (json_array_size(sb->hosts) + json_array_size(sb->domains) == 0)
		return 0;
	if (!(list = child(net, "allowedDomains", json_array)))
		return KW_ERR_NOMEM;
	json_array_foreach(sb->hosts, i, v)
		if (json_string_value(v) && (r = add_domain(list, json_string_value(v), changes)) < 0)
			return r;
	json_array_foreach(sb->domains, i, v) {
		const char *d = json_string_value(v);
		if (!d || strlen(d) > 250)
			continue;
		snprintf(wild, sizeof(wild), "*.%s", d);
		if ((r = add_domain(list, d, changes)) < 0 || (r = add_domain(list, wild, changes)) < 0)
			return r;
	}
	return 0;
}

static int
merge_network(json_t *sbo, const struct kw_claude_sandbox *sb, json_t *settings,
    json_t *changes, json_t *notes)
{
	json_t *net = child(sbo, "network", json_object), *perms, *deny;
	json_t *mine;
	int r;

	if (!net)
		return KW_ERR_NOMEM;
	/* The broker's socket is a Unix socket: none may be reached from inside. */
	if ((r = set_bool(net, "allowAllUnixSockets", false, "sandbox.network.allowAllUnixSockets",
	    changes)) < 0)
		return r;
	if (json_array_size(json_object_get(net, "allowUnixSockets")) > 0 &&
	    (r = add_note(notes, "sandbox.network.allowUnixSockets", "yours, kept; Claude Code "
	    "ignores it on Linux, and `keywarden run` refuses every Unix socket")) < 0)
		return r;
	if (sb->managed && (r = set_bool(net, "allowManagedDomainsOnly", true,
	    "sandbox.network.allowManagedDomainsOnly", changes)) < 0)
		return r;
	if (sb->allow_network) {
		if ((r = merge_domains(net, sb, changes)) < 0)
			return r;
		if (json_array_size(sb->hosts) + json_array_size(sb->domains) == 0)
			return add_note(notes, "security.network.allowedHosts", "empty: keywarden "
			    "lets every host through; Claude Code still asks before a domain it "
			    "does not list");
		return 0;
	}
	/* No network: Claude Code has no "none"; its fetch tool is denied outright. */
	if (!(perms = child(settings, "permissions", json_object)) ||
	    !(deny = child(perms, "deny", json_array)))
		return KW_ERR_NOMEM;
	if (!holds(deny, "WebFetch")) {
		if (json_array_append_new(deny, json_string("WebFetch")) < 0)
			return KW_ERR_NOMEM;
		if ((r = note(changes, "permissions.deny", "added", "WebFetch", NULL)) < 0)
			return r;
	}
	mine = json_object_get(net, "allowedDomains");
	if (json_array_size(mine) > 0)
		return add_note(notes, "sandbox.network.allowedDomains", "yours, kept; "
		    "security.sandbox.allowNetwork is false, so under `keywarden run` no domain "
		    "is reachable whatever it lists");
	return 0;
}

/* The keywarden keys Claude Code's sandbox has no setting for: said, not pretended. */
static int
unmapped(const struct kw_claude_sandbox *sb, json_t *notes)
{
	int r = 0;

	if (!sb->allow_exec)
		r = add_note(notes, "security.sandbox.allowExec", "false has no Claude Code "
		    "equivalent (its sandbox cannot stop a command starting programs); "
		    "`keywarden run` enforces it");
	if (r == 0 && sb->whitelist_mode)
		r = add_note(notes, "security.execution.whitelist", "no Claude Code sandbox "
		    "setting; the hook and `keywarden run` enforce it");
	if (r == 0 && sb->read_only)
		r = add_note(notes, "security.readOnly", "no Claude Code sandbox setting (its "
		    "sandbox writes the working directory); the hook and `keywarden run` "
		    "enforce it");
	if (r == 0 && json_array_size(sb->allowed_paths) > 0)
		r = add_note(notes, "security.allowedPaths", "not mirrored: Claude Code's sandbox "
		    "writes only the working directory; `keywarden run` grants these");
	return r;
}

int
kw_claude_sandbox_merge(json_t *settings, const struct kw_claude_sandbox *sb,
    json_t *changes, json_t *notes)
{
	json_t *sbo = child(settings, "sandbox", json_object);
	int r;

	if (!sbo)
		return KW_ERR_NOMEM;
	if (sb->enabled) {
		/*
		 * On, and no way around it from a tool call.  Not a hard gate
		 * (failIfUnavailable): Claude Code's sandbox is bubblewrap, which
		 * needs a user namespace of its own, and `keywarden run` refuses
		 * nested ones -- Claude Code would refuse to start under the very
		 * sandbox keywarden requires.  keywarden run is the gate.
		 */
		if ((r = set_bool(sbo, "enabled", true, "sandbox.enabled", changes)) < 0 ||
		    (r = set_bool(sbo, "allowUnsandboxedCommands", false,
		    "sandbox.allowUnsandboxedCommands", changes)) < 0)
			return r;
		if (json_is_true(json_object_get(sbo, "failIfUnavailable")) &&
		    (r = add_note(notes, "sandbox.failIfUnavailable", "yours, kept; under "
		    "`keywarden run` Claude Code's own sandbox cannot start (no nested user "
		    "namespace), so with it Claude Code will not start there")) < 0)
			return r;
	} else if ((r = add_note(notes, "security.sandbox.enabled", "false: Claude Code's "
	    "sandbox.enabled is left as it is (the settings below apply when it is on)")) < 0) {
		return r;
	}
	if ((r = merge_network(sbo, sb, settings, changes, notes)) < 0)
		return r;
	return unmapped(sb, notes);
}
