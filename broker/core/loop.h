/*
 * loop.h - the broker's event loop: one thread, epoll, many clients.
 *
 * No client can hold up another: sockets are non-blocking, every connection
 * has a deadline (say hello, finish a started frame, read your replies, or
 * stay idle no longer than allowed), and a client that does not read its
 * replies is not read from until it does.  No user can take every
 * connection: each uid holds at most b->max_per_uid, and b->reserved of
 * them are kept for uid 0 and the broker's own user.
 */
#ifndef KW_LOOP_H
#define KW_LOOP_H

#include "broker/core/daemon.h"
#include "common/macros.h"

/*
 * Serve until SIGTERM or SIGINT arrives on b->signal_fd (SIGHUP: b->on_reload
 * between two turns); b->d must be set.  b's listening,
 * signal and epoll descriptors must be set.  Returns 0 after a clean stop,
 * KW_ERR_IO if epoll itself fails (KW_ERR_NOMEM before it starts).  Open
 * connections are closed on return, after refusals still being counted
 * were recorded (kw_dispatch_flush).
 */
int kw_loop_run(struct kw_daemon *b) KW_WUR KW_NONNULL(1);

/*
 * Serve fd (one end of a socketpair to a helper the broker started) as an
 * internal peer: framed and dispatched like a client, but marked
 * peer.internal (only KW_OP_INTERNAL requests are answered on it, and only
 * on it), never counted against a uid and never closed for idling.  The
 * caller is the broker's own process.  b->epoll_fd must be set; may be
 * called before kw_loop_run.  fd is transferred (closed on failure).
 * 0 with *ret_peer (valid until the peer is gone: kw_dispatch_internal_gone),
 * or KW_ERR_NOMEM / KW_ERR_IO.
 */
int kw_loop_adopt(struct kw_daemon *b, int fd, struct kw_peer **ret_peer)
	KW_WUR KW_NONNULL(1, 3);

#endif
