/*
 * ops.c - broker/audit/'s rows of the request table: each request once, with
 * the permission it needs (the dispatcher checks it; handlers never do).
 */
#include "broker/audit/ops.h"
#include "broker/audit/retention.h"
#include "broker/audit/space.h"

static const struct kw_op ops[] = {
	{ .name = "audit.query", .verb = KW_VERB_ADMIN, .resource = "audit",
	    .fn = kw_op_audit_query },
	{ .name = "audit.verify", .verb = KW_VERB_ADMIN, .resource = "audit",
	    .fn = kw_op_audit_verify },
	{ .name = "audit.prune", .verb = KW_VERB_ADMIN, .resource = "audit",
	    .fn = kw_op_audit_prune },
	{ .name = "audit.pubkey", .verb = KW_VERB_ADMIN, .resource = "audit",
	    .fn = kw_op_audit_pubkey },
	{ .name = "user.export", .verb = KW_VERB_ADMIN, .resource = "user",
	    .arg = "user", .arg_kind = KW_NAME_USER, .fn = kw_op_user_export },
	{ .name = "user.erase", .verb = KW_VERB_ADMIN, .resource = "user",
	    .arg = "user", .arg_kind = KW_NAME_USER,
	    .flags = KW_OP_WRITES | KW_OP_TARGET_NOT_STRONGER, .fn = kw_op_user_erase },
};

int
kw_audit_register(struct kw_dispatcher *d, struct kw_services *svc)
{
	int r;

	if ((r = kw_dispatch_add_ops(d, ops, KW_ELEMENTSOF(ops))) < 0 ||
	    (r = kw_retention_register(d, svc)) < 0)
		return r;
	return kw_space_register(d, svc);
}
