/*
 * server.c - the listening socket (see server.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "client/keywarden.h"
#include "broker/core/listener.h"

/*
 * The socket's directory: it and every directory above it must be the
 * trusted kind (fsutil.h: root's or the broker's user's, writable by no one
 * else, links only of theirs).  Made 0755 when missing, so clients can
 * reach the socket.  Its fd, or a code with err naming what is wrong.
 */
static int
socket_dir(const char *path, char *err, size_t err_len)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)], why[1024];
	size_t n = (size_t)(strrchr(path, '/') - path);
	mode_t old;
	int r, fd;

	memcpy(dir, path, n);
	dir[n] = '\0';
	if (n == 0)
		strcpy(dir, "/");
	if ((r = kw_check_dir_chain(dir, why, sizeof(why))) == KW_ERR_NOT_FOUND) {
		old = umask(022);
		r = kw_mkdir_p(dir, 0755);
		umask(old);
		if (r < 0) {
			snprintf(err, err_len, "%s: %s", dir, strerror(errno));
			return KW_ERR_IO;
		}
		r = kw_check_dir_chain(dir, why, sizeof(why));
	}
	if (r < 0) {
		snprintf(err, err_len, "broker.socket %s: %s", path, why);
		return r;
	}
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, err_len, "%s: %s", dir, strerror(errno));
		return KW_ERR_IO;
	}
	return fd;
}

static int
take_lock(int dfd, const char *path, const char *name, int *ret_lock_fd, char *err,
    size_t err_len)
{
	char lock[NAME_MAX + 1], why[384];
	int fd;

	if ((size_t)snprintf(lock, sizeof(lock), "%s.lock", name) >= sizeof(lock)) {
		snprintf(err, err_len, "%s: %s", path, strerror(ENAMETOOLONG));
		return KW_ERR_CONFIG;
	}
	/* Not a link, and not another user's file (who could hold its lock). */
	if ((fd = kw_open_private(dfd, lock, O_RDWR | O_CREAT, 0600, why, sizeof(why))) < 0) {
		snprintf(err, err_len, "%s.lock: %s", path, why);
		return fd == KW_ERR_NOT_FOUND ? KW_ERR_IO : fd;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(err, err_len, "%s: in use by a running broker (%s.lock is locked)", path,
		    path);
		close(fd);
		return KW_ERR_BUSY;
	}
	*ret_lock_fd = fd;
	return 0;
}

/* Decide what to do with whatever already sits at name (path) under dfd. */
static int
clear_stale(int dfd, const char *path, const char *name, const struct sockaddr_un *sa,
    char *err, size_t err_len)
{
	struct stat st;
	int fd, r;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : (snprintf(err, err_len, "%s: %s", path,
		    strerror(errno)), KW_ERR_IO);
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, err_len, "%s: exists and is not a socket; not removing it", path);
		return KW_ERR_IO;
	}
	/* A broker that predates the lock, or runs in another mount view, may answer. */
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		snprintf(err, err_len, "socket: %s", strerror(errno));
		return KW_ERR_IO;
	}
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	if (r == 0) {
		snprintf(err, err_len, "%s: in use by a live broker", path);
		return KW_ERR_BUSY;
	}
	if (unlinkat(dfd, name, 0) < 0) {
		snprintf(err, err_len, "%s: removing stale socket: %s", path, strerror(errno));
		return KW_ERR_IO;
	}
	return 0;
}

/*
 * Bind with the umask that gives the socket `mode` as it is made: there is
 * no chmod by path afterwards (it would follow whatever sits at the path by
 * then).  What was made is checked: our socket, with that mode.
 */
static int
bind_with_mode(int fd, int dfd, const char *name, const struct sockaddr_un *sa, mode_t mode)
{
	struct stat st;
	mode_t old = umask(~mode & 0777);
	int r = bind(fd, (const struct sockaddr *)sa, sizeof(*sa));

	umask(old);
	if (r < 0 || fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 0777) != (mode & 0777)) {
		errno = EEXIST;
		return -1;
	}
	return 0;
}

int
kw_server_listen(const char *path, mode_t mode, int *ret_fd, int *ret_lock_fd,
    char *err, size_t err_len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int dfd = -1;
	const char *name;
	int fd = -1, lock_fd = -1, r;

	if (strlen(path) >= sizeof(sa.sun_path) || path[0] != '/') {
		snprintf(err, err_len, "%s: socket path must be absolute and shorter than %zu bytes",
		    path, sizeof(sa.sun_path));
		return KW_ERR_CONFIG;
	}
	strcpy(sa.sun_path, path);
	name = strrchr(path, '/') + 1;
	if ((dfd = socket_dir(path, err, err_len)) < 0)
		return dfd;
	if ((r = take_lock(dfd, path, name, &lock_fd, err, err_len)) < 0)
		return r;
	if ((r = clear_stale(dfd, path, name, &sa, err, err_len)) < 0)
		goto fail;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind_with_mode(fd, dfd, name, &sa, mode) < 0 || listen(fd, 512) < 0)
		goto fail_errno;
	*ret_fd = fd;
	*ret_lock_fd = lock_fd;
	return 0;
 fail_errno:
	snprintf(err, err_len, "%s: %s", path, strerror(errno));
	r = KW_ERR_IO;
 fail:
	if (fd >= 0)
		close(fd);
	close(lock_fd);
	return r;
}

void
kw_server_close(const char *path, int fd, int lock_fd)
{
	if (fd >= 0) {
		close(fd);
		unlink(path);
	}
	if (lock_fd >= 0)
		close(lock_fd);
}
