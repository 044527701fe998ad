/*
 * path.c - paths as a tool would open them (see match.h): lexical
 * normalisation and containment, which are pure, and resolution, which may
 * ask the file system where symbolic links lead.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/errors.h"
#include "policy/match.h"

bool
kw_path_within(const char *path, const char *dir)
{
	size_t len = strlen(dir);

	/* "/" (and "//", which a caller should not give) covers everything. */
	while (len > 0 && dir[len - 1] == '/')
		len--;
	if (len == 0)
		return path[0] == '/';
	return strncmp(path, dir, len) == 0 && (path[len] == '\0' || path[len] == '/');
}

/* Drop the last segment of out[0, *len): "/a/b" becomes "/a", "/a" becomes "". */
static void
pop_segment(const char *out, size_t *len)
{
	while (*len > 0 && out[*len - 1] != '/')
		(*len)--;
	if (*len > 0)
		(*len)--;
}

/*
 * Segments that do not fit in out are counted in `over` instead of written:
 * a ".." later may take them back, so only what is left at the end has to
 * fit ("/<5000 bytes>/.." is "/").
 */
int
kw_path_normalise(const char *path, char *out, size_t outlen)
{
	size_t len = 0, over = 0;
	const char *p = path;

	if (path[0] != '/' || outlen < 2)
		return KW_ERR_INVALID;
	while (*p) {
		const char *s = p, *e;
		size_t n;

		while (*s == '/')
			s++;
		e = strchrnul(s, '/');
		n = (size_t)(e - s);
		p = e;
		if (n == 0 || (n == 1 && s[0] == '.'))
			continue;
		if (n == 2 && s[0] == '.' && s[1] == '.') {
			if (over > 0)
				over--;
			else
				pop_segment(out, &len);
			continue;
		}
		if (over > 0 || len + 1 + n >= outlen) {
			over++;
			continue;
		}
		out[len++] = '/';
		memcpy(out + len, s, n);
		len += n;
	}
	if (over > 0)
		return KW_ERR_INVALID;
	if (len == 0)
		out[len++] = '/';
	out[len] = '\0';
	return 0;
}

/* Room for cwd or home, "/" and a path, each up to PATH_MAX. */
#define JOIN_MAX	(2 * PATH_MAX + 2)
/* The kernel's limit on links followed in one lookup (MAXSYMLINKS). */
#define LINKS_MAX	40

/* path with "~" and cwd applied, not yet normalised. */
static int
join(const char *path, const char *cwd, const char *home, char *out, size_t outlen)
{
	const char *base = NULL, *sep = "", *rest = path;
	int n;

	if (path[0] == '\0')
		return KW_ERR_INVALID;
	if (path[0] == '~') {
		/* "~user" would need the password database: the caller decides. */
		if (path[1] != '\0' && path[1] != '/')
			return KW_ERR_INVALID;
		base = home;
		rest = path + 1;
	} else if (path[0] != '/') {
		base = cwd;
		sep = "/";
	}
	/* A relative cwd or home would leave the path relative. */
	if (base && base[0] != '/')
		return KW_ERR_INVALID;
	n = snprintf(out, outlen, "%s%s%s", base ? base : "", sep, rest);
	if (n < 0 || (size_t)n >= outlen)
		return KW_ERR_INVALID;
	return 0;
}

/* Where the k-th segment of path ends (k = 0: path itself, the root). */
static const char *
segment_end(const char *path, size_t k)
{
	const char *p = path;

	for (; k > 0; k--) {
		while (*p == '/')
			p++;
		p = strchrnul(p, '/');
	}
	return p;
}

static size_t
count_segments(const char *path)
{
	size_t n = 0;

	for (const char *p = path; *(p = p + strspn(p, "/")) != '\0'; n++)
		p = strchrnul(p, '/');
	return n;
}

