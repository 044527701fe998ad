/*
 * net_relay.h - the byte-moving half of the sandbox's network filter
 * (net_relay.c), shared by the CONNECT filter and the port forwards of
 * net_serve.c.  Every wait is bounded by a deadline (monotonic ms,
 * common/clock.h) and ends early when quit_fd becomes readable (the
 * filter is stopping), so no connection outlives kw_sb_net_serve.
 * Sockets are non-blocking; nothing here raises SIGPIPE.
 */
#ifndef KW_SB_NET_RELAY_H
#define KW_SB_NET_RELAY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/macros.h"

/* No deadline: wait as long as it takes (the relay of a live connection). */
#define KW_SB_NO_DEADLINE	INT64_MAX

/*
 * Wait until fd has one of events or the deadline passes: 1 ready, 0 the
 * deadline passed, -ECANCELED quit_fd is readable, -errno.
 */
int kw_sb_wait(int fd, short events, int64_t deadline_ms, int quit_fd) KW_WUR;

/*
 * A TCP connection to sa, made before deadline_ms: 0 with *ret_fd
 * (non-blocking, close-on-exec), -ETIMEDOUT, -ECANCELED, or the -errno
 * connect(2) met (-ECONNREFUSED, -ENETUNREACH, ...).
 */
int kw_sb_connect_within(const struct sockaddr *sa, socklen_t sa_len, int64_t deadline_ms,
    int quit_fd, int *ret_fd) KW_WUR KW_NONNULL(1, 5);

/* All of buf on fd before deadline_ms: 0, -ETIMEDOUT, -ECANCELED, -errno. */
int kw_sb_send_all(int fd, const void *buf, size_t len, int64_t deadline_ms, int quit_fd)
    KW_WUR;

/*
 * Move bytes both ways between a and b until each side has said EOF (a
 * direction that ends is half-closed with shutdown(SHUT_WR) on the other
 * side, and the other direction goes on), either side fails, or quit_fd is
 * readable.  pre[0..pre_len) (at most 16 KB) was read from a already and
 * goes to b first.  Closes neither fd.
 */
void kw_sb_relay(int a, int b, const void *pre, size_t pre_len, int quit_fd);

#endif
