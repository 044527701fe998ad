/*
 * test_frame.c - unit tests for the length-prefixed frame layer (frame.h).
 *
 * The reader is fed the way a socket delivers bytes: one at a time, in odd
 * chunks, several frames at once.  Lengths are checked from the header
 * alone, so a bad header must leave nothing allocated.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/frame.h"
#include "client/keywarden.h"

/* A frame built by hand, so the tests do not trust kw_frame_encode. */
static uint8_t *
make_frame(uint32_t len, const void *body, size_t body_len, size_t *ret_len)
{
	uint8_t *f = malloc(KW_FRAME_HDR + body_len);

	assert_non_null(f);
	f[0] = (uint8_t)(len >> 24);
	f[1] = (uint8_t)(len >> 16);
	f[2] = (uint8_t)(len >> 8);
	f[3] = (uint8_t)len;
	if (body_len)
		memcpy(f + KW_FRAME_HDR, body, body_len);
	*ret_len = KW_FRAME_HDR + body_len;
	return f;
}

static void
expect_body(struct kw_frame_reader *rd, const void *want, size_t want_len)
{
	uint8_t *body = NULL;
	size_t len = 0;

	assert_int_equal(kw_frame_take(rd, &body, &len), 0);
	assert_non_null(body);
	assert_int_equal(len, want_len);
	assert_memory_equal(body, want, want_len);
	/* take promises a NUL past the body so text bodies can be used as strings. */
	assert_int_equal(body[len], '\0');
	free(body);
	assert_false(kw_frame_reader_partial(rd));
	assert_null(rd->body);
}

static void
test_init_state(void **state)
{
	struct kw_frame_reader rd;

	memset(&rd, 0xa5, sizeof(rd));
	kw_frame_reader_init(&rd, 123);
	assert_int_equal(rd.max, 123);
	assert_int_equal(rd.hdr_got, 0);
	assert_null(rd.body);
	assert_false(kw_frame_reader_partial(&rd));
}

static void
test_header_split_one_byte_feeds(void **state)
{
	static const char msg[] = "{\"id\":1,\"op\":\"hello\"}";
	struct kw_frame_reader rd;
	size_t flen, used;
	uint8_t *f = make_frame(sizeof(msg) - 1, msg, sizeof(msg) - 1, &flen);

	kw_frame_reader_init(&rd, KW_FRAME_MAX);
	for (size_t i = 0; i < flen; i++) {
		used = 99;
		int r = kw_frame_feed(&rd, f + i, 1, &used);
		assert_int_equal(used, 1);
		assert_int_equal(r, i == flen - 1 ? 1 : 0);
		assert_true(kw_frame_reader_partial(&rd));
		if (i < KW_FRAME_HDR - 1)
			assert_null(rd.body);	/* nothing allocated before the header is whole */
	}
	expect_body(&rd, msg, sizeof(msg) - 1);
	free(f);
}

static void
test_body_split(void **state)
{
	uint8_t body[1000];
	struct kw_frame_reader rd;
	size_t flen, used, off;
	uint8_t *f;

	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (uint8_t)(i * 7 + 3);
	f = make_frame(sizeof(body), body, sizeof(body), &flen);
	kw_frame_reader_init(&rd, KW_FRAME_MAX);

	assert_int_equal(kw_frame_feed(&rd, f, KW_FRAME_HDR, &used), 0);
	assert_int_equal(used, KW_FRAME_HDR);
	assert_non_null(rd.body);
	/* Chunks of 1, 2, 3, ... bytes, the last one cut to what remains. */
	off = KW_FRAME_HDR;
	for (size_t chunk = 1; off < flen; chunk++) {
		size_t n = chunk < flen - off ? chunk : flen - off;
		int r = kw_frame_feed(&rd, f + off, n, &used);
		assert_int_equal(used, n);
		off += n;
		assert_int_equal(r, off == flen ? 1 : 0);
	}
	expect_body(&rd, body, sizeof(body));
	free(f);
}

