/*
 * api_upstream.c - a fast stand-in for Anthropic's Messages API, the upstream
 * of make bench's apiproxy section.
 *
 *   api_upstream --cert PEM --key PEM --port-file FILE [--port N]
 *                [--expect-key-file FILE] [--deltas N] [--gap-us N]
 *                [--max-seconds S]
 *
 * The bench measures what the API proxy adds to a call, so the upstream must
 * cost little next to it: this is libmicrohttpd (GnuTLS, TLS 1.3 only) with a
 * thread per connection, answering POST /v1/messages from memory.  A body
 * with "stream": true gets server-sent events (message_start,
 * content_block_start, N content_block_delta, content_block_stop,
 * message_delta with usage, message_stop), one event per write, the first
 * at once and each later one --gap-us after the one before (so a proxy that
 * buffered would show in the time to first byte); any other body gets one
 * JSON message with its usage.  Other paths get the API's 404 error.
 *
 * With --expect-key-file, a request whose x-api-key is not that file's first
 * line gets 401 authentication_error: the bench then also shows that the
 * proxy put the real key in.  The key is compared in constant time and never
 * printed.
 *
 * It binds 127.0.0.1 (port 0: any free one), then writes the port it got to
 * --port-file (the readiness signal), and runs until SIGTERM/SIGINT or
 * --max-seconds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <jansson.h>
#include <microhttpd.h>

#include "bench_util.h"

#define BODY_MAX	(1024 * 1024)	/* request bodies the bench sends are small */
#define KEY_MAX		512
#define EVENT_MAX	1024
#define TLS_PRIORITIES	"NORMAL:-VERS-ALL:+VERS-TLS1.3"

struct opts {
	const char *cert;
	const char *key;
	const char *port_file;
	const char *expect_key_file;
	unsigned port;
	unsigned deltas;
	unsigned gap_us;
	double max_seconds;
};

/* One request's state, from its first callback to its completion. */
struct call {
	char *body;
	size_t len;
	bool too_big;
};

/* One streamed reply: which event comes next. */
struct stream {
	unsigned next;		/* 0 .. deltas + 5 */
	unsigned deltas;
	unsigned gap_us;
	char model[128];
};

static struct opts opt = {
	.port = 0,
	.deltas = 8,
	.gap_us = 0,
	.max_seconds = 900,
};
static char expect_key[KEY_MAX];
static size_t expect_key_len;
static volatile sig_atomic_t stop_flag;

static void
on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void
usage(void)
{
	fprintf(stderr, "usage: api_upstream --cert PEM --key PEM --port-file FILE [--port N]\n"
	    "                    [--expect-key-file FILE] [--deltas N] [--gap-us N]\n"
	    "                    [--max-seconds S]\n");
	exit(2);
}

/* The whole file in a NUL-terminated heap buffer; NULL (logged) on failure. */
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f) {
		bench_log_errno("%s", path);
		return NULL;
	}
	for (;;) {
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap + 65536);
			if (!nb) {
				free(buf);
				fclose(f);
				bench_log("out of memory");
				return NULL;
			}
			buf = nb;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	fclose(f);
	buf[len] = '\0';
	return buf;
}

static int
load_expect_key(const char *path)
{
	char *s = slurp(path);
	size_t n;

	if (!s)
		return -1;
	n = strcspn(s, "\r\n");
	if (n == 0 || n >= sizeof(expect_key)) {
		bench_log("%s: no key on the first line", path);
		explicit_bzero(s, strlen(s));
		free(s);
		return -1;
	}
	memcpy(expect_key, s, n);
	expect_key_len = n;
	explicit_bzero(s, strlen(s));
	free(s);
	return 0;
}

/* Constant time in the length of the expected key. */
static bool
key_matches(const char *got)
{
	size_t n = got ? strlen(got) : 0, i;
	unsigned char diff = (unsigned char)(n != expect_key_len);

	for (i = 0; i < expect_key_len; i++)
		diff |= (unsigned char)(expect_key[i] ^ (i < n ? got[i] : 0));
	return diff == 0;
}

static enum MHD_Result
reply_json(struct MHD_Connection *conn, unsigned status, json_t *doc)
{
	char *text = json_dumps(doc, JSON_COMPACT);
	struct MHD_Response *resp;
	enum MHD_Result r;

	json_decref(doc);
	if (!text)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "request-id", "req_bench");
	r = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result
reply_error(struct MHD_Connection *conn, unsigned status, const char *type, const char *msg)
{
	return reply_json(conn, status, json_pack("{s:s, s:{s:s, s:s}}", "type", "error",
	    "error", "type", type, "message", msg));
}

