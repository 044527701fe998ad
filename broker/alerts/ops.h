/*
 * ops.h - broker/alerts/: turning what the trail records into action.
 *
 * DESIGN: this folder owns security.monitoring and
 * security.incidentResponse: the monitor watches every turn of the group
 * commit (a batch observer), counts refusals, raises alerts, locks accounts
 * and opens incidents (monitor.h, incidents.h); delivery.h sends mail and
 * webhook posts from a thread of its own.  Incidents are listed and
 * reported through incident.list and incident.report, and closed with a
 * note through incident.close.
 */
#ifndef KW_ALERTS_OPS_H
#define KW_ALERTS_OPS_H

#include <jansson.h>

#include "broker/dispatch/dispatch.h"
#include "common/macros.h"

/* Add alerts's requests (and what else it plugs in) to d.  0 or an error. */
int kw_alerts_register(struct kw_dispatcher *d, struct kw_services *svc) KW_WUR KW_NONNULL(1, 2);

/* The handlers (one file per group): fill *ret_result or fail with call->msg set. */
int kw_op_incident_list(struct kw_call *call, json_t **ret_result);
int kw_op_incident_report(struct kw_call *call, json_t **ret_result);
int kw_op_incident_close(struct kw_call *call, json_t **ret_result);

#endif
