/*
 * client.c - blocking client connection to the broker (see keywarden.h).
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "client/client_fd.h"
#include "client/frame.h"
#include "client/keywarden.h"
#include "client/proto.h"
#include "client/trust.h"

/* A broker that does not answer in this time is treated as gone. */
#define KW_CLIENT_IO_TIMEOUT_S 30

struct kw_client {
	int fd;
	json_int_t next_id;
	char *session;		/* token attached to requests, or NULL */
	int server_version;
	char *server_name;
};

const char *
kw_default_socket(void)
{
	const char *s = getenv("KEYWARDEN_SOCKET");

	return (s && *s) ? s : "/run/keywarden/broker.sock";
}

int
kw_send_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return (errno == EPIPE || errno == ECONNRESET) ? KW_ERR_CLOSED :
			    (errno == EAGAIN ? KW_ERR_TIMEOUT : KW_ERR_IO);
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
recv_frame(int fd, uint8_t **ret_body, size_t *ret_len)
{
	struct kw_frame_reader rd;
	uint8_t buf[4096];
	int r;

	kw_frame_reader_init(&rd, KW_FRAME_MAX);
	for (;;) {
		/* Read only what the current frame needs: replies are not pipelined. */
		size_t want = rd.hdr_got < KW_FRAME_HDR ? KW_FRAME_HDR - rd.hdr_got :
		    rd.len - rd.body_got;
		if (want > sizeof(buf))
			want = sizeof(buf);
		ssize_t n = recv(fd, buf, want, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = errno == EAGAIN ? KW_ERR_TIMEOUT :
			    errno == ECONNRESET ? KW_ERR_CLOSED : KW_ERR_IO;
			goto out;
		}
		if (n == 0) {
			r = KW_ERR_CLOSED;
			goto out;
		}
		size_t used;
		r = kw_frame_feed(&rd, buf, (size_t)n, &used);
		if (r < 0)
			goto out;
		if (r == 1) {
			r = kw_frame_take(&rd, ret_body, ret_len);
			goto out;
		}
	}
 out:
	/* Both held pieces of the reply, which may carry a key or a token. */
	sodium_memzero(buf, sizeof(buf));
	kw_frame_reader_reset(&rd);
	return r;
}

int
kw_client_call(kw_client *c, const char *op, json_t *args, json_t **ret_result,
    char **ret_message)
{
	uint8_t *frame = NULL, *body = NULL;
	size_t flen = 0, blen = 0;
	json_int_t id;
	json_t *req;
	int r;

	if (!c || !op)
		return KW_ERR_INVALID;
	id = c->next_id++;
	if (!(req = kw_request_new(id, op, args, c->session)))
		return KW_ERR_NOMEM;
	r = kw_msg_encode(req, &frame, &flen);
	/* The encoded request may hold the token: wipe both copies after use. */
	json_object_del(req, "session");
	json_decref(req);
	if (r < 0 ||
	    (r = kw_send_all(c->fd, frame, flen)) < 0 ||
	    (r = recv_frame(c->fd, &body, &blen)) < 0)
		goto out;
	r = kw_reply_parse(body, blen, id, ret_result, ret_message);
 out:
	if (frame) {
		sodium_memzero(frame, flen);
		free(frame);
	}
	/* A reply may carry a session token (login). */
	if (body) {
		sodium_memzero(body, blen);
		free(body);
	}
	return r;
}

static void
wipe_free(char *s)
{
	if (s) {
		sodium_memzero(s, strlen(s));
		free(s);
	}
}

int
kw_client_set_session(kw_client *c, const char *token)
{
	char *copy = NULL;

	if (!c)
		return KW_ERR_INVALID;
	if (token && !(copy = strdup(token)))
		return KW_ERR_NOMEM;
	wipe_free(c->session);
	c->session = copy;
	return 0;
}

