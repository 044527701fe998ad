/*
 * ops.c - broker/apiproxy/'s rows of the request table.  The proxy's
 * requests need no permission: the channel they come on is the capability
 * (KW_OP_INTERNAL), and what they decide for a user is decided inside, as
 * that user, through kw_call_authorize.  An allowed call is recorded once,
 * as api_call, by proxy.record; the requests themselves are recorded only
 * when logActions lists them (KW_OP_ORDINARY), their refusals always.
 */
#include "broker/apiproxy/apiproxy_internal.h"
#include "broker/apiproxy/ops.h"

static const struct kw_op ops[] = {
	{ .name = "proxy.ready", .flags = KW_OP_INTERNAL, .fn = kw_op_proxy_ready },
	{ .name = "proxy.authorize", .flags = KW_OP_INTERNAL | KW_OP_ORDINARY,
	    .fn = kw_op_proxy_authorize },
	{ .name = "proxy.refuse", .flags = KW_OP_INTERNAL | KW_OP_ORDINARY,
	    .fn = kw_op_proxy_refuse },
	{ .name = "proxy.record", .flags = KW_OP_INTERNAL | KW_OP_ORDINARY,
	    .fn = kw_op_proxy_record },
	/* A token for the proxy stands for reading the key: the same permission, a session. */
	{ .name = "key.proxy_token", .verb = KW_VERB_READ, .resource = "key",
	    .arg = "name", .arg_kind = KW_NAME_KEY, .flags = KW_OP_SESSION,
	    .fn = kw_op_key_proxy_token },
	{ .name = "admin.usage", .verb = KW_VERB_ADMIN, .resource = "audit",
	    .fn = kw_op_admin_usage },
};

int
kw_ap_register_ops(struct kw_dispatcher *d)
{
	return kw_dispatch_add_ops(d, ops, KW_ELEMENTSOF(ops));
}
