/*
 * echo.c - the baseline for make bench: a bare epoll server on an AF_UNIX
 * stream socket that reads whole frames (4-byte big-endian length + body)
 * and writes each one back unchanged.
 *
 * It does the same socket work as the broker per round trip (one read, one
 * write, one epoll wakeup) and nothing else, so broker/echo is the cost of
 * the broker's own work on this machine at this moment.
 *
 *   echo --socket PATH [--max-seconds N] [--max-clients N]
 *
 * Runs until SIGTERM/SIGINT, or by itself after --max-seconds (default 600)
 * so a harness that died cannot leave it behind for long.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_util.h"

#define MAX_EVENTS 64

struct econn {
	int fd;
	size_t in_len;		/* bytes buffered in in[] */
	size_t flush_len;	/* a whole frame at in[0] being written back */
	size_t flush_off;	/* bytes of it written so far */
	uint8_t in[BENCH_FRAME_HDR + BENCH_FRAME_MAX];
};

struct server {
	int ep;
	int lfd;
	int sfd;		/* signalfd: SIGTERM/SIGINT end the loop */
	unsigned nconns;
	unsigned max_conns;
};

static void
econn_close(struct server *s, struct econn *c)
{
	/* Closing the fd also removes it from the epoll set. */
	if (close(c->fd) != 0)
		bench_log_errno("close");
	free(c);
	s->nconns--;
}

static int
econn_want(struct server *s, struct econn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
		bench_log_errno("epoll_ctl MOD");
		return -1;
	}
	return 0;
}

/*
 * Write the pending frame back.  Returns 1 when all of it went out, 0 when
 * the socket is full (the caller waits for EPOLLOUT), -1 on error.
 */
static int
econn_flush(struct econn *c)
{
	while (c->flush_off < c->flush_len) {
		ssize_t n = write(c->fd, c->in + c->flush_off,
		    c->flush_len - c->flush_off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0)
			return -1;
		c->flush_off += (size_t)n;
	}
	/* Keep whatever the client pipelined behind this frame. */
	c->in_len -= c->flush_len;
	memmove(c->in, c->in + c->flush_len, c->in_len);
	c->flush_len = c->flush_off = 0;
	return 1;
}

/*
 * Echo every complete frame in the buffer.  Returns 1 when the buffer holds
 * no complete frame any more, 0 when a write is pending, -1 to close.
 */
static int
econn_echo_frames(struct econn *c)
{
	/* Each pass removes one frame, so in_len bounds the loop. */
	while (c->in_len >= BENCH_FRAME_HDR) {
		uint32_t len = bench_get_be32(c->in);
		int r;

		if (len == 0 || len > BENCH_FRAME_MAX)
			return -1;	/* the broker would close too */
		if (c->in_len < BENCH_FRAME_HDR + (size_t)len)
			return 1;
		c->flush_len = BENCH_FRAME_HDR + (size_t)len;
		c->flush_off = 0;
		if ((r = econn_flush(c)) != 1)
			return r;
	}
	return 1;
}

static void
econn_on_event(struct server *s, struct econn *c, uint32_t events)
{
	int r;

	if (c->flush_len > 0) {
		/* Only EPOLLOUT is armed while a frame is pending. */
		if ((r = econn_flush(c)) == 1)
			r = econn_echo_frames(c);
	} else {
		ssize_t n = read(c->fd, c->in + c->in_len,
		    sizeof(c->in) - c->in_len);

		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			return;
		if (n <= 0) {
			econn_close(s, c);	/* EOF or error: client gone */
			return;
		}
		c->in_len += (size_t)n;
		r = econn_echo_frames(c);
	}
	if (r < 0 || (r == 0 && econn_want(s, c, EPOLLOUT) != 0) ||
	    (r == 1 && (events & EPOLLOUT) && econn_want(s, c, EPOLLIN) != 0))
		econn_close(s, c);
}

static void
server_accept(struct server *s)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct econn *c;
	int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR)
			bench_log_errno("accept4");
		return;
	}
	if (s->nconns >= s->max_conns || (c = calloc(1, sizeof(*c))) == NULL) {
		bench_log("refusing a client: %u connected", s->nconns);
		close(fd);
		return;
	}
	c->fd = fd;
	ev.data.ptr = c;
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		bench_log_errno("epoll_ctl ADD");
		close(fd);
		free(c);
		return;
	}
	s->nconns++;
}

