/*
 * fsutil.h - careful file system helpers: private directories, atomic
 * replacement of small files, key files, and the trust rule for what the
 * broker reads from disk.
 *
 * The trust rule (sshd's StrictModes): what the broker reads must be
 * changeable only by root or the broker's own user.  A file or directory
 * is trusted when it is owned by root or by the effective uid, and neither
 * its group nor others may write it.  A directory above the one in use
 * may also be root's and sticky (/tmp: others cannot rename or remove
 * what is not theirs there).  A symbolic link is never opened as a file;
 * on the way to a directory it is followed only when root or the broker's
 * user owns it.  Refusals return KW_ERR_CONFIG: an administrator must look.
 */
#ifndef KW_FSUTIL_H
#define KW_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "common/macros.h"

/*
 * Create dir and its missing parents with `mode` (parents that exist are
 * left alone).  An existing dir is accepted as it is.  0 or KW_ERR_IO with
 * errno set.
 */
int kw_mkdir_p(const char *dir, mode_t mode) KW_WUR KW_NONNULL(1);

/* True when uid may own what the broker trusts: root or the effective uid. */
bool kw_owner_trusted(uid_t uid);

/*
 * Check dir and every directory above it against the trust rule, following
 * symbolic links on the way (only root's or the broker's user's) and
 * checking where they lead.  dir itself must be a directory that neither
 * group nor others may write, sticky or not.  0; KW_ERR_NOT_FOUND when a
 * component does not exist (those above it passed; err names it);
 * KW_ERR_CONFIG when one is not trusted (err names it, says what is wrong
 * and what to do); KW_ERR_IO.
 */
int kw_check_dir_chain(const char *dir, char *err, size_t err_len)
	KW_WUR KW_NONNULL(1, 2);

/*
 * Open name under dirfd (a directory fd or AT_FDCWD) without following a
 * symbolic link, creating it with mode under O_CREAT.  The file must be a
 * regular file under the trust rule; O_TRUNC applies only once it passed.
 * The fd (O_CLOEXEC), or KW_ERR_NOT_FOUND, KW_ERR_CONFIG (a link, not a
 * regular file, another user's, writable by others), KW_ERR_IO; `why`
 * says why, without the path (the caller names it).
 */
int kw_open_private(int dirfd, const char *name, int flags, mode_t mode, char *why,
    size_t why_len) KW_WUR KW_NONNULL(2, 5);

/* kw_open_private on a path (its directory opened by path); err names path. */
int kw_open_private_path(const char *path, int flags, mode_t mode, char *err, size_t err_len)
	KW_WUR KW_NONNULL(1, 4);

/*
 * Open (with create_mode != 0: first create) the directory name under
 * dirfd, not through a symbolic link: it must be trusted, and neither group
 * nor others may write it.  The fd (O_DIRECTORY, O_CLOEXEC) or a code as
 * kw_open_private; `why` without the path.
 */
int kw_open_dir_private(int dirfd, const char *name, mode_t create_mode, char *why,
    size_t why_len) KW_WUR KW_NONNULL(2, 4);

/*
 * Check, without opening it, that name under dirfd is absent or a regular
 * file under the trust rule (not a link).  0, KW_ERR_NOT_FOUND when
 * absent, KW_ERR_CONFIG or KW_ERR_IO with `why`.  *ret_st (may be NULL)
 * is what was found.
 */
int kw_check_file_at(int dirfd, const char *name, struct stat *ret_st, char *why,
    size_t why_len) KW_WUR KW_NONNULL(2, 4);

/*
 * The directory of path, opened (O_DIRECTORY, following links: the caller
 * trusts the path), and in *ret_name the last component, which points
 * into path.  The fd, or -1 with errno.
 */
int kw_open_dir_of(const char *path, const char **ret_name) KW_WUR KW_NONNULL(1, 2);

/*
 * Replace name under dirfd with data[0..len) so that readers see the old
 * or the new content, never a mix: write a temporary file beside it with
 * `mode` (O_EXCL, never through a link), fsync it, rename it over name,
 * fsync the directory.  0 or KW_ERR_IO with errno set; the temporary file
 * is removed on failure.
 */
int kw_write_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode)
	KW_WUR KW_NONNULL(2, 3);

/*
 * kw_write_atomic_at, the new file given to uid:gid before it appears
 * ((uid_t)-1 / (gid_t)-1 leave that part alone): root rewriting a file of
 * someone else's keeps it theirs.
 */
int kw_write_atomic_owned_at(int dirfd, const char *name, const void *data, size_t len,
    mode_t mode, uid_t uid, gid_t gid) KW_WUR KW_NONNULL(2, 3);

/*
 * The same in steps, for content written as it comes: kw_atomic_open_at
 * creates the temporary file beside name (owner, then mode, as above) and
 * returns its fd, writing its name to ret_tmp; kw_atomic_commit_at
 * fsyncs, closes and renames it over name (0 or KW_ERR_IO with errno, the
 * temporary file removed); kw_atomic_abort_at closes and removes it.
 */
int kw_atomic_open_at(int dirfd, const char *name, mode_t mode, uid_t uid, gid_t gid,
    char *ret_tmp, size_t tmp_len) KW_WUR KW_NONNULL(2, 6);
int kw_atomic_commit_at(int dirfd, int fd, const char *tmp, const char *name)
	KW_WUR KW_NONNULL(3, 4);
void kw_atomic_abort_at(int dirfd, int fd, const char *tmp) KW_NONNULL(3);

/* kw_write_atomic_at in the directory of path (kw_open_dir_of). */
int kw_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
	KW_WUR KW_NONNULL(1, 2);

/*
 * Read the key file name under dirfd, of exactly len bytes, into key (the
 * caller's secure memory): kw_open_private's file that neither group nor
 * others may read.  0; KW_ERR_NOT_FOUND when there is none; KW_ERR_CONFIG
 * (untrusted) or KW_ERR_IO with the reason in why (without the path).
 * key holds nothing on failure.
 */
int kw_read_key_file(int dirfd, const char *name, unsigned char *key, size_t len, char *why,
    size_t why_len) KW_WUR KW_NONNULL(2, 3, 5);

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
