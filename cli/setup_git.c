/*
 * setup_git.c - keywarden setup git [--dry-run] [--force] [--json]: a
 * pre-commit hook in the current repository that runs this keywarden (by
 * its absolute path) as `scan --staged`, so a commit holding a secret is
 * refused before it exists.
 *
 * When the work tree has a .keywarden-baseline.json at its top, the hook
 * passes it as --baseline, so findings accepted there do not block.
 *
 * The hook goes where git looks for it (`git rev-parse --git-path hooks`:
 * .git/hooks, or core.hooksPath).  A hook keywarden wrote (it carries the
 * marker line) is brought up to date; any other is kept unless --force,
 * which moves it to pre-commit.keywarden-backup first.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/claude_settings.h"
#include "cli/cli.h"
#include "cli/scan.h"
#include "common/fsutil.h"

#define WHAT		"setup git"
#define MARKER		"# keywarden pre-commit hook (keywarden setup git)"
#define BACKUP_SUFFIX	".keywarden-backup"
#define HOOK_MAX	(1u << 20)
#define BASELINE	".keywarden-baseline.json"

struct hook {
	bool dry_run, force;
	char *dir, *path, *backup;
	char *text;		/* what the hook should say */
	char *old;		/* what it says now, or NULL */
	size_t old_len;
	bool is_ours, differs, exists;
};

static int
hooks_dir(struct hook *h)
{
	char *argv[] = { "git", "rev-parse", "--git-path", "hooks", NULL };
	char *out = NULL, abs[PATH_MAX];
	size_t len;

	if (kw_git_output(argv, PATH_MAX, &out, &len) != 0 || !len) {
		free(out);
		return kw_cli_fail(KW_ERR_NOT_FOUND, WHAT, "not in a git repository (git rev-parse "
		    "--git-path hooks failed)");
	}
	out[strcspn(out, "\n")] = '\0';
	/* Relative to here; kept absolute so that what is printed is where it went. */
	if (out[0] != '/') {
		if (!getcwd(abs, sizeof(abs)) || asprintf(&h->dir, "%s/%s", abs, out) < 0)
			h->dir = NULL;
		free(out);
	} else {
		h->dir = out;
	}
	if (!h->dir || asprintf(&h->path, "%s/pre-commit", h->dir) < 0 ||
	    asprintf(&h->backup, "%s%s", h->path, BACKUP_SUFFIX) < 0)
		return KW_EXIT_DENIED;
	return 0;
}

static int
hook_text(struct hook *h)
{
	char self[PATH_MAX];
	_cleanup_free_ char *word = NULL;

	if (!realpath("/proc/self/exe", self))
		return kw_cli_fail(KW_ERR_IO, WHAT, "cannot find this program's path "
		    "(/proc/self/exe): %s", strerror(errno));
	if (!(word = kw_claude_shell_word(self)) ||
	    asprintf(&h->text, "#!/bin/sh\n" MARKER "\n"
	    "# Refuses a commit whose staged files hold a secret (keywarden scan --staged).\n"
	    "# Findings accepted on purpose are listed in " BASELINE " at the top of the\n"
	    "# work tree (keywarden scan --baseline " BASELINE " --update-baseline).\n"
	    "baseline=\"$(git rev-parse --show-toplevel)/" BASELINE "\"\n"
	    "if [ -f \"$baseline\" ]; then\n"
	    "\texec %s scan --staged --baseline \"$baseline\"\n"
	    "fi\n"
	    "exec %s scan --staged\n", word, word) < 0)
		return KW_EXIT_DENIED;
	return 0;
}

