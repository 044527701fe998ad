/*
 * dispatch.c - the dispatcher (see dispatch.h).
 *
 * Like OpenSSH's monitor table, each request is listed once with the
 * permission it needs, and this file is the only caller of the
 * authorization decision.  Every answer, allowed or refused, is audited
 * before it is returned; if the record cannot be written the answer is
 * replaced by an audit_unavailable refusal and any change is rolled back
 * (fail closed).  A refusal one user repeats is counted instead, and its
 * window's summary record stands for it (refusals.h).
 */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/accounts/cache.h"
#include "broker/accounts/roles.h"
#include "broker/audit/audit.h"
#include "broker/dispatch/dispatch_internal.h"
#include "broker/login/sessions.h"
#include "broker/store/locks.h"
#include "broker/store/state.h"
#include "broker/store/users.h"
#include "client/keywarden.h"
#include "client/proto.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/perm.h"

static int op_hello(struct kw_call *call, json_t **ret_result);

/* The protocol's own request; the features register theirs (broker/main.c). */
static const struct kw_op protocol_ops[] = {
	{ .name = "hello", .flags = KW_OP_HANDSHAKE | KW_OP_ORDINARY, .fn = op_hello },
};

static const char *const verb_names[] = {
	[KW_VERB_NONE] = "",
	[KW_VERB_READ] = "read",
	[KW_VERB_WRITE] = "write",
	[KW_VERB_EXECUTE] = "execute",
	[KW_VERB_ADMIN] = "admin",
	[KW_VERB_FROM_HANDLER] = "",
};

/* Summaries of counted refusals land with their turn, or are counted again. */
static void
refusals_turn_end(void *data, bool landed)
{
	kw_refusals_turn_end(&((struct kw_dispatcher *)data)->refusals, landed);
}

int
kw_dispatcher_new(struct kw_services *svc, long long client_timeout_s,
    struct kw_dispatcher **ret_d)
{
	struct kw_dispatcher *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return KW_ERR_NOMEM;
	d->svc = svc;
	d->client_timeout_s = client_timeout_s;
	d->batch.svc = svc;
	d->worker_fd = -1;
	svc->batch = &d->batch;
	kw_refusals_init(&d->refusals, kw_config_int(svc->cfg, "security.audit.refusalWindow"),
	    kw_config_int(svc->cfg, "security.audit.refusalBurst"));
	const struct kw_batch_observer o = { .turn_end = refusals_turn_end, .data = d };
	if ((r = kw_batch_observe(&d->batch, &o)) < 0 || (r = kw_worker_init(d)) < 0 ||
	    (r = kw_dispatch_add_ops(d, protocol_ops, KW_ELEMENTSOF(protocol_ops))) < 0) {
		kw_dispatcher_free(d);
		return r;
	}
	*ret_d = d;
	return 0;
}

void
kw_dispatcher_free(struct kw_dispatcher *d)
{
	if (!d)
		return;
	kw_worker_stop(d);
	kw_batch_free(&d->batch);
	kw_refusals_free(&d->refusals);
	if (d->svc->batch == &d->batch)
		d->svc->batch = NULL;
	free(d->ops);
	for (size_t i = 0; i < d->n_timers; i++)
		if (d->timers[i].free)
			d->timers[i].free(d->timers[i].data);
	free(d->timers);
	free(d);
}

static const struct kw_op *
lookup(const struct kw_dispatcher *d, const char *name)
{
	for (size_t i = 0; i < d->n_ops; i++)
		if (strcmp(d->ops[i]->name, name) == 0)
			return d->ops[i];
	return NULL;
}

int
kw_dispatch_add_ops(struct kw_dispatcher *d, const struct kw_op *ops, size_t n)
{
	const struct kw_op **grown;

	/* All or nothing: a table with a name already served is refused whole. */
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < i + d->n_ops; j++)
			if (strcmp(ops[i].name, j < i ? ops[j].name : d->ops[j - i]->name) == 0) {
				kw_log_error("request %s registered twice", ops[i].name);
				return KW_ERR_INVALID;
			}
	if (!(grown = realloc(d->ops, (d->n_ops + n) * sizeof(*grown))))
		return KW_ERR_NOMEM;
	d->ops = grown;
	for (size_t i = 0; i < n; i++)
		d->ops[d->n_ops++] = &ops[i];
	return 0;
}

