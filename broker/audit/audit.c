/*
 * audit.c - appending hash-chained records in batches (see audit.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "broker/audit/audit_internal.h"
#include "common/clock.h"
#include "common/fsutil.h"
#include "client/keywarden.h"
#include "common/log.h"
#include "broker/store/sql.h"
#include "broker/store/db.h"
#include "common/names.h"

/*
 * Version 1 had no chain and stored names.  Version 2 keeps those rows as
 * audit_log_v1 (outside the chain) and starts the chained, pseudonymised
 * table.  audit_named is for people with a sqlite3 shell: it shows names.
 * Version 3 adds the broker's signatures.
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
	{ 2,
	  "ALTER TABLE audit_log RENAME TO audit_log_v1;"
	  "CREATE TABLE audit_log ("
	  "  seq        INTEGER PRIMARY KEY,"
	  "  ts         TEXT    NOT NULL,"
	  "  ts_ms      INTEGER NOT NULL,"
	  "  user       TEXT    NOT NULL,"
	  "  pid        INTEGER NOT NULL,"
	  "  action     TEXT    NOT NULL,"
	  "  resource   TEXT,"
	  "  result     TEXT    NOT NULL CHECK (result IN ('success', 'denied', 'error')),"
	  "  metadata   TEXT    NOT NULL,"
	  "  request_id INTEGER,"
	  "  prev_hash  BLOB    NOT NULL,"
	  "  hash       BLOB    NOT NULL"
	  ");"
	  "CREATE INDEX audit_ts ON audit_log (ts_ms);"
	  "CREATE INDEX audit_user ON audit_log (user, seq);"
	  "CREATE INDEX audit_action ON audit_log (action, ts_ms);"
	  "CREATE INDEX audit_resource ON audit_log (resource, seq);"
	  "CREATE TABLE audit_subjects ("
	  "  pseudonym TEXT PRIMARY KEY,"
	  "  name      TEXT NOT NULL UNIQUE,"
	  "  uid       INTEGER"
	  ");"
	  "CREATE TABLE audit_anchor ("
	  "  first_seq INTEGER PRIMARY KEY,"
	  "  prev_hash BLOB NOT NULL,"
	  "  made_ts   TEXT NOT NULL,"
	  "  note      TEXT"
	  ");"
	  "CREATE VIEW audit_named AS SELECT seq, ts, ts_ms, COALESCE(uname, user) AS user,"
	  "  uuid AS uid, pid, action,"
	  "  CASE WHEN rp IS NOT NULL THEN 'user/' || COALESCE(rname, rp) ELSE resource END"
	  "    AS resource,"
	  "  result,"
	  "  CASE WHEN json_type(m1, '$.reason') = 'text' THEN json_set(m1, '$.reason',"
	  "    replace(replace(replace(json_extract(m1, '$.reason'),"
	  "      user, COALESCE(uname, user)), COALESCE(mp, ''), COALESCE(mname, mp, '')),"
	  "      COALESCE(rp, ''), COALESCE(rname, rp, ''))) ELSE m1 END AS metadata,"
	  "  request_id, prev_hash, hash"
	  " FROM (SELECT *,"
	  "   CASE WHEN mp IS NOT NULL THEN json_set(metadata, '$.user', COALESCE(mname, mp))"
	  "     ELSE metadata END AS m1"
	  "  FROM (SELECT l.*, s.name AS uname, s.uid AS uuid, r.name AS rname, m.name AS mname"
	  "   FROM (SELECT *,"
	  "     CASE WHEN json_valid(metadata) AND json_type(metadata, '$.user') = 'text'"
	  "       THEN json_extract(metadata, '$.user') END AS mp,"
	  "     CASE WHEN resource LIKE 'user/~%' THEN substr(resource, 6) END AS rp"
	  "    FROM audit_log) l"
	  "   LEFT JOIN audit_subjects s ON s.pseudonym = l.user"
	  "   LEFT JOIN audit_subjects r ON r.pseudonym = l.rp"
	  "   LEFT JOIN audit_subjects m ON m.pseudonym = l.mp));" },
	/* Version 3: the broker's Ed25519 signatures (common/audit_chain.h).  One head
	   signature per commit; anchors made before this version have none. */
	{ 3,
	  "CREATE TABLE audit_head_sig ("
	  "  seq INTEGER PRIMARY KEY,"
	  "  sig BLOB NOT NULL"
	  ");"
	  "ALTER TABLE audit_anchor ADD COLUMN sig BLOB;" },
	/* Version 4: every record pays for each index on insert, so each holds only what a
	   query needs.  A rowid (seq) ends every index entry already: (user, seq) kept it
	   twice.  Only user/ resources are searched by (what was done to a user: audit
	   search "about", GDPR idleness), so only those rows are in audit_resource; the
	   queries repeat its condition so that SQLite may use it. */
	{ 4,
	  "DROP INDEX audit_user;"
	  "CREATE INDEX audit_user ON audit_log (user);"
	  "DROP INDEX audit_resource;"
	  "CREATE INDEX audit_resource ON audit_log (resource) WHERE resource GLOB 'user/*';" },
};

