/*
 * cmd_setup.c - keywarden setup claude [--user|--system] [--sandbox]
 * [--dry-run] [--key NAME] [--json]: wire Claude Code to keywarden in its
 * settings; with --sandbox, Claude Code's own sandbox settings too, set to
 * agree with keywarden's security.sandbox (claude_settings.h says how).
 *
 * The settings file is Claude Code's user settings ($CLAUDE_CONFIG_DIR/
 * settings.json, else ~/.claude/settings.json) or, with --system, a file of
 * keywarden's own among Claude Code's managed settings
 * (/etc/claude-code/managed-settings.d/keywarden.json), which every user's
 * Claude Code reads and no project can override.  What is there is kept
 * (claude_settings.c merges); a file that cannot be merged into is refused
 * before anything is written; the previous file is kept beside it as
 * FILE.keywarden-backup; the new one replaces it atomically with the old
 * one's mode and owner.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/claude_settings.h"
#include "cli/cli.h"
#include "common/config.h"
#include "common/fsutil.h"
#include "common/names.h"

#define WHAT		"setup claude"
#define MANAGED_DIR	"/etc/claude-code/managed-settings.d"
#define MANAGED_NAME	"keywarden.json"
#define BACKUP_SUFFIX	".keywarden-backup"
#define SETTINGS_MAX	(4u << 20)	/* settings files are a few KB */

struct setup {
	bool system, dry_run, sandbox, proxy;
	const char *key;		/* --key: the key apiKeyHelper gets */
	const char *managed_dir;	/* --managed-dir, or NULL */
	char *file;			/* the settings file as named */
	char *real;			/* the file written: file, or where its link leads */
	mode_t dir_mode, file_mode;	/* for what is created */
	struct kw_claude_wiring wiring;
	json_t *settings;		/* what is there, then the merge */
	char *old;			/* the file's bytes before (NULL: no file) */
	size_t old_len;
	struct stat st;			/* the file's, when there is one */
	json_t *changes;
	json_t *notes;			/* --sandbox: what has no Claude Code equivalent */
	struct kw_config *cfg;		/* keywarden's configuration (the lists are its) */
	char *proxy_url;		/* the API proxy's base URL, from the configuration */
	char *backup;			/* the backup written, or NULL */
};

static char *
join(const char *dir, const char *name)
{
	char *s = NULL;

	return asprintf(&s, "%s/%s", dir, name) < 0 ? NULL : s;
}

/* Claude Code's user settings: $CLAUDE_CONFIG_DIR/settings.json or ~/.claude/settings.json. */
static int
user_file(struct setup *s)
{
	const char *dir = getenv("CLAUDE_CONFIG_DIR"), *home = getenv("HOME");
	struct passwd *pw;
	char *d;

	if (dir && *dir) {
		s->file = join(dir, "settings.json");
	} else {
		if ((!home || !*home) && (pw = getpwuid(geteuid())))
			home = pw->pw_dir;
		if (!home || !*home)
			return kw_cli_fail(KW_ERR_CONFIG, WHAT, "no home directory: set HOME or "
			    "CLAUDE_CONFIG_DIR");
		if (!(d = join(home, ".claude")))
			return KW_EXIT_DENIED;
		s->file = join(d, "settings.json");
		free(d);
	}
	s->dir_mode = 0700;
	s->file_mode = 0600;
	return s->file ? 0 : KW_EXIT_DENIED;
}

static int
system_file(struct setup *s)
{
	/* Every user's Claude Code reads it: readable by all, changed by root. */
	s->dir_mode = 0755;
	s->file_mode = 0644;
	if (!s->managed_dir && geteuid() != 0 && !s->dry_run)
		return kw_cli_fail(KW_ERR_DENIED, WHAT, "--system writes Claude Code's managed "
		    "settings in %s, which only root may change: run it as root (sudo), or stage "
		    "the file elsewhere with --managed-dir DIR", MANAGED_DIR);
	s->file = join(s->managed_dir ? s->managed_dir : MANAGED_DIR, MANAGED_NAME);
	return s->file ? 0 : KW_EXIT_DENIED;
}

