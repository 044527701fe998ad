/*
 * test_proxy_headers.c - which headers the API proxy passes on, and where it
 * finds the client's credential, and which requests it refuses before any
 * is forwarded: framing or header syntax a later hop could read another way
 * (proxy/headers.c).
 *
 * The proxy's objects are no library, so the file under test is compiled
 * in here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proxy/headers.c"

static void
test_end_to_end_headers_pass(void **state)
{
	const char *pass[] = { "anthropic-version", "anthropic-beta", "Anthropic-Dangerous-Direct",
		"content-type", "accept", "user-agent", "x-stainless-arch", "X-Custom" };

	for (size_t i = 0; i < KW_ELEMENTSOF(pass); i++)
		assert_true(kw_proxy_header_forwarded(pass[i]));
}

static void
test_hop_by_hop_and_credentials_stay(void **state)
{
	const char *stay[] = { "Connection", "keep-alive", "TE", "Trailer", "transfer-encoding",
		"Upgrade", "Proxy-Authorization", "proxy-connection", "Host", "Content-Length",
		"Expect", "x-api-key", "X-API-KEY", "Authorization", "AUTHORIZATION", "" };

	for (size_t i = 0; i < KW_ELEMENTSOF(stay); i++)
		assert_false(kw_proxy_header_forwarded(stay[i]));
}

static void
test_response_headers(void **state)
{
	assert_true(kw_proxy_header_returned("content-type"));
	assert_true(kw_proxy_header_returned("request-id"));
	assert_true(kw_proxy_header_returned("anthropic-ratelimit-tokens-remaining"));
	assert_false(kw_proxy_header_returned("Transfer-Encoding"));
	assert_false(kw_proxy_header_returned("Connection"));
	assert_false(kw_proxy_header_returned("Content-Length"));
	assert_false(kw_proxy_header_returned("Proxy-Authenticate"));
}

static void
test_credential(void **state)
{
	assert_string_equal(kw_proxy_credential("kwp1_a", "Bearer kwp1_b"), "kwp1_a");
	assert_string_equal(kw_proxy_credential(NULL, "Bearer kwp1_b"), "kwp1_b");
	assert_string_equal(kw_proxy_credential("", "bearer   kwp1_b"), "kwp1_b");
	assert_null(kw_proxy_credential(NULL, "Basic dXNlcjpwdw=="));
	assert_null(kw_proxy_credential(NULL, "Bearer "));
	assert_null(kw_proxy_credential(NULL, "Bearer"));
	assert_null(kw_proxy_credential(NULL, NULL));
}

/* Feed (name, value) pairs, NULL-terminated; the verdict. */
static const char *
framing(const char *const *h)
{
	struct kw_proxy_framing f = { 0 };

	for (; *h; h += 2)
		kw_proxy_framing_header(&f, h[0], h[1]);
	return kw_proxy_framing_finish(&f);
}

static void
test_framing_accepted(void **state)
{
	const char *plain[] = { "Host", "x", "Content-Length", "11", "x-api-key", "kwp1_a",
		"anthropic-beta", "a,b", "X-Empty", "", NULL };
	const char *same_twice[] = { "Content-Length", "11", "content-length", "11", NULL };
	const char *chunked[] = { "Transfer-Encoding", "Chunked", "X-Tab", "a\tb", NULL };
	const char *tchars[] = { "!#$%&'*+-.^_`|~09azAZ", "v", NULL };
	const char *none[] = { NULL };

	assert_null(framing(plain));
	assert_null(framing(same_twice));
	assert_null(framing(chunked));
	assert_null(framing(tchars));
	assert_null(framing(none));
}

static void
test_framing_refused(void **state)
{
	const char *two_lengths[] = { "Content-Length", "11", "Content-Length", "16", NULL };
	const char *space_name[] = { "X-Bad ", "value", NULL };
	const char *inner_space[] = { "X Bad", "value", NULL };
	const char *empty_name[] = { "", "value", NULL };
	const char *separator[] = { "X(Bad)", "value", NULL };
	const char *non_ascii[] = { "X-\xc3\xa9", "value", NULL };
	const char *ctl_value[] = { "X-A", "a\rb", NULL };
	const char *del_value[] = { "X-A", "a\x7f", NULL };
	const char *te_and_cl[] = { "Content-Length", "11", "Transfer-Encoding", "chunked", NULL };
	const char *cl_after_te[] = { "Transfer-Encoding", "chunked", "Content-Length", "0", NULL };
	const char *gzip[] = { "Transfer-Encoding", "gzip, chunked", NULL };
	const char *te_twice[] = { "Transfer-Encoding", "chunked", "Transfer-Encoding", "chunked",
		NULL };
	const char *list[] = { "Content-Length", "11, 11", NULL };
	const char *sign[] = { "Content-Length", "+11", NULL };
	const char *empty_cl[] = { "Content-Length", "", NULL };
	const char *huge[] = { "Content-Length", "123456789012345678901", NULL };

	assert_non_null(strstr(framing(two_lengths), "different values"));
	assert_non_null(strstr(framing(space_name), "not a token"));
	assert_non_null(framing(inner_space));
	assert_non_null(framing(empty_name));
	assert_non_null(framing(separator));
	assert_non_null(framing(non_ascii));
	assert_non_null(strstr(framing(ctl_value), "control character"));
	assert_non_null(framing(del_value));
	assert_non_null(strstr(framing(te_and_cl), "both"));
	assert_non_null(framing(cl_after_te));
	assert_non_null(framing(gzip));
	assert_non_null(framing(te_twice));
	assert_non_null(framing(list));
	assert_non_null(framing(sign));
	assert_non_null(framing(empty_cl));
	assert_non_null(framing(huge));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_end_to_end_headers_pass),
		cmocka_unit_test(test_hop_by_hop_and_credentials_stay),
		cmocka_unit_test(test_response_headers),
		cmocka_unit_test(test_credential),
		cmocka_unit_test(test_framing_accepted),
		cmocka_unit_test(test_framing_refused),
	};

	return cmocka_run_group_tests_name("proxy headers", tests, NULL, NULL);
}
