/*
 * doctor_claude.c - is Claude Code wired to keywarden (its apiKeyHelper
 * runs `keywarden key get NAME`, keywarden is on its PATH and holds NAME;
 * a PreToolUse hook for every tool runs `keywarden hook claude`), and
 * sensitive-data filtering in the configuration.
 *
 * apiKeyHelper is read from Claude Code's settings in its order of
 * precedence: the managed settings, the project's .claude/settings.local.json
 * and .claude/settings.json, then ~/.claude/settings.json.  Its command is
 * never printed: a helper such as `echo sk-ant-...` would show the key.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/doctor.h"
#include "common/names.h"

#define MANAGED_SETTINGS "/etc/claude-code/managed-settings.json"
/* What `keywarden setup claude --system` writes (managed, like the file above). */
#define MANAGED_KEYWARDEN "/etc/claude-code/managed-settings.d/keywarden.json"

/* The settings files, highest precedence first; malloc'd paths (NULL when out of memory). */
static size_t
settings_files(struct kw_dr *d, char **out, size_t max)
{
	const char *dirs[2] = { d->project[0], NULL };
	size_t n = 0;

	if (max < 7)
		return 0;
	if (d->repo_root && d->n_project > 1)
		dirs[1] = d->project[d->n_project - 1];
	out[n++] = kw_dr_fmt("%s", MANAGED_SETTINGS);
	out[n++] = kw_dr_fmt("%s", MANAGED_KEYWARDEN);
	for (size_t i = 0; i < 2 && dirs[i]; i++) {
		out[n++] = kw_dr_fmt("%s/.claude/settings.local.json", dirs[i]);
		out[n++] = kw_dr_fmt("%s/.claude/settings.json", dirs[i]);
	}
	out[n++] = kw_dr_fmt("%s/.claude/settings.json", d->home);
	return n;
}

/* The top-level object of a JSON file, or NULL (absent, unreadable, not JSON). */
static json_t *
load_json(const char *path)
{
	char *data = NULL;
	size_t len = 0;
	json_t *root;

	if (kw_dr_read_file(path, 1u << 24, &data, &len) < 0)
		return NULL;
	root = json_loadb(data, len, JSON_DISABLE_EOF_CHECK, NULL);
	sodium_memzero(data, len);
	free(data);
	if (!json_is_object(root)) {
		json_decref(root);
		return NULL;
	}
	return root;
}

/*
 * `[PATH/]keywarden [--socket S|--config C]... key get NAME [--version N |
 * --proxy]`: sets helper_prog, helper_key and helper_proxy.  Anything else
 * (a shell line, quoting) is not recognised.
 */
static void
parse_helper(struct kw_dr *d, const char *cmd)
{
	_cleanup_free_ char *copy = strdup(cmd);
	char *w[16], *save = NULL, *t;
	const char *base;
	size_t n = 0, i = 1;

	if (!copy)
		return;
	for (t = strtok_r(copy, " \t", &save); t && n < KW_ELEMENTSOF(w); t = strtok_r(NULL, " \t", &save))
		w[n++] = t;
	if (n == 0 || t)
		return;
	base = strrchr(w[0], '/') ? strrchr(w[0], '/') + 1 : w[0];
	if (strcmp(base, "keywarden") != 0)
		return;
	while (i < n && w[i][0] == '-') {
		if (strcmp(w[i], "--socket") == 0 || strcmp(w[i], "--config") == 0 ||
		    strcmp(w[i], "-s") == 0 || strcmp(w[i], "-c") == 0)
			i += 2;
		else if (strncmp(w[i], "--socket=", 9) == 0 || strncmp(w[i], "--config=", 9) == 0)
			i++;
		else
			return;
	}
	if (i + 3 != n && !(i + 5 == n && strcmp(w[i + 3], "--version") == 0) &&
	    !(i + 4 == n && strcmp(w[i + 3], "--proxy") == 0))
		return;
	if (strcmp(w[i], "key") != 0 || strcmp(w[i + 1], "get") != 0 ||
	    !kw_name_ok(KW_NAME_KEY, w[i + 2]))
		return;
	if (!(d->helper_prog = strdup(w[0])) || !(d->helper_key = strdup(w[i + 2])))
		d->oom = true;
	d->helper_proxy = i + 4 == n;
}

void
kw_dr_read_helper(struct kw_dr *d)
{
	char *files[8];
	size_t n = settings_files(d, files, KW_ELEMENTSOF(files));

	for (size_t i = 0; i < n && !d->helper_file; i++) {
		json_t *root = files[i] ? load_json(files[i]) : NULL;
		const char *cmd = json_string_value(json_object_get(root, "apiKeyHelper"));
		if (cmd && *cmd) {
			d->helper_file = files[i];
			files[i] = NULL;
			parse_helper(d, cmd);
		}
		json_decref(root);
	}
	for (size_t i = 0; i < n; i++)
		free(files[i]);
}

