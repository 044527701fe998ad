/*
 * test_dispatch.c - the dispatcher and the group commit (broker/dispatch/)
 * on real stores in a private directory, without the daemon: frames go in
 * through kw_dispatch, replies come out of the turn's batch.
 *
 * A small request table of its own exercises what the features' tables
 * rely on: the handshake, lookup, rbac through the table's verb, state
 * changes kept only with their record, ordinary requests, observers,
 * after-commit work, timers and the worker.
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/accounts/cache.h"
#include "broker/accounts/roles.h"
#include "broker/audit/audit.h"
#include "broker/dispatch/batch.h"
#include "broker/dispatch/dispatch.h"
#include "broker/store/state.h"
#include "broker/store/users.h"
#include "common/errors.h"
#include "tests/unit/support/fixture.h"

struct env {
	struct kw_test_fx *fx;
	struct kw_services svc;
	struct kw_dispatcher *d;
	struct kw_peer root, user;
};

static int after_runs;
static int work_runs;

/* ---- a request table of the test's own -------------------------------- */

static int
op_ping(struct kw_call *call, json_t **ret_result)
{
	*ret_result = json_pack("{s:b}", "pong", 1);
	return 0;
}

static void
after(struct kw_services *svc)
{
	after_runs++;
}

/* Writes args.v to the store; fails after writing when args.fail is true. */
static int
op_write(struct kw_call *call, json_t **ret_result)
{
	int r = kw_state_meta_set(call->svc->state, "t", kw_arg_str(call->args, "v"));

	if (r < 0)
		return r;
	call->after_commit = after;
	if (json_is_true(json_object_get(call->args, "fail"))) {
		snprintf(call->msg, sizeof(call->msg), "asked to fail");
		return KW_ERR_INVALID;
	}
	*ret_result = json_object();
	return 0;
}

static void
work(void *ctx)
{
	/* The worker thread: only the context is touched here. */
	*(int *)ctx = 42;
	__atomic_add_fetch(&work_runs, 1, __ATOMIC_SEQ_CST);
}

static int
finish(struct kw_call *call, void *ctx, json_t **ret_result)
{
	json_object_set_new(call->meta, "answer", json_integer(*(int *)ctx));
	*ret_result = json_pack("{s:i}", "answer", *(int *)ctx);
	return 0;
}

static int
op_slow(struct kw_call *call, json_t **ret_result)
{
	int *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		return KW_ERR_NOMEM;
	return kw_call_defer(call, work, finish, free, ctx);
}

/* A wrong code: refused, and the refusal itself changes state (it counts). */
static int
op_counted(struct kw_call *call, json_t **ret_result)
{
	int r = kw_state_meta_set(call->svc->state, "t", kw_arg_str(call->args, "v"));

	call->keep_on_error = true;
	snprintf(call->msg, sizeof(call->msg), "wrong code");
	return r < 0 ? r : KW_ERR_DENIED;
}

static const struct kw_op test_ops[] = {
	{ .name = "t.counted", .flags = KW_OP_WRITES, .fn = op_counted },
	{ .name = "t.ping", .fn = op_ping },
	{ .name = "t.quiet", .flags = KW_OP_ORDINARY, .fn = op_ping },
	{ .name = "t.write", .flags = KW_OP_WRITES, .fn = op_write },
	{ .name = "t.admin", .verb = KW_VERB_ADMIN, .resource = "thing", .arg = "name",
	    .arg_kind = KW_NAME_KEY, .fn = op_ping },
	{ .name = "t.slow", .fn = op_slow },
	{ .name = "t.read", .verb = KW_VERB_READ, .resource = "key", .arg = "name",
	    .arg_kind = KW_NAME_KEY, .acts_as = "user", .fn = op_ping },
	{ .name = "t.for", .acts_as = "user", .fn = op_ping },
	/* Delegated administration's ceiling (ceiling.c), from the table. */
	{ .name = "t.lock", .verb = KW_VERB_ADMIN, .resource = "user", .arg = "user",
	    .arg_kind = KW_NAME_USER, .flags = KW_OP_TARGET_NOT_STRONGER, .fn = op_ping },
	{ .name = "t.mkrole", .verb = KW_VERB_ADMIN, .resource = "role", .arg = "role",
	    .arg_kind = KW_NAME_ROLE, .perms = "permissions", .fn = op_ping },
	{ .name = "t.give", .verb = KW_VERB_ADMIN, .resource = "user", .arg = "user",
	    .arg_kind = KW_NAME_USER, .roles = "roles", .fn = op_ping },
};