static void
test_exact_max_accepted(void **state)
{
	struct kw_frame_reader rd;
	size_t flen, used;
	uint8_t *body = malloc(KW_FRAME_MAX), *f;

	assert_non_null(body);
	memset(body, 'x', KW_FRAME_MAX);
	f = make_frame(KW_FRAME_MAX, body, KW_FRAME_MAX, &flen);
	kw_frame_reader_init(&rd, KW_FRAME_MAX);
	assert_int_equal(kw_frame_feed(&rd, f, flen, &used), 1);
	assert_int_equal(used, flen);
	expect_body(&rd, body, KW_FRAME_MAX);
	free(f);

	/* The same with a small limit: max is the reader's, not a constant. */
	f = make_frame(16, body, 16, &flen);
	kw_frame_reader_init(&rd, 16);
	assert_int_equal(kw_frame_feed(&rd, f, flen, &used), 1);
	expect_body(&rd, body, 16);
	free(f);
	free(body);
}

static void
test_max_plus_one_refused_before_allocation(void **state)
{
	static const uint32_t lens[] = { KW_FRAME_MAX + 1, 0x00ffffff, 0x7fffffff, 0xffffffff };
	struct kw_frame_reader rd;
	size_t flen, used;

	for (size_t i = 0; i < KW_ELEMENTSOF(lens); i++) {
		/* Body bytes follow the header: none may be consumed. */
		uint8_t *f = make_frame(lens[i], "abcdefgh", 8, &flen);
		kw_frame_reader_init(&rd, KW_FRAME_MAX);
		assert_int_equal(kw_frame_feed(&rd, f, flen, &used), KW_ERR_FRAME_TOO_LARGE);
		assert_int_equal(used, KW_FRAME_HDR);
		assert_null(rd.body);
		kw_frame_reader_reset(&rd);
		free(f);
	}

	/* Byte by byte, the error comes with the fourth byte. */
	size_t n;
	uint8_t *f = make_frame(17, NULL, 0, &n);
	kw_frame_reader_init(&rd, 16);
	for (size_t i = 0; i < KW_FRAME_HDR - 1; i++)
		assert_int_equal(kw_frame_feed(&rd, f + i, 1, &used), 0);
	assert_int_equal(kw_frame_feed(&rd, f + 3, 1, &used), KW_ERR_FRAME_TOO_LARGE);
	assert_int_equal(used, 1);
	assert_null(rd.body);
	kw_frame_reader_reset(&rd);
	free(f);
}

static void
test_zero_length_bad_frame(void **state)
{
	struct kw_frame_reader rd;
	size_t flen, used;
	uint8_t *f = make_frame(0, "{}", 2, &flen);

	kw_frame_reader_init(&rd, KW_FRAME_MAX);
	assert_int_equal(kw_frame_feed(&rd, f, flen, &used), KW_ERR_BAD_FRAME);
	assert_int_equal(used, KW_FRAME_HDR);
	assert_null(rd.body);
	kw_frame_reader_reset(&rd);
	assert_false(kw_frame_reader_partial(&rd));
	free(f);
}

static void
test_two_frames_in_one_buffer(void **state)
{
	struct kw_frame_reader rd;
	size_t l1, l2, used;
	uint8_t *f1 = make_frame(5, "first", 5, &l1);
	uint8_t *f2 = make_frame(6, "second", 6, &l2);
	uint8_t buf[64];

	memcpy(buf, f1, l1);
	memcpy(buf + l1, f2, l2);
	kw_frame_reader_init(&rd, KW_FRAME_MAX);

	assert_int_equal(kw_frame_feed(&rd, buf, l1 + l2, &used), 1);
	assert_int_equal(used, l1);
	assert_true(used < l1 + l2);
	/* Until the frame is taken, further feeds consume nothing. */
	size_t again = 99;
	assert_int_equal(kw_frame_feed(&rd, buf + used, l1 + l2 - used, &again), 1);
	assert_int_equal(again, 0);
	expect_body(&rd, "first", 5);

	assert_int_equal(kw_frame_feed(&rd, buf + used, l1 + l2 - used, &used), 1);
	assert_int_equal(used, l2);
	expect_body(&rd, "second", 6);
	free(f1);
	free(f2);
}