static int
epoll_add_marker(int ep, int fd, void *marker)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = marker };

	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		bench_log_errno("epoll_ctl ADD");
		return -1;
	}
	return 0;
}

/* Markers that tell the listening socket and the signalfd from clients. */
static char listen_marker, signal_marker;

static int
server_listen(struct server *s, const char *path)
{
	struct sockaddr_un sa;
	socklen_t salen;
	sigset_t mask;

	if (bench_sockaddr(path, &sa, &salen) != 0)
		return -1;
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&sa, salen) != 0 ||
	    listen(s->lfd, SOMAXCONN) != 0) {
		bench_log_errno("listen on %s", path);
		return -1;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0 ||
	    (s->sfd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0) {
		bench_log_errno("signalfd");
		return -1;
	}
	if ((s->ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		bench_log_errno("epoll_create1");
		return -1;
	}
	return epoll_add_marker(s->ep, s->lfd, &listen_marker) != 0 ||
	    epoll_add_marker(s->ep, s->sfd, &signal_marker) != 0 ? -1 : 0;
}

/* Serve until a signal or the deadline.  Returns 0 or -1 on error. */
static int
server_run(struct server *s, uint64_t deadline_ns)
{
	struct epoll_event evs[MAX_EVENTS];

	/* Bounded by the deadline: every wait ends by it at the latest. */
	for (;;) {
		uint64_t now = bench_now_ns();
		int timeout_ms, n;

		if (now >= deadline_ns) {
			bench_log("--max-seconds reached, exiting");
			return 0;
		}
		timeout_ms = (int)((deadline_ns - now) / 1000000u) + 1;
		n = epoll_wait(s->ep, evs, MAX_EVENTS, timeout_ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			bench_log_errno("epoll_wait");
			return -1;
		}
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;

			if (p == &signal_marker)
				return 0;
			if (p == &listen_marker)
				server_accept(s);
			else
				econn_on_event(s, p, evs[i].events);
		}
	}
}

static void
usage(void)
{
	fprintf(stderr, "usage: echo --socket PATH [--max-seconds N] "
	    "[--max-clients N]\n");
}

/* Fill the options from argv; -1 on a usage error. */
static int
parse_args(int argc, char **argv, const char **ret_path, double *max_seconds,
    unsigned *max_conns)
{
	/* Options come in pairs, so i advances by two each pass. */
	for (int i = 1; i < argc; i += 2) {
		const char *opt = argv[i], *val = argv[i + 1];
		long long n;

		if (val == NULL)
			return -1;
		if (strcmp(opt, "--socket") == 0)
			*ret_path = val;
		else if (strcmp(opt, "--max-seconds") == 0) {
			if ((*max_seconds = bench_parse_seconds(val)) <= 0)
				return -1;
		} else if (strcmp(opt, "--max-clients") == 0) {
			if ((n = bench_parse_uint(val, 1, 65536)) < 0)
				return -1;
			*max_conns = (unsigned)n;
		} else
			return -1;
	}
	return *ret_path != NULL ? 0 : -1;
}

int
main(int argc, char **argv)
{
	struct server s = { .ep = -1, .lfd = -1, .sfd = -1, .max_conns = 1024 };
	const char *path = NULL;
	double max_seconds = 600;
	int r;

	bench_prog = "echo";
	if (parse_args(argc, argv, &path, &max_seconds, &s.max_conns) != 0) {
		usage();
		return 2;
	}
	/* A client that hangs up mid-write is its problem, not a crash. */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		bench_log_errno("signal SIGPIPE");
		return 1;
	}
	if (server_listen(&s, path) != 0)
		return 1;
	bench_log("listening on %s", path);
	r = server_run(&s, bench_now_ns() + (uint64_t)(max_seconds * 1e9));
	/* The socket file is ours; leave no stale one behind. */
	if (unlink(path) != 0)
		bench_log_errno("unlink %s", path);
	return r == 0 ? 0 : 1;
}
