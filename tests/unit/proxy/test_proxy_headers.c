/*
 * test_proxy_headers.c - which headers the API proxy passes on, and where it
 * finds the client's credential (proxy/headers.c).
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_end_to_end_headers_pass),
		cmocka_unit_test(test_hop_by_hop_and_credentials_stay),
		cmocka_unit_test(test_response_headers),
		cmocka_unit_test(test_credential),
	};

	return cmocka_run_group_tests_name("proxy headers", tests, NULL, NULL);
}
