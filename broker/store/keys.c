/*
 * keys.c - keys' metadata in state.db: which versions exist, which is
 * current, which are in grace or destroyed (see keys.h).  The values are in
 * the keystore; broker/keys/keys.c keeps the two in step.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/store/keys.h"
#include "broker/store/state_sqlite.h"
#include "common/clock.h"
#include "common/errors.h"

/* One integer from a query, or dflt when it returns no row or NULL. */
static int
query_int(sqlite3 *db, long long dflt, long long *ret, const char *sql, const char *name)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = kw_sql_prepare(db, &st, sql, "t", name)) < 0)
		return r;
	rc = sqlite3_step(st);
	*ret = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL ?
	    sqlite3_column_int64(st, 0) : dflt;
	kw_sql_done(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : KW_ERR_IO;
}

int
kw_keymeta_next(struct kw_state *st, const char *name, int *ret_next, int *ret_current)
{
	long long last = 0, current = 0;
	int r;

	if ((r = query_int(st->db, 0, &last, "SELECT max(version) FROM key_versions WHERE "
	    "name = ?", name)) < 0 ||
	    (r = query_int(st->db, 0, &current, "SELECT current FROM keys WHERE name = ?",
	    name)) < 0)
		return r;
	*ret_next = (int)last + 1;
	*ret_current = (int)current;
	return 0;
}

int
kw_keymeta_add(struct kw_state *st, const char *name, int version, long long now,
    long long grace)
{
	sqlite3 *db = st->db;
	int r;

	if ((r = kw_sql_exec(db, NULL, "INSERT INTO keys (name, current, created, updated) "
	    "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET current = excluded.current, "
	    "updated = excluded.updated", "tiii", name, (long long)version, now, now)) < 0 ||
	    (r = kw_sql_exec(db, NULL, "UPDATE key_versions SET state = 'grace', grace_until = ? "
	    "WHERE name = ? AND state = 'current'", "it", now + grace, name)) < 0 ||
	    (r = kw_sql_exec(db, NULL, "INSERT INTO key_versions (name, version, created, state) "
	    "VALUES (?, ?, ?, 'current')", "tii", name, (long long)version, now)) < 0)
		return r;
	return 0;
}

int
kw_keymeta_usable(struct kw_state *st, const char *name, int version, long long now,
    int *ret_version)
{
	sqlite3_stmt *q = NULL;
	int r, rc;

	r = version > 0 ?
	    kw_sql_prepare(st->db, &q, "SELECT version FROM key_versions WHERE name = ? AND "
	    "version = ? AND (state = 'current' OR (state = 'grace' AND grace_until > ?))", "tii",
	    name, (long long)version, now) :
	    kw_sql_prepare(st->db, &q, "SELECT version FROM key_versions WHERE name = ? AND "
	    "state = 'current'", "t", name);
	if (r < 0)
		return r;
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		*ret_version = sqlite3_column_int(q, 0);
	kw_sql_done(q);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? KW_ERR_NOT_FOUND : KW_ERR_IO;
}

int
kw_keymeta_used(struct kw_state *st, const char *name, long long now)
{
	/* As for sessions: the same second again writes nothing (the proxy's calls). */
	return kw_sql_exec(st->db, NULL, "UPDATE keys SET last_used = ? WHERE name = ? AND "
	    "last_used IS NOT ?", "iti", now, name, now);
}

int
kw_keymeta_unwiped(struct kw_state *st, json_t **ret_array)
{
	sqlite3_stmt *q = NULL;
	json_t *a = json_array();
	int r, rc;

	if (!a)
		return KW_ERR_NOMEM;
	if ((r = kw_sql_prepare(st->db, &q, "SELECT name, version FROM key_versions WHERE "
	    "state = 'destroyed' AND wiped = 0", "")) < 0) {
		json_decref(a);
		return r;
	}
	while ((rc = sqlite3_step(q)) == SQLITE_ROW)
		json_array_append_new(a, json_pack("{s:s, s:i}", "name",
		    (const char *)sqlite3_column_text(q, 0), "version", sqlite3_column_int(q, 1)));
	kw_sql_done(q);
	if (rc != SQLITE_DONE) {
		json_decref(a);
		return KW_ERR_IO;
	}
	*ret_array = a;
	return 0;
}

int
kw_keymeta_wiped(struct kw_state *st, const char *name, int version)
{
	return kw_sql_exec(st->db, NULL, "UPDATE key_versions SET wiped = 1 WHERE name = ? AND "
	    "version = ?", "ti", name, (long long)version);
}

int
kw_key_expire(struct kw_state *st, long long now)
{
	sqlite3 *db = st->db;
	return kw_sql_exec(db, NULL, "UPDATE key_versions SET state = 'destroyed', grace_until = NULL "
	    "WHERE state = 'grace' AND grace_until <= ?", "i", now);
}