#define INSERT_SQL \
	"INSERT INTO audit_log (" KW_AUDIT_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

/* Where the chain stands in the store: the last record, or the anchor, or nothing. */
static int
load_head(struct kw_audit *a)
{
	sqlite3_stmt *st = NULL;
	int rc;

	a->last_seq = 0;
	memset(a->last_hash, 0, sizeof(a->last_hash));
	if (kw_sql_prepare(a->db, &st, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
	    "") < 0)
		return KW_ERR_IO;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 1) == KW_AUDIT_HASH_LEN) {
		a->last_seq = sqlite3_column_int64(st, 0);
		memcpy(a->last_hash, sqlite3_column_blob(st, 1), KW_AUDIT_HASH_LEN);
	}
	kw_sql_done(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc != SQLITE_DONE)
		return KW_ERR_IO;
	/* Everything was pruned: the newest anchor says where the chain goes on. */
	if (kw_sql_prepare(a->db, &st, "SELECT first_seq, prev_hash FROM audit_anchor "
	    "ORDER BY first_seq DESC LIMIT 1", "") < 0)
		return KW_ERR_IO;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 1) == KW_AUDIT_HASH_LEN) {
		a->last_seq = sqlite3_column_int64(st, 0) - 1;
		memcpy(a->last_hash, sqlite3_column_blob(st, 1), KW_AUDIT_HASH_LEN);
	}
	kw_sql_done(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : KW_ERR_IO;
}

static int
store_open(struct kw_audit *a, char *err, size_t err_len)
{
	struct stat sb;
	int r;

	/* Acknowledged records must survive power loss, not just a crash. */
	r = kw_store_open(a->path, audit_migrations, KW_ELEMENTSOF(audit_migrations), true,
	    &a->db, err, err_len);
	if (r < 0)
		return r;
	if (lstat(a->path, &sb) < 0 || load_head(a) < 0) {
		snprintf(err, err_len, "%s: cannot read the chain's head: %s", a->path,
		    sqlite3_errmsg(a->db));
		kw_sql_close(a->db);
		a->db = NULL;
		return KW_ERR_IO;
	}
	a->dev = sb.st_dev;
	a->ino = sb.st_ino;
	return 0;
}

int
kw_audit_open(const char *dir, const struct kw_audit_options *opt,
    struct kw_audit **ret_audit, char *err, size_t err_len)
{
	struct kw_audit *a;
	char why[512];
	int r;

	if (!(a = calloc(1, sizeof(*a))))
		return KW_ERR_NOMEM;
	if ((size_t)snprintf(a->path, sizeof(a->path), "%s/audit.db", dir) >= sizeof(a->path)) {
		snprintf(err, err_len, "%s: path too long", dir);
		free(a);
		return KW_ERR_IO;
	}
	a->opt = *opt;
	a->opt.log_file = NULL;
	a->log_fd = -1;
	/* Not through a link, and only a file of root's or ours: fsutil.h. */
	if (opt->log_file && (a->log_fd = kw_open_private_path(opt->log_file, O_WRONLY |
	    O_APPEND | O_CREAT, 0600, why, sizeof(why))) < 0) {
		a->log_fd = -1;
		snprintf(err, err_len, "security.audit.logFile: %s", why);
		free(a);
		return KW_ERR_CONFIG;
	}
	struct passwd *pw = getpwuid(geteuid());
	snprintf(a->owner, sizeof(a->owner), "%s", pw ? pw->pw_name : "keywardend");
	if ((r = store_open(a, err, err_len)) < 0) {
		if (a->log_fd >= 0)
			close(a->log_fd);
		free(a);
		return r;
	}
	*ret_audit = a;
	return 0;
}

static void
store_close(struct kw_audit *a)
{
	if (a->db && !sqlite3_get_autocommit(a->db))
		(void)sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
	/* The cached statements (sql.h) go with the connection. */
	kw_sql_close(a->db);
	a->db = NULL;
}

