/*
 * ops.h - broker/audit/: the tamper-evident trail.
 *
 * DESIGN: this folder owns audit.db: appending hash-chained records inside
 * the dispatcher's group commit (audit.h), pseudonyms and sealed details,
 * the broker's Ed25519 signatures over heads, anchors and archive
 * manifests (sign.c), verification and queries (query.c), pruning and
 * archives (prune.c, retention.c: a timer), and GDPR export and erasure
 * (op_gdpr.c).  The
 * chain's format is common/audit_chain.h, shared with the CLI's offline
 * checker.
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
int kw_op_audit_pubkey(struct kw_call *call, json_t **ret_result);
int kw_op_user_export(struct kw_call *call, json_t **ret_result);
int kw_op_user_erase(struct kw_call *call, json_t **ret_result);

#endif
