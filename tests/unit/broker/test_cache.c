/*
 * test_cache.c - the cache of users, grants and compiled roles
 * (broker/accounts/cache.h) on a real state.db: answers come from memory
 * until a watched table changes, whoever writes it, and nothing read while
 * a change is uncommitted outlives its rollback.
 *
 * Every test gets a fresh data directory (support/fixture.h) with alice
 * (2001) registered and holding the built-in role "reviewer" (read).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/accounts/cache.h"
#include "broker/store/roles.h"
#include "broker/store/state.h"
#include "broker/store/state_sqlite.h"
#include "broker/store/users.h"
#include "broker/store/watch.h"
#include "client/keywarden.h"
#include "tests/unit/support/fixture.h"

#define ALICE 2001
#define BOB   2002

struct fx {
	struct kw_test_fx *t;
	struct kw_config *cfg;
	struct kw_roles *rc;
};

static int
setup_config(void **state, const char *config)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f || kw_test_fx_new("cache", &f->t) != 0 || kw_test_fx_state(f->t) != 0 ||
	    kw_test_config(f->t, config, &f->cfg) != 0 || kw_roles_new(f->cfg, &f->rc) != 0 ||
	    kw_user_insert(f->t->state, ALICE, "alice", "root") != 0 ||
	    kw_grant_insert(f->t->state, ALICE, "reviewer", "root") != 0)
		return -1;
	*state = f;
	return 0;
}

static int
setup(void **state)
{
	return setup_config(state, "{}");
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	/* The cache watches the store: it goes first. */
	kw_roles_free(f->rc);
	kw_config_free(f->cfg);
	int r = kw_test_fx_free(f->t);
	free(f);
	return r;
}

static struct kw_cache_stats
stats(struct fx *f)
{
	struct kw_cache_stats s;

	kw_roles_stats(f->rc, &s);
	return s;
}

/* alice's verbs, joined ("read", "read,write", ""), and whether she is known. */
static int
alice_verbs(struct fx *f, char *out, size_t len)
{
	struct kw_known k;
	int r = kw_known_by_uid(f->rc, f->t->state, ALICE, KW_KNOWN_PERMS | KW_KNOWN_ROLES, &k);

	out[0] = '\0';
	if (r < 0)
		return r;
	for (size_t i = 0; i < k.n_perms; i++)
		snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? "," : "",
		    k.perms[i].verb);
	assert_true(json_is_array(k.roles));
	assert_string_equal(k.user.name, "alice");
	kw_known_clear(&k);
	return 0;
}

static void
hit_after_miss(void **state)
{
	struct fx *f = *state;
	char v[64];

	assert_int_equal(alice_verbs(f, v, sizeof(v)), 0);
	assert_string_equal(v, "read");
	assert_int_equal(stats(f).misses, 1);
	assert_int_equal(stats(f).hits, 0);
	assert_int_equal(alice_verbs(f, v, sizeof(v)), 0);
	assert_string_equal(v, "read");
	assert_int_equal(stats(f).hits, 1);
	assert_int_equal(stats(f).misses, 1);

	/* By name: the same user kept, so a hit. */
	struct kw_known k;
	assert_int_equal(kw_known_by_name(f->rc, f->t->state, "alice", 0, &k), 0);
	assert_int_equal(k.user.uid, ALICE);
	assert_null(k.perms);
	assert_null(k.roles);
	kw_known_clear(&k);
	assert_int_equal(stats(f).hits, 2);
}

static void
unknown_is_kept_too(void **state)
{
	struct fx *f = *state;
	struct kw_known k;

	assert_int_equal(kw_known_by_uid(f->rc, f->t->state, BOB, KW_KNOWN_PERMS, &k),
	    KW_ERR_NOT_FOUND);
	assert_int_equal(kw_known_by_uid(f->rc, f->t->state, BOB, KW_KNOWN_PERMS, &k),
	    KW_ERR_NOT_FOUND);
	assert_int_equal(stats(f).misses, 1);
	assert_int_equal(stats(f).hits, 1);
	/* A name no one holds is asked of the store each time, and never kept. */
	assert_int_equal(kw_known_by_name(f->rc, f->t->state, "bob", 0, &k), KW_ERR_NOT_FOUND);
	assert_int_equal(kw_known_by_name(f->rc, f->t->state, "bob", 0, &k), KW_ERR_NOT_FOUND);
	assert_int_equal(stats(f).misses, 3);
	assert_int_equal(stats(f).hits, 1);
	assert_int_equal(stats(f).kept, 1);
	/* ... until bob is registered. */
	assert_int_equal(kw_user_insert(f->t->state, BOB, "bob", "root"), 0);
	assert_int_equal(kw_known_by_uid(f->rc, f->t->state, BOB, 0, &k), 0);
	assert_string_equal(k.user.name, "bob");
	assert_int_equal(kw_known_by_name(f->rc, f->t->state, "bob", 0, &k), 0);
	assert_int_equal(k.user.uid, BOB);
}

