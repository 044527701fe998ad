/*
 * locks.h - account locks and failed-login accounting (state.db), with
 * pam_faillock's semantics: `threshold` failures within `interval` seconds
 * lock the account for `duration` seconds (0: until an admin unlocks).
 */
#ifndef KW_LOCKS_H
#define KW_LOCKS_H

#include <stdbool.h>
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

/* Lock uid from now until `until` (< 0: until unlocked), replacing any lock. */
int kw_lock_set(struct kw_state *st, uid_t uid, long long now, long long until, const char *message,
    const char *by) KW_WUR KW_NONNULL(1, 6);

/* Lift the lock and forget the failures; *ret_was_locked (may be NULL). */
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
 * The arithmetic on its own, for tests: does a failure count of `count`
 * within the interval lock, and until when (< 0: until unlocked)?
 */
bool kw_lock_due(long long count, long long threshold, long long now, long long duration,
    long long *ret_until) KW_NONNULL(5);

/* How many failures of uid are on record (within the interval kw_lock_fail keeps).
   0 or KW_ERR_IO. */
int kw_lock_failures(struct kw_state *st, uid_t uid, long long *ret_count) KW_WUR KW_NONNULL(1, 3);

#endif