int
kw_dispatch_add_timer(struct kw_dispatcher *d, const struct kw_timer *t)
{
	struct kw_timer *grown = realloc(d->timers, (d->n_timers + 1) * sizeof(*grown));

	if (!grown)
		return KW_ERR_NOMEM;
	d->timers = grown;
	d->timers[d->n_timers++] = *t;
	return 0;
}

int
kw_dispatch_timers_due_ms(struct kw_dispatcher *d)
{
	int due = kw_refusals_due_ms(&d->refusals);

	for (size_t i = 0; i < d->n_timers; i++) {
		int ms = d->timers[i].due_ms(d->timers[i].data);
		if (due < 0 || ms < due)
			due = ms;
	}
	return due;
}

void
kw_dispatch_run_timers(struct kw_dispatcher *d)
{
	kw_refusals_flush(&d->refusals, &d->batch, false);
	for (size_t i = 0; i < d->n_timers; i++)
		if (d->timers[i].due_ms(d->timers[i].data) == 0)
			d->timers[i].run(d->timers[i].data);
}

void
kw_dispatch_watch_internal(struct kw_dispatcher *d, const struct kw_internal_watch *w)
{
	d->internal = *w;
}

bool
kw_dispatch_helpers_finishing(struct kw_dispatcher *d)
{
	return d->internal.finishing && d->internal.finishing(d->internal.data);
}

void
kw_dispatch_internal_gone(struct kw_dispatcher *d, const struct kw_peer *peer)
{
	if (d->internal.gone)
		d->internal.gone(d->internal.data, peer);
}

void
kw_dispatch_flush(struct kw_dispatcher *d)
{
	/* A helper stops first: what it leaves unfinished is recorded in the last turn. */
	if (d->internal.stopping)
		d->internal.stopping(d->internal.data);
	kw_refusals_flush(&d->refusals, &d->batch, true);
}

void
kw_dispatch_reload(struct kw_dispatcher *d, long long client_timeout_s)
{
	const struct kw_config *cfg = d->svc->cfg;
	long long window = kw_config_int(cfg, "security.audit.refusalWindow");
	long long burst = kw_config_int(cfg, "security.audit.refusalBurst");

	d->client_timeout_s = client_timeout_s;
	if (window * 1000 == d->refusals.window_ms && burst == d->refusals.burst)
		return;
	/* Windows opened under the old settings close now, with their summaries. */
	kw_batch_enter(&d->batch);
	kw_refusals_flush(&d->refusals, &d->batch, true);
	d->refusals.window_ms = window * 1000;
	d->refusals.burst = burst;
}

struct kw_batch *
kw_dispatch_batch(struct kw_dispatcher *d)
{
	return &d->batch;
}

const char *
kw_arg_str(json_t *args, const char *key)
{
	return json_string_value(json_object_get(args, key));
}

static int
op_hello(struct kw_call *call, json_t **ret_result)
{
	json_t *v = json_object_get(call->args, "version");

	if (call->peer->greeted) {
		snprintf(call->msg, sizeof(call->msg), "handshake already done on this connection");
		return KW_ERR_BAD_REQUEST;
	}
	if (!json_is_integer(v)) {
		snprintf(call->msg, sizeof(call->msg), "hello needs an integer \"version\"");
		return KW_ERR_BAD_REQUEST;
	}
	if (json_integer_value(v) != KW_PROTOCOL_VERSION) {
		snprintf(call->msg, sizeof(call->msg),
		    "this broker speaks protocol version %d, not %lld",
		    KW_PROTOCOL_VERSION, (long long)json_integer_value(v));
		return KW_ERR_VERSION;
	}
	*ret_result = json_pack("{s:i, s:s}", "version", KW_PROTOCOL_VERSION,
	    "server", "keywarden " KW_VERSION);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}