/* Every write to users, grants or roles is seen by the next lookup. */
static void
writes_invalidate(void **state)
{
	struct fx *f = *state;
	struct kw_known k;
	char v[64];

	assert_int_equal(alice_verbs(f, v, sizeof(v)), 0);
	assert_int_equal(kw_grant_insert(f->t->state, ALICE, "developer", "root"), 0);
	assert_int_equal(alice_verbs(f, v, sizeof(v)), 0);
	assert_string_equal(v, "read,write,execute,read");
	assert_true(stats(f).drops >= 1);
	assert_int_equal(kw_grant_delete(f->t->state, ALICE, "reviewer"), 0);
	assert_int_equal(alice_verbs(f, v, sizeof(v)), 0);
	assert_string_equal(v, "read,write,execute");
	assert_int_equal(kw_grant_delete(f->t->state, ALICE, "developer"), 0);
	assert_int_equal(alice_verbs(f, v, sizeof(v)), 0);
	assert_string_equal(v, "");

	/* A role made from the CLI, granted, then its definition gone. */
	json_t *perms = json_pack("[s]", "admin:user/*");
	assert_int_equal(kw_stored_role_insert(f->t->state, "ops", perms, "root"), 0);
	json_decref(perms);
	assert_int_equal(kw_grant_insert(f->t->state, ALICE, "ops", "root"), 0);
	assert_int_equal(alice_verbs(f, v, sizeof(v)), 0);
	assert_string_equal(v, "admin");
	assert_int_equal(kw_stored_role_delete(f->t->state, "ops"), 0);
	assert_int_equal(alice_verbs(f, v, sizeof(v)), 0);
	assert_string_equal(v, "");

	/* Removed (and erased): no one by that uid or name. */
	assert_int_equal(kw_user_delete(f->t->state, ALICE, NULL), 0);
	assert_int_equal(kw_known_by_uid(f->rc, f->t->state, ALICE, 0, &k), KW_ERR_NOT_FOUND);
	assert_int_equal(kw_known_by_name(f->rc, f->t->state, "alice", 0, &k), KW_ERR_NOT_FOUND);
}

