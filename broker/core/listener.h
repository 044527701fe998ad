/*
 * server.h - the listening socket: created safely, never stolen.
 */
#ifndef KW_SERVER_H
#define KW_SERVER_H

#include <sys/types.h>

#include "common/macros.h"

/*
 * Listen on the Unix socket at path with permissions mode.  A lock file
 * (path + ".lock", flock) makes one broker own the path: while another
 * broker holds it, or a live broker answers on the socket, this fails with
 * KW_ERR_BUSY.  A socket left by a crashed broker is removed; any other kind
 * of file at path is left alone (KW_ERR_IO).  The socket's directory and
 * every one above it must be root's or the broker's user's and writable by
 * no one else (common/fsutil.h; an existing one is checked, a missing one
 * made 0755), else KW_ERR_CONFIG; the lock file must be the broker's too.
 * The socket is bound under the umask that gives it `mode` (no chmod by
 * path).  On success *ret_fd (non-blocking) and *ret_lock_fd are the
 * caller's; err explains failures.
 */
int kw_server_listen(const char *path, mode_t mode, int *ret_fd, int *ret_lock_fd,
    char *err, size_t err_len) KW_WUR KW_NONNULL(1, 3, 4, 5);

/* Close the socket, remove its file and release the lock. */
void kw_server_close(const char *path, int fd, int lock_fd);

#endif
