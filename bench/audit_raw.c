/*
 * audit_raw.c - the baseline of bench/audit.sh: what SQLite alone costs for
 * the rows the broker's audit trail writes.
 *
 *   audit_raw --db PATH --schema-from AUDIT_DB --mode each|batch [--seconds S]
 *             [--rows N] [--txn-rows N] [--warmup S] [--label NAME]
 *             [--action NAME] [--resource TYPE/NAME]
 *
 * The table and its indexes are copied from the broker's own audit.db
 * (--schema-from), so the baseline cannot drift from what the broker
 * writes; the pragmas are the broker's too (WAL, synchronous=FULL).  Each
 * row looks like the record of
 * a `check` request (pseudonymised user, compact JSON metadata, two 32-byte
 * hash blobs; the blobs are filled cheaply, not SHA-256'd, which costs about
 * a microsecond a row in the broker); --action and --resource make them
 * look like another request's (key.get, key/anthropic).
 *
 *   each   one INSERT and one COMMIT per row, back to back, for --seconds
 *          (or --rows): one fsync'd transaction per record, the cost of an
 *          audit store without group commit.
 *   batch  --rows rows (default 10000), --txn-rows to a transaction (default
 *          all of them), the COMMITs included in the time: the upper bound
 *          of what batching can reach on this disk.
 *
 * Prints one flat JSON line like loadgen's:
 *   {"label":"raw_each","mode":"each","rows":1234,"seconds":1.500,"rps":822.7}
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"

#define DEFAULT_BATCH_ROWS 10000

static const char pragmas[] = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;";

static const char insert_sql[] =
	"INSERT INTO audit_log (seq, ts, ts_ms, user, pid, action, resource, result, metadata, "
	"request_id, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

struct opts {
	const char *db;
	const char *schema_from;	/* the broker's audit.db */
	const char *mode;
	const char *label;
	double seconds;
	double warmup;
	long long rows;		/* 0: run for --seconds (each) / default (batch) */
	long long txn_rows;	/* batch: rows per transaction; 0: all */
	const char *action;
	const char *resource;
};

struct raw {
	const struct opts *o;
	sqlite3 *db;
	sqlite3_stmt *ins;
	long long seq;
	uint8_t prev[32];
};

static int
fail(sqlite3 *db, const char *what)
{
	bench_log("%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
	return -1;
}

/* Insert the next record-like row (no transaction control here). */
static int
insert_row(struct raw *r)
{
	char ts[32], meta[96];
	uint8_t hash[32];
	long long seq = ++r->seq;
	long long ms = 1795000000000LL + seq;
	int rc = SQLITE_OK;

	snprintf(ts, sizeof(ts), "2026-11-25T01:02:%02lld.%03lldZ", (seq / 1000) % 60, seq % 1000);
	snprintf(meta, sizeof(meta), "{\"user\":\"~0123456789abcdef0123\",\"verb\":\"read\"}");
	for (size_t i = 0; i < sizeof(hash); i++)
		hash[i] = (uint8_t)(seq * 131 + i * 7 + r->prev[i]);
	rc |= sqlite3_bind_int64(r->ins, 1, seq);
	rc |= sqlite3_bind_text(r->ins, 2, ts, -1, SQLITE_TRANSIENT);
	rc |= sqlite3_bind_int64(r->ins, 3, ms);
	rc |= sqlite3_bind_text(r->ins, 4, "~0123456789abcdef0123", -1, SQLITE_STATIC);
	rc |= sqlite3_bind_int64(r->ins, 5, (sqlite3_int64)getpid());
	rc |= sqlite3_bind_text(r->ins, 6, r->o->action, -1, SQLITE_STATIC);
	rc |= sqlite3_bind_text(r->ins, 7, r->o->resource, -1, SQLITE_STATIC);
	rc |= sqlite3_bind_text(r->ins, 8, "success", -1, SQLITE_STATIC);
	rc |= sqlite3_bind_text(r->ins, 9, meta, -1, SQLITE_TRANSIENT);
	rc |= sqlite3_bind_int64(r->ins, 10, seq);
	rc |= sqlite3_bind_blob(r->ins, 11, r->prev, 32, SQLITE_TRANSIENT);
	rc |= sqlite3_bind_blob(r->ins, 12, hash, 32, SQLITE_TRANSIENT);
	if (rc != SQLITE_OK)
		return fail(r->db, "bind");
	rc = sqlite3_step(r->ins);
	sqlite3_reset(r->ins);
	if (rc != SQLITE_DONE)
		return fail(r->db, "insert");
	memcpy(r->prev, hash, sizeof(hash));
	return 0;
}

static int
exec(struct raw *r, const char *sql)
{
	return sqlite3_exec(r->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : fail(r->db, sql);
}

/* One autocommitted INSERT per row (each its own fsync'd transaction). */
static int
run_each(struct raw *r, const struct opts *o, long long *ret_rows, double *ret_secs)
{
	uint64_t t0 = bench_now_ns(), start, end, now;
	long long n = 0;

	while (bench_now_ns() - t0 < (uint64_t)(o->warmup * 1e9))
		if (insert_row(r) < 0)
			return -1;
	start = bench_now_ns();
	end = start + (uint64_t)(o->seconds * 1e9);
	for (now = start; o->rows ? n < o->rows : now < end; now = bench_now_ns()) {
		if (insert_row(r) < 0)
			return -1;
		n++;
	}
	*ret_rows = n;
	*ret_secs = (double)(now - start) / 1e9;
	return 0;
}

/* The rows in transactions of txn_rows, the COMMITs included in the time. */
static int
run_batch(struct raw *r, const struct opts *o, long long *ret_rows, double *ret_secs)
{
	long long n = o->rows ? o->rows : DEFAULT_BATCH_ROWS;
	long long per = o->txn_rows ? o->txn_rows : n;
	uint64_t start = bench_now_ns();

	for (long long i = 0; i < n; i++) {
		if (i % per == 0 && exec(r, "BEGIN IMMEDIATE") < 0)
			return -1;
		if (insert_row(r) < 0)
			return -1;
		if ((i + 1 == n || (i + 1) % per == 0) && exec(r, "COMMIT") < 0)
			return -1;
	}
	*ret_rows = n;
	*ret_secs = (double)(bench_now_ns() - start) / 1e9;
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: audit_raw --db PATH --schema-from AUDIT_DB --mode each|batch "
	    "[--seconds S] [--rows N] [--txn-rows N] [--warmup S] [--label NAME] "
	    "[--action NAME] [--resource TYPE/NAME]\n");
	exit(2);
}

static void
parse_args(struct opts *o, int argc, char **argv)
{
	for (int i = 1; i < argc; i += 2) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!val)
			usage();
		if (strcmp(opt, "--db") == 0)
			o->db = val;
		else if (strcmp(opt, "--schema-from") == 0)
			o->schema_from = val;
		else if (strcmp(opt, "--mode") == 0 &&
		    (strcmp(val, "each") == 0 || strcmp(val, "batch") == 0))
			o->mode = val;
		else if (strcmp(opt, "--label") == 0)
			o->label = val;
		else if (strcmp(opt, "--seconds") == 0 && (o->seconds = bench_parse_seconds(val)) > 0)
			;
		else if (strcmp(opt, "--warmup") == 0 && (o->warmup = bench_parse_seconds(val)) >= 0)
			;
		else if (strcmp(opt, "--action") == 0)
			o->action = val;
		else if (strcmp(opt, "--resource") == 0)
			o->resource = val;
		else if (strcmp(opt, "--txn-rows") == 0 &&
		    (o->txn_rows = bench_parse_uint(val, 1, 100000000)) > 0)
			;
		else if (strcmp(opt, "--rows") == 0 &&
		    (o->rows = bench_parse_uint(val, 1, 100000000)) > 0)
			;
		else
			usage();
	}
	if (!o->db || !o->schema_from || !o->mode)
		usage();
}

