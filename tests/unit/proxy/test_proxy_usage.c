/*
 * test_proxy_usage.c - tokens and model read from a response as it streams
 * (proxy/usage.c): the same stream fed whole, byte by byte and in odd
 * splits gives the same answer; oversized lines and events are skipped with
 * memory bounded; a JSON reply is read at its end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "proxy/usage.c"

static const char stream[] =
	"event: message_start\r\n"
	"data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude-sonnet-4-5\","
	"\"usage\":{\"input_tokens\":1234,\"output_tokens\":1}}}\r\n"
	"\r\n"
	"event: content_block_delta\n"
	"data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":"
	"\"{\\\"type\\\":\\\"message_delta\\\",\\\"usage\\\":{\\\"output_tokens\\\":999999}}\"}}\n"
	"\n"
	"event: ping\n"
	"data: {\"type\": \"ping\"}\n"
	"\n"
	"event: message_delta\n"
	"data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
	"\"usage\":{\"output_tokens\":56}}\n"
	"\n"
	"event: message_stop\n"
	"data: {\"type\":\"message_stop\"}\n"
	"\n";

static void
check(struct kw_usage *u)
{
	kw_usage_finish(u);
	assert_int_equal(kw_usage_input(u), 1234);
	assert_int_equal(kw_usage_output(u), 56);
	assert_non_null(kw_usage_model(u));
	assert_string_equal(kw_usage_model(u), "claude-sonnet-4-5");
	kw_usage_free(u);
}

static void
test_sse_whole(void **state)
{
	struct kw_usage *u = kw_usage_new("text/event-stream; charset=utf-8");

	assert_non_null(u);
	kw_usage_feed(u, stream, sizeof(stream) - 1);
	check(u);
}

static void
test_sse_every_split(void **state)
{
	size_t n = sizeof(stream) - 1;

	/* Byte by byte, and every chunk size up to 97 (all splits across CRLF, "data:", JSON). */
	for (size_t step = 1; step < 98; step++) {
		struct kw_usage *u = kw_usage_new("text/event-stream");
		for (size_t off = 0; off < n; off += step)
			kw_usage_feed(u, stream + off, off + step > n ? n - off : step);
		check(u);
	}
	/* Two pieces, cut at every offset. */
	for (size_t cut = 0; cut <= n; cut++) {
		struct kw_usage *u = kw_usage_new("text/event-stream");
		kw_usage_feed(u, stream, cut);
		kw_usage_feed(u, stream + cut, n - cut);
		check(u);
	}
}

static void
test_sse_oversized_is_skipped(void **state)
{
	struct kw_usage *u = kw_usage_new("text/event-stream");
	size_t big = 3 * LINE_MAX_LEN;
	char *line = malloc(big);

	assert_non_null(line);
	memset(line, 'x', big);
	/* A huge unnamed event: skipped, and the stream after it still read. */
	kw_usage_feed(u, "data: ", 6);
	for (int i = 0; i < 10; i++)
		kw_usage_feed(u, line, big);
	kw_usage_feed(u, "\n\n", 2);
	kw_usage_feed(u, stream, sizeof(stream) - 1);
	assert_true(u->line_len <= LINE_MAX_LEN && u->data_len <= DATA_MAX_LEN);
	assert_true(u->line_cap <= LINE_MAX_LEN && u->data_cap <= DATA_MAX_LEN);
	free(line);
	check(u);
}

static void
test_sse_buffers_start_small(void **state)
{
	struct kw_usage *u = kw_usage_new("text/event-stream");

	kw_usage_feed(u, stream, sizeof(stream) - 1);
	/* The longest line of the stream is under 300 bytes. */
	assert_true(u->line_cap <= 1024 && u->data_cap <= 1024);
	check(u);
}

static void
test_sse_unterminated_last_event(void **state)
{
	static const char tail[] = "event: message_delta\ndata: {\"type\":\"message_delta\","
		"\"usage\":{\"output_tokens\":7}}";
	struct kw_usage *u = kw_usage_new("text/event-stream");

	kw_usage_feed(u, tail, sizeof(tail) - 1);
	kw_usage_finish(u);
	assert_int_equal(kw_usage_output(u), 7);
	assert_int_equal(kw_usage_input(u), -1);
	assert_null(kw_usage_model(u));
	kw_usage_free(u);
}

static void
test_json_reply(void **state)
{
	static const char body[] = "{\"id\":\"msg_1\",\"type\":\"message\",\"model\":\"claude-opus-4\","
		"\"content\":[{\"type\":\"text\",\"text\":\"hi\"}],"
		"\"usage\":{\"input_tokens\":10,\"output_tokens\":3}}";
	struct kw_usage *u = kw_usage_new("application/json");

	for (size_t i = 0; i < sizeof(body) - 1; i += 5)
		kw_usage_feed(u, body + i, sizeof(body) - 1 - i < 5 ? sizeof(body) - 1 - i : 5);
	kw_usage_finish(u);
	assert_int_equal(kw_usage_input(u), 10);
	assert_int_equal(kw_usage_output(u), 3);
	assert_string_equal(kw_usage_model(u), "claude-opus-4");
	kw_usage_free(u);
}

static void
test_error_reply_has_no_usage(void **state)
{
	static const char body[] = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}";
	struct kw_usage *u = kw_usage_new(NULL);

	kw_usage_feed(u, body, sizeof(body) - 1);
	kw_usage_finish(u);
	assert_int_equal(kw_usage_input(u), -1);
	assert_int_equal(kw_usage_output(u), -1);
	assert_null(kw_usage_model(u));
	kw_usage_free(u);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sse_whole),
		cmocka_unit_test(test_sse_every_split),
		cmocka_unit_test(test_sse_oversized_is_skipped),
		cmocka_unit_test(test_sse_buffers_start_small),
		cmocka_unit_test(test_sse_unterminated_last_event),
		cmocka_unit_test(test_json_reply),
		cmocka_unit_test(test_error_reply_has_no_usage),
	};

	return cmocka_run_group_tests_name("proxy usage", tests, NULL, NULL);
}
