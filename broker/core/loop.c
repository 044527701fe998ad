/*
 * loop.c - the event loop (see loop.h).
 */
#include <errno.h>
#include <stddef.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "client/keywarden.h"
#include "common/log.h"
#include "broker/core/loop.h"
#include "broker/core/uid_counts.h"
#include "client/frame.h"
#include "client/proto.h"
#include "broker/dispatch/dispatch.h"
#include "common/clock.h"

/* Stop reading a client's requests while this much of its output is unsent. */
#define KW_OUT_HIGH_WATER (64 * 1024)
/* An output buffer up to this size is kept for the next reply; a larger one
   (a burst) is given back once sent, so idle connections stay small. */
#define KW_OUT_KEEP (4 * 1024)

static char tag_listen, tag_signal, tag_worker;	/* epoll data for the non-client fds */

/* Replies may carry keys and tokens: what was in the buffer is wiped. */
static void
out_release(struct kw_conn *c)
{
	if (c->out) {
		sodium_memzero(c->out, c->out_cap);
		free(c->out);
	}
	c->out = NULL;
	c->out_len = c->out_off = c->out_cap = 0;
}

static void
conn_close(struct kw_daemon *b, struct kw_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		b->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	b->n_conns--;
	if (c->counted) {
		kw_uid_count_remove(b->per_uid, c->peer.caller.uid);
		b->n_counted--;
	}
	kw_dispatch_forget_peer(b->d, &c->peer);
	if (c->peer.internal)
		kw_dispatch_internal_gone(b->d, &c->peer);
	/*
	 * Out of the epoll set first: close() removes it only once no other
	 * descriptor shares the file, and a child the broker forks (the API
	 * proxy) holds copies until it execs -- events would then name a freed
	 * connection.
	 */
	(void)epoll_ctl(b->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (b->accept_paused) {
		/* A descriptor is free again: take new clients again. */
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &tag_listen };
		if (epoll_ctl(b->epoll_fd, EPOLL_CTL_MOD, b->listen_fd, &ev) == 0)
			b->accept_paused = false;
	}
	kw_frame_reader_reset(&c->rd);
	out_release(c);
	free(c);
}

static void
conn_watch(struct kw_daemon *b, struct kw_conn *c)
{
	/* Writing or reading, never both: unsent replies pause new requests, and
	   so does a request still with the worker (its answer comes first). */
	struct epoll_event ev = {
		.events = c->out_len > c->out_off ? EPOLLOUT : c->peer.deferred ? 0 : EPOLLIN,
		.data.ptr = c,
	};

	/* Most turns leave it as it was: no system call then. */
	if (ev.events == c->events)
		return;
	if (epoll_ctl(b->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->events = ev.events;
}

/* The reply's frame goes straight into the connection's buffer. */
static int
conn_queue(struct kw_conn *c, json_t *reply)
{
	bool was_empty = c->out_len == c->out_off;
	int r;

	r = kw_msg_append(reply, &c->out, &c->out_len, &c->out_cap);
	json_decref(reply);
	if (r == 0 && was_empty)
		c->out_start_ms = kw_mono_ms();
	return r;
}

/* Returns -1 when the connection was closed. */
static int
conn_flush(struct kw_daemon *b, struct kw_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			conn_close(b, c);
			return -1;
		}
		c->out_off += (size_t)n;
		c->last_active_ms = kw_mono_ms();
	}
	if (c->out_off == c->out_len) {
		if (c->out_cap > KW_OUT_KEEP) {
			out_release(c);
		} else {
			sodium_memzero(c->out, c->out_len);
			c->out_len = c->out_off = 0;
		}
		if (c->closing && c->peer.pending == 0) {
			conn_close(b, c);
			return -1;
		}
	}
	return 0;
}

/*
 * The length of the whole frame (header and body) at the start of buf, or 0
 * when it is not all there or its header is bad (the frame reader then
 * takes it, and answers a bad header as it always has).
 */
static size_t
whole_frame(const uint8_t *buf, size_t n)
{
	uint32_t len;

	if (n < KW_FRAME_HDR)
		return 0;
	len = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
	if (len == 0 || len > KW_FRAME_MAX || n - KW_FRAME_HDR < len)
		return 0;
	return KW_FRAME_HDR + (size_t)len;
}

