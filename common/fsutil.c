/*
 * fsutil.c - private directories, atomic file replacement, key files, and
 * the trust rule for what the broker reads (see fsutil.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/errors.h"

int
kw_mkdir_p(const char *dir, mode_t mode)
{
	char path[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return KW_ERR_IO;
	}
	memcpy(path, dir, n + 1);
	for (char *p = path + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(path, mode) < 0 && errno != EEXIST)
			return KW_ERR_IO;
		*p = saved;
		if (saved == '\0')
			break;
	}
	struct stat st;
	if (stat(dir, &st) < 0)
		return KW_ERR_IO;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return KW_ERR_IO;
	}
	return 0;
}

int
kw_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return KW_ERR_IO;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* What kw_read_fd read may be a secret (a key on stdin, a .env file): wiped before it goes. */
static void
wipe_free(char *p, size_t n)
{
	sodium_memzero(p, n);
	free(p);
}

int
kw_read_fd(int fd, size_t max, char **ret_data, size_t *ret_len)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap + 1);

	if (!buf)
		return KW_ERR_NOMEM;
	for (;;) {
		if (len == cap) {
			if (cap > max) {
				wipe_free(buf, cap + 1);
				return KW_ERR_INVALID;
			}
			/* Not realloc: it would leave the old block unwiped. */
			char *nb = malloc(cap * 2 + 1);
			if (!nb) {
				wipe_free(buf, cap + 1);
				return KW_ERR_NOMEM;
			}
			memcpy(nb, buf, len);
			wipe_free(buf, cap + 1);
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int saved = errno;
			wipe_free(buf, cap + 1);
			errno = saved;
			return KW_ERR_IO;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > max) {
		wipe_free(buf, cap + 1);
		return KW_ERR_INVALID;
	}
	buf[len] = '\0';
	*ret_data = buf;
	*ret_len = len;
	return 0;
}


/* ---- the trust rule --------------------------------------------------------- */

