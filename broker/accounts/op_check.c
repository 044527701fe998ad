/*
 * op_check.c - "check": may the subject do ACTION on RESOURCE?  The
 * dispatcher has already asked the decision point (the table takes the verb
 * and resource from the arguments), so reaching this handler means yes.
 */
#include "broker/accounts/ops.h"
#include "client/keywarden.h"
#include "broker/dispatch/dispatch.h"

int
kw_op_check(struct kw_call *call, json_t **ret_result)
{
	const char *action = kw_arg_str(call->args, "action");

	json_object_set_new(call->meta, "verb", json_string(action));
	json_object_set_new(call->meta, "user", json_string(call->subject));
	*ret_result = json_pack("{s:b, s:s, s:s, s:s}", "allowed", 1, "user", call->subject,
	    "action", action, "resource", call->resource);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}