/* Whether prog runs: a path that is executable, or a name found on $PATH. */
static bool
runnable(const char *prog)
{
	_cleanup_free_ char *path = NULL;
	const char *env = getenv("PATH");
	char *save = NULL, *dir;

	if (strchr(prog, '/'))
		return access(prog, X_OK) == 0;
	if (!env || !(path = strdup(env)))
		return false;
	for (dir = strtok_r(path, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		char full[4096];
		struct stat st;
		snprintf(full, sizeof(full), "%s/%s", *dir ? dir : ".", prog);
		if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0)
			return true;
	}
	return false;
}

/* Signs of Claude Code on this machine. */
static bool
claude_here(struct kw_dr *d)
{
	_cleanup_free_ char *dir = kw_dr_fmt("%s/.claude", d->home);
	_cleanup_free_ char *state = kw_dr_fmt("%s/.claude.json", d->home);

	return (dir && access(dir, F_OK) == 0) || (state && access(state, F_OK) == 0) ||
	    runnable("claude");
}

/* Whether keywarden holds key name: 1, 0, or -1 when doctor cannot ask. */
static int
key_held(struct kw_dr *d, const char *name)
{
	json_t *res = NULL, *k;
	char why[512];
	size_t i;
	int held = 0;

	if (!d->status || (geteuid() != 0 &&
	    (!json_is_object(json_object_get(d->status, "session")) ||
	    kw_dr_may(d, "read", "key") != 1)))
		return -1;
	if (kw_dr_call(d, "key.list", NULL, &res, why, sizeof(why)) < 0)
		return -1;
	json_array_foreach(json_object_get(res, "keys"), i, k)
		if (json_string_value(json_object_get(k, "name")) &&
		    strcmp(json_string_value(json_object_get(k, "name")), name) == 0)
			held = 1;
	json_decref(res);
	return held;
}

static void
check_helper(struct kw_dr *d)
{
	const char *check = "claude.api-key-helper";
	const char *file = d->helper_file;
	_cleanup_free_ char *fix = NULL;
	int held;

	if (!file) {
		if (!claude_here(d)) {
			kw_dr_add(d, check, KW_DR_INFO, NULL, 0, NULL,
			    "Claude Code not found (no ~/.claude, no ~/.claude.json, no claude on PATH)");
			return;
		}
		fix = kw_dr_fmt("add \"apiKeyHelper\": \"keywarden key get %s\" to %s/.claude/"
		    "settings.json (as in contrib/claude-code/settings.json)", KW_DR_KEY_DEFAULT,
		    kw_cli_safe(d->home));
		kw_dr_add(d, check, KW_DR_FAIL, NULL, 0, fix,
		    "Claude Code's settings name no apiKeyHelper: it takes its key from "
		    "ANTHROPIC_API_KEY or its own login, not from keywarden");
		return;
	}
	if (!d->helper_key) {
		fix = kw_dr_fmt("set \"apiKeyHelper\": \"keywarden key get %s\" in %s",
		    KW_DR_KEY_DEFAULT, kw_cli_safe(file));
		kw_dr_add(d, check, KW_DR_WARN, file, 0, fix,
		    "apiKeyHelper in %s does not run keywarden key get NAME", kw_cli_safe(file));
		return;
	}
	if (!runnable(d->helper_prog)) {
		fix = kw_dr_fmt("give keywarden's full path in apiKeyHelper, or put its directory "
		    "on the PATH Claude Code runs with");
		kw_dr_add(d, check, KW_DR_FAIL, file, 0, fix,
		    "apiKeyHelper in %s runs %s, which is not %s", kw_cli_safe(file),
		    kw_cli_safe(d->helper_prog), strchr(d->helper_prog, '/') ?
		    "an executable file" : "on PATH");
		return;
	}
	if ((held = key_held(d, d->helper_key)) == 0) {
		fix = kw_dr_fmt("keywarden key set %s (or keywarden doctor --fix, to import a key "
		    "found in plaintext)", d->helper_key);
		kw_dr_add(d, check, KW_DR_FAIL, file, 0, fix,
		    "apiKeyHelper in %s asks keywarden for %s, which keywarden does not hold",
		    kw_cli_safe(file), d->helper_key);
		return;
	}
	kw_dr_add(d, check, KW_DR_PASS, file, 0, NULL,
	    "apiKeyHelper in %s runs keywarden key get %s%s", kw_cli_safe(file), d->helper_key,
	    held == 1 ? ", which keywarden holds" : "");
}

/* "[PATH/]keywarden [options] hook claude": the command of our hook. */
static bool
is_our_hook(const char *cmd)
{
	const char *end = strstr(cmd, " hook claude"), *base;
	size_t len;

	if (!end || strcmp(end, " hook claude") != 0)
		return false;
	len = strcspn(cmd, " \t");
	base = memrchr(cmd, '/', len) ? (const char *)memrchr(cmd, '/', len) + 1 : cmd;
	return (size_t)(cmd + len - base) == strlen("keywarden") &&
	    strncmp(base, "keywarden", strlen("keywarden")) == 0;
}