void
kw_audit_close(struct kw_audit *a)
{
	if (!a)
		return;
	store_close(a);
	if (a->log_fd >= 0)
		close(a->log_fd);
	free(a->log_buf);
	if (a->sign_sk)
		sodium_free(a->sign_sk);
	free(a);
}

void
kw_audit_set_secrets(struct kw_audit *a, const struct kw_detector *d)
{
	a->secrets = d;
}

/*
 * Open the store again after a failure.  If the file was removed, the new
 * one starts with an anchor at the head this process last committed, so
 * the chain goes on and the gap is visible in it.
 */
static int
reopen(struct kw_audit *a)
{
	long long seq = a->last_seq;
	uint8_t hash[KW_AUDIT_HASH_LEN];
	char err[512], ts[KW_RFC3339_LEN];

	memcpy(hash, a->last_hash, sizeof(hash));
	store_close(a);
	if (store_open(a, err, sizeof(err)) < 0) {
		kw_log_error("audit store still unusable: %s", err);
		return KW_ERR_AUDIT;
	}
	if (a->last_seq == 0 && seq > 0) {
		kw_now_rfc3339(ts);
		if (kw_audit_put_anchor(a, seq + 1, hash, ts, "audit.db was replaced; the chain goes "
		    "on from the last record this broker committed") < 0) {
			store_close(a);
			return KW_ERR_AUDIT;
		}
		a->last_seq = seq;
		memcpy(a->last_hash, hash, sizeof(hash));
		a->replaced_after = seq;
		kw_log_warn("audit store was replaced; a new chain continues after record %lld", seq);
	} else if (a->last_seq < seq) {
		kw_log_warn("audit store ends at record %lld but this broker committed up to %lld",
		    a->last_seq, seq);
	}
	/* Another writer moved the head: what it left must carry our signature. */
	if ((a->last_seq != seq || memcmp(a->last_hash, hash, sizeof(hash)) != 0) &&
	    !kw_audit_head_signed(a)) {
		kw_log_error("audit store: its head (record %lld) was not written by this broker: "
		    "no valid head signature", a->last_seq);
		a->unsigned_head_at = a->last_seq;
	}
	a->broken = false;
	kw_log_info("audit store (re)opened; the chain goes on after record %lld", a->last_seq);
	return 0;
}

/* True when the file at a->path is no longer the one we have open. */
static bool
replaced(const struct kw_audit *a)
{
	struct stat sb;

	return lstat(a->path, &sb) < 0 || sb.st_dev != a->dev || sb.st_ino != a->ino;
}

static int append(struct kw_audit *a, const struct kw_audit_record *rec);

/* A record of the store about itself (the broker's own, result "error"). */
static int
note(struct kw_audit *a, const char *action, const char *reason, const char *key, long long v)
{
	json_t *meta = json_pack("{s:s, s:I}", "reason", reason, key, (json_int_t)v);
	struct kw_audit_record rec = {
		.pid = getpid(), .action = action, .resource = "audit", .result = "error",
		.metadata = meta, .request_id = -1,
	};
	int r = meta ? kw_audit_write(a, &rec) : KW_ERR_NOMEM;

	json_decref(meta);
	return r < 0 ? KW_ERR_AUDIT : 0;
}

void
kw_audit_head(const struct kw_audit *a, long long *ret_seq, char hex[KW_AUDIT_HASH_HEX])
{
	*ret_seq = a->last_seq;
	kw_audit_hash_hex(a->last_hash, hex);
}

int
kw_audit_reconcile(struct kw_audit *a, long long seq, const char *hex)
{
	uint8_t hash[KW_AUDIT_HASH_LEN];
	char ts[KW_RFC3339_LEN];

	if (seq <= a->last_seq || kw_audit_hash_parse(hex, hash) < 0)
		return 0;
	if (a->last_seq == 0) {
		/* Nothing here at all: the file was removed while the broker was down. */
		kw_now_rfc3339(ts);
		if (kw_audit_put_anchor(a, seq + 1, hash, ts, "audit.db was missing or empty at "
		    "start; the chain goes on from the head state.db remembers") < 0)
			return KW_ERR_AUDIT;
		a->last_seq = seq;
		memcpy(a->last_hash, hash, sizeof(hash));
		kw_log_error("audit store: audit.db was missing or empty; the trail had reached "
		    "record %lld (state.db): a new chain continues after it", seq);
		return note(a, "audit.store_replaced", "audit.db was missing or empty at start",
		    "previous_seq", seq);
	}
	/* Records were cut from the end while the broker was down. */
	kw_log_error("audit store: it ends at record %lld but had reached %lld (state.db): "
	    "records are missing", a->last_seq, seq);
	return note(a, "audit.gap", "records missing at the end of the trail at start",
	    "expected_seq", seq);
}

