/*
 * fsutil.h - careful file system helpers: private directories, atomic
 * replacement of small files, and key files.
 */
#ifndef KW_FSUTIL_H
#define KW_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

#include "common/macros.h"

/*
 * Create dir and its missing parents with `mode` (parents that exist are
 * left alone).  An existing dir is accepted as it is.  0 or KW_ERR_IO with
 * errno set.
 */
int kw_mkdir_p(const char *dir, mode_t mode) KW_WUR KW_NONNULL(1);

/*
 * Replace `path` with data[0..len) so that readers see the old or the new
 * content, never a mix: write a temporary file in the same directory with
 * `mode`, fsync it, rename it over path, fsync the directory.  0 or
 * KW_ERR_IO with errno set; the temporary file is removed on failure.
 */
int kw_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
	KW_WUR KW_NONNULL(1, 2);

/*
 * Read a key file of exactly len bytes into key (the caller's secure
 * memory): a regular file, not a symlink, that neither group nor others
 * may read.  0; KW_ERR_NOT_FOUND when there is none; KW_ERR_IO with the
 * reason, naming path, in err.  key holds nothing on failure.
 */
int kw_read_key_file(const char *path, unsigned char *key, size_t len, char *err,
    size_t err_len) KW_WUR KW_NONNULL(1, 2, 4);

/* Write all of p[0..n) to fd, through short writes and EINTR.  0 or KW_ERR_IO (errno). */
int kw_write_all(int fd, const void *p, size_t n) KW_WUR KW_NONNULL(2);

/*
 * Read a whole regular file of at most max bytes through an open fd.
 * *ret_data is malloc'd and NUL-terminated; 0, KW_ERR_IO, KW_ERR_NOMEM or
 * KW_ERR_INVALID when larger than max.
 */
int kw_read_fd(int fd, size_t max, char **ret_data, size_t *ret_len)
	KW_WUR KW_NONNULL(3, 4);

#endif