/* The roles an operation hands out: one role name, or a list of them. */
static int
check_roles_arg(const struct kw_op *op, struct kw_call *call)
{
	json_t *v = json_object_get(call->args, op->roles), *e;
	size_t i;

	if (!v && (op->flags & KW_OP_ROLES_OPTIONAL))
		return 0;
	if (json_is_string(v) && kw_name_ok(KW_NAME_ROLE, json_string_value(v)))
		return 0;
	if (json_is_array(v)) {
		json_array_foreach(v, i, e)
			if (!kw_name_ok(KW_NAME_ROLE, json_string_value(e)))
				goto bad;
		return 0;
	}
 bad:
	snprintf(call->msg, sizeof(call->msg), "\"%s\" must name roles: %s", op->roles,
	    kw_name_rule(KW_NAME_ROLE));
	return KW_ERR_INVALID;
}

/* Each role handed out needs the verb on role/NAME as well. */
static bool
decide_roles(const struct kw_op *op, struct kw_call *call, const struct kw_subject *subject,
    const char *verb, char *why, size_t why_len)
{
	json_t *v = json_object_get(call->args, op->roles), *e;
	char res[96];
	size_t i;

	if (json_is_string(v)) {
		snprintf(res, sizeof(res), "role/%s", json_string_value(v));
		return kw_rbac_decide(call->caller, subject, verb, res, why, why_len);
	}
	json_array_foreach(v, i, e) {
		snprintf(res, sizeof(res), "role/%s", json_string_value(e));
		if (!kw_rbac_decide(call->caller, subject, verb, res, why, why_len))
			return false;
	}
	return true;
}

/* Work out verb, resource and subject from the table row and the arguments. */
static int
resolve(const struct kw_op *op, struct kw_call *call, const char **ret_verb,
    char *resource, size_t res_len)
{
	const char *v;
	int r;

	if (op->verb == KW_VERB_FROM_ARGS) {
		v = kw_arg_str(call->args, "action");
		if (!v || !kw_perm_verb_known(v)) {
			snprintf(call->msg, sizeof(call->msg),
			    "\"action\" must be one of read, write, execute, admin");
			return KW_ERR_BAD_REQUEST;
		}
		*ret_verb = v;
	} else {
		*ret_verb = verb_names[op->verb];
	}
	if (op->arg) {
		v = kw_arg_str(call->args, op->arg);
		if (!kw_name_ok(op->arg_kind, v)) {
			snprintf(call->msg, sizeof(call->msg), "\"%s\" must be a valid %s", op->arg,
			    kw_name_rule(op->arg_kind));
			return KW_ERR_BAD_REQUEST;
		}
		snprintf(resource, res_len, "%s%s%s", op->resource ? op->resource : "",
		    op->resource ? "/" : "", v);
		call->resource = resource;
	} else if (op->resource) {
		snprintf(resource, res_len, "%s", op->resource);
		call->resource = resource;
	}
	if (op->roles && (r = check_roles_arg(op, call)) < 0)
		return r;
	call->subject = call->caller->user;
	if (op->acts_as && json_object_get(call->args, op->acts_as)) {
		v = kw_arg_str(call->args, op->acts_as);
		if (!kw_name_ok(KW_NAME_USER, v)) {
			snprintf(call->msg, sizeof(call->msg), "\"%s\" must be a user name", op->acts_as);
			return KW_ERR_BAD_REQUEST;
		}
		call->subject = v;
	}
	return 0;
}

/*
 * What keywarden knows of the subject: registration and permissions
 * (*ret_perms: free it).  From the cache (accounts/cache.h), which the
 * writes to users, grants and roles invalidate themselves.
 */