static int
handshake(kw_client *c)
{
	json_t *args = json_pack("{s:i}", "version", KW_PROTOCOL_VERSION);
	json_t *res = NULL;
	int r;

	if (!args)
		return KW_ERR_NOMEM;
	r = kw_client_call(c, "hello", args, &res, NULL);
	json_decref(args);
	if (r < 0)
		return r;
	json_t *v = json_object_get(res, "version");
	const char *name = json_string_value(json_object_get(res, "server"));
	if (!json_is_integer(v) || json_integer_value(v) != KW_PROTOCOL_VERSION) {
		json_decref(res);
		return KW_ERR_VERSION;
	}
	c->server_version = (int)json_integer_value(v);
	c->server_name = strdup(name ? name : "unknown");
	json_decref(res);
	return c->server_name ? 0 : KW_ERR_NOMEM;
}

int
kw_client_connect_trusted(const char *socket_path, uid_t broker_uid, kw_client **ret_client,
    char *why, size_t why_len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = KW_CLIENT_IO_TIMEOUT_S };
	char unused[1];
	kw_client *c;
	uid_t owner;
	int r;

	if (!why) {
		why = unused;
		why_len = sizeof(unused);
	}
	if (!ret_client)
		return KW_ERR_INVALID;
	if (!socket_path)
		socket_path = kw_default_socket();
	if (strlen(socket_path) >= sizeof(sa.sun_path)) {
		snprintf(why, why_len, "socket path longer than %zu bytes", sizeof(sa.sun_path) - 1);
		return KW_ERR_INVALID;
	}
	/* Nothing is sent, not even hello, before both trust checks passed. */
	if ((r = kw_trust_check_path(socket_path, broker_uid, &owner, why, why_len)) < 0)
		return r;
	strcpy(sa.sun_path, socket_path);
	if (!(c = calloc(1, sizeof(*c))))
		return KW_ERR_NOMEM;
	c->next_id = 1;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		snprintf(why, why_len, "socket: %s", strerror(errno));
		r = KW_ERR_IO;
		goto fail;
	}
	(void)setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int saved = errno;
		snprintf(why, why_len, "%s: %s", socket_path, strerror(saved));
		errno = saved;
		r = KW_ERR_CONNECT;
		goto fail;
	}
	if ((r = kw_trust_check_peer(c->fd, socket_path, owner, why, why_len)) < 0)
		goto fail;
	if ((r = handshake(c)) < 0) {
		snprintf(why, why_len, "%s: %s", socket_path, kw_strerror(r));
		goto fail;
	}
	*ret_client = c;
	return 0;
 fail:
	{
		int saved = errno;
		kw_client_free(c);
		errno = saved;
	}
	return r;
}

int
kw_client_connect_fd(int fd, kw_client **ret_client)
{
	struct timeval tv = { .tv_sec = KW_CLIENT_IO_TIMEOUT_S };
	kw_client *c;
	int r;

	if (!(c = calloc(1, sizeof(*c)))) {
		close(fd);
		return KW_ERR_NOMEM;
	}
	c->next_id = 1;
	c->fd = fd;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if ((r = handshake(c)) < 0) {
		kw_client_free(c);
		return r;
	}
	*ret_client = c;
	return 0;
}

int
kw_client_connect(const char *socket_path, kw_client **ret_client)
{
	return kw_client_connect_trusted(socket_path, geteuid(), ret_client, NULL, 0);
}

void
kw_client_free(kw_client *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	wipe_free(c->session);
	free(c->server_name);
	free(c);
}

int
kw_client_peer_uid(const kw_client *c, uid_t *ret_uid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (!c || !ret_uid)
		return KW_ERR_INVALID;
	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred))
		return KW_ERR_IO;
	*ret_uid = cred.uid;
	return 0;
}

int
kw_client_server_version(const kw_client *c)
{
	return c ? c->server_version : 0;
}

const char *
kw_client_server_name(const kw_client *c)
{
	return c && c->server_name ? c->server_name : "";
}

const char *
kw_version(void)
{
	return KW_VERSION;
}