static json_t *
usage_obj(unsigned in, unsigned out)
{
	return json_pack("{s:i, s:i}", "input_tokens", (int)in, "output_tokens", (int)out);
}

/* Event number i of a stream into buf: its length, 0 at the end. */
static size_t
stream_event(const struct stream *st, unsigned i, char *buf, size_t cap)
{
	json_t *data;
	const char *name;
	char *text;
	int n;

	if (i == 0) {
		name = "message_start";
		data = json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:[], s:n, s:o}}",
		    "type", "message_start", "message", "id", "msg_bench", "type", "message",
		    "role", "assistant", "model", st->model, "content", "stop_reason",
		    "usage", usage_obj(12, 1));
	} else if (i == 1) {
		name = "content_block_start";
		data = json_pack("{s:s, s:i, s:{s:s, s:s}}", "type", "content_block_start",
		    "index", 0, "content_block", "type", "text", "text", "");
	} else if (i < 2 + st->deltas) {
		name = "content_block_delta";
		data = json_pack("{s:s, s:i, s:{s:s, s:s}}", "type", "content_block_delta",
		    "index", 0, "delta", "type", "text_delta", "text", "bench ");
	} else if (i == 2 + st->deltas) {
		name = "content_block_stop";
		data = json_pack("{s:s, s:i}", "type", "content_block_stop", "index", 0);
	} else if (i == 3 + st->deltas) {
		name = "message_delta";
		data = json_pack("{s:s, s:{s:s, s:n}, s:o}", "type", "message_delta",
		    "delta", "stop_reason", "end_turn", "stop_sequence",
		    "usage", usage_obj(12, st->deltas));
	} else if (i == 4 + st->deltas) {
		name = "message_stop";
		data = json_pack("{s:s}", "type", "message_stop");
	} else {
		return 0;
	}
	if (!data)
		return 0;
	text = json_dumps(data, JSON_COMPACT);
	json_decref(data);
	if (!text)
		return 0;
	n = snprintf(buf, cap, "event: %s\ndata: %s\n\n", name, text);
	free(text);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* MHD's content reader: one event per call (MHD sends each at once). */
static ssize_t
stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *st = cls;
	char ev[EVENT_MAX];
	size_t n;

	(void)pos;
	if (st->next > 0 && st->gap_us > 0)
		usleep(st->gap_us);	/* a thread of its own: blocking is fine */
	n = stream_event(st, st->next, ev, sizeof(ev));
	if (n == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (n > max)
		return MHD_CONTENT_READER_END_WITH_ERROR;	/* MHD's buffer is larger */
	memcpy(buf, ev, n);
	st->next++;
	return (ssize_t)n;
}

static void
stream_free(void *cls)
{
	free(cls);
}

static enum MHD_Result
reply_stream(struct MHD_Connection *conn, const char *model)
{
	struct stream *st = calloc(1, sizeof(*st));
	struct MHD_Response *resp;
	enum MHD_Result r;

	if (!st)
		return MHD_NO;
	st->deltas = opt.deltas;
	st->gap_us = opt.gap_us;
	snprintf(st->model, sizeof(st->model), "%s", model);
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, EVENT_MAX, stream_read, st,
	    stream_free);
	if (!resp) {
		free(st);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "text/event-stream");
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
	MHD_add_response_header(resp, "request-id", "req_bench");
	r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result
answer(struct MHD_Connection *conn, const char *url, struct call *c)
{
	const char *k;
	json_t *doc, *m;
	const char *model = "claude-sonnet-4-5";
	bool stream;
	enum MHD_Result r;

	if (strcmp(url, "/v1/messages") != 0)
		return reply_error(conn, MHD_HTTP_NOT_FOUND, "not_found_error", "Not found");
	if (expect_key_len) {
		k = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "x-api-key");
		if (!key_matches(k))
			return reply_error(conn, MHD_HTTP_UNAUTHORIZED, "authentication_error",
			    "invalid x-api-key");
	}
	if (c->too_big)
		return reply_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "request_too_large",
		    "request too large");
	doc = json_loadb(c->body ? c->body : "", c->len, 0, NULL);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return reply_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_request_error",
		    "body is not a JSON object");
	}
	m = json_object_get(doc, "model");
	if (json_is_string(m))
		model = json_string_value(m);
	stream = json_is_true(json_object_get(doc, "stream"));
	if (stream) {
		r = reply_stream(conn, model);
	} else {
		r = reply_json(conn, MHD_HTTP_OK, json_pack(
		    "{s:s, s:s, s:s, s:s, s:[{s:s, s:s}], s:s, s:n, s:o}",
		    "id", "msg_bench", "type", "message", "role", "assistant", "model", model,
		    "content", "type", "text", "text", "bench reply", "stop_reason", "end_turn",
		    "stop_sequence", "usage", usage_obj(12, 3)));
	}
	json_decref(doc);
	return r;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *upload, size_t *upload_len, void **req_cls)
{
	struct call *c = *req_cls;

	(void)cls;
	(void)version;
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return MHD_NO;
		*req_cls = c;
		return MHD_YES;
	}
	if (*upload_len) {
		if (c->len + *upload_len > BODY_MAX) {
			c->too_big = true;
		} else {
			char *nb = realloc(c->body, c->len + *upload_len + 1);
			if (!nb)
				return MHD_NO;
			c->body = nb;
			memcpy(c->body + c->len, upload, *upload_len);
			c->len += *upload_len;
		}
		*upload_len = 0;
		return MHD_YES;
	}
	if (strcmp(method, "POST") != 0)
		return reply_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "invalid_request_error",
		    "POST only");
	return answer(conn, url, c);
}

