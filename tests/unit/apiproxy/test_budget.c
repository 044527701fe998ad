/*
 * test_budget.c - unit tests for the API proxy's budget arithmetic
 * (broker/apiproxy/budget.h) and usage windows (broker/apiproxy/since.h):
 * the largest budget of a user's roles, UTC days, the per-user counter and
 * its reset, and what "since" accepts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "broker/apiproxy/budget.h"
#include "broker/apiproxy/since.h"
#include "common/errors.h"

#define DAY_MS 86400000LL

static long long
limit_of(const char *budgets, const char *roles, const char **ret_role)
{
	json_t *b = json_loads(budgets, 0, NULL), *r = json_loads(roles, 0, NULL);
	long long n;

	assert_non_null(b);
	assert_non_null(r);
	n = kw_budget_limit(b, r, ret_role);
	/* ret_role is borrowed from roles: keep it readable for the caller's check. */
	if (ret_role && *ret_role) {
		static char keep[64];
		snprintf(keep, sizeof(keep), "%s", *ret_role);
		*ret_role = keep;
	}
	json_decref(b);
	json_decref(r);
	return n;
}

static void
test_the_largest_budget_of_the_roles_counts(void **state)
{
	const char *role = NULL;
	const char *budgets = "{\"developer\": {\"dailyTokens\": 1000},"
	    " \"reviewer\": {\"dailyTokens\": 50}, \"intern\": {\"dailyTokens\": 0}}";

	assert_int_equal(limit_of(budgets, "[\"reviewer\", \"developer\"]", &role), 1000);
	assert_string_equal(role, "developer");
	assert_int_equal(limit_of(budgets, "[\"reviewer\"]", &role), 50);
	assert_string_equal(role, "reviewer");
	/* A zero budget is a budget: nothing may be spent. */
	assert_int_equal(limit_of(budgets, "[\"intern\"]", &role), 0);
	assert_string_equal(role, "intern");
	/* A role with no entry does not lower another's. */
	assert_int_equal(limit_of(budgets, "[\"admin\", \"reviewer\"]", NULL), 50);
}

static void
test_no_entry_means_unlimited(void **state)
{
	const char *role = "x";

	assert_int_equal(limit_of("{}", "[\"developer\"]", &role), KW_BUDGET_UNLIMITED);
	assert_null(role);
	assert_int_equal(limit_of("{\"reviewer\": {\"dailyTokens\": 5}}", "[]", NULL),
	    KW_BUDGET_UNLIMITED);
}

static void
test_days_are_utc_days(void **state)
{
	assert_int_equal(kw_budget_day(0), 0);
	assert_int_equal(kw_budget_day(DAY_MS - 1), 0);
	assert_int_equal(kw_budget_day(DAY_MS), 1);
	assert_int_equal(kw_budget_day(-1), -1);
	/* 2026-12-03T23:59:59.999Z and 2026-12-04T00:00:00Z. */
	assert_int_equal(kw_budget_day(1796342399999LL) + 1, kw_budget_day(1796342400000LL));
}

static void
test_spending_adds_up_per_user_and_resets_the_next_day(void **state)
{
	struct kw_spent *s = kw_spent_new();

	assert_non_null(s);
	assert_int_equal(kw_spent_get(s, "alice", 10), 0);
	assert_int_equal(kw_spent_add(s, "alice", 10, 60), 0);
	assert_int_equal(kw_spent_add(s, "alice", 10, 40), 0);
	assert_int_equal(kw_spent_add(s, "bob", 10, 7), 0);
	assert_int_equal(kw_spent_get(s, "alice", 10), 100);
	assert_int_equal(kw_spent_get(s, "bob", 10), 7);
	/* Yesterday's count is not today's. */
	assert_int_equal(kw_spent_get(s, "alice", 11), 0);
	assert_int_equal(kw_spent_add(s, "alice", 11, 5), 0);
	assert_int_equal(kw_spent_get(s, "alice", 11), 5);
	assert_int_equal(kw_spent_get(s, "alice", 10), 0);
	/* A late record of a day that is over counts against nothing. */
	assert_int_equal(kw_spent_add(s, "alice", 10, 1000), 0);
	assert_int_equal(kw_spent_get(s, "alice", 11), 5);
	/* Negative counts are nonsense from a peer: they never lower the total. */
	assert_int_equal(kw_spent_add(s, "alice", 11, -50), 0);
	assert_int_equal(kw_spent_get(s, "alice", 11), 5);
	/* Many users: the table grows. */
	for (int i = 0; i < 100; i++) {
		char name[16];
		snprintf(name, sizeof(name), "u%d", i);
		assert_int_equal(kw_spent_add(s, name, 11, i), 0);
	}
	assert_int_equal(kw_spent_get(s, "u99", 11), 99);
	assert_int_equal(kw_spent_get(s, "alice", 11), 5);
	kw_spent_free(s);
	kw_spent_free(NULL);
}

