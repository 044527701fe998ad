/*
 * sql.c - SQLite helpers and the per-connection statement cache (see sql.h).
 *
 * The cache is an open-addressing table keyed by the SQL text (the text the
 * statement itself keeps, sqlite3_sql), one per connection; connections are
 * found by their handle in a short list (the broker has two or three).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/keywarden.h"
#include "common/log.h"
#include "broker/store/sql.h"

/* Statements a connection may keep; past it (text that is not constant), one-offs. */
#define KW_SQL_CACHE_MAX 512

struct entry {
	sqlite3_stmt *stmt;	/* NULL: free slot */
	uint32_t hash;
	bool writes;		/* !sqlite3_stmt_readonly */
	bool busy;		/* handed out, not given back yet */
};

struct conn {
	sqlite3 *db;
	struct entry *e;
	size_t cap, n;		/* cap a power of two, n <= cap / 2 */
	int (*on_use)(void *data, bool writes);
	void *on_use_data;
	bool in_hook;		/* on_use runs: its own statements (BEGIN ...) pass */
};

static struct conn **conns;
static size_t n_conns;

static uint32_t
text_hash(const char *s)
{
	uint32_t h = 2166136261u;	/* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static struct conn *
conn_of(sqlite3 *db)
{
	for (size_t i = 0; i < n_conns; i++)
		if (conns[i]->db == db)
			return conns[i];
	return NULL;
}

int
kw_sql_attach(sqlite3 *db)
{
	struct conn *c, **grown;

	if (conn_of(db))
		return 0;
	if (!(c = calloc(1, sizeof(*c))) || !(c->e = calloc(64, sizeof(*c->e)))) {
		free(c);
		return KW_ERR_NOMEM;
	}
	c->db = db;
	c->cap = 64;
	if (!(grown = realloc(conns, (n_conns + 1) * sizeof(*conns)))) {
		free(c->e);
		free(c);
		return KW_ERR_NOMEM;
	}
	conns = grown;
	conns[n_conns++] = c;
	return 0;
}

void
kw_sql_close(sqlite3 *db)
{
	if (!db)
		return;
	for (size_t i = 0; i < n_conns; i++) {
		struct conn *c = conns[i];
		if (c->db != db)
			continue;
		for (size_t k = 0; k < c->cap; k++)
			sqlite3_finalize(c->e[k].stmt);
		free(c->e);
		free(c);
		conns[i] = conns[--n_conns];
		if (n_conns == 0) {
			free(conns);
			conns = NULL;
		}
		break;
	}
	if (sqlite3_close(db) != SQLITE_OK)
		kw_log_error("store: closing a database: %s (a statement was not given back)",
		    sqlite3_errmsg(db));
}

void
kw_sql_on_use(sqlite3 *db, int (*fn)(void *data, bool writes), void *data)
{
	struct conn *c = conn_of(db);

	if (c) {
		c->on_use = fn;
		c->on_use_data = data;
	}
}

/* The slot of text (its statement, or the free slot where it goes). */
static struct entry *
slot(struct conn *c, const char *sql, uint32_t h)
{
	size_t mask = c->cap - 1, i = h & mask;

	while (c->e[i].stmt &&
	    (c->e[i].hash != h || strcmp(sqlite3_sql(c->e[i].stmt), sql) != 0))
		i = (i + 1) & mask;
	return &c->e[i];
}

/* Double the table; 0 or KW_ERR_NOMEM (the cache stays as it was). */
static int
grow(struct conn *c)
{
	struct entry *old = c->e;
	size_t old_cap = c->cap;

	if (!(c->e = calloc(2 * old_cap, sizeof(*c->e)))) {
		c->e = old;
		return KW_ERR_NOMEM;
	}
	c->cap = 2 * old_cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].stmt)
			*slot(c, sqlite3_sql(old[i].stmt), old[i].hash) = old[i];
	free(old);
	return 0;
}

static int
prepare(sqlite3 *db, const char *sql, unsigned flags, sqlite3_stmt **ret_stmt)
{
	if (sqlite3_prepare_v3(db, sql, -1, flags, ret_stmt, NULL) != SQLITE_OK) {
		kw_log_error("state store: %s", sqlite3_errmsg(db));
		sqlite3_finalize(*ret_stmt);
		*ret_stmt = NULL;
		return KW_ERR_IO;
	}
	return 0;
}

static int
before_use(struct conn *c, bool writes)
{
	int r;

	if (!c->on_use || c->in_hook)
		return 0;
	c->in_hook = true;
	r = c->on_use(c->on_use_data, writes);
	c->in_hook = false;
	return r;
}

