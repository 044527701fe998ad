/*
 * locks.c - locks and failures (see locks.h).
 */
#include <stdio.h>
#include <string.h>

#include "broker/store/state_sqlite.h"
#include "client/keywarden.h"
#include "broker/store/locks.h"
#include "broker/store/sql.h"
#include "common/clock.h"

/* Remove the lock and the failures (the back-off stays). */
static int
lift(struct kw_state *state, uid_t uid, bool *ret_was_locked)
{
	int r, n = 0;

	if ((r = kw_sql_exec(state->db, &n, "DELETE FROM locks WHERE uid = ?", "i",
	    (long long)uid)) < 0 ||
	    (r = kw_lock_forget_failures(state, uid)) < 0)
		return r;
	if (ret_was_locked)
		*ret_was_locked = n > 0;
	return 0;
}

/* The lock row of uid as it is stored, run out or not. */
static int
lock_read(struct kw_state *state, uid_t uid, struct kw_lock *ret_lock)
{
	sqlite3_stmt *st = NULL;
	struct kw_lock l = { .locked = false, .until = -1 };
	int r, rc;

	if ((r = kw_sql_prepare(state->db, &st, "SELECT IFNULL(until, -1), IFNULL(message, ''), "
	    "locked_by FROM locks WHERE uid = ?", "i", (long long)uid)) < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		l.locked = true;
		l.until = sqlite3_column_int64(st, 0);
		snprintf(l.message, sizeof(l.message), "%s", (const char *)sqlite3_column_text(st, 1));
		snprintf(l.by, sizeof(l.by), "%s", (const char *)sqlite3_column_text(st, 2));
	}
	kw_sql_done(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return KW_ERR_IO;
	*ret_lock = l;
	return 0;
}

int
kw_lock_peek(struct kw_state *state, uid_t uid, long long now, struct kw_lock *ret_lock)
{
	struct kw_lock l;
	int r;

	if ((r = lock_read(state, uid, &l)) < 0)
		return r;
	if (l.locked && l.until >= 0 && now >= l.until)
		l = (struct kw_lock){ .locked = false, .until = -1 };
	*ret_lock = l;
	return 0;
}

int
kw_lock_get(struct kw_state *state, uid_t uid, long long now, struct kw_lock *ret_lock)
{
	struct kw_lock l;
	int r;

	if ((r = lock_read(state, uid, &l)) < 0)
		return r;
	if (l.locked && l.until >= 0 && now >= l.until) {
		/* The lock ran out: lift it, and start counting failures afresh (its
		   back-off stays, for the next lock to repeat). */
		if ((r = lift(state, uid, NULL)) < 0)
			return r;
		l.locked = false;
	}
	*ret_lock = l;
	return 0;
}

int
kw_lock_set(struct kw_state *state, uid_t uid, long long now, long long until, const char *message,
    const char *by)
{
	sqlite3 *db = state->db;
	return kw_sql_exec(db, NULL, "INSERT OR REPLACE INTO locks (uid, locked_at, until, message, "
	    "locked_by) VALUES (?, ?, NULLIF(?, -1), ?, ?)", "iiitt", (long long)uid, now,
	    until < 0 ? -1LL : until, message, by);
}

int
kw_lock_clear(struct kw_state *state, uid_t uid, bool *ret_was_locked)
{
	int r;

	if ((r = lift(state, uid, ret_was_locked)) < 0)
		return r;
	return kw_sql_exec(state->db, NULL, "DELETE FROM lock_backoff WHERE uid = ?", "i",
	    (long long)uid);
}

long long
kw_lock_backoff_duration(const struct kw_lock_backoff *b, long long repeat)
{
	long long d = b->duration, max = b->max > b->duration ? b->max : b->duration;

	/* Multiplied step by step, so nothing overflows on the way to max. */
	for (long long i = 0; b->factor > 1 && d > 0 && i < repeat && d < max; i++)
		d = d > max / b->factor ? max : d * b->factor;
	return d < max ? d : max;
}

/* The last automatic lock's repeat number and end (-1: until unlocked); *ret_found. */
static int
backoff_get(struct kw_state *state, uid_t uid, long long *ret_repeat, long long *ret_until,
    bool *ret_found)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = kw_sql_prepare(state->db, &st, "SELECT repeat, IFNULL(until, -1) FROM lock_backoff "
	    "WHERE uid = ?", "i", (long long)uid)) < 0)
		return r;
	rc = sqlite3_step(st);
	*ret_found = rc == SQLITE_ROW;
	if (rc == SQLITE_ROW) {
		*ret_repeat = sqlite3_column_int64(st, 0);
		*ret_until = sqlite3_column_int64(st, 1);
	}
	kw_sql_done(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : KW_ERR_IO;
}

