/*
 * doctor_keys.c - is the API key stored securely?  The guide's first
 * checklist item, looked for where keys are usually left: the
 * environment, the project's .env files, shell start-up files and
 * history, and Claude Code's settings.
 *
 * A finding names the file and the line, never the value.  What counts:
 * an Anthropic key's shape (sk-ant- and 20 or more of [A-Za-z0-9_-])
 * anywhere, ANTHROPIC_API_KEY=<a literal>, and in JSON settings a
 * non-empty apiKey, api.key, primaryApiKey or env.ANTHROPIC_API_KEY.
 * Only with --fix does an item keep the value it found, for the import.
 */
#include <dirent.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/doctor.h"
#include "cli/prompt.h"

#define FILE_MAX	(64u << 20)	/* a history file larger than this is not read */
#define KEY_VAR		"ANTHROPIC_API_KEY"
#define KEY_PREFIX	"sk-ant-"
#define KEY_MIN_TAIL	20

extern char **environ;

/* The kinds of file searched: the check they belong to and how a finding reads. */
enum kind { K_DOTENV, K_SHELL, K_HISTORY, K_SETTINGS };

static const struct {
	const char *check;
	const char *after;	/* what to do after the import */
} kinds[] = {
	[K_DOTENV] = { "api-key.dotenv", "then delete that line (and keep .env out of git)" },
	[K_SHELL] = { "api-key.shell", "then delete that line; let Claude Code ask apiKeyHelper, "
	    "or run programs under keywarden exec" },
	[K_HISTORY] = { "api-key.history", "then delete that line (close your other shells "
	    "first: each writes its history back when it exits)" },
	[K_SETTINGS] = { "api-key.claude-settings", "then delete it there and set \"apiKeyHelper\": "
	    "\"keywarden key get NAME\" instead" },
};

/* One key found on a line. */
struct hit {
	const char *val;	/* in the line; not NUL-terminated */
	size_t len;
	char name[64];		/* the variable or setting holding it, "" when unknown */
	bool expansion;		/* ANTHROPIC_API_KEY=$(...): no key here, but exported */
};

static bool
ident_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    c == '_';
}

static bool
key_char(char c)
{
	return ident_char(c) || c == '-';
}

size_t
kw_dr_key_len(const char *s)
{
	size_t n = strlen(KEY_PREFIX), i = n;

	if (strncmp(s, KEY_PREFIX, n) != 0)
		return 0;
	while (key_char(s[i]))
		i++;
	return i - n >= KEY_MIN_TAIL ? i : 0;
}

/* The name a value is assigned to, read backwards from it: NAME=, "NAME": or NAME: . */
static void
name_before(const char *line, const char *val, char *name, size_t len)
{
	const char *p = val, *end;

	name[0] = '\0';
	while (p > line && strchr("\"' \t", p[-1]))
		p--;
	if (p == line || !strchr("=:", p[-1]))
		return;
	p--;
	while (p > line && strchr("\"' \t", p[-1]))
		p--;
	end = p;
	while (p > line && (ident_char(p[-1]) || p[-1] == '.'))
		p--;
	if (end > p)
		snprintf(name, len, "%.*s", (int)(end - p), p);
}

/* An Anthropic key's shape on the line (not inside a longer word). */
static bool
find_shape(const char *line, struct hit *h)
{
	for (const char *p = line; (p = strstr(p, KEY_PREFIX)); p++) {
		size_t n;
		if (p > line && key_char(p[-1]))
			continue;
		if ((n = kw_dr_key_len(p)) == 0)
			continue;
		h->val = p;
		h->len = n;
		h->expansion = false;
		name_before(line, p, h->name, sizeof(h->name));
		return true;
	}
	return false;
}

/* A value that only stands for a key: "...", "<your key>", "". */
static bool
placeholder(const char *v, size_t n)
{
	return n < 8 || memmem(v, n, "...", 3) || memchr(v, '<', n) || memchr(v, '*', n);
}

/* ANTHROPIC_API_KEY=VALUE on the line (export, a command prefix, zsh's history stamp). */
static bool
find_assignment(const char *line, struct hit *h)
{
	size_t n = strlen(KEY_VAR);

	for (const char *p = line; (p = strstr(p, KEY_VAR)); p++) {
		const char *v = p + n, *e;
		char q = 0;
		if ((p > line && ident_char(p[-1])) || *v != '=')
			continue;
		v++;
		if (*v == '"' || *v == '\'')
			q = *v++;
		for (e = v; *e && (q ? *e != q : !strchr(" \t;&|)", *e)); e++)
			;
		if (e == v)
			continue;
		h->expansion = *v == '$' || *v == '`';
		if (!h->expansion && placeholder(v, (size_t)(e - v)))
			continue;
		h->val = v;
		h->len = (size_t)(e - v);
		snprintf(h->name, sizeof(h->name), "%s", KEY_VAR);
		return true;
	}
	return false;
}