/* Frame and answer what is buffered in c->in, as far as backpressure allows. */
static void
conn_process(struct kw_daemon *b, struct kw_conn *c)
{
	size_t off = 0;

	while (off < c->in_len && !c->closing && !c->peer.deferred &&
	    c->out_len - c->out_off < KW_OUT_HIGH_WATER) {
		bool was_partial = kw_frame_reader_partial(&c->rd), close_after = false;
		size_t used, whole;

		/* The usual case: a whole frame in the buffer is answered where it lies. */
		if (!was_partial && (whole = whole_frame(c->in + off, c->in_len - off)) > 0) {
			kw_dispatch(b->d, &c->peer, c->in + off + KW_FRAME_HDR,
			    whole - KW_FRAME_HDR, &close_after);
			off += whole;
			if (close_after)
				c->closing = true;
			continue;
		}
		int r = kw_frame_feed(&c->rd, c->in + off, c->in_len - off, &used);

		off += used;
		if (!was_partial && kw_frame_reader_partial(&c->rd))
			c->frame_start_ms = kw_mono_ms();
		if (r == 0)
			continue;
		if (r == 1) {
			uint8_t *body;
			size_t len;
			if (kw_frame_take(&c->rd, &body, &len) < 0)
				break;
			kw_dispatch(b->d, &c->peer, body, len, &close_after);
			/* A request may carry a code or a token. */
			sodium_memzero(body, len);
			free(body);
		} else {
			/* The stream cannot be resynchronised after a bad header. */
			kw_dispatch_frame_error(b->d, &c->peer, r);
			close_after = true;
		}
		if (close_after)
			c->closing = true;
	}
	size_t was = c->in_len;
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	if (c->closing)
		c->in_len = 0;
	/* What was answered (codes, tokens) does not stay behind in the buffer. */
	sodium_memzero(c->in + c->in_len, was - c->in_len);
}

static void
conn_readable(struct kw_daemon *b, struct kw_conn *c)
{
	ssize_t n;

	if (c->in_len == sizeof(c->in)) {
		conn_process(b, c);
	} else {
		n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			conn_close(b, c);
			return;
		}
		c->in_len += (size_t)n;
		c->last_active_ms = kw_mono_ms();
		conn_process(b, c);
	}
	if (conn_flush(b, c) < 0)
		return;
	/* Held replies go out at the end of the turn (deliver), and close it then. */
	if (c->closing && c->out_len == 0 && c->peer.pending == 0) {
		conn_close(b, c);
		return;
	}
	conn_watch(b, c);
}

static void
conn_writable(struct kw_daemon *b, struct kw_conn *c)
{
	if (conn_flush(b, c) < 0)
		return;
	/* Pipelined requests waited for the replies to drain. */
	if (c->out_len == 0 && c->in_len > 0) {
		conn_process(b, c);
		if (conn_flush(b, c) < 0)
			return;
	}
	conn_watch(b, c);
}

/* The connection whose peer part this is. */
static struct kw_conn *
conn_of(struct kw_peer *p)
{
	return (struct kw_conn *)((char *)p - offsetof(struct kw_conn, peer));
}

/*
 * End the turn: commit its records and changes together (group commit),
 * then send every held reply.  A connection whose handshake reply turned
 * into a refusal is not greeted after all (its next request is refused).
 * Returns how many connections had requests left to read that were held
 * back behind a worker's answer: those are processed into the next batch.
 */
static size_t
deliver_batch(struct kw_daemon *b)
{
	struct kw_batch *t = kw_dispatch_batch(b->d);
	struct kw_batch_entry *e;
	struct kw_conn *again[64];
	size_t n, n_again = 0;
	int r = kw_batch_commit(t);

	e = kw_batch_entries(t, &n);
	for (size_t i = 0; i < n; i++) {
		if (!e[i].peer)
			continue;
		struct kw_conn *c = conn_of(e[i].peer);
		if (e[i].hello && r == KW_ERR_AUDIT)
			c->peer.greeted = false;
		if (e[i].close)
			c->closing = true;
		if (conn_queue(c, json_incref(e[i].reply)) < 0)
			c->closing = true;
	}
	/* Flush each connection once, after all its replies are queued. */
	for (size_t i = 0; i < n; i++) {
		if (!e[i].peer)
			continue;
		struct kw_conn *c = conn_of(e[i].peer);
		e[i].peer = NULL;
		if (--c->peer.pending > 0)
			continue;
		if (conn_flush(b, c) < 0)
			continue;
		if (c->closing && c->out_len == 0) {
			kw_dispatch_forget_peer(b->d, &c->peer);
			conn_close(b, c);
			continue;
		}
		if (c->in_len > 0 && c->out_len == 0 && !c->peer.deferred && !c->closing &&
		    n_again < KW_ELEMENTSOF(again))
			again[n_again++] = c;
		conn_watch(b, c);
	}
	kw_batch_clear(t);
	/* Requests that arrived while a worker had the connection's earlier one. */
	for (size_t i = 0; i < n_again; i++) {
		conn_process(b, again[i]);
		conn_watch(b, again[i]);
	}
	return n_again;
}

