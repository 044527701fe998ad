/*
 * retention.h - security.audit.retention: records older than the retention
 * period leave the store in small batches, one per event loop turn, so a
 * long prune never holds requests up; with autoArchive they are written to
 * <dataDir>/archive first.  The broker runs it at start and then daily;
 * `keywarden admin audit prune` runs it now (audit.prune, one batch a call).
 */
#ifndef KW_RETENTION_H
#define KW_RETENTION_H

#include <jansson.h>
#include <stdbool.h>

#include "common/macros.h"

struct kw_broker;

/* Records pruned per batch: small enough for a turn, large enough to finish. */
#define KW_RETENTION_BATCH 500

/* When a run is due, prune one batch inside the turn's transaction. */
void kw_retention_tick(struct kw_broker *b) KW_NONNULL(1);

/* Milliseconds until the next batch is due (0: now), for the loop's wait. */
int kw_retention_timeout_ms(const struct kw_broker *b) KW_NONNULL(1);

/* One batch now, in the current turn (audit.prune).  0 or an error; *ret_report as kw_audit_prune. */
int kw_retention_run_batch(struct kw_broker *b, json_t **ret_report) KW_WUR KW_NONNULL(1, 2);

#endif