int
kw_lock_auto(struct kw_state *state, uid_t uid, long long now, const struct kw_lock_backoff *b,
    const char *message, long long *ret_until, long long *ret_repeat)
{
	long long repeat = 0, last = -1, until = -1;
	struct kw_lock cur;
	bool found;
	int r;

	if ((r = backoff_get(state, uid, &repeat, &last, &found)) < 0 ||
	    (r = kw_lock_get(state, uid, now, &cur)) < 0)
		return r;
	/* A repeat: the last lock still holds, holds until unlocked, or ended lately. */
	repeat = found && (last < 0 || now <= last + b->window) ? repeat + 1 : 0;
	if (b->duration > 0)
		until = now + kw_lock_backoff_duration(b, repeat);
	/* A lock that holds longer (an administrator's until unlocked) is not cut short. */
	if (cur.locked && (cur.until < 0 || (until >= 0 && cur.until >= until)))
		until = cur.until;
	else if ((r = kw_lock_set(state, uid, now, until, message, "keywarden")) < 0)
		return r;
	if ((r = kw_sql_exec(state->db, NULL, "INSERT OR REPLACE INTO lock_backoff (uid, repeat, "
	    "until) VALUES (?, ?, NULLIF(?, -1))", "iii", (long long)uid, repeat, until)) < 0)
		return r;
	*ret_until = until;
	*ret_repeat = repeat;
	return 0;
}

int
kw_lock_forget_failures(struct kw_state *state, uid_t uid)
{
	sqlite3 *db = state->db;
	return kw_sql_exec(db, NULL, "DELETE FROM failures WHERE uid = ?", "i", (long long)uid);
}

bool
kw_lock_due(long long count, long long threshold, long long now, long long duration,
    long long *ret_until)
{
	if (count < threshold)
		return false;
	*ret_until = duration > 0 ? now + duration : -1;
	return true;
}

int
kw_lock_fail(struct kw_state *state, uid_t uid, long long now, long long interval, long long threshold,
    long long duration, bool *ret_locked)
{
	sqlite3 *db = state->db;
	sqlite3_stmt *st = NULL;
	long long count = 0, until;
	int r;

	*ret_locked = false;
	if ((r = kw_sql_exec(db, NULL, "DELETE FROM failures WHERE uid = ? AND at <= ?", "ii",
	    (long long)uid, now - interval)) < 0 ||
	    (r = kw_sql_exec(db, NULL, "INSERT INTO failures (uid, at) VALUES (?, ?)", "ii",
	    (long long)uid, now)) < 0 ||
	    (r = kw_sql_prepare(db, &st, "SELECT count(*) FROM failures WHERE uid = ?", "i",
	    (long long)uid)) < 0)
		return r;
	if (sqlite3_step(st) == SQLITE_ROW)
		count = sqlite3_column_int64(st, 0);
	kw_sql_done(st);
	if (!kw_lock_due(count, threshold, now, duration, &until))
		return 0;
	if ((r = kw_lock_set(state, uid, now, until, "too many failed logins", "keywarden")) < 0)
		return r;
	*ret_locked = true;
	return 0;
}

int
kw_lock_failures(struct kw_state *state, uid_t uid, long long *ret_count)
{
	sqlite3_stmt *q = NULL;
	int r;

	if ((r = kw_sql_prepare(state->db, &q, "SELECT count(*) FROM failures WHERE uid = ?", "i",
	    (long long)uid)) < 0)
		return r;
	r = sqlite3_step(q) == SQLITE_ROW ? 0 : KW_ERR_IO;
	if (r == 0)
		*ret_count = sqlite3_column_int64(q, 0);
	kw_sql_done(q);
	return r;
}

void
kw_lock_describe(const struct kw_lock *l, char *buf, size_t len)
{
	char until[32];

	if (l->until >= 0)
		snprintf(buf, len, "account locked until %s: %.150s", kw_time_text(l->until, until),
		    l->message);
	else if (strcmp(l->by, "keywarden") == 0)
		snprintf(buf, len, "account locked until an administrator unlocks it: %.150s",
		    l->message);
	else
		snprintf(buf, len, "account locked by an administrator: %.150s", l->message);
}
