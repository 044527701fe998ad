/*
 * sql.c - SQLite helpers (see sql.h).
 */
#include <stdarg.h>

#include "client/keywarden.h"
#include "common/log.h"
#include "broker/store/sql.h"

static int
vprepare(sqlite3 *db, sqlite3_stmt **ret_stmt, const char *sql, const char *types, va_list ap)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_OK, i = 1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		kw_log_error("state store: %s", sqlite3_errmsg(db));
		return KW_ERR_IO;
	}
	for (const char *t = types; *t && rc == SQLITE_OK; t++, i++) {
		if (*t == 't') {
			const char *v = va_arg(ap, const char *);
			rc = v ? sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT) :
			    sqlite3_bind_null(st, i);
		} else if (*t == 'b') {
			const void *v = va_arg(ap, const void *);
			size_t n = va_arg(ap, size_t);
			rc = sqlite3_bind_blob(st, i, v, (int)n, SQLITE_TRANSIENT);
		} else if (*t == 'n') {
			rc = sqlite3_bind_null(st, i);
		} else {
			rc = sqlite3_bind_int64(st, i, va_arg(ap, long long));
		}
	}
	if (rc != SQLITE_OK) {
		kw_log_error("state store: %s", sqlite3_errmsg(db));
		sqlite3_finalize(st);
		return KW_ERR_IO;
	}
	*ret_stmt = st;
	return 0;
}

int
kw_sql_prepare(sqlite3 *db, sqlite3_stmt **ret_stmt, const char *sql, const char *types, ...)
{
	va_list ap;
	int r;

	va_start(ap, types);
	r = vprepare(db, ret_stmt, sql, types, ap);
	va_end(ap);
	return r;
}

int
kw_sql_exec(sqlite3 *db, int *ret_changes, const char *sql, const char *types, ...)
{
	sqlite3_stmt *st = NULL;
	va_list ap;
	int r, rc;

	va_start(ap, types);
	r = vprepare(db, &st, sql, types, ap);
	va_end(ap);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE) {
		if (ret_changes)
			*ret_changes = sqlite3_changes(db);
		return 0;
	}
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return KW_ERR_INVALID;
	kw_log_error("state store: %s", sqlite3_errmsg(db));
	return KW_ERR_IO;
}

int
kw_sql_column_strings(sqlite3_stmt *st, json_t **ret_array)
{
	json_t *a = json_array();
	int rc;

	if (!a)
		return KW_ERR_NOMEM;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (json_array_append_new(a, json_string((const char *)sqlite3_column_text(st, 0))) < 0)
			break;
	if (rc != SQLITE_DONE) {
		json_decref(a);
		return rc == SQLITE_ROW ? KW_ERR_NOMEM : KW_ERR_IO;
	}
	*ret_array = a;
	return 0;
}