/* The matcher of the first PreToolUse entry in root that runs our hook, or NULL. */
static const char *
hook_matcher(json_t *root, bool *ret_found)
{
	json_t *entries = json_object_get(json_object_get(root, "hooks"), "PreToolUse"), *e, *h;
	size_t i, k;

	json_array_foreach(entries, i, e) {
		json_array_foreach(json_object_get(e, "hooks"), k, h) {
			const char *cmd = json_string_value(json_object_get(h, "command"));
			if (cmd && is_our_hook(cmd)) {
				const char *m = json_string_value(json_object_get(e, "matcher"));
				*ret_found = true;
				return m ? m : "";
			}
		}
	}
	return NULL;
}

static void
check_hook(struct kw_dr *d)
{
	const char *check = "claude.hook";
	char *files[8];
	size_t n = settings_files(d, files, KW_ELEMENTSOF(files));
	const char *matcher = NULL;
	char *file = NULL;
	bool found = false;

	for (size_t i = 0; i < n && !found; i++) {
		json_t *root = files[i] ? load_json(files[i]) : NULL;
		const char *m = hook_matcher(root, &found);
		if (found) {
			matcher = m && (!*m || strcmp(m, "*") == 0) ? NULL : m ? m : NULL;
			file = files[i];
			files[i] = NULL;
			if (matcher)
				d->oom |= !(matcher = kw_dr_fmt("%s", m));
		}
		json_decref(root);
	}
	for (size_t i = 0; i < n; i++)
		free(files[i]);
	if (!found && !claude_here(d))
		kw_dr_add(d, check, KW_DR_INFO, NULL, 0, NULL,
		    "Claude Code not found (no ~/.claude, no ~/.claude.json, no claude on PATH)");
	else if (!found)
		kw_dr_add(d, check, KW_DR_WARN, NULL, 0, "keywarden setup claude",
		    "no PreToolUse hook runs keywarden hook claude: Claude Code's tool calls are "
		    "not decided by keywarden's policy");
	else if (matcher)
		kw_dr_add(d, check, KW_DR_WARN, file, 0, "keywarden setup claude",
		    "the PreToolUse hook in %s runs keywarden hook claude only for tools matching "
		    "\"%s\": the others are not decided", kw_cli_safe(file), kw_cli_safe(matcher));
	else
		kw_dr_add(d, check, KW_DR_PASS, file, 0, NULL,
		    "a PreToolUse hook in %s runs keywarden hook claude for every tool",
		    kw_cli_safe(file));
	free(file);
	free((char *)matcher);
}

void
kw_dr_check_claude(struct kw_dr *d)
{
	check_helper(d);
	check_hook(d);
}

void
kw_dr_check_filtering(struct kw_dr *d)
{
	const char *check = "sensitive-data";
	json_t *words = kw_config_get(d->cfg, "security.sensitivePatterns");
	json_t *filters = kw_config_get(d->cfg, "security.filters.patterns");
	bool detect = kw_config_bool(d->cfg, "security.detectSensitiveFiles");
	bool filter = kw_config_bool(d->cfg, "security.filters.enabled");
	size_t before = d->n_items;
	_cleanup_free_ char *list = NULL;

	if (json_array_size(words) == 0)
		kw_dr_add(d, check, KW_DR_WARN, NULL, 0,
		    "keywarden config set security.sensitivePatterns "
		    "'[\"password\", \"api_key\", \"secret\", \"token\"]'",
		    "security.sensitivePatterns is empty: no word marks a file as sensitive");
	if (!detect)
		kw_dr_add(d, check, KW_DR_WARN, NULL, 0,
		    "keywarden config set security.detectSensitiveFiles true",
		    "security.detectSensitiveFiles is false");
	if (filter && json_array_size(filters) == 0)
		kw_dr_add(d, check, KW_DR_WARN, NULL, 0,
		    "add redaction patterns to security.filters.patterns (keywarden.conf(5))",
		    "security.filters.enabled is true, but security.filters.patterns is empty");
	else if (!filter)
		kw_dr_add(d, check, KW_DR_WARN, NULL, 0,
		    "keywarden config set security.filters.enabled true",
		    "security.filters.enabled is false");
	if (d->n_items != before)
		return;
	list = kw_cli_join(words);
	/* Say plainly which half is applied today. */
	kw_dr_add(d, check, KW_DR_PASS, NULL, 0, NULL,
	    "sensitive-file patterns set (%s), applied to tool calls by keywarden hook claude; "
	    "%zu redaction filters on, not enforced yet (redaction is to come)",
	    kw_cli_safe(list ? list : "?"), json_array_size(filters));
}