static void
test_take_without_complete_frame(void **state)
{
	struct kw_frame_reader rd;
	uint8_t *body = (uint8_t *)"sentinel";
	size_t len = 4242, flen, used;
	uint8_t *f = make_frame(10, "0123456789", 10, &flen);

	kw_frame_reader_init(&rd, KW_FRAME_MAX);
	/* Fresh reader. */
	assert_int_equal(kw_frame_take(&rd, &body, &len), KW_ERR_INTERNAL);
	/* Half a header. */
	assert_int_equal(kw_frame_feed(&rd, f, 2, &used), 0);
	assert_int_equal(kw_frame_take(&rd, &body, &len), KW_ERR_INTERNAL);
	/* Header and part of the body. */
	assert_int_equal(kw_frame_feed(&rd, f + 2, 7, &used), 0);
	assert_int_equal(kw_frame_take(&rd, &body, &len), KW_ERR_INTERNAL);
	/* Outputs are untouched on failure. */
	assert_string_equal((char *)body, "sentinel");
	assert_int_equal(len, 4242);
	/* The partial frame is still there and can be finished. */
	assert_true(kw_frame_reader_partial(&rd));
	assert_int_equal(kw_frame_feed(&rd, f + 9, flen - 9, &used), 1);
	expect_body(&rd, "0123456789", 10);
	/* And a second take after a successful one fails again. */
	assert_int_equal(kw_frame_take(&rd, &body, &len), KW_ERR_INTERNAL);
	free(f);
}

static void
test_reset_frees_partial_body(void **state)
{
	struct kw_frame_reader rd;
	size_t flen, used;
	uint8_t *f = make_frame(100, "0123456789", 10, &flen);

	kw_frame_reader_init(&rd, KW_FRAME_MAX);
	assert_int_equal(kw_frame_feed(&rd, f, flen, &used), 0);
	assert_non_null(rd.body);
	assert_true(kw_frame_reader_partial(&rd));
	/* LeakSanitizer (ASan build) reports the body if reset does not free it. */
	kw_frame_reader_reset(&rd);
	assert_null(rd.body);
	assert_false(kw_frame_reader_partial(&rd));
	assert_int_equal(rd.max, KW_FRAME_MAX);	/* the limit survives a reset */
	kw_frame_reader_reset(&rd);		/* twice is harmless */
	free(f);

	/* The reader is usable again from a frame boundary. */
	f = make_frame(3, "abc", 3, &flen);
	assert_int_equal(kw_frame_feed(&rd, f, flen, &used), 1);
	expect_body(&rd, "abc", 3);
	free(f);
}

static void
test_feed_nothing(void **state)
{
	struct kw_frame_reader rd;
	uint8_t b = 0;
	size_t used = 99;

	kw_frame_reader_init(&rd, KW_FRAME_MAX);
	assert_int_equal(kw_frame_feed(&rd, &b, 0, &used), 0);
	assert_int_equal(used, 0);
	assert_false(kw_frame_reader_partial(&rd));
}

static void
test_error_is_sticky(void **state)
{
	static const uint8_t too_big[] = { 0x00, 0x01, 0x00, 0x01 };
	static const uint8_t empty[] = { 0, 0, 0, 0 };
	static const uint8_t more[] = "abc";
	struct kw_frame_reader rd;
	size_t used = 99;

	/* After a bad header nothing more is framed, whatever follows. */
	kw_frame_reader_init(&rd, KW_FRAME_MAX);
	assert_int_equal(kw_frame_feed(&rd, too_big, sizeof(too_big), &used), KW_ERR_FRAME_TOO_LARGE);
	assert_int_equal(kw_frame_feed(&rd, more, 3, &used), KW_ERR_FRAME_TOO_LARGE);
	assert_int_equal(used, 0);
	kw_frame_reader_reset(&rd);
	assert_int_equal(kw_frame_feed(&rd, empty, sizeof(empty), &used), KW_ERR_BAD_FRAME);
	assert_int_equal(kw_frame_feed(&rd, more, 3, &used), KW_ERR_BAD_FRAME);
	/* reset starts a fresh stream */
	kw_frame_reader_reset(&rd);
	assert_int_equal(kw_frame_feed(&rd, more, 3, &used), 0);
	assert_int_equal(used, 3);
	kw_frame_reader_reset(&rd);
}

