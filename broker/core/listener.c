/*
 * server.c - the listening socket (see server.h).
 */
#include <errno.h>
#include <fcntl.h>
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

static int
take_lock(const char *path, int *ret_lock_fd, char *err, size_t err_len)
{
	char lock[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
	int fd;

	snprintf(lock, sizeof(lock), "%s.lock", path);
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(err, err_len, "%s: %s", lock, strerror(errno));
		return KW_ERR_IO;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(err, err_len, "%s: in use by a running broker (%s is locked)", path, lock);
		close(fd);
		return KW_ERR_BUSY;
	}
	*ret_lock_fd = fd;
	return 0;
}

/* Decide what to do with whatever already sits at path. */
static int
clear_stale(const char *path, const struct sockaddr_un *sa, char *err, size_t err_len)
{
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0)
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
	if (unlink(path) < 0) {
		snprintf(err, err_len, "%s: removing stale socket: %s", path, strerror(errno));
		return KW_ERR_IO;
	}
	return 0;
}

int
kw_server_listen(const char *path, mode_t mode, int *ret_fd, int *ret_lock_fd,
    char *err, size_t err_len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_free_ char *dir = NULL;
	int fd = -1, lock_fd = -1, r;
	mode_t old;

	if (strlen(path) >= sizeof(sa.sun_path) || path[0] != '/') {
		snprintf(err, err_len, "%s: socket path must be absolute and shorter than %zu bytes",
		    path, sizeof(sa.sun_path));
		return KW_ERR_CONFIG;
	}
	strcpy(sa.sun_path, path);
	/* Clients must reach the socket, so its directory is searchable (0755). */
	if ((dir = strdup(path)) && strrchr(dir, '/') != dir) {
		*strrchr(dir, '/') = '\0';
		old = umask(022);
		r = kw_mkdir_p(dir, 0755);
		umask(old);
		if (r < 0) {
			snprintf(err, err_len, "%s: %s", dir, strerror(errno));
			return KW_ERR_IO;
		}
	}
	if ((r = take_lock(path, &lock_fd, err, err_len)) < 0)
		return r;
	if ((r = clear_stale(path, &sa, err, err_len)) < 0)
		goto fail;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail_errno;
	old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || chmod(path, mode) < 0 || listen(fd, 512) < 0)
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
