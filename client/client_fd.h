/*
 * client_fd.h - a client on a connection someone else made (libkeywarden
 * internal: not in keywarden.h nor in libkeywarden.map, so not part of the
 * library's ABI; the CLI links the client's objects and uses it).
 *
 * Inside `keywarden run`'s sandbox the broker's socket is out of reach and
 * the CLI talks to the run's relay over TCP instead (cli/main.c): it
 * connects and authenticates to the relay itself, then hands the fd here
 * for the usual hello and framed calls.  The trust checks of
 * kw_client_connect_trusted do not apply (there is no socket file and no
 * peer uid to check): the caller vouches for the fd.
 */
#ifndef KW_CLIENT_FD_H
#define KW_CLIENT_FD_H

#include "client/keywarden.h"
#include "common/macros.h"

/*
 * Take fd (a connected stream socket; owned from here on, closed on
 * failure too), set the usual I/O timeouts, and run the handshake.  0 with
 * *ret_client, or the handshake's error (KW_ERR_VERSION, KW_ERR_CLOSED...).
 */
int kw_client_connect_fd(int fd, kw_client **ret_client) KW_WUR KW_NONNULL(2);

/*
 * Send all n bytes of p on the stream socket fd (no SIGPIPE; EINTR
 * retried): 0, KW_ERR_CLOSED (the peer is gone), KW_ERR_TIMEOUT (the
 * socket's send timeout passed) or KW_ERR_IO.  The relay of `keywarden
 * run` answers its clients with it.
 */
int kw_send_all(int fd, const void *p, size_t n) KW_WUR;

#endif
