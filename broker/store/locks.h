/*
 * locks.h - account locks and failed-login accounting (state.db), with
 * pam_faillock's semantics: `threshold` failures within `interval` seconds
 * lock the account for `duration` seconds (0: until an admin unlocks).
 */
#ifndef KW_LOCKS_H
#define KW_LOCKS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/macros.h"

struct kw_state;

struct kw_lock {
	bool locked;
	long long until;	/* < 0: until an admin unlocks */
	char message[256];
	char by[65];
};

/* The lock on uid at `now`; a lock whose time has passed is lifted here. */
int kw_lock_get(struct kw_state *st, uid_t uid, long long now, struct kw_lock *ret_lock)
	KW_WUR KW_NONNULL(1, 4);

/* The same without lifting anything (for reports): a lock whose time has
   passed reads as no lock.  0 or KW_ERR_IO. */
int kw_lock_peek(struct kw_state *st, uid_t uid, long long now, struct kw_lock *ret_lock)
	KW_WUR KW_NONNULL(1, 4);

/* What a locked account is told, in buf ("account locked until T: MESSAGE", ...). */
void kw_lock_describe(const struct kw_lock *l, char *buf, size_t len) KW_NONNULL(1, 2);

/* Lock uid from now until `until` (< 0: until unlocked), replacing any lock. */
int kw_lock_set(struct kw_state *st, uid_t uid, long long now, long long until, const char *message,
    const char *by) KW_WUR KW_NONNULL(1, 6);

/* Lift the lock and forget the failures and the back-off of automatic locks;
   *ret_was_locked (may be NULL). */
int kw_lock_clear(struct kw_state *st, uid_t uid, bool *ret_was_locked) KW_WUR KW_NONNULL(1);

/*
 * Record a failed login at `now`.  When the failures within `interval`
 * reach `threshold` the account is locked (duration 0: until unlocked) and
 * *ret_locked is set.
 */
int kw_lock_fail(struct kw_state *st, uid_t uid, long long now, long long interval, long long threshold,
    long long duration, bool *ret_locked) KW_WUR KW_NONNULL(1, 7);

/* Forget the failures of uid (after a good login). */
int kw_lock_forget_failures(struct kw_state *st, uid_t uid) KW_WUR KW_NONNULL(1);

/*
 * How automatic locks grow when they come again and again
 * (security.authentication.lockout.*): a lock that starts within `window`
 * seconds of the end of the last automatic lock repeats it, and lasts
 * `factor` times as long, up to `max` seconds.
 */
struct kw_lock_backoff {
	long long duration;	/* the first lock (0: until an admin unlocks) */
	long long factor;	/* 1: every lock lasts `duration` */
	long long max;		/* no lock lasts longer (a lock lasts at least `duration`) */
	long long window;
};

/* How long repeat number `repeat` (0: a first lock) lasts: duration * factor^repeat,
   capped at max; 0 when duration is 0 (until unlocked). */
long long kw_lock_backoff_duration(const struct kw_lock_backoff *b, long long repeat)
	KW_NONNULL(1);

/*
 * Lock uid automatically at `now` (locked_by "keywarden"): a repeat of the
 * last automatic lock when that one ended (or ends) within b->window of
 * now, else a first lock, lasting as kw_lock_backoff_duration says.  A lock
 * in place that holds longer (an administrator's) is kept as it is.
 * *ret_until (< 0: until unlocked) and *ret_repeat (0 for a first lock).  The count survives the lock running
 * out; kw_lock_clear (an administrator's unlock) and deleting the user end it.
 */
int kw_lock_auto(struct kw_state *st, uid_t uid, long long now, const struct kw_lock_backoff *b,
    const char *message, long long *ret_until, long long *ret_repeat)
	KW_WUR KW_NONNULL(1, 4, 5, 6, 7);

/*
 * The arithmetic on its own, for tests: does a failure count of `count`
 * within the interval lock, and until when (< 0: until unlocked)?
 */
bool kw_lock_due(long long count, long long threshold, long long now, long long duration,
    long long *ret_until) KW_NONNULL(5);

/* How many failures of uid are on record (within the interval kw_lock_fail keeps).
   0 or KW_ERR_IO. */
int kw_lock_failures(struct kw_state *st, uid_t uid, long long *ret_count) KW_WUR KW_NONNULL(1, 3);

#endif
