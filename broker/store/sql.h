/*
 * sql.h - small helpers over the SQLite API for the broker's stores, and
 * the statement cache every statement they run goes through.
 *
 * DESIGN: the broker runs the same few dozen statements for every request,
 * so each connection opened by kw_store_open keeps its statements prepared
 * (sqlite3_prepare_v3 with SQLITE_PREPARE_PERSISTENT), keyed by their SQL
 * text.  kw_sql_prepare hands out the cached statement with its bindings;
 * the caller steps it and gives it back with kw_sql_done, which resets it
 * and clears its bindings: no caller finalizes, so none can forget to reset
 * or leave old bindings behind.  SQL text must therefore be constant (a
 * literal, or one of a fixed set): values are always bound, never printed
 * into the text.
 *
 * A statement still in use (a loop over its rows that runs the same text
 * again, directly or through a helper) is not handed out twice: the inner
 * use gets a statement of its own, finalized by its kw_sql_done.  So two
 * uses of one text nest safely, each with its own bindings and rows.
 *
 * The cache belongs to the connection: kw_sql_close finalizes it with the
 * connection.  Statements of a connection without a cache (one not opened
 * by kw_store_open) are prepared and finalized each time.  Only the thread
 * that owns the connection may use these functions.
 */
#ifndef KW_SQL_H
#define KW_SQL_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>

#include "common/macros.h"

/* Give db a statement cache (kw_store_open does).  0 or KW_ERR_NOMEM. */
int kw_sql_attach(sqlite3 *db) KW_WUR KW_NONNULL(1);

/*
 * Finalize db's cached statements (every one must have been given back),
 * drop its cache and close it.  Accepts NULL.
 */
void kw_sql_close(sqlite3 *db);

/*
 * Run fn(data, writes) before each statement is handed out (writes: it may
 * change the database, !sqlite3_stmt_readonly); the state store begins its
 * transactions lazily there.  A negative return refuses the statement
 * (kw_sql_prepare and kw_sql_exec return KW_ERR_IO).  Statements that fn
 * runs itself do not call it again.  NULL fn removes the hook.  Only on a
 * connection with a cache.
 */
void kw_sql_on_use(sqlite3 *db, int (*fn)(void *data, bool writes), void *data)
	KW_NONNULL(1);

/*
 * The cached statement for sql (constant text), unbound: the caller binds
 * it (SQLITE_STATIC is fine for values that outlive its kw_sql_done).
 * 0 with *ret_stmt (give it back with kw_sql_done), or KW_ERR_IO (logged).
 */
int kw_sql_statement(sqlite3 *db, sqlite3_stmt **ret_stmt, const char *sql)
	KW_WUR KW_NONNULL(1, 2, 3);

/*
 * The cached statement for sql with its parameters bound from the
 * arguments, one letter of `types` each: 't' a const char * (NULL binds
 * NULL), 'i' a long long, 'b' a const void * and a size_t (a blob), 'n'
 * NULL (takes no argument).  0 with *ret_stmt (give it back with
 * kw_sql_done), or KW_ERR_IO (the reason is logged).
 */
int kw_sql_prepare(sqlite3 *db, sqlite3_stmt **ret_stmt, const char *sql,
    const char *types, ...) KW_WUR KW_NONNULL(1, 2, 3, 4);

/*
 * Give back a statement of kw_sql_prepare/kw_sql_statement: reset (its rows
 * and its read transaction end) and its bindings cleared, or finalized if
 * it was not the cached one.  Accepts NULL.
 */
void kw_sql_done(sqlite3_stmt *st);

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
