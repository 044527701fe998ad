/*
 * ops.h - the requests broker/audit/ serves (the audit trail: query, verification, pruning and GDPR export and erasure), and its
 * registration with the dispatcher.
 */
#ifndef KW_AUDIT_OPS_H
#define KW_AUDIT_OPS_H

#include <jansson.h>

#include "broker/dispatch/dispatch.h"
#include "common/macros.h"

/* Add audit's requests (and what else it plugs in) to d.  0 or an error. */
int kw_audit_register(struct kw_dispatcher *d, struct kw_services *svc) KW_WUR KW_NONNULL(1, 2);

/* The handlers (one file per group): fill *ret_result or fail with call->msg set. */
int kw_op_audit_query(struct kw_call *call, json_t **ret_result);
int kw_op_audit_verify(struct kw_call *call, json_t **ret_result);
int kw_op_audit_prune(struct kw_call *call, json_t **ret_result);
int kw_op_user_export(struct kw_call *call, json_t **ret_result);
int kw_op_user_erase(struct kw_call *call, json_t **ret_result);

#endif