bool
kw_audit_in_batch(const struct kw_audit *a)
{
	return a->in_batch;
}

/* What the start (or a reopen) found about signatures, on the record (sign.c). */
static int
signing_notes(struct kw_audit *a)
{
	char pk[KW_AUDIT_PK_B64];
	json_t *meta;
	int r;

	if (a->unsigned_head_at > 0) {
		long long seq = a->unsigned_head_at;
		a->unsigned_head_at = 0;
		if (note(a, "audit.unsigned_head", "the head had no valid signature of this broker: "
		    "the records before this one may have been changed behind its back",
		    "head_seq", seq) < 0)
			return KW_ERR_AUDIT;
	}
	if (!a->signing_note)
		return 0;
	a->signing_note = false;
	kw_audit_pk_b64(a->sign_pk, pk);
	meta = json_pack("{s:s, s:s, s:I}", "reason", "the broker signs the head of the trail "
	    "at every commit from this record on; the records up to unsigned_through were "
	    "written before it did", "public_key", pk, "unsigned_through",
	    (json_int_t)a->signing_from);
	struct kw_audit_record rec = {
		.pid = getpid(), .action = "audit.signing", .resource = "audit",
		.result = "success", .metadata = meta, .request_id = -1,
	};
	r = meta ? kw_audit_write(a, &rec) : KW_ERR_NOMEM;
	json_decref(meta);
	return r < 0 ? KW_ERR_AUDIT : 0;
}

int
kw_audit_begin(struct kw_audit *a)
{
	if (a->in_batch)
		return 0;
	if (!a->broken && a->db && replaced(a)) {
		kw_log_error("audit store %s was removed or replaced, refusing requests", a->path);
		a->broken = true;
	}
	if ((a->broken || !a->db) && reopen(a) < 0)
		return KW_ERR_AUDIT;
	if (kw_sql_exec(a->db, NULL, "BEGIN IMMEDIATE", "") < 0) {
		kw_log_error("audit store unusable, refusing requests: %s", sqlite3_errmsg(a->db));
		a->broken = true;
		return KW_ERR_AUDIT;
	}
	a->in_batch = true;
	a->batch_failed = false;
	a->pending_seq = a->last_seq;
	memcpy(a->pending_hash, a->last_hash, sizeof(a->pending_hash));
	/* The first record of a replacement store says so. */
	if (a->replaced_after > 0) {
		long long after = a->replaced_after;
		a->replaced_after = 0;
		if (note(a, "audit.store_replaced", "the audit store was removed or replaced while "
		    "the broker ran; this store continues the chain", "previous_seq", after) < 0)
			return KW_ERR_AUDIT;
	}
	return signing_notes(a);
}

void
kw_audit_rollback(struct kw_audit *a)
{
	if (!a->in_batch)
		return;
	if (a->db && !sqlite3_get_autocommit(a->db))
		(void)sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
	a->in_batch = false;
	a->log_len = 0;
}

/*
 * The log file mirrors what committed, for `tail -f | jq`; it is not the
 * trail (audit.db is), so a failing write is logged, not fatal.  Lines are
 * the stored form: pseudonyms and sealed details, like the archives.
 */
static void
log_flush(struct kw_audit *a)
{
	if (a->log_fd >= 0 && a->log_len > 0 && kw_write_all(a->log_fd, a->log_buf, a->log_len) < 0)
		kw_log_warn("security.audit.logFile: %s", strerror(errno));
	a->log_len = 0;
}

