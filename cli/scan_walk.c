/*
 * scan_walk.c - the files `keywarden scan PATH` reads: a directory tree
 * walked through directory fds (openat, O_NOFOLLOW: a link inside the tree
 * is never followed, and a directory renamed under the walk cannot lead it
 * elsewhere), leaving out .git, what the tree's .gitignore files ignore,
 * and, when asked, the policy's excludePatterns.
 *
 * .gitignore files are read where the walk meets them and apply below
 * their directory, with git's rules: the last pattern that matches
 * decides, "!" re-includes, a trailing "/" means directories only, a
 * pattern with a "/" before its end is anchored at its .gitignore's
 * directory, and a directory left out is not entered (so nothing under it
 * can be re-included).  The globs are policy/match.h's, which are
 * gitignore's.  Not read: .gitignore files above PATH, .git/info/exclude
 * and core.excludesFile (keywarden(1) says so).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/scan.h"
#include "common/errors.h"
#include "common/fsutil.h"
#include "policy/match.h"

#define MAX_DEPTH	128		/* directories deep; each holds an fd */
#define IGNORE_MAX	(1u << 20)	/* a .gitignore larger than this is not read */

struct pattern {
	char *glob;
	bool negate, dir_only;
};

/* The patterns of one .gitignore, and the directory (relative to the root) it sits in. */
struct ignore {
	char *base;		/* "" for the root, else "a/b" */
	struct pattern *p;
	size_t n;
};

struct walker {
	const struct kw_walk *w;
	const char *prefix;	/* the root as reported: "" for ".", else "src" */
	char abs[PATH_MAX];	/* the root's real path, for excludePatterns */
	struct ignore ignores[MAX_DEPTH + 1];
	size_t n_ignores;
	char rel[PATH_MAX];	/* the entry, relative to the root */
	char shown[PATH_MAX];	/* the entry as reported */
};

static void
ignore_clear(struct ignore *ig)
{
	for (size_t i = 0; i < ig->n; i++)
		free(ig->p[i].glob);
	free(ig->p);
	free(ig->base);
	*ig = (struct ignore){ 0 };
}

/* One line of a .gitignore into p; false for a blank line or a comment. */
static bool
parse_line(char *line, struct pattern *p)
{
	size_t n = strlen(line);

	if (n && line[n - 1] == '\r')
		line[--n] = '\0';
	/* Trailing spaces go, unless a backslash keeps the last one. */
	while (n && line[n - 1] == ' ' && !(n >= 2 && line[n - 2] == '\\'))
		line[--n] = '\0';
	if (n == 0 || line[0] == '#')
		return false;
	*p = (struct pattern){ 0 };
	if (line[0] == '!') {
		p->negate = true;
		line++;
		n--;
	}
	if (n && line[n - 1] == '/') {
		p->dir_only = true;
		line[--n] = '\0';
	}
	if (n == 0)
		return false;
	/* "\!" and "\#" stay escaped: the glob reads "\x" as x. */
	p->glob = strdup(line);
	return true;
}

/* Read dfd's .gitignore, when there is one, as the next level. */
static int
ignore_load(struct walker *wk, int dfd)
{
	_cleanup_close_ int fd = openat(dfd, ".gitignore", O_RDONLY | O_NOFOLLOW | O_NOCTTY |
	    O_NONBLOCK | O_CLOEXEC);
	_cleanup_free_ char *text = NULL;
	struct ignore *ig = &wk->ignores[wk->n_ignores];
	struct stat st;
	size_t len, cap = 0;
	char *line, *save = NULL;

	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    kw_read_fd(fd, IGNORE_MAX, &text, &len) < 0)
		return 0;
	if (!(ig->base = strdup(wk->rel)))
		return KW_ERR_NOMEM;
	wk->n_ignores++;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct pattern p;
		if (!parse_line(line, &p))
			continue;
		if (!p.glob)
			return KW_ERR_NOMEM;
		if (ig->n == cap) {
			struct pattern *np = reallocarray(ig->p, cap = cap ? 2 * cap : 16,
			    sizeof(*np));
			if (!np) {
				free(p.glob);
				return KW_ERR_NOMEM;
			}
			ig->p = np;
		}
		ig->p[ig->n++] = p;
	}
	return 0;
}

