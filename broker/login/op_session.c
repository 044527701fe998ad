/*
 * op_session.c - admin view of sessions: list them, revoke one, a user's,
 * or all.  Revocation takes effect on the very next request.
 */
#include <stdio.h>
#include <string.h>

#include "broker/login/ops.h"
#include "client/keywarden.h"
#include "broker/dispatch/dispatch.h"
#include "broker/login/sessions.h"
#include "broker/store/users.h"

int
kw_op_session_list(struct kw_call *call, json_t **ret_result)
{
	json_t *list = NULL;
	struct kw_user u;
	long long uid = -1;
	int r;

	if (json_object_get(call->args, "user")) {
		if ((r = kw_op_find_user(call, &u)) < 0)
			return r;
		uid = u.uid;
	}
	long long idle = kw_config_int(call->svc->cfg, "security.session.timeout");
	if ((r = kw_session_purge(call->svc->state, kw_now(), idle, NULL)) < 0 ||
	    (r = kw_session_list(call->svc->state, uid, idle, &list)) < 0)
		return r;
	*ret_result = json_pack("{s:o}", "sessions", list);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}

int
kw_op_session_revoke(struct kw_call *call, json_t **ret_result)
{
	const char *id = kw_arg_str(call->args, "id");
	bool all = json_is_true(json_object_get(call->args, "all"));
	bool by_user = json_object_get(call->args, "user") != NULL;
	struct kw_user u;
	int r, n = 0;

	/* Count only sessions that were still alive. */
	if ((r = kw_session_purge(call->svc->state, kw_now(),
	    kw_config_int(call->svc->cfg, "security.session.timeout"), NULL)) < 0)
		return r;
	if ((id != NULL) + all + by_user != 1) {
		snprintf(call->msg, sizeof(call->msg), "give exactly one of \"id\", \"user\", \"all\"");
		return KW_ERR_INVALID;
	}
	/* Ids are 32 hex digits; nothing else reaches a message or the audit record. */
	if (id && (strlen(id) != KW_SESSION_ID_LEN ||
	    strspn(id, "0123456789abcdef") != KW_SESSION_ID_LEN)) {
		snprintf(call->msg, sizeof(call->msg), "\"id\" must be a session id (32 hex digits)");
		return KW_ERR_INVALID;
	}
	if (id) {
		json_object_set_new(call->meta, "id", json_string(id));
		if ((r = kw_session_revoke(call->svc->state, id)) == KW_ERR_NOT_FOUND)
			snprintf(call->msg, sizeof(call->msg), "no session %.40s", id);
		n = r == 0;
	} else if (by_user) {
		if ((r = kw_op_find_user(call, &u)) == 0)
			r = kw_session_revoke_uid(call->svc->state, u.uid, &n);
		json_object_set_new(call->meta, "user", json_string(kw_arg_str(call->args, "user")));
	} else {
		r = kw_session_revoke_uid(call->svc->state, -1, &n);
		json_object_set_new(call->meta, "all", json_true());
	}
	if (r < 0)
		return r;
	json_object_set_new(call->meta, "revoked", json_integer(n));
	*ret_result = json_pack("{s:i}", "revoked", n);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}