static bool
resolves(const char *path, size_t len, char *real)
{
	char prefix[PATH_MAX];

	if (len == 0)
		len = 1;	/* the root */
	if (len >= sizeof(prefix))
		return false;
	memcpy(prefix, path, len);
	prefix[len] = '\0';
	return realpath(prefix, real) != NULL;
}

/*
 * The longest prefix of path (whole segments) realpath(3) resolves: its
 * length, and its resolution in real (PATH_MAX).  A prefix resolves only
 * when every shorter one does, so a binary search finds it in log(depth)
 * calls: a deep path of missing names costs no more than a short one.
 */
static size_t
resolving_prefix(const char *path, char *real)
{
	size_t lo = 0, hi = count_segments(path);

	while (lo < hi) {
		size_t mid = lo + (hi - lo + 1) / 2;

		if (resolves(path, (size_t)(segment_end(path, mid) - path), real))
			lo = mid;
		else
			hi = mid - 1;
	}
	if (!resolves(path, (size_t)(segment_end(path, lo) - path), real))
		strcpy(real, "/");
	return (size_t)(segment_end(path, lo) - path);
}

/*
 * If the segment at rest ("/name/...") under dir is a symbolic link,
 * write into out where the path leads through it.  false when it is not
 * one (or cannot be read).
 */
static bool
through_link(const char *dir, const char *rest, char *out, size_t outlen)
{
	char link[PATH_MAX], target[PATH_MAX];
	const char *name = rest + strspn(rest, "/"), *after = strchrnul(name, '/');
	struct stat st;
	ssize_t n;
	int w;

	w = snprintf(link, sizeof(link), "%s/%.*s", dir, (int)(after - name), name);
	if (w < 0 || (size_t)w >= sizeof(link) || lstat(link, &st) != 0 || !S_ISLNK(st.st_mode))
		return false;
	n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0)
		return false;
	target[n] = '\0';
	w = snprintf(out, outlen, "%s%s%s%s", target[0] == '/' ? "" : dir,
	    target[0] == '/' ? "" : "/", target, after);
	return w >= 0 && (size_t)w < outlen;
}

/*
 * ->real: realpath(3) of the longest prefix that resolves, the rest
 * appended lexically.  A link whose target does not exist stops realpath
 * but not a tool creating the file: it is followed here too, up to the
 * kernel's limit, so ->real says where a write would land.
 */
static int
resolve_real(const char *joined, struct kw_resolved *r)
{
	char cur[JOIN_MAX], next[JOIN_MAX], base[PATH_MAX];
	const char *rest;

	strcpy(cur, joined);
	for (int hops = 0;; hops++) {
		rest = cur + resolving_prefix(cur, base);
		if (*rest == '\0' || hops == LINKS_MAX ||
		    !through_link(base, rest, next, sizeof(next)))
			break;
		r->is_link = true;
		strcpy(cur, next);
	}
	if (snprintf(next, sizeof(next), "%s/%s", base, rest) >= (int)sizeof(next))
		return KW_ERR_INVALID;
	return kw_path_normalise(next, r->real, sizeof(r->real));
}

/* Whether a prefix of path (absolute, normalised) is a symbolic link. */
static bool
passes_link(const char *path)
{
	char prefix[PATH_MAX];
	size_t n = count_segments(path);
	struct stat st;

	for (size_t k = 1; k <= n; k++) {
		size_t len = (size_t)(segment_end(path, k) - path);

		memcpy(prefix, path, len);
		prefix[len] = '\0';
		if (lstat(prefix, &st) != 0)
			return false;
		if (S_ISLNK(st.st_mode))
			return true;
	}
	return false;
}

/* Whether path has a ".." segment (which the kernel walks physically, through links). */
static bool
has_dotdot(const char *path)
{
	for (const char *p = strstr(path, ".."); p; p = strstr(p + 2, ".."))
		if ((p == path || p[-1] == '/') && (p[2] == '/' || p[2] == '\0'))
			return true;
	return false;
}

