/*
 * retention.h - security.audit.retention: records older than the retention
 * period leave the store in small batches, one per event loop turn, so a
 * long prune never holds requests up; with autoArchive they are written to
 * <dataDir>/archive first.  A timer (registered by kw_audit_register) runs
 * it at start and then daily; `keywarden admin audit prune` runs it now
 * (audit.prune, one batch a call).
 */
#ifndef KW_RETENTION_H
#define KW_RETENTION_H

#include <jansson.h>

#include "broker/dispatch/dispatch.h"
#include "common/macros.h"

/* Records pruned per batch: small enough for a turn, large enough to finish. */
#define KW_RETENTION_BATCH 500

/* Register the daily retention timer (due at once).  0 or KW_ERR_NOMEM. */
int kw_retention_register(struct kw_dispatcher *d, struct kw_services *svc)
	KW_WUR KW_NONNULL(1, 2);

/* One batch now, in the current turn (audit.prune).  0 or an error; *ret_report as kw_audit_prune. */
int kw_retention_run_batch(struct kw_services *svc, json_t **ret_report) KW_WUR KW_NONNULL(1, 2);

#endif
