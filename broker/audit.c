/*
 * audit.c - writing audit records (see audit.h).
 */
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "clock.h"
#include "keywarden.h"
#include "log.h"
#include "store.h"

struct kw_audit {
	sqlite3 *db;
	sqlite3_stmt *insert;	/* prepared once, re-prepared after errors */
};

/*
 * Version 1.  prev_hash/hash stay NULL until the tamper-evidence work fills
 * them; seq orders the chain.  ts is for people, ts_ms for range queries.
 */
static const struct kw_migration audit_migrations[] = {
	{ 1,
	  "CREATE TABLE audit_log ("
	  "  seq        INTEGER PRIMARY KEY AUTOINCREMENT,"
	  "  ts         TEXT    NOT NULL,"
	  "  ts_ms      INTEGER NOT NULL,"
	  "  user       TEXT    NOT NULL,"
	  "  uid        INTEGER NOT NULL,"
	  "  pid        INTEGER NOT NULL,"
	  "  action     TEXT    NOT NULL,"
	  "  resource   TEXT,"
	  "  result     TEXT    NOT NULL CHECK (result IN ('success', 'denied', 'error')),"
	  "  metadata   TEXT    NOT NULL DEFAULT '{}',"
	  "  request_id INTEGER,"
	  "  prev_hash  BLOB,"
	  "  hash       BLOB"
	  ");"
	  "CREATE INDEX audit_log_ts ON audit_log (ts_ms);"
	  "CREATE INDEX audit_log_user ON audit_log (user, ts_ms);"
	  "CREATE INDEX audit_log_action ON audit_log (action, ts_ms);" },
};

#define INSERT_SQL \
	"INSERT INTO audit_log (ts, ts_ms, user, uid, pid, action, resource, result, " \
	"metadata, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

int
kw_audit_open(const char *dir, struct kw_audit **ret_audit, char *err, size_t err_len)
{
	char path[4096];
	struct kw_audit *a;
	int r;

	if ((size_t)snprintf(path, sizeof(path), "%s/audit.db", dir) >= sizeof(path)) {
		snprintf(err, err_len, "%s: path too long", dir);
		return KW_ERR_IO;
	}
	if (!(a = calloc(1, sizeof(*a))))
		return KW_ERR_NOMEM;
	/* Acknowledged records must survive power loss, not just a crash. */
	r = kw_store_open(path, audit_migrations, KW_ELEMENTSOF(audit_migrations), true,
	    &a->db, err, err_len);
	if (r < 0) {
		free(a);
		return r;
	}
	*ret_audit = a;
	return 0;
}

void
kw_audit_close(struct kw_audit *a)
{
	if (!a)
		return;
	sqlite3_finalize(a->insert);
	sqlite3_close(a->db);
	free(a);
}

static int
bind_record(sqlite3_stmt *st, const struct kw_audit_record *rec, const char *meta)
{
	char ts[KW_RFC3339_LEN];
	long long ms = kw_now_rfc3339(ts);
	int rc = SQLITE_OK;

	rc |= sqlite3_bind_text(st, 1, ts, -1, SQLITE_TRANSIENT);
	rc |= sqlite3_bind_int64(st, 2, ms);
	rc |= sqlite3_bind_text(st, 3, rec->user ? rec->user : "", -1, SQLITE_STATIC);
	rc |= sqlite3_bind_int64(st, 4, rec->uid);
	rc |= sqlite3_bind_int64(st, 5, rec->pid);
	rc |= sqlite3_bind_text(st, 6, rec->action, -1, SQLITE_STATIC);
	rc |= rec->resource ? sqlite3_bind_text(st, 7, rec->resource, -1, SQLITE_STATIC) :
	    sqlite3_bind_null(st, 7);
	rc |= sqlite3_bind_text(st, 8, rec->result, -1, SQLITE_STATIC);
	rc |= sqlite3_bind_text(st, 9, meta, -1, SQLITE_STATIC);
	rc |= rec->request_id >= 0 ? sqlite3_bind_int64(st, 10, rec->request_id) :
	    sqlite3_bind_null(st, 10);
	return rc == SQLITE_OK ? 0 : KW_ERR_AUDIT;
}

int
kw_audit_write(struct kw_audit *a, const struct kw_audit_record *rec)
{
	_cleanup_free_ char *meta = NULL;
	int rc;

	meta = rec->metadata ? json_dumps(rec->metadata, JSON_COMPACT | JSON_SORT_KEYS) :
	    strdup("{}");
	if (!meta) {
		kw_log_error("audit record not written: out of memory");
		return KW_ERR_AUDIT;
	}
	if (!a->insert &&
	    sqlite3_prepare_v2(a->db, INSERT_SQL, -1, &a->insert, NULL) != SQLITE_OK) {
		kw_log_error("audit store unusable, refusing requests: %s", sqlite3_errmsg(a->db));
		sqlite3_finalize(a->insert);
		a->insert = NULL;
		return KW_ERR_AUDIT;
	}
	if (bind_record(a->insert, rec, meta) < 0) {
		kw_log_error("audit record not written: %s", sqlite3_errmsg(a->db));
		sqlite3_reset(a->insert);
		return KW_ERR_AUDIT;
	}
	/* Autocommit: the step returns once the record is committed (synchronous=FULL). */
	rc = sqlite3_step(a->insert);
	sqlite3_reset(a->insert);
	sqlite3_clear_bindings(a->insert);
	if (rc != SQLITE_DONE) {
		kw_log_error("audit record not written, refusing the request: %s",
		    sqlite3_errmsg(a->db));
		/* Prepare afresh next time: the schema may have been repaired. */
		sqlite3_finalize(a->insert);
		a->insert = NULL;
		return KW_ERR_AUDIT;
	}
	return 0;
}