/* Whether rel (a directory when is_dir) is ignored: the last matching pattern decides. */
static bool
ignored(const struct walker *wk, const char *rel, bool is_dir)
{
	char sub[PATH_MAX + 1];
	bool out = false;

	for (size_t i = 0; i < wk->n_ignores; i++) {
		const struct ignore *ig = &wk->ignores[i];
		size_t bl = strlen(ig->base);
		const char *rest = rel;

		if (bl) {
			if (strncmp(rel, ig->base, bl) != 0 || rel[bl] != '/')
				continue;
			rest = rel + bl + 1;
		}
		snprintf(sub, sizeof(sub), "/%s", rest);
		for (size_t j = 0; j < ig->n; j++)
			if ((!ig->p[j].dir_only || is_dir) && kw_glob_match(ig->p[j].glob, sub))
				out = !ig->p[j].negate;
	}
	return out;
}

/* Whether the entry's absolute path matches one of the excludePatterns. */
static bool
excluded(const struct walker *wk)
{
	char abs[2 * PATH_MAX + 2];
	size_t i;
	json_t *v;

	if (!wk->w->excludes)
		return false;
	snprintf(abs, sizeof(abs), "%s%s%s", wk->abs, strcmp(wk->abs, "/") && wk->rel[0] ? "/" :
	    "", wk->rel);
	json_array_foreach(wk->w->excludes, i, v)
		if (json_is_string(v) && kw_glob_match(json_string_value(v), abs))
			return true;
	return false;
}

static int
skip(struct walker *wk, const char *reason)
{
	return wk->w->skip ? wk->w->skip(wk->shown, reason, wk->w->ctx) : 0;
}

/* The open regular file fd, already lstat'ed as lst: to the callback, unless it changed. */
static int
hand_over(struct walker *wk, int fd, const struct stat *lst)
{
	struct stat st;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_ino != lst->st_ino ||
	    st.st_dev != lst->st_dev)
		return skip(wk, "changed while scanned");
	if (wk->w->avoid_ino && st.st_ino == wk->w->avoid_ino && st.st_dev == wk->w->avoid_dev)
		return 0;
	if (excluded(wk))
		return skip(wk, "excluded (security.excludePatterns)");
	return wk->w->file(wk->shown, fd, &st, wk->w->ctx);
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in dir, sorted (so that reports come in the same order every run). */
static int
list_dir(int dfd, char ***ret_names, size_t *ret_n)
{
	int fd = dup(dfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	int r = 0;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return KW_ERR_IO;
	}
	while ((errno = 0, e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == cap) {
			char **nn = reallocarray(names, cap = cap ? 2 * cap : 32, sizeof(*nn));
			if (!nn) {
				r = KW_ERR_NOMEM;
				break;
			}
			names = nn;
		}
		if (!(names[n] = strdup(e->d_name))) {
			r = KW_ERR_NOMEM;
			break;
		}
		n++;
	}
	if (r == 0 && errno)
		r = KW_ERR_IO;
	closedir(d);
	if (r < 0) {
		while (n)
			free(names[--n]);
		free(names);
		return r;
	}
	qsort(names, n, sizeof(*names), cmp_names);
	*ret_names = names;
	*ret_n = n;
	return 0;
}

/* wk->rel and wk->shown for name in the directory rel_len long. */
static bool
enter_name(struct walker *wk, size_t rel_len, const char *name)
{
	int n = snprintf(wk->rel + rel_len, sizeof(wk->rel) - rel_len, "%s%s", rel_len ? "/" : "",
	    name);

	if (n < 0 || (size_t)n >= sizeof(wk->rel) - rel_len)
		return false;
	n = snprintf(wk->shown, sizeof(wk->shown), "%s%s%s", wk->prefix,
	    wk->prefix[0] && strcmp(wk->prefix, "/") ? "/" : "", wk->rel);
	return n >= 0 && (size_t)n < sizeof(wk->shown);
}