/* apiKeyHelper and the hook run this very binary, by its absolute path. */
static int
wiring_commands(struct setup *s)
{
	char self[PATH_MAX];
	_cleanup_free_ char *word = NULL;
	char *helper = NULL, *hook = NULL;

	if (!realpath("/proc/self/exe", self))
		return kw_cli_fail(KW_ERR_IO, WHAT, "cannot find this program's path "
		    "(/proc/self/exe): %s", strerror(errno));
	if (!(word = kw_claude_shell_word(self)) ||
	    asprintf(&helper, "%s key get %s%s", word, s->key, s->proxy ? " --proxy" : "") < 0 ||
	    asprintf(&hook, "%s hook claude", word) < 0) {
		free(helper);
		return KW_EXIT_DENIED;
	}
	s->wiring.helper = helper;
	s->wiring.hook = hook;
	return 0;
}

/* The permissions.deny mirrors of the configuration's denied paths and excluded patterns. */
static int
deny_rules(struct kw_cli *cli, struct setup *s)
{
	static const char *const keys[] = { "security.deniedPaths", "security.excludePatterns" };
	json_t *skipped = NULL, *v;
	char err[1024];
	size_t i;
	int r;

	if (kw_config_load(cli->config, true, &s->cfg, err, sizeof(err)) < 0)
		return kw_cli_fail(KW_ERR_CONFIG, WHAT, "%s", kw_cli_safe(err));
	r = kw_claude_deny_rules(kw_config_get(s->cfg, keys[0]), kw_config_get(s->cfg, keys[1]),
	    &s->wiring.deny, &skipped);
	if (r < 0)
		return KW_EXIT_DENIED;
	/* Only an entry the policy itself would refuse has no form: say so, go on. */
	json_array_foreach(skipped, i, v)
		fprintf(stderr, "keywarden: %s: \"%.128s\" (%s) has no Claude Code rule; not "
		    "mirrored\n", WHAT, kw_cli_safe(json_string_value(v)), keys[0]);
	json_decref(skipped);
	return 0;
}

/*
 * The API proxy's base URL from broker.apiProxy.listen ("127.0.0.1:8788",
 * "[::1]:8788", "localhost:8788"): where ANTHROPIC_BASE_URL points with
 * --proxy, and what is removed from env without it.  Plain HTTP: the proxy
 * listens on loopback only; TLS is between it and the API.
 */
static int
proxy_url(struct kw_cli *cli, struct setup *s)
{
	const char *listen = kw_config_str(s->cfg, "broker.apiProxy.listen");
	const char *colon = listen ? strrchr(listen, ':') : NULL;
	bool bare_v6 = colon && listen[0] != '[' && strchr(listen, ':') != colon;

	if (!colon || colon == listen || !colon[1])
		return kw_cli_fail(KW_ERR_CONFIG, WHAT, "broker.apiProxy.listen is '%.64s', not "
		    "HOST:PORT", kw_cli_safe(listen ? listen : ""));
	if (asprintf(&s->proxy_url, bare_v6 ? "http://[%.*s]%s" : "http://%.*s%s",
	    (int)(colon - listen), listen, colon) < 0) {
		s->proxy_url = NULL;
		return KW_EXIT_DENIED;
	}
	if (s->proxy) {
		s->wiring.base_url = s->proxy_url;
		if (!kw_config_bool(s->cfg, "broker.apiProxy.enabled"))
			fprintf(stderr, "keywarden: %s: broker.apiProxy.enabled is false in %s: "
			    "Claude Code reaches no proxy at %s until it is true (keywarden config "
			    "set broker.apiProxy.enabled true, then restart the broker)\n", WHAT,
			    kw_cli_safe(cli->config), kw_cli_safe(s->proxy_url));
	} else {
		s->wiring.drop_base_url = s->proxy_url;
	}
	return 0;
}

/* --sandbox: keywarden's security.sandbox and what it leans on, from the same configuration. */
static struct kw_claude_sandbox
sandbox_wanted(const struct setup *s)
{
	const struct kw_config *c = s->cfg;

	return (struct kw_claude_sandbox){
		.enabled = kw_config_bool(c, "security.sandbox.enabled"),
		.allow_network = kw_config_bool(c, "security.sandbox.allowNetwork") &&
		    kw_config_bool(c, "security.network.allowOutbound"),
		.allow_exec = kw_config_bool(c, "security.sandbox.allowExec"),
		.read_only = kw_config_bool(c, "security.readOnly"),
		.whitelist_mode = kw_config_bool(c, "security.execution.whitelistMode"),
		.managed = s->system,
		.allowed_paths = kw_config_get(c, "security.allowedPaths"),
		.hosts = kw_config_get(c, "security.network.allowedHosts"),
		.domains = kw_config_get(c, "security.network.allowedDomains"),
	};
}