static void
deliver(struct kw_daemon *b)
{
	while (deliver_batch(b) > 0)
		;
}

/* Name the caller from the password database, or by number if it has no entry. */
static void
name_caller(struct kw_caller *who, char *name, size_t name_len)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (getpwuid_r(who->uid, &pw, buf, sizeof(buf), &res) == 0 && res &&
	    strlen(res->pw_name) < name_len)
		snprintf(name, name_len, "%s", res->pw_name);
	else
		snprintf(name, name_len, "%u", (unsigned)who->uid);
	who->user = name;
}

/* Send one reply without waiting, best effort: the connection ends next. */
static void
send_last_words(int fd, json_t *reply)
{
	uint8_t *frame = NULL;
	size_t len;

	if (reply && kw_msg_encode(reply, &frame, &len) == 0)
		(void)send(fd, frame, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	json_decref(reply);
	free(frame);
}

/* Over a limit: say so in one audited frame and hang up. */
static void
refuse_busy(struct kw_daemon *b, int fd, const struct ucred *cred, const char *why)
{
	struct kw_caller who = { .uid = cred->uid, .gid = cred->gid, .pid = cred->pid };
	char name[64];

	deliver(b);
	name_caller(&who, name, sizeof(name));
	send_last_words(fd, kw_dispatch_event(b->d, &who, "connect", KW_ERR_BUSY, why));
	close(fd);
}

/*
 * May uid have one more connection?  NULL, or why not (in why).  uid 0 and
 * the broker's own user are not counted: the PAM module of sshd and sudo
 * runs as root, and it must find room however many others hold.
 */
static const char *
admit(struct kw_daemon *b, uid_t uid, bool *ret_counted, char *why, size_t why_len)
{
	*ret_counted = uid != 0 && uid != b->own_uid;
	if (b->n_conns >= b->max_conns) {
		kw_log_warn("refusing a client: %zu connections open", b->n_conns);
		return "too many clients; try again later";
	}
	if (!*ret_counted)
		return NULL;
	if (b->n_counted >= b->max_conns - b->reserved) {
		kw_log_debug("refusing uid %u: the rest is kept for root", (unsigned)uid);
		return "too many clients; try again later";
	}
	if (kw_uid_count(b->per_uid, uid) >= b->max_per_uid) {
		kw_log_debug("refusing uid %u: %zu connections open", (unsigned)uid, b->max_per_uid);
		snprintf(why, why_len, "too many connections from this user (at most %zu at once); "
		    "close some and try again", b->max_per_uid);
		return why;
	}
	return NULL;
}

static void
accept_all(struct kw_daemon *b)
{
	for (;;) {
		struct ucred cred;
		socklen_t clen = sizeof(cred);
		char buf[128];
		const char *why;
		bool counted;
		int fd = accept4(b->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				/*
				 * The pending client stays queued; without a pause the
				 * level-triggered listener would spin until one closes.
				 */
				struct epoll_event ev = { .events = 0, .data.ptr = &tag_listen };
				kw_log_warn("accept: %s; pausing until a client leaves",
				    strerror(errno));
				if (epoll_ctl(b->epoll_fd, EPOLL_CTL_MOD, b->listen_fd, &ev) == 0)
					b->accept_paused = true;
			} else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
				kw_log_warn("accept: %s", strerror(errno));
			}
			return;
		}
		/* The kernel's word on who connected: the basis of every decision. */
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
			kw_log_warn("SO_PEERCRED: %s", strerror(errno));
			close(fd);
			continue;
		}
		if ((why = admit(b, cred.uid, &counted, buf, sizeof(buf)))) {
			refuse_busy(b, fd, &cred, why);
			continue;
		}
		struct kw_conn *c = calloc(1, sizeof(*c));
		if (!c || (counted && kw_uid_count_add(b->per_uid, cred.uid) < 0)) {
			free(c);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->counted = counted;
		c->peer.caller.uid = cred.uid;
		c->peer.caller.gid = cred.gid;
		c->peer.caller.pid = cred.pid;
		name_caller(&c->peer.caller, c->peer.user, sizeof(c->peer.user));
		kw_frame_reader_init(&c->rd, KW_FRAME_MAX);
		c->last_active_ms = c->accepted_ms = kw_mono_ms();
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
		c->events = EPOLLIN;
		if (epoll_ctl(b->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			if (counted)
				kw_uid_count_remove(b->per_uid, cred.uid);
			close(fd);
			free(c);
			continue;
		}
		c->next = b->conns;
		if (b->conns)
			b->conns->prev = c;
		b->conns = c;
		b->n_conns++;
		b->n_counted += counted;
	}
}