bool
kw_owner_trusted(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

/* "alice (uid 2001)", or "uid 2001" for a uid without a name. */
static const char *
owner_text(uid_t uid, char *buf, size_t len)
{
	struct passwd *pw = getpwuid(uid);

	if (pw)
		snprintf(buf, len, "%.32s (uid %u)", pw->pw_name, (unsigned)uid);
	else
		snprintf(buf, len, "uid %u", (unsigned)uid);
	return buf;
}

/*
 * Why st (of a file or directory) is not trusted, into why; false when it
 * is.  ancestor: a directory above the one in use, which may be root's
 * and sticky.
 */
static bool
untrusted(const struct stat *st, bool ancestor, char *why, size_t len)
{
	bool dir = S_ISDIR(st->st_mode);
	char owner[64], me[80];

	if (!kw_owner_trusted(st->st_uid)) {
		if (geteuid() == 0)
			snprintf(me, sizeof(me), "root");
		else
			snprintf(me, sizeof(me), "root or the broker's user, %s",
			    owner_text(geteuid(), owner, sizeof(owner)));
		snprintf(why, len, "is owned by %s, not by %s: that user chooses what the broker "
		    "reads %s. %s", owner_text(st->st_uid, owner, sizeof(owner)), me,
		    dir ? "under it" : "there", dir ? "Check what is in it, then give it to root "
		    "(chown), or choose a directory of root's" : "Check it, then give it to root "
		    "(chown), or restore it from a backup");
		return true;
	}
	if (!(st->st_mode & 022))
		return false;
	if (ancestor && dir && (st->st_mode & S_ISVTX) && st->st_uid == 0)
		return false;
	snprintf(why, len, "is writable by %s (mode %04o): others can replace what the broker "
	    "reads %s. Check it, then chmod go-w it", (st->st_mode & 020) ?
	    ((st->st_mode & 002) ? "its group and others" : "its group") : "others",
	    (unsigned)(st->st_mode & 07777), dir ? "under it" : "there");
	return true;
}

/* A link's refusal, into why. */
static void
link_refused(const struct stat *st, char *why, size_t len)
{
	char owner[64];

	snprintf(why, len, "is a symbolic link (owned by %s); the broker opens nothing in "
	    "its directories through a link: remove it and put the real file there",
	    owner_text(st->st_uid, owner, sizeof(owner)));
}

int
kw_check_dir_chain(const char *dir, char *err, size_t err_len)
{
	char todo[2 * PATH_MAX], tmp[2 * PATH_MAX], cur[PATH_MAX] = "", next[PATH_MAX];
	char target[PATH_MAX], why[384];
	const char *rest;
	struct stat st;
	int links = 0;

	if (dir[0] == '/') {
		if ((size_t)snprintf(todo, sizeof(todo), "%s", dir) >= sizeof(todo))
			goto too_long;
	} else {
		if (!getcwd(cur, sizeof(cur))) {
			snprintf(err, err_len, "%s: the current directory: %s", dir, strerror(errno));
			return KW_ERR_IO;
		}
		if ((size_t)snprintf(todo, sizeof(todo), "%s/%s", cur, dir) >= sizeof(todo))
			goto too_long;
		cur[0] = '\0';
	}
	/* cur is the resolved prefix ("" is /): no link in it, each part checked. */
	if (lstat("/", &st) < 0 || untrusted(&st, true, why, sizeof(why)))
		goto refused_root;
	for (rest = todo; ; ) {
		const char *name, *end;
		size_t n;

		while (*rest == '/')
			rest++;
		if (!*rest)
			break;
		name = rest;
		end = strchrnul(rest, '/');
		n = (size_t)(end - rest);
		rest = end;
		if (n == 1 && name[0] == '.')
			continue;
		if (n == 2 && name[0] == '.' && name[1] == '.') {
			char *slash = strrchr(cur, '/');
			if (slash)
				*slash = '\0';
			continue;
		}
		if ((size_t)snprintf(next, sizeof(next), "%s/%.*s", cur, (int)n, name) >=
		    sizeof(next))
			goto too_long;
		if (lstat(next, &st) < 0) {
			snprintf(err, err_len, "%s: %s", next, errno == ENOENT ? "does not exist" :
			    strerror(errno));
			return errno == ENOENT ? KW_ERR_NOT_FOUND : KW_ERR_IO;
		}
		if (S_ISLNK(st.st_mode)) {
			ssize_t tl;

			/* Its directory is trusted; whoever made the link chose where it leads. */
			if (!kw_owner_trusted(st.st_uid)) {
				char owner[64];
				snprintf(err, err_len, "%s is a symbolic link owned by %s, not by root or "
				    "the broker's user: that user chooses where it leads. Remove it and "
				    "put a directory of root's there", next,
				    owner_text(st.st_uid, owner, sizeof(owner)));
				return KW_ERR_CONFIG;
			}
			if (++links > 40 || (tl = readlink(next, target, sizeof(target) - 1)) < 0) {
				snprintf(err, err_len, "%s: %s", next, links > 40 ? strerror(ELOOP) :
				    strerror(errno));
				return KW_ERR_IO;
			}
			target[tl] = '\0';
			if ((size_t)snprintf(tmp, sizeof(tmp), "%s/%s", target, rest) >= sizeof(tmp))
				goto too_long;
			memcpy(todo, tmp, sizeof(todo));
			rest = todo;
			if (target[0] == '/')
				cur[0] = '\0';
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			snprintf(err, err_len, "%s is not a directory", next);
			return KW_ERR_CONFIG;
		}
		if (untrusted(&st, true, why, sizeof(why))) {
			snprintf(err, err_len, "%s %s", next, why);
			return KW_ERR_CONFIG;
		}
		memcpy(cur, next, sizeof(cur));
	}
	/* The directory in use itself: no one else may write it, sticky or not. */
	if (lstat(cur[0] ? cur : "/", &st) < 0) {
		snprintf(err, err_len, "%s: %s", cur[0] ? cur : "/", strerror(errno));
		return KW_ERR_IO;
	}
	if (untrusted(&st, false, why, sizeof(why))) {
		snprintf(err, err_len, "%s %s", cur[0] ? cur : "/", why);
		return KW_ERR_CONFIG;
	}
	return 0;
 refused_root:
	snprintf(err, err_len, "/ %s", why);
	return KW_ERR_CONFIG;
 too_long:
	snprintf(err, err_len, "%.200s...: %s", dir, strerror(ENAMETOOLONG));
	return KW_ERR_IO;
}

/* After an open of name under dirfd failed with errno e: why, and the code. */
static int
open_failed(int dirfd, const char *name, int e, bool want_dir, char *why, size_t len)
{
	struct stat st;

	if (e == ENOENT) {
		snprintf(why, len, "does not exist");
		return KW_ERR_NOT_FOUND;
	}
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISLNK(st.st_mode)) {
			link_refused(&st, why, len);
			return KW_ERR_CONFIG;
		}
		if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
			snprintf(why, len, "is not a %s", want_dir ? "directory" : "regular file");
			return KW_ERR_CONFIG;
		}
	}
	snprintf(why, len, "%s", strerror(e));
	errno = e;
	return KW_ERR_IO;
}

