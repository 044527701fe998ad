/*
 * op_proxy.c - the requests keywarden-proxy makes on its channel
 * (proxy/DESIGN.md): ready, authorize one call, report a refusal of its
 * own, record a call.  The dispatcher answers them on the internal peer
 * only.  A call's records are the user's: the handler answers as that user
 * (ap->as), never as the broker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "broker/apiproxy/apiproxy_internal.h"
#include "broker/apiproxy/ops.h"
#include "broker/apiproxy/tokens.h"
#include "broker/keys/keys.h"
#include "broker/store/keys.h"
#include "broker/store/locks.h"
#include "broker/store/users.h"
#include "common/clock.h"
#include "common/errors.h"
#include "common/log.h"
#include "keystore/keystore.h"

/* The path as the record shows it: no query string (it may carry anything). */
static void
note_request(struct kw_call *call, const char *method, const char *path)
{
	char p[257];
	size_t n = strcspn(path, "?#");

	snprintf(p, sizeof(p), "%.*s", (int)(n < 256 ? n : 256), path);
	json_object_set_new(call->meta, "method", json_stringn(method, strnlen(method, 16)));
	json_object_set_new(call->meta, "path", json_string(p));
	snprintf(call->res_buf, sizeof(call->res_buf), "%.95s", p);
	call->resource = call->res_buf;
}

int
kw_op_proxy_ready(struct kw_call *call, json_t **ret_result)
{
	const char *listen = kw_arg_str(call->args, "listen");
	int r;

	if (!listen || strlen(listen) > 100) {
		snprintf(call->msg, sizeof(call->msg), "proxy.ready needs \"listen\" (HOST:PORT)");
		return KW_ERR_BAD_REQUEST;
	}
	json_object_set_new(call->meta, "listen", json_string(listen));
	if ((r = kw_ap_ready(call->svc->apiproxy, call->peer, listen, call->msg,
	    sizeof(call->msg))) < 0)
		return r;
	*ret_result = json_object();
	return *ret_result ? 0 : KW_ERR_NOMEM;
}

/* From here on the request is the user's: its record and its rights are theirs. */
static void
act_as(struct kw_call *call, struct kw_apiproxy *ap, const struct kw_user *u)
{
	snprintf(ap->as_name, sizeof(ap->as_name), "%s", u->name);
	ap->as = (struct kw_caller){ .uid = u->uid, .gid = (gid_t)-1, .pid = ap->pid,
	    .user = ap->as_name, .owner = u->uid == call->svc->uid };
	call->caller = &ap->as;
	call->subject = ap->as_name;
}

/* The session behind the token: alive, and now used.  0 or KW_ERR_EXPIRED/KW_ERR_IO. */
static int
session_alive(struct kw_call *call, const struct kw_proxy_token *t)
{
	struct kw_state *st = call->svc->state;
	unsigned char hash[KW_SESSION_HASH_MAX];
	struct kw_session ses;
	size_t hash_len;
	long long now = kw_now(), idle = kw_config_int(call->svc->cfg, "security.session.timeout");
	int r = kw_session_find(st, t->session, &ses, hash, &hash_len);

	sodium_memzero(hash, sizeof(hash));
	if (r == KW_ERR_NOT_FOUND) {
		snprintf(call->msg, sizeof(call->msg), "keywarden: session %s ended (logged out, "
		    "revoked or expired); run keywarden login", t->session);
		return KW_ERR_EXPIRED;
	}
	if (r < 0)
		return r;
	if ((ses.expires >= 0 && now >= ses.expires) || now - ses.last_used >= idle) {
		snprintf(call->msg, sizeof(call->msg), "keywarden: session %s %s; run keywarden "
		    "login", ses.id, ses.expires >= 0 && now >= ses.expires ? "expired" :
		    "ended after being idle");
		if (kw_session_revoke(st, ses.id) < 0)
			return KW_ERR_IO;
		call->keep_on_error = true;	/* the ended session stays ended */
		return KW_ERR_EXPIRED;
	}
	/* A call through the proxy is the session's activity; within the second it
	   was last used there is nothing new to write (calls come hundreds a second). */
	return ses.last_used == now ? 0 : kw_session_touch(st, ses.id, now);
}

