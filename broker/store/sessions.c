/*
 * sessions.c - the sessions table (see sessions.h).
 */
#include <string.h>

#include "broker/store/sessions.h"
#include "broker/store/state_sqlite.h"
#include "common/clock.h"
#include "common/errors.h"

int
kw_session_insert(struct kw_state *st, const struct kw_session *ses, const unsigned char *hash,
    size_t hash_len)
{
	return kw_sql_exec(st->db, NULL, "INSERT INTO sessions (id, uid, secret_hash, created, "
	    "last_used, expires) VALUES (?, ?, ?, ?, ?, NULLIF(?, -1))", "tibiii", ses->id,
	    (long long)ses->uid, hash, hash_len, ses->created, ses->last_used, ses->expires);
}

int
kw_session_find(struct kw_state *st, const char *id, struct kw_session *ret_session,
    unsigned char hash[KW_SESSION_HASH_MAX], size_t *ret_hash_len)
{
	struct kw_session ses = { 0 };
	sqlite3_stmt *q = NULL;
	int r, rc, n;

	if ((r = kw_sql_prepare(st->db, &q, "SELECT uid, secret_hash, created, last_used, "
	    "IFNULL(expires, -1) FROM sessions WHERE id = ?", "t", id)) < 0)
		return r;
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		snprintf(ses.id, sizeof(ses.id), "%s", id);
		ses.uid = (uid_t)sqlite3_column_int64(q, 0);
		ses.created = sqlite3_column_int64(q, 2);
		ses.last_used = sqlite3_column_int64(q, 3);
		ses.expires = sqlite3_column_int64(q, 4);
		n = sqlite3_column_bytes(q, 1);
		if (n < 0 || n > KW_SESSION_HASH_MAX)
			n = 0;
		if (n > 0)
			memcpy(hash, sqlite3_column_blob(q, 1), (size_t)n);
		*ret_hash_len = (size_t)n;
		*ret_session = ses;
	}
	kw_sql_done(q);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? KW_ERR_NOT_FOUND : KW_ERR_IO;
}

int
kw_session_touch(struct kw_state *st, const char *id, long long now)
{
	/* Only a change is written: a session used again within the same second
	   (an agent's burst of calls) costs the store no write at all. */
	return kw_sql_exec(st->db, NULL, "UPDATE sessions SET last_used = ? WHERE id = ? AND "
	    "last_used IS NOT ?", "iti", now, id, now);
}

int
kw_session_evict(struct kw_state *st, uid_t uid, long long max, json_t *evicted)
{
	sqlite3_stmt *q = NULL;
	json_t *ids = NULL, *id;
	size_t i;
	int r;

	if ((r = kw_sql_prepare(st->db, &q, "SELECT id FROM sessions WHERE uid = ? "
	    "ORDER BY created DESC, rowid DESC LIMIT -1 OFFSET ?", "ii", (long long)uid, max)) < 0)
		return r;
	r = kw_sql_column_strings(q, &ids);
	kw_sql_done(q);
	if (r < 0)
		return r;
	json_array_foreach(ids, i, id) {
		if ((r = kw_session_revoke(st, json_string_value(id))) < 0)
			break;
		json_array_append(evicted, id);
	}
	json_decref(ids);
	return r < 0 ? r : 0;
}

int
kw_session_purge(struct kw_state *st, long long now, long long idle, int *ret_n)
{
	sqlite3 *db = st->db;
	return kw_sql_exec(db, ret_n, "DELETE FROM sessions WHERE last_used <= ? OR "
	    "(expires IS NOT NULL AND expires <= ?)", "ii", now - idle, now);
}

int
kw_session_count(struct kw_state *st, uid_t uid, long long now, long long idle,
    long long *ret_n)
{
	sqlite3_stmt *q = NULL;
	int r, rc;

	if ((r = kw_sql_prepare(st->db, &q, "SELECT COUNT(*) FROM sessions WHERE uid = ? AND "
	    "last_used > ? AND (expires IS NULL OR expires > ?)", "iii", (long long)uid,
	    now - idle, now)) < 0)
		return r;
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		*ret_n = sqlite3_column_int64(q, 0);
	kw_sql_done(q);
	return rc == SQLITE_ROW ? 0 : KW_ERR_IO;
}

int
kw_session_revoke(struct kw_state *st, const char *id)
{
	sqlite3 *db = st->db;
	int r, n = 0;

	if ((r = kw_sql_exec(db, &n, "DELETE FROM sessions WHERE id = ?", "t", id)) < 0)
		return r;
	return n == 0 ? KW_ERR_NOT_FOUND : 0;
}

int
kw_session_revoke_uid(struct kw_state *st, long long uid, int *ret_n)
{
	sqlite3 *db = st->db;
	return uid < 0 ? kw_sql_exec(db, ret_n, "DELETE FROM sessions", "") :
	    kw_sql_exec(db, ret_n, "DELETE FROM sessions WHERE uid = ?", "i", uid);
}

int
kw_session_list(struct kw_state *st, long long uid, long long idle, json_t **ret_array)
{
	sqlite3 *db = st->db;
	sqlite3_stmt *q = NULL;
	json_t *a = json_array();
	char c[32], l[32], e[32], ie[32];
	int r, rc;

	if (!a)
		return KW_ERR_NOMEM;
	r = uid < 0 ? kw_sql_prepare(db, &q, "SELECT s.id, u.name, s.created, s.last_used, "
	    "IFNULL(s.expires, -1) FROM sessions s JOIN users u USING (uid) ORDER BY s.created", "") :
	    kw_sql_prepare(db, &q, "SELECT s.id, u.name, s.created, s.last_used, "
	    "IFNULL(s.expires, -1) FROM sessions s JOIN users u USING (uid) WHERE s.uid = ? "
	    "ORDER BY s.created", "i", uid);
	if (r < 0) {
		json_decref(a);
		return r;
	}
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		long long exp = sqlite3_column_int64(q, 4);
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:o, s:s}",
		    "id", (const char *)sqlite3_column_text(q, 0),
		    "user", (const char *)sqlite3_column_text(q, 1),
		    "created", kw_time_text(sqlite3_column_int64(q, 2), c),
		    "last_used", kw_time_text(sqlite3_column_int64(q, 3), l),
		    "expires", exp < 0 ? json_null() : json_string(kw_time_text(exp, e)),
		    "idle_expires", kw_time_text(sqlite3_column_int64(q, 3) + idle, ie)));
	}
	kw_sql_done(q);
	if (rc != SQLITE_DONE) {
		json_decref(a);
		return KW_ERR_IO;
	}
	*ret_array = a;
	return 0;
}