int
kw_open_private(int dirfd, const char *name, int flags, mode_t mode, char *why, size_t why_len)
{
	/* Truncated only once trusted; a FIFO must not block the open. */
	bool trunc = flags & O_TRUNC;
	int fd = openat(dirfd, name, (flags & ~O_TRUNC) | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK, mode);
	struct stat st;
	int fl;

	if (fd < 0)
		return open_failed(dirfd, name, errno, false, why, why_len);
	if (fstat(fd, &st) < 0) {
		snprintf(why, why_len, "%s", strerror(errno));
		goto fail_io;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, why_len, "is not a regular file");
		close(fd);
		return KW_ERR_CONFIG;
	}
	if (untrusted(&st, false, why, why_len)) {
		close(fd);
		return KW_ERR_CONFIG;
	}
	if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0 ||
	    (trunc && ftruncate(fd, 0) < 0)) {
		snprintf(why, why_len, "%s", strerror(errno));
		goto fail_io;
	}
	return fd;
 fail_io:
	close(fd);
	return KW_ERR_IO;
}

int
kw_open_dir_of(const char *path, const char **ret_name)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];

	if (!slash) {
		*ret_name = path;
		return open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if ((size_t)(slash - path) >= sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash == path ? 1 : slash - path] = '\0';
	if (slash == path)
		dir[0] = '/';
	*ret_name = slash + 1;
	return open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

int
kw_open_private_path(const char *path, int flags, mode_t mode, char *err, size_t err_len)
{
	char why[384];
	const char *name;
	_cleanup_close_ int dfd = kw_open_dir_of(path, &name);
	int fd;

	if (dfd < 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? KW_ERR_NOT_FOUND : KW_ERR_IO;
	}
	if ((fd = kw_open_private(dfd, name, flags, mode, why, sizeof(why))) < 0)
		snprintf(err, err_len, "%s: %s", path, why);
	return fd;
}

int
kw_open_dir_private(int dirfd, const char *name, mode_t create_mode, char *why, size_t why_len)
{
	struct stat st;
	int fd;

	if (create_mode && mkdirat(dirfd, name, create_mode) < 0 && errno != EEXIST) {
		snprintf(why, why_len, "%s", strerror(errno));
		return errno == ENOENT ? KW_ERR_NOT_FOUND : KW_ERR_IO;
	}
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return open_failed(dirfd, name, errno, true, why, why_len);
	if (fstat(fd, &st) < 0) {
		snprintf(why, why_len, "%s", strerror(errno));
		close(fd);
		return KW_ERR_IO;
	}
	if (untrusted(&st, false, why, why_len)) {
		close(fd);
		return KW_ERR_CONFIG;
	}
	return fd;
}

int
kw_check_file_at(int dirfd, const char *name, struct stat *ret_st, char *why, size_t why_len)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		snprintf(why, why_len, "%s", errno == ENOENT ? "does not exist" : strerror(errno));
		return errno == ENOENT ? KW_ERR_NOT_FOUND : KW_ERR_IO;
	}
	if (ret_st)
		*ret_st = st;
	if (S_ISLNK(st.st_mode)) {
		link_refused(&st, why, why_len);
		return KW_ERR_CONFIG;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, why_len, "is not a regular file");
		return KW_ERR_CONFIG;
	}
	return untrusted(&st, false, why, why_len) ? KW_ERR_CONFIG : 0;
}