/* s->real: the file itself, or where its symbolic link leads (a dotfiles checkout). */
static int
resolve(struct setup *s)
{
	struct stat st;
	char real[PATH_MAX];

	if (lstat(s->file, &st) < 0 || !S_ISLNK(st.st_mode)) {
		s->real = strdup(s->file);
		return s->real ? 0 : KW_EXIT_DENIED;
	}
	if (!realpath(s->file, real))
		return kw_cli_fail(KW_ERR_CONFIG, WHAT, "%s is a symbolic link that leads "
		    "nowhere (%s)", kw_cli_safe(s->file), strerror(errno));
	s->real = strdup(real);
	return s->real ? 0 : KW_EXIT_DENIED;
}

static int
parse_failed(struct setup *s, const json_error_t *e)
{
	return kw_cli_fail(KW_ERR_CONFIG, WHAT, "%s is not valid JSON (line %d, column %d: "
	    "%.128s); nothing was changed", kw_cli_safe(s->file), e->line, e->column,
	    kw_cli_safe(e->text));
}

/* What is in the file now; none is an empty object.  Refused when it cannot be merged into. */
static int
load(struct setup *s)
{
	_cleanup_close_ int fd = open(s->real, O_RDONLY | O_NOCTTY | O_CLOEXEC);
	json_error_t e;
	char why[256];
	int r;

	if (fd < 0 && errno == ENOENT)
		return (s->settings = json_object()) ? 0 : KW_EXIT_DENIED;
	if (fd < 0 || fstat(fd, &s->st) < 0)
		return kw_cli_fail(KW_ERR_IO, WHAT, "cannot read %s: %s", kw_cli_safe(s->file),
		    strerror(errno));
	if (!S_ISREG(s->st.st_mode))
		return kw_cli_fail(KW_ERR_CONFIG, WHAT, "%s is not a regular file",
		    kw_cli_safe(s->file));
	if ((r = kw_read_fd(fd, SETTINGS_MAX, &s->old, &s->old_len)) < 0)
		return kw_cli_fail(r == KW_ERR_INVALID ? KW_ERR_CONFIG : KW_ERR_IO, WHAT,
		    "cannot read %s: %s", kw_cli_safe(s->file), r == KW_ERR_INVALID ?
		    "larger than 4 MiB" : strerror(errno));
	/* An empty file is empty settings, as Claude Code reads it. */
	if (strspn(s->old, " \t\r\n") == s->old_len)
		s->settings = json_object();
	else if (!(s->settings = json_loadb(s->old, s->old_len, JSON_REJECT_DUPLICATES, &e)))
		return parse_failed(s, &e);
	if (!s->settings)
		return KW_EXIT_DENIED;
	if (kw_claude_settings_check(s->settings, why, sizeof(why)) < 0 ||
	    (s->sandbox && kw_claude_sandbox_check(s->settings, why, sizeof(why)) < 0))
		return kw_cli_fail(KW_ERR_CONFIG, WHAT, "%s: %s; nothing was changed",
		    kw_cli_safe(s->file), why);
	return 0;
}

/*
 * Make dir (and missing parents) with the setup's mode.  Run by root for
 * someone else's tree (HOME under sudo), what is made belongs to the owner
 * of the deepest directory that was there, so their Claude Code can use it.
 */
static int
make_dir(struct setup *s, const char *dir)
{
	char top[PATH_MAX];
	struct stat st;
	size_t n;

	if (stat(dir, &st) == 0)
		return 0;
	snprintf(top, sizeof(top), "%s", dir);
	while ((n = strlen(top)) > 1 && stat(top, &st) < 0) {
		char *slash = strrchr(top, '/');
		if (!slash)
			break;
		*(slash == top ? slash + 1 : slash) = '\0';
	}
	if (kw_mkdir_p(dir, s->dir_mode) < 0)
		return -1;
	if (geteuid() != 0 || stat(top, &st) < 0 || st.st_uid == 0)
		return 0;
	/* Down from top, each directory made here. */
	for (const char *p = dir + strlen(top); *p; p++)
		if (p[1] == '/' || p[1] == '\0') {
			snprintf(top, sizeof(top), "%.*s", (int)(p + 1 - dir), dir);
			if (lchown(top, st.st_uid, st.st_gid) < 0)
				return -1;
		}
	return 0;
}

static int
write_failed(struct setup *s, const char *path)
{
	return kw_cli_fail(KW_ERR_IO, WHAT, "cannot write %s: %s", kw_cli_safe(path),
	    strerror(errno));
}

