/*
 * proto.c - JSON message layer of the wire protocol (see proto.h).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sodium.h>
#include <string.h>

#include "client/frame.h"
#include "client/keywarden.h"
#include "client/proto.h"

static json_int_t
read_id(json_t *msg)
{
	json_t *id = json_object_get(msg, "id");

	if (!json_is_integer(id))
		return -1;
	json_int_t v = json_integer_value(id);
	return (v < 0 || v > KW_PROTO_ID_MAX) ? -1 : v;
}

/* True if any string (key or value) below v holds a NUL byte. */
static bool
has_nul(json_t *v, int depth)
{
	const char *key;
	json_t *e;
	size_t i;

	/* jansson already bounds nesting (JSON_PARSER_MAX_DEPTH); this is belt and braces. */
	if (depth > 4096)
		return true;
	if (json_is_string(v))
		return strlen(json_string_value(v)) != json_string_length(v);
	if (json_is_array(v)) {
		json_array_foreach(v, i, e)
			if (has_nul(e, depth + 1))
				return true;
	} else if (json_is_object(v)) {
		json_object_foreach(v, key, e)
			if (has_nul(e, depth + 1))
				return true;
	}
	return false;
}

int
kw_request_parse(const uint8_t *body, size_t len, struct kw_request *req,
    char *why, size_t why_len)
{
	json_error_t jerr;
	json_t *msg, *op, *args, *id, *session;

	memset(req, 0, sizeof(*req));
	req->id = -1;
	/* Duplicate keys are refused: two readers could disagree on which wins. */
	/*
	 * NUL is let through the parser only so the id survives for the error
	 * reply; has_nul() then refuses the request before any handler could
	 * read a truncated string.
	 */
	msg = json_loadb((const char *)body, len,
	    JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (!msg && json_error_code(&jerr) == json_error_duplicate_key) {
		snprintf(why, why_len, "duplicate key at byte %d", jerr.position);
		return KW_ERR_BAD_REQUEST;
	}
	if (!msg) {
		/* jansson quotes the input near the error; it may hold a secret. */
		char *near = strstr(jerr.text, " near ");
		if (near)
			*near = '\0';
		snprintf(why, why_len, "invalid JSON at byte %d: %.80s",
		    jerr.position, jerr.text);
		return KW_ERR_BAD_JSON;
	}
	if (!json_is_object(msg)) {
		snprintf(why, why_len, "a request must be a JSON object");
		json_decref(msg);
		return KW_ERR_BAD_REQUEST;
	}
	req->id = read_id(msg);
	id = json_object_get(msg, "id");
	op = json_object_get(msg, "op");
	args = json_object_get(msg, "args");
	if (req->id < 0) {
		snprintf(why, why_len, "\"id\" must be an integer from 0 to 2^53%s",
		    id ? "" : " (missing)");
		goto bad;
	}
	if (has_nul(msg, 0)) {
		snprintf(why, why_len, "strings must not contain NUL characters");
		goto bad;
	}
	if (!json_is_string(op) || json_string_length(op) == 0 ||
	    json_string_length(op) > KW_PROTO_OP_MAX) {
		snprintf(why, why_len, "\"op\" must be a non-empty string of at most %d bytes",
		    KW_PROTO_OP_MAX);
		goto bad;
	}
	if (args && !json_is_object(args)) {
		snprintf(why, why_len, "\"args\" must be an object");
		goto bad;
	}
	session = json_object_get(msg, "session");
	if (session && (!json_is_string(session) || json_string_length(session) == 0 ||
	    json_string_length(session) > KW_PROTO_SESSION_MAX)) {
		snprintf(why, why_len, "\"session\" must be a session token");
		goto bad;
	}
	if (!args) {
		if (!(args = json_object()) || json_object_set_new(msg, "args", args) < 0) {
			json_decref(msg);
			return KW_ERR_NOMEM;
		}
	}
	req->msg = msg;
	req->op = json_string_value(op);
	req->args = args;
	req->session = json_string_value(session);
	return 0;
 bad:
	json_decref(msg);
	return KW_ERR_BAD_REQUEST;
}

void
kw_request_clear(struct kw_request *req)
{
	if (!req)
		return;
	json_decref(req->msg);
	memset(req, 0, sizeof(*req));
	req->id = -1;
}

static json_t *
id_value(json_int_t id)
{
	return id < 0 ? json_null() : json_integer(id);
}

json_t *
kw_request_new(json_int_t id, const char *op, json_t *args, const char *session)
{
	/* "o" steals the reference: take one for a borrowed args, or a fresh {}. */
	json_t *msg = json_pack("{s:o, s:s, s:o}", "id", id_value(id), "op", op,
	    "args", args ? json_incref(args) : json_object());

	if (msg && session && json_object_set_new(msg, "session", json_string(session)) < 0) {
		json_decref(msg);
		return NULL;
	}
	return msg;
}

json_t *
kw_reply_ok(json_int_t id, json_t *result)
{
	if (!result)
		result = json_object();
	return json_pack("{s:o, s:b, s:o}", "id", id_value(id), "ok", 1,
	    "result", result);
}

json_t *
kw_reply_error(json_int_t id, int err, const char *message)
{
	return json_pack("{s:o, s:b, s:{s:s, s:s}}", "id", id_value(id),
	    "ok", 0, "error", "code", kw_error_name(err),
	    "message", message ? message : kw_strerror(err));
}

int
kw_msg_encode(json_t *msg, uint8_t **ret_frame, size_t *ret_len)
{
	char *text;
	int r;

	if (!msg)
		return KW_ERR_NOMEM;
	if (!(text = json_dumps(msg, JSON_COMPACT)))
		return KW_ERR_NOMEM;
	r = kw_frame_encode(text, strlen(text), KW_FRAME_MAX, ret_frame, ret_len);
	/* The text may carry a code or a token. */
	sodium_memzero(text, strlen(text));
	free(text);
	return r;
}

struct appender {
	uint8_t **buf;
	size_t len, *cap;	/* len: the end of the frame being written */
	size_t start;		/* where its body begins */
	bool too_large;
};

static int
reserve(struct appender *a, size_t more)
{
	size_t cap = *a->cap ? *a->cap : 256;
	uint8_t *grown;

	if (a->len + more <= *a->cap)
		return 0;
	while (cap < a->len + more)
		cap *= 2;
	if (!(grown = malloc(cap)))
		return -1;
	if (*a->buf) {
		memcpy(grown, *a->buf, a->len);
		sodium_memzero(*a->buf, *a->cap);
		free(*a->buf);
	}
	*a->buf = grown;
	*a->cap = cap;
	return 0;
}

static int
append_text(const char *text, size_t n, void *data)
{
	struct appender *a = data;

	if (a->len - a->start + n > KW_FRAME_MAX) {
		a->too_large = true;
		return -1;
	}
	if (reserve(a, n) < 0)
		return -1;
	memcpy(*a->buf + a->len, text, n);
	a->len += n;
	return 0;
}

int
kw_msg_append(json_t *msg, uint8_t **buf, size_t *len, size_t *cap)
{
	struct appender a = { .buf = buf, .len = *len, .cap = cap };
	size_t body;
	uint8_t *h;

	if (!msg || reserve(&a, KW_FRAME_HDR + 256) < 0)
		return KW_ERR_NOMEM;
	a.start = a.len = *len + KW_FRAME_HDR;
	if (json_dump_callback(msg, append_text, &a, JSON_COMPACT) < 0) {
		/* What was written of it (it may hold a key) goes. */
		sodium_memzero(*buf + *len, a.len - *len);
		return a.too_large ? KW_ERR_FRAME_TOO_LARGE : KW_ERR_NOMEM;
	}
	body = a.len - a.start;
	if (body == 0)
		return KW_ERR_NOMEM;
	h = *buf + *len;
	h[0] = (uint8_t)(body >> 24);
	h[1] = (uint8_t)(body >> 16);
	h[2] = (uint8_t)(body >> 8);
	h[3] = (uint8_t)body;
	*len = a.len;
	return 0;
}

int
kw_reply_parse(const uint8_t *body, size_t len, json_int_t id,
    json_t **ret_result, char **ret_message)
{
	json_t *msg, *ok, *err;
	int r = KW_ERR_BAD_REQUEST;

	if (!(msg = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, NULL)))
		return KW_ERR_BAD_JSON;
	ok = json_object_get(msg, "ok");
	if (!json_is_object(msg) || !json_is_boolean(ok) ||
	    (read_id(msg) != id && !json_is_null(json_object_get(msg, "id"))))
		goto out;
	if (json_is_true(ok)) {
		json_t *res = json_object_get(msg, "result");
		if (!json_is_object(res))
			goto out;
		if (ret_result)
			*ret_result = json_incref(res);
		r = 0;
		goto out;
	}
	err = json_object_get(msg, "error");
	if (!json_is_object(err))
		goto out;
	r = kw_error_from_name(json_string_value(json_object_get(err, "code")));
	if (r == KW_OK)
		r = KW_ERR_INTERNAL;	/* an error reply can never mean success */
	if (ret_message) {
		const char *m = json_string_value(json_object_get(err, "message"));
		*ret_message = strdup(m ? m : kw_strerror(r));
	}
 out:
	json_decref(msg);
	return r;
}
