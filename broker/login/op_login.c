/*
 * op_login.c - login (a second factor for a session), logout, and the
 * account question PAM's account stage asks.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "broker/audit/audit.h"
#include "broker/login/ops.h"
#include "client/keywarden.h"
#include "broker/store/locks.h"
#include "broker/login/mfa.h"
#include "broker/alerts/monitor.h"
#include "broker/dispatch/dispatch.h"
#include "broker/login/sessions.h"
#include "broker/store/users.h"

/* The registered user a login or account request is about. */
static int
subject_user(struct kw_call *call, struct kw_user *u)
{
	int r;

	snprintf(call->res_buf, sizeof(call->res_buf), "user/%s", call->subject);
	call->resource = call->res_buf;
	r = strcmp(call->subject, call->caller->user) == 0 ?
	    kw_user_by_uid(call->svc->state, call->caller->uid, u) :
	    kw_user_by_name(call->svc->state, call->subject, u);

	if (r == KW_ERR_NOT_FOUND)
		snprintf(call->msg, sizeof(call->msg), "%.64s is not a keywarden user", call->subject);
	return r;
}

static void
lock_message(struct kw_call *call, const struct kw_lock *l)
{
	kw_lock_describe(l, call->msg, sizeof(call->msg));
}

/* The failed_authentication alert with action block: its threshold, or 0 for none. */
static long long
lock_threshold(const struct kw_services *svc)
{
	json_t *alerts = kw_config_get(svc->cfg, "security.monitoring.alerts"), *a;
	size_t i;

	if (!kw_config_bool(svc->cfg, "security.monitoring.enabled"))
		return 0;
	json_array_foreach(alerts, i, a)
		if (strcmp(json_string_value(json_object_get(a, "type")), "failed_authentication") == 0 &&
		    strcmp(json_string_value(json_object_get(a, "action")), "block") == 0)
			return json_integer_value(json_object_get(a, "threshold"));
	return 0;
}

/*
 * Record a wrong code and count those within the lockout interval.  No
 * count reaches LLONG_MAX, so kw_lock_fail only records and ages failures
 * out here: locking is kw_monitor_block's alone.
 */
static int
count_failure(struct kw_services *svc, uid_t uid, long long now, long long *ret_count)
{
	bool never;
	int r;

	if ((r = kw_lock_fail(svc->state, uid, now,
	    kw_config_int(svc->cfg, "security.authentication.lockout.interval"), LLONG_MAX, 0,
	    &never)) < 0)
		return r;
	return kw_lock_failures(svc->state, uid, ret_count);
}

/* Count a wrong code; at the threshold the monitor blocks (lock, sessions, incident). */
static int
failed(struct kw_call *call, const struct kw_user *u, long long now)
{
	struct kw_services *svc = call->svc;
	long long threshold = lock_threshold(svc), count = 0;
	int r;

	call->keep_on_error = true;
	if (threshold > 0 && (r = count_failure(svc, u->uid, now, &count)) < 0)
		return r;
	if (threshold > 0 && count >= threshold) {
		if ((r = kw_monitor_block(svc, u->name, u->uid, "failed_authentication", count,
		    call->meta)) < 0)
			return r;
		if (json_is_true(json_object_get(call->meta, "locked"))) {
			snprintf(call->msg, sizeof(call->msg), "wrong code; too many failures, the "
			    "account is now locked");
			return KW_ERR_LOCKED;
		}
		/* Not locked (incidentResponse.autoBlock false): the next incident needs as many again. */
		if ((r = kw_lock_forget_failures(svc->state, u->uid)) < 0)
			return r;
	}
	snprintf(call->msg, sizeof(call->msg), "wrong or already used code");
	return KW_ERR_DENIED;
}

/* Each session a login pushed out gets a record of its own. */
static int
audit_evictions(struct kw_call *call, const struct kw_user *u, json_t *evicted)
{
	char resource[64];
	size_t i;
	json_t *id;

	json_array_foreach(evicted, i, id) {
		json_t *meta = json_pack("{s:s, s:s}", "user", u->name,
		    "reason", "maxSessions reached");
		struct kw_audit_record rec = {
			.user = call->caller->user, .uid = call->caller->uid, .pid = call->caller->pid,
			.action = "session.evict", .resource = resource, .result = "success",
			.metadata = meta, .request_id = -1,
		};
		snprintf(resource, sizeof(resource), "session/%s", json_string_value(id));
		int r = kw_audit_write(call->svc->audit, &rec);
		json_decref(meta);
		if (r < 0)
			return r;
	}
	return 0;
}

