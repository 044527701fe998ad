/*
 * requests.c - the request table and the dispatcher (see requests.h).
 *
 * Like OpenSSH's monitor table, each operation is listed once with the
 * permission it needs, and kw_dispatch is the only caller of the
 * authorization decision.  Every answer, allowed or refused, is audited
 * before it is returned; if the record cannot be written the answer is
 * replaced by an audit_unavailable refusal (fail closed).
 */
#include <stdio.h>
#include <string.h>

#include "keywarden.h"
#include "log.h"
#include "proto.h"
#include "requests.h"

static int op_hello(struct kw_broker *b, struct kw_conn *c, json_t *args,
    json_t **ret_result, char *msg, size_t msg_len);

static const struct kw_op ops[] = {
	{ "hello",	"",	op_hello },
	{ "status",	"",	kw_op_status },
};

static const struct kw_op *
lookup(const char *name)
{
	for (size_t i = 0; i < KW_ELEMENTSOF(ops); i++)
		if (strcmp(ops[i].name, name) == 0)
			return &ops[i];
	return NULL;
}

static int
op_hello(struct kw_broker *b, struct kw_conn *c, json_t *args, json_t **ret_result,
    char *msg, size_t msg_len)
{
	json_t *v = json_object_get(args, "version");

	if (c->greeted) {
		snprintf(msg, msg_len, "handshake already done on this connection");
		return KW_ERR_BAD_REQUEST;
	}
	if (!json_is_integer(v)) {
		snprintf(msg, msg_len, "hello needs an integer \"version\"");
		return KW_ERR_BAD_REQUEST;
	}
	if (json_integer_value(v) != KW_PROTOCOL_VERSION) {
		snprintf(msg, msg_len, "this broker speaks protocol version %d, not %lld",
		    KW_PROTOCOL_VERSION, (long long)json_integer_value(v));
		return KW_ERR_VERSION;
	}
	*ret_result = json_pack("{s:i, s:s}", "version", KW_PROTOCOL_VERSION,
	    "server", "keywarden " KW_VERSION);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}

/*
 * Write the audit record for an answer.  On failure the answer is dropped
 * and the refusal returned instead.
 */
static json_t *
audited(struct kw_broker *b, const struct kw_caller *who, json_int_t id, const char *action,
    const char *resource, int err, const char *why, json_t *reply)
{
	json_t *meta = json_object();
	struct kw_audit_record rec = {
		.user = who->user,
		.uid = who->uid,
		.pid = who->pid,
		.action = action,
		.resource = resource,
		.result = err == 0 ? "success" : err == KW_ERR_DENIED ? "denied" : "error",
		.metadata = meta,
		.request_id = id,
	};

	if (meta && err != 0) {
		json_object_set_new(meta, "error", json_string(kw_error_name(err)));
		if (why)
			json_object_set_new(meta, "reason", json_string(why));
	}
	int r = kw_audit_write(b->audit, &rec);
	json_decref(meta);
	if (r < 0) {
		json_decref(reply);
		return kw_reply_error(id, KW_ERR_AUDIT,
		    "request refused: the audit store cannot record it");
	}
	return reply;
}

static json_t *
refuse(struct kw_broker *b, struct kw_conn *c, json_int_t id, const char *action,
    const char *resource, int err, const char *why)
{
	return audited(b, &c->caller, id, action, resource, err, why,
	    kw_reply_error(id, err, why));
}

json_t *
kw_dispatch(struct kw_broker *b, struct kw_conn *c, const uint8_t *body, size_t len,
    bool *ret_close)
{
	struct kw_request req;
	const struct kw_op *op;
	const char *reason = NULL;
	json_t *result = NULL, *reply;
	char why[256] = "";
	int r;

	*ret_close = false;
	if ((r = kw_request_parse(body, len, &req, why, sizeof(why))) < 0) {
		reply = refuse(b, c, req.id, "malformed", NULL, r, why);
		goto out;
	}
	if (!c->greeted && strcmp(req.op, "hello") != 0) {
		*ret_close = true;
		reply = refuse(b, c, req.id, "handshake", req.op, KW_ERR_HANDSHAKE,
		    "send hello with the protocol version first");
		goto out;
	}
	if (!(op = lookup(req.op))) {
		snprintf(why, sizeof(why), "unknown operation '%.64s'", req.op);
		reply = refuse(b, c, req.id, "unknown_op", req.op, KW_ERR_UNKNOWN_OP, why);
		goto out;
	}
	if (!kw_rbac_decide(&c->caller, op->perm, NULL, &reason)) {
		reply = refuse(b, c, req.id, op->name, NULL, KW_ERR_DENIED, reason);
		goto out;
	}
	r = op->fn(b, c, req.args, &result, why, sizeof(why));
	if (r < 0) {
		/* A failed handshake leaves nothing to talk about. */
		if (op->fn == op_hello && !c->greeted)
			*ret_close = true;
		reply = refuse(b, c, req.id, op->name, NULL, r, why[0] ? why : kw_strerror(r));
		goto out;
	}
	reply = audited(b, &c->caller, req.id, op->name, NULL, 0, NULL,
	    kw_reply_ok(req.id, result));
	/* The handshake counts only once its record is on disk. */
	if (op->fn == op_hello && json_is_true(json_object_get(reply, "ok")))
		c->greeted = true;
 out:
	kw_request_clear(&req);
	return reply;
}

json_t *
kw_dispatch_event(struct kw_broker *b, const struct kw_caller *who, const char *action,
    int err, const char *why)
{
	return audited(b, who, -1, action, NULL, err, why, kw_reply_error(-1, err, why));
}

json_t *
kw_dispatch_frame_error(struct kw_broker *b, struct kw_conn *c, int err)
{
	char why[128];

	if (err == KW_ERR_FRAME_TOO_LARGE)
		snprintf(why, sizeof(why), "frame larger than %d bytes", KW_FRAME_MAX);
	else if (err == KW_ERR_BAD_FRAME)
		snprintf(why, sizeof(why), "a frame must carry at least one byte");
	else if (err == KW_ERR_TIMEOUT)
		snprintf(why, sizeof(why), "message not completed within %lld s",
		    (long long)(b->client_timeout_ms / 1000));
	else
		snprintf(why, sizeof(why), "%s", kw_strerror(err));
	return kw_dispatch_event(b, &c->caller, "malformed", err, why);
}