static void
test_encode_refuses_bad_lengths(void **state)
{
	uint8_t *frame = (uint8_t *)"untouched";
	size_t flen = 77;
	char body[17] = "0123456789abcdef";

	assert_int_equal(kw_frame_encode(body, 0, KW_FRAME_MAX, &frame, &flen), KW_ERR_BAD_FRAME);
	assert_int_equal(kw_frame_encode(NULL, 5, KW_FRAME_MAX, &frame, &flen), KW_ERR_BAD_FRAME);
	assert_int_equal(kw_frame_encode(body, 17, 16, &frame, &flen), KW_ERR_FRAME_TOO_LARGE);
	assert_int_equal(kw_frame_encode(body, (size_t)KW_FRAME_MAX + 1, KW_FRAME_MAX,
	    &frame, &flen), KW_ERR_FRAME_TOO_LARGE);
	assert_string_equal((char *)frame, "untouched");
	assert_int_equal(flen, 77);

	/* Exactly max is fine. */
	assert_int_equal(kw_frame_encode(body, 16, 16, &frame, &flen), 0);
	assert_int_equal(flen, KW_FRAME_HDR + 16);
	free(frame);
}

static void
test_encode_header_is_big_endian(void **state)
{
	size_t len = 0x010203, flen;
	uint8_t *body = calloc(1, len), *frame = NULL;

	assert_non_null(body);
	assert_int_equal(kw_frame_encode(body, len, 1 << 24, &frame, &flen), 0);
	assert_int_equal(flen, KW_FRAME_HDR + len);
	assert_int_equal(frame[0], 0x00);
	assert_int_equal(frame[1], 0x01);
	assert_int_equal(frame[2], 0x02);
	assert_int_equal(frame[3], 0x03);
	free(frame);
	free(body);
}

static void
test_encode_feed_round_trip(void **state)
{
	static const size_t sizes[] = { 1, 2, 3, 4, 5, 255, 256, 4096, 65535, KW_FRAME_MAX };
	uint8_t *body = malloc(KW_FRAME_MAX);
	unsigned seed = 12345;

	assert_non_null(body);
	for (size_t i = 0; i < KW_FRAME_MAX; i++)
		body[i] = (uint8_t)(i ^ (i >> 8));
	for (size_t s = 0; s < KW_ELEMENTSOF(sizes); s++) {
		struct kw_frame_reader rd;
		uint8_t *frame = NULL;
		size_t flen, off = 0, used;
		int r = 0;

		assert_int_equal(kw_frame_encode(body, sizes[s], KW_FRAME_MAX, &frame, &flen), 0);
		assert_int_equal(flen, KW_FRAME_HDR + sizes[s]);
		kw_frame_reader_init(&rd, KW_FRAME_MAX);
		/* Pseudo-random chunks, as a socket would deliver them. */
		while (off < flen) {
			seed = seed * 1103515245 + 12345;
			size_t n = 1 + (seed >> 16) % 700;
			if (n > flen - off)
				n = flen - off;
			r = kw_frame_feed(&rd, frame + off, n, &used);
			assert_true(r == 0 || r == 1);
			assert_int_equal(used, n);
			off += used;
		}
		assert_int_equal(r, 1);
		expect_body(&rd, body, sizes[s]);
		free(frame);
	}
	free(body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_state),
		cmocka_unit_test(test_header_split_one_byte_feeds),
		cmocka_unit_test(test_body_split),
		cmocka_unit_test(test_exact_max_accepted),
		cmocka_unit_test(test_max_plus_one_refused_before_allocation),
		cmocka_unit_test(test_zero_length_bad_frame),
		cmocka_unit_test(test_two_frames_in_one_buffer),
		cmocka_unit_test(test_take_without_complete_frame),
		cmocka_unit_test(test_reset_frees_partial_body),
		cmocka_unit_test(test_feed_nothing),
		cmocka_unit_test(test_error_is_sticky),
		cmocka_unit_test(test_encode_refuses_bad_lengths),
		cmocka_unit_test(test_encode_header_is_big_endian),
		cmocka_unit_test(test_encode_feed_round_trip),
	};

	return cmocka_run_group_tests_name("frame", tests, NULL, NULL);
}
