/*
 * test_lock_backoff.c - automatic locks that last longer each time they
 * come again (broker/store/locks.h: kw_lock_backoff_duration, kw_lock_auto)
 * on a real state.db.
 *
 * Every test gets a fresh data directory (support/fixture.h) with the users
 * alice (2001) and bob (2002).  Times are passed in as `now`.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "broker/store/locks.h"
#include "broker/store/users.h"
#include "tests/unit/support/fixture.h"

#define ALICE 2001
#define BOB   2002

static const struct kw_lock_backoff policy = {
	.duration = 60, .factor = 2, .max = 1000, .window = 500,
};

static int
setup(void **state)
{
	struct kw_test_fx *fx = NULL;

	if (kw_test_fx_new("backoff", &fx) != 0 || kw_test_fx_state(fx) != 0 ||
	    kw_user_insert(fx->state, ALICE, "alice", "test") != 0 ||
	    kw_user_insert(fx->state, BOB, "bob", "test") != 0) {
		kw_test_fx_free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	return kw_test_fx_free(*state) == 0 ? 0 : -1;
}

static void
test_duration_grows_by_the_factor_up_to_max(void **state)
{
	struct kw_lock_backoff b = policy;

	assert_int_equal(kw_lock_backoff_duration(&b, 0), 60);
	assert_int_equal(kw_lock_backoff_duration(&b, 1), 120);
	assert_int_equal(kw_lock_backoff_duration(&b, 3), 480);
	assert_int_equal(kw_lock_backoff_duration(&b, 4), 960);
	assert_int_equal(kw_lock_backoff_duration(&b, 5), 1000);
	/* However many repeats, nothing overflows past max. */
	assert_int_equal(kw_lock_backoff_duration(&b, 1000000), 1000);
	b.max = LLONG_MAX;
	b.factor = 16;
	assert_int_equal(kw_lock_backoff_duration(&b, 1000), LLONG_MAX);
	/* Factor 1: every lock as long; duration 0: until unlocked, always. */
	b.factor = 1;
	assert_int_equal(kw_lock_backoff_duration(&b, 50), 60);
	b.duration = 0;
	assert_int_equal(kw_lock_backoff_duration(&b, 3), 0);
	/* A max below duration does not shorten the first lock. */
	b = policy;
	b.max = 10;
	assert_int_equal(kw_lock_backoff_duration(&b, 2), 60);
}

static void
lock(struct kw_test_fx *fx, uid_t uid, long long now, long long want_until,
    long long want_repeat)
{
	long long until = 0, repeat = -1;
	struct kw_lock l;

	assert_int_equal(kw_lock_auto(fx->state, uid, now, &policy, "too many failed logins",
	    &until, &repeat), 0);
	assert_int_equal(until, want_until);
	assert_int_equal(repeat, want_repeat);
	assert_int_equal(kw_lock_get(fx->state, uid, now, &l), 0);
	assert_true(l.locked);
	assert_int_equal(l.until, want_until);
	assert_string_equal(l.by, "keywarden");
}

static void
test_repeats_within_the_window_last_longer(void **state)
{
	struct kw_test_fx *fx = *state;
	struct kw_lock l;

	lock(fx, ALICE, 1000, 1060, 0);
	/* The lock runs out (kw_lock_get lifts it): the back-off stays. */
	assert_int_equal(kw_lock_get(fx->state, ALICE, 1060, &l), 0);
	assert_false(l.locked);
	lock(fx, ALICE, 1100, 1220, 1);
	lock(fx, ALICE, 1220 + 500, 1720 + 240, 2);	/* exactly window after the end */
	/* bob's locks are his own. */
	lock(fx, BOB, 2000, 2060, 0);
	/* Later than window after the last end: a first lock again. */
	lock(fx, ALICE, 1960 + 501, 2461 + 60, 0);
}

static void
test_a_lock_while_locked_repeats(void **state)
{
	struct kw_test_fx *fx = *state;

	lock(fx, ALICE, 1000, 1060, 0);
	lock(fx, ALICE, 1010, 1130, 1);
}

static void
test_unlock_and_user_deletion_forget_the_back_off(void **state)
{
	struct kw_test_fx *fx = *state;
	bool was = false;

	lock(fx, ALICE, 1000, 1060, 0);
	assert_int_equal(kw_lock_clear(fx->state, ALICE, &was), 0);
	assert_true(was);
	lock(fx, ALICE, 1001, 1061, 0);
	/* A user deleted and added again starts with a clean slate. */
	assert_int_equal(kw_user_delete(fx->state, ALICE, NULL), 0);
	assert_int_equal(kw_user_insert(fx->state, ALICE, "alice", "test"), 0);
	lock(fx, ALICE, 1002, 1062, 0);
}

static void
test_a_longer_lock_is_not_cut_short(void **state)
{
	struct kw_test_fx *fx = *state;
	long long until = 0, repeat = -1;
	struct kw_lock l;

	/* An administrator's lock until unlocked stays so, message and author too. */
	assert_int_equal(kw_lock_set(fx->state, ALICE, 1000, -1, "left the team", "root"), 0);
	assert_int_equal(kw_lock_auto(fx->state, ALICE, 1010, &policy, "suspicious activity",
	    &until, &repeat), 0);
	assert_int_equal(until, -1);
	assert_int_equal(kw_lock_get(fx->state, ALICE, 99999, &l), 0);
	assert_true(l.locked);
	assert_int_equal(l.until, -1);
	assert_string_equal(l.message, "left the team");
	assert_string_equal(l.by, "root");
	/* One that ends later than the automatic lock would, likewise. */
	assert_int_equal(kw_lock_set(fx->state, BOB, 1000, 5000, "review", "root"), 0);
	assert_int_equal(kw_lock_auto(fx->state, BOB, 1010, &policy, "m", &until, &repeat), 0);
	assert_int_equal(until, 5000);
	assert_int_equal(kw_lock_get(fx->state, BOB, 1011, &l), 0);
	assert_string_equal(l.by, "root");
}

static void
test_until_unlocked_locks_repeat_too(void **state)
{
	struct kw_test_fx *fx = *state;
	struct kw_lock_backoff b = policy;
	long long until = 0, repeat = -1;

	b.duration = 0;
	assert_int_equal(kw_lock_auto(fx->state, BOB, 1000, &b, "m", &until, &repeat), 0);
	assert_int_equal(until, -1);
	assert_int_equal(repeat, 0);
	/* Still locked (until unlocked): the next automatic lock is a repeat. */
	assert_int_equal(kw_lock_auto(fx->state, BOB, 99999, &b, "m", &until, &repeat), 0);
	assert_int_equal(until, -1);
	assert_int_equal(repeat, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_grows_by_the_factor_up_to_max),
		cmocka_unit_test_setup_teardown(test_repeats_within_the_window_last_longer, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_a_lock_while_locked_repeats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unlock_and_user_deletion_forget_the_back_off,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_longer_lock_is_not_cut_short, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_until_unlocked_locks_repeat_too, setup,
		    teardown),
	};

	return cmocka_run_group_tests_name("lock_backoff", tests, NULL, NULL);
}
