/*
 * op_mfa.c - enrolling second factors: for oneself (with a session and a
 * current code) and by an admin for someone else.  The seed and recovery
 * codes are in the reply once and never again.
 */
#include <stdio.h>

#include "broker/alerts/monitor.h"
#include "broker/login/ops.h"
#include "client/keywarden.h"
#include "common/clock.h"
#include "broker/login/mfa.h"
#include "broker/dispatch/dispatch.h"
#include "broker/login/sessions.h"
#include "broker/store/users.h"

static int
enroll(struct kw_call *call, const struct kw_user *u, json_t **ret_result)
{
	int r = kw_mfa_enroll(call->svc->state, call->svc->secrets, u->uid, u->name, ret_result);

	/* Re-enrolling replaces the factor: sessions opened with the old one end. */
	int ended = 0;
	if (r == 0 && (r = kw_session_revoke_uid(call->svc->state, u->uid, &ended)) == 0)
		json_object_set_new(call->meta, "sessions_ended", json_integer(ended));
	if (r < 0 && *ret_result) {
		json_decref(*ret_result);
		*ret_result = NULL;
	}
	return r;
}

/*
 * A session token is readable by every process of its user, so it alone
 * does not take the second factor over: the request carries a current code
 * too, checked (and a wrong one counted) as login checks it.  The
 * replacement is an alert: audited, and mailed to the admins.
 */
int
kw_op_totp_enroll(struct kw_call *call, json_t **ret_result)
{
	struct kw_user u;
	int r;

	*ret_result = NULL;
	if ((r = kw_user_by_uid(call->svc->state, call->session->uid, &u)) < 0 ||
	    (r = kw_login_check_code(call, &u, kw_now())) < 0 ||
	    (r = enroll(call, &u, ret_result)) < 0)
		return r;
	if ((r = kw_monitor_notice(call->svc, u.name, u.uid, "totp_enrolled")) < 0) {
		json_decref(*ret_result);
		*ret_result = NULL;
	}
	return r;
}

int
kw_op_user_totp_reset(struct kw_call *call, json_t **ret_result)
{
	struct kw_user u;
	int r = kw_op_find_user(call, &u);

	*ret_result = NULL;
	return r < 0 ? r : enroll(call, &u, ret_result);
}
