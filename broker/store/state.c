/*
 * state.c - opening state.db, its transactions and its meta values (see
 * state.h).
 */
#include <stdio.h>
#include <stdlib.h>

#include "broker/store/state.h"
#include "broker/store/state_sqlite.h"
#include "common/errors.h"
#include "common/log.h"

int
kw_state_open(const char *dir, struct kw_state **ret_state, char *err, size_t err_len)
{
	const struct kw_migration *m;
	struct kw_state *st;
	char path[4096];
	size_t n;
	int r;

	if ((size_t)snprintf(path, sizeof(path), "%s/state.db", dir) >= sizeof(path)) {
		snprintf(err, err_len, "%s: path too long", dir);
		return KW_ERR_IO;
	}
	if (!(st = calloc(1, sizeof(*st)))) {
		snprintf(err, err_len, "out of memory");
		return KW_ERR_NOMEM;
	}
	m = kw_state_migrations(&n);
	if ((r = kw_store_open(path, m, n, false, &st->db, err, err_len)) < 0) {
		free(st);
		return r;
	}
	*ret_state = st;
	return 0;
}

void
kw_state_close(struct kw_state *st)
{
	if (!st)
		return;
	sqlite3_close(st->db);
	free(st);
}

static int
simple(struct kw_state *st, const char *sql)
{
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		kw_log_error("state store: %s: %s", sql, sqlite3_errmsg(st->db));
		return KW_ERR_IO;
	}
	return 0;
}

int
kw_state_turn_begin(struct kw_state *st)
{
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		kw_log_warn("state store: cannot begin the turn's transaction: %s",
		    sqlite3_errmsg(st->db));
		return KW_ERR_IO;
	}
	return 0;
}

bool
kw_state_in_transaction(struct kw_state *st)
{
	return !sqlite3_get_autocommit(st->db);
}

void
kw_state_turn_rollback(struct kw_state *st)
{
	if (kw_state_in_transaction(st))
		(void)sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

int
kw_state_turn_commit(struct kw_state *st)
{
	if (!kw_state_in_transaction(st))
		return 0;
	if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		kw_log_error("state store: the turn's changes were not saved: %s",
		    sqlite3_errmsg(st->db));
		kw_state_turn_rollback(st);
		return KW_ERR_IO;
	}
	return 0;
}

int
kw_state_request_begin(struct kw_state *st)
{
	/* A savepoint: inside the turn's transaction it nests (group commit). */
	return simple(st, "SAVEPOINT kw_request");
}

int
kw_state_request_keep(struct kw_state *st)
{
	return simple(st, "RELEASE kw_request");
}

void
kw_state_request_undo(struct kw_state *st)
{
	/* Undo the request only; the savepoint is gone already if SQLite rolled back. */
	if (kw_state_in_transaction(st) &&
	    sqlite3_exec(st->db, "ROLLBACK TO kw_request", NULL, NULL, NULL) == SQLITE_OK)
		(void)sqlite3_exec(st->db, "RELEASE kw_request", NULL, NULL, NULL);
}

int
kw_state_meta_get(struct kw_state *st, const char *key, char *out, size_t out_len)
{
	sqlite3_stmt *q = NULL;
	int r;

	if ((r = kw_sql_prepare(st->db, &q, "SELECT value FROM meta WHERE key = ?", "t", key)) < 0)
		return r;
	r = sqlite3_step(q);
	if (r == SQLITE_ROW) {
		snprintf(out, out_len, "%s", (const char *)sqlite3_column_text(q, 0));
		r = 0;
	} else {
		r = r == SQLITE_DONE ? KW_ERR_NOT_FOUND : KW_ERR_IO;
	}
	sqlite3_finalize(q);
	return r;
}

int
kw_state_meta_set(struct kw_state *st, const char *key, const char *value)
{
	return kw_sql_exec(st->db, NULL, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
	    "tt", key, value);
}

void
kw_state_scrub(struct kw_state *st)
{
	if (sqlite3_exec(st->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) != SQLITE_OK)
		kw_log_warn("state store: erased data may linger in the WAL until the next "
		    "checkpoint: %s", sqlite3_errmsg(st->db));
}
