/*
 * tracks.c - refusal counts per uid (see tracks.h).
 *
 * The table grows as uids come, up to max; lookups scan it, which is cheap
 * for the few uids a machine has that are refused at once.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/alerts/tracks.h"
#include "common/errors.h"

struct kw_tracks {
	struct kw_track *t;
	size_t n, cap, max;
	long long width, keep;
};

int
kw_tracks_new(size_t max, long long width, long long keep, struct kw_tracks **ret_tracks)
{
	struct kw_tracks *ts;

	if (max == 0 || width <= 0 || keep < 0)
		return KW_ERR_INVALID;
	if (!(ts = calloc(1, sizeof(*ts))))
		return KW_ERR_NOMEM;
	ts->max = max;
	ts->width = width;
	ts->keep = keep;
	*ret_tracks = ts;
	return 0;
}

void
kw_tracks_free(struct kw_tracks *ts)
{
	if (!ts)
		return;
	free(ts->t);
	free(ts);
}

size_t
kw_tracks_used(const struct kw_tracks *ts)
{
	return ts->n;
}

static bool
idle(const struct kw_tracks *ts, const struct kw_track *t, long long now)
{
	return now - t->seen >= ts->keep;
}

/* A place for a new track: an idle one, else a new one while there is room. */
static struct kw_track *
place(struct kw_tracks *ts, long long now)
{
	for (size_t i = 0; i < ts->n; i++)
		if (idle(ts, &ts->t[i], now))
			return &ts->t[i];
	if (ts->n == ts->max)
		return NULL;
	if (ts->n == ts->cap) {
		size_t cap = ts->cap ? 2 * ts->cap : 16;
		struct kw_track *grown;

		if (cap > ts->max)
			cap = ts->max;
		if (!(grown = realloc(ts->t, cap * sizeof(*grown))))
			return NULL;
		ts->t = grown;
		ts->cap = cap;
	}
	return &ts->t[ts->n++];
}

struct kw_track *
kw_tracks_get(struct kw_tracks *ts, uid_t uid, long long now)
{
	struct kw_track *t = NULL;

	for (size_t i = 0; i < ts->n && !t; i++)
		if (ts->t[i].uid == uid)
			t = &ts->t[i];
	if (!t) {
		if (!(t = place(ts, now)))
			return NULL;
		memset(t, 0, sizeof(*t));
		t->uid = uid;
	}
	t->seen = now;
	return t;
}

void
kw_track_add(const struct kw_tracks *ts, struct kw_track *t, long long now)
{
	long long slot = now / ts->width;
	size_t i = (size_t)(slot % KW_TRACK_BUCKETS);

	if (t->b[i].slot != slot) {
		t->b[i].slot = slot;
		t->b[i].count = 0;
	}
	t->b[i].count++;
}

long long
kw_track_count(const struct kw_tracks *ts, const struct kw_track *t, long long now,
    long long window)
{
	long long slot = now / ts->width, span = (window + ts->width - 1) / ts->width, n = 0;

	if (span > KW_TRACK_BUCKETS)
		span = KW_TRACK_BUCKETS;
	for (size_t i = 0; i < KW_TRACK_BUCKETS; i++)
		if (t->b[i].count && t->b[i].slot <= slot && t->b[i].slot > slot - span)
			n += t->b[i].count;
	return n;
}

void
kw_track_reset(struct kw_track *t)
{
	memset(t->b, 0, sizeof(t->b));
}