static int
open_session(struct kw_call *call, const struct kw_user *u, long long now, json_t **ret_result)
{
	struct kw_services *svc = call->svc;
	long long lifetime = kw_config_bool(svc->cfg, "security.session.requireReauth") ?
	    kw_config_int(svc->cfg, "security.session.reauthInterval") : 0;
	long long idle = kw_config_int(svc->cfg, "security.session.timeout");
	struct kw_session ses;
	char token[KW_TOKEN_MAX], exp[32];
	json_t *evicted = NULL, *roles = NULL;
	int r;

	/* Dead sessions must not count towards maxSessions, nor be evicted in a live one's place. */
	if ((r = kw_lock_forget_failures(svc->state, u->uid)) < 0 ||
	    (r = kw_session_purge(svc->state, now, idle, NULL)) < 0 ||
	    (r = kw_user_roles(svc->state, u->uid, &roles)) < 0)
		return r;
	r = kw_session_create(svc->state, svc->secrets, u->uid, now, lifetime,
	    kw_config_int(svc->cfg, "security.session.maxSessions"), &ses, token, &evicted);
	if (r < 0) {
		json_decref(roles);
		return r;
	}
	json_object_set_new(call->meta, "session", json_string(ses.id));
	if (json_array_size(evicted) > 0) {
		json_object_set(call->meta, "evicted", evicted);
		if ((r = audit_evictions(call, u, evicted)) < 0) {
			sodium_memzero(token, sizeof(token));
			json_decref(evicted);
			json_decref(roles);
			return r;
		}
	}
	*ret_result = json_pack("{s:s, s:s, s:s, s:o, s:I, s:o}", "session", token, "id", ses.id,
	    "user", u->name, "expires", ses.expires < 0 ? json_null() :
	    json_string(kw_time_text(ses.expires, exp)), "idle_timeout", (json_int_t)idle,
	    "roles", roles);
	sodium_memzero(token, sizeof(token));
	json_decref(evicted);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}

int
kw_login_check_code(struct kw_call *call, const struct kw_user *u, long long now)
{
	const char *code = kw_arg_str(call->args, "code"), *method = NULL;
	struct kw_lock lock;
	int r;

	if ((r = kw_lock_get(call->svc->state, u->uid, now, &lock)) < 0)
		return r;
	/* A locked account is not even asked for its code: no guesses while locked. */
	if (lock.locked) {
		call->keep_on_error = true;	/* an expired lock lifted above stays lifted */
		lock_message(call, &lock);
		return KW_ERR_LOCKED;
	}
	if (!code || strlen(code) > 32) {
		snprintf(call->msg, sizeof(call->msg), "\"code\" must be a TOTP or recovery code");
		return KW_ERR_BAD_REQUEST;
	}
	r = kw_mfa_check(call->svc->state, call->svc->secrets, u->uid, code, now,
	    (unsigned)kw_config_int(call->svc->cfg, "security.authentication.mfa.window"), &method);
	json_object_set_new(call->meta, "method", json_string(method));
	if (r == KW_ERR_NOT_FOUND) {
		snprintf(call->msg, sizeof(call->msg), "%.64s has no second factor enrolled; an admin "
		    "can enroll one with keywarden admin user totp-reset", u->name);
		return r;
	}
	if (r == KW_ERR_DENIED)
		return failed(call, u, now);
	return r;
}

int
kw_op_login(struct kw_call *call, json_t **ret_result)
{
	long long now = kw_now();
	struct kw_user u;
	int r;

	if ((r = subject_user(call, &u)) < 0 || (r = kw_login_check_code(call, &u, now)) < 0)
		return r;
	/* A second factor for another program (sudo, sshd): the code, and nothing more. */
	if (json_is_false(json_object_get(call->args, "open_session"))) {
		if ((r = kw_lock_forget_failures(call->svc->state, u.uid)) < 0)
			return r;
		json_object_set_new(call->meta, "session", json_null());
		*ret_result = json_pack("{s:s, s:b, s:n}", "user", u.name, "verified", 1, "session");
		return *ret_result ? 0 : KW_ERR_NOMEM;
	}
	return open_session(call, &u, now, ret_result);
}

int
kw_op_logout(struct kw_call *call, json_t **ret_result)
{
	int r = kw_session_revoke(call->svc->state, call->session->id);

	if (r < 0)
		return r;
	*ret_result = json_pack("{s:s}", "id", call->session->id);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}

int
kw_op_account(struct kw_call *call, json_t **ret_result)
{
	struct kw_lock lock;
	struct kw_user u;
	json_t *roles = NULL;
	char until[32];
	int r = subject_user(call, &u);

	if (r == KW_ERR_NOT_FOUND) {
		*ret_result = json_pack("{s:s, s:b, s:b, s:[]}", "user", call->subject,
		    "registered", 0, "locked", 0, "roles");
		return *ret_result ? 0 : KW_ERR_NOMEM;
	}
	if (r < 0 || (r = kw_lock_get(call->svc->state, u.uid, kw_now(), &lock)) < 0 ||
	    (r = kw_user_roles(call->svc->state, u.uid, &roles)) < 0)
		return r;
	/* totp: whether a login can succeed at all (keywarden doctor asks). */
	*ret_result = json_pack("{s:s, s:b, s:b, s:o, s:o}", "user", u.name, "registered", 1,
	    "locked", lock.locked, "roles", roles, "totp", kw_mfa_status_json(call->svc->state,
	    u.uid));
	if (*ret_result && lock.locked) {
		lock_message(call, &lock);
		json_object_set_new(*ret_result, "message", json_string(call->msg));
		call->msg[0] = '\0';
		json_object_set_new(*ret_result, "until", lock.until < 0 ? json_null() :
		    json_string(kw_time_text(lock.until, until)));
	}
	return *ret_result ? 0 : KW_ERR_NOMEM;
}
