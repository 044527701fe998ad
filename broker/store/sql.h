/*
 * sql.h - small helpers over the SQLite API for the broker's stores.
 */
#ifndef KW_SQL_H
#define KW_SQL_H

#include <jansson.h>
#include <sqlite3.h>

#include "common/macros.h"

/*
 * Prepare sql and bind its parameters from the arguments, one letter of
 * `types` each: 't' a const char * (NULL binds NULL), 'i' a long long,
 * 'b' a const void * and a size_t (a blob), 'n' NULL (takes no argument).
 * 0 with *ret_stmt (finalize it), or KW_ERR_IO (the reason is logged).
 */
int kw_sql_prepare(sqlite3 *db, sqlite3_stmt **ret_stmt, const char *sql,
    const char *types, ...) KW_WUR KW_NONNULL(1, 2, 3, 4);

/*
 * Run a statement that returns no rows.  *ret_changes (may be NULL) gets the
 * number of rows changed.  0, KW_ERR_INVALID for a constraint violation
 * (a duplicate), KW_ERR_IO otherwise.
 */
int kw_sql_exec(sqlite3 *db, int *ret_changes, const char *sql, const char *types, ...)
	KW_WUR KW_NONNULL(1, 3, 4);

/*
 * Step st to the end, collecting the first column of every row as strings
 * in a new array (*ret_array).  0, KW_ERR_NOMEM or KW_ERR_IO.
 */
int kw_sql_column_strings(sqlite3_stmt *st, json_t **ret_array) KW_WUR KW_NONNULL(1, 2);

#endif
