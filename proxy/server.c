/*
 * server.c - the HTTP side: libmicrohttpd serving Claude Code on loopback
 * (proxy/DESIGN.md).
 *
 * One thread per connection: the upstream call of a request is driven in
 * its connection's thread (forward.c), so a slow stream costs only its own
 * thread and the body goes out as upstream writes it.  MHD bounds what a
 * client can make the proxy hold: the connection limit, an idle timeout,
 * a per-connection memory pool (oversized headers are answered 431 by MHD
 * itself), and the body limit here (413).  The raw request URI is taken in
 * MHD's URI log callback, before MHD decodes it, so path and query go
 * upstream byte for byte.
 *
 * Per request: the credential is read and checked (none, or a real sk-ant-
 * key, is refused and reported), the broker authorizes it and hands over
 * the one key, the call is forwarded, and when the response has ended or
 * the client went away, proxy.record is queued with what the call cost.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <sodium.h>

#include "common/clock.h"
#include "common/errors.h"
#include "proxy/proxy.h"

#define READ_BLOCK	(16u * 1024)
#define THREAD_STACK	(1u << 20)
#define URI_MAX		(16u * 1024)
#define TOKEN_MAX	512

struct request {
	char *uri;			/* raw, as sent */
	char method[16];
	bool started, too_large;
	uint8_t *body;
	size_t body_len, body_cap;
	json_t *call;			/* set once authorized: a record is owed */
	bool owing;			/* counted in `owed` until on_completed */
	struct kw_fwd *fwd;
	struct kw_usage *usage;
	long status;
	size_t bytes_out;
	struct timespec start;
	char error[CURL_ERROR_SIZE + 256];
};

static const struct kw_proxy_settings *settings;

/*
 * Requests past the drain check, each owing a record until on_completed
 * (kw_proxy_server_drain waits for them), and whether a stop has begun.
 */
static struct MHD_Daemon *daemon_;
static pthread_mutex_t drain_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t drain_cond = PTHREAD_COND_INITIALIZER;
static unsigned owed;
static bool draining;

/* Whether a new call may begin (false once draining); counted when it may. */
static bool
owe_record(void)
{
	bool ok;

	pthread_mutex_lock(&drain_lock);
	ok = !draining;
	if (ok)
		owed++;
	pthread_mutex_unlock(&drain_lock);
	return ok;
}

static void
owed_done(void)
{
	pthread_mutex_lock(&drain_lock);
	if (--owed == 0)
		pthread_cond_broadcast(&drain_cond);
	pthread_mutex_unlock(&drain_lock);
}

static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct request *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	kw_proxy_heap_thread_seen();
	clock_gettime(CLOCK_MONOTONIC, &r->start);
	r->uri = strndup(uri, URI_MAX);
	return r;
}

static enum MHD_Result
answer_error(struct MHD_Connection *conn, unsigned status, const char *type, const char *msg)
{
	char *body = kw_proxy_error_body(type, msg);
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (!body)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "content-type", "application/json");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void
refuse(struct request *r, const char *reason)
{
	size_t n = strcspn(r->uri, "?");
	json_t *args = json_pack("{s:s, s:s, s:s%}", "reason", reason, "method", r->method,
	    "path", r->uri, n < 1024 ? n : 1024);

	kw_proxy_broker_notify("proxy.refuse", args);
}

static long
elapsed_ms(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* The model the request asked for, when the response did not say. */
static char *
request_model(const struct request *r)
{
	json_t *doc = r->body_len ? json_loadb((const char *)r->body, r->body_len, 0, NULL) : NULL;
	const char *m = json_string_value(json_object_get(doc, "model"));
	char *copy = m && strlen(m) < 128 ? strdup(m) : NULL;

	json_decref(doc);
	return copy;
}

static void
record(struct request *r)
{
	const char *model = NULL;
	long long in = -1, out = -1;
	char *asked = NULL;

	if (r->usage) {
		kw_usage_finish(r->usage);
		model = kw_usage_model(r->usage);
		in = kw_usage_input(r->usage);
		out = kw_usage_output(r->usage);
	}
	if (!model)
		model = asked = request_model(r);
	json_t *args = json_pack("{s:O, s:s?, s:i, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "call", r->call, "model", model, "status", (int)r->status,
	    "input_tokens", (json_int_t)(in < 0 ? 0 : in),
	    "output_tokens", (json_int_t)(out < 0 ? 0 : out),
	    "bytes_in", (json_int_t)r->body_len, "bytes_out", (json_int_t)r->bytes_out,
	    "latency_ms", (json_int_t)elapsed_ms(&r->start),
	    "ttfb_ms", (json_int_t)(r->fwd ? kw_fwd_ttfb_ms(r->fwd) : 0));
	if (args && r->error[0])
		json_object_set_new(args, "error", json_string(r->error));
	kw_proxy_broker_notify("proxy.record", args);
	free(asked);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct request *r = *con_cls;

	if (!r)
		return;
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && !r->error[0])
		snprintf(r->error, sizeof(r->error), "%s",
		    toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT ? "client disconnected" :
		    toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? "client timed out" :
		    "connection closed");
	if (r->call)
		record(r);
	/* After the record is queued: a drain that sees none owed flushes it. */
	if (r->owing)
		owed_done();
	kw_fwd_free(r->fwd);
	kw_usage_free(r->usage);
	json_decref(r->call);
	free(r->uri);
	free(r->body);
	free(r);
	*con_cls = NULL;
}