static int
not_locked(struct kw_call *call, uid_t uid)
{
	struct kw_lock l;
	char text[300];
	int r = kw_lock_peek(call->svc->state, uid, kw_now(), &l);

	/* A lock that cannot be read refuses the call: the check never fails open. */
	if (r < 0)
		return r;
	if (!l.locked)
		return 0;
	kw_lock_describe(&l, text, sizeof(text));
	snprintf(call->msg, sizeof(call->msg), "keywarden: %.200s", text);
	return KW_ERR_LOCKED;
}

static int
role_grants(struct kw_call *call, const char *key)
{
	char res[160], why[256];
	const struct kw_need need = { .verb = "read", .resource = res };
	size_t i;
	int r;

	snprintf(res, sizeof(res), "key/%s", key);
	if ((r = kw_call_authorize(call, &need, 1, &i, why, sizeof(why))) == KW_ERR_DENIED)
		snprintf(call->msg, sizeof(call->msg), "keywarden: your roles do not grant "
		    "read:key/%.64s (%.100s)", key, why);
	return r;
}

static int
within_budget(struct kw_call *call, struct kw_apiproxy *ap, const struct kw_user *u)
{
	json_t *roles = NULL;
	const char *role = NULL;
	long long limit, spent;
	int r;

	if ((r = kw_user_roles(call->svc->state, u->uid, &roles)) < 0)
		return r;
	limit = kw_budget_limit(kw_config_get(call->svc->cfg, "security.api.budgets"), roles,
	    &role);
	spent = kw_spent_get(ap->spent, u->name, kw_budget_day(kw_now() * 1000));
	if (limit != KW_BUDGET_UNLIMITED && spent >= limit) {
		snprintf(call->msg, sizeof(call->msg), "keywarden: daily token budget of %lld for "
		    "role %s spent (%lld used); resets at 00:00 UTC", limit, role, spent);
		json_object_set_new(call->meta, "budget", json_integer(limit));
		json_object_set_new(call->meta, "spent", json_integer(spent));
		r = KW_ERR_BUDGET;
	}
	json_decref(roles);
	return r;
}

/* Read the key and remember the call: *ret_result carries the value. */
static int
hand_out(struct kw_call *call, struct kw_apiproxy *ap, const struct kw_user *u,
    const char *key, json_t **ret_result)
{
	struct kw_state *st = call->svc->state;
	unsigned char *value = NULL;
	struct kw_ap_call *c, **tail;
	long long now = kw_now();
	size_t len = 0;
	int r, v = 0;

	if ((r = kw_key_expire(st, now)) < 0)
		return r;
	r = kw_key_get(st, call->svc->keystore, key, 0, now, &value, &len, &v);
	if (r == KW_ERR_NOT_FOUND) {
		snprintf(call->msg, sizeof(call->msg), "keywarden: no key named %.64s is stored; ask "
		    "an administrator to run keywarden key set %.64s", key, key);
		return r;
	}
	if (r < 0)
		return r;
	if (!(c = calloc(1, sizeof(*c)))) {
		kw_keystore_free_value(value, len);
		return KW_ERR_NOMEM;
	}
	c->id = ++ap->next_call;
	snprintf(c->user, sizeof(c->user), "%s", u->name);
	c->uid = u->uid;
	snprintf(c->key, sizeof(c->key), "%s", key);
	c->version = v;
	c->started_ms = kw_mono_ms();
	*ret_result = json_pack("{s:I, s:s, s:s, s:i, s:s%}", "call", (json_int_t)c->id,
	    "user", u->name, "key", key, "version", v, "value", (const char *)value, len);
	kw_keystore_free_value(value, len);
	if (!*ret_result) {
		free(c);
		return KW_ERR_NOMEM;
	}
	for (tail = &ap->calls; *tail; tail = &(*tail)->next)
		;
	*tail = c;
	json_object_set_new(call->meta, "version", json_integer(v));
	json_object_set_new(call->meta, "call", json_integer(c->id));
	return 0;
}

