/*
 * state_sqlite.h - the SQLite implementation of the state store, shared by
 * the files of broker/store/ and by no one else.
 */
#ifndef KW_STATE_SQLITE_H
#define KW_STATE_SQLITE_H

#include <sqlite3.h>
#include <stdbool.h>

#include "broker/store/db.h"
#include "broker/store/sql.h"

struct kw_state {
	sqlite3 *db;
	/* Transactions begin at the first statement that needs one (state.c). */
	bool turn;		/* a turn is open: its writes wait for its commit */
	bool turn_txn;		/* the turn wrote: its BEGIN IMMEDIATE was run */
	bool control;		/* a transaction-control statement runs (no hook) */
	bool request;		/* a request's changes are kept or undone together */
	bool request_sp;	/* its SAVEPOINT was run */
};

/* state.db's migrations, in order (schema.c). */
const struct kw_migration *kw_state_migrations(size_t *ret_n) KW_NONNULL(1);

#endif