int
kw_loop_adopt(struct kw_daemon *b, int fd, struct kw_peer **ret_peer)
{
	struct kw_conn *c = calloc(1, sizeof(*c));
	struct epoll_event ev = { .events = EPOLLIN };

	if (!c) {
		close(fd);
		return KW_ERR_NOMEM;
	}
	c->fd = fd;
	c->peer.internal = true;
	c->peer.caller.uid = geteuid();
	c->peer.caller.gid = getegid();
	c->peer.caller.pid = getpid();
	name_caller(&c->peer.caller, c->peer.user, sizeof(c->peer.user));
	kw_frame_reader_init(&c->rd, KW_FRAME_MAX);
	c->last_active_ms = c->accepted_ms = kw_mono_ms();
	ev.data.ptr = c;
	c->events = EPOLLIN;
	if (epoll_ctl(b->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		kw_log_error("epoll_ctl: %s", strerror(errno));
		close(fd);
		free(c);
		return KW_ERR_IO;
	}
	c->next = b->conns;
	if (b->conns)
		b->conns->prev = c;
	b->conns = c;
	b->n_conns++;
	*ret_peer = &c->peer;
	return 0;
}

/* A connection that has not completed the handshake in time. */
static bool
hello_overdue(const struct kw_daemon *b, const struct kw_conn *c, int64_t now)
{
	return !c->peer.greeted && now >= c->accepted_ms + b->hello_timeout_ms;
}

static int64_t
conn_deadline(const struct kw_daemon *b, const struct kw_conn *c)
{
	int64_t d;

	if (c->out_len > c->out_off)
		return c->out_start_ms + b->client_timeout_ms;
	if (kw_frame_reader_partial(&c->rd))
		d = c->frame_start_ms + b->client_timeout_ms;
	/* Waiting for the broker (a worker) is not idling, nor is a helper's quiet. */
	else if (c->peer.deferred || c->peer.internal)
		d = kw_mono_ms() + b->idle_timeout_ms;
	else
		d = c->last_active_ms + b->idle_timeout_ms;
	/* Nobody holds a connection without saying hello first. */
	if (!c->peer.greeted && !c->closing && c->accepted_ms + b->hello_timeout_ms < d)
		d = c->accepted_ms + b->hello_timeout_ms;
	return d;
}

/* Close connections past their deadline; return ms until the next one (-1: none). */
static int
expire(struct kw_daemon *b)
{
	int64_t now = kw_mono_ms(), next = -1;
	struct kw_conn *c = b->conns, *n;

	for (; c; c = n) {
		n = c->next;
		int64_t d = conn_deadline(b, c);
		if (d <= now) {
			kw_log_debug("closing client pid %d: deadline passed", (int)c->peer.caller.pid);
			/* No hello in time: answered and audited, like a message not finished. */
			if (c->out_len == c->out_off && !c->closing && hello_overdue(b, c, now)) {
				char why[96];
				snprintf(why, sizeof(why), "no hello within %lld s",
				    (long long)(b->hello_timeout_ms / 1000));
				kw_frame_reader_reset(&c->rd);
				c->in_len = 0;
				kw_dispatch_hangup(b->d, &c->peer, "handshake", KW_ERR_TIMEOUT, why);
				c->closing = true;
				c->out_start_ms = now;
				continue;
			}
			/* A started message that never finished is answered and audited. */
			if (c->out_len == c->out_off && kw_frame_reader_partial(&c->rd) &&
			    !c->closing) {
				kw_frame_reader_reset(&c->rd);
				c->in_len = 0;
				kw_dispatch_frame_error(b->d, &c->peer, KW_ERR_TIMEOUT);
				c->closing = true;
				c->out_start_ms = now;
				continue;
			}
			conn_close(b, c);
			continue;
		}
		if (next < 0 || d - now < next)
			next = d - now;
	}
	return next < 0 ? -1 : (int)(next > 60000 ? 60000 : next);
}

static void
on_signal(struct kw_daemon *b)
{
	struct signalfd_siginfo si;

	while (read(b->signal_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			kw_log_info("stopping on signal %u", si.ssi_signo);
			b->stopping = true;
		} else if (si.ssi_signo == SIGHUP) {
			/* Done at the end of this turn, not in the middle of it. */
			b->reload_pending = b->on_reload != NULL;
		}
	}
}

/*
 * Whether the loop goes on: until a stop, and after it while a helper (the
 * API proxy) is still handing over its last records.  Once stopping, nobody
 * new is accepted; those connected are still answered meanwhile.
 */
static bool
going_on(struct kw_daemon *b, bool *door_closed)
{
	if (!b->stopping)
		return true;
	if (!*door_closed) {
		*door_closed = true;
		(void)epoll_ctl(b->epoll_fd, EPOLL_CTL_DEL, b->listen_fd, NULL);
	}
	return kw_dispatch_helpers_finishing(b->d);
}

/* The loop itself: 0 after a signal to stop, KW_ERR_IO if epoll fails. */
static int
serve(struct kw_daemon *b)
{
	bool door_closed = false;
	struct epoll_event ev[64];
	struct epoll_event lev = { .events = EPOLLIN, .data.ptr = &tag_listen };
	struct epoll_event sev = { .events = EPOLLIN, .data.ptr = &tag_signal };
	struct epoll_event wev = { .events = EPOLLIN, .data.ptr = &tag_worker };

	if (epoll_ctl(b->epoll_fd, EPOLL_CTL_ADD, b->listen_fd, &lev) < 0 ||
	    epoll_ctl(b->epoll_fd, EPOLL_CTL_ADD, b->signal_fd, &sev) < 0 ||
	    epoll_ctl(b->epoll_fd, EPOLL_CTL_ADD, kw_dispatch_worker_fd(b->d), &wev) < 0) {
		kw_log_error("epoll_ctl: %s", strerror(errno));
		return KW_ERR_IO;
	}
	while (going_on(b, &door_closed)) {
		int timeout = expire(b);
		/* Replies of timed-out frames were held by expire: send them now. */
		deliver(b);
		int due = kw_dispatch_timers_due_ms(b->d);
		if (timeout < 0 || (due >= 0 && due < timeout))
			timeout = due;
		int n = epoll_wait(b->epoll_fd, ev, (int)KW_ELEMENTSOF(ev), timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			kw_log_error("epoll_wait: %s", strerror(errno));
			return KW_ERR_IO;
		}
		kw_dispatch_run_timers(b->d);
		for (int i = 0; i < n; i++) {
			void *p = ev[i].data.ptr;
			if (p == &tag_listen)
				accept_all(b);
			else if (p == &tag_signal)
				on_signal(b);
			else if (p == &tag_worker)
				kw_dispatch_worker_drain(b->d);
			else if (ev[i].events & (EPOLLERR | EPOLLHUP) && !(ev[i].events & EPOLLIN))
				conn_close(b, p);
			else if (ev[i].events & EPOLLOUT)
				conn_writable(b, p);
			else
				conn_readable(b, p);
		}
		deliver(b);
		/* Between two turns: nothing is half done, every reply went out. */
		if (b->reload_pending && !b->stopping) {
			b->reload_pending = false;
			b->on_reload(b, b->reload_ctx);
		}
	}
	return 0;
}

int
kw_loop_run(struct kw_daemon *b)
{
	int r;

	if (kw_uid_counts_new(&b->per_uid) < 0) {
		kw_log_error("out of memory");
		return KW_ERR_NOMEM;
	}
	r = serve(b);
	/* Refusals still being counted get their summary records before the end. */
	kw_dispatch_flush(b->d);
	deliver(b);
	while (b->conns)
		conn_close(b, b->conns);
	kw_uid_counts_free(b->per_uid);
	b->per_uid = NULL;
	return r;
}
