/*
 * test_proto.c - unit tests for the JSON message layer (proto.h) and the
 * error names (keywarden.h).

 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/frame.h"
#include "client/keywarden.h"
#include "client/proto.h"

static int
parse(const char *s, struct kw_request *req, char *why, size_t why_len)
{
	return kw_request_parse((const uint8_t *)s, strlen(s), req, why, why_len);
}

/* Parse s, expect failure with code, id and a reason containing `needle`. */
static void
expect_bad(const char *s, int code, json_int_t id, const char *needle)
{
	struct kw_request req;
	char why[256] = "";

	int r = parse(s, &req, why, sizeof(why));
	if (r != code)
		fail_msg("%s: got %d (%s), want %d; why: %s", s, r, kw_error_name(r), code, why);
	assert_int_equal(req.id, id);
	assert_null(req.msg);
	assert_null(req.op);
	assert_null(req.args);
	assert_true(strlen(why) > 0);
	if (needle && !strstr(why, needle))
		fail_msg("%s: reason \"%s\" lacks \"%s\"", s, why, needle);
	kw_request_clear(&req);
}

static json_t *
load(const char *s)
{
	json_t *j = json_loads(s, 0, NULL);

	assert_non_null(j);
	return j;
}

static void
assert_json(json_t *got, const char *want_text)
{
	json_t *want = load(want_text);

	if (!json_equal(got, want)) {
		char *g = got ? json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		print_error("got  %s\nwant %s\n", g ? g : "NULL", want_text);
		free(g);
		json_decref(want);
		fail();
	}
	json_decref(want);
}

/* ---- kw_request_parse: accepted ------------------------------------- */

static void
test_request_valid_with_args(void **state)
{
	struct kw_request req;
	char why[128] = "";

	assert_int_equal(parse("{\"id\": 1, \"op\": \"hello\", \"args\": {\"version\": 1}}",
	    &req, why, sizeof(why)), 0);
	assert_int_equal(req.id, 1);
	assert_string_equal(req.op, "hello");
	assert_true(json_is_object(req.args));
	assert_int_equal(json_integer_value(json_object_get(req.args, "version")), 1);
	assert_ptr_equal(req.args, json_object_get(req.msg, "args"));
	kw_request_clear(&req);
	assert_null(req.msg);
	assert_null(req.op);
	assert_int_equal(req.id, -1);
	kw_request_clear(&req);		/* a cleared request can be cleared again */
	kw_request_clear(NULL);
}

static void
test_request_args_absent_is_empty_object(void **state)
{
	struct kw_request req;
	char why[128] = "";

	assert_int_equal(parse("{\"op\":\"status\",\"id\":7}", &req, why, sizeof(why)), 0);
	assert_int_equal(req.id, 7);
	assert_string_equal(req.op, "status");
	assert_non_null(req.args);
	assert_true(json_is_object(req.args));
	assert_int_equal(json_object_size(req.args), 0);
	/* The empty object is owned by msg, so clearing frees it (LSan checks). */
	assert_ptr_equal(req.args, json_object_get(req.msg, "args"));
	kw_request_clear(&req);
}

static void
test_request_id_bounds_accepted(void **state)
{
	struct kw_request req;
	char why[128] = "";

	assert_int_equal(parse("{\"id\":0,\"op\":\"x\"}", &req, why, sizeof(why)), 0);
	assert_int_equal(req.id, 0);
	kw_request_clear(&req);
	assert_int_equal(parse("{\"id\":9007199254740992,\"op\":\"x\"}", &req, why, sizeof(why)), 0);
	assert_int_equal(req.id, KW_PROTO_ID_MAX);
	kw_request_clear(&req);
}

