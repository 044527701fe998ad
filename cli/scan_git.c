/*
 * scan_git.c - what `git commit` would record: the staged blobs of the
 * files `git diff --cached` adds, copies, modifies or changes the type of,
 * read from the index (a pre-commit hook must scan what is committed, not
 * the work tree, which `git add -p` leaves different).
 *
 * git runs by argv, never through a shell, with the caller's environment:
 * inside a hook that carries GIT_DIR and GIT_INDEX_FILE (`git commit -a`
 * and `git commit PATH` commit a temporary index, and that is the one to
 * read).  `--raw` gives each file's new mode and blob id, so gitlinks
 * (submodules) and symbolic links are left out by mode and the blob is read
 * by its id (`git cat-file blob ID`, which is the raw bytes: `git show`
 * may run textconv filters); `--no-renames` makes a renamed file an added
 * one, so its content is scanned too; `--no-relative` keeps paths from the
 * top of the repository whatever diff.relative says.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/scan.h"
#include "common/errors.h"

#define LIST_MAX	(64u << 20)	/* the names of the staged files */
#define GIT_TOO_MUCH	(-2)

static int
child(int out, char *const argv[])
{
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0)
		_exit(127);
	execvp("git", argv);
	fprintf(stderr, "keywarden: cannot run git: %s\n", strerror(errno));
	_exit(127);
}

int
kw_git_output(char *const argv[], size_t max, char **ret_out, size_t *ret_len)
{
	int p[2], status, r = 0;
	size_t len = 0, cap = 0;
	char *buf = NULL;
	pid_t pid;
	ssize_t n;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	if ((pid = fork()) < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0)
		child(p[1], argv);
	close(p[1]);
	for (;;) {
		if (len + 4096 + 1 > cap) {
			char *nb = realloc(buf, cap = cap ? 2 * cap : 65536);
			if (!nb) {
				r = -1;
				break;
			}
			buf = nb;
		}
		n = read(p[0], buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -1 : 0;
			break;
		}
		if ((len += (size_t)n) > max) {
			r = GIT_TOO_MUCH;
			break;
		}
	}
	close(p[0]);
	if (r < 0)
		kill(pid, SIGTERM);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (r < 0) {
		free(buf);
		return r;
	}
	buf[len] = '\0';
	*ret_out = buf;
	*ret_len = len;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* One blob by its id: to fn, or to skip when over max. */
static int
one_blob(const char *path, const char *id, size_t max, kw_staged_fn fn, kw_walk_skip_fn skip,
    void *ctx, char *why, size_t why_len)
{
	char *argv[] = { "git", "cat-file", "blob", (char *)id, NULL };
	char *data = NULL, reason[64];
	size_t len = 0;
	int st = kw_git_output(argv, max, &data, &len), r;

	if (st == GIT_TOO_MUCH) {
		snprintf(reason, sizeof(reason), "larger than %zu bytes", max);
		return skip ? skip(path, reason, ctx) : 0;
	}
	if (st != 0) {
		free(data);
		snprintf(why, why_len, "git cat-file blob %.40s (%.200s) failed", id, path);
		return KW_ERR_IO;
	}
	r = fn(path, data, len, ctx);
	free(data);
	return r;
}

int
kw_scan_staged(char **pathspecs, int n_pathspecs, size_t max, kw_staged_fn fn,
    kw_walk_skip_fn skip, void *ctx, char *why, size_t why_len)
{
	static char *const head[] = { "git", "diff", "--cached", "--raw", "-z", "--no-abbrev",
		"--no-renames", "--no-relative", "--no-ext-diff", "--diff-filter=ACMT", "--" };
	size_t nh = KW_ELEMENTSOF(head), len = 0;
	_cleanup_free_ char **argv = calloc(nh + (size_t)n_pathspecs + 1, sizeof(*argv));
	_cleanup_free_ char *list = NULL;
	char *p, *end;
	int st, r = 0;

	if (!argv)
		return KW_ERR_NOMEM;
	memcpy(argv, head, sizeof(head));
	for (int i = 0; i < n_pathspecs; i++)
		argv[nh + (size_t)i] = pathspecs[i];
	if ((st = kw_git_output(argv, LIST_MAX, &list, &len)) != 0) {
		snprintf(why, why_len, "git diff --cached failed (exit %d): is this a git "
		    "repository?", st);
		return KW_ERR_NOT_FOUND;
	}
	/* ":OLDMODE NEWMODE OLDID NEWID STATUS\0PATH\0" for each file. */
	for (p = list, end = list + len; p < end && r == 0; ) {
		char *meta = p, *path = meta + strlen(meta) + 1, *newmode, *id;
		if (path >= end || meta[0] != ':') {
			snprintf(why, why_len, "git diff --raw said something unexpected");
			return KW_ERR_IO;
		}
		p = path + strlen(path) + 1;
		/* meta: ":100644 100644 <old> <new> M" */
		if (!(newmode = strchr(meta, ' ')) || !(id = strchr(newmode + 1, ' ')) ||
		    !(id = strchr(id + 1, ' '))) {
			snprintf(why, why_len, "git diff --raw said something unexpected");
			return KW_ERR_IO;
		}
		newmode++;
		id++;
		id[strcspn(id, " ")] = '\0';
		/* Regular files only: 100644, 100755 (not 120000 links, not 160000 gitlinks). */
		if (strncmp(newmode, "100", 3) != 0)
			continue;
		r = one_blob(path, id, max, fn, skip, ctx, why, why_len);
	}
	return r;
}
