/*
 * dispatch_internal.h - the dispatcher's state, shared by the files of
 * broker/dispatch/ and the unit tests, no one else.
 */
#ifndef KW_DISPATCH_INTERNAL_H
#define KW_DISPATCH_INTERNAL_H

#include <pthread.h>

#include "broker/dispatch/batch.h"
#include "broker/dispatch/dispatch.h"
#include "broker/dispatch/refusals.h"

struct kw_deferred;

struct kw_dispatcher {
	struct kw_services *svc;	/* borrowed */
	struct kw_batch batch;		/* this turn's group commit */
	const struct kw_op **ops;	/* registered rows (static storage of the features) */
	size_t n_ops;
	struct kw_timer *timers;
	size_t n_timers;
	long long client_timeout_s;
	bool record_each;		/* the refusal being recorded changed state: not coalesced */
	bool record_always;		/* the answer being recorded is wanted whatever logActions says */
	struct kw_refusals refusals;	/* repeated refusals being counted (refusals.h) */
	struct kw_internal_watch internal;	/* who watches internal peers (all NULL: none) */

	/* The worker (worker.c): one thread for requests that wait on the network. */
	int worker_fd;			/* eventfd: finished work to collect */
	pthread_t thread;
	bool thread_started;
	bool stopping;
	pthread_mutex_t mu;		/* guards todo, done and stopping */
	pthread_cond_t cv;
	struct kw_deferred *todo;	/* queued for the thread, oldest first */
	struct kw_deferred *done;	/* finished, for the loop */
	struct kw_deferred *all;	/* every outstanding one (loop thread only) */
};

/*
 * Record an answer (or, for an ordinary request logActions does not list,
 * nothing) and return the reply to send: reply itself, or an
 * audit_unavailable refusal that replaces it (reply is released) when the
 * record could not be written.  op may be NULL (not a known request).
 */
json_t *kw_dispatch_audited(struct kw_dispatcher *d, const struct kw_op *op,
    const struct kw_caller *who, json_int_t id, const char *action, const char *resource,
    int err, const char *why, json_t *meta, json_t *reply);

/*
 * The audited reply for a handler's outcome r (result transferred); *ret_keep
 * says whether the request's state changes may be kept.
 */
json_t *kw_dispatch_answer(struct kw_dispatcher *d, struct kw_call *call, int r,
    json_t *result, bool *ret_keep);

bool kw_reply_is_ok(json_t *reply);

/*
 * ceiling.c: what the request hands out or acts on (the row's .perms and
 * .roles, and with KW_OP_TARGET_NOT_STRONGER the user named by .arg) holds
 * no permission the subject lacks (kw_rbac_within).  0; KW_ERR_DENIED with
 * the reason in why; or the state store's error.
 */
int kw_dispatch_ceiling(struct kw_call *call, const struct kw_subject *subject, char *why,
    size_t why_len);

/* worker.c: make the eventfd (0 or KW_ERR_IO); stop and join the thread,
   dropping what is outstanding; a connection went away. */
int kw_worker_init(struct kw_dispatcher *d);
void kw_worker_stop(struct kw_dispatcher *d);
void kw_worker_forget_peer(struct kw_dispatcher *d, const struct kw_peer *peer);

#endif