static void
test_request_op_length_limit(void **state)
{
	struct kw_request req;
	char why[128] = "", op[KW_PROTO_OP_MAX + 2], text[256];

	memset(op, 'o', KW_PROTO_OP_MAX);
	op[KW_PROTO_OP_MAX] = '\0';
	snprintf(text, sizeof(text), "{\"id\":1,\"op\":\"%s\"}", op);
	assert_int_equal(parse(text, &req, why, sizeof(why)), 0);
	assert_int_equal(strlen(req.op), KW_PROTO_OP_MAX);
	kw_request_clear(&req);

	op[KW_PROTO_OP_MAX] = 'o';
	op[KW_PROTO_OP_MAX + 1] = '\0';
	snprintf(text, sizeof(text), "{\"id\":1,\"op\":\"%s\"}", op);
	expect_bad(text, KW_ERR_BAD_REQUEST, 1, "\"op\"");
}

static void
test_request_extra_members_and_utf8(void **state)
{
	struct kw_request req;
	char why[128] = "";

	/* Unknown members are the handler's business, not the parser's. */
	assert_int_equal(parse("{\"id\":3,\"op\":\"caf\xc3\xa9\",\"args\":{},\"x\":[1]}",
	    &req, why, sizeof(why)), 0);
	assert_string_equal(req.op, "caf\xc3\xa9");
	kw_request_clear(&req);
}

static void
test_request_body_not_nul_terminated(void **state)
{
	static const char text[] = "{\"id\":2,\"op\":\"status\"}GARBAGE";
	struct kw_request req;
	char why[128] = "";

	/* Only len bytes count: the parser must not read past them. */
	assert_int_equal(kw_request_parse((const uint8_t *)text, strlen("{\"id\":2,\"op\":\"status\"}"),
	    &req, why, sizeof(why)), 0);
	assert_int_equal(req.id, 2);
	kw_request_clear(&req);
}

/* ---- kw_request_parse: refused -------------------------------------- */

static void
test_request_invalid_json(void **state)
{
	struct kw_request req;
	char why[256] = "";

	expect_bad("{", KW_ERR_BAD_JSON, -1, "invalid JSON at byte");
	expect_bad("{\"id\":1,\"op\":\"x\"", KW_ERR_BAD_JSON, -1, "invalid JSON");
	expect_bad("{\"id\":1,\"op\":\"x\",}", KW_ERR_BAD_JSON, -1, "invalid JSON");
	expect_bad("{\"id\":1,\"op\":'x'}", KW_ERR_BAD_JSON, -1, "invalid JSON");
	expect_bad("{\"id\":1,\"op\":\"x\"} {}", KW_ERR_BAD_JSON, -1, "invalid JSON");
	expect_bad("{\"id\":1,\"op\":\"\xff\"}", KW_ERR_BAD_JSON, -1, "invalid JSON");
	expect_bad("{\"id\":99999999999999999999,\"op\":\"a\"}", KW_ERR_BAD_JSON, -1, "invalid JSON");
	expect_bad("\x01\x02\x03", KW_ERR_BAD_JSON, -1, "invalid JSON");

	/* Empty body (a frame cannot carry one, but the parser must cope). */
	assert_int_equal(kw_request_parse((const uint8_t *)"", 0, &req, why, sizeof(why)),
	    KW_ERR_BAD_JSON);
	assert_int_equal(req.id, -1);

	/* A raw NUL byte inside the body is not JSON. */
	static const char nul[] = "{\"id\":1,\"op\":\"a\0b\"}";
	assert_int_equal(kw_request_parse((const uint8_t *)nul, sizeof(nul) - 1, &req, why,
	    sizeof(why)), KW_ERR_BAD_JSON);

	/* The reason fits whatever buffer it is given. */
	char tiny[8];
	memset(tiny, 'Z', sizeof(tiny));
	assert_int_equal(parse("{", &req, tiny, sizeof(tiny)), KW_ERR_BAD_JSON);
	assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
}

static void
test_request_array_is_bad_request(void **state)
{
	expect_bad("[1,2]", KW_ERR_BAD_REQUEST, -1, "object");
	expect_bad("[]", KW_ERR_BAD_REQUEST, -1, "object");
	expect_bad("[{\"id\":1,\"op\":\"x\"}]", KW_ERR_BAD_REQUEST, -1, "object");
}

