/*
 * state_sqlite.h - the SQLite implementation of the state store, shared by
 * the files of broker/store/ and by no one else.
 */
#ifndef KW_STATE_SQLITE_H
#define KW_STATE_SQLITE_H

#include <sqlite3.h>

#include "broker/store/db.h"
#include "broker/store/sql.h"

struct kw_state {
	sqlite3 *db;
};

/* state.db's migrations, in order (schema.c). */
const struct kw_migration *kw_state_migrations(size_t *ret_n) KW_NONNULL(1);

#endif
