/*
 * keys.c - API key versions (see keys.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/keys/keys.h"
#include "client/keywarden.h"
#include "common/log.h"
#include "common/clock.h"
#include "broker/store/sql.h"

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
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : KW_ERR_IO;
}

int
kw_key_put(sqlite3 *db, struct kw_keystore *ks, const char *name, const unsigned char *value,
    size_t len, long long now, long long grace, int *ret_version, int *ret_previous)
{
	long long last = 0, current = 0;
	int r, v;

	if ((r = query_int(db, 0, &last, "SELECT max(version) FROM key_versions WHERE name = ?",
	    name)) < 0 ||
	    (r = query_int(db, 0, &current, "SELECT current FROM keys WHERE name = ?", name)) < 0)
		return r;
	v = (int)last + 1;
	/* The value is durable in the backend before any bookkeeping points at it. */
	if ((r = ks->ops->put(ks, name, v, value, len)) < 0)
		return r;
	if ((r = kw_sql_exec(db, NULL, "INSERT INTO keys (name, current, created, updated) "
	    "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET current = excluded.current, "
	    "updated = excluded.updated", "tiii", name, (long long)v, now, now)) < 0 ||
	    (r = kw_sql_exec(db, NULL, "UPDATE key_versions SET state = 'grace', grace_until = ? "
	    "WHERE name = ? AND state = 'current'", "it", now + grace, name)) < 0 ||
	    (r = kw_sql_exec(db, NULL, "INSERT INTO key_versions (name, version, created, state) "
	    "VALUES (?, ?, ?, 'current')", "tii", name, (long long)v, now)) < 0)
		return r;
	*ret_version = v;
	*ret_previous = (int)current;
	return 0;
}

int
kw_key_get(sqlite3 *db, struct kw_keystore *ks, const char *name, int version, long long now,
    unsigned char **ret_value, size_t *ret_len, int *ret_version)
{
	sqlite3_stmt *st = NULL;
	int r, rc, v = 0;

	r = version > 0 ?
	    kw_sql_prepare(db, &st, "SELECT version FROM key_versions WHERE name = ? AND version = ? "
	    "AND (state = 'current' OR (state = 'grace' AND grace_until > ?))", "tii", name,
	    (long long)version, now) :
	    kw_sql_prepare(db, &st, "SELECT version FROM key_versions WHERE name = ? AND "
	    "state = 'current'", "t", name);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? KW_ERR_NOT_FOUND : KW_ERR_IO;
	if ((r = ks->ops->get(ks, name, v, ret_value, ret_len)) < 0)
		return r;
	/* When a key was last used is worth knowing; failing to note it is not worth a refusal. */
	if (kw_sql_exec(db, NULL, "UPDATE keys SET last_used = ? WHERE name = ?", "it", now, name) < 0)
		kw_log_warn("key %.64s: last use not recorded", name);
	*ret_version = v;
	return 0;
}

int
kw_key_expire(sqlite3 *db, long long now)
{
	return kw_sql_exec(db, NULL, "UPDATE key_versions SET state = 'destroyed', grace_until = NULL "
	    "WHERE state = 'grace' AND grace_until <= ?", "i", now);
}

int
kw_key_sweep(sqlite3 *db, struct kw_keystore *ks)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = kw_sql_prepare(db, &st, "SELECT name, version FROM key_versions WHERE "
	    "state = 'destroyed' AND wiped = 0", "")) < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		int v = sqlite3_column_int(st, 1);
		r = ks->ops->destroy(ks, name, v);
		/* Already gone (a crash after the unlink): that is the goal. */
		if (r < 0 && r != KW_ERR_NOT_FOUND)
			break;
		if ((r = kw_sql_exec(db, NULL, "UPDATE key_versions SET wiped = 1 WHERE name = ? AND "
		    "version = ?", "ti", name, (long long)v)) < 0)
			break;
	}
	sqlite3_finalize(st);
	if (r == 0 && rc != SQLITE_DONE)
		r = KW_ERR_IO;
	return r;
}

int
kw_key_revoke(sqlite3 *db, const char *name, int version, json_t **ret_destroyed)
{
	json_t *out = NULL;
	sqlite3_stmt *st = NULL;
	long long left = 0;
	int r, n = 0;

	r = version > 0 ?
	    kw_sql_prepare(db, &st, "SELECT version FROM key_versions WHERE name = ? AND "
	    "version = ? AND state != 'destroyed'", "ti", name, (long long)version) :
	    kw_sql_prepare(db, &st, "SELECT version FROM key_versions WHERE name = ? AND "
	    "state != 'destroyed' ORDER BY version", "t", name);
	if (r < 0)
		return r;
	r = kw_sql_column_strings(st, &out);	/* integers read back as text */
	sqlite3_finalize(st);
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
	sqlite3_stmt *st = NULL;
	json_t *a = json_array();
	char c[32], g[32];

	if (!a || kw_sql_prepare(db, &st, "SELECT version, state, created, IFNULL(grace_until, -1) "
	    "FROM key_versions WHERE name = ? AND state != 'destroyed' ORDER BY version", "t",
	    name) < 0) {
		json_decref(a);
		return NULL;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		long long gu = sqlite3_column_int64(st, 3);
		json_array_append_new(a, json_pack("{s:i, s:s, s:s, s:o}",
		    "version", sqlite3_column_int(st, 0),
		    "state", (const char *)sqlite3_column_text(st, 1),
		    "created", kw_time_text(sqlite3_column_int64(st, 2), c),
		    "grace_until", gu < 0 ? json_null() : json_string(kw_time_text(gu, g))));
	}
	sqlite3_finalize(st);
	return a;
}

int
kw_key_list(sqlite3 *db, json_t **ret_array)
{
	sqlite3_stmt *st = NULL;
	json_t *a = json_array();
	char c[32], l[32];
	int r, rc;

	if (!a)
		return KW_ERR_NOMEM;
	if ((r = kw_sql_prepare(db, &st, "SELECT name, IFNULL(current, 0), created, "
	    "IFNULL(last_used, -1) FROM keys WHERE EXISTS (SELECT 1 FROM key_versions v "
	    "WHERE v.name = keys.name AND v.state != 'destroyed') ORDER BY name", "")) < 0) {
		json_decref(a);
		return r;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		long long lu = sqlite3_column_int64(st, 3);
		int cur = sqlite3_column_int(st, 1);
		json_array_append_new(a, json_pack("{s:s, s:o, s:o, s:s, s:o}", "name", name,
		    "current", cur > 0 ? json_integer(cur) : json_null(),
		    "versions", versions_of(db, name),
		    "created", kw_time_text(sqlite3_column_int64(st, 2), c),
		    "last_used", lu < 0 ? json_null() : json_string(kw_time_text(lu, l))));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		json_decref(a);
		return KW_ERR_IO;
	}
	*ret_array = a;
	return 0;
}
