/*
 * fuzz_request.c - libFuzzer target for what the broker does with bytes
 * from a client socket: deframe, parse each body as a request, answer.
 *
 * The input is the byte stream.  It is fed to a kw_frame_reader in chunks
 * whose sizes come from a hash of the input, the way recv(2) splits a stream
 * at arbitrary points.  Each completed body goes through kw_request_parse,
 * and a reply is built, encoded and parsed back, as the broker and the
 * client library would.  Besides ASan/UBSan findings, a broken invariant of
 * frame.h or proto.h aborts, so the fuzzer reports it as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/frame.h"
#include "fuzz.h"
#include "client/keywarden.h"
#include "common/log.h"
#include "client/proto.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Library code does not log today, but keep the fuzzer's output clean. */
	kw_log_init("fuzz", KW_LOG_STDERR, LOG_ERR);
	return 0;
}

static uint64_t
hash_input(const uint8_t *data, size_t size)
{
	uint64_t h = 0xcbf29ce484222325ULL;	/* FNV-1a */

	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 0x100000001b3ULL;
	return h ? h : 1;
}

/* Next chunk size: mostly small, sometimes whole frames' worth. */
static size_t
next_chunk(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	switch (x & 3) {
	case 0:
		return 1;
	case 1:
		return 1 + (size_t)((x >> 8) % 8);
	case 2:
		return 1 + (size_t)((x >> 8) % 512);
	default:
		return 1 + (size_t)((x >> 8) % (KW_FRAME_MAX + 16));
	}
}

/* Serialise a reply, deframe it and parse it as the client library does. */
static void
check_reply(json_t *reply, json_int_t id, int want)
{
	struct kw_frame_reader rd;
	uint8_t *frame = NULL, *body = NULL;
	size_t flen = 0, blen = 0, used = 0;
	json_t *result = NULL;
	char *message = NULL;

	/* Every reply the broker builds must exist and fit in a frame. */
	CHECK(reply != NULL);
	CHECK(kw_msg_encode(reply, &frame, &flen) == 0);
	kw_frame_reader_init(&rd, KW_FRAME_MAX);
	CHECK(kw_frame_feed(&rd, frame, flen, &used) == 1);
	CHECK(used == flen);
	CHECK(kw_frame_take(&rd, &body, &blen) == 0);
	CHECK(blen + KW_FRAME_HDR == flen);
	int r = kw_reply_parse(body, blen, id, &result, &message);
	CHECK(r == want);
	if (r == 0)
		CHECK(json_is_object(result));
	else
		CHECK(message != NULL);
	json_decref(result);
	free(message);
	free(body);
	free(frame);
	json_decref(reply);
}

static void
handle_body(const uint8_t *body, size_t len)
{
	struct kw_request req;
	char why[256];

	memset(why, 'X', sizeof(why));
	int r = kw_request_parse(body, len, &req, why, sizeof(why));
	CHECK(req.id >= -1 && req.id <= KW_PROTO_ID_MAX);
	if (r < 0) {
		CHECK(r == KW_ERR_BAD_JSON || r == KW_ERR_BAD_REQUEST || r == KW_ERR_NOMEM);
		CHECK(req.msg == NULL && req.op == NULL && req.args == NULL);
		CHECK(memchr(why, '\0', sizeof(why)) != NULL);
		CHECK(why[0] != '\0');
		/* The reason travels in the reply: it must be valid UTF-8 etc. */
		check_reply(kw_reply_error(req.id, r, why), req.id, r);
		kw_request_clear(&req);
		return;
	}
	CHECK(r == 0);
	CHECK(req.id >= 0);
	CHECK(req.op != NULL);
	CHECK(strlen(req.op) >= 1 && strlen(req.op) <= KW_PROTO_OP_MAX);
	CHECK(json_is_object(req.args));
	CHECK(json_object_get(req.msg, "args") == req.args);

	/* The broker's answers: an unknown op, and a result echoing the op. */
	char msg[128];
	snprintf(msg, sizeof(msg), "unknown operation '%.64s'", req.op);
	check_reply(kw_reply_error(req.id, KW_ERR_UNKNOWN_OP, msg), req.id, KW_ERR_UNKNOWN_OP);
	/* (Not the args: re-serialised, 1e5 grows to 100000.0 and may not fit.) */
	check_reply(kw_reply_ok(req.id, json_pack("{s:s}", "op", req.op)), req.id, 0);
	kw_request_clear(&req);
	CHECK(req.msg == NULL && req.id == -1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kw_frame_reader rd;
	uint64_t seed = hash_input(data, size);
	size_t off = 0;

	kw_frame_reader_init(&rd, KW_FRAME_MAX);
	while (off < size) {
		size_t n = next_chunk(&seed), used = (size_t)-1;
		if (n > size - off)
			n = size - off;
		int r = kw_frame_feed(&rd, data + off, n, &used);
		CHECK(used <= n);
		if (r < 0) {
			/* A bad header is judged alone: nothing allocated, stream closed. */
			CHECK(r == KW_ERR_FRAME_TOO_LARGE || r == KW_ERR_BAD_FRAME);
			CHECK(rd.body == NULL);
			check_reply(kw_reply_error(-1, r, NULL), -1, r);
			break;
		}
		off += used;
		if (r == 0) {
			CHECK(used == n);
			continue;
		}
		CHECK(r == 1);
		uint8_t *body = NULL;
		size_t blen = 0;
		CHECK(kw_frame_take(&rd, &body, &blen) == 0);
		CHECK(blen >= 1 && blen <= KW_FRAME_MAX);
		CHECK(body[blen] == '\0');
		CHECK(!kw_frame_reader_partial(&rd));
		handle_body(body, blen);
		free(body);
	}
	/* A client that disconnects mid-frame: the partial body is freed. */
	kw_frame_reader_reset(&rd);
	return 0;
}