/* ---- set-up --------------------------------------------------------------- */

static int
open_env(struct env *e, const char *config)
{
	struct kw_audit_options ao = { .include_user = true, .include_context = true };
	char err[512];

	if (kw_test_fx_new("dispatch", &e->fx) != 0 || kw_test_fx_state(e->fx) != 0 ||
	    kw_test_config(e->fx, config, &e->svc.cfg) != 0)
		return -1;
	e->svc.state = e->fx->state;
	e->svc.data_dir = e->fx->dir;
	if (kw_audit_open(e->fx->dir, &ao, &e->svc.audit, err, sizeof(err)) != 0 ||
	    kw_roles_new(e->svc.cfg, &e->svc.roles) != 0 ||
	    kw_dispatcher_new(&e->svc, 5, &e->d) != 0 ||
	    kw_dispatch_add_ops(e->d, test_ops, KW_ELEMENTSOF(test_ops)) != 0) {
		fprintf(stderr, "open_env: %s\n", err);
		return -1;
	}
	e->root.caller = (struct kw_caller){ .uid = 0, .gid = 0, .pid = 1, .user = e->root.user };
	snprintf(e->root.user, sizeof(e->root.user), "root");
	e->user.caller = (struct kw_caller){ .uid = 4242, .gid = 4242, .pid = 2,
	    .user = e->user.user };
	snprintf(e->user.user, sizeof(e->user.user), "nobody-kw");
	after_runs = 0;
	return 0;
}

static int
setup_config(void **state, const char *config)
{
	struct env *e = calloc(1, sizeof(*e));

	if (!e || open_env(e, config) != 0)
		return -1;
	*state = e;
	return 0;
}

static int
setup(void **state)
{
	return setup_config(state, "{}");
}

static int
setup_no_mfa(void **state)
{
	return setup_config(state, "{\"security\": {\"authentication\": {\"mfa\": "
	    "{\"required\": false}}, \"audit\": {\"logActions\": [\"t.q*\"]}}}");
}

/* Refusals repeated within an hour are counted after the first two. */
static int
setup_refusals(void **state)
{
	return setup_config(state, "{\"security\": {\"authentication\": {\"mfa\": "
	    "{\"required\": false}}, \"audit\": {\"refusalWindow\": 3600, "
	    "\"refusalBurst\": 2}}}");
}

static int
teardown(void **state)
{
	struct env *e = *state;

	kw_dispatcher_free(e->d);
	kw_roles_free(e->svc.roles);
	kw_audit_close(e->svc.audit);
	kw_config_free(e->svc.cfg);
	int r = kw_test_fx_free(e->fx);
	free(e);
	return r == 0 ? 0 : -1;
}

/* ---- helpers ---------------------------------------------------------------- */

/* Send one request (JSON text); returns whether the connection is to close. */
static bool
send_text(struct env *e, struct kw_peer *p, const char *text)
{
	bool close = false;

	kw_dispatch(e->d, p, (const uint8_t *)text, strlen(text), &close);
	return close;
}

/* End the turn: commit and hand over the replies (a new array; each {peer, reply}). */
static json_t *
end_turn(struct env *e, int *ret_commit)
{
	struct kw_batch *t = kw_dispatch_batch(e->d);
	struct kw_batch_entry *ent;
	json_t *out = json_array();
	size_t n;
	int r = kw_batch_commit(t);

	if (ret_commit)
		*ret_commit = r;
	ent = kw_batch_entries(t, &n);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(out, json_pack("{s:b, s:O, s:b}", "root",
		    ent[i].peer == &e->root, "reply", ent[i].reply, "close", ent[i].close));
	kw_batch_clear(t);
	return out;
}

/* The only reply of a turn. */
static json_t *
one_reply(struct env *e)
{
	json_t *all = end_turn(e, NULL);
	json_t *reply;

	assert_int_equal(json_array_size(all), 1);
	reply = json_incref(json_object_get(json_array_get(all, 0), "reply"));
	json_decref(all);
	return reply;
}

static const char *
error_code(json_t *reply)
{
	return json_string_value(json_object_get(json_object_get(reply, "error"), "code"));
}

