/*
 * test_tracks.c - unit tests for the monitor's refusal counts per uid
 * (broker/alerts/tracks.h).
 *
 * The table is bounded, and a full one never pushes a live count out to
 * make room: a newcomer is turned away (NULL) until a track falls idle.
 * Counts are per uid and age out of the window bucket by bucket.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "broker/alerts/tracks.h"
#include "common/errors.h"

#define WIDTH	10	/* seconds per bucket */
#define KEEP	300	/* idle after this long */
#define T0	1000000

static struct kw_tracks *
table(size_t max)
{
	struct kw_tracks *ts = NULL;

	assert_int_equal(kw_tracks_new(max, WIDTH, KEEP, &ts), 0);
	assert_non_null(ts);
	return ts;
}

static void
refuse(struct kw_tracks *ts, uid_t uid, long long now, int n)
{
	for (int i = 0; i < n; i++) {
		struct kw_track *t = kw_tracks_get(ts, uid, now);
		assert_non_null(t);
		kw_track_add(ts, t, now);
	}
}

static long long
count(struct kw_tracks *ts, uid_t uid, long long now)
{
	struct kw_track *t = kw_tracks_get(ts, uid, now);

	assert_non_null(t);
	return kw_track_count(ts, t, now, KEEP);
}

static void
test_counts_are_per_uid(void **state)
{
	struct kw_tracks *ts = table(8);

	refuse(ts, 2001, T0, 3);
	refuse(ts, 2002, T0, 1);
	assert_int_equal(count(ts, 2001, T0), 3);
	assert_int_equal(count(ts, 2002, T0), 1);
	assert_int_equal(kw_tracks_used(ts), 2);
	kw_tracks_free(ts);
}

static void
test_full_table_pushes_no_live_count_out(void **state)
{
	struct kw_tracks *ts = table(4);

	refuse(ts, 2002, T0, 4);			/* the attacker's count */
	for (uid_t u = 3000; u < 3003; u++)
		refuse(ts, u, T0 + 1, 1);
	assert_int_equal(kw_tracks_used(ts), 4);
	/* Newcomers, seen later than everyone, are turned away, again and again. */
	for (uid_t u = 4000; u < 4100; u++)
		assert_null(kw_tracks_get(ts, u, T0 + 2));
	assert_int_equal(kw_tracks_used(ts), 4);
	/* The oldest track's count is intact, and it still counts. */
	assert_int_equal(count(ts, 2002, T0 + 2), 4);
	refuse(ts, 2002, T0 + 2, 1);
	assert_int_equal(count(ts, 2002, T0 + 2), 5);
	kw_tracks_free(ts);
}

static void
test_idle_track_gives_its_place_up(void **state)
{
	struct kw_tracks *ts = table(2);

	refuse(ts, 2001, T0, 2);
	refuse(ts, 2002, T0 + KEEP - 1, 2);
	/* 2001 was last seen KEEP seconds ago: idle, so its place can be taken ... */
	assert_null(kw_tracks_get(ts, 3000, T0 + KEEP - 1));
	refuse(ts, 3000, T0 + KEEP, 1);
	assert_int_equal(kw_tracks_used(ts), 2);
	assert_int_equal(count(ts, 3000, T0 + KEEP), 1);
	/* ... but not 2002's, seen 1 s ago. */
	assert_int_equal(count(ts, 2002, T0 + KEEP), 2);
	/* Now both places hold live tracks: 2001, back again, finds none. */
	assert_null(kw_tracks_get(ts, 2001, T0 + KEEP));
	kw_tracks_free(ts);
}

static void
test_counts_age_out_of_the_window(void **state)
{
	struct kw_tracks *ts = table(4);
	struct kw_track *t;

	refuse(ts, 2001, T0, 2);
	refuse(ts, 2001, T0 + 100, 3);
	t = kw_tracks_get(ts, 2001, T0 + 100);
	assert_int_equal(kw_track_count(ts, t, T0 + 100, 200), 5);
	/* A 50 s window covers only the last refusals (to within a bucket). */
	assert_int_equal(kw_track_count(ts, t, T0 + 100, 50), 3);
	kw_track_reset(t);
	assert_int_equal(kw_track_count(ts, t, T0 + 100, 200), 0);
	kw_tracks_free(ts);
}

static void
test_bad_arguments(void **state)
{
	struct kw_tracks *ts = NULL;

	assert_int_equal(kw_tracks_new(0, WIDTH, KEEP, &ts), KW_ERR_INVALID);
	assert_int_equal(kw_tracks_new(4, 0, KEEP, &ts), KW_ERR_INVALID);
	assert_null(ts);
	kw_tracks_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_are_per_uid),
		cmocka_unit_test(test_full_table_pushes_no_live_count_out),
		cmocka_unit_test(test_idle_track_gives_its_place_up),
		cmocka_unit_test(test_counts_age_out_of_the_window),
		cmocka_unit_test(test_bad_arguments),
	};

	return cmocka_run_group_tests_name("tracks", tests, NULL, NULL);
}
