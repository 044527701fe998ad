/*
 * test_sql_cache.c - the statement cache of broker/store/sql.h: a statement
 * handed out again carries neither the bindings nor the rows of its last
 * use, two uses of one SQL text nest (each its own statement), writes run
 * the connection's hook as writes and reads as reads, and everything handed out
 * is given back so the connection closes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/store/db.h"
#include "broker/store/sql.h"
#include "client/keywarden.h"
#include "tests/unit/support/fixture.h"

static const struct kw_migration schema[] = {
	{ 1, "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL);"
	     "INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, 'three');" },
};

#define BY_KEY "SELECT v FROM t WHERE k = ?"
#define ALL "SELECT k FROM t ORDER BY k"

struct fx {
	struct kw_test_fx *t;
	sqlite3 *db;
	int uses, writes;	/* calls of the hook, and those for a write */
};

static int
on_use(void *data, bool writes)
{
	struct fx *fx = data;

	fx->uses++;
	fx->writes += writes;
	return 0;
}

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	char path[128], err[256];

	if (!fx || kw_test_fx_new("sqlc", &fx->t) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/t.db", fx->t->dir);
	if (kw_store_open(path, schema, KW_ELEMENTSOF(schema), false, &fx->db, err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	kw_sql_on_use(fx->db, on_use, fx);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	int r;

	/* Nothing handed out is still busy: every use gave its statement back. */
	for (sqlite3_stmt *s = sqlite3_next_stmt(fx->db, NULL); s; s = sqlite3_next_stmt(fx->db, s))
		assert_false(sqlite3_stmt_busy(s));
	kw_sql_close(fx->db);
	r = kw_test_fx_free(fx->t);
	free(fx);
	return r;
}

/* The value for k through the cached statement, or NULL (a copy). */
static char *
value_of(sqlite3 *db, long long k)
{
	sqlite3_stmt *st = NULL;
	char *v = NULL;

	assert_int_equal(kw_sql_prepare(db, &st, BY_KEY, "i", k), 0);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = strdup((const char *)sqlite3_column_text(st, 0));
	kw_sql_done(st);
	return v;
}

static void
test_reuse_keeps_no_bindings_or_rows(void **state)
{
	struct fx *fx = *state;
	sqlite3_stmt *st = NULL, *again = NULL;
	char *v;

	/* Left on a row, bound to 2. */
	assert_int_equal(kw_sql_prepare(fx->db, &st, BY_KEY, "i", 2LL), 0);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "two");
	kw_sql_done(st);
	assert_false(sqlite3_stmt_busy(st));

	/* The same statement comes back, with no binding: k = NULL matches nothing. */
	assert_int_equal(kw_sql_statement(fx->db, &again, BY_KEY), 0);
	assert_ptr_equal(again, st);
	assert_int_equal(sqlite3_step(again), SQLITE_DONE);
	kw_sql_done(again);

	/* And bound afresh it answers for the new value only. */
	v = value_of(fx->db, 3);
	assert_string_equal(v, "three");
	free(v);
	assert_null(value_of(fx->db, 7));
	v = value_of(fx->db, 1);
	assert_string_equal(v, "one");
	free(v);
}

static void
test_same_text_nests(void **state)
{
	struct fx *fx = *state;
	sqlite3_stmt *outer = NULL, *inner = NULL, *later = NULL;
	int n_inner = 0;

	assert_int_equal(kw_sql_prepare(fx->db, &outer, ALL, ""), 0);
	assert_int_equal(sqlite3_step(outer), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(outer, 0), 1);

	/* The text again while the first is on its row: a statement of its own. */
	assert_int_equal(kw_sql_prepare(fx->db, &inner, ALL, ""), 0);
	assert_ptr_not_equal(inner, outer);
	while (sqlite3_step(inner) == SQLITE_ROW)
		n_inner++;
	assert_int_equal(n_inner, 3);
	kw_sql_done(inner);	/* finalized: not the cached one */

	/* The outer walk goes on where it was. */
	assert_int_equal(sqlite3_step(outer), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(outer, 0), 2);
	kw_sql_done(outer);

	/* Given back, the cached statement is the one handed out next. */
	assert_int_equal(kw_sql_prepare(fx->db, &later, ALL, ""), 0);
	assert_ptr_equal(later, outer);
	assert_int_equal(sqlite3_step(later), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(later, 0), 1);
	kw_sql_done(later);
}

static void
test_nested_bindings_are_apart(void **state)
{
	struct fx *fx = *state;
	sqlite3_stmt *a = NULL;
	char *v;

	/* A helper running the same text while a use of it is bound and open. */
	assert_int_equal(kw_sql_prepare(fx->db, &a, BY_KEY, "i", 1LL), 0);
	v = value_of(fx->db, 2);
	assert_string_equal(v, "two");
	free(v);
	assert_int_equal(sqlite3_step(a), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(a, 0), "one");
	kw_sql_done(a);
}

static void
test_writes_run_the_hook(void **state)
{
	struct fx *fx = *state;
	int n = 0;
	char *v;

	v = value_of(fx->db, 1);
	free(v);
	assert_int_equal(fx->uses, 1);
	assert_int_equal(fx->writes, 0);
	assert_int_equal(kw_sql_exec(fx->db, &n, "UPDATE t SET v = ? WHERE k = ?", "ti", "uno",
	    1LL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(fx->writes, 1);
	/* Reused: the hook runs for each use, not once per statement. */
	assert_int_equal(kw_sql_exec(fx->db, &n, "UPDATE t SET v = ? WHERE k = ?", "ti", "dos",
	    2LL), 0);
	assert_int_equal(fx->writes, 2);
	v = value_of(fx->db, 2);
	assert_string_equal(v, "dos");
	free(v);
	/* A duplicate is told apart from a failure, and the statement is usable after. */
	assert_int_equal(kw_sql_exec(fx->db, NULL, "INSERT INTO t VALUES (?, ?)", "it", 1LL, "x"),
	    KW_ERR_INVALID);
	assert_int_equal(kw_sql_exec(fx->db, NULL, "INSERT INTO t VALUES (?, ?)", "it", 4LL, "x"),
	    0);
	v = value_of(fx->db, 4);
	assert_string_equal(v, "x");
	free(v);
}

static int
refuse(void *data, bool writes)
{
	((struct fx *)data)->writes += writes;
	return writes ? KW_ERR_IO : 0;
}

static void
test_a_refused_write_does_not_run(void **state)
{
	struct fx *fx = *state;
	char *v;

	kw_sql_on_use(fx->db, refuse, fx);
	assert_int_equal(kw_sql_exec(fx->db, NULL, "UPDATE t SET v = 'no' WHERE k = 1", ""),
	    KW_ERR_IO);
	assert_int_equal(fx->writes, 1);
	v = value_of(fx->db, 1);
	assert_string_equal(v, "one");
	free(v);
	kw_sql_on_use(fx->db, NULL, NULL);
	assert_int_equal(kw_sql_exec(fx->db, NULL, "UPDATE t SET v = 'yes' WHERE k = 1", ""), 0);
	v = value_of(fx->db, 1);
	assert_string_equal(v, "yes");
	free(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reuse_keeps_no_bindings_or_rows, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_same_text_nests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nested_bindings_are_apart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writes_run_the_hook, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_refused_write_does_not_run, setup,
		    teardown),
	};

	return cmocka_run_group_tests_name("sql_cache", tests, NULL, NULL);
}