static void
test_request_scalar_is_bad_request(void **state)
{
	/* SPEC: valid JSON of the wrong shape (not an object) is bad_request (fixed in ff25418). */
	expect_bad("42", KW_ERR_BAD_REQUEST, -1, "object");
	expect_bad("\"hello\"", KW_ERR_BAD_REQUEST, -1, "object");
	expect_bad("null", KW_ERR_BAD_REQUEST, -1, "object");
	expect_bad("true", KW_ERR_BAD_REQUEST, -1, "object");
	expect_bad(" 1.5 ", KW_ERR_BAD_REQUEST, -1, "object");
}

static void
test_request_bad_id(void **state)
{
	/* Missing id says so. */
	expect_bad("{\"op\":\"x\"}", KW_ERR_BAD_REQUEST, -1, "(missing)");
	expect_bad("{\"id\":-1,\"op\":\"x\"}", KW_ERR_BAD_REQUEST, -1, "\"id\"");
	expect_bad("{\"id\":-9007199254740992,\"op\":\"x\"}", KW_ERR_BAD_REQUEST, -1, "\"id\"");
	expect_bad("{\"id\":9007199254740993,\"op\":\"x\"}", KW_ERR_BAD_REQUEST, -1, "\"id\"");
	expect_bad("{\"id\":9223372036854775807,\"op\":\"x\"}", KW_ERR_BAD_REQUEST, -1, "\"id\"");
	expect_bad("{\"id\":1.5,\"op\":\"x\"}", KW_ERR_BAD_REQUEST, -1, "\"id\"");
	expect_bad("{\"id\":1.0,\"op\":\"x\"}", KW_ERR_BAD_REQUEST, -1, "\"id\"");
	expect_bad("{\"id\":1e3,\"op\":\"x\"}", KW_ERR_BAD_REQUEST, -1, "\"id\"");
	expect_bad("{\"id\":\"1\",\"op\":\"x\"}", KW_ERR_BAD_REQUEST, -1, "\"id\"");
	expect_bad("{\"id\":null,\"op\":\"x\"}", KW_ERR_BAD_REQUEST, -1, "\"id\"");
	expect_bad("{\"id\":true,\"op\":\"x\"}", KW_ERR_BAD_REQUEST, -1, "\"id\"");
	expect_bad("{\"id\":[1],\"op\":\"x\"}", KW_ERR_BAD_REQUEST, -1, "\"id\"");

	/* A present but unusable id is not reported as missing. */
	struct kw_request req;
	char why[256];
	assert_int_equal(parse("{\"id\":-1,\"op\":\"x\"}", &req, why, sizeof(why)),
	    KW_ERR_BAD_REQUEST);
	assert_null(strstr(why, "missing"));
}

static void
test_request_bad_op_keeps_id(void **state)
{
	/* Each of these carries a readable id, which the error reply must echo. */
	expect_bad("{\"id\":5}", KW_ERR_BAD_REQUEST, 5, "\"op\"");
	expect_bad("{\"id\":5,\"op\":\"\"}", KW_ERR_BAD_REQUEST, 5, "\"op\"");
	expect_bad("{\"id\":5,\"op\":7}", KW_ERR_BAD_REQUEST, 5, "\"op\"");
	expect_bad("{\"id\":5,\"op\":null}", KW_ERR_BAD_REQUEST, 5, "\"op\"");
	expect_bad("{\"id\":5,\"op\":[\"x\"]}", KW_ERR_BAD_REQUEST, 5, "\"op\"");
	expect_bad("{\"id\":5,\"op\":{}}", KW_ERR_BAD_REQUEST, 5, "\"op\"");
	expect_bad("{\"id\":9007199254740992,\"op\":false}", KW_ERR_BAD_REQUEST,
	    KW_PROTO_ID_MAX, "\"op\"");
}

static void
test_request_op_embedded_nul(void **state)
{
	struct kw_request req;
	char why[256] = "";

	/* A NUL in any string is the wrong shape, and the id still comes back. */
	int r = parse("{\"id\":4,\"op\":\"a\\u0000b\"}", &req, why, sizeof(why));
	assert_int_not_equal(r, 0);
	assert_int_equal(r, KW_ERR_BAD_REQUEST);
	assert_int_equal(req.id, 4);
	kw_request_clear(&req);
}

