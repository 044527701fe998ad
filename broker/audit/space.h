/*
 * space.h - security.audit.minFreeSpace: the audit store's free space is
 * watched, so that an alert goes out while there is still room.  A timer
 * (registered by kw_audit_register) looks at the data directory with one
 * statvfs every few seconds; when the space free to it falls below the
 * watermark, or rises above it again, the batch's observers are told
 * (kw_batch_note_audit_space) and the monitor raises the alert.  Nothing
 * is refused for it: only a store that cannot write fails closed.
 */
#ifndef KW_SPACE_H
#define KW_SPACE_H

#include "broker/dispatch/dispatch.h"
#include "common/macros.h"

/* How often the free space is looked at. */
#define KW_SPACE_CHECK_MS 5000

/* Register the check (due at once; none when the watermark is 0).  0 or KW_ERR_NOMEM. */
int kw_space_register(struct kw_dispatcher *d, struct kw_services *svc) KW_WUR KW_NONNULL(1, 2);

#endif
