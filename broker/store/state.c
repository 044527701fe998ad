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

static int before_use(void *data, bool writes);

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
	kw_sql_on_use(st->db, before_use, st);
	*ret_state = st;
	return 0;
}

void
kw_state_close(struct kw_state *st)
{
	if (!st)
		return;
	/* A turn still open is rolled back by the close. */
	kw_sql_close(st->db);
	free(st);
}

/* One transaction-control statement (cached like any other, sql.h). */
static int
control(struct kw_state *st, const char *sql)
{
	int r;

	st->control = true;
	r = kw_sql_exec(st->db, NULL, sql, "");
	st->control = false;
	return r;
}

/*
 * The first write of a turn: the write transaction takes over from the
 * turn's reads.  Their read transaction ends first, so BEGIN IMMEDIATE waits
 * for another writer like any (busy timeout) instead of failing an upgrade;
 * what was read stays true, as only the broker writes state.db.
 */
static int
begin_writing(struct kw_state *st)
{
	/* A statement still stepping keeps the read open: then it is upgraded in place. */
	if (kw_state_in_transaction(st) && control(st, "COMMIT") < 0) {
		st->turn_txn = true;
		return 0;
	}
	if (control(st, "BEGIN IMMEDIATE") < 0) {
		kw_log_warn("state store: cannot begin the turn's transaction: %s",
		    sqlite3_errmsg(st->db));
		return KW_ERR_IO;
	}
	st->turn_txn = true;
	return 0;
}

/*
 * Run before every statement (sql.h's hook).  A turn opens no write
 * transaction until something in it writes: a turn of reads takes no write
 * lock and commits nothing; its reads share one read transaction (BEGIN,
 * deferred), so they take the read lock once, not once a statement.  A
 * request's savepoint is set only when it first writes.
 */
static int
before_use(void *data, bool writes)
{
	struct kw_state *st = data;

	if (st->control)
		return 0;
	if (st->turn && !writes && !kw_state_in_transaction(st))
		return control(st, "BEGIN");
	if (!writes)
		return 0;
	/* (Not in a transaction though it wrote: SQLite rolled it back on an error.) */
	if (st->turn && (!st->turn_txn || !kw_state_in_transaction(st)) && begin_writing(st) < 0)
		return KW_ERR_IO;
	if (st->request && !st->request_sp) {
		/* Inside the turn's transaction it nests (group commit). */
		if (control(st, "SAVEPOINT kw_request") < 0)
			return KW_ERR_IO;
		st->request_sp = true;
	}
	return 0;
}

int
kw_state_turn_begin(struct kw_state *st)
{
	st->turn = true;
	st->turn_txn = false;
	return 0;
}

bool
kw_state_in_transaction(struct kw_state *st)
{
	return !sqlite3_get_autocommit(st->db);
}

bool
kw_state_turn_wrote(struct kw_state *st)
{
	return st->turn && st->turn_txn;
}

void
kw_state_turn_rollback(struct kw_state *st)
{
	st->turn = st->turn_txn = false;
	if (kw_state_in_transaction(st))
		(void)control(st, "ROLLBACK");
}

int
kw_state_turn_commit(struct kw_state *st)
{
	st->turn = st->turn_txn = false;
	if (!kw_state_in_transaction(st))
		return 0;
	if (control(st, "COMMIT") < 0) {
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
	/* Nothing yet: the savepoint is set by the request's first write. */
	st->request = true;
	st->request_sp = false;
	return 0;
}

int
kw_state_request_keep(struct kw_state *st)
{
	bool sp = st->request_sp;

	st->request = st->request_sp = false;
	return sp ? control(st, "RELEASE kw_request") : 0;
}

void
kw_state_request_undo(struct kw_state *st)
{
	bool sp = st->request_sp;

	st->request = st->request_sp = false;
	/* Undo the request only; the savepoint is gone already if SQLite rolled back. */
	if (sp && kw_state_in_transaction(st) && control(st, "ROLLBACK TO kw_request") == 0)
		(void)control(st, "RELEASE kw_request");
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
	kw_sql_done(q);
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
