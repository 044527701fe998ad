/*
 * usage.c - the tokens and model of a Messages API response, read while it
 * streams past (proxy/DESIGN.md: proxy.record).
 *
 * A JSON reply carries "model" and "usage" at the top; a stream of
 * server-sent events carries them in message_start (model, input_tokens)
 * and message_delta (output_tokens, cumulative).  Bytes arrive in whatever
 * pieces TCP made, so the event parser keeps one partial line and one
 * event's data at a time, each bounded: a line or event past its bound is
 * skipped, never grown.  Only the two events that matter are parsed as
 * JSON; the text deltas between them are not looked at.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "proxy/proxy.h"

#define LINE_MAX_LEN	(64u * 1024)	/* one SSE line kept at most */
#define DATA_MAX_LEN	(64u * 1024)	/* one interesting event's data */
#define JSON_MAX_LEN	(8u * 1024 * 1024)

struct kw_usage {
	bool sse;
	long long in, out;
	char *model;
	/* SSE */
	char *line;
	size_t line_len, line_cap;
	bool line_skip;			/* the current line is too long: dropped */
	char event[64];
	char *data;
	size_t data_len, data_cap;
	bool data_skip;
	/* JSON */
	char *json;
	size_t json_len, json_cap;
	bool json_skip;
};

struct kw_usage *
kw_usage_new(const char *content_type)
{
	struct kw_usage *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	u->in = u->out = -1;
	u->sse = content_type && strncasecmp(content_type, "text/event-stream", 17) == 0;
	return u;
}

/*
 * Room for need bytes in *buf (grown by doubling, never past max): false
 * when need is over max or memory is short, and the caller skips the line
 * or event.  Buffers start small: most lines of a stream are short, and a
 * thousand streams should not hold a thousand maximum-size buffers.
 */
static bool
reserve(char **buf, size_t *cap, size_t need, size_t max)
{
	size_t n = *cap ? *cap : 1024;
	char *b;

	if (need <= *cap)
		return true;
	if (need > max)
		return false;
	while (n < need)
		n *= 2;
	if (n > max)
		n = max;
	if (!(b = realloc(*buf, n)))
		return false;
	*buf = b;
	*cap = n;
	return true;
}

static void
take_model(struct kw_usage *u, json_t *v)
{
	if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) < 128) {
		free(u->model);
		u->model = strdup(json_string_value(v));
	}
}

static void
take_usage(struct kw_usage *u, json_t *usage)
{
	json_t *in = json_object_get(usage, "input_tokens");
	json_t *out = json_object_get(usage, "output_tokens");

	if (json_is_integer(in))
		u->in = json_integer_value(in);
	if (json_is_integer(out))
		u->out = json_integer_value(out);
}

static bool
interesting(const char *event)
{
	return !*event || strcmp(event, "message_start") == 0 ||
	    strcmp(event, "message_delta") == 0;
}

static void
dispatch(struct kw_usage *u)
{
	json_t *doc = NULL;
	const char *type;

	if (!u->data_skip && u->data_len > 0 && interesting(u->event) &&
	    (doc = json_loadb(u->data, u->data_len, 0, NULL))) {
		type = json_string_value(json_object_get(doc, "type"));
		if (type && strcmp(type, "message_start") == 0) {
			json_t *msg = json_object_get(doc, "message");
			take_model(u, json_object_get(msg, "model"));
			take_usage(u, json_object_get(msg, "usage"));
		} else if (type && strcmp(type, "message_delta") == 0) {
			take_usage(u, json_object_get(doc, "usage"));
		}
		json_decref(doc);
	}
	u->event[0] = '\0';
	u->data_len = 0;
	u->data_skip = false;
}

static void
sse_line(struct kw_usage *u, const char *l, size_t n)
{
	if (n > 0 && l[n - 1] == '\r')
		n--;
	if (n == 0) {
		dispatch(u);
		return;
	}
	if (n >= 6 && memcmp(l, "event:", 6) == 0) {
		l += 6, n -= 6;
		if (n > 0 && *l == ' ')
			l++, n--;
		if (n >= sizeof(u->event))
			n = sizeof(u->event) - 1;
		memcpy(u->event, l, n);
		u->event[n] = '\0';
	} else if (n >= 5 && memcmp(l, "data:", 5) == 0) {
		l += 5, n -= 5;
		if (n > 0 && *l == ' ')
			l++, n--;
		if (!interesting(u->event) || u->data_skip)
			return;
		if (!reserve(&u->data, &u->data_cap, u->data_len + n + 1, DATA_MAX_LEN)) {
			u->data_skip = true;
			return;
		}
		if (u->data_len > 0)
			u->data[u->data_len++] = '\n';
		memcpy(u->data + u->data_len, l, n);
		u->data_len += n;
	}
}

static void
feed_sse(struct kw_usage *u, const char *p, size_t n)
{
	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) : n;

		if (!u->line_skip && take > 0) {
			if (!reserve(&u->line, &u->line_cap, u->line_len + take, LINE_MAX_LEN))
				u->line_skip = true;
			else {
				memcpy(u->line + u->line_len, p, take);
				u->line_len += take;
			}
		}
		if (!nl)
			return;
		if (!u->line_skip)
			sse_line(u, u->line, u->line_len);
		u->line_len = 0;
		u->line_skip = false;
		p += take + 1;
		n -= take + 1;
	}
}

static void
feed_json(struct kw_usage *u, const char *p, size_t n)
{
	if (u->json_skip)
		return;
	if (u->json_len + n > JSON_MAX_LEN) {
		u->json_skip = true;
		free(u->json);
		u->json = NULL;
		return;
	}
	if (u->json_len + n > u->json_cap) {
		size_t cap = (u->json_len + n) * 2;
		char *b = realloc(u->json, cap < JSON_MAX_LEN ? cap : JSON_MAX_LEN);
		if (!b) {
			u->json_skip = true;
			return;
		}
		u->json = b;
		u->json_cap = cap < JSON_MAX_LEN ? cap : JSON_MAX_LEN;
	}
	memcpy(u->json + u->json_len, p, n);
	u->json_len += n;
}

void
kw_usage_feed(struct kw_usage *u, const char *p, size_t n)
{
	if (u->sse)
		feed_sse(u, p, n);
	else
		feed_json(u, p, n);
}

void
kw_usage_finish(struct kw_usage *u)
{
	json_t *doc;

	if (u->sse) {
		/* An event the stream did not close with a blank line. */
		if (u->line_len > 0 && !u->line_skip)
			sse_line(u, u->line, u->line_len);
		u->line_len = 0;
		dispatch(u);
		return;
	}
	if (u->json_skip || !u->json_len || !(doc = json_loadb(u->json, u->json_len, 0, NULL)))
		return;
	take_model(u, json_object_get(doc, "model"));
	take_usage(u, json_object_get(doc, "usage"));
	json_decref(doc);
	free(u->json);
	u->json = NULL;
	u->json_len = u->json_cap = 0;
}

long long
kw_usage_input(const struct kw_usage *u)
{
	return u->in;
}

long long
kw_usage_output(const struct kw_usage *u)
{
	return u->out;
}

const char *
kw_usage_model(const struct kw_usage *u)
{
	return u->model;
}

void
kw_usage_free(struct kw_usage *u)
{
	if (!u)
		return;
	free(u->model);
	free(u->line);
	free(u->data);
	free(u->json);
	free(u);
}