static long long
records(struct env *e)
{
	char hex[KW_AUDIT_HASH_HEX];
	long long seq;

	kw_audit_head(e->svc.audit, &seq, hex);
	return seq;
}

static void
greet(struct env *e, struct kw_peer *p)
{
	json_t *r;

	assert_false(send_text(e, p, "{\"id\": 1, \"op\": \"hello\", \"args\": {\"version\": 1}}"));
	r = one_reply(e);
	assert_true(json_is_true(json_object_get(r, "ok")));
	assert_true(p->greeted);
	json_decref(r);
}

/* ---- tests ------------------------------------------------------------------- */

static void
test_handshake_comes_first(void **state)
{
	struct env *e = *state;
	long long before = records(e);
	json_t *r;

	assert_true(send_text(e, &e->root, "{\"id\": 7, \"op\": \"t.ping\"}"));
	r = one_reply(e);
	assert_string_equal(error_code(r), "handshake_required");
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 7);
	assert_int_equal(records(e), before + 1);	/* refusals are always recorded */
	json_decref(r);
}

static void
test_table_lookup(void **state)
{
	struct env *e = *state;
	json_t *r;

	greet(e, &e->root);
	assert_false(send_text(e, &e->root, "{\"id\": 2, \"op\": \"t.nope\"}"));
	r = one_reply(e);
	assert_string_equal(error_code(r), "unknown_op");
	json_decref(r);
	assert_false(send_text(e, &e->root, "{\"id\": 3, \"op\": \"t.ping\"}"));
	r = one_reply(e);
	assert_true(json_is_true(json_object_get(json_object_get(r, "result"), "pong")));
	json_decref(r);
	/* A name is served once: a second feature cannot take it over. */
	assert_int_equal(kw_dispatch_add_ops(e->d, test_ops, 1), KW_ERR_INVALID);
	/* A malformed frame is refused and recorded, the connection stays. */
	assert_false(send_text(e, &e->root, "{not json"));
	r = one_reply(e);
	assert_string_equal(error_code(r), "bad_json");
	json_decref(r);
}

static void
test_verb_and_session_from_the_table(void **state)
{
	struct env *e = *state;
	json_t *r;

	greet(e, &e->user);
	/* MFA is required by default: a permissioned request needs a session. */
	send_text(e, &e->user, "{\"id\": 4, \"op\": \"t.admin\", \"args\": {\"name\": \"x\"}}");
	r = one_reply(e);
	assert_string_equal(error_code(r), "session_required");
	json_decref(r);
	/* The argument naming the resource is checked against its kind. */
	send_text(e, &e->user, "{\"id\": 5, \"op\": \"t.admin\", \"args\": {\"name\": \"-x\"}}");
	r = one_reply(e);
	assert_string_equal(error_code(r), "bad_request");
	json_decref(r);
	/* A request with no verb is anyone's. */
	send_text(e, &e->user, "{\"id\": 6, \"op\": \"t.ping\"}");
	r = one_reply(e);
	assert_true(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
	greet(e, &e->root);
	send_text(e, &e->root, "{\"id\": 7, \"op\": \"t.admin\", \"args\": {\"name\": \"x\"}}");
	r = one_reply(e);
	assert_true(json_is_true(json_object_get(r, "ok")));
	json_decref(r);
}

/* The code of r's error, or "ok"; r is released. */
static const char *
outcome(json_t *r)
{
	static char code[64];

	snprintf(code, sizeof(code), "%s", json_is_true(json_object_get(r, "ok")) ? "ok" :
	    error_code(r));
	json_decref(r);
	return code;
}

static void
test_the_brokers_own_uid_administers_it(void **state)
{
	struct env *e = *state;

	/* A personal broker: it runs as the user's uid (4242), who is not registered. */
	e->svc.uid = e->user.caller.uid;
	greet(e, &e->user);
	/* Administering takes neither a session nor a role, as for root ... */
	send_text(e, &e->user, "{\"id\": 2, \"op\": \"t.admin\", \"args\": {\"name\": \"x\"}}");
	assert_string_equal(outcome(one_reply(e)), "ok");
	assert_true(e->user.caller.owner);
	/* ... nor does acting for another user ... */
	send_text(e, &e->user, "{\"id\": 3, \"op\": \"t.for\", \"args\": {\"user\": \"bob\"}}");
	assert_string_equal(outcome(one_reply(e)), "ok");
	/* ... and another user's rights decide what it may do for them (bob has none) ... */
	send_text(e, &e->user, "{\"id\": 3, \"op\": \"t.read\", \"args\": {\"name\": \"x\", "
	    "\"user\": \"bob\"}}");
	assert_string_equal(outcome(one_reply(e)), "denied");
	/* ... but its own keys take a session and a role, as anyone's do. */
	send_text(e, &e->user, "{\"id\": 4, \"op\": \"t.read\", \"args\": {\"name\": \"x\"}}");
	assert_string_equal(outcome(one_reply(e)), "session_required");
	/* The same uid on a broker run by someone else owns nothing. */
	e->svc.uid = 31337;
	send_text(e, &e->user, "{\"id\": 5, \"op\": \"t.admin\", \"args\": {\"name\": \"x\"}}");
	assert_string_equal(outcome(one_reply(e)), "session_required");
	send_text(e, &e->user, "{\"id\": 6, \"op\": \"t.for\", \"args\": {\"user\": \"bob\"}}");
	assert_string_equal(outcome(one_reply(e)), "denied");
	assert_false(e->user.caller.owner);
	/* Root keeps its powers on a broker it does not run as. */
	greet(e, &e->root);
	send_text(e, &e->root, "{\"id\": 7, \"op\": \"t.read\", \"args\": {\"name\": \"x\"}}");
	assert_string_equal(outcome(one_reply(e)), "ok");
}

static void
test_rbac_denies_the_unregistered(void **state)
{
	struct env *e = *state;
	json_t *r;

	greet(e, &e->user);
	send_text(e, &e->user, "{\"id\": 4, \"op\": \"t.admin\", \"args\": {\"name\": \"x\"}}");
	r = one_reply(e);
	assert_string_equal(error_code(r), "denied");
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(r, "error"),
	    "message")), "not a keywarden user"));
	json_decref(r);
}

