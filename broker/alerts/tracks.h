/*
 * tracks.h - the monitor's memory of refusals: one track per uid, in a
 * bounded table.
 *
 * A track counts refusals in a ring of time buckets (bounded memory
 * whatever the threshold, exact to within one bucket) and keeps the rate
 * limit of the alerts about its uid.  Tracks are keyed by uid: the kernel's
 * name for a caller (SO_PEERCRED) or a registered user's, never a name a
 * caller typed, so nobody can make up new ones.  At most `max` uids are
 * tracked; a track gives its place up only once it is idle (nothing counted
 * or raised for `keep` seconds), so no uid's live count is ever pushed out
 * by another's.  When every place holds a live count, kw_tracks_get answers
 * NULL and the newcomer is not tracked (the monitor says so).
 *
 * Pure memory, no I/O: times are the caller's (kw_now).
 */
#ifndef KW_TRACKS_H
#define KW_TRACKS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/macros.h"

#define KW_TRACK_BUCKETS 32
#define KW_TRACK_RATES	2	/* kinds of alert rate-limited per uid */

/* When an alert of one kind last went out, and how many were held back since. */
struct kw_track_rate {
	bool raised;
	long long last;
	long long suppressed;
};

struct kw_track {
	uid_t uid;
	long long seen;		/* the last refusal or alert */
	struct {
		long long slot;	/* time / width */
		unsigned count;
	} b[KW_TRACK_BUCKETS];
	struct kw_track_rate rate[KW_TRACK_RATES];
};

struct kw_tracks;

/*
 * A table of at most max tracks whose buckets are width seconds wide; a
 * track is idle once keep seconds passed since it was last seen.  0 or
 * KW_ERR_NOMEM/KW_ERR_INVALID; free with kw_tracks_free.
 */
int kw_tracks_new(size_t max, long long width, long long keep, struct kw_tracks **ret_tracks)
	KW_WUR KW_NONNULL(4);

/* Accepts NULL. */
void kw_tracks_free(struct kw_tracks *ts);

/*
 * The track of uid, seen at now: the one it has, an idle one taken over, or
 * a new one.  NULL when all max places hold tracks that are not idle (or
 * on ENOMEM): nothing is pushed out.  Valid until the next call.
 */
struct kw_track *kw_tracks_get(struct kw_tracks *ts, uid_t uid, long long now) KW_NONNULL(1);

/* How many places are taken. */
size_t kw_tracks_used(const struct kw_tracks *ts) KW_NONNULL(1);

/* Count one refusal at now. */
void kw_track_add(const struct kw_tracks *ts, struct kw_track *t, long long now) KW_NONNULL(1, 2);

/* Refusals within the last `window` seconds (to within one bucket; at most the ring's span). */
long long kw_track_count(const struct kw_tracks *ts, const struct kw_track *t, long long now,
    long long window) KW_NONNULL(1, 2);

/* Forget the counts (after a block: the next one needs as many again); rate limits stay. */
void kw_track_reset(struct kw_track *t) KW_NONNULL(1);

#endif