static void
log_add(struct kw_audit *a, const struct kw_audit_fields *f, const uint8_t prev[],
    const uint8_t hash[])
{
	char ph[KW_AUDIT_HASH_HEX], hh[KW_AUDIT_HASH_HEX];
	json_t *meta, *line;
	char *text;
	size_t n;

	if (a->log_fd < 0)
		return;
	kw_audit_hash_hex(prev, ph);
	kw_audit_hash_hex(hash, hh);
	meta = json_loads(f->metadata, 0, NULL);
	line = json_pack("{s:I, s:s, s:s, s:s, s:s?, s:s, s:o, s:I, s:o, s:s, s:s}",
	    "seq", (json_int_t)f->seq, "timestamp", f->ts, "user", f->user, "action", f->action,
	    "resource", f->resource, "result", f->result, "metadata", meta ? meta : json_object(),
	    "pid", (json_int_t)f->pid, "request_id", f->has_request_id ?
	    json_integer(f->request_id) : json_null(), "prev_hash", ph, "hash", hh);
	text = line ? json_dumps(line, JSON_COMPACT) : NULL;
	json_decref(line);
	if (!text)
		return;
	n = strlen(text);
	if (a->log_len + n + 1 > a->log_cap) {
		size_t cap = (a->log_len + n + 1) * 2;
		char *grown = realloc(a->log_buf, cap);
		if (!grown) {
			free(text);
			return;
		}
		a->log_buf = grown;
		a->log_cap = cap;
	}
	memcpy(a->log_buf + a->log_len, text, n);
	a->log_buf[a->log_len + n] = '\n';
	a->log_len += n + 1;
	free(text);
}

int
kw_audit_commit(struct kw_audit *a)
{
	if (!a->in_batch)
		return 0;
	a->in_batch = false;
	if (a->batch_failed || sqlite3_get_autocommit(a->db)) {
		a->broken = true;
		a->log_len = 0;
		return KW_ERR_AUDIT;
	}
	/* One signature per commit, over its head: never a head on disk unsigned. */
	if (a->pending_seq > a->last_seq && kw_audit_sign_head(a) < 0) {
		kw_log_error("audit records not signed, refusing their requests: %s",
		    sqlite3_errmsg(a->db));
		(void)sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
		a->broken = true;
		a->log_len = 0;
		return KW_ERR_AUDIT;
	}
	/* synchronous=FULL: the WAL is on disk when COMMIT returns. */
	if (kw_sql_exec(a->db, NULL, "COMMIT", "") < 0) {
		kw_log_error("audit records not committed, refusing their requests: %s",
		    sqlite3_errmsg(a->db));
		(void)sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
		a->broken = true;
		a->log_len = 0;
		return KW_ERR_AUDIT;
	}
	a->last_seq = a->pending_seq;
	memcpy(a->last_hash, a->pending_hash, sizeof(a->last_hash));
	log_flush(a);
	return 0;
}

/*
 * The pseudonym of name (0), KW_ERR_NOT_FOUND, or KW_ERR_AUDIT.  uid >= 0 is
 * the caller's uid: a row that lacks one (the name was first met as a
 * target) gets it.  With create, a missing row is made.
 */
static int
subject(struct kw_audit *a, const char *name, long long uid, bool create,
    char out[KW_PSEUDONYM_SIZE])
{
	unsigned char rnd[10];
	bool has_uid = false;
	int rc;

	sqlite3_stmt *find = NULL;

	/* Every record asks: bound in place, not copied. */
	if (!a->db || kw_sql_statement(a->db, &find, "SELECT pseudonym, uid FROM audit_subjects "
	    "WHERE name = ?") < 0)
		return KW_ERR_AUDIT;
	sqlite3_bind_text(find, 1, name, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(find)) == SQLITE_ROW) {
		snprintf(out, KW_PSEUDONYM_SIZE, "%s", (const char *)sqlite3_column_text(find, 0));
		has_uid = sqlite3_column_type(find, 1) != SQLITE_NULL;
	}
	kw_sql_done(find);
	if (rc == SQLITE_ROW)
		return uid < 0 || has_uid || kw_sql_exec(a->db, NULL, "UPDATE audit_subjects "
		    "SET uid = ? WHERE pseudonym = ?", "it", uid, out) == 0 ? 0 : KW_ERR_AUDIT;
	if (rc != SQLITE_DONE)
		return KW_ERR_AUDIT;
	if (!create)
		return KW_ERR_NOT_FOUND;
	/* Random, not derived from the name: nothing to recompute once the row is gone. */
	randombytes_buf(rnd, sizeof(rnd));
	out[0] = '~';
	sodium_bin2hex(out + 1, KW_PSEUDONYM_SIZE - 1, rnd, sizeof(rnd));
	if (kw_sql_exec(a->db, NULL, "INSERT INTO audit_subjects (pseudonym, name, uid) "
	    "VALUES (?, ?, ?)", uid >= 0 ? "tti" : "ttn", out, name, uid) < 0)
		return KW_ERR_AUDIT;
	return 0;
}

int
kw_audit_find_pseudonym(struct kw_audit *a, const char *name, char out[KW_PSEUDONYM_SIZE])
{
	int r = subject(a, name, -1, false, out);

	return r == KW_ERR_AUDIT ? KW_ERR_IO : r;
}