static void
test_ordinary_requests_follow_log_actions(void **state)
{
	struct env *e = *state;
	long long before;
	json_t *all;

	greet(e, &e->root);
	/* setup_no_mfa lists "t.q*": t.quiet is recorded there, hello is not. */
	before = records(e);
	send_text(e, &e->root, "{\"id\": 8, \"op\": \"t.quiet\"}");
	json_decref(end_turn(e, NULL));
	assert_int_equal(records(e), before + 1);
	before = records(e);
	send_text(e, &e->root, "{\"id\": 9, \"op\": \"hello\", \"args\": {\"version\": 1}}");
	all = end_turn(e, NULL);
	/* A second hello is refused, and a refusal is always recorded. */
	assert_string_equal(error_code(json_object_get(json_array_get(all, 0), "reply")),
	    "bad_request");
	assert_int_equal(records(e), before + 1);
	json_decref(all);
}

static void
test_ordinary_requests_unrecorded_by_default(void **state)
{
	struct env *e = *state;
	long long before;

	greet(e, &e->root);
	before = records(e);
	send_text(e, &e->root, "{\"id\": 8, \"op\": \"t.quiet\"}");
	json_decref(end_turn(e, NULL));
	assert_int_equal(records(e), before);
	send_text(e, &e->root, "{\"id\": 9, \"op\": \"t.ping\"}");
	json_decref(end_turn(e, NULL));
	assert_int_equal(records(e), before + 1);
}

