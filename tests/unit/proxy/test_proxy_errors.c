/*
 * test_proxy_errors.c - the broker's refusals as Claude Code sees them
 * (proxy/errors_json.c): the Messages API's error body, and the status and
 * error type for each refusal (proxy/DESIGN.md, "What Claude Code sees").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proxy/errors_json.c"

static void
test_body_shape(void **state)
{
	char *text = kw_proxy_error_body("permission_error", "keywarden: \"locked\"\n");
	json_t *doc = json_loads(text, 0, NULL);

	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "type")), "error");
	json_t *err = json_object_get(doc, "error");
	assert_string_equal(json_string_value(json_object_get(err, "type")), "permission_error");
	assert_string_equal(json_string_value(json_object_get(err, "message")),
	    "keywarden: \"locked\"\n");
	json_decref(doc);
	free(text);
}

static void
test_statuses(void **state)
{
	const char *type;

	assert_int_equal(kw_proxy_refusal_status(KW_ERR_SESSION, NULL, &type), 401);
	assert_string_equal(type, "authentication_error");
	assert_int_equal(kw_proxy_refusal_status(KW_ERR_INTERNAL, "keywarden: session s1 expired",
	    &type), 401);
	assert_int_equal(kw_proxy_refusal_status(KW_ERR_DENIED, "keywarden: your roles do not "
	    "grant read:key/anthropic", &type), 403);
	assert_string_equal(type, "permission_error");
	assert_int_equal(kw_proxy_refusal_status(KW_ERR_LOCKED, "keywarden: locked", &type), 403);
	assert_int_equal(kw_proxy_refusal_status(KW_ERR_INTERNAL, "keywarden: daily token budget "
	    "of 1000 for role dev is spent", &type), 429);
	assert_string_equal(type, "rate_limit_error");
	assert_int_equal(kw_proxy_refusal_status(KW_ERR_IO, "disk", &type), 502);
	assert_string_equal(type, "api_error");
	/* The broker's own names, when this libkeywarden knows them. */
	if (kw_error_from_name("expired") != KW_ERR_INTERNAL)
		assert_int_equal(kw_proxy_refusal_status(kw_error_from_name("expired"),
		    "keywarden: session s1 ended after being idle", &type), 401);
	if (kw_error_from_name("budget") != KW_ERR_INTERNAL)
		assert_int_equal(kw_proxy_refusal_status(kw_error_from_name("budget"), "", &type),
		    429);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_body_shape),
		cmocka_unit_test(test_statuses),
	};

	return cmocka_run_group_tests_name("proxy errors", tests, NULL, NULL);
}