int
kw_op_proxy_authorize(struct kw_call *call, json_t **ret_result)
{
	struct kw_apiproxy *ap = call->svc->apiproxy;
	const char *token = kw_arg_str(call->args, "token");
	const char *method = kw_arg_str(call->args, "method");
	const char *path = kw_arg_str(call->args, "path");
	struct kw_proxy_token t;
	struct kw_user u;
	int r;

	if (!token || !method || !path) {
		snprintf(call->msg, sizeof(call->msg), "proxy.authorize needs \"token\", \"method\" "
		    "and \"path\"");
		return KW_ERR_BAD_REQUEST;
	}
	note_request(call, method, path);
	/* A refusal from here on is an API call refused: recorded as one, with its reason. */
	call->action = "api_call";
	if ((r = kw_proxy_token_check(call->svc->state, call->svc->secrets, token, &t, call->msg,
	    sizeof(call->msg))) < 0)
		return r;
	snprintf(call->res_buf, sizeof(call->res_buf), "key/%.64s", t.key);
	json_object_set_new(call->meta, "key", json_string(t.key));
	json_object_set_new(call->meta, "session", json_string(t.session));
	if ((r = kw_user_by_uid(call->svc->state, t.uid, &u)) == KW_ERR_NOT_FOUND) {
		snprintf(call->msg, sizeof(call->msg), "keywarden: the user this token was issued "
		    "to is no longer registered");
		return KW_ERR_EXPIRED;
	}
	if (r < 0)
		return r;
	act_as(call, ap, &u);
	/* The lock first: locking ends the sessions, and the lock is the reason to give. */
	if ((r = not_locked(call, u.uid)) < 0 || (r = session_alive(call, &t)) < 0 ||
	    (r = role_grants(call, t.key)) < 0 || (r = within_budget(call, ap, &u)) < 0 ||
	    (r = hand_out(call, ap, &u, t.key, ret_result)) < 0)
		return r;
	/* Allowed: the call is recorded once, by proxy.record (or as "proxy gone"). */
	call->action = NULL;
	return 0;
}

int
kw_op_proxy_refuse(struct kw_call *call, json_t **ret_result)
{
	static const char *const reasons[] = { "real_key", "no_token", "malformed", NULL };
	struct kw_apiproxy *ap = call->svc->apiproxy;
	const char *reason = kw_arg_str(call->args, "reason");
	const char *method = kw_arg_str(call->args, "method");
	const char *path = kw_arg_str(call->args, "path");
	bool known = false;
	int r;

	for (size_t i = 0; reason && reasons[i]; i++)
		known |= strcmp(reason, reasons[i]) == 0;
	if (!known || !method || !path) {
		snprintf(call->msg, sizeof(call->msg), "proxy.refuse needs \"reason\" (real_key, "
		    "no_token or malformed), \"method\" and \"path\"");
		return KW_ERR_BAD_REQUEST;
	}
	note_request(call, method, path);
	json_object_set_new(call->meta, "reason", json_string(reason));
	/* Nobody to name: whoever called presented no token of theirs. */
	if ((r = kw_ap_record(ap, NULL, call->caller->uid, "denied", call->resource, call->meta,
	    call->id)) < 0)
		return r;
	*ret_result = json_object();
	return *ret_result ? 0 : KW_ERR_NOMEM;
}

static json_int_t
int_arg(json_t *args, const char *key)
{
	json_t *v = json_object_get(args, key);

	return json_is_integer(v) && json_integer_value(v) >= 0 ? json_integer_value(v) : 0;
}

/*
 * Record one finished call (args: one record).  0, or KW_ERR_BAD_REQUEST /
 * KW_ERR_NOT_FOUND (this record is refused, with the reason in call->msg),
 * KW_ERR_NOMEM or KW_ERR_AUDIT (nothing more can be recorded).
 */