/* The backup (when there was a file), then the merged settings, each atomically. */
static int
write_out(struct setup *s)
{
	_cleanup_free_ char *dir = strdup(s->real), *text = NULL, *backup_name = NULL;
	_cleanup_close_ int dfd = -1;
	const char *name;
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	mode_t mode = s->file_mode;
	struct stat dst;

	if (!dir || !(text = json_dumps(s->settings, JSON_INDENT(2) | JSON_PRESERVE_ORDER)))
		return KW_EXIT_DENIED;
	*strrchr(dir, '/') = '\0';
	if (make_dir(s, *dir ? dir : "/") < 0)
		return write_failed(s, dir);
	if ((dfd = kw_open_dir_of(s->real, &name)) < 0 || fstat(dfd, &dst) < 0)
		return write_failed(s, s->file);
	if (s->old) {
		/* The file keeps its mode and, when root rewrites it, its owner. */
		mode = s->st.st_mode & 07777;
		if (geteuid() == 0) {
			uid = s->st.st_uid;
			gid = s->st.st_gid;
		}
		if (asprintf(&backup_name, "%s%s", name, BACKUP_SUFFIX) < 0 ||
		    !(s->backup = join(dir, backup_name)))
			return KW_EXIT_DENIED;
		if (kw_write_atomic_owned_at(dfd, backup_name, s->old, s->old_len, 0600, uid,
		    gid) < 0)
			return write_failed(s, s->backup);
	} else if (geteuid() == 0 && dst.st_uid != 0) {
		uid = dst.st_uid;
		gid = dst.st_gid;
	}
	/* jansson ends the text without a newline; a file ends with one. */
	size_t len = strlen(text);
	text[len] = '\n';
	if (kw_write_atomic_owned_at(dfd, name, text, len + 1, mode, uid, gid) < 0)
		return write_failed(s, s->file);
	return 0;
}

static void
print_human(struct setup *s, bool written)
{
	char line[8192];
	size_t i;
	json_t *c;

	json_array_foreach(s->changes, i, c)
		printf("%s\n", kw_cli_safe(kw_claude_change_text(c, s->dry_run, line,
		    sizeof(line))));
	json_array_foreach(s->notes, i, c)
		printf("not mirrored: %s: %s\n", kw_cli_safe(json_string_value(json_object_get(c,
		    "setting"))), kw_cli_safe(json_string_value(json_object_get(c, "note"))));
	if (json_array_size(s->changes) == 0)
		printf("%s is up to date\n", kw_cli_safe(s->file));
	else if (!written)
		printf("would write %s\n", kw_cli_safe(s->file));
	else {
		if (s->backup)
			printf("backup: %s\n", kw_cli_safe(s->backup));
		printf("wrote %s", kw_cli_safe(s->file));
		if (strcmp(s->file, s->real) != 0)
			printf(" (through its link, to %s)", kw_cli_safe(s->real));
		printf("\n");
	}
}

static int
print_json(struct setup *s, bool written)
{
	json_t *o = json_pack("{s:s, s:O, s:b, s:b, s:s?, s:O*}", "file", s->file, "changes",
	    s->changes, "written", written, "dry_run", s->dry_run, "backup", s->backup,
	    "not_mirrored", s->notes);

	if (!o)
		return KW_EXIT_DENIED;
	kw_cli_print_json(o);
	json_decref(o);
	return 0;
}

static int
parse(struct kw_cli *cli, struct setup *s, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "user", no_argument, NULL, 'u' },
		{ "system", no_argument, NULL, 's' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "sandbox", no_argument, NULL, 'S' },
		{ "proxy", no_argument, NULL, 'P' },
		{ "key", required_argument, NULL, 'k' },
		{ "managed-dir", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	bool user = false;
	int c, ex;

	optind = 0;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'u': user = true; break;
		case 's': s->system = true; break;
		case 'n': s->dry_run = true; break;
		case 'S': s->sandbox = true; break;
		case 'P': s->proxy = true; break;
		case 'k': s->key = optarg; break;
		case 'm': s->managed_dir = optarg; break;
		default: return kw_cli_bad_option(cli, argc, argv, opts);
		}
	}
	if ((ex = kw_cli_args(cli, argc, argv, optind, "")) != 0)
		return ex;
	if (user && s->system)
		return kw_cli_usage(cli, "--user and --system are two different files: give one");
	if (s->managed_dir && !s->system)
		return kw_cli_usage(cli, "--managed-dir goes with --system");
	if (s->managed_dir && !*s->managed_dir)
		return kw_cli_usage(cli, "--managed-dir needs a directory");
	if (!kw_name_ok(KW_NAME_KEY, s->key))
		return kw_cli_usage(cli, "--key '%.64s': %s", kw_cli_safe(s->key),
		    kw_name_rule(KW_NAME_KEY));
	return 0;
}