static int
load_subject(struct kw_call *call, struct kw_subject *s, struct kw_perm **ret_perms)
{
	struct kw_services *svc = call->svc;
	struct kw_known k;
	int r;

	*ret_perms = NULL;
	s->user = call->subject;
	s->registered = false;
	s->perms = NULL;
	s->n_perms = 0;
	r = strcmp(call->subject, call->caller->user) == 0 ?
	    kw_known_by_uid(svc->roles, svc->state, call->caller->uid, KW_KNOWN_PERMS, &k) :
	    kw_known_by_name(svc->roles, svc->state, call->subject, KW_KNOWN_PERMS, &k);
	if (r == KW_ERR_NOT_FOUND)
		return 0;
	if (r < 0)
		return r;
	s->registered = true;
	s->perms = *ret_perms = TAKE_PTR(k.perms);
	s->n_perms = k.n_perms;
	kw_known_clear(&k);
	return 0;
}

/*
 * Ordinary requests are recorded only when security.audit.logActions lists
 * them; refusals and everything else (logins, keys, sessions, roles, users,
 * locks, decisions, audit and incident work) are always recorded.
 */
static bool
wanted(struct kw_dispatcher *d, const struct kw_op *op, const char *action, int err)
{
	if (!op || !(op->flags & KW_OP_ORDINARY) || err != 0 || d->record_always)
		return true;
	return kw_dispatch_action_logged(d->svc, action);
}

bool
kw_dispatch_action_logged(const struct kw_services *svc, const char *action)
{
	json_t *list = kw_config_get(svc->cfg, "security.audit.logActions"), *p;
	size_t i;

	json_array_foreach(list, i, p)
		if (json_is_string(p) && fnmatch(json_string_value(p), action, 0) == 0)
			return true;
	return false;
}

/*
 * Tell the observers whom a recorded refusal counts against: the registered
 * user it names when the caller may act for that user (root, for a login
 * through sshd or sudo), else the caller -- also when the caller was refused
 * precisely because it may not act for the user it named.  Either way by
 * uid, so a name no one holds is never counted against anybody.
 */
static void
note_refusal(struct kw_dispatcher *d, const struct kw_caller *who, const char *about,
    const char *action, const char *result)
{
	struct kw_known k;

	if (!who->user)
		return;
	if (about && strcmp(about, who->user) != 0 && kw_rbac_may_act_for(who, about) &&
	    kw_known_by_name(d->svc->roles, d->svc->state, about, 0, &k) == 0)
		kw_batch_note_refusal(&d->batch, k.user.name, k.user.uid, action, result);
	else
		kw_batch_note_refusal(&d->batch, who->user, who->uid, action, result);
}

/* Write rec, or count it when it repeats a refusal: its record is then the summary. */
static int
record(struct kw_dispatcher *d, const struct kw_audit_record *rec, int err)
{
	if (err != 0 && !d->record_each && kw_refusals_count(&d->refusals, rec, err))
		return 0;
	return kw_audit_write(d->svc->audit, rec);
}

json_t *
kw_dispatch_audited(struct kw_dispatcher *d, const struct kw_op *op,
    const struct kw_caller *who, json_int_t id, const char *action, const char *resource,
    int err, const char *why, json_t *meta, json_t *reply)
{
	struct kw_batch *t = &d->batch;
	struct kw_audit_record rec = {
		.user = who->user,
		.uid = who->uid,
		.pid = who->pid,
		.action = action,
		.resource = resource,
		.result = err == 0 ? "success" : (err == KW_ERR_DENIED || err == KW_ERR_LOCKED ||
		    err == KW_ERR_SESSION || err == KW_ERR_EXPIRED || err == KW_ERR_BUDGET) ?
		    "denied" : "error",
		.metadata = meta,
		.request_id = id,
	};
	json_t *own = meta ? NULL : json_object();
	int r;

	if (!wanted(d, op, action, err))
		return reply;
	if (!meta)
		rec.metadata = meta = own;
	if (meta && err != 0) {
		json_object_set_new(meta, "error", json_string(kw_error_name(err)));
		if (why)
			json_object_set_new(meta, "reason", json_string(why));
	}
	kw_batch_enter(t);
	r = kw_batch_audit_ok(t) ? record(d, &rec, err) : KW_ERR_AUDIT;
	if (r == 0 && err != 0)
		note_refusal(d, who, json_string_value(json_object_get(meta, "user")), action,
		    rec.result);
	json_decref(own);
	if (r < 0) {
		kw_batch_note_write_failure(t);
		json_decref(reply);
		return kw_reply_error(id, KW_ERR_AUDIT,
		    "request refused: the audit store cannot record it");
	}
	return reply;
}

