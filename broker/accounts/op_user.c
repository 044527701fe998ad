/*
 * op_user.c - admin operations on users: add, list, show, del.  list and
 * show tell each account's state too: its lock, its second factor and its
 * live sessions.
 * Authorization happened in the dispatcher; these only do the work.
 */
#include <pwd.h>
#include <stdio.h>
#include <string.h>

#include "broker/accounts/ops.h"
#include "client/keywarden.h"
#include "broker/login/mfa.h"
#include "broker/dispatch/dispatch.h"
#include "broker/accounts/roles.h"
#include "broker/store/factors.h"
#include "broker/store/locks.h"
#include "broker/store/sessions.h"
#include "broker/store/users.h"
#include "common/clock.h"
#include "common/names.h"

int
kw_op_find_user(struct kw_call *call, struct kw_user *ret_user)
{
	const char *name = kw_arg_str(call->args, "user");
	int r;

	/* Ops that name a user only in their arguments (session.*) are checked here. */
	if (!name || !kw_name_ok(KW_NAME_USER, name)) {
		snprintf(call->msg, sizeof(call->msg), "\"user\" must be a user name");
		return KW_ERR_INVALID;
	}
	r = kw_user_by_name(call->svc->state, name, ret_user);

	if (r == KW_ERR_NOT_FOUND)
		snprintf(call->msg, sizeof(call->msg), "no keywarden user named %.64s", name);
	return r;
}

static int
unix_uid(const char *name, uid_t *ret_uid)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 || !res)
		return KW_ERR_NOT_FOUND;
	*ret_uid = res->pw_uid;
	return 0;
}

/* Grant each role in args.roles (optional) to uid. */
static int
grant_listed(struct kw_call *call, uid_t uid)
{
	json_t *roles = json_object_get(call->args, "roles"), *role = NULL, *v;
	size_t i;
	int r;

	if (!roles)
		return 0;
	if (!json_is_array(roles)) {
		snprintf(call->msg, sizeof(call->msg), "\"roles\" must be a list of role names");
		return KW_ERR_BAD_REQUEST;
	}
	json_array_foreach(roles, i, v) {
		const char *name = json_string_value(v);
		if (!name || (r = kw_role_get(call->svc->cfg, call->svc->state, name, &role)) ==
		    KW_ERR_NOT_FOUND) {
			snprintf(call->msg, sizeof(call->msg), "no role named %.64s",
			    name ? name : "(not a string)");
			return name ? KW_ERR_NOT_FOUND : KW_ERR_BAD_REQUEST;
		}
		json_decref(role);
		if (r < 0)
			return r;
		r = kw_grant_insert(call->svc->state, uid, name, call->caller->user);
		if (r == KW_ERR_INVALID)
			snprintf(call->msg, sizeof(call->msg), "role %.64s is listed twice", name);
		if (r < 0)
			return r;
	}
	json_object_set(call->meta, "roles", roles);
	return 0;
}

int
kw_op_user_add(struct kw_call *call, json_t **ret_result)
{
	const char *name = kw_arg_str(call->args, "user");
	struct kw_user existing;
	uid_t uid;
	int r;

	if (unix_uid(name, &uid) < 0) {
		snprintf(call->msg, sizeof(call->msg), "no Unix user named %.64s", name);
		return KW_ERR_INVALID;
	}
	if (kw_user_by_uid(call->svc->state, uid, &existing) == 0) {
		if (strcmp(existing.name, name) == 0)
			snprintf(call->msg, sizeof(call->msg), "user %.64s already exists", name);
		else
			snprintf(call->msg, sizeof(call->msg), "uid %u is already registered as %.64s",
			    (unsigned)uid, existing.name);
		return KW_ERR_INVALID;
	}
	r = kw_user_insert(call->svc->state, uid, name, call->caller->user);
	if (r == KW_ERR_INVALID)
		snprintf(call->msg, sizeof(call->msg), "user %.64s already exists", name);
	if (r < 0 || (r = grant_listed(call, uid)) < 0)
		return r;
	if ((r = kw_user_json(call->svc->state, uid, ret_result)) < 0)
		return r;
	/* A new user gets a second factor at once; the reply is the only time it shows. */
	if (kw_config_bool(call->svc->cfg, "security.authentication.mfa.enabled")) {
		json_t *enrollment = NULL;
		if ((r = kw_mfa_enroll(call->svc->state, call->svc->secrets, uid, name, &enrollment)) < 0) {
			json_decref(*ret_result);
			return r;
		}
		json_object_del(enrollment, "user");
		json_object_update(*ret_result, enrollment);
		json_decref(enrollment);
		json_object_set_new(call->meta, "totp", json_string("enrolled"));
	}
	return 0;
}

/*
 * What an administrator looks for first: is the account locked (until when,
 * why, by whom), has it a second factor, how many sessions are live now.
 * Read only: a lock that ran out reads as none (the next login lifts it).
 */