static int walk_dir(struct walker *wk, int dfd, size_t depth);

static int
walk_entry(struct walker *wk, int dfd, const char *name, size_t depth)
{
	struct stat st;
	_cleanup_close_ int fd = -1;
	char why[160];

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		snprintf(why, sizeof(why), "unreadable: %s", strerror(errno));
		return skip(wk, why);
	}
	if (S_ISLNK(st.st_mode))
		return skip(wk, "symbolic link (not followed)");
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
		return 0;	/* sockets, fifos, devices: no source code */
	if (ignored(wk, wk->rel, S_ISDIR(st.st_mode)))
		return 0;
	if (S_ISDIR(st.st_mode)) {
		if (excluded(wk))
			return skip(wk, "excluded (security.excludePatterns)");
		if (depth >= MAX_DEPTH)
			return skip(wk, "too deep");
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			snprintf(why, sizeof(why), "unreadable: %s", strerror(errno));
			return skip(wk, why);
		}
		return walk_dir(wk, fd, depth + 1);
	}
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, sizeof(why), "unreadable: %s", strerror(errno));
		return skip(wk, why);
	}
	return hand_over(wk, fd, &st);
}

static int
walk_dir(struct walker *wk, int dfd, size_t depth)
{
	size_t rel_len = strlen(wk->rel), n = 0, ignores = wk->n_ignores, i;
	char **names = NULL;
	int r;

	if ((r = ignore_load(wk, dfd)) < 0 || (r = list_dir(dfd, &names, &n)) < 0) {
		if (r == KW_ERR_IO)
			r = skip(wk, "unreadable directory");
		goto out;
	}
	for (i = 0; i < n && r == 0; i++) {
		if (!strcmp(names[i], ".git"))
			continue;
		if (!enter_name(wk, rel_len, names[i])) {
			r = skip(wk, "path too long");
			continue;
		}
		r = walk_entry(wk, dfd, names[i], depth);
		wk->rel[rel_len] = '\0';
	}
 out:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	while (wk->n_ignores > ignores)
		ignore_clear(&wk->ignores[--wk->n_ignores]);
	wk->rel[rel_len] = '\0';
	return r;
}

/* root as reported: "." is "", "./src/" is "src". */
static char *
shown_root(const char *root)
{
	char *s, *p;
	size_t n;

	while (root[0] == '.' && root[1] == '/' && root[2])
		for (root += 2; *root == '/' && root[1]; root++)
			;
	if (!(s = strdup(strcmp(root, ".") ? root : "")))
		return NULL;
	n = strlen(s);
	while (n > 1 && s[n - 1] == '/')
		s[--n] = '\0';
	for (p = s; (p = strstr(p, "//")); )
		memmove(p, p + 1, strlen(p));
	return s;
}

int
kw_scan_walk(const char *root, const struct kw_walk *w)
{
	_cleanup_free_ char *prefix = shown_root(root);
	struct walker *wk = NULL;
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r;

	if (!prefix || !(wk = calloc(1, sizeof(*wk))))
		return KW_ERR_NOMEM;
	wk->w = w;
	wk->prefix = prefix;
	r = KW_ERR_NOT_FOUND;
	/* The root itself is followed: the user named it. */
	if (stat(root, &st) < 0 || !realpath(root, wk->abs))
		goto out;
	r = KW_ERR_IO;
	if ((fd = open(root, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)) < 0)
		goto out;
	if (S_ISDIR(st.st_mode)) {
		r = walk_dir(wk, fd, 0);
	} else if (S_ISREG(st.st_mode)) {
		/* A file named on the command line is read whatever .gitignore says. */
		snprintf(wk->shown, sizeof(wk->shown), "%s", prefix[0] ? prefix : root);
		r = hand_over(wk, fd, &st);
	} else {
		errno = EINVAL;
	}
 out:
	free(wk);
	return r;
}