static void
test_changes_land_only_with_their_record(void **state)
{
	struct env *e = *state;
	char v[16];
	json_t *all;
	int rc;

	greet(e, &e->root);
	send_text(e, &e->root, "{\"id\": 1, \"op\": \"t.write\", \"args\": {\"v\": \"1\"}}");
	/* Two requests of one turn asking for the same follow-up: it runs once. */
	send_text(e, &e->root, "{\"id\": 2, \"op\": \"t.write\", \"args\": {\"v\": \"2\"}}");
	all = end_turn(e, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(json_array_size(all), 2);
	json_decref(all);
	assert_int_equal(after_runs, 1);
	assert_int_equal(kw_state_meta_get(e->svc.state, "t", v, sizeof(v)), 0);
	assert_string_equal(v, "2");

	/* A handler that fails after writing leaves nothing. */
	send_text(e, &e->root, "{\"id\": 3, \"op\": \"t.write\", \"args\": {\"v\": \"3\", "
	    "\"fail\": true}}");
	json_t *r = one_reply(e);
	assert_string_equal(error_code(r), "invalid_argument");
	json_decref(r);
	assert_int_equal(kw_state_meta_get(e->svc.state, "t", v, sizeof(v)), 0);
	assert_string_equal(v, "2");

	/* An audit store that drops the turn: every reply refused, no change, no follow-up. */
	after_runs = 0;
	kw_batch_enter(kw_dispatch_batch(e->d));
	kw_dispatch_batch(e->d)->audit_failed = true;
	send_text(e, &e->root, "{\"id\": 4, \"op\": \"t.write\", \"args\": {\"v\": \"4\"}}");
	send_text(e, &e->root, "{\"id\": 5, \"op\": \"t.ping\"}");
	all = end_turn(e, &rc);
	assert_int_equal(rc, KW_ERR_AUDIT);
	for (size_t i = 0; i < json_array_size(all); i++)
		assert_string_equal(error_code(json_object_get(json_array_get(all, i), "reply")),
		    "audit_unavailable");
	json_decref(all);
	assert_int_equal(after_runs, 0);
	assert_int_equal(kw_state_meta_get(e->svc.state, "t", v, sizeof(v)), 0);
	assert_string_equal(v, "2");
}

/* For t.lock, t.mkrole and t.give as the user (useradmin) and as root: "ok" or the
   refusal's message. */
static char *
ask(struct env *e, struct kw_peer *p, const char *op, const char *args)
{
	char text[512];
	json_t *r;
	char *out;

	snprintf(text, sizeof(text), "{\"id\": 9, \"op\": \"%s\", \"args\": %s}", op, args);
	send_text(e, p, text);
	r = one_reply(e);
	out = strdup(json_is_true(json_object_get(r, "ok")) ? "ok" :
	    json_string_value(json_object_get(json_object_get(r, "error"), "message")));
	if (strcmp(out, "ok") != 0)
		assert_string_equal(error_code(r), "denied");
	json_decref(r);
	return out;
}

#define ASK_OK(e, p, op, args) do { \
	char *m_ = ask(e, p, op, args); \
	assert_string_equal(m_, "ok"); \
	free(m_); \
} while (0)

#define ASK_DENIED(e, p, op, args, part) do { \
	char *m_ = ask(e, p, op, args); \
	if (!strstr(m_, part)) \
		fail_msg("%s %s: \"%s\" lacks \"%s\"", op, args, m_, part); \
	free(m_); \
} while (0)

static int
setup_delegated(void **state)
{
	struct env *e;

	if (setup_config(state, "{\"security\": {\"authentication\": {\"mfa\": "
	    "{\"required\": false}}, \"authorization\": {\"rbac\": {\"roles\": "
	    "{\"useradmin\": {\"permissions\": [\"admin:user/*\", \"admin:role/*\", "
	    "\"read\"]}}}}}}") != 0)
		return -1;
	e = *state;
	/* The peer is a user admin; bob holds admin ("*"), carol reviewer ("read"). */
	if (kw_user_insert(e->svc.state, 4242, "nobody-kw", "root") != 0 ||
	    kw_grant_insert(e->svc.state, 4242, "useradmin", "root") != 0 ||
	    kw_user_insert(e->svc.state, 5001, "bob", "root") != 0 ||
	    kw_grant_insert(e->svc.state, 5001, "admin", "root") != 0 ||
	    kw_user_insert(e->svc.state, 5002, "carol", "root") != 0 ||
	    kw_grant_insert(e->svc.state, 5002, "reviewer", "root") != 0)
		return -1;
	return 0;
}

