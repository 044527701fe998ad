/*
 * worker.c - requests that wait on the network, finished off the event
 * loop (see kw_call_defer in dispatch.h).
 *
 * One thread takes queued work in order; it touches nothing but the work's
 * own context.  When a piece is done it is moved to the done list and the
 * eventfd is bumped; the loop then collects it (kw_dispatch_worker_drain),
 * runs its finish step, and audits and answers it like any request.  A
 * connection that closes meanwhile only loses the reply: the record is
 * still written.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "broker/dispatch/dispatch_internal.h"
#include "common/errors.h"
#include "common/log.h"

struct kw_deferred {
	struct kw_deferred *next;		/* in todo or done */
	struct kw_deferred *all_prev, *all_next;
	struct kw_peer *peer;			/* NULL once the connection closed */
	struct kw_caller caller;
	char user[64];
	const struct kw_op *op;
	json_int_t id;
	char resource[320];
	bool has_resource;
	char subject[65];
	json_t *args;				/* a copy */
	json_t *meta;				/* the record's metadata so far */
	kw_work_fn work;
	kw_finish_fn finish;
	void (*free_ctx)(void *ctx);
	void *ctx;
};

int
kw_worker_init(struct kw_dispatcher *d)
{
	if (pthread_mutex_init(&d->mu, NULL) != 0)
		return KW_ERR_INTERNAL;
	if (pthread_cond_init(&d->cv, NULL) != 0 ||
	    (d->worker_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		kw_log_error("worker: %s", strerror(errno));
		pthread_mutex_destroy(&d->mu);
		return KW_ERR_IO;
	}
	return 0;
}

static void
deferred_free(struct kw_deferred *w)
{
	if (!w)
		return;
	if (w->free_ctx)
		w->free_ctx(w->ctx);
	json_decref(w->args);
	json_decref(w->meta);
	free(w);
}

static void
append(struct kw_deferred **list, struct kw_deferred *w)
{
	while (*list)
		list = &(*list)->next;
	w->next = NULL;
	*list = w;
}

static void *
worker_main(void *arg)
{
	struct kw_dispatcher *d = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&d->mu);
	for (;;) {
		while (!d->todo && !d->stopping)
			pthread_cond_wait(&d->cv, &d->mu);
		if (d->stopping)
			break;
		struct kw_deferred *w = d->todo;
		d->todo = w->next;
		pthread_mutex_unlock(&d->mu);
		w->work(w->ctx);
		pthread_mutex_lock(&d->mu);
		append(&d->done, w);
		/* An eventfd write only fails when the counter would overflow. */
		(void)!write(d->worker_fd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

static int
start_thread(struct kw_dispatcher *d)
{
	sigset_t all, old;
	int r;

	if (d->thread_started)
		return 0;
	/* Signals stay with the loop's signalfd. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = pthread_create(&d->thread, NULL, worker_main, d);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		kw_log_error("worker: cannot start a thread: %s", strerror(r));
		return KW_ERR_INTERNAL;
	}
	d->thread_started = true;
	return 0;
}

int
kw_call_defer(struct kw_call *call, kw_work_fn work, kw_finish_fn finish,
    void (*free_ctx)(void *ctx), void *ctx)
{
	struct kw_dispatcher *d = call->d;
	struct kw_deferred *w = calloc(1, sizeof(*w));
	int r;

	if (!w || !(w->args = json_deep_copy(call->args))) {
		free(w);
		if (free_ctx)
			free_ctx(ctx);
		return KW_ERR_NOMEM;
	}
	w->work = work;
	w->finish = finish;
	w->free_ctx = free_ctx;
	w->ctx = ctx;
	if ((r = start_thread(d)) < 0) {
		deferred_free(w);
		return r;
	}
	w->peer = call->peer;
	w->caller = *call->caller;
	snprintf(w->user, sizeof(w->user), "%s", call->caller->user ? call->caller->user : "");
	w->caller.user = call->caller->user ? w->user : NULL;
	w->op = call->op;
	w->id = call->id;
	if ((w->has_resource = call->resource != NULL))
		snprintf(w->resource, sizeof(w->resource), "%s", call->resource);
	snprintf(w->subject, sizeof(w->subject), "%s", call->subject ? call->subject : "");
	w->meta = json_incref(call->meta);
	/* The connection waits for this answer before its next request is read. */
	call->peer->deferred = true;
	call->peer->pending++;
	call->deferred = w;
	w->all_next = d->all;
	if (d->all)
		d->all->all_prev = w;
	d->all = w;
	pthread_mutex_lock(&d->mu);
	append(&d->todo, w);
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
	return 0;
}

int
kw_dispatch_worker_fd(const struct kw_dispatcher *d)
{
	return d->worker_fd;
}

static void
unlink_all(struct kw_dispatcher *d, struct kw_deferred *w)
{
	if (w->all_prev)
		w->all_prev->all_next = w->all_next;
	else
		d->all = w->all_next;
	if (w->all_next)
		w->all_next->all_prev = w->all_prev;
}

/* Audit and answer one finished request, in the current turn. */
static void
finish_one(struct kw_dispatcher *d, struct kw_deferred *w)
{
	struct kw_call call = {
		.svc = d->svc, .d = d, .peer = w->peer, .caller = &w->caller, .op = w->op,
		.args = w->args, .id = w->id, .subject = w->subject,
		.resource = w->has_resource ? w->resource : NULL, .meta = w->meta,
	};
	json_t *result = NULL, *reply;
	bool keep;
	int r = w->finish(&call, w->ctx, &result);

	reply = kw_dispatch_answer(d, &call, r, result, &keep);
	if (w->peer) {
		w->peer->deferred = false;
		if (!reply || kw_batch_push(&d->batch, w->peer, reply, !reply, false,
		    call.after_commit) < 0)
			kw_log_warn("worker: the answer to %s could not be queued", w->op->name);
		w->peer->pending--;	/* the hold taken in kw_call_defer */
	}
	json_decref(reply);
}

void
kw_dispatch_worker_drain(struct kw_dispatcher *d)
{
	struct kw_deferred *list, *w;
	uint64_t n;

	(void)!read(d->worker_fd, &n, sizeof(n));
	pthread_mutex_lock(&d->mu);
	list = d->done;
	d->done = NULL;
	pthread_mutex_unlock(&d->mu);
	while ((w = list)) {
		list = w->next;
		unlink_all(d, w);
		finish_one(d, w);
		deferred_free(w);
	}
}

void
kw_worker_forget_peer(struct kw_dispatcher *d, const struct kw_peer *peer)
{
	for (struct kw_deferred *w = d->all; w; w = w->all_next)
		if (w->peer == peer)
			w->peer = NULL;
}

void
kw_worker_stop(struct kw_dispatcher *d)
{
	if (d->worker_fd < 0)
		return;
	pthread_mutex_lock(&d->mu);
	d->stopping = true;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	/* The piece of work under way finishes (its own timeout bounds it). */
	if (d->thread_started)
		pthread_join(d->thread, NULL);
	while (d->all) {
		struct kw_deferred *w = d->all;
		d->all = w->all_next;
		deferred_free(w);
	}
	d->todo = d->done = NULL;
	close(d->worker_fd);
	d->worker_fd = -1;
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->mu);
}
