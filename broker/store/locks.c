/*
 * locks.c - locks and failures (see locks.h).
 */
#include <stdio.h>
#include <string.h>

#include "broker/store/state_sqlite.h"
#include "client/keywarden.h"
#include "broker/store/locks.h"
#include "broker/store/sql.h"

int
kw_lock_get(struct kw_state *state, uid_t uid, long long now, struct kw_lock *ret_lock)
{
	sqlite3 *db = state->db;
	sqlite3_stmt *st = NULL;
	struct kw_lock l = { .locked = false, .until = -1 };
	int r, rc;

	if ((r = kw_sql_prepare(db, &st, "SELECT IFNULL(until, -1), IFNULL(message, ''), locked_by "
	    "FROM locks WHERE uid = ?", "i", (long long)uid)) < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		l.locked = true;
		l.until = sqlite3_column_int64(st, 0);
		snprintf(l.message, sizeof(l.message), "%s", (const char *)sqlite3_column_text(st, 1));
		snprintf(l.by, sizeof(l.by), "%s", (const char *)sqlite3_column_text(st, 2));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return KW_ERR_IO;
	if (l.locked && l.until >= 0 && now >= l.until) {
		/* The lock ran out: lift it, and start counting failures afresh. */
		if ((r = kw_lock_clear(state, uid, NULL)) < 0)
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
	sqlite3 *db = state->db;
	int r, n = 0;

	if ((r = kw_sql_exec(db, &n, "DELETE FROM locks WHERE uid = ?", "i", (long long)uid)) < 0 ||
	    (r = kw_lock_forget_failures(state, uid)) < 0)
		return r;
	if (ret_was_locked)
		*ret_was_locked = n > 0;
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
	sqlite3_finalize(st);
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
	sqlite3_finalize(q);
	return r;
}
