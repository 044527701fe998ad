/*
 * store.h - opening the broker's SQLite databases with versioned schemas.
 *
 * Each database carries its schema version in PRAGMA user_version.  A
 * migration list names, for each version, the SQL that brings the schema
 * from the previous version to it; kw_store_open applies the missing ones
 * in order, each in its own transaction, so a crash leaves a whole version.
 */
#ifndef KW_STORE_H
#define KW_STORE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/macros.h"

struct kw_migration {
	int version;		/* 1, 2, ... in order */
	const char *sql;
};

/*
 * Open (creating, mode 0600) the database at path in WAL mode and migrate
 * it.  path must hold no symbolic link (SQLITE_OPEN_NOFOLLOW); the file and
 * its -wal, -shm and -journal must be regular files of root's or the
 * broker's user's that others cannot write (common/fsutil.h), checked
 * before SQLite opens them and again after; a readable file is made 0600.
 * durable selects synchronous=FULL (every commit reaches the disk) over
 * NORMAL.  The connection gets a statement cache (sql.h).  *ret_db is the
 * caller's; close it with kw_sql_close.  0;
 * KW_ERR_CONFIG for a file that is not trusted (named in err, with what to
 * do); KW_ERR_IO with the reason in err (a database newer than the
 * migrations is refused rather than downgraded).
 */
int kw_store_open(const char *path, const struct kw_migration *migrations,
    size_t n_migrations, bool durable, sqlite3 **ret_db, char *err, size_t err_len)
	KW_WUR KW_NONNULL(1, 2, 5, 6);

#endif