/* Not only the store's named functions: any statement that writes the tables. */
static void
any_writer_invalidates(void **state)
{
	struct fx *f = *state;
	char v[64];

	assert_int_equal(alice_verbs(f, v, sizeof(v)), 0);
	assert_int_equal(sqlite3_exec(f->t->state->db, "UPDATE grants SET role = 'admin' "
	    "WHERE uid = 2001", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(alice_verbs(f, v, sizeof(v)), 0);
	assert_string_equal(v, "*");
	/* A table the cache does not read from leaves it alone. */
	unsigned long long drops = stats(f).drops;
	assert_int_equal(kw_state_meta_set(f->t->state, "unrelated", "1"), 0);
	assert_int_equal(alice_verbs(f, v, sizeof(v)), 0);
	assert_int_equal(stats(f).drops, drops);
}

/* A change seen before it was rolled back leaves nothing behind. */
static void
rollback_leaves_nothing(void **state)
{
	struct fx *f = *state;
	struct kw_state *st = f->t->state;
	char v[64];

	assert_int_equal(alice_verbs(f, v, sizeof(v)), 0);
	/* The turn, and a request inside it (a savepoint), as the dispatcher runs them. */
	assert_int_equal(kw_state_turn_begin(st), 0);
	assert_int_equal(kw_state_request_begin(st), 0);
	assert_int_equal(kw_grant_insert(st, ALICE, "admin", "root"), 0);
	assert_int_equal(alice_verbs(f, v, sizeof(v)), 0);
	assert_string_equal(v, "*,read");
	kw_state_request_undo(st);
	assert_int_equal(alice_verbs(f, v, sizeof(v)), 0);
	assert_string_equal(v, "read");
	assert_int_equal(kw_state_turn_commit(st), 0);
	assert_int_equal(alice_verbs(f, v, sizeof(v)), 0);
	assert_string_equal(v, "read");

	/* The whole turn rolled back (its audit records failed). */
	assert_int_equal(kw_state_turn_begin(st), 0);
	assert_int_equal(kw_grant_insert(st, ALICE, "admin", "root"), 0);
	assert_int_equal(alice_verbs(f, v, sizeof(v)), 0);
	assert_string_equal(v, "*,read");
	kw_state_turn_rollback(st);
	assert_int_equal(alice_verbs(f, v, sizeof(v)), 0);
	assert_string_equal(v, "read");

	/* Kept again once committed: two lookups, one read. */
	unsigned long long misses = stats(f).misses;
	assert_int_equal(alice_verbs(f, v, sizeof(v)), 0);
	assert_int_equal(stats(f).misses, misses);
}

/* Names anyone can type are not kept; uids are, up to a bound. */
static void
bounded(void **state)
{
	struct fx *f = *state;
	struct kw_known k;
	char name[32];

	for (int i = 0; i < 3 * KW_KNOWN_MAX; i++) {
		snprintf(name, sizeof(name), "nobody%d", i);
		assert_int_equal(kw_known_by_name(f->rc, f->t->state, name, 0, &k), KW_ERR_NOT_FOUND);
		assert_int_equal(stats(f).kept, (size_t)(i < KW_KNOWN_MAX ? i : KW_KNOWN_MAX));
		assert_int_equal(kw_known_by_uid(f->rc, f->t->state, 100000 + i, 0, &k),
		    KW_ERR_NOT_FOUND);
		assert_true(stats(f).kept <= KW_KNOWN_MAX);
	}
	assert_int_equal(stats(f).kept, KW_KNOWN_MAX);
	/* Still right for whoever was pushed out. */
	assert_int_equal(kw_known_by_name(f->rc, f->t->state, "nobody0", 0, &k), KW_ERR_NOT_FOUND);
	assert_int_equal(kw_known_by_uid(f->rc, f->t->state, ALICE, 0, &k), 0);
	assert_string_equal(k.user.name, "alice");
}

/* One watch per store: a cache without one keeps nothing, and so is never stale. */
static void
second_watch_refused(void **state)
{
	struct fx *f = *state;
	static const char *const tables[] = { "users", NULL };
	struct kw_state_watch *w = NULL;
	char v[64];

	assert_int_equal(alice_verbs(f, v, sizeof(v)), 0);
	assert_int_equal(kw_state_watch_new(f->t->state, tables, &w), KW_ERR_BUSY);

	struct kw_roles *rc = f->rc;
	struct kw_known k;
	assert_int_equal(kw_roles_new(f->cfg, &f->rc), 0);
	assert_int_equal(kw_known_by_uid(f->rc, f->t->state, ALICE, 0, &k), 0);
	assert_int_equal(kw_known_by_uid(f->rc, f->t->state, ALICE, 0, &k), 0);
	assert_int_equal(stats(f).hits, 0);
	assert_int_equal(stats(f).kept, 0);
	kw_roles_free(f->rc);
	f->rc = rc;
	/* The first watch still sees changes. */
	assert_int_equal(kw_grant_insert(f->t->state, ALICE, "developer", "root"), 0);
	assert_int_equal(alice_verbs(f, v, sizeof(v)), 0);
	assert_string_equal(v, "read,write,execute,read");
}

static void
mfa_setting(void **state)
{
	struct fx *f = *state;
	struct kw_config *cfg = NULL;
	struct kw_roles *rc = NULL;

	assert_true(kw_roles_mfa_required(f->rc));
	assert_int_equal(kw_test_config(f->t, "{\"security\": {\"authentication\": {\"mfa\": "
	    "{\"required\": false}}}}", &cfg), 0);
	assert_int_equal(kw_roles_new(cfg, &rc), 0);
	assert_false(kw_roles_mfa_required(rc));
	kw_roles_free(rc);
	kw_config_free(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(hit_after_miss, setup, teardown),
		cmocka_unit_test_setup_teardown(unknown_is_kept_too, setup, teardown),
		cmocka_unit_test_setup_teardown(writes_invalidate, setup, teardown),
		cmocka_unit_test_setup_teardown(any_writer_invalidates, setup, teardown),
		cmocka_unit_test_setup_teardown(rollback_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(second_watch_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(mfa_setting, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