static json_t *
refuse(struct kw_dispatcher *d, const struct kw_op *op, struct kw_peer *p, json_int_t id,
    const char *action, const char *resource, int err, const char *why)
{
	return kw_dispatch_audited(d, op, &p->caller, id, action, resource, err, why, NULL,
	    kw_reply_error(id, err, why));
}

bool
kw_reply_is_ok(json_t *reply)
{
	return json_is_true(json_object_get(reply, "ok"));
}

/* True when the answer was replaced because its record failed. */
static bool
audit_refused(json_t *reply)
{
	const char *code = json_string_value(json_object_get(json_object_get(reply, "error"), "code"));

	return code && strcmp(code, kw_error_name(KW_ERR_AUDIT)) == 0;
}

json_t *
kw_dispatch_answer(struct kw_dispatcher *d, struct kw_call *call, int r, json_t *result,
    bool *ret_keep)
{
	const struct kw_op *op = call->op;
	const char *action = call->action ? call->action : op->name;
	json_t *reply;

	if (r < 0) {
		const char *why = call->msg[0] ? call->msg : kw_strerror(r);
		json_decref(result);
		/* A refusal that changes state (a wrong code counts, a lock begins) is a
		   record of that change: never folded into a summary. */
		d->record_each = call->keep_on_error;
		reply = kw_dispatch_audited(d, op, call->caller, call->id, action, call->resource,
		    r, why, call->meta, kw_reply_error(call->id, r, why));
		d->record_each = false;
		/* What must count even on failure (a wrong code) lands only with its record. */
		*ret_keep = call->keep_on_error && !audit_refused(reply);
	} else {
		d->record_always = call->always_record;
		reply = kw_dispatch_audited(d, op, call->caller, call->id, action, call->resource,
		    0, NULL, call->meta, kw_reply_ok(call->id, result));
		d->record_always = false;
		*ret_keep = kw_reply_is_ok(reply);
	}
	return reply;
}

/*
 * Run an authorized request: handler and record, inside the turn's
 * transactions; the change is kept only when its record was written, and
 * lands with the turn's commit.  NULL with call->deferred set when the
 * handler handed the request to a worker (it is answered from there).
 */
static json_t *
run(struct kw_dispatcher *d, const struct kw_op *op, struct kw_call *call, int *ret_rc)
{
	struct kw_state *st = d->svc->state;
	json_t *result = NULL, *reply;
	bool writes = op->flags & KW_OP_WRITES, keep;
	int r;

	kw_batch_enter(&d->batch);
	if (writes && kw_state_request_begin(st) < 0) {
		snprintf(call->msg, sizeof(call->msg), "the state store is busy or unusable");
		return kw_dispatch_answer(d, call, *ret_rc = KW_ERR_IO, NULL, &keep);
	}
	r = *ret_rc = op->fn(call, &result);
	if (r == 0 && call->deferred) {
		json_decref(result);
		if (writes)
			kw_state_request_undo(st);
		return NULL;
	}
	reply = kw_dispatch_answer(d, call, r, result, &keep);
	if (writes) {
		if (!keep)
			kw_state_request_undo(st);
		else if (kw_state_request_keep(st) < 0) {
			kw_state_request_undo(st);
			json_decref(reply);
			snprintf(call->msg, sizeof(call->msg), "the change could not be saved");
			json_object_clear(call->meta);
			return kw_dispatch_answer(d, call, KW_ERR_IO, NULL, &keep);
		}
	}
	return reply;
}