static void
test_request_args_not_object(void **state)
{
	expect_bad("{\"id\":6,\"op\":\"x\",\"args\":[]}", KW_ERR_BAD_REQUEST, 6, "\"args\"");
	expect_bad("{\"id\":6,\"op\":\"x\",\"args\":\"a\"}", KW_ERR_BAD_REQUEST, 6, "\"args\"");
	expect_bad("{\"id\":6,\"op\":\"x\",\"args\":1}", KW_ERR_BAD_REQUEST, 6, "\"args\"");
	expect_bad("{\"id\":6,\"op\":\"x\",\"args\":null}", KW_ERR_BAD_REQUEST, 6, "\"args\"");
	expect_bad("{\"id\":6,\"op\":\"x\",\"args\":false}", KW_ERR_BAD_REQUEST, 6, "\"args\"");
}

static void
test_request_duplicate_keys(void **state)
{
	/*
	 * SPEC: duplicate keys -> bad_request (fixed in ff25418).  Refused in
	 * every case: two readers could disagree on which value wins.  The id
	 * is not trusted from a message with duplicates.
	 */
	expect_bad("{\"id\":1,\"id\":2,\"op\":\"x\"}", KW_ERR_BAD_REQUEST, -1, "duplicate");
	expect_bad("{\"id\":1,\"op\":\"x\",\"op\":\"y\"}", KW_ERR_BAD_REQUEST, -1, "duplicate");
	expect_bad("{\"id\":1,\"op\":\"x\",\"args\":{\"a\":1,\"a\":2}}", KW_ERR_BAD_REQUEST, -1,
	    "duplicate");
	expect_bad("{\"id\":1,\"op\":\"x\",\"args\":{\"k\":[{\"a\":1,\"a\":1}]}}",
	    KW_ERR_BAD_REQUEST, -1, "duplicate");
	/* The key itself is not quoted back: it could be anything the client sent. */
	struct kw_request req;
	char why[256];
	assert_int_equal(parse("{\"sk-ant-SECRET\":1,\"sk-ant-SECRET\":2}", &req, why, sizeof(why)),
	    KW_ERR_BAD_REQUEST);
	assert_null(strstr(why, "SECRET"));
}

static void
test_request_deep_nesting(void **state)
{
	static const size_t depth = 5000;
	size_t len = 0;
	char *text = malloc(depth * 6 + 64);

	/* Arrays: 5000 '[' and no closing. */
	assert_non_null(text);
	memset(text, '[', depth);
	text[depth] = '\0';
	expect_bad(text, KW_ERR_BAD_JSON, -1, "invalid JSON");

	/* Balanced arrays, too deep. */
	memset(text + depth, ']', depth);
	text[2 * depth] = '\0';
	expect_bad(text, KW_ERR_BAD_JSON, -1, "invalid JSON");

	/* Objects nested inside a real request, as args. */
	len = (size_t)sprintf(text, "{\"id\":1,\"op\":\"x\",\"args\":");
	for (size_t i = 0; i < depth; i++) {
		memcpy(text + len, "{\"a\":", 5);
		len += 5;
	}
	memcpy(text + len, "1", 1);
	len += 1;
	memset(text + len, '}', depth + 1);
	len += depth + 1;
	text[len] = '\0';
	expect_bad(text, KW_ERR_BAD_JSON, -1, "invalid JSON");
	free(text);
}

/* ---- builders and replies ------------------------------------------- */

static void
test_reply_ok_shapes(void **state)
{
	json_t *m;

	m = kw_reply_ok(5, json_pack("{s:i}", "a", 1));
	assert_json(m, "{\"id\":5,\"ok\":true,\"result\":{\"a\":1}}");
	json_decref(m);

	m = kw_reply_ok(0, NULL);
	assert_json(m, "{\"id\":0,\"ok\":true,\"result\":{}}");
	json_decref(m);

	m = kw_reply_ok(-1, json_object());
	assert_json(m, "{\"id\":null,\"ok\":true,\"result\":{}}");
	json_decref(m);

	m = kw_reply_ok(KW_PROTO_ID_MAX, NULL);
	assert_json(m, "{\"id\":9007199254740992,\"ok\":true,\"result\":{}}");
	json_decref(m);
}

