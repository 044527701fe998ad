/*
 * store.c - SQLite open + schema migrations (see store.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "client/keywarden.h"
#include "broker/store/db.h"

static int
exec(sqlite3 *db, const char *sql, char *err, size_t err_len)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, err_len, "%s", msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return KW_ERR_IO;
	}
	return 0;
}

static int
user_version(sqlite3 *db, int *ret)
{
	sqlite3_stmt *st = NULL;
	int r = KW_ERR_IO;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		*ret = sqlite3_column_int(st, 0);
		r = 0;
	}
	sqlite3_finalize(st);
	return r;
}

static int
migrate(sqlite3 *db, const struct kw_migration *m, size_t n, char *err, size_t err_len)
{
	char sql[64];
	int have, r;

	if (user_version(db, &have) < 0) {
		snprintf(err, err_len, "reading schema version: %s", sqlite3_errmsg(db));
		return KW_ERR_IO;
	}
	if (n > 0 && have > m[n - 1].version) {
		snprintf(err, err_len, "schema version %d is newer than this keywarden knows (%d)",
		    have, m[n - 1].version);
		return KW_ERR_IO;
	}
	for (size_t i = 0; i < n; i++) {
		if (m[i].version <= have)
			continue;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", m[i].version);
		if ((r = exec(db, "BEGIN IMMEDIATE", err, err_len)) < 0)
			return r;
		if ((r = exec(db, m[i].sql, err, err_len)) < 0 ||
		    (r = exec(db, sql, err, err_len)) < 0 ||
		    (r = exec(db, "COMMIT", err, err_len)) < 0) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return r;
		}
	}
	return 0;
}

int
kw_store_open(const char *path, const struct kw_migration *migrations,
    size_t n_migrations, bool durable, sqlite3 **ret_db, char *err, size_t err_len)
{
	sqlite3 *db = NULL;
	char why[256];
	int r;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		/* "unable to open database file" alone does not say why: the OS error does. */
		int e = db ? sqlite3_system_errno(db) : 0;
		snprintf(err, err_len, "%s: %s%s%s%s", path, db ? sqlite3_errmsg(db) : "out of memory",
		    e ? " (" : "", e ? strerror(e) : "", e ? ")" : "");
		sqlite3_close(db);
		return KW_ERR_IO;
	}
	/* Another process (an admin's sqlite3 shell) may hold a lock briefly. */
	sqlite3_busy_timeout(db, 2000);
	if ((r = exec(db, "PRAGMA journal_mode = WAL", why, sizeof(why))) < 0 ||
	    (r = exec(db, durable ? "PRAGMA synchronous = FULL" :
	    "PRAGMA synchronous = NORMAL", why, sizeof(why))) < 0 ||
	    (r = exec(db, "PRAGMA foreign_keys = ON", why, sizeof(why))) < 0 ||
	    /* Deleted rows are overwritten, so an erased name leaves the file too. */
	    (r = exec(db, "PRAGMA secure_delete = ON", why, sizeof(why))) < 0 ||
	    (r = migrate(db, migrations, n_migrations, why, sizeof(why))) < 0) {
		int e = sqlite3_system_errno(db);
		snprintf(err, err_len, "%s: %s%s%s%s", path, why, e ? " (" : "", e ? strerror(e) : "",
		    e ? ")" : "");
		sqlite3_close(db);
		return r;
	}
	/* The file existed before us perhaps: it holds secrets' metadata, keep it private. */
	(void)chmod(path, 0600);
	*ret_db = db;
	return 0;
}
