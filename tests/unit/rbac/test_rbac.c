/*
 * test_rbac.c - the decision rules of kw_rbac_decide (rbac/rbac.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rbac/rbac.h"

static const struct kw_caller root = { .uid = 0, .gid = 0, .pid = 1, .user = "root" };
static const struct kw_caller alice = { .uid = 2001, .gid = 2001, .pid = 2, .user = "alice" };
/* alice on a broker of her own: it runs as uid 2001. */
static const struct kw_caller owner = { .uid = 2001, .gid = 2001, .pid = 4, .user = "alice",
    .owner = true };

static bool
decide(const struct kw_caller *caller, const char *subject, bool registered,
    const char *perms_json, const char *verb, const char *resource, char *why)
{
	json_t *perms = json_loads(perms_json, 0, NULL);
	struct kw_subject s = { .user = subject, .registered = registered };
	struct kw_perm *compiled = NULL;
	bool ok;

	assert_non_null(perms);
	assert_int_equal(kw_rbac_compile(perms, &compiled, &s.n_perms), 0);
	s.perms = compiled;
	why[0] = '\0';
	ok = kw_rbac_decide(caller, &s, verb, resource, why, 256);
	free(compiled);
	json_decref(perms);
	return ok;
}

static void
test_public_operations_need_nothing(void **state)
{
	char why[256];

	assert_true(decide(&alice, "alice", false, "[]", "", NULL, why));
	/* ... for oneself: asking on another's behalf needs root even there. */
	assert_false(decide(&alice, "bob", false, "[]", "", NULL, why));
	assert_string_equal(why, "acting for another user needs root");
	assert_true(decide(&root, "bob", false, "[]", "", NULL, why));
}

static void
test_root_may_do_everything_for_itself(void **state)
{
	char why[256];

	assert_true(decide(&root, "root", false, "[]", "admin", "user/alice", why));
	assert_true(decide(&root, "root", false, "[]", "write", "key/x", why));
}

static void
test_root_acting_for_a_user_gets_that_users_rights(void **state)
{
	char why[256];

	assert_true(decide(&root, "bob", true, "[\"read\"]", "read", "key/x", why));
	assert_false(decide(&root, "bob", true, "[\"read\"]", "write", "key/x", why));
	assert_non_null(strstr(why, "bob"));
	assert_false(decide(&root, "bob", false, "[]", "read", "key/x", why));
	assert_non_null(strstr(why, "not a keywarden user"));
}

static void
test_only_root_acts_for_others(void **state)
{
	char why[256];

	assert_false(decide(&alice, "bob", true, "[\"*\"]", "read", "key/x", why));
	assert_string_equal(why, "acting for another user needs root");
	/* The same rule says whom a refusal counts against (the dispatcher's charge). */
	assert_false(kw_rbac_may_act_for(&alice, "bob"));
	assert_true(kw_rbac_may_act_for(&alice, "alice"));
	assert_true(kw_rbac_may_act_for(&root, "bob"));
}

static void
test_unregistered_users_get_nothing(void **state)
{
	char why[256];

	/* Even permissions handed in by mistake do not count for an unknown user. */
	assert_false(decide(&alice, "alice", false, "[\"*\"]", "read", "key/x", why));
	assert_non_null(strstr(why, "alice is not a keywarden user"));
}

static void
test_permissions_decide_for_registered_users(void **state)
{
	char why[256];
	const char *reviewer = "[\"read\"]";
	const char *anth = "[\"read:key/anthropic*\"]";

	assert_true(decide(&alice, "alice", true, reviewer, "read", "key/anything", why));
	assert_false(decide(&alice, "alice", true, reviewer, "write", "key/anything", why));
	assert_string_equal(why, "no role of alice grants write on key/anything");
	assert_false(decide(&alice, "alice", true, reviewer, "admin", "user", why));
	assert_true(decide(&alice, "alice", true, anth, "read", "key/anthropic-prod", why));
	assert_false(decide(&alice, "alice", true, anth, "read", "key/openai", why));
	assert_true(decide(&alice, "alice", true, "[\"*\"]", "admin", "user/bob", why));
	assert_true(decide(&alice, "alice", true, "[\"admin:user/*\"]", "admin", "user/bob", why));
	assert_false(decide(&alice, "alice", true, "[\"admin:user/*\"]", "admin", "role/x", why));
	/* A narrowed permission never grants an operation on no particular resource. */
	assert_false(decide(&alice, "alice", true, anth, "read", NULL, why));
	assert_non_null(strstr(why, "this operation"));
}

static void
test_unparsable_stored_permissions_grant_nothing(void **state)
{
	char why[256];

	assert_false(decide(&alice, "alice", true, "[\"reed\", 7, \"read:[x]\"]", "read", "key/x", why));
	assert_true(decide(&alice, "alice", true, "[\"reed\", \"read\"]", "read", "key/x", why));
}

