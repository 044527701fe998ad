/*
 * batch.c - group commit of audit records and state changes (see batch.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/audit/audit.h"
#include "broker/dispatch/batch.h"
#include "broker/dispatch/peer.h"
#include "broker/dispatch/services.h"
#include "broker/store/state.h"
#include "client/proto.h"
#include "common/errors.h"
#include "common/log.h"

#define EACH_OBSERVER(t, o) \
	for (const struct kw_batch_observer *o = (t)->obs; o < (t)->obs + (t)->n_obs; o++)

int
kw_batch_observe(struct kw_batch *t, const struct kw_batch_observer *o)
{
	if (t->n_obs == KW_ELEMENTSOF(t->obs))
		return KW_ERR_NOMEM;
	t->obs[t->n_obs++] = *o;
	return 0;
}

void
kw_batch_enter(struct kw_batch *t)
{
	if (t->open)
		return;
	t->open = true;
	t->write_failed = false;
	EACH_OBSERVER(t, o)
		if (o->turn_begin)
			o->turn_begin(o->data);
	t->audit_failed = kw_audit_begin(t->svc->audit) < 0;
	/* The state store begins the turn's transaction at its first write (a turn
	   of reads commits nothing there); requests nest in it (kw_state_request_begin). */
	(void)kw_state_turn_begin(t->svc->state);
}

void
kw_batch_note_write_failure(struct kw_batch *t)
{
	t->write_failed = true;
}

void
kw_batch_note_audit_space(struct kw_batch *t, const struct kw_batch_space *sp)
{
	EACH_OBSERVER(t, o)
		if (o->audit_space)
			o->audit_space(o->data, sp);
}

bool
kw_batch_audit_ok(const struct kw_batch *t)
{
	return !t->audit_failed;
}

int
kw_batch_push(struct kw_batch *t, struct kw_peer *peer, json_t *reply, bool close, bool hello,
    kw_after_commit_fn after)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 64;
		struct kw_batch_entry *e = realloc(t->e, cap * sizeof(*e));
		if (!e)
			return KW_ERR_NOMEM;
		t->e = e;
		t->cap = cap;
	}
	t->e[t->n++] = (struct kw_batch_entry){
		.peer = peer, .reply = json_incref(reply), .close = close, .hello = hello,
		.after = after,
	};
	peer->pending++;
	return 0;
}

void
kw_batch_note_refusal(struct kw_batch *t, const char *user, uid_t uid, const char *action,
    const char *result)
{
	if (!*user || t->n_obs == 0)
		return;
	if (t->n_rf == t->cap_rf) {
		size_t cap = t->cap_rf ? 2 * t->cap_rf : 16;
		struct kw_batch_refusal *rf = realloc(t->rf, cap * sizeof(*rf));
		if (!rf)
			return;	/* an observer misses one refusal; the record is there */
		t->rf = rf;
		t->cap_rf = cap;
	}
	struct kw_batch_refusal *e = &t->rf[t->n_rf++];
	snprintf(e->user, sizeof(e->user), "%s", user);
	e->uid = uid;
	snprintf(e->action, sizeof(e->action), "%s", action);
	snprintf(e->result, sizeof(e->result), "%s", result);
}

/*
 * The state store keeps the trail's head, so records cut from the end of
 * audit.db (or the whole file) while the broker is down are noticed at the
 * next start (kw_audit_reconcile).  Written after the turn's commits, on its
 * own and best effort: a state store that cannot take it (a full disk) must
 * not turn answers whose records landed into errors.
 */
static void
remember_head(struct kw_batch *t)
{
	char hex[KW_AUDIT_HASH_HEX], value[96];
	long long seq;

	kw_audit_head(t->svc->audit, &seq, hex);
	if (seq == t->saved_head || kw_state_in_transaction(t->svc->state))
		return;
	snprintf(value, sizeof(value), "%lld %s", seq, hex);
	if (kw_state_meta_set(t->svc->state, "audit_head", value) == 0)
		t->saved_head = seq;
}

