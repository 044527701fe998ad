/*
 * ops.c - broker/keys/'s rows of the request table: each request once, with
 * the permission it needs (the dispatcher checks it; handlers never do).
 */
#include "broker/keys/ops.h"

static const struct kw_op ops[] = {
	{ .name = "key.set", .verb = KW_VERB_WRITE, .resource = "key",
	    .arg = "name", .arg_kind = KW_NAME_KEY, .flags = KW_OP_WRITES,
	    .fn = kw_op_key_set },
	{ .name = "key.rotate", .verb = KW_VERB_WRITE, .resource = "key",
	    .arg = "name", .arg_kind = KW_NAME_KEY, .flags = KW_OP_WRITES,
	    .fn = kw_op_key_rotate },
	{ .name = "key.get", .verb = KW_VERB_READ, .resource = "key",
	    .arg = "name", .arg_kind = KW_NAME_KEY, .fn = kw_op_key_get },
	{ .name = "key.list", .verb = KW_VERB_READ, .resource = "key", .fn = kw_op_key_list },
	{ .name = "key.revoke", .verb = KW_VERB_WRITE, .resource = "key",
	    .arg = "name", .arg_kind = KW_NAME_KEY, .flags = KW_OP_WRITES,
	    .fn = kw_op_key_revoke },
	{ .name = "key.verify", .verb = KW_VERB_READ, .resource = "key",
	    .arg = "name", .arg_kind = KW_NAME_KEY, .fn = kw_op_key_verify },
};

int
kw_keys_register(struct kw_dispatcher *d, struct kw_services *svc)
{
	(void)svc;
	return kw_dispatch_add_ops(d, ops, KW_ELEMENTSOF(ops));
}