int
kw_audit_subject_name(struct kw_audit *a, const char *pseudonym, char *out, size_t out_len)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (!a->db || kw_sql_prepare(a->db, &st, "SELECT name FROM audit_subjects "
	    "WHERE pseudonym = ?", "t", pseudonym) < 0)
		return KW_ERR_IO;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		snprintf(out, out_len, "%s", (const char *)sqlite3_column_text(st, 0));
	kw_sql_done(st);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? KW_ERR_NOT_FOUND : KW_ERR_IO;
}

int
kw_audit_pseudonym(struct kw_audit *a, const char *name, char out[KW_PSEUDONYM_SIZE])
{
	return subject(a, name, -1, true, out);
}

int
kw_audit_forget_subject(struct kw_audit *a, const char *name, char out[KW_PSEUDONYM_SIZE])
{
	char p[KW_PSEUDONYM_SIZE];
	int r = kw_audit_find_pseudonym(a, name, p);

	if (r == KW_ERR_NOT_FOUND)
		return r;
	if (r < 0 || kw_sql_exec(a->db, NULL, "DELETE FROM audit_subjects WHERE name = ?", "t",
	    name) < 0)
		return KW_ERR_AUDIT;
	if (out)
		memcpy(out, p, sizeof(p));
	return 0;
}

int
kw_audit_forget_idle(struct kw_audit *a, long long cutoff_ms,
    bool (*keep)(const char *name, void *ctx), void *ctx, int *ret_n)
{
	sqlite3_stmt *st = NULL;
	json_t *gone = json_array(), *v;
	size_t i;
	int rc, r = 0;

	*ret_n = 0;
	if (!a->db || !a->in_batch || !gone) {
		json_decref(gone);
		return KW_ERR_AUDIT;
	}
	/* The newest record by or about each name (indexes audit_user, audit_resource:
	   its condition, the GLOB, is repeated so that it may be used). */
	/* (Two-argument max() is NULL when either is: hence the COALESCEs.) */
	if (kw_sql_prepare(a->db, &st, "SELECT s.name, max("
	    "COALESCE((SELECT ts_ms FROM audit_log WHERE user = s.pseudonym "
	    "  ORDER BY seq DESC LIMIT 1), 0),"
	    "COALESCE((SELECT ts_ms FROM audit_log WHERE resource = 'user/' || s.pseudonym "
	    "  AND resource GLOB 'user/*' ORDER BY seq DESC LIMIT 1), 0)) "
	    "FROM audit_subjects s", "") < 0) {
		json_decref(gone);
		return KW_ERR_AUDIT;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		bool idle = sqlite3_column_int64(st, 1) < cutoff_ms;
		if (name && idle && !keep(name, ctx))
			json_array_append_new(gone, json_string(name));
	}
	kw_sql_done(st);
	if (rc != SQLITE_DONE)
		r = KW_ERR_AUDIT;
	json_array_foreach(gone, i, v) {
		if (r < 0 || (r = kw_audit_forget_subject(a, json_string_value(v), NULL)) < 0)
			break;
		(*ret_n)++;
	}
	json_decref(gone);
	return r == KW_ERR_NOT_FOUND ? 0 : r;
}

void
kw_audit_scrub(struct kw_audit *a)
{
	if (a->db && sqlite3_exec(a->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL,
	    NULL) != SQLITE_OK)
		kw_log_warn("audit store: erased data may linger in the WAL until the next "
		    "checkpoint: %s", sqlite3_errmsg(a->db));
}

/* s with every whole-word occurrence of name replaced by with (new string, or NULL). */
static char *
replace_word(const char *s, const char *name, const char *with)
{
	size_t n = strlen(name), w = strlen(with), cap = strlen(s) + 1, len = 0;
	char *out;

	if (n == 0)
		return strdup(s);
	for (const char *p = s; (p = strstr(p, name)); p += n)
		cap += w;
	if (!(out = malloc(cap)))
		return NULL;
	for (const char *p = s; *p;) {
		if (strncmp(p, name, n) == 0 && (p == s || !kw_name_char(p[-1])) && !kw_name_char(p[n])) {
			memcpy(out + len, with, w);
			len += w;
			p += n;
		} else {
			out[len++] = *p++;
		}
	}
	out[len] = '\0';
	return out;
}

/* The names of one record and their pseudonyms (copies: the JSON they came from changes). */
struct names {
	char name[4][65];
	char pseud[4][KW_PSEUDONYM_SIZE];
	size_t n;
};