bool
kw_mfa_required(const struct kw_services *svc)
{
	/* Read once per configuration: the cache is made anew by a reload. */
	return kw_roles_mfa_required(svc->roles);
}

/*
 * Check the token a request carries.  A token of another uid is refused
 * outright (and audited by the caller); one that is merely invalid leaves
 * call->session NULL with the reason in why, for the operations that need
 * a session to report.
 */
static int
attach_session(struct kw_services *svc, struct kw_call *call, const char *token,
    struct kw_session *ses, char *why, size_t why_len)
{
	int r = kw_session_check(svc->state, svc->secrets, token, call->caller->uid, kw_now(),
	    kw_config_int(svc->cfg, "security.session.timeout"), ses, why, why_len);

	if (r == KW_ERR_SESSION)
		return 0;
	if (r < 0)
		return r;
	call->session = ses;
	call->token = token;
	return 0;
}

bool
kw_call_may(struct kw_call *call, const char *verb, const char *resource)
{
	struct kw_call own = *call;
	struct kw_subject subject;
	struct kw_perm *perms = NULL;
	char why[256];
	bool may;

	/* An owner of the broker asking for itself needs neither a role nor the store
	   (status asks this on every call: root's must stay cheap). */
	if (kw_rbac_owner_asks(call->caller, verb, call->caller->user)) {
		subject = (struct kw_subject){ .user = call->caller->user };
		return kw_rbac_decide(call->caller, &subject, verb, resource, why, sizeof(why));
	}
	/* Rights flow from a second factor, as for every row of the table. */
	if (call->caller->uid != 0 && !call->session && kw_mfa_required(call->svc))
		return false;
	own.subject = call->caller->user;
	if (load_subject(&own, &subject, &perms) < 0)
		return false;
	may = kw_rbac_decide(call->caller, &subject, verb, resource, why, sizeof(why));
	free(perms);
	return may;
}

int
kw_call_authorize(struct kw_call *call, const struct kw_need *needs, size_t n, size_t *ret_i,
    char *why, size_t why_len)
{
	struct kw_subject subject;
	struct kw_perm *perms = NULL;
	int r = 0;

	why[0] = '\0';
	if (load_subject(call, &subject, &perms) < 0) {
		*ret_i = 0;
		snprintf(why, why_len, "the state store cannot be read");
		return KW_ERR_INTERNAL;
	}
	subject.user = call->subject;
	for (size_t i = 0; i < n; i++)
		if (!kw_rbac_decide(call->caller, &subject, needs[i].verb, needs[i].resource, why,
		    why_len)) {
			*ret_i = i;
			r = KW_ERR_DENIED;
			break;
		}
	free(perms);
	return r;
}

/* The rights check: rbac decides, for the subject and each role handed out. */
static json_t *
authorize(struct kw_dispatcher *d, struct kw_call *call, const char *verb, char *why,
    size_t why_len)
{
	struct kw_subject subject = { .user = call->caller->user };
	const struct kw_op *op = call->op;
	struct kw_perm *perms = NULL;
	json_t *meta, *reply;
	int r = 0;

	if (verb[0] != '\0' && (r = load_subject(call, &subject, &perms)) < 0)
		return refuse(d, op, call->peer, call->id, op->name, call->resource,
		    KW_ERR_INTERNAL, "the state store cannot be read");
	subject.user = call->subject;
	if (kw_rbac_decide(call->caller, &subject, verb, call->resource, why, why_len) &&
	    (verb[0] == '\0' || !op->roles ||
	    decide_roles(op, call, &subject, verb, why, why_len)) &&
	    (verb[0] == '\0' || (r = kw_dispatch_ceiling(call, &subject, why, why_len)) == 0)) {
		free(perms);
		return NULL;
	}
	free(perms);
	if (r < 0 && r != KW_ERR_DENIED)
		return refuse(d, op, call->peer, call->id, op->name, call->resource,
		    KW_ERR_INTERNAL, "the state store cannot be read");
	/* The record says what was asked and for whom, not only that it failed. */
	meta = json_pack("{s:s, s:s}", "verb", verb, "user", call->subject);
	reply = kw_dispatch_audited(d, op, call->caller, call->id, op->name, call->resource,
	    KW_ERR_DENIED, why, meta, kw_reply_error(call->id, KW_ERR_DENIED, why));
	json_decref(meta);
	return reply;
}