/* What is at the hook's path now (a link is someone else's hook: not followed). */
static int
current(struct hook *h)
{
	_cleanup_close_ int fd = -1;
	struct stat st;

	h->differs = true;
	if (lstat(h->path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return kw_cli_fail(KW_ERR_IO, WHAT, "cannot read %s: %s", kw_cli_safe(h->path),
		    strerror(errno));
	}
	h->exists = true;
	if (!S_ISREG(st.st_mode))
		return 0;
	if ((fd = open(h->path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC)) < 0 ||
	    kw_read_fd(fd, HOOK_MAX, &h->old, &h->old_len) < 0)
		return kw_cli_fail(KW_ERR_IO, WHAT, "cannot read %s: %s", kw_cli_safe(h->path),
		    strerror(errno));
	h->is_ours = strstr(h->old, "\n" MARKER "\n") != NULL;
	h->differs = strcmp(h->old, h->text) != 0 || (st.st_mode & 0111) != 0111;
	return 0;
}

static int
install(struct hook *h)
{
	if (kw_mkdir_p(h->dir, 0755) < 0)
		return kw_cli_fail(KW_ERR_IO, WHAT, "cannot make %s: %s", kw_cli_safe(h->dir),
		    strerror(errno));
	/* Someone else's hook is moved aside whole (a link stays a link). */
	if (h->exists && !h->is_ours && rename(h->path, h->backup) < 0)
		return kw_cli_fail(KW_ERR_IO, WHAT, "cannot keep %s as %s: %s",
		    kw_cli_safe(h->path), kw_cli_safe(h->backup), strerror(errno));
	if (kw_write_atomic(h->path, h->text, strlen(h->text), 0755) < 0)
		return kw_cli_fail(KW_ERR_IO, WHAT, "cannot write %s: %s", kw_cli_safe(h->path),
		    strerror(errno));
	return 0;
}

static void
say(const struct hook *h, bool backup)
{
	const char *verb = h->dry_run ? "would write" : "wrote";

	if (!h->differs) {
		printf("%s is up to date\n", kw_cli_safe(h->path));
		return;
	}
	if (backup)
		printf("%s the existing hook to %s\n", h->dry_run ? "would move" : "moved",
		    kw_cli_safe(h->backup));
	printf("%s %s: runs keywarden scan --staged before each commit\n", verb,
	    kw_cli_safe(h->path));
}

static int
parse(struct kw_cli *cli, struct hook *h, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'n': h->dry_run = true; break;
		case 'f': h->force = true; break;
		default: return kw_cli_bad_option(cli, argc, argv, opts);
		}
	}
	return kw_cli_args(cli, argc, argv, optind, "");
}

int
kw_cmd_setup_git(struct kw_cli *cli, int argc, char **argv)
{
	struct hook h = { 0 };
	bool backup = false, written = false;
	int ex;

	if ((ex = parse(cli, &h, argc, argv)) != 0 || (ex = hooks_dir(&h)) != 0 ||
	    (ex = hook_text(&h)) != 0 || (ex = current(&h)) != 0)
		goto out;
	backup = h.exists && !h.is_ours && h.differs;
	if (backup && !h.force) {
		ex = kw_cli_fail(KW_ERR_DENIED, WHAT, "%s is a hook of someone else's; nothing was "
		    "changed (--force replaces it, keeping it as %s)", kw_cli_safe(h.path),
		    kw_cli_safe(h.backup));
		goto out;
	}
	if (h.differs && !h.dry_run) {
		if ((ex = install(&h)) != 0)
			goto out;
		written = true;
	}
	ex = KW_EXIT_OK;
	if (cli->json) {
		json_t *o = json_pack("{s:s, s:b, s:b, s:b, s:s?}", "hook", h.path, "changed",
		    h.differs, "written", written, "dry_run", h.dry_run, "backup",
		    backup ? h.backup : NULL);
		if (o)
			kw_cli_print_json(o);
		else
			ex = KW_EXIT_DENIED;
		json_decref(o);
	} else {
		say(&h, backup);
	}
 out:
	free(h.dir);
	free(h.path);
	free(h.backup);
	free(h.text);
	free(h.old);
	return ex;
}
