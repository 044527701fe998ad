/*
 * op_mfa.c - enrolling second factors: for oneself (with a session) and by
 * an admin for someone else.  The seed and recovery codes are in the reply
 * once and never again.
 */
#include <stdio.h>

#include "broker/login/ops.h"
#include "client/keywarden.h"
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

int
kw_op_totp_enroll(struct kw_call *call, json_t **ret_result)
{
	struct kw_user u;
	int r = kw_user_by_uid(call->svc->state, call->session->uid, &u);

	*ret_result = NULL;
	return r < 0 ? r : enroll(call, &u, ret_result);
}

int
kw_op_user_totp_reset(struct kw_call *call, json_t **ret_result)
{
	struct kw_user u;
	int r = kw_op_find_user(call, &u);

	*ret_result = NULL;
	return r < 0 ? r : enroll(call, &u, ret_result);
}