static int
record_one(struct kw_call *call, json_t *args)
{
	static const char *const counts[] = { "input_tokens", "output_tokens", "bytes_in",
		"bytes_out", "latency_ms", "ttfb_ms" };
	struct kw_apiproxy *ap = call->svc->apiproxy;
	json_t *id = json_object_get(args, "call"), *meta;
	const char *model = kw_arg_str(args, "model");
	const char *error = kw_arg_str(args, "error");
	json_int_t status = int_arg(args, "status");
	struct kw_ap_call *c;
	int r;

	if (!json_is_integer(id) || !json_is_integer(json_object_get(args, "status"))) {
		snprintf(call->msg, sizeof(call->msg), "proxy.record needs \"call\" and \"status\"");
		return KW_ERR_BAD_REQUEST;
	}
	if (!(c = kw_ap_call_take(ap, json_integer_value(id)))) {
		snprintf(call->msg, sizeof(call->msg), "no call %lld is waiting to be recorded",
		    (long long)json_integer_value(id));
		return KW_ERR_NOT_FOUND;
	}
	meta = json_pack("{s:s, s:i, s:s%, s:I}", "key", c->key, "version", c->version,
	    "model", model ? model : "", model ? strnlen(model, 128) : (size_t)0,
	    "status", status);
	for (size_t i = 0; meta && i < sizeof(counts) / sizeof(counts[0]); i++)
		json_object_set_new(meta, counts[i], json_integer(int_arg(args, counts[i])));
	if (meta && error)
		json_object_set_new(meta, "error", json_stringn(error, strnlen(error, 200)));
	/* What the call spent counts against the day's budget, recorded or not. */
	if (kw_spent_add(ap->spent, c->user, kw_budget_day(kw_now() * 1000),
	    int_arg(args, "input_tokens") + int_arg(args, "output_tokens")) < 0)
		kw_log_warn("API budgets: out of memory; %s's call is not counted", c->user);
	snprintf(call->res_buf, sizeof(call->res_buf), "key/%.64s", c->key);
	r = meta ? kw_ap_record(ap, c->user, c->uid, status >= 200 && status < 300 ? "success" :
	    "error", call->res_buf, meta, call->id) : KW_ERR_NOMEM;
	json_decref(meta);
	free(c);
	return r;
}

/*
 * proxy.record: one record (its members in args), or several in
 * args.records (the proxy sends what finished meanwhile together, so the
 * records of many calls share one commit instead of each waiting for its
 * own).  A record refused on its own (unknown call, missing status) is
 * logged and the others are still recorded; a failure to record at all
 * (audit, memory) fails the request.
 */
int
kw_op_proxy_record(struct kw_call *call, json_t **ret_result)
{
	json_t *batch = json_object_get(call->args, "records"), *one;
	size_t i, done = 0, refused = 0;
	int r;

	if (!batch) {
		if ((r = record_one(call, call->args)) < 0)
			return r;
		*ret_result = json_object();
		return *ret_result ? 0 : KW_ERR_NOMEM;
	}
	if (!json_is_array(batch) || json_array_size(batch) > KW_AP_RECORDS_MAX) {
		snprintf(call->msg, sizeof(call->msg), "proxy.record: \"records\" must be an array "
		    "of at most %d records", KW_AP_RECORDS_MAX);
		return KW_ERR_BAD_REQUEST;
	}
	json_array_foreach(batch, i, one) {
		r = json_is_object(one) ? record_one(call, one) : KW_ERR_BAD_REQUEST;
		if (r == KW_ERR_BAD_REQUEST || r == KW_ERR_NOT_FOUND) {
			kw_log_warn("API proxy: record %zu of %zu refused: %s", i + 1,
			    json_array_size(batch), json_is_object(one) ? call->msg : "not an object");
			refused++;
			continue;
		}
		if (r < 0)
			return r;
		done++;
	}
	call->msg[0] = '\0';
	*ret_result = json_pack("{s:I, s:I}", "recorded", (json_int_t)done,
	    "refused", (json_int_t)refused);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}
