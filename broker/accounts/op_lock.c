/*
 * op_lock.c - admin locks: a lock ends the user's sessions at once and
 * refuses logins until it is lifted or runs out.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "broker/accounts/ops.h"
#include "client/keywarden.h"
#include "broker/store/locks.h"
#include "broker/dispatch/dispatch.h"
#include "broker/login/sessions.h"
#include "broker/store/users.h"

/* The message reaches terminals and PAM prompts: one line, no control bytes. */
static bool
printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

int
kw_op_user_lock(struct kw_call *call, json_t **ret_result)
{
	json_t *msg = json_object_get(call->args, "message"), *exp = json_object_get(call->args, "expires");
	long long now = kw_now(), until = -1;
	struct kw_user u;
	char text[32];
	int r, ended = 0;

	if ((msg && (!json_is_string(msg) || json_string_length(msg) > 200 ||
	    !printable(json_string_value(msg)))) ||
	    (exp && (!json_is_integer(exp) || json_integer_value(exp) < 1 ||
	    json_integer_value(exp) > 10LL * 365 * 86400))) {
		snprintf(call->msg, sizeof(call->msg), "\"message\" must be one line of at most 200 "
		    "characters without control characters, and \"expires\" a number of seconds");
		return KW_ERR_INVALID;
	}
	if (exp)
		until = now + json_integer_value(exp);
	if ((r = kw_op_find_user(call, &u)) < 0 ||
	    (r = kw_lock_set(call->svc->state, u.uid, now, until,
	    msg ? json_string_value(msg) : "locked by an administrator", call->caller->user)) < 0 ||
	    (r = kw_session_revoke_uid(call->svc->state, u.uid, &ended)) < 0)
		return r;
	json_object_set_new(call->meta, "until", until < 0 ? json_null() :
	    json_string(kw_time_text(until, text)));
	json_object_set_new(call->meta, "sessions_ended", json_integer(ended));
	*ret_result = json_pack("{s:s, s:b, s:o, s:i}", "user", u.name, "locked", 1,
	    "until", until < 0 ? json_null() : json_string(kw_time_text(until, text)),
	    "sessions_ended", ended);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}

int
kw_op_user_unlock(struct kw_call *call, json_t **ret_result)
{
	struct kw_user u;
	bool was = false;
	int r;

	if ((r = kw_op_find_user(call, &u)) < 0 ||
	    (r = kw_lock_clear(call->svc->state, u.uid, &was)) < 0)
		return r;
	json_object_set_new(call->meta, "was_locked", json_boolean(was));
	*ret_result = json_pack("{s:s, s:b, s:b}", "user", u.name, "locked", 0, "was_locked", was);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}
