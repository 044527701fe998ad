/*
 * ops.c - broker/accounts/'s rows of the request table: each request once, with
 * the permission it needs (the dispatcher checks it; handlers never do).
 */
#include "broker/accounts/ops.h"

static const struct kw_op ops[] = {
	{ .name = "check", .verb = KW_VERB_FROM_ARGS,
	    .arg = "resource", .arg_kind = KW_NAME_RESOURCE, .acts_as = "user",
	    .fn = kw_op_check },
	{ .name = "user.add", .verb = KW_VERB_ADMIN, .resource = "user",
	    .arg = "user", .arg_kind = KW_NAME_USER, .roles = "roles",
	    .flags = KW_OP_WRITES | KW_OP_ROLES_OPTIONAL, .fn = kw_op_user_add },
	{ .name = "user.list", .verb = KW_VERB_ADMIN, .resource = "user",
	    .fn = kw_op_user_list },
	{ .name = "user.show", .verb = KW_VERB_ADMIN, .resource = "user",
	    .arg = "user", .arg_kind = KW_NAME_USER, .fn = kw_op_user_show },
	{ .name = "user.del", .verb = KW_VERB_ADMIN, .resource = "user",
	    .arg = "user", .arg_kind = KW_NAME_USER,
	    .flags = KW_OP_WRITES | KW_OP_TARGET_NOT_STRONGER, .fn = kw_op_user_del },
	{ .name = "user.lock", .verb = KW_VERB_ADMIN, .resource = "user",
	    .arg = "user", .arg_kind = KW_NAME_USER,
	    .flags = KW_OP_WRITES | KW_OP_TARGET_NOT_STRONGER, .fn = kw_op_user_lock },
	{ .name = "user.unlock", .verb = KW_VERB_ADMIN, .resource = "user",
	    .arg = "user", .arg_kind = KW_NAME_USER,
	    .flags = KW_OP_WRITES | KW_OP_TARGET_NOT_STRONGER, .fn = kw_op_user_unlock },
	{ .name = "role.list", .verb = KW_VERB_ADMIN, .resource = "role",
	    .fn = kw_op_role_list },
	{ .name = "role.show", .verb = KW_VERB_ADMIN, .resource = "role",
	    .arg = "role", .arg_kind = KW_NAME_ROLE, .fn = kw_op_role_show },
	{ .name = "role.create", .verb = KW_VERB_ADMIN, .resource = "role",
	    .arg = "role", .arg_kind = KW_NAME_ROLE, .perms = "permissions",
	    .flags = KW_OP_WRITES, .fn = kw_op_role_create },
	{ .name = "role.delete", .verb = KW_VERB_ADMIN, .resource = "role",
	    .arg = "role", .arg_kind = KW_NAME_ROLE, .flags = KW_OP_WRITES,
	    .fn = kw_op_role_delete },
	{ .name = "role.grant", .verb = KW_VERB_ADMIN, .resource = "user",
	    .arg = "user", .arg_kind = KW_NAME_USER, .roles = "role", .flags = KW_OP_WRITES,
	    .fn = kw_op_role_grant },
	{ .name = "role.revoke", .verb = KW_VERB_ADMIN, .resource = "user",
	    .arg = "user", .arg_kind = KW_NAME_USER, .roles = "role", .flags = KW_OP_WRITES,
	    .fn = kw_op_role_revoke },
};

int
kw_accounts_register(struct kw_dispatcher *d, struct kw_services *svc)
{
	(void)svc;
	return kw_dispatch_add_ops(d, ops, KW_ELEMENTSOF(ops));
}