static void
test_delegated_admin_stays_within_her_rights(void **state)
{
	struct env *e = *state;

	greet(e, &e->user);
	greet(e, &e->root);
	/* The user acted on holds nothing she lacks: a stronger one is refused. */
	ASK_DENIED(e, &e->user, "t.lock", "{\"user\": \"bob\"}",
	    "user bob holds \"*\", beyond what nobody-kw holds");
	ASK_OK(e, &e->user, "t.lock", "{\"user\": \"carol\"}");
	ASK_OK(e, &e->user, "t.lock", "{\"user\": \"nobody-kw\"}");
	ASK_OK(e, &e->user, "t.lock", "{\"user\": \"unknown\"}");	/* the handler's call */
	/* A new role's permissions. */
	ASK_DENIED(e, &e->user, "t.mkrole", "{\"role\": \"x\", \"permissions\": [\"read\", \"*\"]}",
	    "the new role would grant \"*\"");
	ASK_DENIED(e, &e->user, "t.mkrole", "{\"role\": \"x\", \"permissions\": [\"write\"]}",
	    "\"write\", beyond");
	ASK_OK(e, &e->user, "t.mkrole", "{\"role\": \"x\", \"permissions\": [\"read:key/a\", "
	    "\"admin:user/team-*\"]}");
	/* Each role handed out, named in the refusal. */
	ASK_OK(e, &e->user, "t.give", "{\"user\": \"carol\", \"roles\": [\"reviewer\"]}");
	ASK_OK(e, &e->user, "t.give", "{\"user\": \"carol\", \"roles\": \"gone\"}");
	ASK_DENIED(e, &e->user, "t.give", "{\"user\": \"carol\", \"roles\": [\"reviewer\", "
	    "\"developer\"]}", "role developer grants \"write\"");
	ASK_DENIED(e, &e->user, "t.give", "{\"user\": \"carol\", \"roles\": \"admin\"}",
	    "role admin grants \"*\"");
	/* root is not limited. */
	ASK_OK(e, &e->root, "t.lock", "{\"user\": \"bob\"}");
	ASK_OK(e, &e->root, "t.mkrole", "{\"role\": \"x\", \"permissions\": [\"*\"]}");
	ASK_OK(e, &e->root, "t.give", "{\"user\": \"carol\", \"roles\": \"admin\"}");
}

struct seen {
	int begins, refusals, ends, landed, failing, recovered;
	char last_user[65];
};

static void on_begin(void *data) { ((struct seen *)data)->begins++; }
static void
on_refused(void *data, const struct kw_batch_refusal *rf)
{
	struct seen *s = data;

	s->refusals++;
	snprintf(s->last_user, sizeof(s->last_user), "%s", rf->user);
}
static void
on_end(void *data, bool landed)
{
	struct seen *s = data;

	s->ends++;
	s->landed += landed;
}
static void
on_audit(void *data, const char *why)
{
	struct seen *s = data;

	if (why)
		s->failing++;
	else
		s->recovered++;
}

static void
test_observers_see_each_turn(void **state)
{
	struct env *e = *state;
	struct seen s = { 0 };
	const struct kw_batch_observer o = { .turn_begin = on_begin, .refused = on_refused,
	    .turn_end = on_end, .audit_state = on_audit, .data = &s };

	assert_int_equal(kw_batch_observe(kw_dispatch_batch(e->d), &o), 0);
	greet(e, &e->user);
	assert_int_equal(s.begins, 1);
	assert_int_equal(s.ends, 1);
	assert_int_equal(s.landed, 1);
	/* Denied: the observer hears whom it concerned, before the commit. */
	send_text(e, &e->user, "{\"id\": 2, \"op\": \"t.admin\", \"args\": {\"name\": \"x\"}}");
	json_decref(end_turn(e, NULL));
	assert_int_equal(s.refusals, 1);
	assert_string_equal(s.last_user, "nobody-kw");
	/* A failing store, then one that works again: each said once. */
	kw_batch_enter(kw_dispatch_batch(e->d));
	kw_dispatch_batch(e->d)->audit_failed = true;
	send_text(e, &e->user, "{\"id\": 3, \"op\": \"t.ping\"}");
	json_decref(end_turn(e, NULL));
	assert_int_equal(s.failing, 1);
	assert_int_equal(s.landed, 2);	/* that turn did not land */
	send_text(e, &e->user, "{\"id\": 4, \"op\": \"t.ping\"}");
	json_decref(end_turn(e, NULL));
	assert_int_equal(s.failing, 1);
	assert_int_equal(s.recovered, 1);
	assert_int_equal(s.landed, 3);
}

static void
test_forgotten_peer_gets_nothing(void **state)
{
	struct env *e = *state;
	long long before;
	json_t *all;

	greet(e, &e->root);
	before = records(e);
	send_text(e, &e->root, "{\"id\": 1, \"op\": \"t.ping\"}");
	assert_int_equal(e->root.pending, 1);
	kw_dispatch_forget_peer(e->d, &e->root);
	all = end_turn(e, NULL);
	assert_false(json_is_true(json_object_get(json_array_get(all, 0), "root")));
	json_decref(all);
	/* Gone before the reply, still on the record. */
	assert_int_equal(records(e), before + 1);
}