static void
test_reply_error_shapes(void **state)
{
	json_t *m;

	m = kw_reply_error(9, KW_ERR_DENIED, "no role grants key:get");
	assert_json(m, "{\"id\":9,\"ok\":false,\"error\":{\"code\":\"denied\","
	    "\"message\":\"no role grants key:get\"}}");
	json_decref(m);

	/* No message: the code's sentence. */
	m = kw_reply_error(-1, KW_ERR_FRAME_TOO_LARGE, NULL);
	assert_json(m, "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"frame_too_large\","
	    "\"message\":\"message too large\"}}");
	json_decref(m);

	/* An unknown code travels as "internal". */
	m = kw_reply_error(1, -999, NULL);
	assert_string_equal(json_string_value(json_object_get(json_object_get(m, "error"),
	    "code")), "internal");
	assert_string_equal(json_string_value(json_object_get(json_object_get(m, "error"),
	    "message")), "unknown error");
	json_decref(m);
}

static void
test_request_new_shapes(void **state)
{
	json_t *args = json_pack("{s:i}", "version", 1);
	json_t *m = kw_request_new(1, "hello", args, NULL);

	assert_json(m, "{\"id\":1,\"op\":\"hello\",\"args\":{\"version\":1}}");
	/* args is borrowed: the caller's reference is still its own. */
	assert_int_equal(args->refcount, 2);
	json_decref(m);
	assert_int_equal(args->refcount, 1);
	json_decref(args);

	args = json_object();
	m = kw_request_new(-1, "status", args, NULL);
	assert_json(m, "{\"id\":null,\"op\":\"status\",\"args\":{}}");
	json_decref(m);

	/* A failed builder gives NULL, not a half message; args stay the caller's. */
	assert_null(kw_request_new(1, NULL, args, NULL));
	assert_int_equal(args->refcount, 1);
	json_decref(args);
}

static void
test_request_new_null_args_no_leak(void **state)
{
	json_t *m = kw_request_new(2, "status", NULL, NULL);

	assert_json(m, "{\"id\":2,\"op\":\"status\",\"args\":{}}");
	/* The {} made for NULL args is owned by the message alone (fixed in 3cf6ef6). */
	assert_int_equal(json_object_get(m, "args")->refcount, 1);
	json_decref(m);
}

static void
test_msg_encode(void **state)
{
	struct kw_request req;
	struct kw_frame_reader rd;
	uint8_t *frame = NULL, *body = NULL;
	size_t flen, blen, used;
	char why[128];
	json_t *args = json_pack("{s:i}", "version", 1);
	json_t *m = kw_request_new(42, "hello", args, NULL);

	/* Encode, deframe, parse: the same request comes out. */
	assert_int_equal(kw_msg_encode(m, &frame, &flen), 0);
	kw_frame_reader_init(&rd, KW_FRAME_MAX);
	assert_int_equal(kw_frame_feed(&rd, frame, flen, &used), 1);
	assert_int_equal(used, flen);
	assert_int_equal(kw_frame_take(&rd, &body, &blen), 0);
	assert_int_equal(kw_request_parse(body, blen, &req, why, sizeof(why)), 0);
	assert_int_equal(req.id, 42);
	assert_string_equal(req.op, "hello");
	assert_true(json_equal(req.args, args));
	kw_request_clear(&req);
	free(body);
	free(frame);
	json_decref(m);
	json_decref(args);

	/* NULL (a failed builder) and too large. */
	frame = NULL;
	assert_int_equal(kw_msg_encode(NULL, &frame, &flen), KW_ERR_NOMEM);
	char *big = malloc(KW_FRAME_MAX + 1);
	assert_non_null(big);
	memset(big, 'a', KW_FRAME_MAX);
	big[KW_FRAME_MAX] = '\0';
	m = kw_reply_ok(1, json_pack("{s:s}", "blob", big));
	assert_non_null(m);
	assert_int_equal(kw_msg_encode(m, &frame, &flen), KW_ERR_FRAME_TOO_LARGE);
	assert_null(frame);
	json_decref(m);
	free(big);
}

