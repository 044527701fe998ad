/*
 * state.h - the broker's state store (state.db): users, sessions, locks and
 * the rest of what later work adds, behind versioned migrations.
 */
#ifndef KW_STATE_H
#define KW_STATE_H

#include <sqlite3.h>

#include "common/macros.h"

/* Open or create dir/state.db.  *ret_db is the caller's (sqlite3_close). */
int kw_state_open(const char *dir, sqlite3 **ret_db, char *err, size_t err_len)
	KW_WUR KW_NONNULL(1, 2, 3);

#endif