static void
on_done(void *cls, struct MHD_Connection *conn, void **req_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct call *c = *req_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (c) {
		free(c->body);
		free(c);
		*req_cls = NULL;
	}
}

static int
write_port(const char *path, unsigned port)
{
	char tmp[4096];
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -1;
	f = fopen(tmp, "w");
	if (!f) {
		bench_log_errno("%s", tmp);
		return -1;
	}
	fprintf(f, "%u\n", port);
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		bench_log_errno("%s", path);
		return -1;
	}
	return 0;
}

static void
parse_args(int argc, char **argv)
{
	int i;
	long long v;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!val)
			usage();
		if (!strcmp(a, "--cert")) {
			opt.cert = val;
		} else if (!strcmp(a, "--key")) {
			opt.key = val;
		} else if (!strcmp(a, "--port-file")) {
			opt.port_file = val;
		} else if (!strcmp(a, "--expect-key-file")) {
			opt.expect_key_file = val;
		} else if (!strcmp(a, "--port")) {
			if ((v = bench_parse_uint(val, 0, 65535)) < 0)
				usage();
			opt.port = (unsigned)v;
		} else if (!strcmp(a, "--deltas")) {
			if ((v = bench_parse_uint(val, 0, 10000)) < 0)
				usage();
			opt.deltas = (unsigned)v;
		} else if (!strcmp(a, "--gap-us")) {
			if ((v = bench_parse_uint(val, 0, 10000000)) < 0)
				usage();
			opt.gap_us = (unsigned)v;
		} else if (!strcmp(a, "--max-seconds")) {
			if ((opt.max_seconds = bench_parse_seconds(val)) <= 0)
				usage();
		} else {
			usage();
		}
		i++;
	}
	if (!opt.cert || !opt.key || !opt.port_file)
		usage();
}

int
main(int argc, char **argv)
{
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	struct sockaddr_in sa;
	struct sigaction sact;
	char *cert, *key;
	uint64_t deadline;

	bench_prog = "api_upstream";
	parse_args(argc, argv);
	if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
		bench_log("this libmicrohttpd has no TLS");
		return 1;
	}
	if (opt.expect_key_file && load_expect_key(opt.expect_key_file) < 0)
		return 1;
	cert = slurp(opt.cert);
	key = slurp(opt.key);
	if (!cert || !key)
		return 1;

	memset(&sact, 0, sizeof(sact));
	sact.sa_handler = on_signal;
	sigaction(SIGTERM, &sact, NULL);
	sigaction(SIGINT, &sact, NULL);
	signal(SIGPIPE, SIG_IGN);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)opt.port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_TLS | MHD_USE_POLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	    MHD_OPTION_HTTPS_MEM_CERT, cert,
	    MHD_OPTION_HTTPS_MEM_KEY, key,
	    MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITIES,
	    MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096,
	    MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
	    MHD_OPTION_END);
	explicit_bzero(key, strlen(key));
	if (!d) {
		bench_log("cannot start the TLS server on 127.0.0.1:%u", opt.port);
		return 1;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	if (!info || write_port(opt.port_file, info->port) < 0) {
		MHD_stop_daemon(d);
		return 1;
	}
	deadline = bench_now_ns() + (uint64_t)(opt.max_seconds * 1e9);
	while (!stop_flag && bench_now_ns() < deadline)
		usleep(50000);
	MHD_stop_daemon(d);
	free(cert);
	free(key);
	explicit_bzero(expect_key, sizeof(expect_key));
	return 0;
}
