/*
 * fsutil.c - private directories, atomic file replacement, key files.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sodium.h>
#include <stdio.h>
#include <sodium.h>
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

static int
fsync_dir_of(const char *path)
{
	char copy[4096];
	int fd, r;

	if (strlen(path) >= sizeof(copy))
		return -1;
	strcpy(copy, path);
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
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

int
kw_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[4096];
	const char *p = data;
	int fd = -1, saved;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return KW_ERR_IO;
	}
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
		return KW_ERR_IO;
	if (fchmod(fd, mode) < 0 || kw_write_all(fd, p, len) < 0)
		goto fail;
	if (fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto fail;
	/* The rename is durable only once the directory entry is. */
	if (fsync_dir_of(path) < 0)
		return KW_ERR_IO;
	return 0;
 fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = saved;
	return KW_ERR_IO;
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

int
kw_read_key_file(const char *path, unsigned char *key, size_t len, char *err, size_t err_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	struct stat st;
	ssize_t n;

	if (fd < 0 && errno == ENOENT)
		return KW_ERR_NOT_FOUND;
	if (fd < 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return KW_ERR_IO;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) ||
	    st.st_size != (off_t)len) {
		snprintf(err, err_len, "%s: must be a %zu-byte file of mode 0600", path, len);
		return KW_ERR_IO;
	}
	do
		n = read(fd, key, len);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)len) {
		snprintf(err, err_len, "%s: %s", path, n < 0 ? strerror(errno) : "short read");
		sodium_memzero(key, len);
		return KW_ERR_IO;
	}
	return 0;
}
