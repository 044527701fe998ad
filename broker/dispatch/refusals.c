/*
 * refusals.c - counting repeated refusals (see refusals.h).
 *
 * A plain array scanned from the front: it holds one entry per key that
 * was refused within the last window, which is a handful on a quiet system
 * and bounded by MAX_KEYS on a noisy one.  When it is full, a key without
 * anything counted makes room; if there is none, a new key's refusals are
 * simply recorded one by one (never lost).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/audit/audit.h"
#include "broker/dispatch/batch.h"
#include "broker/dispatch/refusals.h"
#include "broker/dispatch/services.h"
#include "common/clock.h"
#include "common/errors.h"
#include "common/log.h"

#define MAX_KEYS 1024

struct kw_refusal {
	uid_t uid;
	int err;
	char action[48];
	char user[64];
	char result[8];
	char resource[96];
	bool one_resource;	/* every one counted named resource */
	char reason[160];
	pid_t pid;		/* of the last one counted */
	long long seen;		/* recorded one by one in this window (up to burst) */
	long long count;	/* counted, waiting for the summary */
	long long flushing;	/* in a summary written in the open turn */
	long long first, last;	/* wall-clock seconds of the counted ones */
	int64_t end_ms;		/* when the window closes */
};

void
kw_refusals_init(struct kw_refusals *rf, long long window_s, long long burst)
{
	*rf = (struct kw_refusals){ .window_ms = window_s * 1000, .burst = burst, .next_ms = -1 };
}

void
kw_refusals_free(struct kw_refusals *rf)
{
	free(rf->e);
	rf->e = NULL;
	rf->n = rf->cap = 0;
}

static struct kw_refusal *
find(struct kw_refusals *rf, uid_t uid, int err, const char *action)
{
	for (size_t i = 0; i < rf->n; i++)
		if (rf->e[i].uid == uid && rf->e[i].err == err &&
		    strcmp(rf->e[i].action, action) == 0)
			return &rf->e[i];
	return NULL;
}

/* A free entry: a new one, or the quiet one whose window closes first.  NULL if none. */
static struct kw_refusal *
make_room(struct kw_refusals *rf)
{
	struct kw_refusal *quiet = NULL;

	if (rf->n == rf->cap && rf->cap < MAX_KEYS) {
		size_t cap = rf->cap ? 2 * rf->cap : 16;
		struct kw_refusal *e = realloc(rf->e, cap * sizeof(*e));
		if (e) {
			rf->e = e;
			rf->cap = cap;
		}
	}
	if (rf->n < rf->cap)
		return &rf->e[rf->n++];
	for (size_t i = 0; i < rf->n; i++)
		if (rf->e[i].count == 0 && rf->e[i].flushing == 0 &&
		    (!quiet || rf->e[i].end_ms < quiet->end_ms))
			quiet = &rf->e[i];
	return quiet;
}

bool
kw_refusals_count(struct kw_refusals *rf, const struct kw_audit_record *rec, int err)
{
	struct kw_refusal *e;
	const char *reason;

	if (rf->window_ms == 0 || rec->uid == 0 || !rec->user ||
	    strlen(rec->action) >= sizeof(e->action) || strlen(rec->user) >= sizeof(e->user))
		return false;
	if (!(e = find(rf, rec->uid, err, rec->action))) {
		if (!(e = make_room(rf)))
			return false;
		*e = (struct kw_refusal){ .uid = rec->uid, .err = err,
		    .end_ms = kw_mono_ms() + rf->window_ms };
		snprintf(e->action, sizeof(e->action), "%s", rec->action);
		snprintf(e->user, sizeof(e->user), "%s", rec->user);
		snprintf(e->result, sizeof(e->result), "%s", rec->result);
		if (rf->next_ms < 0 || e->end_ms < rf->next_ms)
			rf->next_ms = e->end_ms;
	}
	/* The first ones of a window are recorded as they come. */
	if (e->seen < rf->burst) {
		e->seen++;
		return false;
	}
	if (e->count == 0) {
		reason = json_string_value(json_object_get(rec->metadata, "reason"));
		snprintf(e->reason, sizeof(e->reason), "%s", reason ? reason : "");
		snprintf(e->resource, sizeof(e->resource), "%s", rec->resource ? rec->resource : "");
		e->one_resource = rec->resource && strlen(rec->resource) < sizeof(e->resource);
		e->first = kw_now();
	} else if (e->one_resource && (!rec->resource || strcmp(rec->resource, e->resource) != 0)) {
		e->one_resource = false;
	}
	e->count++;
	e->last = kw_now();
	e->pid = rec->pid;
	return true;
}

int
kw_refusals_due_ms(const struct kw_refusals *rf)
{
	int64_t left;

	if (rf->next_ms < 0)
		return -1;
	left = rf->next_ms - kw_mono_ms();
	return left <= 0 ? 0 : left > 60000 ? 60000 : (int)left;
}

/* The summary record of e's counted refusals, into t's turn.  0 or an error. */
static int
write_summary(const struct kw_refusals *rf, struct kw_batch *t, const struct kw_refusal *e)
{
	char first[32], last[32];
	json_t *meta = json_pack("{s:s, s:s, s:b, s:I, s:s, s:s, s:I}",
	    "error", kw_error_name(e->err), "reason", e->reason, "summary", 1,
	    "count", (json_int_t)e->count, "first", kw_time_text(e->first, first),
	    "last", kw_time_text(e->last, last), "window", (json_int_t)(rf->window_ms / 1000));
	struct kw_audit_record rec = {
		.user = e->user, .uid = e->uid, .pid = e->pid, .action = e->action,
		.resource = e->one_resource ? e->resource : NULL, .result = e->result,
		.metadata = meta, .request_id = -1,
	};
	int r;

	kw_batch_enter(t);
	r = !meta ? KW_ERR_NOMEM : !kw_batch_audit_ok(t) ? KW_ERR_AUDIT :
	    kw_audit_write(t->svc->audit, &rec);
	if (r == KW_ERR_AUDIT)
		kw_batch_note_write_failure(t);
	json_decref(meta);
	return r;
}

void
kw_refusals_flush(struct kw_refusals *rf, struct kw_batch *t, bool all)
{
	int64_t now = kw_mono_ms(), next = -1;

	if (!all && (rf->next_ms < 0 || now < rf->next_ms))
		return;
	for (size_t i = 0; i < rf->n;) {
		struct kw_refusal *e = &rf->e[i];
		if (all || e->end_ms <= now) {
			if (e->count > 0 && write_summary(rf, t, e) == 0) {
				e->flushing += e->count;
				e->count = 0;
				rf->in_flight = true;
			} else if (e->count > 0) {
				kw_log_error("%lld refusals of %.64s (%s) could not be recorded yet",
				    e->count, e->user, e->action);
			} else if (e->flushing == 0) {
				/* A quiet window: forget the key. */
				rf->e[i] = rf->e[--rf->n];
				continue;
			}
			/* The flood goes on: the next window counts from its first refusal. */
			e->seen = rf->burst;
			e->end_ms = now + rf->window_ms;
		}
		if (next < 0 || e->end_ms < next)
			next = e->end_ms;
		i++;
	}
	rf->next_ms = next;
}

void
kw_refusals_turn_end(struct kw_refusals *rf, bool landed)
{
	if (!rf->in_flight)
		return;
	rf->in_flight = false;
	for (size_t i = 0; i < rf->n; i++) {
		if (!landed)
			rf->e[i].count += rf->e[i].flushing;
		rf->e[i].flushing = 0;
	}
}
