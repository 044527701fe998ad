/*
 * ops.c - broker/policy/'s rows of the request table.  A tool call's
 * permissions depend on what it touches, known only once its input is
 * analysed: the handler names them and the dispatcher decides them
 * (KW_VERB_FROM_HANDLER, kw_call_authorize).  What the hook redacts needs
 * only a valid session: it is the caller's own agent's output.
 */
#include "broker/policy/ops.h"

static const struct kw_op ops[] = {
	{ .name = "policy.check", .verb = KW_VERB_FROM_HANDLER, .flags = KW_OP_ORDINARY,
	    .fn = kw_op_policy_check },
	/* The hook's redaction: the settings to compile (recorded when logActions says),
	   then what it replaced or refused (always recorded: counts, never values). */
	{ .name = "policy.detector", .flags = KW_OP_SESSION | KW_OP_ORDINARY,
	    .fn = kw_op_policy_detector },
	{ .name = "policy.redact", .flags = KW_OP_SESSION, .fn = kw_op_policy_redact },
};

int
kw_policy_register(struct kw_dispatcher *d, struct kw_services *svc)
{
	(void)svc;
	return kw_dispatch_add_ops(d, ops, KW_ELEMENTSOF(ops));
}
