/*
 * test_state_turns.c - the state store's turn and request transactions
 * (broker/store/state.h), begun lazily at the first write: a turn that only
 * reads leaves state.db as it was (nothing committed, the WAL unchanged), a
 * turn that wrote is committed (a store opened afresh, as after a restart,
 * sees it), a request's writes are read back within the turn, and a request
 * undone or a turn rolled back leaves nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "broker/store/state.h"
#include "broker/store/state_sqlite.h"
#include "broker/store/users.h"
#include "client/keywarden.h"
#include "tests/unit/support/fixture.h"

#define ALICE 2001
#define BOB   2002

struct fx {
	struct kw_test_fx *t;
	sqlite3 *other;		/* a second connection: what others (or a restart) see */
	char *wal;
};

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	char path[128];

	if (!fx || kw_test_fx_new("turns", &fx->t) < 0 || kw_test_fx_state(fx->t) < 0)
		return -1;
	if (kw_user_insert(fx->t->state, ALICE, "alice", "test") < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/state.db", fx->t->dir);
	if (sqlite3_open_v2(path, &fx->other, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return -1;
	fx->wal = kw_test_path(fx->t, "state.db-wal");
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	int r;

	sqlite3_close(fx->other);
	free(fx->wal);
	r = kw_test_fx_free(fx->t);
	free(fx);
	return r;
}

/* PRAGMA data_version on the other connection: it moves when anyone else commits. */
static long long
data_version(struct fx *fx)
{
	sqlite3_stmt *st = NULL;
	long long v = -1;

	assert_int_equal(sqlite3_prepare_v2(fx->other, "PRAGMA data_version", -1, &st, NULL),
	    SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static long long
wal_size(struct fx *fx)
{
	struct stat sb;

	return stat(fx->wal, &sb) == 0 ? (long long)sb.st_size : 0;
}

/* Whether the other connection sees uid in users. */
static bool
other_sees(struct fx *fx, long long uid)
{
	sqlite3_stmt *st = NULL;
	bool yes;

	assert_int_equal(sqlite3_prepare_v2(fx->other, "SELECT 1 FROM users WHERE uid = ?", -1,
	    &st, NULL), SQLITE_OK);
	sqlite3_bind_int64(st, 1, uid);
	yes = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return yes;
}

static void
test_a_turn_of_reads_leaves_the_store_alone(void **state)
{
	struct fx *fx = *state;
	struct kw_state *st = fx->t->state;
	long long v = data_version(fx), wal = wal_size(fx);
	int changes = sqlite3_total_changes(st->db);
	struct kw_user u;
	json_t *roles = NULL;
	char out[64];

	assert_int_equal(kw_state_turn_begin(st), 0);
	assert_int_equal(kw_user_by_uid(st, ALICE, &u), 0);
	assert_int_equal(kw_user_roles(st, ALICE, &roles), 0);
	json_decref(roles);
	assert_int_equal(kw_state_meta_get(st, "nothing", out, sizeof(out)), KW_ERR_NOT_FOUND);
	/* A request that may write (KW_OP_WRITES) but only read: no savepoint either. */
	assert_int_equal(kw_state_request_begin(st), 0);
	assert_int_equal(kw_user_by_name(st, "alice", &u), 0);
	assert_int_equal(kw_state_request_keep(st), 0);
	assert_false(kw_state_turn_wrote(st));
	/* The reads share one read transaction: no write lock is held. */
	assert_int_equal(sqlite3_txn_state(st->db, "main"), SQLITE_TXN_READ);
	assert_int_equal(kw_state_turn_commit(st), 0);
	assert_false(kw_state_in_transaction(st));

	assert_int_equal(sqlite3_total_changes(st->db), changes);
	assert_int_equal(data_version(fx), v);
	assert_int_equal(wal_size(fx), wal);
}

static void
test_a_turn_that_wrote_is_committed(void **state)
{
	struct fx *fx = *state;
	struct kw_state *st = fx->t->state;
	long long v = data_version(fx);
	struct kw_user u;
	json_t *roles = NULL;
	char err[256];

	assert_int_equal(kw_state_turn_begin(st), 0);
	/* A read first, then the write begins the turn's transaction. */
	assert_int_equal(kw_user_by_uid(st, BOB, &u), KW_ERR_NOT_FOUND);
	assert_int_equal(kw_state_request_begin(st), 0);
	assert_int_equal(sqlite3_txn_state(st->db, "main"), SQLITE_TXN_READ);
	assert_int_equal(kw_user_insert(st, BOB, "bob", "test"), 0);
	assert_int_equal(kw_grant_insert(st, ALICE, "admin", "test"), 0);
	assert_int_equal(sqlite3_txn_state(st->db, "main"), SQLITE_TXN_WRITE);
	assert_int_equal(kw_state_request_keep(st), 0);
	assert_true(kw_state_turn_wrote(st));
	/* Read your writes within the turn; nobody else sees them before the commit. */
	assert_int_equal(kw_user_by_uid(st, BOB, &u), 0);
	assert_int_equal(kw_user_roles(st, ALICE, &roles), 0);
	assert_int_equal(json_array_size(roles), 1);
	json_decref(roles);
	assert_false(other_sees(fx, BOB));
	assert_int_equal(kw_state_turn_commit(st), 0);
	assert_false(kw_state_in_transaction(st));
	assert_true(other_sees(fx, BOB));
	assert_true(data_version(fx) != v);

	/* A restart: the store opened afresh has the grant. */
	kw_state_close(fx->t->state);
	fx->t->state = NULL;
	assert_int_equal(kw_state_open(fx->t->dir, &fx->t->state, err, sizeof(err)), 0);
	assert_int_equal(kw_user_roles(fx->t->state, ALICE, &roles), 0);
	assert_int_equal(json_array_size(roles), 1);
	assert_string_equal(json_string_value(json_array_get(roles, 0)), "admin");
	json_decref(roles);
}

static void
test_undone_request_and_rolled_back_turn_leave_nothing(void **state)
{
	struct fx *fx = *state;
	struct kw_state *st = fx->t->state;
	struct kw_user u;
	json_t *roles = NULL;

	/* Two requests in one turn: the second is undone, the first kept. */
	assert_int_equal(kw_state_turn_begin(st), 0);
	assert_int_equal(kw_state_request_begin(st), 0);
	assert_int_equal(kw_grant_insert(st, ALICE, "keep", "test"), 0);
	assert_int_equal(kw_state_request_keep(st), 0);
	assert_int_equal(kw_state_request_begin(st), 0);
	assert_int_equal(kw_user_insert(st, BOB, "bob", "test"), 0);
	kw_state_request_undo(st);
	assert_int_equal(kw_user_by_uid(st, BOB, &u), KW_ERR_NOT_FOUND);
	assert_int_equal(kw_state_turn_commit(st), 0);
	assert_int_equal(kw_user_roles(st, ALICE, &roles), 0);
	assert_int_equal(json_array_size(roles), 1);
	json_decref(roles);
	assert_false(other_sees(fx, BOB));

	/* A turn whose records did not land: its writes are rolled back. */
	assert_int_equal(kw_state_turn_begin(st), 0);
	assert_int_equal(kw_state_request_begin(st), 0);
	assert_int_equal(kw_user_insert(st, BOB, "bob", "test"), 0);
	assert_int_equal(kw_state_request_keep(st), 0);
	kw_state_turn_rollback(st);
	assert_false(kw_state_in_transaction(st));
	assert_int_equal(kw_user_by_uid(st, BOB, &u), KW_ERR_NOT_FOUND);

	/* Outside a turn a kept request commits on its own. */
	assert_int_equal(kw_state_request_begin(st), 0);
	assert_int_equal(kw_user_insert(st, BOB, "bob", "test"), 0);
	assert_int_equal(kw_state_request_keep(st), 0);
	assert_false(kw_state_in_transaction(st));
	assert_true(other_sees(fx, BOB));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_a_turn_of_reads_leaves_the_store_alone, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_a_turn_that_wrote_is_committed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_undone_request_and_rolled_back_turn_leave_nothing,
		    setup, teardown),
	};

	return cmocka_run_group_tests_name("state_turns", tests, NULL, NULL);
}