/*
 * lstat each prefix of path (absolute, normalised) from the root: true when
 * none is a symbolic link up to the first that does not exist (then nothing
 * below it exists either), with *ret_exists whether the whole path does.
 * false when a link was met: the caller resolves it.
 */
/* The segments of path a cached plain directory already covers. */
static size_t
cached_segments(const struct kw_path_cache *c, const char *path)
{
	size_t best = 0;

	for (size_t i = 0; c && i < KW_PATH_CACHE_SLOTS; i++) {
		size_t len = strlen(c->dir[i]);
		if (len > 1 && strncmp(path, c->dir[i], len) == 0 &&
		    (path[len] == '/' || path[len] == '\0') && count_segments(c->dir[i]) > best)
			best = count_segments(c->dir[i]);
	}
	return best;
}

static void
cache_dir(struct kw_path_cache *c, const char *dir, size_t len)
{
	if (!c || len >= sizeof(c->dir[0]) || len < 2)
		return;
	memcpy(c->dir[c->next], dir, len);
	c->dir[c->next][len] = '\0';
	c->next = (c->next + 1) % KW_PATH_CACHE_SLOTS;
}

static bool
plain_walk(const char *path, struct kw_path_cache *cache, bool *ret_exists)
{
	char prefix[PATH_MAX];
	size_t n = count_segments(path), parent = 0;
	struct stat st;

	*ret_exists = true;
	for (size_t k = cached_segments(cache, path) + 1; k <= n; k++) {
		size_t len = (size_t)(segment_end(path, k) - path);

		if (len >= sizeof(prefix))
			return false;
		memcpy(prefix, path, len);
		prefix[len] = '\0';
		if (lstat(prefix, &st) != 0) {
			*ret_exists = false;
			return errno == ENOENT || errno == ENOTDIR;
		}
		if (S_ISLNK(st.st_mode))
			return false;
		if (S_ISDIR(st.st_mode) && k < n)
			parent = len;
	}
	/* The deepest directory walked is plain: the next path under it starts there. */
	cache_dir(cache, path, parent);
	return true;
}

int
kw_path_resolve(const char *path, const char *cwd, const char *home, bool fs,
    struct kw_resolved *ret)
{
	return kw_path_resolve_cached(path, cwd, home, fs, NULL, ret);
}

int
kw_path_resolve_cached(const char *path, const char *cwd, const char *home, bool fs,
    struct kw_path_cache *cache, struct kw_resolved *ret)
{
	struct kw_resolved r = { .exists = false, .is_link = false };
	char joined[JOIN_MAX];
	struct stat st;
	int e;

	if ((e = join(path, cwd, home, joined, sizeof(joined))) != 0 ||
	    (e = kw_path_normalise(joined, r.lexical, sizeof(r.lexical))) != 0)
		return e;
	if (!fs) {
		strcpy(r.real, r.lexical);
		goto out;
	}
	/* Most paths pass through no link: one lstat per segment says so. */
	if (!has_dotdot(joined) && plain_walk(r.lexical, cache, &r.exists)) {
		strcpy(r.real, r.lexical);
		goto out;
	}
	/*
	 * Through a link, to a path that exists: one realpath(3) answers.  A
	 * path that resolves to its own lexical spelling passes through no link
	 * (a link always leads elsewhere); one that resolves elsewhere does.
	 */
	if (realpath(joined, r.real) && lstat(joined, &st) == 0) {
		r.exists = true;
		r.is_link = strcmp(r.real, r.lexical) != 0;
		goto out;
	}
	if ((e = resolve_real(joined, &r)) != 0)
		return e;
	/* The path as written: the kernel walks its ".." physically. */
	r.exists = lstat(joined, &st) == 0;
	r.is_link = r.is_link || passes_link(r.lexical) || strcmp(r.real, r.lexical) != 0;
 out:
	*ret = r;
	return 0;
}
