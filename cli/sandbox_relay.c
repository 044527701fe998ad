/*
 * sandbox_relay.c - `keywarden run`'s broker relay, the parent's side (see
 * sandbox_relay.h for why it exists and what it passes).
 *
 * One thread accepts; each connection gets a thread of its own (at most
 * MAX_CONNS; beyond that a connection is closed at once), because the
 * broker calls it makes are blocking ones (libkeywarden).  A connection
 * first proves it holds the run's token, then speaks the broker's framed
 * protocol; each request is parsed here and only the ops in the table
 * below go on, on the relay's own broker connection that carries the
 * user's session (whatever "session" the request held is never sent: the
 * relay builds each request anew).  Whatever does not parse, does not fit
 * a frame, or comes too slowly ends the connection with nothing
 * forwarded.  kw_cli_relay_free stops the threads and joins them.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cli/sandbox_relay.h"
#include "client/client_fd.h"
#include "client/frame.h"
#include "client/proto.h"
#include "common/errors.h"

#define MAX_CONNS	64
#define HELLO_MS	5000	/* for the token line, from accept */
#define FRAME_MS	10000	/* for the rest of a frame once it has begun */
#define IDLE_MS		120000	/* between requests */
#define TOKEN_LINE	"KWRELAY "
#define TOKEN_LINE_LEN	(sizeof(TOKEN_LINE) - 1 + KW_RELAY_TOKEN_HEX + 1)

/* What passes.  key.get passes only for the names the run was given. */
static const struct relay_op {
	const char *name;
	bool key_named;		/* args.name must be one of --relay-key's */
} relay_ops[] = {
	{ .name = "status" },
	{ .name = "policy.check" },
	{ .name = "policy.detector" },
	{ .name = "policy.redact" },
	{ .name = "key.get", .key_named = true },
};

struct conn {
	struct kw_cli_relay *relay;
	pthread_t thread;
	int fd;			/* closed by the reaper, after the join */
	bool used, done;
};

struct kw_cli_relay {
	struct kw_cli *cli;
	char *const *keys;
	size_t n_keys;
	const char *level;	/* the sandbox's, for policy.check's "sandboxed" */
	char token[KW_RELAY_TOKEN_HEX + 1];
	int listen_fd;
	int stop[2];		/* readable once the relay stops */
	pthread_t acceptor;
	bool serving;
	pthread_mutex_t lock;	/* conns[].used/done/fd */
	struct conn conns[MAX_CONNS];
};

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is readable before deadline: 1, or 0 (time out, stop, error). */
static int
wait_readable(struct kw_cli_relay *r, int fd, long long deadline)
{
	for (;;) {
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = r->stop[0],
		    .events = POLLIN } };
		long long left = deadline - now_ms();
		int n;

		if (left <= 0)
			return 0;
		n = poll(p, 2, left > 60000 ? 60000 : (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (p[1].revents & POLLIN))
			return 0;
		if (n > 0)
			return 1;
	}
}