/*
 * No valid session: a locked account's sessions were ended by the lock, and
 * the lock is the reason to give (an agent's next tool call says so).
 */
static json_t *
refuse_sessionless(struct kw_dispatcher *d, const struct kw_op *op, struct kw_peer *p,
    const struct kw_call *call, const char *why)
{
	struct kw_lock l;
	char text[300];

	if (p->caller.uid != 0 && kw_lock_peek(d->svc->state, p->caller.uid, kw_now(), &l) == 0 &&
	    l.locked) {
		/* Still "session_required" (what scripts test for); the reason names the lock. */
		kw_lock_describe(&l, text, sizeof(text));
		return refuse(d, op, p, call->id, op->name, call->resource, KW_ERR_SESSION, text);
	}
	return refuse(d, op, p, call->id, op->name, call->resource, KW_ERR_SESSION,
	    why[0] ? why : "log in first: run keywarden login");
}

static json_t *
dispatch_request(struct kw_dispatcher *d, struct kw_peer *p, struct kw_request *req,
    bool *ret_close, kw_after_commit_fn *ret_after, bool *ret_hello)
{
	struct kw_call call = {
		.svc = d->svc, .d = d, .peer = p, .caller = &p->caller, .args = req->args,
		.id = req->id,
	};
	struct kw_session ses;
	json_t *reply;
	const char *verb;
	char resource[320], why[256] = "";
	int r, rc = 0;

	/* The broker's own uid owns it (rbac.h): a personal broker's user. */
	p->caller.owner = p->caller.uid == d->svc->uid;
	if (!p->greeted && strcmp(req->op, "hello") != 0) {
		*ret_close = true;
		return refuse(d, NULL, p, req->id, "handshake", req->op, KW_ERR_HANDSHAKE,
		    "send hello with the protocol version first");
	}
	if (!(call.op = lookup(d, req->op))) {
		snprintf(why, sizeof(why), "unknown operation '%.64s'", req->op);
		return refuse(d, NULL, p, req->id, "unknown_op", req->op, KW_ERR_UNKNOWN_OP, why);
	}
	const struct kw_op *op = call.op;
	/* The helper's channel is its only capability, and it is good for nothing else. */
	if (!(op->flags & KW_OP_HANDSHAKE) && !!(op->flags & KW_OP_INTERNAL) != p->internal)
		return refuse(d, op, p, req->id, op->name, NULL, KW_ERR_DENIED, p->internal ?
		    "the broker's internal channel answers only its own requests" :
		    "answered only on the broker's channel to the helper it started");
	if ((r = resolve(op, &call, &verb, resource, sizeof(resource))) < 0)
		return refuse(d, op, p, req->id, op->name, NULL, r, call.msg);
	if (req->session &&
	    (r = attach_session(d->svc, &call, req->session, &ses, why, sizeof(why))) < 0)
		return refuse(d, op, p, req->id, op->name, call.resource,
		    r == KW_ERR_DENIED ? KW_ERR_DENIED : KW_ERR_INTERNAL,
		    r == KW_ERR_DENIED ? why : "the state store cannot be read");
	/* Rights flow from a second factor: no session, no permissioned operation
	   (but for the broker's owners, who need no rights granted). */
	if (!call.session && ((op->flags & KW_OP_SESSION) ||
	    ((verb[0] != '\0' || op->verb == KW_VERB_FROM_HANDLER) &&
	    !kw_rbac_owner_asks(&p->caller, verb[0] ? verb : "execute", call.subject) &&
	    kw_mfa_required(d->svc))))
		return refuse_sessionless(d, op, p, &call, why);
	if ((reply = authorize(d, &call, verb, why, sizeof(why))))
		return reply;
	if (!(call.meta = json_object()))
		return NULL;
	if (call.session)
		json_object_set_new(call.meta, "session", json_string(call.session->id));
	else if (why[0] && req->session)
		json_object_set_new(call.meta, "session_error", json_string(why));
	reply = run(d, op, &call, &rc);
	json_decref(call.meta);
	*ret_after = call.after_commit;
	if (op->flags & KW_OP_HANDSHAKE) {
		/* The handshake counts once its record is on disk (the loop undoes it if not) ... */
		*ret_hello = kw_reply_is_ok(reply);
		if (kw_reply_is_ok(reply))
			p->greeted = true;
		/* ... and a refused one leaves nothing to talk about. */
		else if (!p->greeted && rc < 0)
			*ret_close = true;
	}
	return reply;
}