static ssize_t
read_body(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct request *r = cls;
	ssize_t n = kw_fwd_read(r->fwd, buf, max);

	if (n > 0) {
		r->bytes_out += (size_t)n;
		if (r->usage)
			kw_usage_feed(r->usage, buf, (size_t)n);
		return n;
	}
	if (n == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	snprintf(r->error, sizeof(r->error), "%s",
	    kw_fwd_error(r->fwd) ? kw_fwd_error(r->fwd) : "keywarden: upstream failed");
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

struct header_walk {
	struct curl_slist *list;
	bool accept, content_type, failed;
};

static enum MHD_Result
add_header(void *cls, enum MHD_ValueKind kind, const char *name, const char *value)
{
	struct header_walk *w = cls;
	struct curl_slist *l;
	char *line;

	if (!kw_proxy_header_forwarded(name))
		return MHD_YES;
	w->accept |= strcasecmp(name, "accept") == 0;
	w->content_type |= strcasecmp(name, "content-type") == 0;
	/* "Name;" is curl's way of sending a header with an empty value. */
	if (asprintf(&line, value && *value ? "%s: %s" : "%s;", name, value) < 0) {
		w->failed = true;
		return MHD_NO;
	}
	l = curl_slist_append(w->list, line);
	free(line);
	if (!l) {
		w->failed = true;
		return MHD_NO;
	}
	w->list = l;
	return MHD_YES;
}

/* The client's headers for upstream; curl adds none of its own. */
static struct curl_slist *
upstream_headers(struct MHD_Connection *conn)
{
	struct header_walk w = { 0 };

	MHD_get_connection_values(conn, MHD_HEADER_KIND, add_header, &w);
	if (!w.failed && !w.accept)
		w.list = curl_slist_append(w.list, "Accept:");
	if (w.list && !w.content_type)
		w.list = curl_slist_append(w.list, "Content-Type:");
	if (w.list)
		w.list = curl_slist_append(w.list, "Expect:");
	if (w.failed || !w.list) {
		curl_slist_free_all(w.list);
		return NULL;
	}
	return w.list;
}

static enum MHD_Result
queue_upstream_response(struct MHD_Connection *conn, struct request *r)
{
	long status = kw_fwd_status(r->fwd);
	long long len = kw_fwd_length(r->fwd);
	struct MHD_Response *resp;
	const char *ctype = NULL;
	enum MHD_Result ret;

	/* A length upstream announced is kept (no chunking, a short body is
	   an error the client sees); a stream goes out chunked as it comes. */
	if (status == 204 || status == 304)
		len = 0;
	resp = MHD_create_response_from_callback(len >= 0 ? (uint64_t)len : MHD_SIZE_UNKNOWN,
	    READ_BLOCK, read_body, r, NULL);
	if (!resp)
		return MHD_NO;
	for (const struct curl_slist *h = kw_fwd_headers(r->fwd); h; h = h->next) {
		char name[256];
		const char *colon = strchr(h->data, ':');
		size_t n = colon ? (size_t)(colon - h->data) : 0;
		const char *value = colon ? colon + 1 : "";

		if (!n || n >= sizeof(name))
			continue;
		memcpy(name, h->data, n);
		name[n] = '\0';
		while (*value == ' ' || *value == '\t')
			value++;
		if (strcasecmp(name, "content-type") == 0)
			ctype = value;
		MHD_add_response_header(resp, name, value);
	}
	r->status = status;
	r->usage = kw_usage_new(ctype);
	ret = MHD_queue_response(conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Tokens are short and printable: anything else is not sent to the broker. */
static bool
plausible_token(const char *t)
{
	size_t n = 0;

	for (; t[n]; n++)
		if (n >= TOKEN_MAX || t[n] <= ' ' || t[n] > '~')
			return false;
	return n > 0;
}

static enum MHD_Result
forward(struct MHD_Connection *conn, struct request *r)
{
	const char *xkey = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "x-api-key");
	const char *authz = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "authorization");
	const char *cred = kw_proxy_credential(xkey, authz);
	const char *bearer = kw_proxy_credential(NULL, authz);
	struct kw_proxy_grant grant = { 0 };
	char *msg = NULL, path[2048], err[CURL_ERROR_SIZE + 160];
	const char *type;
	int rc;

	if (!cred) {
		refuse(r, "no_token");
		return answer_error(conn, 401, "authentication_error", "keywarden: no credential; "
		    "run claude with `keywarden exec --proxy -- claude` or set apiKeyHelper to "
		    "`keywarden key get anthropic --proxy`");
	}
	/* A real key in either place: the client should hold none. */
	if (strncmp(cred, "sk-ant-", 7) == 0 || (bearer && strncmp(bearer, "sk-ant-", 7) == 0)) {
		refuse(r, "real_key");
		return answer_error(conn, 401, "authentication_error", "keywarden: a real Anthropic "
		    "API key was sent to the proxy and refused; clients hold a keywarden token "
		    "(`keywarden key get anthropic --proxy`), never the key");
	}
	if (!plausible_token(cred)) {
		refuse(r, "malformed");
		return answer_error(conn, 401, "authentication_error", "keywarden: the credential "
		    "is not a keywarden token (`keywarden key get anthropic --proxy` gives one)");
	}
	/* Stopping: calls in flight finish, a keep-alive client's next one is retried. */
	if (!(r->owing = owe_record()))
		return answer_error(conn, 503, "api_error", "keywarden: the API proxy is "
		    "restarting; retry the request");
	snprintf(path, sizeof(path), "%.*s", (int)strcspn(r->uri, "?"), r->uri);
	rc = kw_proxy_broker_authorize(cred, r->method, path, &grant, &msg);
	if (rc < 0) {
		unsigned status = kw_proxy_refusal_status(rc, msg, &type);
		char text[512];
		if (rc == KW_ERR_CLOSED || rc == KW_ERR_TIMEOUT || rc == KW_ERR_IO)
			snprintf(text, sizeof(text), "keywarden: the broker did not answer (%s)",
			    kw_strerror(rc));
		else
			snprintf(text, sizeof(text), "%s%.400s",
			    msg && strncmp(msg, "keywarden", 9) == 0 ? "" : "keywarden: ",
			    msg ? msg : kw_strerror(rc));
		free(msg);
		return answer_error(conn, status, type, text);
	}
	free(msg);
	r->call = TAKE_PTR(grant.call);
	struct kw_fwd_request req = {
		.method = r->method, .uri = r->uri, .headers = upstream_headers(conn),
		.body = r->body, .body_len = r->body_len,
	};
	if (!req.headers) {
		kw_proxy_grant_clear(&grant);
		r->status = 502;
		snprintf(r->error, sizeof(r->error), "out of memory");
		return answer_error(conn, 502, "api_error", "keywarden: out of memory");
	}
	rc = kw_fwd_start(&req, grant.key, &r->fwd, err, sizeof(err));
	/* curl holds the one copy it needs (and forward.c wipes that once sent). */
	kw_proxy_grant_clear(&grant);
	if (rc < 0) {
		r->status = 502;
		snprintf(r->error, sizeof(r->error), "%s", err);
		return answer_error(conn, 502, "api_error", err);
	}
	return queue_upstream_response(conn, r);
}

static int
take_body(struct request *r, const char *data, size_t n)
{
	if (r->too_large || r->body_len + n > KW_PROXY_BODY_MAX) {
		r->too_large = true;
		return 0;
	}
	if (r->body_len + n > r->body_cap) {
		size_t cap = (r->body_len + n) * 2;
		if (cap > KW_PROXY_BODY_MAX)
			cap = KW_PROXY_BODY_MAX;
		uint8_t *b = realloc(r->body, cap);
		if (!b)
			return KW_ERR_NOMEM;
		r->body = b;
		r->body_cap = cap;
	}
	memcpy(r->body + r->body_len, data, n);
	r->body_len += n;
	return 0;
}

static enum MHD_Result
check_header(void *cls, enum MHD_ValueKind kind, const char *name, const char *value)
{
	kw_proxy_framing_header(cls, name, value);
	return MHD_YES;
}

/* NULL when the request's headers are fit to forward, else why not (proxy/headers.c). */
static const char *
framing_problem(struct MHD_Connection *conn)
{
	struct kw_proxy_framing f = { 0 };

	MHD_get_connection_values(conn, MHD_HEADER_KIND, check_header, &f);
	return kw_proxy_framing_finish(&f);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct request *r = *con_cls;

	if (!r || !r->uri)
		return MHD_NO;
	if (!r->started) {
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "content-length");
		const char *problem;
		r->started = true;
		snprintf(r->method, sizeof(r->method), "%s", method);
		if (r->uri[0] != '/' || strlen(method) >= sizeof(r->method)) {
			refuse(r, "malformed");
			return answer_error(conn, 400, "invalid_request_error",
			    "keywarden: expected a request for a path (\"/v1/...\")");
		}
		/* Before the body is read: nothing of it is taken for a request. */
		if ((problem = framing_problem(conn))) {
			refuse(r, "malformed");
			return answer_error(conn, 400, "invalid_request_error", problem);
		}
		if (cl && strtoull(cl, NULL, 10) > KW_PROXY_BODY_MAX) {
			refuse(r, "malformed");
			return answer_error(conn, 413, "request_too_large",
			    "keywarden: request body larger than 32 MB");
		}
		return MHD_YES;
	}
	if (*upload_size) {
		if (take_body(r, upload, *upload_size) < 0)
			return MHD_NO;
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->too_large) {
		refuse(r, "malformed");
		return answer_error(conn, 413, "request_too_large",
		    "keywarden: request body larger than 32 MB");
	}
	return forward(conn, r);
}

int
kw_proxy_server_listen(const struct kw_proxy_settings *s, char *ret_listen, size_t listen_len,
    char *err, size_t err_len)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN];
	int one = 1, fd;

	fd = socket(s->listen_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&s->listen_addr, s->listen_len) < 0 ||
	    listen(fd, 511) < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		goto fail;
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
		snprintf(ret_listen, listen_len, "[%s]:%u", host, ntohs(v6->sin6_port));
	} else {
		struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
		snprintf(ret_listen, listen_len, "%s:%u", host, ntohs(v4->sin_port));
	}
	return fd;
 fail:
	snprintf(err, err_len, "broker.apiProxy.listen: cannot listen: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
	return KW_ERR_IO;
}