static void
setup_free(struct setup *s)
{
	free(s->file);
	free(s->real);
	free((char *)s->wiring.helper);
	free((char *)s->wiring.hook);
	json_decref(s->wiring.deny);
	json_decref(s->settings);
	free(s->old);
	json_decref(s->changes);
	json_decref(s->notes);
	kw_config_free(s->cfg);
	free(s->proxy_url);
	free(s->backup);
}

static int
setup_claude(struct kw_cli *cli, int argc, char **argv)
{
	struct setup s = { .key = "anthropic" };
	bool written = false;
	int ex;

	if ((ex = parse(cli, &s, argc, argv)) != 0 ||
	    (ex = s.system ? system_file(&s) : user_file(&s)) != 0 ||
	    (ex = wiring_commands(&s)) != 0 || (ex = deny_rules(cli, &s)) != 0 ||
	    (ex = proxy_url(cli, &s)) != 0 || (ex = resolve(&s)) != 0 || (ex = load(&s)) != 0)
		goto out;
	ex = KW_EXIT_DENIED;
	if (!(s.changes = json_array()) ||
	    kw_claude_settings_merge(s.settings, &s.wiring, s.changes) < 0)
		goto out;
	if (s.sandbox) {
		struct kw_claude_sandbox want = sandbox_wanted(&s);
		if (!(s.notes = json_array()) ||
		    kw_claude_sandbox_merge(s.settings, &want, s.changes, s.notes) < 0)
			goto out;
	}
	if (json_array_size(s.changes) > 0 && !s.dry_run) {
		if ((ex = write_out(&s)) != 0)
			goto out;
		written = true;
	}
	ex = KW_EXIT_OK;
	if (cli->json)
		ex = print_json(&s, written);
	else
		print_human(&s, written);
 out:
	setup_free(&s);
	return ex;
}

static const struct kw_cmd setup_commands[] = {
	{ .name = "claude", .fn = setup_claude,
	  .help = "wire Claude Code to keywarden: apiKeyHelper, the PreToolUse hook and deny rules",
	  .usage = "[--user|--system] [--sandbox] [--proxy] [--dry-run] [--key NAME] [--json]",
	  .options = "  --user       Claude Code's user settings (the default):\n"
	    "               $CLAUDE_CONFIG_DIR/settings.json or ~/.claude/settings.json\n"
	    "  --system     Claude Code's managed settings, which projects cannot override:\n"
	    "               " MANAGED_DIR "/" MANAGED_NAME " (root)\n"
	    "  --sandbox    also Claude Code's own sandbox settings, set to agree with\n"
	    "               security.sandbox (what has no equivalent is named, not written)\n"
	    "  --proxy      Claude Code never holds the key: apiKeyHelper prints a proxy\n"
	    "               token (key get NAME --proxy) and env.ANTHROPIC_BASE_URL is the\n"
	    "               API proxy's (broker.apiProxy.listen); env.ANTHROPIC_API_KEY and\n"
	    "               env.ANTHROPIC_AUTH_TOKEN are removed.  Without it, a base URL\n"
	    "               naming the proxy is removed.\n"
	    "  --dry-run    say what would change; write nothing\n"
	    "  --key NAME   the key apiKeyHelper asks for (default anthropic)\n"
	    "  --json       {\"file\", \"changes\": [...], \"written\", \"dry_run\", \"backup\"\n"
	    "               [, \"not_mirrored\": [{\"setting\", \"note\"}] with --sandbox]}\n"
	    "What is there is kept; the previous file is saved as FILE" BACKUP_SUFFIX ".\n" },
	{ .name = "git", .fn = kw_cmd_setup_git,
	  .help = "a pre-commit hook in this repository that refuses commits holding a secret",
	  .usage = "[--dry-run] [--force] [--json]",
	  .options = "  --dry-run  say what would change; write nothing\n"
	    "  --force    replace a pre-commit hook that is not keywarden's (kept as\n"
	    "             pre-commit.keywarden-backup)\n"
	    "  --json     {\"hook\", \"changed\", \"written\", \"dry_run\", \"backup\"}\n"
	    "The hook runs this keywarden, by its absolute path, as scan --staged.\n" },
};

int
kw_cmd_setup(struct kw_cli *cli, int argc, char **argv)
{
	return kw_cli_run_group(cli, setup_commands, KW_ELEMENTSOF(setup_commands), argc, argv);
}
