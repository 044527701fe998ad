/*
 * refusals.h - a user refused the same thing again and again is counted,
 * not recorded request by request.
 *
 * A refusal is keyed by the caller's uid, the action and the error.  In a
 * window (security.audit.refusalWindow seconds from the first), the first
 * security.audit.refusalBurst refusals of a key are recorded as usual; the
 * rest are counted and answered at once, and when the window closes one
 * summary record stands for them: the same user, action and result, with
 * metadata "summary": true, "count", "first", "last" (their times),
 * "window", "error" and the first one's "reason"; "resource" is theirs when
 * they all named the same one.  While a flood goes on, each window costs
 * that one record.  Summaries still due are written at shutdown
 * (kw_dispatch_flush); a summary whose turn does not land is counted again
 * and retried a window later.
 *
 * Refusals of uid 0 are never counted: sshd and sudo relay other people's
 * logins as root, and each record names who tried.  Only refusals are
 * counted: what is allowed is recorded before it is answered, always.
 *
 * For the dispatcher only (dispatch_internal.h); all on the loop thread.
 */
#ifndef KW_REFUSALS_H
#define KW_REFUSALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/macros.h"

struct kw_audit_record;
struct kw_batch;
struct kw_refusal;

struct kw_refusals {
	struct kw_refusal *e;	/* n of cap in use */
	size_t n, cap;
	int64_t window_ms;	/* 0: every refusal is recorded */
	long long burst;
	int64_t next_ms;	/* the first window to close (monotonic), or -1 */
	bool in_flight;		/* summaries were written in the open turn */
};

/* Start empty: windows of window_s seconds (0: off), burst recorded in each. */
void kw_refusals_init(struct kw_refusals *rf, long long window_s, long long burst)
	KW_NONNULL(1);
void kw_refusals_free(struct kw_refusals *rf) KW_NONNULL(1);

/*
 * Whether the refusal rec (error err, rec->metadata carrying its "reason")
 * is counted for its window's summary instead of being written now.
 */
bool kw_refusals_count(struct kw_refusals *rf, const struct kw_audit_record *rec, int err)
	KW_NONNULL(1, 2);

/* Milliseconds until a window closes (0: now), or -1 when none is open. */
int kw_refusals_due_ms(const struct kw_refusals *rf) KW_NONNULL(1);

/*
 * Close the windows that are over (all: every window, at shutdown),
 * writing their summaries into the turn of t.
 */
void kw_refusals_flush(struct kw_refusals *rf, struct kw_batch *t, bool all) KW_NONNULL(1, 2);

/* The turn ended: the summaries written in it landed, or are counted again. */
void kw_refusals_turn_end(struct kw_refusals *rf, bool landed) KW_NONNULL(1);

#endif
