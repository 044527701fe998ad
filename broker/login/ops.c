/*
 * ops.c - broker/login/'s rows of the request table: each request once, with
 * the permission it needs (the dispatcher checks it; handlers never do).
 */
#include "broker/login/ops.h"

static const struct kw_op ops[] = {
	{ .name = "status", .flags = KW_OP_ORDINARY, .fn = kw_op_status },
	{ .name = "login", .acts_as = "user", .flags = KW_OP_WRITES, .fn = kw_op_login },
	{ .name = "logout", .flags = KW_OP_WRITES | KW_OP_SESSION, .fn = kw_op_logout },
	{ .name = "account", .acts_as = "user", .flags = KW_OP_WRITES, .fn = kw_op_account },
	{ .name = "totp.enroll", .flags = KW_OP_WRITES | KW_OP_SESSION,
	    .fn = kw_op_totp_enroll },
	{ .name = "user.totp-reset", .verb = KW_VERB_ADMIN, .resource = "user",
	    .arg = "user", .arg_kind = KW_NAME_USER,
	    .flags = KW_OP_WRITES | KW_OP_TARGET_NOT_STRONGER, .fn = kw_op_user_totp_reset },
	{ .name = "session.list", .verb = KW_VERB_ADMIN, .resource = "session",
	    .fn = kw_op_session_list },
	{ .name = "session.revoke", .verb = KW_VERB_ADMIN, .resource = "session",
	    .flags = KW_OP_WRITES, .fn = kw_op_session_revoke },
};

int
kw_login_register(struct kw_dispatcher *d, struct kw_services *svc)
{
	(void)svc;
	return kw_dispatch_add_ops(d, ops, KW_ELEMENTSOF(ops));
}