/* The token line, exactly, in time: true when it names this run's token. */
static bool
token_ok(struct kw_cli_relay *r, int fd)
{
	char line[TOKEN_LINE_LEN];
	size_t got = 0;
	long long deadline = now_ms() + HELLO_MS;
	bool ok = false;

	/* Never read past the line: what follows is the first frame. */
	while (got < sizeof(line) && !memchr(line, '\n', got)) {
		ssize_t n;

		if (!wait_readable(r, fd, deadline))
			goto out;
		n = recv(fd, line + got, sizeof(line) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto out;
		got += (size_t)n;
	}
	ok = got == sizeof(line) && line[sizeof(line) - 1] == '\n' &&
	    memcmp(line, TOKEN_LINE, sizeof(TOKEN_LINE) - 1) == 0 &&
	    sodium_memcmp(line + sizeof(TOKEN_LINE) - 1, r->token, KW_RELAY_TOKEN_HEX) == 0;
 out:
	sodium_memzero(line, sizeof(line));
	return ok;
}

/* One request frame: 0 with *body, or an error (closed, too large, too slow). */
static int
read_frame(struct kw_cli_relay *r, int fd, uint8_t **body, size_t *len)
{
	struct kw_frame_reader rd;
	uint8_t buf[4096];
	long long deadline = now_ms() + IDLE_MS;
	int ret = KW_ERR_CLOSED;

	kw_frame_reader_init(&rd, KW_FRAME_MAX);
	for (;;) {
		size_t want = rd.hdr_got < KW_FRAME_HDR ? KW_FRAME_HDR - rd.hdr_got :
		    rd.len - rd.body_got, used;
		ssize_t n;

		if (!wait_readable(r, fd, deadline))
			break;
		n = recv(fd, buf, want < sizeof(buf) ? want : sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		/* A frame begun must end soon: a client that dribbles is cut off. */
		if (!kw_frame_reader_partial(&rd))
			deadline = now_ms() + FRAME_MS;
		if ((ret = kw_frame_feed(&rd, buf, (size_t)n, &used)) < 0)
			break;
		if (ret == 1) {
			ret = kw_frame_take(&rd, body, len);
			break;
		}
		ret = KW_ERR_CLOSED;
	}
	sodium_memzero(buf, sizeof(buf));
	kw_frame_reader_reset(&rd);
	return ret < 0 ? ret : 0;
}

/* Send a reply (msg is consumed); the frame may carry a key, so it is wiped. */
static int
reply(int fd, json_t *msg)
{
	uint8_t *frame = NULL;
	size_t len = 0;
	int r;

	if (!msg)
		return KW_ERR_NOMEM;
	r = kw_msg_encode(msg, &frame, &len);
	json_decref(msg);
	if (r == 0)
		r = kw_send_all(fd, frame, len);
	if (frame) {
		sodium_memzero(frame, len);
		free(frame);
	}
	return r;
}

/* Whether the request may go on; NULL when not. */
static const struct relay_op *
allowed(const struct kw_cli_relay *r, const struct kw_request *req)
{
	for (size_t i = 0; i < KW_ELEMENTSOF(relay_ops); i++) {
		const char *name;

		if (strcmp(req->op, relay_ops[i].name) != 0)
			continue;
		if (!relay_ops[i].key_named)
			return &relay_ops[i];
		name = json_string_value(json_object_get(req->args, "name"));
		for (size_t k = 0; name && k < r->n_keys; k++)
			if (strcmp(name, r->keys[k]) == 0)
				return &relay_ops[i];
		return NULL;
	}
	return NULL;
}

/* hello is answered here: the relay's broker connection has made its own. */
static json_t *
hello(const struct kw_request *req)
{
	json_t *v = json_object_get(req->args, "version");

	if (!json_is_integer(v) || json_integer_value(v) != KW_PROTOCOL_VERSION)
		return kw_reply_error(req->id, KW_ERR_VERSION, "the relay speaks protocol "
		    "version 1");
	return kw_reply_ok(req->id, json_pack("{s:i, s:s}", "version", KW_PROTOCOL_VERSION,
	    "server", "keywarden relay"));
}

/*
 * Forward one admitted request on the relay's broker connection (made on
 * first use).  The reply to send; *fatal when the broker connection is
 * gone (the client connection then ends after the reply).
 */
static json_t *
forward(struct kw_cli_relay *r, kw_client **c, const struct kw_request *req, bool *fatal)
{
	json_t *res = NULL;
	char *msg = NULL, text[600];
	int e;

	if (!*c && (e = kw_cli_connect_quiet(r->cli, c)) < 0) {
		*c = NULL;
		*fatal = true;
		snprintf(text, sizeof(text), "keywarden run's relay cannot reach the broker: %s",
		    kw_strerror(e));
		return kw_reply_error(req->id, e, text);
	}
	if (strcmp(req->op, "policy.check") == 0 && json_is_object(req->args) &&
	    json_object_set_new(req->args, "sandboxed", json_string(r->level)) < 0)
		return kw_reply_error(req->id, KW_ERR_NOMEM, kw_strerror(KW_ERR_NOMEM));
	e = kw_client_call(*c, req->op, req->args, &res, &msg);
	if (e == 0)
		return kw_reply_ok(req->id, res);
	*fatal = e == KW_ERR_CLOSED || e == KW_ERR_TIMEOUT || e == KW_ERR_IO;
	json_t *out = kw_reply_error(req->id, e, msg ? msg : kw_strerror(e));
	free(msg);
	return out;
}

static void
serve_conn(struct kw_cli_relay *r, int fd)
{
	kw_client *c = NULL;
	bool fatal = false;

	if (!token_ok(r, fd))
		return;	/* no token, a wrong one, or too slow: nothing is said */
	while (!fatal) {
		struct kw_request req = { 0 };
		uint8_t *body = NULL;
		size_t len = 0;
		char why[256];
		json_t *out;
		int e;

		if (read_frame(r, fd, &body, &len) < 0)
			break;
		e = kw_request_parse(body, len, &req, why, sizeof(why));
		sodium_memzero(body, len);
		free(body);
		if (e < 0) {
			kw_request_clear(&req);
			break;	/* not the protocol: closed, nothing forwarded */
		}
		if (strcmp(req.op, "hello") == 0)
			out = hello(&req);
		else if (allowed(r, &req))
			out = forward(r, &c, &req, &fatal);
		else
			out = kw_reply_error(req.id, KW_ERR_DENIED, KW_RELAY_REFUSED);
		kw_request_clear(&req);
		if (reply(fd, out) < 0)
			break;
	}
	kw_client_free(c);
}

static void *
conn_thread(void *arg)
{
	struct conn *k = arg;
	struct kw_cli_relay *r = k->relay;

	serve_conn(r, k->fd);
	shutdown(k->fd, SHUT_RDWR);
	pthread_mutex_lock(&r->lock);
	k->done = true;
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* Join finished connections (all, when stopping: each is told to end first). */
static void
reap(struct kw_cli_relay *r, bool all)
{
	for (size_t i = 0; i < MAX_CONNS; i++) {
		struct conn *k = &r->conns[i];
		bool join;

		pthread_mutex_lock(&r->lock);
		join = k->used && (k->done || all);
		if (join && all && !k->done)
			shutdown(k->fd, SHUT_RDWR);
		pthread_mutex_unlock(&r->lock);
		if (!join)
			continue;
		pthread_join(k->thread, NULL);
		close(k->fd);
		k->used = k->done = false;
		k->fd = -1;
	}
}

/* A free slot for fd and its thread; false when all are taken (fd is then closed). */
static bool
start_conn(struct kw_cli_relay *r, int fd)
{
	reap(r, false);
	for (size_t i = 0; i < MAX_CONNS; i++) {
		struct conn *k = &r->conns[i];

		if (k->used)
			continue;
		*k = (struct conn){ .relay = r, .fd = fd, .used = true };
		if (pthread_create(&k->thread, NULL, conn_thread, k) == 0)
			return true;
		k->used = false;
		break;
	}
	close(fd);
	return false;
}

static void *
accept_thread(void *arg)
{
	struct kw_cli_relay *r = arg;

	for (;;) {
		struct pollfd p[2] = { { .fd = r->listen_fd, .events = POLLIN },
		    { .fd = r->stop[0], .events = POLLIN } };
		int fd;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents & POLLIN)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		fd = accept4(r->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			struct timeval tv = { .tv_sec = FRAME_MS / 1000 };

			/* A client that does not read its replies is not waited for long. */
			(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
			(void)start_conn(r, fd);
		} else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			/* Out of fds: the pending connection stays readable; do not spin on it. */
			struct pollfd s = { .fd = r->stop[0], .events = POLLIN };

			if (poll(&s, 1, 100) > 0)
				break;
		}
	}
	return NULL;
}

int
kw_cli_relay_new(struct kw_cli *cli, char *const *keys, size_t n_keys, const char *level,
    struct kw_cli_relay **ret)
{
	struct kw_cli_relay *r = calloc(1, sizeof(*r));
	unsigned char raw[KW_RELAY_TOKEN_HEX / 2];

	if (!r)
		return KW_ERR_NOMEM;
	if (pipe2(r->stop, O_CLOEXEC) != 0) {
		free(r);
		return KW_ERR_IO;
	}
	r->cli = cli;
	r->keys = keys;
	r->n_keys = n_keys;
	r->level = level;
	r->listen_fd = -1;
	pthread_mutex_init(&r->lock, NULL);
	for (size_t i = 0; i < MAX_CONNS; i++)
		r->conns[i].fd = -1;
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(r->token, sizeof(r->token), raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
	*ret = r;
	return 0;
}

int
kw_cli_relay_env(const struct kw_cli_relay *r, unsigned short port, char *out, size_t out_len)
{
	int n = snprintf(out, out_len, "%s=127.0.0.1:%u:%s", KW_RELAY_ENV, (unsigned)port,
	    r->token);

	return n < 0 || (size_t)n >= out_len ? KW_ERR_INVALID : 0;
}

int
kw_cli_relay_serve(void *arg, int listen_fd)
{
	struct kw_cli_relay *r = arg;

	if (r->listen_fd >= 0)
		close(r->listen_fd);
	r->listen_fd = listen_fd;
	if (pthread_create(&r->acceptor, NULL, accept_thread, r) != 0)
		return KW_ERR_IO;
	r->serving = true;
	return 0;
}

void
kw_cli_relay_free(struct kw_cli_relay *r)
{
	if (!r)
		return;
	(void)!write(r->stop[1], "x", 1);
	if (r->serving)
		pthread_join(r->acceptor, NULL);
	reap(r, true);
	if (r->listen_fd >= 0)
		close(r->listen_fd);
	close(r->stop[0]);
	close(r->stop[1]);
	pthread_mutex_destroy(&r->lock);
	sodium_memzero(r->token, sizeof(r->token));
	free(r);
}
