/*
 * net_relay.c - moving bytes for the sandbox's network filter: bounded
 * waits, a connect with a deadline, and the two-way relay with
 * half-close (see net_relay.h).
 *
 * Each direction has its own buffer and the relay polls for what each
 * can do next (read into an empty-enough buffer, write a non-empty one):
 * a relay that blocked on one write could deadlock two peers that both
 * write before they read (HTTP/2 over TLS does).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "sandbox/net_relay.h"

#define RELAY_BUF	16384

/* Milliseconds left before deadline for poll(2): -1 for none, 0 once passed. */
static int
remaining(int64_t deadline_ms)
{
	int64_t left;

	if (deadline_ms == KW_SB_NO_DEADLINE)
		return -1;
	left = deadline_ms - kw_mono_ms();
	if (left <= 0)
		return 0;
	return left > 60000 ? 60000 : (int)left;
}

int
kw_sb_wait(int fd, short events, int64_t deadline_ms, int quit_fd)
{
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = fd, .events = events },
			{ .fd = quit_fd, .events = POLLIN },
		};
		int ms = remaining(deadline_ms), k;

		k = poll(p, 2, ms);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (p[1].revents)
			return -ECANCELED;
		if (p[0].revents)
			return 1;
		if (ms == 0 || (k == 0 && remaining(deadline_ms) == 0))
			return 0;
	}
}

int
kw_sb_connect_within(const struct sockaddr *sa, socklen_t sa_len, int64_t deadline_ms,
    int quit_fd, int *ret_fd)
{
	int fd, r, so_err = 0;
	socklen_t el = sizeof(so_err);

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, sa, sa_len) == 0)
		goto done;
	if (errno != EINPROGRESS) {
		r = -errno;
		goto fail;
	}
	r = kw_sb_wait(fd, POLLOUT, deadline_ms, quit_fd);
	if (r <= 0) {
		r = r == 0 ? -ETIMEDOUT : r;
		goto fail;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_err, &el) < 0) {
		r = -errno;
		goto fail;
	}
	if (so_err != 0) {
		r = -so_err;
		goto fail;
	}
 done:
	*ret_fd = fd;
	return 0;
 fail:
	close(fd);
	return r;
}

int
kw_sb_send_all(int fd, const void *buf, size_t len, int64_t deadline_ms, int quit_fd)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		int r;

		if (w > 0) {
			p += w;
			len -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		if ((r = kw_sb_wait(fd, POLLOUT, deadline_ms, quit_fd)) <= 0)
			return r == 0 ? -ETIMEDOUT : r;
	}
	return 0;
}

/* One direction of the relay: from src to dst through buf. */
struct dir {
	int src, dst;
	char *buf;
	size_t off, len;	/* pending bytes: buf[off..off+len) */
	bool eof;		/* src said EOF (or its reading side is gone) */
	bool shut;		/* dst's writing side shut down after eof */
};

/* Read what src has into the buffer: false when the relay must end. */
static bool
dir_read(struct dir *d)
{
	ssize_t n;

	if (d->off > 0 && d->len > 0)
		memmove(d->buf, d->buf + d->off, d->len);
	d->off = 0;
	n = recv(d->src, d->buf + d->len, RELAY_BUF - d->len, MSG_DONTWAIT);
	if (n > 0)
		d->len += (size_t)n;
	else if (n == 0)
		d->eof = true;
	else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		return false;
	return true;
}

/* Write what the buffer holds to dst: false when the relay must end. */
static bool
dir_write(struct dir *d)
{
	ssize_t n = send(d->dst, d->buf + d->off, d->len, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n > 0) {
		d->off += (size_t)n;
		d->len -= (size_t)n;
		if (d->len == 0)
			d->off = 0;
	} else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		return false;
	}
	return true;
}

/* After EOF with nothing left to write: pass the EOF on. */
static void
dir_finish(struct dir *d)
{
	if (d->eof && d->len == 0 && !d->shut) {
		shutdown(d->dst, SHUT_WR);	/* ENOTCONN when the peer went first: fine */
		d->shut = true;
	}
}

void
kw_sb_relay(int a, int b, const void *pre, size_t pre_len, int quit_fd)
{
	struct dir d[2] = {
		{ .src = a, .dst = b },
		{ .src = b, .dst = a },
	};
	char *mem = malloc(2 * RELAY_BUF);

	if (!mem || pre_len > RELAY_BUF)
		goto out;
	d[0].buf = mem;
	d[1].buf = mem + RELAY_BUF;
	if (pre_len > 0) {
		memcpy(d[0].buf, pre, pre_len);
		d[0].len = pre_len;
	}
	for (;;) {
		struct pollfd p[3] = {
			{ .fd = a }, { .fd = b }, { .fd = quit_fd, .events = POLLIN },
		};

		dir_finish(&d[0]);
		dir_finish(&d[1]);
		if (d[0].shut && d[1].shut)
			break;
		for (int i = 0; i < 2; i++) {
			/* The pollfd of src is p[i], of dst p[1 - i]. */
			if (!d[i].eof && d[i].len < RELAY_BUF)
				p[i].events |= POLLIN;
			if (d[i].len > 0)
				p[1 - i].events |= POLLOUT;
		}
		/*
		 * A socket asked nothing of while its bytes wait for the other
		 * side to drain is left out: its hang-up would wake poll in a
		 * loop.  One whose reading is over stays, so its reset is seen.
		 */
		for (int j = 0; j < 2; j++)
			if (p[j].events == 0 && !d[j].eof)
				p[j].fd = -1;
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[2].revents)
			break;
		/*
		 * poll reports an error or a hang-up even on a socket nothing is
		 * asked of: a reset, or both of its directions gone while it is
		 * not being read.  Nothing more can pass through it; end rather
		 * than spin.
		 */
		for (int j = 0; j < 2; j++)
			if ((p[j].revents & (POLLERR | POLLNVAL)) ||
			    ((p[j].revents & POLLHUP) && !(p[j].events & POLLIN)))
				goto out;
		for (int i = 0; i < 2; i++) {
			short in = p[i].revents, out = p[1 - i].revents;

			/* An error or hang-up shows as what read or write then returns. */
			if ((p[i].events & POLLIN) && (in & (POLLIN | POLLHUP | POLLERR)) &&
			    !dir_read(&d[i]))
				goto out;
			if ((p[1 - i].events & POLLOUT) && (out & (POLLOUT | POLLHUP | POLLERR)) &&
			    !dir_write(&d[i]))
				goto out;
		}
	}
 out:
	free(mem);
}
