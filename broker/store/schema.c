/*
 * schema.c - state.db's schema, one migration per version (see db.h).
 */
#include <stdio.h>

#include "client/keywarden.h"
#include "broker/store/state_sqlite.h"
#include "broker/store/db.h"

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
	/*
	 * Version 3: second factors, locks and sessions.  Times are Unix seconds
	 * of the broker's clock.  Seeds are sealed (secrets.h); recovery codes
	 * and session secrets are stored only as keyed hashes.
	 */
	{ 3,
	  "CREATE TABLE totp ("
	  "  uid       INTEGER PRIMARY KEY REFERENCES users (uid) ON DELETE CASCADE,"
	  "  seed      BLOB    NOT NULL,"
	  "  last_step INTEGER NOT NULL DEFAULT -1,"
	  "  enrolled  INTEGER NOT NULL"
	  ");"
	  "CREATE TABLE recovery_codes ("
	  "  uid  INTEGER NOT NULL REFERENCES users (uid) ON DELETE CASCADE,"
	  "  hash BLOB    NOT NULL,"
	  "  used INTEGER,"
	  "  PRIMARY KEY (uid, hash)"
	  ");"
	  "CREATE TABLE failures ("
	  "  uid INTEGER NOT NULL REFERENCES users (uid) ON DELETE CASCADE,"
	  "  at  INTEGER NOT NULL"
	  ");"
	  "CREATE INDEX failures_uid ON failures (uid, at);"
	  "CREATE TABLE locks ("
	  "  uid       INTEGER PRIMARY KEY REFERENCES users (uid) ON DELETE CASCADE,"
	  "  locked_at INTEGER NOT NULL,"
	  "  until     INTEGER,"
	  "  message   TEXT,"
	  "  locked_by TEXT    NOT NULL"
	  ");"
	  "CREATE TABLE sessions ("
	  "  id          TEXT    PRIMARY KEY,"
	  "  uid         INTEGER NOT NULL REFERENCES users (uid) ON DELETE CASCADE,"
	  "  secret_hash BLOB    NOT NULL,"
	  "  created     INTEGER NOT NULL,"
	  "  last_used   INTEGER NOT NULL,"
	  "  expires     INTEGER"
	  ");"
	  "CREATE INDEX sessions_uid ON sessions (uid, created);" },
	/*
	 * Version 4: API key metadata.  Values live in the keystore backend; here
	 * are the versions and their states.  Destroyed versions keep their row
	 * so a version number is never used twice; `wiped` says the backend's
	 * copy is gone too (that happens only after the destroying change commits).
	 */
	{ 4,
	  "CREATE TABLE keys ("
	  "  name      TEXT    PRIMARY KEY,"
	  "  current   INTEGER,"
	  "  created   INTEGER NOT NULL,"
	  "  updated   INTEGER NOT NULL,"
	  "  last_used INTEGER"
	  ");"
	  "CREATE TABLE key_versions ("
	  "  name        TEXT    NOT NULL REFERENCES keys (name) ON DELETE CASCADE,"
	  "  version     INTEGER NOT NULL,"
	  "  created     INTEGER NOT NULL,"
	  "  state       TEXT    NOT NULL CHECK (state IN ('current', 'grace', 'destroyed')),"
	  "  grace_until INTEGER,"
	  "  wiped       INTEGER NOT NULL DEFAULT 0,"
	  "  PRIMARY KEY (name, version)"
	  ");" },
	/*
	 * Version 5: incidents (security.incidentResponse).  The user is named
	 * only by its audit pseudonym, so erasure unlinks incidents too; actions
	 * and details are JSON.  AUTOINCREMENT: an incident id is never reused.
	 */
	{ 5,
	  "CREATE TABLE incidents ("
	  "  id        INTEGER PRIMARY KEY AUTOINCREMENT,"
	  "  opened_ts TEXT    NOT NULL,"
	  "  opened_ms INTEGER NOT NULL,"
	  "  type      TEXT    NOT NULL,"
	  "  subject   TEXT    NOT NULL,"
	  "  status    TEXT    NOT NULL DEFAULT 'open',"
	  "  actions   TEXT    NOT NULL DEFAULT '[]',"
	  "  details   TEXT    NOT NULL DEFAULT '{}'"
	  ");"
	  "CREATE INDEX incidents_subject ON incidents (subject, id);" },
	/*
	 * Version 6: the back-off of automatic locks.  One row per user: how
	 * many automatic locks in a row came before the last one (0: it was a
	 * first), and when that one ended or ends (NULL: until unlocked).  It
	 * outlives the lock it describes; an administrator's unlock removes it.
	 */
	{ 6,
	  "CREATE TABLE lock_backoff ("
	  "  uid    INTEGER PRIMARY KEY REFERENCES users (uid) ON DELETE CASCADE,"
	  "  repeat INTEGER NOT NULL,"
	  "  until  INTEGER"
	  ");" },
	/*
	 * Version 7: incidents are closed by an administrator, with a note:
	 * when (RFC 3339), by whom (a name, "(erased)" after that user's
	 * erasure) and why.  NULL while the incident is open.
	 */
	{ 7,
	  "ALTER TABLE incidents ADD COLUMN closed_ts TEXT;"
	  "ALTER TABLE incidents ADD COLUMN closed_by TEXT;"
	  "ALTER TABLE incidents ADD COLUMN close_note TEXT;"
	  "CREATE INDEX incidents_status ON incidents (status, id);" },
	/*
	 * Version 8: proxy tokens (the API proxy's kwp1_ credentials).  Each
	 * names one key for one session and is good only while that session
	 * lives (checked on every call; the row stays so a call after the end
	 * can say why, and goes with its user); only a keyed hash of its secret
	 * is kept.
	 */
	{ 8,
	  "CREATE TABLE proxy_tokens ("
	  "  id          TEXT    PRIMARY KEY,"
	  "  session     TEXT    NOT NULL,"
	  "  uid         INTEGER NOT NULL REFERENCES users (uid) ON DELETE CASCADE,"
	  "  key         TEXT    NOT NULL,"
	  "  secret_hash BLOB    NOT NULL,"
	  "  created     INTEGER NOT NULL"
	  ");"
	  "CREATE INDEX proxy_tokens_session ON proxy_tokens (session);" },
};

const struct kw_migration *
kw_state_migrations(size_t *ret_n)
{
	*ret_n = KW_ELEMENTSOF(state_migrations);
	return state_migrations;
}