int
kw_key_revoke(struct kw_state *st, const char *name, int version, json_t **ret_destroyed)
{
	sqlite3 *db = st->db;
	json_t *out = NULL;
	sqlite3_stmt *q = NULL;
	long long left = 0;
	int r, n = 0;

	r = version > 0 ?
	    kw_sql_prepare(db, &q, "SELECT version FROM key_versions WHERE name = ? AND "
	    "version = ? AND state != 'destroyed'", "ti", name, (long long)version) :
	    kw_sql_prepare(db, &q, "SELECT version FROM key_versions WHERE name = ? AND "
	    "state != 'destroyed' ORDER BY version", "t", name);
	if (r < 0)
		return r;
	r = kw_sql_column_strings(q, &out);	/* integers read back as text */
	kw_sql_done(q);
	if (r < 0)
		return r;
	if ((n = (int)json_array_size(out)) == 0) {
		json_decref(out);
		return KW_ERR_NOT_FOUND;
	}
	for (size_t i = 0; i < (size_t)n; i++) {
		long long v = atoll(json_string_value(json_array_get(out, i)));
		json_array_set_new(out, i, json_integer(v));
		if ((r = kw_sql_exec(db, NULL, "UPDATE key_versions SET state = 'destroyed', "
		    "grace_until = NULL WHERE name = ? AND version = ?", "ti", name, v)) < 0)
			break;
	}
	if (r == 0)
		r = kw_sql_exec(db, NULL, "UPDATE keys SET current = NULL WHERE name = ? AND current "
		    "NOT IN (SELECT version FROM key_versions WHERE name = ? AND state = 'current')",
		    "tt", name, name);
	if (r == 0)
		r = query_int(db, 0, &left, "SELECT count(*) FROM key_versions WHERE name = ? AND "
		    "state != 'destroyed'", name);
	/* A key with nothing left is forgotten once its copies are swept. */
	if (r == 0 && left == 0)
		r = kw_sql_exec(db, NULL, "UPDATE keys SET current = NULL WHERE name = ?", "t", name);
	if (r < 0) {
		json_decref(out);
		return r;
	}
	*ret_destroyed = out;
	return 0;
}

static json_t *
versions_of(sqlite3 *db, const char *name)
{
	sqlite3_stmt *q = NULL;
	json_t *a = json_array();
	char c[32], g[32];

	if (!a || kw_sql_prepare(db, &q, "SELECT version, state, created, IFNULL(grace_until, -1) "
	    "FROM key_versions WHERE name = ? AND state != 'destroyed' ORDER BY version", "t",
	    name) < 0) {
		json_decref(a);
		return NULL;
	}
	while (sqlite3_step(q) == SQLITE_ROW) {
		long long gu = sqlite3_column_int64(q, 3);
		json_array_append_new(a, json_pack("{s:i, s:s, s:s, s:o}",
		    "version", sqlite3_column_int(q, 0),
		    "state", (const char *)sqlite3_column_text(q, 1),
		    "created", kw_time_text(sqlite3_column_int64(q, 2), c),
		    "grace_until", gu < 0 ? json_null() : json_string(kw_time_text(gu, g))));
	}
	kw_sql_done(q);
	return a;
}

int
kw_key_list(struct kw_state *st, json_t **ret_array)
{
	sqlite3 *db = st->db;
	sqlite3_stmt *q = NULL;
	json_t *a = json_array();
	char c[32], l[32];
	int r, rc;

	if (!a)
		return KW_ERR_NOMEM;
	if ((r = kw_sql_prepare(db, &q, "SELECT name, IFNULL(current, 0), created, "
	    "IFNULL(last_used, -1) FROM keys WHERE EXISTS (SELECT 1 FROM key_versions v "
	    "WHERE v.name = keys.name AND v.state != 'destroyed') ORDER BY name", "")) < 0) {
		json_decref(a);
		return r;
	}
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(q, 0);
		long long lu = sqlite3_column_int64(q, 3);
		int cur = sqlite3_column_int(q, 1);
		json_array_append_new(a, json_pack("{s:s, s:o, s:o, s:s, s:o}", "name", name,
		    "current", cur > 0 ? json_integer(cur) : json_null(),
		    "versions", versions_of(db, name),
		    "created", kw_time_text(sqlite3_column_int64(q, 2), c),
		    "last_used", lu < 0 ? json_null() : json_string(kw_time_text(lu, l))));
	}
	kw_sql_done(q);
	if (rc != SQLITE_DONE) {
		json_decref(a);
		return KW_ERR_IO;
	}
	*ret_array = a;
	return 0;
}
