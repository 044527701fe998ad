/*
 * ops.c - broker/alerts/'s rows of the request table: each request once, with
 * the permission it needs (the dispatcher checks it; handlers never do).
 */
#include "broker/alerts/monitor.h"
#include "broker/alerts/ops.h"

static const struct kw_op ops[] = {
	{ .name = "incident.list", .verb = KW_VERB_ADMIN, .resource = "incident",
	    .fn = kw_op_incident_list },
	{ .name = "incident.report", .verb = KW_VERB_ADMIN, .resource = "incident",
	    .fn = kw_op_incident_report },
	{ .name = "incident.close", .verb = KW_VERB_ADMIN, .resource = "incident",
	    .flags = KW_OP_WRITES, .fn = kw_op_incident_close },
};

int
kw_alerts_register(struct kw_dispatcher *d, struct kw_services *svc)
{
	int r;

	if ((r = kw_dispatch_add_ops(d, ops, KW_ELEMENTSOF(ops))) < 0)
		return r;
	/* Alerts follow what the trail records: a refusal, a failing store. */
	return kw_monitor_observe(svc);
}