struct ticker {
	int due, runs;
};

static int ticker_due(void *data) { return ((struct ticker *)data)->due; }
static void ticker_run(void *data) { ((struct ticker *)data)->runs++; }

static void
test_timers_run_when_due(void **state)
{
	struct env *e = *state;
	struct ticker a = { .due = 5000 }, b = { .due = 250 };

	assert_int_equal(kw_dispatch_timers_due_ms(e->d), -1);
	assert_int_equal(kw_dispatch_add_timer(e->d, &(struct kw_timer){ .name = "a",
	    .due_ms = ticker_due, .run = ticker_run, .data = &a }), 0);
	assert_int_equal(kw_dispatch_add_timer(e->d, &(struct kw_timer){ .name = "b",
	    .due_ms = ticker_due, .run = ticker_run, .data = &b }), 0);
	assert_int_equal(kw_dispatch_timers_due_ms(e->d), 250);
	kw_dispatch_run_timers(e->d);
	assert_int_equal(a.runs + b.runs, 0);
	b.due = 0;
	assert_int_equal(kw_dispatch_timers_due_ms(e->d), 0);
	kw_dispatch_run_timers(e->d);
	assert_int_equal(a.runs, 0);
	assert_int_equal(b.runs, 1);
}

/* Wait for the worker's eventfd, then collect. */
static void
collect(struct env *e)
{
	struct pollfd pfd = { .fd = kw_dispatch_worker_fd(e->d), .events = POLLIN };

	assert_int_equal(poll(&pfd, 1, 10000), 1);
	kw_dispatch_worker_drain(e->d);
}

static void
test_deferred_requests_answer_later(void **state)
{
	struct env *e = *state;
	long long before;
	json_t *all, *r;

	greet(e, &e->root);
	before = records(e);
	send_text(e, &e->root, "{\"id\": 11, \"op\": \"t.slow\"}");
	all = end_turn(e, NULL);
	/* Nothing yet: the connection waits, and its next request is not read. */
	assert_int_equal(json_array_size(all), 0);
	json_decref(all);
	assert_true(e->root.deferred);
	assert_int_equal(e->root.pending, 1);
	assert_int_equal(records(e), before);
	collect(e);
	assert_false(e->root.deferred);
	r = one_reply(e);
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 11);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "result"),
	    "answer")), 42);
	json_decref(r);
	assert_int_equal(e->root.pending, 0);
	assert_int_equal(records(e), before + 1);
}

static void
test_deferred_request_recorded_without_its_client(void **state)
{
	struct env *e = *state;
	long long before;
	json_t *all;

	greet(e, &e->root);
	before = records(e);
	send_text(e, &e->root, "{\"id\": 12, \"op\": \"t.slow\"}");
	json_decref(end_turn(e, NULL));
	kw_dispatch_forget_peer(e->d, &e->root);
	collect(e);
	all = end_turn(e, NULL);
	assert_int_equal(json_array_size(all), 0);
	json_decref(all);
	assert_int_equal(records(e), before + 1);
}

/* The audit record with sequence number seq, as the query returns it (new reference). */
static json_t *
record_at(struct env *e, long long seq)
{
	struct kw_audit_filter f = { .after = seq - 1, .limit = 1 };
	json_t *res = NULL, *rec;

	assert_int_equal(kw_audit_query(e->svc.audit, &f, &res), 0);
	rec = json_incref(json_array_get(json_object_get(res, "records"), 0));
	json_decref(res);
	assert_non_null(rec);
	assert_int_equal(json_integer_value(json_object_get(rec, "seq")), seq);
	return rec;
}