/* kw_msg_append: frames one after another in one growing buffer, each the
   same bytes kw_msg_encode gives; too large leaves what was there. */
static void
test_msg_append(void **state)
{
	uint8_t *buf = NULL, *frame = NULL;
	size_t len = 0, cap = 0, flen, off = 0;
	json_t *m;
	char *big;

	(void)state;
	for (int i = 0; i < 50; i++) {
		m = kw_reply_ok(i, json_pack("{s:i, s:s}", "n", i, "pad",
		    "0123456789012345678901234567890123456789"));
		assert_int_equal(kw_msg_append(m, &buf, &len, &cap), 0);
		assert_int_equal(kw_msg_encode(m, &frame, &flen), 0);
		assert_true(len - off == flen && cap >= len);
		assert_memory_equal(buf + off, frame, flen);
		off = len;
		free(frame);
		json_decref(m);
	}
	big = malloc(KW_FRAME_MAX + 1);
	assert_non_null(big);
	memset(big, 'a', KW_FRAME_MAX);
	big[KW_FRAME_MAX] = '\0';
	m = kw_reply_ok(1, json_pack("{s:s}", "blob", big));
	assert_int_equal(kw_msg_append(m, &buf, &len, &cap), KW_ERR_FRAME_TOO_LARGE);
	assert_int_equal(len, off);
	assert_int_equal(kw_msg_append(NULL, &buf, &len, &cap), KW_ERR_NOMEM);
	assert_int_equal(len, off);
	json_decref(m);
	free(big);
	free(buf);
}

static int
reply_parse(const char *s, json_int_t id, json_t **res, char **msg)
{
	return kw_reply_parse((const uint8_t *)s, strlen(s), id, res, msg);
}

static void
test_reply_parse_ok(void **state)
{
	json_t *res = NULL;
	char *msg = NULL;

	assert_int_equal(reply_parse("{\"id\":3,\"ok\":true,\"result\":{\"v\":1}}", 3, &res, &msg), 0);
	assert_non_null(res);
	assert_int_equal(json_integer_value(json_object_get(res, "v")), 1);
	assert_null(msg);
	json_decref(res);		/* a new reference, freed here: LSan checks */

	/* ret_result may be NULL. */
	assert_int_equal(reply_parse("{\"id\":3,\"ok\":true,\"result\":{}}", 3, NULL, NULL), 0);
}

static void
test_reply_parse_error(void **state)
{
	json_t *res = NULL;
	char *msg = NULL;

	assert_int_equal(reply_parse("{\"id\":4,\"ok\":false,\"error\":{\"code\":\"denied\","
	    "\"message\":\"no\"}}", 4, &res, &msg), KW_ERR_DENIED);
	assert_null(res);
	assert_string_equal(msg, "no");
	free(msg);
	msg = NULL;

	/* Errors the broker sends before it could read the id carry id null. */
	assert_int_equal(reply_parse("{\"id\":null,\"ok\":false,\"error\":{\"code\":"
	    "\"frame_too_large\",\"message\":\"m\"}}", 4, NULL, &msg), KW_ERR_FRAME_TOO_LARGE);
	free(msg);
	msg = NULL;

	/* Missing message: the code's sentence. */
	assert_int_equal(reply_parse("{\"id\":4,\"ok\":false,\"error\":{\"code\":\"busy\"}}",
	    4, NULL, &msg), KW_ERR_BUSY);
	assert_string_equal(msg, kw_strerror(KW_ERR_BUSY));
	free(msg);
	msg = NULL;

	/* An unknown code, no code, or "ok" can never mean success. */
	assert_int_equal(reply_parse("{\"id\":4,\"ok\":false,\"error\":{\"code\":\"nope\"}}",
	    4, NULL, &msg), KW_ERR_INTERNAL);
	free(msg);
	msg = NULL;
	assert_int_equal(reply_parse("{\"id\":4,\"ok\":false,\"error\":{}}", 4, NULL, NULL),
	    KW_ERR_INTERNAL);
	assert_int_equal(reply_parse("{\"id\":4,\"ok\":false,\"error\":{\"code\":\"ok\"}}",
	    4, NULL, NULL), KW_ERR_INTERNAL);
	assert_int_equal(reply_parse("{\"id\":4,\"ok\":false,\"error\":{\"code\":5}}",
	    4, NULL, NULL), KW_ERR_INTERNAL);
}