/* ---- atomic replacement and key files ---------------------------------------- */

int
kw_write_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode)
{
	return kw_write_atomic_owned_at(dirfd, name, data, len, mode, (uid_t)-1, (gid_t)-1);
}

int
kw_atomic_open_at(int dirfd, const char *name, mode_t mode, uid_t uid, gid_t gid,
    char *ret_tmp, size_t tmp_len)
{
	int fd = -1, saved;

	for (int tries = 0; fd < 0 && tries < 16; tries++) {
		if ((size_t)snprintf(ret_tmp, tmp_len, "%s.tmp.%08x", name,
		    (unsigned)randombytes_random()) >= tmp_len) {
			errno = ENAMETOOLONG;
			return KW_ERR_IO;
		}
		fd = openat(dirfd, ret_tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    0600);
		if (fd < 0 && errno != EEXIST)
			return KW_ERR_IO;
	}
	if (fd < 0)
		return KW_ERR_IO;
	/* The owner before the mode: chown clears set-id bits. */
	if (((uid != (uid_t)-1 || gid != (gid_t)-1) && fchown(fd, uid, gid) < 0) ||
	    fchmod(fd, mode) < 0) {
		saved = errno;
		kw_atomic_abort_at(dirfd, fd, ret_tmp);
		errno = saved;
		return KW_ERR_IO;
	}
	return fd;
}

int
kw_atomic_commit_at(int dirfd, int fd, const char *tmp, const char *name)
{
	int saved;

	if (fsync(fd) < 0) {
		saved = errno;
		kw_atomic_abort_at(dirfd, fd, tmp);
		errno = saved;
		return KW_ERR_IO;
	}
	if (close(fd) < 0 || renameat(dirfd, tmp, dirfd, name) < 0) {
		saved = errno;
		kw_atomic_abort_at(dirfd, -1, tmp);
		errno = saved;
		return KW_ERR_IO;
	}
	/* The rename is durable only once the directory entry is. */
	return fsync(dirfd) < 0 ? KW_ERR_IO : 0;
}

void
kw_atomic_abort_at(int dirfd, int fd, const char *tmp)
{
	int saved = errno;

	if (fd >= 0)
		close(fd);
	(void)unlinkat(dirfd, tmp, 0);
	errno = saved;
}

int
kw_write_atomic_owned_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
    uid_t uid, gid_t gid)
{
	char tmp[NAME_MAX + 1];
	int fd = kw_atomic_open_at(dirfd, name, mode, uid, gid, tmp, sizeof(tmp));

	if (fd < 0)
		return KW_ERR_IO;
	if (kw_write_all(fd, data, len) < 0) {
		kw_atomic_abort_at(dirfd, fd, tmp);
		return KW_ERR_IO;
	}
	return kw_atomic_commit_at(dirfd, fd, tmp, name);
}

int
kw_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	const char *name;
	_cleanup_close_ int dfd = kw_open_dir_of(path, &name);

	if (dfd < 0)
		return KW_ERR_IO;
	return kw_write_atomic_at(dfd, name, data, len, mode);
}

int
kw_read_key_file(int dirfd, const char *name, unsigned char *key, size_t len, char *why,
    size_t why_len)
{
	_cleanup_close_ int fd = kw_open_private(dirfd, name, O_RDONLY, 0, why, why_len);
	struct stat st;
	ssize_t n;

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0 || (st.st_mode & 077) || st.st_size != (off_t)len) {
		snprintf(why, why_len, "must be a %zu-byte file of mode 0600", len);
		return KW_ERR_IO;
	}
	do
		n = read(fd, key, len);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)len) {
		snprintf(why, why_len, "%s", n < 0 ? strerror(errno) : "short read");
		sodium_memzero(key, len);
		return KW_ERR_IO;
	}
	return 0;
}