/*
 * The pseudonym of a name a record is about: its own, made now for a
 * registered user that has none yet, else KW_UNKNOWN_SUBJECT -- a name
 * anyone can type must not grow audit_subjects, nor outlive erasure.
 */
static int
target(struct kw_audit *a, const char *name, char out[KW_PSEUDONYM_SIZE])
{
	int r = subject(a, name, -1, false, out);

	if (r != KW_ERR_NOT_FOUND)
		return r;
	if (!a->opt.registered || a->opt.registered(name, a->opt.registered_ctx))
		return subject(a, name, -1, true, out);
	snprintf(out, KW_PSEUDONYM_SIZE, "%s", KW_UNKNOWN_SUBJECT);
	return 0;
}

/*
 * Remember name -> pseudonym for the record being written: the caller's
 * (caller; uid its uid, or -1 for the broker's own records), or a name the
 * record is about.
 */
static const char *
pseudonymise(struct kw_audit *a, struct names *nm, const char *name, bool caller, long long uid)
{
	if (!name || !*name || name[0] == '~')
		return name;
	for (size_t i = 0; i < nm->n; i++)
		if (strcmp(nm->name[i], name) == 0)
			return nm->pseud[i];
	if (nm->n == KW_ELEMENTSOF(nm->name) || strlen(name) >= sizeof(nm->name[0]) ||
	    (caller ? subject(a, name, uid, true, nm->pseud[nm->n]) :
	    target(a, name, nm->pseud[nm->n])) < 0)
		return NULL;
	snprintf(nm->name[nm->n], sizeof(nm->name[0]), "%s", name);
	return nm->pseud[nm->n++];
}