/* kw_rbac_within for subject holding perms_json, over want_json. */
static bool
within(const struct kw_caller *caller, const char *subject, const char *perms_json,
    const char *want_json, char *why)
{
	json_t *perms = json_loads(perms_json, 0, NULL), *want = json_loads(want_json, 0, NULL);
	struct kw_subject s = { .user = subject, .registered = true };
	struct kw_perm *compiled = NULL, *wanted = NULL;
	size_t n_want = 0;
	bool ok;

	assert_non_null(perms);
	assert_non_null(want);
	assert_int_equal(kw_rbac_compile(perms, &compiled, &s.n_perms), 0);
	assert_int_equal(kw_rbac_compile(want, &wanted, &n_want), 0);
	s.perms = compiled;
	why[0] = '\0';
	ok = kw_rbac_within(caller, &s, wanted, n_want, "user bob holds", why, 256);
	free(compiled);
	free(wanted);
	json_decref(perms);
	json_decref(want);
	return ok;
}

static void
test_within_own_permissions(void **state)
{
	char why[256];
	const char *lead = "[\"admin:role/team-*\", \"read:key/team-*\", \"write:key/team-a\"]";

	assert_true(within(&alice, "alice", lead, "[]", why));
	assert_true(within(&alice, "alice", lead, "[\"read:key/team-b\", \"write:key/team-a\"]", why));
	assert_true(within(&alice, "alice", lead, "[\"admin:role/team-sub*\"]", why));
	assert_false(within(&alice, "alice", lead, "[\"read:key/team-b\", \"*\"]", why));
	assert_string_equal(why, "user bob holds \"*\", beyond what alice holds");
	assert_false(within(&alice, "alice", lead, "[\"admin:role/*\"]", why));
	assert_string_equal(why, "user bob holds \"admin:role/*\", beyond what alice holds");
	assert_false(within(&alice, "alice", lead, "[\"read\"]", why));
	assert_false(within(&alice, "alice", "[]", "[\"read:key/x\"]", why));
	assert_true(within(&alice, "alice", "[\"*\"]", "[\"*\", \"read\", \"admin:user/x\"]", why));
}

static void
test_within_root_unlimited(void **state)
{
	char why[256];

	/* uid 0 for itself holds no role and is not limited ... */
	assert_true(within(&root, "root", "[]", "[\"*\"]", why));
	/* ... but root acting for a user is limited to that user's rights. */
	assert_false(within(&root, "bob", "[\"read\"]", "[\"*\"]", why));
	assert_non_null(strstr(why, "beyond what bob holds"));
	/* A user named root who is not uid 0 is limited like anyone. */
	static const struct kw_caller fake = { .uid = 2005, .gid = 2005, .pid = 3, .user = "root" };
	assert_false(within(&fake, "root", "[]", "[\"read\"]", why));
}

static void
test_owner_administers_and_acts_for_others(void **state)
{
	char why[256];

	/* Unregistered and without a role, the owner administers its broker ... */
	assert_true(decide(&owner, "alice", false, "[]", "admin", "user/alice", why));
	assert_true(decide(&owner, "alice", false, "[]", "admin", "role/ops", why));
	assert_true(kw_rbac_owner_asks(&owner, "admin", "alice"));
	/* ... and acts for others, with their rights, like root. */
	assert_true(kw_rbac_may_act_for(&owner, "bob"));
	assert_true(kw_rbac_owner_asks(&owner, "read", "bob"));
	assert_true(decide(&owner, "bob", true, "[\"read\"]", "read", "key/x", why));
	assert_false(decide(&owner, "bob", true, "[\"read\"]", "write", "key/x", why));
	assert_non_null(strstr(why, "no role of bob"));
	/* Its own keys it uses through its roles (and a session), as any user does. */
	assert_false(kw_rbac_owner_asks(&owner, "read", "alice"));
	assert_false(decide(&owner, "alice", false, "[]", "read", "key/x", why));
	assert_non_null(strstr(why, "alice is not a keywarden user"));
	assert_false(decide(&owner, "alice", true, "[\"read\"]", "write", "key/x", why));
	assert_true(decide(&owner, "alice", true, "[\"write\"]", "write", "key/x", why));
	/* What it hands out is not capped by its own roles. */
	assert_true(within(&owner, "alice", "[]", "[\"*\"]", why));
	/* The same uid on someone else's broker is an ordinary user. */
	assert_false(kw_rbac_owner_asks(&alice, "admin", "alice"));
	assert_false(decide(&alice, "alice", false, "[]", "admin", "user/alice", why));
	assert_false(within(&alice, "alice", "[]", "[\"read\"]", why));
}

static void
test_root_owns_every_broker(void **state)
{
	char why[256];

	/* On a personal broker root keeps its powers: it owns the machine. */
	assert_true(kw_rbac_owner_asks(&root, "read", "root"));
	assert_true(kw_rbac_owner_asks(&root, "write", "alice"));
	assert_true(decide(&root, "root", false, "[]", "write", "key/x", why));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_public_operations_need_nothing),
		cmocka_unit_test(test_root_may_do_everything_for_itself),
		cmocka_unit_test(test_root_acting_for_a_user_gets_that_users_rights),
		cmocka_unit_test(test_only_root_acts_for_others),
		cmocka_unit_test(test_unregistered_users_get_nothing),
		cmocka_unit_test(test_permissions_decide_for_registered_users),
		cmocka_unit_test(test_unparsable_stored_permissions_grant_nothing),
		cmocka_unit_test(test_within_own_permissions),
		cmocka_unit_test(test_within_root_unlimited),
		cmocka_unit_test(test_owner_administers_and_acts_for_others),
		cmocka_unit_test(test_root_owns_every_broker),
	};

	return cmocka_run_group_tests_name("rbac", tests, NULL, NULL);
}