static void
test_reply_parse_mismatched_id(void **state)
{
	json_t *res = (json_t *)0x1;
	char *msg = (char *)0x1;

	assert_int_equal(reply_parse("{\"id\":5,\"ok\":true,\"result\":{}}", 6, &res, &msg),
	    KW_ERR_BAD_REQUEST);
	assert_int_equal(reply_parse("{\"id\":5,\"ok\":false,\"error\":{\"code\":\"denied\"}}",
	    6, &res, &msg), KW_ERR_BAD_REQUEST);
	assert_int_equal(reply_parse("{\"ok\":true,\"result\":{}}", 6, &res, &msg),
	    KW_ERR_BAD_REQUEST);
	assert_int_equal(reply_parse("{\"id\":\"6\",\"ok\":true,\"result\":{}}", 6, &res, &msg),
	    KW_ERR_BAD_REQUEST);
	/* Outputs untouched. */
	assert_ptr_equal(res, (json_t *)0x1);
	assert_ptr_equal(msg, (char *)0x1);
}

static void
test_reply_parse_malformed(void **state)
{
	static const struct {
		const char *text;
		int want;
	} cases[] = {
		{ "", KW_ERR_BAD_JSON },
		{ "{", KW_ERR_BAD_JSON },
		{ "not json", KW_ERR_BAD_JSON },
		{ "{\"id\":1,\"id\":1,\"ok\":true,\"result\":{}}", KW_ERR_BAD_JSON },
		{ "[]", KW_ERR_BAD_REQUEST },
		{ "[{\"id\":1,\"ok\":true,\"result\":{}}]", KW_ERR_BAD_REQUEST },
		{ "{}", KW_ERR_BAD_REQUEST },
		{ "{\"id\":1}", KW_ERR_BAD_REQUEST },
		{ "{\"id\":1,\"ok\":1,\"result\":{}}", KW_ERR_BAD_REQUEST },
		{ "{\"id\":1,\"ok\":\"true\",\"result\":{}}", KW_ERR_BAD_REQUEST },
		{ "{\"id\":1,\"ok\":true}", KW_ERR_BAD_REQUEST },
		{ "{\"id\":1,\"ok\":true,\"result\":[]}", KW_ERR_BAD_REQUEST },
		{ "{\"id\":1,\"ok\":true,\"result\":null}", KW_ERR_BAD_REQUEST },
		{ "{\"id\":1,\"ok\":false}", KW_ERR_BAD_REQUEST },
		{ "{\"id\":1,\"ok\":false,\"error\":\"denied\"}", KW_ERR_BAD_REQUEST },
	};
	json_t *res = NULL;
	char *msg = NULL;

	for (size_t i = 0; i < KW_ELEMENTSOF(cases); i++) {
		int r = kw_reply_parse((const uint8_t *)cases[i].text, strlen(cases[i].text), 1,
		    &res, &msg);
		if (r != cases[i].want)
			fail_msg("kw_reply_parse(%s) = %d, want %d", cases[i].text, r, cases[i].want);
		assert_null(res);
		assert_null(msg);
	}
}

/* ---- error names ---------------------------------------------------- */