static void
test_since_durations_count_back_from_now(void **state)
{
	long long now = 1796342400000LL, ms = 0;

	assert_int_equal(kw_usage_since(NULL, now, &ms), 0);
	assert_int_equal(ms, now - 24 * 3600 * 1000LL);
	assert_int_equal(kw_usage_since("", now, &ms), 0);
	assert_int_equal(ms, now - 24 * 3600 * 1000LL);
	assert_int_equal(kw_usage_since("24h", now, &ms), 0);
	assert_int_equal(ms, now - 24 * 3600 * 1000LL);
	assert_int_equal(kw_usage_since("7d", now, &ms), 0);
	assert_int_equal(ms, now - 7 * DAY_MS);
	assert_int_equal(kw_usage_since("30m", now, &ms), 0);
	assert_int_equal(ms, now - 30 * 60000LL);
	assert_int_equal(kw_usage_since("90s", now, &ms), 0);
	assert_int_equal(ms, now - 90000LL);
	assert_int_equal(kw_usage_since("2w", now, &ms), 0);
	assert_int_equal(ms, now - 14 * DAY_MS);
}

static void
test_since_times_are_iso_8601(void **state)
{
	long long ms = 0;

	assert_int_equal(kw_usage_since("2026-12-04", 0, &ms), 0);
	assert_int_equal(ms, 1796342400000LL);
	assert_int_equal(kw_usage_since("2026-12-04T00:00:00Z", 0, &ms), 0);
	assert_int_equal(ms, 1796342400000LL);
	assert_int_equal(kw_usage_since("2026-12-04T01:30:00+01:30", 0, &ms), 0);
	assert_int_equal(ms, 1796342400000LL);
	assert_int_equal(kw_usage_since("2026-12-03T19:00:00-05:00", 0, &ms), 0);
	assert_int_equal(ms, 1796342400000LL);
	assert_int_equal(kw_usage_since("2026-12-04T00:00:00.250Z", 0, &ms), 0);
	assert_int_equal(ms, 1796342400250LL);
	assert_int_equal(kw_usage_since("2026-12-04T00:00", 0, &ms), 0);
	assert_int_equal(ms, 1796342400000LL);
}

static void
test_since_refuses_what_it_cannot_read(void **state)
{
	static const char *const bad[] = { "yesterday", "24", "h", "-1d", "7d ", "7dd", "1y",
		"2026-13-01", "2026-12-04T25:00:00Z", "2026-12-04T00:00:00+0100", "2026-12-04X",
		"12/04/2026", "99999999999d" };
	long long ms = 42;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(kw_usage_since(bad[i], 0, &ms), KW_ERR_INVALID);
		assert_int_equal(ms, 42);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_largest_budget_of_the_roles_counts),
		cmocka_unit_test(test_no_entry_means_unlimited),
		cmocka_unit_test(test_days_are_utc_days),
		cmocka_unit_test(test_spending_adds_up_per_user_and_resets_the_next_day),
		cmocka_unit_test(test_since_durations_count_back_from_now),
		cmocka_unit_test(test_since_times_are_iso_8601),
		cmocka_unit_test(test_since_refuses_what_it_cannot_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
