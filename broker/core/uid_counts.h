/*
 * uid_counts.h - how many connections each uid holds, for the per-uid cap
 * (broker.maxClientsPerUser).  A small hash of the uids that hold any.
 */
#ifndef KW_UID_COUNTS_H
#define KW_UID_COUNTS_H

#include <stddef.h>
#include <sys/types.h>

#include "common/macros.h"

struct kw_uid_counts;

/* An empty table in *ret (the caller's, kw_uid_counts_free).  0 or KW_ERR_NOMEM. */
int kw_uid_counts_new(struct kw_uid_counts **ret) KW_WUR KW_NONNULL(1);
void kw_uid_counts_free(struct kw_uid_counts *t);

/* The connections uid holds. */
size_t kw_uid_count(const struct kw_uid_counts *t, uid_t uid) KW_NONNULL(1);

/* One more for uid.  0 or KW_ERR_NOMEM (nothing counted). */
int kw_uid_count_add(struct kw_uid_counts *t, uid_t uid) KW_WUR KW_NONNULL(1);

/* One fewer for uid (it must hold one). */
void kw_uid_count_remove(struct kw_uid_counts *t, uid_t uid) KW_NONNULL(1);

#endif