static void
test_repeated_refusals_are_counted(void **state)
{
	struct env *e = *state;
	struct seen s = { 0 };
	const struct kw_batch_observer o = { .refused = on_refused, .data = &s };
	long long before;
	json_t *all, *rec, *meta;

	assert_int_equal(kw_batch_observe(kw_dispatch_batch(e->d), &o), 0);
	greet(e, &e->user);
	greet(e, &e->root);
	before = records(e);
	/* Ten identical refusals: each answered, two recorded, all seen by observers. */
	for (int i = 0; i < 10; i++)
		send_text(e, &e->user, "{\"id\": 5, \"op\": \"t.admin\", \"args\": {\"name\": \"x\"}}");
	all = end_turn(e, NULL);
	assert_int_equal(json_array_size(all), 10);
	for (size_t i = 0; i < 10; i++)
		assert_string_equal(error_code(json_object_get(json_array_get(all, i), "reply")),
		    "denied");
	json_decref(all);
	assert_int_equal(records(e), before + 2);
	assert_int_equal(s.refusals, 10);
	/* Another error is another key: recorded. */
	send_text(e, &e->user, "{\"id\": 6, \"op\": \"t.admin\", \"args\": {\"name\": \"-\"}}");
	json_decref(end_turn(e, NULL));
	assert_int_equal(records(e), before + 3);
	/* Root's refusals are never counted: each names who tried. */
	for (int i = 0; i < 4; i++)
		send_text(e, &e->root, "{\"id\": 7, \"op\": \"t.nope\"}");
	json_decref(end_turn(e, NULL));
	assert_int_equal(records(e), before + 7);
	assert_int_equal(kw_dispatch_timers_due_ms(e->d) > 0, true);

	/* A summary whose turn does not land is counted again ... */
	kw_dispatch_flush(e->d);
	kw_dispatch_batch(e->d)->audit_failed = true;
	json_decref(end_turn(e, NULL));
	assert_int_equal(records(e), before + 7);
	/* ... and lands with the next. */
	kw_dispatch_flush(e->d);
	json_decref(end_turn(e, NULL));
	assert_int_equal(records(e), before + 8);
	rec = record_at(e, before + 8);
	meta = json_object_get(rec, "metadata");
	assert_string_equal(json_string_value(json_object_get(rec, "action")), "t.admin");
	assert_string_equal(json_string_value(json_object_get(rec, "result")), "denied");
	assert_string_equal(json_string_value(json_object_get(rec, "resource")), "thing/x");
	assert_true(json_is_true(json_object_get(meta, "summary")));
	assert_int_equal(json_integer_value(json_object_get(meta, "count")), 8);
	assert_int_equal(json_integer_value(json_object_get(meta, "window")), 3600);
	assert_string_equal(json_string_value(json_object_get(meta, "error")), "denied");
	json_decref(rec);
	/* Nothing left to say. */
	kw_dispatch_flush(e->d);
	json_decref(end_turn(e, NULL));
	assert_int_equal(records(e), before + 8);
}

static void
test_refusals_that_change_state_are_each_recorded(void **state)
{
	struct env *e = *state;
	long long before;
	char text[128], v[16];

	greet(e, &e->user);
	before = records(e);
	/* The burst is 2: ten identical refusals that each changed state are ten
	   records (a summary would hide what each one did). */
	for (int i = 0; i < 10; i++) {
		snprintf(text, sizeof(text), "{\"id\": %d, \"op\": \"t.counted\", "
		    "\"args\": {\"v\": \"%d\"}}", i + 1, i);
		send_text(e, &e->user, text);
	}
	json_decref(end_turn(e, NULL));
	assert_int_equal(records(e), before + 10);
	/* ... and what they changed landed with them. */
	assert_int_equal(kw_state_meta_get(e->svc.state, "t", v, sizeof(v)), 0);
	assert_string_equal(v, "9");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_handshake_comes_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verb_and_session_from_the_table, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_the_brokers_own_uid_administers_it, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rbac_denies_the_unregistered, setup_no_mfa,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ordinary_requests_follow_log_actions,
		    setup_no_mfa, teardown),
		cmocka_unit_test_setup_teardown(test_ordinary_requests_unrecorded_by_default, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_changes_land_only_with_their_record, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_observers_see_each_turn, setup_no_mfa, teardown),
		cmocka_unit_test_setup_teardown(test_forgotten_peer_gets_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timers_run_when_due, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deferred_requests_answer_later, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deferred_request_recorded_without_its_client,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_delegated_admin_stays_within_her_rights,
		    setup_delegated, teardown),
		cmocka_unit_test_setup_teardown(test_repeated_refusals_are_counted, setup_refusals,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refusals_that_change_state_are_each_recorded,
		    setup_refusals, teardown),
	};

	return cmocka_run_group_tests_name("dispatch", tests, NULL, NULL);
}
