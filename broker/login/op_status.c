/*
 * op_status.c - "status": is the broker there, which version, who am I (and,
 * for an administrator, which configuration is in force).
 */
#include "broker/login/ops.h"
#include "client/keywarden.h"
#include "broker/dispatch/dispatch.h"
#include "broker/accounts/cache.h"
#include "broker/login/sessions.h"
#include "broker/store/users.h"

int
kw_op_status(struct kw_call *call, json_t **ret_result)
{
	const struct kw_caller *who = call->caller;
	struct kw_known k;
	json_t *user = json_null(), *roles = NULL;
	int r;

	/* Who keywarden knows the caller as, if at all (accounts/cache.h). */
	r = kw_known_by_uid(call->svc->roles, call->svc->state, who->uid, KW_KNOWN_ROLES, &k);
	if (r == 0) {
		user = json_string(k.user.name);
		roles = json_deep_copy(k.roles);
		r = roles ? 0 : KW_ERR_NOMEM;
		kw_known_clear(&k);
	} else if (r == KW_ERR_NOT_FOUND) {
		r = (roles = json_array()) ? 0 : KW_ERR_NOMEM;
	}
	if (r < 0) {
		json_decref(user);
		return r;
	}
	/* The session the request came with, as the broker sees it now. */
	json_t *session = json_null();
	if (call->session) {
		char exp[32], idle[32];
		long long timeout = kw_config_int(call->svc->cfg, "security.session.timeout");
		session = json_pack("{s:s, s:o, s:s}", "id", call->session->id,
		    "expires", call->session->expires < 0 ? json_null() :
		    json_string(kw_time_text(call->session->expires, exp)),
		    "idle_expires", kw_time_text(call->session->last_used + timeout, idle));
	}
	*ret_result = json_pack("{s:s, s:i, s:s, s:{s:s, s:I, s:I, s:I}, s:o, s:o, s:o}",
	    "version", KW_VERSION,
	    "protocol", KW_PROTOCOL_VERSION,
	    "socket", call->svc->socket_path,
	    "caller",
	    "user", who->user,
	    "uid", (json_int_t)who->uid,
	    "gid", (json_int_t)who->gid,
	    "pid", (json_int_t)who->pid,
	    "user", user,
	    "roles", roles,
	    "session", session);
	/*
	 * Which configuration is in force, for whoever administers it: `config
	 * set` compares this digest with the file's to say whether a reload
	 * (SIGHUP) has applied the change yet.
	 */
	if (*ret_result && kw_call_may(call, "admin", "config") &&
	    (json_object_set_new(*ret_result, "config_path",
	    json_string(call->svc->config_path)) < 0 ||
	    json_object_set_new(*ret_result, "config_sha256",
	    json_string(kw_config_digest(call->svc->cfg))) < 0)) {
		json_decref(*ret_result);
		return KW_ERR_NOMEM;
	}
	/* What other features report (the API proxy: its listen address, whether it runs). */
	if (*ret_result && call->svc->status_parts &&
	    json_object_update(*ret_result, call->svc->status_parts) < 0) {
		json_decref(*ret_result);
		return KW_ERR_NOMEM;
	}
	/* Why the token this request carried was not accepted (the dispatcher noted it). */
	json_t *session_error = json_object_get(call->meta, "session_error");
	if (*ret_result && session_error)
		json_object_set(*ret_result, "session_error", session_error);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}