int
kw_proxy_server_start(const struct kw_proxy_settings *s, int fd, char *err, size_t err_len)
{
	/* ITC: MHD_quiesce_daemon needs it in this threading mode. */
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_POLL | MHD_USE_ERROR_LOG | MHD_USE_ITC;
	struct MHD_Daemon *d;

	settings = s;
	if (s->listen_addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL,
	    MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_CONNECTION_LIMIT, s->max_connections,
	    MHD_OPTION_CONNECTION_TIMEOUT, s->idle_timeout_s,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)KW_PROXY_CONN_MEMORY,
	    MHD_OPTION_THREAD_STACK_SIZE, (size_t)THREAD_STACK,
	    /* RFC-strict parsing (whitespace in names, bare LF, obsolete line
	       folding refused); headers.c checks the framing on top. */
	    MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
	    MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
	    MHD_OPTION_END);
	if (!d) {
		close(fd);
		snprintf(err, err_len, "broker.apiProxy.listen: the HTTP server did not start");
		return KW_ERR_IO;
	}
	daemon_ = d;
	return 0;
}

unsigned
kw_proxy_server_drain(int ms)
{
	struct timespec until;
	MHD_socket fd;
	unsigned left;

	pthread_mutex_lock(&drain_lock);
	draining = true;
	pthread_mutex_unlock(&drain_lock);
	/* No new connections: the port is free for the next proxy at once. */
	if (daemon_ && (fd = MHD_quiesce_daemon(daemon_)) != MHD_INVALID_SOCKET)
		close(fd);
	kw_deadline_after_ms(ms, &until);
	pthread_mutex_lock(&drain_lock);
	while (owed > 0 && pthread_cond_timedwait(&drain_cond, &drain_lock, &until) != ETIMEDOUT)
		;
	left = owed;
	pthread_mutex_unlock(&drain_lock);
	return left;
}