int
kw_sql_statement(sqlite3 *db, sqlite3_stmt **ret_stmt, const char *sql)
{
	struct conn *c = conn_of(db);
	uint32_t h = text_hash(sql);
	struct entry *e;
	sqlite3_stmt *st = NULL;
	int r;

	if (!c)
		return prepare(db, sql, 0, ret_stmt);
	e = slot(c, sql, h);
	if (!e->stmt && c->n < KW_SQL_CACHE_MAX) {
		if ((r = prepare(db, sql, SQLITE_PREPARE_PERSISTENT, &st)) < 0)
			return r;
		if (2 * (c->n + 1) > c->cap && grow(c) < 0) {
			sqlite3_finalize(st);
			return KW_ERR_NOMEM;
		}
		e = slot(c, sql, h);
		*e = (struct entry){ .stmt = st, .hash = h, .writes = !sqlite3_stmt_readonly(st) };
		c->n++;
	}
	if (e->stmt && before_use(c, e->writes) < 0)
		return KW_ERR_IO;
	if (!e->stmt || e->busy) {
		/* In use (nested) or past the cache's size: a statement of its own. */
		if ((r = prepare(db, sql, 0, &st)) < 0)
			return r;
		if (!e->stmt && before_use(c, !sqlite3_stmt_readonly(st)) < 0) {
			sqlite3_finalize(st);
			return KW_ERR_IO;
		}
		*ret_stmt = st;
		return 0;
	}
	e->busy = true;
	*ret_stmt = e->stmt;
	return 0;
}

void
kw_sql_done(sqlite3_stmt *st)
{
	struct conn *c;
	struct entry *e;
	const char *sql;

	if (!st)
		return;
	if ((c = conn_of(sqlite3_db_handle(st))) && (sql = sqlite3_sql(st))) {
		e = slot(c, sql, text_hash(sql));
		if (e->stmt == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			e->busy = false;
			return;
		}
	}
	sqlite3_finalize(st);
}

static int
bind_args(sqlite3_stmt *st, const char *types, va_list ap)
{
	int rc = SQLITE_OK, i = 1;

	for (const char *t = types; *t && rc == SQLITE_OK; t++, i++) {
		if (*t == 't') {
			const char *v = va_arg(ap, const char *);
			rc = v ? sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT) :
			    sqlite3_bind_null(st, i);
		} else if (*t == 'b') {
			const void *v = va_arg(ap, const void *);
			size_t n = va_arg(ap, size_t);
			rc = sqlite3_bind_blob(st, i, v, (int)n, SQLITE_TRANSIENT);
		} else if (*t == 'n') {
			rc = sqlite3_bind_null(st, i);
		} else {
			rc = sqlite3_bind_int64(st, i, va_arg(ap, long long));
		}
	}
	return rc;
}

static int
vprepare(sqlite3 *db, sqlite3_stmt **ret_stmt, const char *sql, const char *types, va_list ap)
{
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = kw_sql_statement(db, &st, sql)) < 0)
		return r;
	if (bind_args(st, types, ap) != SQLITE_OK) {
		kw_log_error("state store: %s", sqlite3_errmsg(db));
		kw_sql_done(st);
		return KW_ERR_IO;
	}
	*ret_stmt = st;
	return 0;
}

int
kw_sql_prepare(sqlite3 *db, sqlite3_stmt **ret_stmt, const char *sql, const char *types, ...)
{
	va_list ap;
	int r;

	va_start(ap, types);
	r = vprepare(db, ret_stmt, sql, types, ap);
	va_end(ap);
	return r;
}

int
kw_sql_exec(sqlite3 *db, int *ret_changes, const char *sql, const char *types, ...)
{
	sqlite3_stmt *st = NULL;
	va_list ap;
	int r, rc;

	va_start(ap, types);
	r = vprepare(db, &st, sql, types, ap);
	va_end(ap);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	kw_sql_done(st);
	if (rc == SQLITE_DONE) {
		if (ret_changes)
			*ret_changes = sqlite3_changes(db);
		return 0;
	}
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return KW_ERR_INVALID;
	kw_log_error("state store: %s", sqlite3_errmsg(db));
	return KW_ERR_IO;
}

int
kw_sql_column_strings(sqlite3_stmt *st, json_t **ret_array)
{
	json_t *a = json_array();
	int rc;

	if (!a)
		return KW_ERR_NOMEM;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (json_array_append_new(a, json_string((const char *)sqlite3_column_text(st, 0))) < 0)
			break;
	if (rc != SQLITE_DONE) {
		json_decref(a);
		return rc == SQLITE_ROW ? KW_ERR_NOMEM : KW_ERR_IO;
	}
	*ret_array = a;
	return 0;
}