/* Create audit_log and its indexes in db as the broker's store has them (once). */
static int
copy_schema(sqlite3 *db, const char *from)
{
	sqlite3 *src = NULL;
	sqlite3_stmt *st = NULL;
	char uri[4200];
	int rc, n = 0;

	if (sqlite3_exec(db, pragmas, NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE name = 'audit_log'", -1,
	    &st, NULL) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;	/* an earlier run made it */
	snprintf(uri, sizeof(uri), "file:%s?mode=ro", from);
	if (sqlite3_open_v2(uri, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(src, "SELECT sql FROM sqlite_master WHERE tbl_name = 'audit_log' "
	    "AND sql IS NOT NULL ORDER BY type DESC", -1, &st, NULL) != SQLITE_OK) {
		fail(src, from);
		sqlite3_close(src);
		return -1;
	}
	/* "table" sorts after "index": DESC creates the table first. */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && sqlite3_exec(db,
	    (const char *)sqlite3_column_text(st, 0), NULL, NULL, NULL) == SQLITE_OK)
		n++;
	sqlite3_finalize(st);
	sqlite3_close(src);
	return rc == SQLITE_DONE && n > 0 ? 0 : -1;
}

int
main(int argc, char **argv)
{
	struct opts o = { .label = NULL, .seconds = 1.5, .warmup = 0.25, .action = "check",
		.resource = "key/bench" };
	struct raw r = { .o = &o, .db = NULL, .ins = NULL, .seq = 0 };
	long long rows = 0;
	double secs = 0;
	int rc;

	bench_prog = "audit_raw";
	parse_args(&o, argc, argv);
	if (sqlite3_open_v2(o.db, &r.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK) {
		fail(r.db, o.db);
		sqlite3_close(r.db);
		return 1;
	}
	if (copy_schema(r.db, o.schema_from) < 0 ||
	    sqlite3_prepare_v2(r.db, insert_sql, -1, &r.ins, NULL) != SQLITE_OK) {
		fail(r.db, "schema");
		sqlite3_close(r.db);
		return 1;
	}
	/* Go on from whatever an earlier run left. */
	{
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(r.db, "SELECT coalesce(max(seq), 0) FROM audit_log", -1, &st,
		    NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
			r.seq = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	rc = strcmp(o.mode, "each") == 0 ? run_each(&r, &o, &rows, &secs) :
	    run_batch(&r, &o, &rows, &secs);
	sqlite3_finalize(r.ins);
	sqlite3_close(r.db);
	if (rc < 0)
		return 1;
	printf("{\"label\":\"%s\",\"mode\":\"%s\",\"rows\":%lld,\"seconds\":%.3f,\"rps\":%.1f}\n",
	    o.label ? o.label : o.mode, o.mode, rows, secs, secs > 0 ? (double)rows / secs : 0.0);
	return 0;
}