void
kw_dispatch(struct kw_dispatcher *d, struct kw_peer *p, const uint8_t *body, size_t len,
    bool *ret_close)
{
	struct kw_request req;
	kw_after_commit_fn after = NULL;
	json_t *reply;
	char why[256] = "";
	bool hello = false;
	int r;

	*ret_close = false;
	if ((r = kw_request_parse(body, len, &req, why, sizeof(why))) < 0)
		reply = refuse(d, NULL, p, req.id, "malformed", NULL, r, why);
	else
		reply = dispatch_request(d, p, &req, ret_close, &after, &hello);
	kw_request_clear(&req);
	/* Handed to a worker: it answers later (kw_worker_finish). */
	if (!reply && p->deferred && !*ret_close)
		return;
	if (!reply || kw_batch_push(&d->batch, p, reply, *ret_close, hello, after) < 0)
		*ret_close = true;
	json_decref(reply);
}

json_t *
kw_dispatch_event(struct kw_dispatcher *d, const struct kw_caller *who, const char *action,
    int err, const char *why)
{
	json_t *reply = kw_dispatch_audited(d, NULL, who, -1, action, NULL, err, why, NULL,
	    kw_reply_error(-1, err, why));

	/* Sent at once, so committed at once (the loop delivered its batch first). */
	if (kw_batch_commit(&d->batch) < 0 && reply) {
		json_decref(reply);
		reply = kw_reply_error(-1, KW_ERR_AUDIT,
		    "request refused: the audit store cannot record it");
	}
	return reply;
}

void
kw_dispatch_frame_error(struct kw_dispatcher *d, struct kw_peer *p, int err)
{
	char why[128];
	json_t *reply;

	if (err == KW_ERR_FRAME_TOO_LARGE)
		snprintf(why, sizeof(why), "frame larger than %d bytes", KW_FRAME_MAX);
	else if (err == KW_ERR_BAD_FRAME)
		snprintf(why, sizeof(why), "a frame must carry at least one byte");
	else if (err == KW_ERR_TIMEOUT)
		snprintf(why, sizeof(why), "message not completed within %lld s",
		    d->client_timeout_s);
	else
		snprintf(why, sizeof(why), "%s", kw_strerror(err));
	reply = kw_dispatch_audited(d, NULL, &p->caller, -1, "malformed", NULL, err, why, NULL,
	    kw_reply_error(-1, err, why));
	if (reply)
		(void)kw_batch_push(&d->batch, p, reply, true, false, NULL);
	json_decref(reply);
}

void
kw_dispatch_hangup(struct kw_dispatcher *d, struct kw_peer *p, const char *action, int err,
    const char *why)
{
	json_t *reply = refuse(d, NULL, p, -1, action, NULL, err, why);

	if (reply)
		(void)kw_batch_push(&d->batch, p, reply, true, false, NULL);
	json_decref(reply);
}

void
kw_dispatch_forget_peer(struct kw_dispatcher *d, const struct kw_peer *peer)
{
	kw_batch_forget_peer(&d->batch, peer);
	kw_worker_forget_peer(d, peer);
}