static bool
is_imported(const struct kw_dr *d, const char *v, size_t n)
{
	return d->imported && strlen(d->imported) == n && sodium_memcmp(d->imported, v, n) == 0;
}

static void
add_hit(struct kw_dr *d, enum kind k, const char *path, long lineno, const struct hit *h)
{
	const char *name = d->helper_key ? d->helper_key : KW_DR_KEY_DEFAULT;
	char *fix = NULL, *after = NULL;
	bool imported = is_imported(d, h->val, h->len);
	struct kw_dr_item *it;
	bool shape;

	if (h->expansion) {
		/* A start-up file that fetches the key still hands it to every program. */
		kw_dr_add(d, kinds[k].check, KW_DR_WARN, path, lineno,
		    "delete that line: Claude Code sends the variable instead of asking "
		    "apiKeyHelper; run other programs under keywarden exec --key",
		    "%s line %ld exports " KEY_VAR " (from a command) into every shell",
		    kw_cli_safe(path), lineno);
		return;
	}
	if (k == K_SETTINGS) {
		char *s = kw_dr_fmt("%s", kinds[k].after), *at;
		if (s && (at = strstr(s, "NAME")))
			after = kw_dr_fmt("%.*s%s%s", (int)(at - s), s, name, at + 4);
		free(s);
	} else {
		after = kw_dr_fmt("%s", kinds[k].after);
	}
	if (imported)
		fix = kw_dr_fmt("it is in keywarden now (as %s, version %lld): delete line %ld of %s",
		    d->imported_name, d->imported_version, lineno, kw_cli_safe(path));
	else if (k == K_DOTENV && h->name[0])
		fix = kw_dr_fmt("keywarden doctor --fix (or keywarden key import %s --from "
		    "dotenv:%s%s%s) stores it in keywarden; %s", name, kw_cli_safe(path),
		    strcmp(h->name, KEY_VAR) ? ":" : "", strcmp(h->name, KEY_VAR) ?
		    kw_cli_safe(h->name) : "", after ? after : "");
	else
		fix = kw_dr_fmt("keywarden doctor --fix stores it in keywarden; %s",
		    after ? after : "");
	shape = h->len > strlen(KEY_PREFIX) && strncmp(h->val, KEY_PREFIX, strlen(KEY_PREFIX)) == 0;
	it = kw_dr_add(d, kinds[k].check, KW_DR_FAIL, path, lineno, fix,
	    "%s line %ld: %s%s%s in plaintext%s", kw_cli_safe(path), lineno,
	    h->name[0] ? kw_cli_safe(h->name) : "", h->name[0] ? " holds " : "",
	    shape ? "an Anthropic API key" : "an API key",
	    imported ? " (now also in keywarden)" : "");
	if (it && d->keep_values && !(it->value = strndup(h->val, h->len)))
		d->oom = true;
	free(fix);
	free(after);
}

/* The line (1-based) holding offset off of data. */
static long
line_of(const char *data, size_t off)
{
	long n = 1;

	for (size_t i = 0; i < off; i++)
		n += data[i] == '\n';
	return n;
}

/* The line of the first "name" (quoted) at or after from; 0 when absent. */
static long
find_member(const char *data, size_t from, const char *name, size_t *ret_off)
{
	char quoted[80];
	const char *p;

	snprintf(quoted, sizeof(quoted), "\"%s\"", name);
	if (!(p = strstr(data + from, quoted)))
		return 0;
	if (ret_off)
		*ret_off = (size_t)(p - data);
	return line_of(data, (size_t)(p - data));
}

static bool
line_hit(const long *lines, size_t n, long line)
{
	for (size_t i = 0; i < n; i++)
		if (lines[i] == line)
			return true;
	return false;
}

/*
 * Settings keys that hold a key whatever its shape; lines already reported
 * (hit[0..n)) are not reported twice.
 */
static void
scan_json(struct kw_dr *d, const char *path, const char *data, size_t len, const long *hit,
    size_t n)
{
	static const struct {
		const char *object;	/* NULL: top level */
		const char *member;
	} keys[] = {
		{ NULL, "apiKey" },
		{ NULL, "primaryApiKey" },
		{ "api", "key" },
		{ "env", KEY_VAR },
	};
	json_t *root = json_loadb(data, len, JSON_DISABLE_EOF_CHECK, NULL);

	if (!json_is_object(root))
		goto out;
	for (size_t i = 0; i < KW_ELEMENTSOF(keys); i++) {
		json_t *o = keys[i].object ? json_object_get(root, keys[i].object) : root;
		const char *v = json_string_value(json_object_get(o, keys[i].member));
		size_t from = 0;
		long line = 0;
		struct hit h = { 0 };

		if (!v || placeholder(v, strlen(v)))
			continue;
		if (keys[i].object && !find_member(data, 0, keys[i].object, &from))
			continue;
		if (!(line = find_member(data, from, keys[i].member, NULL)) || line_hit(hit, n, line))
			continue;
		h.val = v;
		h.len = strlen(v);
		snprintf(h.name, sizeof(h.name), "%s%s%s", keys[i].object ? keys[i].object : "",
		    keys[i].object ? "." : "", keys[i].member);
		add_hit(d, K_SETTINGS, path, line, &h);
	}
 out:
	json_decref(root);
}