static void
test_error_names_round_trip(void **state)
{
	/* The wire names of notes/SPEC.md, in code order. */
	static const char *const names[] = {
		"ok", "internal", "no_memory", "io", "unreachable", "closed",
		"frame_too_large", "bad_frame", "bad_json", "bad_request", "unknown_op",
		"handshake_required", "version_mismatch", "denied", "not_found",
		"audit_unavailable", "timeout", "busy", "config", "invalid_argument",
		"session_required", "locked", "expired", "budget",
	};

	assert_int_equal(KW_ELEMENTSOF(names), 1 - KW_ERR_BUDGET);
	for (int i = 0; i < (int)KW_ELEMENTSOF(names); i++) {
		int code = -i;
		const char *text = kw_strerror(code);

		assert_string_equal(kw_error_name(code), names[i]);
		assert_int_equal(kw_error_from_name(names[i]), code);
		assert_int_equal(kw_error_from_name(kw_error_name(code)), code);
		assert_non_null(text);
		assert_true(strlen(text) > 0);
		assert_string_not_equal(text, "unknown error");
		assert_null(strchr(text, '\n'));
		/* Reply round trip: build, serialise, parse back. */
		if (code != KW_OK) {
			json_t *m = kw_reply_error(8, code, NULL);
			char *s = json_dumps(m, JSON_COMPACT), *msg = NULL;
			assert_non_null(s);
			assert_int_equal(kw_reply_parse((uint8_t *)s, strlen(s), 8, NULL, &msg), code);
			assert_string_equal(msg, text);
			free(msg);
			free(s);
			json_decref(m);
		}
	}
	/* Names are distinct, so the mapping is one to one. */
	for (size_t i = 0; i < KW_ELEMENTSOF(names); i++)
		for (size_t j = i + 1; j < KW_ELEMENTSOF(names); j++)
			assert_string_not_equal(names[i], names[j]);
}

static void
test_error_names_unknown(void **state)
{
	assert_int_equal(kw_error_from_name("no_such_error"), KW_ERR_INTERNAL);
	assert_int_equal(kw_error_from_name(""), KW_ERR_INTERNAL);
	assert_int_equal(kw_error_from_name("DENIED"), KW_ERR_INTERNAL);
	assert_int_equal(kw_error_from_name("denied "), KW_ERR_INTERNAL);
	assert_int_equal(kw_error_from_name(NULL), KW_ERR_INTERNAL);
	assert_string_equal(kw_error_name(1), "internal");
	assert_string_equal(kw_error_name(KW_ERR_BUDGET - 1), "internal");
	assert_string_equal(kw_error_name(-999), "internal");
	assert_string_equal(kw_strerror(KW_ERR_BUDGET - 1), "unknown error");
	assert_string_equal(kw_strerror(12345), "unknown error");
	assert_string_equal(kw_version(), KW_VERSION);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_valid_with_args),
		cmocka_unit_test(test_request_args_absent_is_empty_object),
		cmocka_unit_test(test_request_id_bounds_accepted),
		cmocka_unit_test(test_request_op_length_limit),
		cmocka_unit_test(test_request_extra_members_and_utf8),
		cmocka_unit_test(test_request_body_not_nul_terminated),
		cmocka_unit_test(test_request_invalid_json),
		cmocka_unit_test(test_request_array_is_bad_request),
		cmocka_unit_test(test_request_scalar_is_bad_request),
		cmocka_unit_test(test_request_bad_id),
		cmocka_unit_test(test_request_bad_op_keeps_id),
		cmocka_unit_test(test_request_op_embedded_nul),
		cmocka_unit_test(test_request_args_not_object),
		cmocka_unit_test(test_request_duplicate_keys),
		cmocka_unit_test(test_request_deep_nesting),
		cmocka_unit_test(test_reply_ok_shapes),
		cmocka_unit_test(test_reply_error_shapes),
		cmocka_unit_test(test_request_new_shapes),
		cmocka_unit_test(test_request_new_null_args_no_leak),
		cmocka_unit_test(test_msg_encode),
		cmocka_unit_test(test_reply_parse_ok),
		cmocka_unit_test(test_reply_parse_error),
		cmocka_unit_test(test_reply_parse_mismatched_id),
		cmocka_unit_test(test_reply_parse_malformed),
		cmocka_unit_test(test_msg_append),
		cmocka_unit_test(test_error_names_round_trip),
		cmocka_unit_test(test_error_names_unknown),
	};

	return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
