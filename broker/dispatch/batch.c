/*
 * batch.c - group commit of audit records and state changes (see batch.h).
 */
#include <stdio.h>
#include <string.h>

#include "broker/dispatch/batch.h"
#include "broker/core/daemon.h"
#include "client/keywarden.h"
#include "common/log.h"
#include "broker/alerts/monitor.h"
#include "client/proto.h"
#include "broker/store/sql.h"

static void
state_rollback(struct kw_broker *b)
{
	if (!sqlite3_get_autocommit(b->state))
		(void)sqlite3_exec(b->state, "ROLLBACK", NULL, NULL, NULL);
}

void
kw_batch_enter(struct kw_broker *b)
{
	struct kw_batch *t = &b->batch;

	if (t->open)
		return;
	t->open = true;
	t->write_failed = false;
	kw_monitor_hold(b);
	t->audit_failed = kw_audit_begin(b->audit) < 0;
	/* Requests run as savepoints inside this transaction (kw_sql_begin). */
	if (sqlite3_exec(b->state, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		kw_log_warn("state store: cannot begin the turn's transaction: %s",
		    sqlite3_errmsg(b->state));
}

void
kw_batch_note_write_failure(struct kw_broker *b)
{
	b->batch.write_failed = true;
}

bool
kw_batch_audit_ok(const struct kw_broker *b)
{
	return !b->batch.audit_failed;
}

int
kw_batch_push(struct kw_broker *b, struct kw_conn *conn, json_t *reply, bool close, bool hello,
    kw_after_commit_fn after)
{
	struct kw_batch *t = &b->batch;

	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 64;
		struct kw_batch_entry *e = realloc(t->e, cap * sizeof(*e));
		if (!e)
			return KW_ERR_NOMEM;
		t->e = e;
		t->cap = cap;
	}
	t->e[t->n++] = (struct kw_batch_entry){
		.conn = conn, .reply = json_incref(reply), .close = close, .hello = hello,
		.after = after,
	};
	conn->pending++;
	return 0;
}

void
kw_batch_note_refusal(struct kw_broker *b, const char *user, uid_t uid, const char *action,
    const char *result)
{
	struct kw_batch *t = &b->batch;

	if (!*user)
		return;
	if (t->n_rf == t->cap_rf) {
		size_t cap = t->cap_rf ? 2 * t->cap_rf : 16;
		struct kw_batch_refusal *rf = realloc(t->rf, cap * sizeof(*rf));
		if (!rf)
			return;	/* the monitor misses one refusal; the record is there */
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
 * state.db keeps the trail's head, so records cut from the end of audit.db
 * (or the whole file) while the broker is down are noticed at the next start
 * (kw_audit_reconcile).  Written after the turn's commits, on its own and
 * best effort: a state store that cannot take it (a full disk) must not
 * turn answers whose records landed into errors.
 */
static void
remember_head(struct kw_broker *b)
{
	char hex[KW_AUDIT_HASH_HEX], value[96];
	long long seq;

	kw_audit_head(b->audit, &seq, hex);
	if (seq == b->batch.saved_head || !sqlite3_get_autocommit(b->state))
		return;
	snprintf(value, sizeof(value), "%lld %s", seq, hex);
	if (kw_sql_exec(b->state, NULL, "INSERT OR REPLACE INTO meta (key, value) "
	    "VALUES ('audit_head', ?)", "t", value) == 0)
		b->batch.saved_head = seq;
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

int
kw_batch_commit(struct kw_broker *b)
{
	struct kw_batch *t = &b->batch;
	int r = 0;

	if (!t->open)
		return t->last_result = 0;
	/* The monitor's alerts and locks join the turn (records may fail it: checked below). */
	for (size_t i = 0; i < t->n_rf && !t->audit_failed; i++)
		kw_monitor_recorded(b, t->rf[i].user, t->rf[i].uid, t->rf[i].action,
		    t->rf[i].result);
	t->n_rf = 0;
	t->open = false;
	if (t->audit_failed) {
		kw_audit_rollback(b->audit);
		r = KW_ERR_AUDIT;
	} else {
		r = kw_audit_commit(b->audit);
	}
	/* The turn's alerts go out only with its records. */
	kw_monitor_release(b, r != KW_ERR_AUDIT);
	if (r < 0) {
		state_rollback(b);
	} else if (!sqlite3_get_autocommit(b->state) &&
	    sqlite3_exec(b->state, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		/* Recorded but not done: the records say what was asked, the replies the truth. */
		kw_log_error("state store: changes of %zu requests not saved: %s", t->n,
		    sqlite3_errmsg(b->state));
		state_rollback(b);
		r = KW_ERR_IO;
	}
	for (size_t i = 0; i < t->n; i++) {
		if (r == KW_ERR_AUDIT)
			refuse_entry(&t->e[i], KW_ERR_AUDIT,
			    "request refused: the audit store cannot record it");
		else if (r < 0 && json_is_true(json_object_get(t->e[i].reply, "ok")))
			refuse_entry(&t->e[i], KW_ERR_IO, "the change could not be saved");
	}
	/* One record that could not be written is a failing store too, for the alert. */
	bool failed = r == KW_ERR_AUDIT || t->write_failed;
	if (failed && !t->failing) {
		t->failing = true;
		kw_monitor_audit_failed(b, "the audit store cannot be written");
	} else if (!failed && t->failing) {
		t->failing = false;
		kw_monitor_audit_recovered(b);
	}
	if (r != KW_ERR_AUDIT)
		remember_head(b);
	if (r == 0) {
		/* Each kind of follow-up work once per batch: they sweep, they do not count. */
		for (size_t i = 0; i < t->n; i++) {
			kw_after_commit_fn fn = t->e[i].after;
			bool seen = false;
			for (size_t j = 0; fn && j < i; j++)
				seen = seen || t->e[j].after == fn;
			if (fn && !seen)
				fn(b);
		}
	}
	return t->last_result = r;
}

struct kw_batch_entry *
kw_batch_entries(struct kw_broker *b, size_t *ret_n)
{
	*ret_n = b->batch.n;
	return b->batch.e;
}

void
kw_batch_clear(struct kw_broker *b)
{
	struct kw_batch *t = &b->batch;

	for (size_t i = 0; i < t->n; i++) {
		if (t->e[i].conn)
			t->e[i].conn->pending--;
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
kw_batch_forget_conn(struct kw_broker *b, const struct kw_conn *conn)
{
	for (size_t i = 0; i < b->batch.n; i++)
		if (b->batch.e[i].conn == conn)
			b->batch.e[i].conn = NULL;
}

void
kw_batch_free(struct kw_broker *b)
{
	kw_batch_clear(b);
	free(b->batch.e);
	free(b->batch.rf);
	b->batch = (struct kw_batch){ 0 };
}