/*
 * Search one file.  A file that is not there is no finding; one that
 * cannot be read is a warning.  Returns the number of items added.
 */
static size_t
scan_file(struct kw_dr *d, enum kind k, const char *path)
{
	char *data = NULL;
	size_t len = 0, before = d->n_items, n_hit = 0;
	long lines[64], lineno = 1;

	if (kw_dr_read_file(path, FILE_MAX, &data, &len) < 0) {
		/* Not there, or not a file (a FIFO, a device): nothing to report. */
		if (errno != ENOENT && errno != ENOTDIR && errno != EINVAL)
			kw_dr_add(d, kinds[k].check, KW_DR_WARN, path, 0,
			    "look at it yourself, or make it readable to you", "cannot read %s: %s",
			    kw_cli_safe(path), errno == EFBIG ? "larger than 64 MiB" : strerror(errno));
		return d->n_items - before;
	}
	for (char *line = data; line < data + len; lineno++) {
		char *nl = memchr(line, '\n', (size_t)(data + len - line));
		struct hit h;
		if (nl)
			*nl = '\0';
		if (find_shape(line, &h) || find_assignment(line, &h)) {
			if (!(h.expansion && k != K_SHELL))
				add_hit(d, k, path, lineno, &h);
			if (n_hit < KW_ELEMENTSOF(lines))
				lines[n_hit++] = lineno;
		}
		if (!nl)
			break;
		*nl = '\n';
		line = nl + 1;
	}
	if (k == K_SETTINGS)
		scan_json(d, path, data, len, lines, n_hit);
	sodium_memzero(data, len);
	free(data);
	return d->n_items - before;
}

/* ---- the environment --------------------------------------------------- */

static void
check_environment(struct kw_dr *d)
{
	const char *check = "api-key.environment";
	const char *name = d->helper_key ? d->helper_key : KW_DR_KEY_DEFAULT;
	size_t before = d->n_items;

	for (char **e = environ; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		char var[128];
		struct hit h = { 0 };
		struct kw_dr_item *it;
		bool is_key_var;

		if (!eq || (size_t)(eq - *e) >= sizeof(var))
			continue;
		snprintf(var, sizeof(var), "%.*s", (int)(eq - *e), *e);
		is_key_var = strcmp(var, KEY_VAR) == 0 && eq[1];
		if (is_key_var) {
			h.val = eq + 1;
			h.len = strlen(h.val);
		} else if (!find_shape(eq + 1, &h)) {
			continue;
		}
		if (!(it = kw_dr_add(d, check, KW_DR_FAIL, NULL, 0, NULL,
		    "%s is set in this environment%s", kw_cli_safe(var), is_key_var ?
		    ": Claude Code sends it instead of asking apiKeyHelper" :
		    " and holds an Anthropic API key")))
			continue;
		if (is_imported(d, h.val, h.len))
			it->fix = kw_dr_fmt("it is in keywarden now (as %s, version %lld): unset %s "
			    "and remove it where it is set", d->imported_name, d->imported_version,
			    kw_cli_safe(var));
		else
			it->fix = kw_dr_fmt("keywarden doctor --fix (or keywarden key import %s --from "
			    "env:%s) stores it in keywarden; then unset %s and remove it where it "
			    "is set", name, kw_cli_safe(var), kw_cli_safe(var));
		if (!it->fix || (d->keep_values && !(it->value = strndup(h.val, h.len))))
			d->oom = true;
	}
	if (d->n_items == before)
		kw_dr_add(d, check, KW_DR_PASS, NULL, 0, NULL,
		    "no " KEY_VAR " and no Anthropic key in this environment");
}

/* ---- files --------------------------------------------------------------- */

/* Files searched once each, however many ways they were reached. */
struct seen {
	dev_t dev[128];
	ino_t ino[128];
	size_t n;
};

static bool
seen_before(struct seen *s, const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return false;
	for (size_t i = 0; i < s->n; i++)
		if (s->dev[i] == st.st_dev && s->ino[i] == st.st_ino)
			return true;
	if (s->n < KW_ELEMENTSOF(s->dev)) {
		s->dev[s->n] = st.st_dev;
		s->ino[s->n++] = st.st_ino;
	}
	return false;
}