/* Replace a held reply by a refusal with the same request id. */
static void
refuse_entry(struct kw_batch_entry *e, int err, const char *why)
{
	json_t *id = json_object_get(e->reply, "id");
	json_t *r = kw_reply_error(json_is_integer(id) ? json_integer_value(id) : -1, err, why);

	if (r) {
		json_decref(e->reply);
		e->reply = r;
	}
}

/* Each kind of follow-up work once per batch: they sweep, they do not count. */
static void
run_after_commit(struct kw_batch *t)
{
	for (size_t i = 0; i < t->n; i++) {
		kw_after_commit_fn fn = t->e[i].after;
		bool seen = false;
		for (size_t j = 0; fn && j < i; j++)
			seen = seen || t->e[j].after == fn;
		if (fn && !seen)
			fn(t->svc);
	}
}

static void
tell_audit_state(struct kw_batch *t, int r)
{
	/* One record that could not be written is a failing store too, for the alert. */
	bool failed = r == KW_ERR_AUDIT || t->write_failed;

	if (failed == t->failing)
		return;
	t->failing = failed;
	EACH_OBSERVER(t, o)
		if (o->audit_state)
			o->audit_state(o->data, failed ? "the audit store cannot be written" : NULL);
}

int
kw_batch_commit(struct kw_batch *t)
{
	struct kw_services *svc = t->svc;
	int r = 0;

	if (!t->open)
		return 0;
	/* The observers' records and locks join the turn (records may fail it: checked below). */
	for (size_t i = 0; i < t->n_rf && !t->audit_failed; i++)
		EACH_OBSERVER(t, o)
			if (o->refused)
				o->refused(o->data, &t->rf[i]);
	t->n_rf = 0;
	t->open = false;
	if (t->audit_failed) {
		kw_audit_rollback(svc->audit);
		r = KW_ERR_AUDIT;
	} else {
		r = kw_audit_commit(svc->audit);
	}
	/* What observers send about the turn goes out only with its records. */
	EACH_OBSERVER(t, o)
		if (o->turn_end)
			o->turn_end(o->data, r != KW_ERR_AUDIT);
	if (r < 0) {
		kw_state_turn_rollback(svc->state);
	} else if (kw_state_turn_commit(svc->state) < 0) {
		/* Recorded but not done: the records say what was asked, the replies the truth. */
		kw_log_error("state store: changes of %zu requests not saved", t->n);
		r = KW_ERR_IO;
	}
	for (size_t i = 0; i < t->n; i++) {
		if (r == KW_ERR_AUDIT)
			refuse_entry(&t->e[i], KW_ERR_AUDIT,
			    "request refused: the audit store cannot record it");
		else if (r < 0 && json_is_true(json_object_get(t->e[i].reply, "ok")))
			refuse_entry(&t->e[i], KW_ERR_IO, "the change could not be saved");
	}
	tell_audit_state(t, r);
	if (r != KW_ERR_AUDIT)
		remember_head(t);
	if (r == 0)
		run_after_commit(t);
	return r;
}

struct kw_batch_entry *
kw_batch_entries(struct kw_batch *t, size_t *ret_n)
{
	*ret_n = t->n;
	return t->e;
}

void
kw_batch_clear(struct kw_batch *t)
{
	for (size_t i = 0; i < t->n; i++) {
		if (t->e[i].peer)
			t->e[i].peer->pending--;
		json_decref(t->e[i].reply);
	}
	t->n = 0;
	if (t->cap > 1024) {
		free(t->e);
		t->e = NULL;
		t->cap = 0;
	}
}

void
kw_batch_forget_peer(struct kw_batch *t, const struct kw_peer *peer)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->e[i].peer == peer)
			t->e[i].peer = NULL;
}

void
kw_batch_free(struct kw_batch *t)
{
	kw_batch_clear(t);
	free(t->e);
	free(t->rf);
	t->e = NULL;
	t->rf = NULL;
	t->cap = t->cap_rf = t->n_rf = 0;
}
