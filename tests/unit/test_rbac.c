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
	};

	return cmocka_run_group_tests_name("rbac", tests, NULL, NULL);
}
