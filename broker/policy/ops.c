/*
 * ops.c - broker/policy/'s rows of the request table.  A tool call's
 * permissions depend on what it touches, known only once its input is
 * analysed: the handler names them and the dispatcher decides them
 * (KW_VERB_FROM_HANDLER, kw_call_authorize).  What the hook redacts is the
 * caller's own agent's output: read on "policy", and a session where MFA is
 * required, as for any read.
 */
#include "broker/policy/ops.h"

static const struct kw_op ops[] = {
	{ .name = "policy.check", .verb = KW_VERB_FROM_HANDLER, .flags = KW_OP_ORDINARY,
	    .fn = kw_op_policy_check },
	/* The hook's redaction: the settings to compile (recorded when logActions says),
	   then what it replaced or refused (always recorded: counts, never values). */
	{ .name = "policy.detector", .verb = KW_VERB_READ, .resource = "policy",
	    .flags = KW_OP_ORDINARY, .fn = kw_op_policy_detector },
	{ .name = "policy.redact", .verb = KW_VERB_READ, .resource = "policy",
	    .fn = kw_op_policy_redact },
	/* keywarden run: the policy it applies (execute:command/ARGV0 decided by the
	   handler; a refusal recorded), then the run itself (always recorded). */
	{ .name = "sandbox.begin", .verb = KW_VERB_FROM_HANDLER, .flags = KW_OP_ORDINARY,
	    .fn = kw_op_sandbox_begin },
	{ .name = "sandbox.report", .verb = KW_VERB_FROM_HANDLER, .fn = kw_op_sandbox_report },
};

int
kw_policy_register(struct kw_dispatcher *d, struct kw_services *svc)
{
	(void)svc;
	return kw_dispatch_add_ops(d, ops, KW_ELEMENTSOF(ops));
}