static int
add_state(struct kw_call *call, json_t *user)
{
	struct kw_state *st = call->svc->state;
	uid_t uid = (uid_t)json_integer_value(json_object_get(user, "uid"));
	long long now = kw_now(), enrolled_at = -1, codes = 0, live = 0;
	long long idle = kw_config_int(call->svc->cfg, "security.session.timeout");
	char until[32], at[32];
	struct kw_lock l;
	json_t *lock = json_null(), *totp;
	int r;

	if ((r = kw_lock_peek(st, uid, now, &l)) < 0 ||
	    (r = kw_factor_status(st, uid, &enrolled_at, &codes)) < 0 ||
	    (r = kw_session_count(st, uid, now, idle, &live)) < 0)
		return r;
	if (l.locked && !(lock = json_pack("{s:o, s:s, s:s}", "until", l.until < 0 ? json_null() :
	    json_string(kw_time_text(l.until, until)), "message", l.message, "by", l.by)))
		return KW_ERR_NOMEM;
	totp = json_pack("{s:b, s:o, s:I}", "enrolled", enrolled_at >= 0, "enrolled_at",
	    enrolled_at >= 0 ? json_string(kw_time_text(enrolled_at, at)) : json_null(),
	    "recovery_codes_left", (json_int_t)codes);
	if (!totp || json_object_set_new(user, "locked", json_boolean(l.locked)) < 0 ||
	    json_object_set_new(user, "lock", lock) < 0 ||
	    json_object_set_new(user, "totp", totp) < 0 ||
	    json_object_set_new(user, "sessions", json_integer(live)) < 0)
		return KW_ERR_NOMEM;
	return 0;
}

int
kw_op_user_list(struct kw_call *call, json_t **ret_result)
{
	json_t *locked = json_object_get(call->args, "locked"), *users = NULL, *shown, *u;
	size_t i;
	int r;

	if (locked && !json_is_boolean(locked)) {
		snprintf(call->msg, sizeof(call->msg), "\"locked\" must be true or false");
		return KW_ERR_BAD_REQUEST;
	}
	if (!(shown = json_array()))
		return KW_ERR_NOMEM;
	if ((r = kw_user_list_json(call->svc->state, &users)) < 0)
		goto out;
	json_array_foreach(users, i, u) {
		if ((r = add_state(call, u)) < 0)
			goto out;
		/* --locked: only the accounts locked now. */
		if (locked && json_is_true(json_object_get(u, "locked")) != json_is_true(locked))
			continue;
		if (json_array_append(shown, u) < 0) {
			r = KW_ERR_NOMEM;
			goto out;
		}
	}
	if (locked)
		json_object_set(call->meta, "locked", locked);
	*ret_result = json_pack("{s:O}", "users", shown);
	r = *ret_result ? 0 : KW_ERR_NOMEM;
 out:
	json_decref(users);
	json_decref(shown);
	return r;
}

/* The user's grants of roles that exist no longer ("orphaned_roles", when any). */
static int
add_orphaned(struct kw_call *call, json_t *user)
{
	json_t *gone = json_array(), *role = NULL, *v;
	size_t i;
	int r = 0;

	if (!gone)
		return KW_ERR_NOMEM;
	json_array_foreach(json_object_get(user, "roles"), i, v) {
		r = kw_role_get(call->svc->cfg, call->svc->state, json_string_value(v), &role);
		json_decref(role);
		role = NULL;
		if (r == KW_ERR_NOT_FOUND)
			r = json_array_append(gone, v) < 0 ? KW_ERR_NOMEM : 0;
		if (r < 0)
			break;
	}
	if (r == 0 && json_array_size(gone) > 0)
		r = json_object_set(user, "orphaned_roles", gone) < 0 ? KW_ERR_NOMEM : 0;
	json_decref(gone);
	return r;
}

int
kw_op_user_show(struct kw_call *call, json_t **ret_result)
{
	struct kw_user u;
	int r;

	if ((r = kw_op_find_user(call, &u)) < 0 ||
	    (r = kw_user_json(call->svc->state, u.uid, ret_result)) < 0)
		return r;
	if ((r = add_orphaned(call, *ret_result)) < 0 || (r = add_state(call, *ret_result)) < 0) {
		json_decref(*ret_result);
		*ret_result = NULL;
	}
	return r;
}

int
kw_op_user_del(struct kw_call *call, json_t **ret_result)
{
	struct kw_user u;
	int r, grants = 0;

	if ((r = kw_op_find_user(call, &u)) < 0 ||
	    (r = kw_user_delete(call->svc->state, u.uid, &grants)) < 0)
		return r;
	json_object_set_new(call->meta, "grants_removed", json_integer(grants));
	*ret_result = json_pack("{s:s, s:i}", "user", u.name, "grants_removed", grants);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}