/* Search dir/rel (dir NULL: rel as it is) unless seen; the number of items added. */
static size_t
scan(struct kw_dr *d, struct seen *s, enum kind k, const char *dir, const char *rel)
{
	_cleanup_free_ char *path = dir ? kw_dr_fmt("%s/%s", dir, rel) : kw_dr_fmt("%s", rel);

	if (!path) {
		d->oom = true;
		return 0;
	}
	return seen_before(s, path) ? 0 : scan_file(d, k, path);
}

/* "DIR and its parents up to the repository's root ROOT", or how far the search went. */
static char *
project_text(const struct kw_dr *d)
{
	const char *top = d->project[d->n_project - 1];

	if (d->n_project == 1)
		return kw_dr_fmt("%s%s", kw_cli_safe(d->project[0]),
		    d->repo_root ? " (the repository's root)" : "");
	if (d->repo_root)
		return kw_dr_fmt("%s and its parents up to the repository's root %s",
		    kw_cli_safe(d->project[0]), kw_cli_safe(top));
	return kw_dr_fmt("%s and its parents up to %s (no repository found)",
	    kw_cli_safe(d->project[0]), kw_cli_safe(top));
}

static int
dotenv_name(const struct dirent *e)
{
	return strncmp(e->d_name, ".env", 4) == 0 && (e->d_name[4] == '\0' || e->d_name[4] == '.');
}

static void
check_dotenv(struct kw_dr *d, struct seen *s)
{
	size_t found = 0, files = 0;

	for (size_t i = 0; i < d->n_project; i++) {
		struct dirent **names = NULL;
		int n = scandir(d->project[i], &names, dotenv_name, alphasort);
		for (int j = 0; j < n; j++) {
			found += scan(d, s, K_DOTENV, d->project[i], names[j]->d_name);
			files++;
			free(names[j]);
		}
		free(names);
	}
	if (found == 0) {
		_cleanup_free_ char *where = project_text(d);
		kw_dr_add(d, kinds[K_DOTENV].check, KW_DR_PASS, NULL, 0, NULL,
		    "no API key in %zu .env file%s of %s", files, files == 1 ? "" : "s",
		    where ? where : "the project");
	}
}

static void
check_home_files(struct kw_dr *d, struct seen *s, enum kind k, const char *const *rel,
    size_t n, const char *what)
{
	size_t found = 0;

	for (size_t i = 0; i < n; i++)
		found += scan(d, s, k, d->home, rel[i]);
	if (k == K_HISTORY) {
		const char *histfile = getenv("HISTFILE");
		if (histfile && histfile[0] == '/')
			found += scan(d, s, k, NULL, histfile);
	}
	if (found == 0)
		kw_dr_add(d, kinds[k].check, KW_DR_PASS, NULL, 0, NULL, "no API key in %s", what);
}

static void
check_settings(struct kw_dr *d, struct seen *s)
{
	static const char *const home[] = {
		".claude/settings.json", ".claude/settings.local.json", ".claude.json",
		".config/claude/config.json",
	};
	size_t found = 0;

	for (size_t i = 0; i < KW_ELEMENTSOF(home); i++)
		found += scan(d, s, K_SETTINGS, d->home, home[i]);
	for (size_t i = 0; i < d->n_project; i++) {
		found += scan(d, s, K_SETTINGS, d->project[i], ".claude/settings.json");
		found += scan(d, s, K_SETTINGS, d->project[i], ".claude/settings.local.json");
	}
	found += scan(d, s, K_SETTINGS, NULL, "/etc/claude-code/managed-settings.json");
	if (found == 0) {
		_cleanup_free_ char *where = project_text(d);
		kw_dr_add(d, kinds[K_SETTINGS].check, KW_DR_PASS, NULL, 0, NULL,
		    "no API key in Claude Code's settings (~/.claude, ~/.claude.json, "
		    "~/.config/claude, and .claude/ of %s)", where ? where : "the project");
	}
}

void
kw_dr_check_keys(struct kw_dr *d)
{
	static const char *const shell[] = {
		".bashrc", ".bash_profile", ".bash_login", ".profile", ".zshrc", ".zshenv",
		".zprofile", ".zlogin", ".config/fish/config.fish",
	};
	static const char *const history[] = {
		".bash_history", ".zsh_history", ".local/share/fish/fish_history",
	};
	struct seen s = { .n = 0 };

	check_environment(d);
	check_dotenv(d, &s);
	check_home_files(d, &s, K_SHELL, shell, KW_ELEMENTSOF(shell),
	    "your shell's start-up files (~/.bashrc, ~/.profile, ~/.zshrc, ...)");
	check_home_files(d, &s, K_HISTORY, history, KW_ELEMENTSOF(history),
	    "your shell history (~/.bash_history, ~/.zsh_history, $HISTFILE)");
	check_settings(d, &s);
}
