/*
 * state.c - state.db schema (see state.h).
 */
#include <stdio.h>

#include "keywarden.h"
#include "state.h"
#include "store.h"

/* Version 1 records when and by which version the store was made. */
static const struct kw_migration state_migrations[] = {
	{ 1,
	  "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	  "INSERT INTO meta (key, value) VALUES"
	  " ('created', strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),"
	  " ('created_by', 'keywarden " KW_VERSION "');" },
	/*
	 * Version 2: identity.  A user is a Unix account, keyed by uid (names can
	 * change, SO_PEERCRED gives uids).  Roles defined in the configuration are
	 * not stored; `roles` holds those created from the CLI, and a grant names
	 * a role of either kind, so it has no foreign key to `roles`.
	 */
	{ 2,
	  "CREATE TABLE users ("
	  "  uid        INTEGER PRIMARY KEY,"
	  "  name       TEXT    NOT NULL UNIQUE,"
	  "  created    TEXT    NOT NULL,"
	  "  created_by TEXT    NOT NULL"
	  ");"
	  "CREATE TABLE roles ("
	  "  name        TEXT PRIMARY KEY,"
	  "  permissions TEXT NOT NULL,"
	  "  created     TEXT NOT NULL,"
	  "  created_by  TEXT NOT NULL"
	  ");"
	  "CREATE TABLE grants ("
	  "  uid        INTEGER NOT NULL REFERENCES users (uid) ON DELETE CASCADE,"
	  "  role       TEXT    NOT NULL,"
	  "  granted    TEXT    NOT NULL,"
	  "  granted_by TEXT    NOT NULL,"
	  "  PRIMARY KEY (uid, role)"
	  ");"
	  "CREATE INDEX grants_role ON grants (role);" },
};

int
kw_state_open(const char *dir, sqlite3 **ret_db, char *err, size_t err_len)
{
	char path[4096];

	if ((size_t)snprintf(path, sizeof(path), "%s/state.db", dir) >= sizeof(path)) {
		snprintf(err, err_len, "%s: path too long", dir);
		return KW_ERR_IO;
	}
	return kw_store_open(path, state_migrations, KW_ELEMENTSOF(state_migrations), false,
	    ret_db, err, err_len);
}
