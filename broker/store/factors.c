/*
 * factors.c - the totp and recovery_codes tables (see factors.h).
 */
#include <stdlib.h>
#include <string.h>

#include "broker/store/factors.h"
#include "broker/store/state_sqlite.h"
#include "common/errors.h"

int
kw_factor_totp_put(struct kw_state *st, uid_t uid, const unsigned char *sealed, size_t len)
{
	return kw_sql_exec(st->db, NULL, "INSERT OR REPLACE INTO totp (uid, seed, last_step, "
	    "enrolled) VALUES (?, ?, -1, strftime('%s', 'now'))", "ib", (long long)uid, sealed, len);
}

int
kw_factor_totp_get(struct kw_state *st, uid_t uid, unsigned char **ret_sealed, size_t *ret_len,
    long long *ret_last_step)
{
	sqlite3_stmt *q = NULL;
	unsigned char *copy;
	int r, rc, n;

	if ((r = kw_sql_prepare(st->db, &q, "SELECT seed, last_step FROM totp WHERE uid = ?", "i",
	    (long long)uid)) < 0)
		return r;
	rc = sqlite3_step(q);
	if (rc != SQLITE_ROW) {
		kw_sql_done(q);
		return rc == SQLITE_DONE ? KW_ERR_NOT_FOUND : KW_ERR_IO;
	}
	n = sqlite3_column_bytes(q, 0);
	if (!(copy = malloc(n > 0 ? (size_t)n : 1))) {
		kw_sql_done(q);
		return KW_ERR_NOMEM;
	}
	if (n > 0)
		memcpy(copy, sqlite3_column_blob(q, 0), (size_t)n);
	*ret_last_step = sqlite3_column_int64(q, 1);
	kw_sql_done(q);
	*ret_sealed = copy;
	*ret_len = (size_t)n;
	return 0;
}

int
kw_factor_totp_used(struct kw_state *st, uid_t uid, long long step)
{
	return kw_sql_exec(st->db, NULL, "UPDATE totp SET last_step = ? WHERE uid = ?", "ii", step,
	    (long long)uid);
}

int
kw_factor_recovery_clear(struct kw_state *st, uid_t uid)
{
	return kw_sql_exec(st->db, NULL, "DELETE FROM recovery_codes WHERE uid = ?", "i",
	    (long long)uid);
}

int
kw_factor_recovery_add(struct kw_state *st, uid_t uid, const unsigned char *hash, size_t len)
{
	return kw_sql_exec(st->db, NULL, "INSERT INTO recovery_codes (uid, hash) VALUES (?, ?)",
	    "ib", (long long)uid, hash, len);
}

int
kw_factor_recovery_use(struct kw_state *st, uid_t uid, const unsigned char *hash, size_t len,
    long long now)
{
	int r, n = 0;

	/* Looked up by keyed hash: the comparison never touches the code itself. */
	r = kw_sql_exec(st->db, &n, "UPDATE recovery_codes SET used = ? WHERE uid = ? AND "
	    "hash = ? AND used IS NULL", "iib", now, (long long)uid, hash, len);
	if (r < 0)
		return r;
	return n == 1 ? 0 : KW_ERR_DENIED;
}

int
kw_factor_status(struct kw_state *st, uid_t uid, long long *ret_enrolled_at,
    long long *ret_codes_left)
{
	sqlite3_stmt *q = NULL;
	int rc;

	*ret_enrolled_at = -1;
	*ret_codes_left = 0;
	if (kw_sql_prepare(st->db, &q, "SELECT enrolled FROM totp WHERE uid = ?", "i",
	    (long long)uid) < 0)
		return KW_ERR_IO;
	if ((rc = sqlite3_step(q)) == SQLITE_ROW)
		*ret_enrolled_at = sqlite3_column_int64(q, 0);
	kw_sql_done(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return KW_ERR_IO;
	if (kw_sql_prepare(st->db, &q, "SELECT count(*) FROM recovery_codes WHERE uid = ? AND "
	    "used IS NULL", "i", (long long)uid) < 0)
		return KW_ERR_IO;
	if ((rc = sqlite3_step(q)) == SQLITE_ROW)
		*ret_codes_left = sqlite3_column_int64(q, 0);
	kw_sql_done(q);
	return rc == SQLITE_ROW ? 0 : KW_ERR_IO;
}

bool
kw_factor_any(struct kw_state *st)
{
	sqlite3_stmt *q = NULL;
	bool any = true;	/* when unsure, say yes: a new secret must not be made */

	if (kw_sql_prepare(st->db, &q, "SELECT EXISTS (SELECT 1 FROM totp)", "") == 0 &&
	    sqlite3_step(q) == SQLITE_ROW)
		any = sqlite3_column_int(q, 0) != 0;
	kw_sql_done(q);
	return any;
}
