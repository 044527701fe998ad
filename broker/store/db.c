/*
 * store.c - SQLite open + schema migrations (see store.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "client/keywarden.h"
#include "broker/store/db.h"
#include "broker/store/sql.h"
#include "common/fsutil.h"

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

/* path's sidecars that SQLite opens on its own: they must be the broker's too. */
static const char *const sidecars[] = { "-wal", "-shm", "-journal" };

/*
 * Before SQLite opens name under dfd: the file is made here if absent
 * (0600) or must be a trusted regular file, not a link, and is made private
 * (it may predate us: it holds secrets' metadata); a sidecar left beside it
 * must be trusted too, since SQLite would replay a WAL into the store.
 * *ret_st is the file that was checked.
 */
static int
check_before(int dfd, const char *path, const char *name, struct stat *ret_st, char *err,
    size_t err_len)
{
	char why[384], side[NAME_MAX + 1];
	_cleanup_close_ int fd = kw_open_private(dfd, name, O_RDWR | O_CREAT, 0600, why,
	    sizeof(why));
	int r;

	if (fd < 0) {
		snprintf(err, err_len, "%s: %s", path, why);
		return fd == KW_ERR_NOT_FOUND ? KW_ERR_IO : fd;
	}
	if (fstat(fd, ret_st) < 0 ||
	    ((ret_st->st_mode & 077) && fchmod(fd, ret_st->st_mode & 07700) < 0)) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return KW_ERR_IO;
	}
	for (size_t i = 0; i < KW_ELEMENTSOF(sidecars); i++) {
		snprintf(side, sizeof(side), "%s%s", name, sidecars[i]);
		if ((r = kw_check_file_at(dfd, side, NULL, why, sizeof(why))) < 0 &&
		    r != KW_ERR_NOT_FOUND) {
			snprintf(err, err_len, "%s%s: %s", path, sidecars[i], why);
			return r;
		}
	}
	return 0;
}

/*
 * Once SQLite has opened the store (and made its WAL): the file is still the
 * one checked, and the sidecars it made are trusted.  Only looked at: an
 * open and close here would drop SQLite's POSIX locks.
 */
static int
check_after(int dfd, const char *path, const char *name, const struct stat *before, char *err,
    size_t err_len)
{
	char why[384], side[NAME_MAX + 1];
	struct stat st;
	int r;

	if ((r = kw_check_file_at(dfd, name, &st, why, sizeof(why))) < 0) {
		snprintf(err, err_len, "%s: %s", path, why);
		return r == KW_ERR_NOT_FOUND ? KW_ERR_IO : r;
	}
	if (st.st_dev != before->st_dev || st.st_ino != before->st_ino) {
		snprintf(err, err_len, "%s: replaced while the broker opened it", path);
		return KW_ERR_IO;
	}
	for (size_t i = 0; i < KW_ELEMENTSOF(sidecars); i++) {
		snprintf(side, sizeof(side), "%s%s", name, sidecars[i]);
		if ((r = kw_check_file_at(dfd, side, NULL, why, sizeof(why))) < 0 &&
		    r != KW_ERR_NOT_FOUND) {
			snprintf(err, err_len, "%s%s: %s", path, sidecars[i], why);
			return r;
		}
	}
	return 0;
}

int
kw_store_open(const char *path, const struct kw_migration *migrations,
    size_t n_migrations, bool durable, sqlite3 **ret_db, char *err, size_t err_len)
{
	const char *name;
	_cleanup_close_ int dfd = kw_open_dir_of(path, &name);
	sqlite3 *db = NULL;
	struct stat st;
	char why[256];
	int r;

	if (dfd < 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return KW_ERR_IO;
	}
	if ((r = check_before(dfd, path, name, &st, err, err_len)) < 0)
		return r;
	/* No link anywhere on the path: the broker opens its stores by their real path. */
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	    SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		/* "unable to open database file" alone does not say why: the OS error does. */
		int e = db ? sqlite3_system_errno(db) : 0;
		bool link = db && sqlite3_extended_errcode(db) == SQLITE_CANTOPEN_SYMLINK;
		snprintf(err, err_len, "%s: %s%s%s%s", path, link ? "a symbolic link is on its path; "
		    "the broker opens its stores only by their real path" :
		    db ? sqlite3_errmsg(db) : "out of memory",
		    e ? " (" : "", e ? strerror(e) : "", e ? ")" : "");
		sqlite3_close(db);
		return link ? KW_ERR_CONFIG : KW_ERR_IO;
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
	if ((r = check_after(dfd, path, name, &st, err, err_len)) < 0) {
		sqlite3_close(db);
		return r;
	}
	/* Its statements are prepared once and reused (sql.h). */
	if ((r = kw_sql_attach(db)) < 0) {
		snprintf(err, err_len, "%s: out of memory", path);
		sqlite3_close(db);
		return r;
	}
	*ret_db = db;
	return 0;
}