/* The metadata as stored: context kept or not, names replaced, sealed or not. */
static char *
stored_metadata(struct kw_audit *a, const struct kw_audit_record *rec, struct names *nm)
{
	json_t *in = rec->metadata, *m;
	const char *v;
	char *text = NULL;

	if (a->opt.include_context) {
		m = in ? json_deep_copy(in) : json_object();
	} else {
		/* Why a request failed is part of the decision, not context. */
		m = json_object();
		if (m && in && json_object_get(in, "error"))
			json_object_set(m, "error", json_object_get(in, "error"));
		if (m && in && json_object_get(in, "reason"))
			json_object_set(m, "reason", json_object_get(in, "reason"));
	}
	if (!m)
		return NULL;
	/* Before anything is derived from it: no secret is hashed, sealed or logged. */
	if (a->secrets && kw_audit_scrub_json(a->secrets, m) < 0)
		goto out;
	/* The keys that name users (handlers put names nowhere else). */
	static const char *const named[] = { "user", "about" };
	for (size_t i = 0; i < KW_ELEMENTSOF(named); i++) {
		if (!(v = json_string_value(json_object_get(m, named[i]))))
			continue;
		const char *p = pseudonymise(a, nm, v, false, -1);
		if (!p)
			goto out;
		json_object_set_new(m, named[i], json_string(p));
	}
	if ((v = json_string_value(json_object_get(m, "reason")))) {
		char *r = strdup(v), *next;
		for (size_t i = 0; r && i < nm->n; i++) {
			next = replace_word(r, nm->name[i], nm->pseud[i]);
			free(r);
			r = next;
		}
		if (!r)
			goto out;
		json_object_set_new(m, "reason", json_string(r));
		free(r);
	}
	text = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
	if (text && a->opt.seal) {
		size_t mlen = strlen(text), clen = mlen + crypto_box_SEALBYTES;
		size_t blen = sodium_base64_ENCODED_LEN(clen, sodium_base64_VARIANT_ORIGINAL);
		unsigned char *c = malloc(clen);
		char *b64 = malloc(blen);
		json_t *sealed = NULL;

		if (c && b64 && crypto_box_seal(c, (unsigned char *)text, mlen, a->opt.seal_pk) == 0) {
			sodium_bin2base64(b64, blen, c, clen, sodium_base64_VARIANT_ORIGINAL);
			sealed = json_pack("{s:s}", "sealed", b64);
		}
		sodium_memzero(text, mlen);
		free(text);
		text = sealed ? json_dumps(sealed, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		json_decref(sealed);
		free(c);
		free(b64);
	}
 out:
	json_decref(m);
	return text;
}

static int
append(struct kw_audit *a, const struct kw_audit_record *rec)
{
	struct names nm = { .n = 0 };
	char ts[KW_RFC3339_LEN], resource[320];
	const char *user = "", *res = rec->resource, *who = rec->user ? rec->user : a->owner, *p = NULL;
	_cleanup_free_ char *meta = NULL, *clean_res = NULL;
	struct kw_audit_fields f;
	uint8_t hash[KW_AUDIT_HASH_LEN];
	sqlite3_stmt *ins = NULL;
	int rc = SQLITE_OK;

	/* Records without a caller (start, daily prune) are the broker's own.  The
	   caller's uid belongs with the name (audit_subjects), never in the record. */
	long long uid = rec->user ? (long long)rec->uid : -1;
	/* The caller's name may appear in reasons even when includeUser is off. */
	if (*who && !(p = pseudonymise(a, &nm, who, true, uid)))
		goto fail;
	if (*who && a->opt.include_user)
		user = p;
	if (res && strncmp(res, "user/", 5) == 0 && res[5] && res[5] != '~') {
		if (!(p = pseudonymise(a, &nm, res + 5, false, -1)))
			goto fail;
		snprintf(resource, sizeof(resource), "user/%s", p);
		res = resource;
	}
	if (res && a->secrets && kw_audit_scrub_text(a->secrets, res, strlen(res), &clean_res) < 0)
		goto fail;
	if (clean_res)
		res = clean_res;
	if (!(meta = stored_metadata(a, rec, &nm)))
		goto fail;

	f = (struct kw_audit_fields){
		.seq = a->pending_seq + 1, .ts = ts, .user = user, .pid = rec->pid,
		.action = rec->action, .resource = res, .result = rec->result, .metadata = meta,
		.has_request_id = rec->request_id >= 0, .request_id = rec->request_id,
	};
	f.ts_ms = kw_now_rfc3339(ts);
	kw_audit_chain_hash(a->pending_hash, &f, hash);

	if (kw_sql_statement(a->db, &ins, INSERT_SQL) < 0)
		goto fail;
	rc |= sqlite3_bind_int64(ins, 1, f.seq);
	rc |= sqlite3_bind_text(ins, 2, ts, -1, SQLITE_STATIC);
	rc |= sqlite3_bind_int64(ins, 3, f.ts_ms);
	rc |= sqlite3_bind_text(ins, 4, user, -1, SQLITE_STATIC);
	rc |= sqlite3_bind_int64(ins, 5, rec->pid);
	rc |= sqlite3_bind_text(ins, 6, rec->action, -1, SQLITE_STATIC);
	rc |= res ? sqlite3_bind_text(ins, 7, res, -1, SQLITE_STATIC) :
	    sqlite3_bind_null(ins, 7);
	rc |= sqlite3_bind_text(ins, 8, rec->result, -1, SQLITE_STATIC);
	rc |= sqlite3_bind_text(ins, 9, meta, -1, SQLITE_STATIC);
	rc |= f.has_request_id ? sqlite3_bind_int64(ins, 10, rec->request_id) :
	    sqlite3_bind_null(ins, 10);
	rc |= sqlite3_bind_blob(ins, 11, a->pending_hash, KW_AUDIT_HASH_LEN, SQLITE_STATIC);
	rc |= sqlite3_bind_blob(ins, 12, hash, KW_AUDIT_HASH_LEN, SQLITE_STATIC);
	if (rc != SQLITE_OK)
		goto fail;
	rc = sqlite3_step(ins);
	kw_sql_done(ins);
	ins = NULL;
	if (rc != SQLITE_DONE)
		goto fail;
	log_add(a, &f, a->pending_hash, hash);
	a->pending_seq = f.seq;
	memcpy(a->pending_hash, hash, sizeof(hash));
	return 0;
 fail:
	kw_log_error("audit record not written, refusing the request: %s",
	    a->db ? sqlite3_errmsg(a->db) : "store closed");
	/* Open afresh next turn: that reloads the head should another writer have
	   appended (the seq of this record was taken), and clears a bad handle. */
	a->broken = true;
	kw_sql_done(ins);
	/* Errors such as a full disk end the whole transaction, not just the statement. */
	if (!a->db || sqlite3_get_autocommit(a->db))
		a->batch_failed = true;
	return KW_ERR_AUDIT;
}

int
kw_audit_write(struct kw_audit *a, const struct kw_audit_record *rec)
{
	int r;

	if (a->in_batch)
		return a->batch_failed ? KW_ERR_AUDIT : append(a, rec);
	if ((r = kw_audit_begin(a)) < 0)
		return r;
	if ((r = append(a, rec)) < 0) {
		kw_audit_rollback(a);
		a->broken = true;
		return r;
	}
	return kw_audit_commit(a);
}
