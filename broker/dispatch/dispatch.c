/*
 * requests.c - the request table and the dispatcher (see requests.h).
 *
 * Like OpenSSH's monitor table, each operation is listed once with the
 * permission it needs, and kw_dispatch is the only caller of the
 * authorization decision.  Every answer, allowed or refused, is audited
 * before it is returned; if the record cannot be written the answer is
 * replaced by an audit_unavailable refusal and any change is rolled back
 * (fail closed).
 */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "client/keywarden.h"
#include "common/names.h"
#include "keystore/keystore.h"
#include "common/log.h"
#include "common/perm.h"
#include "client/proto.h"
#include "broker/dispatch/dispatch.h"
#include "broker/accounts/roles.h"
#include "broker/store/sql.h"
#include "broker/store/users.h"

static int op_hello(struct kw_call *call, json_t **ret_result);

/*
 * Granting a role needs admin on the user and on each role handed out, so a
 * narrow admin permission on users cannot be used to hand oneself "admin".
 */
static const struct kw_op ops[] = {
	/* name		verb	res_type res_arg  acts_as roles_arg writes session handler */
	{ "hello",	"",	NULL,	NULL,	  NULL,   NULL,   false, false, op_hello },
	{ "status",	"",	NULL,	NULL,	  NULL,   NULL,   false, false, kw_op_status },
	{ "login",	"",	NULL,	NULL,	  "user", NULL,   true,  false, kw_op_login },
	{ "logout",	"",	NULL,	NULL,	  NULL,   NULL,   true,  true,  kw_op_logout },
	{ "account",	"",	NULL,	NULL,	  "user", NULL,   true,  false, kw_op_account },
	{ "totp.enroll", "",	NULL,	NULL,	  NULL,   NULL,   true,  true,  kw_op_totp_enroll },
	{ "check",	NULL,	NULL,	"resource", "user", NULL, false, false, kw_op_check },
	{ "user.add",	"admin", "user", "user",  NULL,   "roles", true, false, kw_op_user_add },
	{ "user.list",	"admin", "user", NULL,	  NULL,   NULL,   false, false, kw_op_user_list },
	{ "user.show",	"admin", "user", "user",  NULL,   NULL,   false, false, kw_op_user_show },
	{ "user.del",	"admin", "user", "user",  NULL,   NULL,   true,  false, kw_op_user_del },
	{ "user.totp-reset", "admin", "user", "user", NULL, NULL, true,  false, kw_op_user_totp_reset },
	{ "user.lock",	"admin", "user", "user",  NULL,   NULL,   true,  false, kw_op_user_lock },
	{ "user.unlock", "admin", "user", "user", NULL,   NULL,   true,  false, kw_op_user_unlock },
	{ "role.list",	"admin", "role", NULL,	  NULL,   NULL,   false, false, kw_op_role_list },
	{ "role.show",	"admin", "role", "role",  NULL,   NULL,   false, false, kw_op_role_show },
	{ "role.create", "admin", "role", "role", NULL,   NULL,   true,  false, kw_op_role_create },
	{ "role.delete", "admin", "role", "role", NULL,   NULL,   true,  false, kw_op_role_delete },
	{ "role.grant",	"admin", "user", "user",  NULL,   "role", true,  false, kw_op_role_grant },
	{ "role.revoke", "admin", "user", "user", NULL,   "role", true,  false, kw_op_role_revoke },
	{ "key.set",	"write", "key",	"name",	  NULL,   NULL,   true,  false, kw_op_key_set },
	{ "key.rotate",	"write", "key",	"name",	  NULL,   NULL,   true,  false, kw_op_key_rotate },
	{ "key.get",	"read",	"key",	"name",	  NULL,   NULL,   false, false, kw_op_key_get },
	{ "key.list",	"read",	"key",	NULL,	  NULL,   NULL,   false, false, kw_op_key_list },
	{ "key.revoke",	"write", "key",	"name",	  NULL,   NULL,   true,  false, kw_op_key_revoke },
	{ "key.verify",	"read",	"key",	"name",	  NULL,   NULL,   false, false, kw_op_key_verify },
	{ "session.list", "admin", "session", NULL, NULL, NULL,   false, false, kw_op_session_list },
	{ "session.revoke", "admin", "session", NULL, NULL, NULL, true,  false, kw_op_session_revoke },
	{ "user.export", "admin", "user", "user",  NULL,   NULL,   false, false, kw_op_user_export },
	{ "user.erase",	"admin", "user", "user",  NULL,   NULL,   true,  false, kw_op_user_erase },
	{ "audit.query", "admin", "audit", NULL,  NULL,   NULL,   false, false, kw_op_audit_query },
	{ "audit.verify", "admin", "audit", NULL, NULL,   NULL,   false, false, kw_op_audit_verify },
	{ "audit.prune", "admin", "audit", NULL,  NULL,   NULL,   false, false, kw_op_audit_prune },
	{ "incident.list", "admin", "incident", NULL, NULL, NULL, false, false, kw_op_incident_list },
	{ "incident.report", "admin", "incident", NULL, NULL, NULL, false, false, kw_op_incident_report },
};

static const struct kw_op *
lookup(const char *name)
{
	for (size_t i = 0; i < KW_ELEMENTSOF(ops); i++)
		if (strcmp(ops[i].name, name) == 0)
			return &ops[i];
	return NULL;
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

	if (call->conn->greeted) {
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

/* The kind of name an argument holds: the argument's key says it. */
static enum kw_name_kind
arg_kind(const char *key)
{
	return strcmp(key, "role") == 0 ? KW_NAME_ROLE :
	    strcmp(key, "resource") == 0 ? KW_NAME_RESOURCE :
	    strcmp(key, "name") == 0 ? KW_NAME_KEY : KW_NAME_USER;
}

static bool
arg_ok(const char *key, const char *v)
{
	return kw_name_ok(arg_kind(key), v);
}

/* The roles an operation hands out: one role name, or a list of them. */
static int
check_roles_arg(const struct kw_op *op, struct kw_call *call)
{
	json_t *v = json_object_get(call->args, op->roles_arg), *e;
	size_t i;

	if (!v && strcmp(op->roles_arg, "roles") == 0)
		return 0;
	if (json_is_string(v) && arg_ok("role", json_string_value(v)))
		return 0;
	if (json_is_array(v)) {
		json_array_foreach(v, i, e)
			if (!json_is_string(e) || !arg_ok("role", json_string_value(e)))
				goto bad;
		return 0;
	}
 bad:
	snprintf(call->msg, sizeof(call->msg), "\"%s\" must name roles: 1-64 letters, digits, "
	    "'_' or '-'", op->roles_arg);
	return KW_ERR_INVALID;
}

/* Each role handed out needs the verb on role/NAME as well. */
static bool
decide_roles(const struct kw_op *op, struct kw_call *call, const struct kw_subject *subject,
    const char *verb, char *why, size_t why_len)
{
	json_t *v = json_object_get(call->args, op->roles_arg), *e;
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

/* Work out verb, resource and subject from the table entry and the arguments. */
static int
resolve(const struct kw_op *op, struct kw_call *call, const char **ret_verb,
    char *resource, size_t res_len)
{
	const char *v;
	int r;

	*ret_verb = op->verb;
	if (!op->verb) {
		v = kw_arg_str(call->args, "action");
		if (!v || !kw_perm_verb_known(v)) {
			snprintf(call->msg, sizeof(call->msg),
			    "\"action\" must be one of read, write, execute, admin");
			return KW_ERR_BAD_REQUEST;
		}
		*ret_verb = v;
	}
	if (op->res_arg) {
		v = kw_arg_str(call->args, op->res_arg);
		if (!arg_ok(op->res_arg, v)) {
			snprintf(call->msg, sizeof(call->msg), "\"%s\" must be a valid %s", op->res_arg,
			    kw_name_rule(arg_kind(op->res_arg)));
			return KW_ERR_BAD_REQUEST;
		}
		snprintf(resource, res_len, "%s%s%s", op->res_type ? op->res_type : "",
		    op->res_type ? "/" : "", v);
		call->resource = resource;
	} else if (op->res_type) {
		snprintf(resource, res_len, "%s", op->res_type);
		call->resource = resource;
	}
	if (op->roles_arg && (r = check_roles_arg(op, call)) < 0)
		return r;
	call->subject = call->caller->user;
	if (op->acts_as && json_object_get(call->args, op->acts_as)) {
		v = kw_arg_str(call->args, op->acts_as);
		if (!arg_ok(op->acts_as, v)) {
			snprintf(call->msg, sizeof(call->msg), "\"%s\" must be a user name", op->acts_as);
			return KW_ERR_BAD_REQUEST;
		}
		call->subject = v;
	}
	return 0;
}

/* What keywarden knows of the subject: registration and permissions. */
static int
load_subject(struct kw_call *call, struct kw_subject *s, json_t **ret_perms)
{
	sqlite3 *db = call->b->state;
	struct kw_user u;
	json_t *roles = NULL;
	int r;

	*ret_perms = NULL;
	s->user = call->subject;
	s->registered = false;
	s->permissions = NULL;
	r = strcmp(call->subject, call->caller->user) == 0 ?
	    kw_user_by_uid(db, call->caller->uid, &u) : kw_user_by_name(db, call->subject, &u);
	if (r == KW_ERR_NOT_FOUND)
		return 0;
	if (r < 0 || (r = kw_user_roles(db, u.uid, &roles)) < 0)
		return r;
	r = kw_role_permissions(call->b->cfg, db, roles, ret_perms);
	json_decref(roles);
	if (r < 0)
		return r;
	s->registered = true;
	s->permissions = *ret_perms;
	return 0;
}

/*
 * Ordinary actions are recorded only when security.audit.logActions lists
 * them; refusals and everything else (logins, keys, sessions, roles, users,
 * locks, decisions, audit and incident work) are always recorded.
 */
static const char *const ordinary_actions[] = { "hello", "status" };

static bool
wanted(struct kw_broker *b, const char *action, int err)
{
	json_t *list, *p;
	size_t i;
	bool ordinary = false;

	for (i = 0; i < KW_ELEMENTSOF(ordinary_actions); i++)
		ordinary = ordinary || strcmp(action, ordinary_actions[i]) == 0;
	if (!ordinary || err != 0)
		return true;
	list = kw_config_get(b->cfg, "security.audit.logActions");
	json_array_foreach(list, i, p)
		if (json_is_string(p) && fnmatch(json_string_value(p), action, 0) == 0)
			return true;
	return false;
}

/* Write the record of an answer; on failure the answer becomes the refusal. */
static json_t *
audited(struct kw_broker *b, const struct kw_caller *who, json_int_t id, const char *action,
    const char *resource, int err, const char *why, json_t *meta, json_t *reply)
{
	struct kw_audit_record rec = {
		.user = who->user,
		.uid = who->uid,
		.pid = who->pid,
		.action = action,
		.resource = resource,
		.result = err == 0 ? "success" : (err == KW_ERR_DENIED || err == KW_ERR_LOCKED ||
		    err == KW_ERR_SESSION) ? "denied" : "error",
		.metadata = meta,
		.request_id = id,
	};
	json_t *own = meta ? NULL : json_object();
	int r;

	if (!wanted(b, action, err))
		return reply;
	if (!meta)
		rec.metadata = meta = own;
	if (meta && err != 0) {
		json_object_set_new(meta, "error", json_string(kw_error_name(err)));
		if (why)
			json_object_set_new(meta, "reason", json_string(why));
	}
	kw_batch_enter(b);
	r = kw_batch_audit_ok(b) ? kw_audit_write(b->audit, &rec) : KW_ERR_AUDIT;
	/* A refusal counts against the user it concerns (a login through sshd's
	   root process concerns the user logging in), else against the caller. */
	const char *about = json_string_value(json_object_get(meta, "user"));
	if (r == 0 && err != 0 && (about || who->user))
		kw_batch_note_refusal(b, about ? about : who->user,
		    about && strcmp(about, who->user ? who->user : "") != 0 ? (uid_t)-1 : who->uid,
		    action, rec.result);
	json_decref(own);
	if (r < 0) {
		kw_batch_note_write_failure(b);
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
	return audited(b, &c->caller, id, action, resource, err, why, NULL,
	    kw_reply_error(id, err, why));
}

static bool
reply_ok(json_t *reply)
{
	return json_is_true(json_object_get(reply, "ok"));
}

/* True when audited() replaced the answer because the record failed. */
static bool
audit_refused(json_t *reply)
{
	const char *code = json_string_value(json_object_get(json_object_get(reply, "error"), "code"));

	return code && strcmp(code, kw_error_name(KW_ERR_AUDIT)) == 0;
}

/*
 * Run an authorized request: handler and record, inside the turn's
 * transactions; the change is kept (savepoint released) only when its
 * record was written, and lands with the turn's commit.
 */
static json_t *
run(struct kw_broker *b, const struct kw_op *op, struct kw_call *call, json_int_t id)
{
	json_t *result = NULL, *reply;
	bool keep;
	int r;

	kw_batch_enter(b);
	if (op->writes && kw_sql_begin(b->state) < 0) {
		snprintf(call->msg, sizeof(call->msg), "the state store is busy or unusable");
		return audited(b, call->caller, id, op->name, call->resource, KW_ERR_IO, call->msg,
		    call->meta, kw_reply_error(id, KW_ERR_IO, call->msg));
	}
	r = call->rc = op->fn(call, &result);
	if (r < 0) {
		const char *why = call->msg[0] ? call->msg : kw_strerror(r);
		reply = audited(b, call->caller, id, op->name, call->resource, r, why, call->meta,
		    kw_reply_error(id, r, why));
		/* What must count even on failure (a wrong code) lands only with its record. */
		keep = call->keep_on_error && !audit_refused(reply);
	} else {
		reply = audited(b, call->caller, id, op->name, call->resource, 0, NULL, call->meta,
		    kw_reply_ok(id, result));
		keep = reply_ok(reply);
	}
	if (op->writes) {
		if (!keep)
			kw_sql_rollback(b->state);
		else if (kw_sql_commit(b->state) < 0) {
			kw_sql_rollback(b->state);
			json_decref(reply);
			snprintf(call->msg, sizeof(call->msg), "the change could not be saved");
			json_object_clear(call->meta);
			return audited(b, call->caller, id, op->name, call->resource, KW_ERR_IO,
			    call->msg, call->meta, kw_reply_error(id, KW_ERR_IO, call->msg));
		}
	}
	return reply;
}

long long
kw_now(void)
{
	return (long long)time(NULL);
}

bool
kw_mfa_required(const struct kw_broker *b)
{
	return kw_config_bool(b->cfg, "security.authentication.mfa.enabled") &&
	    kw_config_bool(b->cfg, "security.authentication.mfa.required");
}

/*
 * Check the token a request carries.  A token of another uid is refused
 * outright (and audited by the caller); one that is merely invalid leaves
 * call->session NULL with the reason in why, for the operations that need
 * a session to report.
 */
static int
attach_session(struct kw_broker *b, struct kw_call *call, const char *token,
    struct kw_session *ses, char *why, size_t why_len)
{
	int r = kw_session_check(b->state, b->secrets, token, call->caller->uid, kw_now(),
	    kw_config_int(b->cfg, "security.session.timeout"), ses, why, why_len);

	if (r == KW_ERR_SESSION)
		return 0;
	if (r < 0)
		return r;
	call->session = ses;
	call->token = token;
	return 0;
}

static json_t *
dispatch_request(struct kw_broker *b, struct kw_conn *c, struct kw_request *req, bool *ret_close,
    kw_after_commit_fn *ret_after, bool *ret_hello)
{
	struct kw_call call = { .b = b, .conn = c, .caller = &c->caller, .args = req->args };
	struct kw_subject subject = { .user = c->caller.user };
	struct kw_session ses;
	json_t *perms = NULL, *reply;
	const struct kw_op *op;
	const char *verb;
	char resource[320], why[256] = "";
	int r;

	if (!c->greeted && strcmp(req->op, "hello") != 0) {
		*ret_close = true;
		return refuse(b, c, req->id, "handshake", req->op, KW_ERR_HANDSHAKE,
		    "send hello with the protocol version first");
	}
	if (!(op = lookup(req->op))) {
		snprintf(why, sizeof(why), "unknown operation '%.64s'", req->op);
		return refuse(b, c, req->id, "unknown_op", req->op, KW_ERR_UNKNOWN_OP, why);
	}
	if ((r = resolve(op, &call, &verb, resource, sizeof(resource))) < 0)
		return refuse(b, c, req->id, op->name, NULL, r, call.msg);
	if (req->session && (r = attach_session(b, &call, req->session, &ses, why, sizeof(why))) < 0)
		return refuse(b, c, req->id, op->name, call.resource,
		    r == KW_ERR_DENIED ? KW_ERR_DENIED : KW_ERR_INTERNAL,
		    r == KW_ERR_DENIED ? why : "the state store cannot be read");
	/* Rights flow from a second factor: no session, no permissioned operation. */
	if (!call.session && (op->needs_session ||
	    (verb[0] != '\0' && c->caller.uid != 0 && kw_mfa_required(b))))
		return refuse(b, c, req->id, op->name, call.resource, KW_ERR_SESSION,
		    why[0] ? why : "log in first: run keywarden login");
	if (verb[0] != '\0' && (r = load_subject(&call, &subject, &perms)) < 0)
		return refuse(b, c, req->id, op->name, call.resource, KW_ERR_INTERNAL,
		    "the state store cannot be read");
	subject.user = call.subject;
	if (!kw_rbac_decide(&c->caller, &subject, verb, call.resource, why, sizeof(why)) ||
	    (verb[0] != '\0' && op->roles_arg &&
	    !decide_roles(op, &call, &subject, verb, why, sizeof(why)))) {
		/* The record says what was asked and for whom, not only that it failed. */
		json_t *meta = json_pack("{s:s, s:s}", "verb", verb, "user", call.subject);
		json_decref(perms);
		reply = audited(b, &c->caller, req->id, op->name, call.resource, KW_ERR_DENIED, why,
		    meta, kw_reply_error(req->id, KW_ERR_DENIED, why));
		json_decref(meta);
		return reply;
	}
	json_decref(perms);
	if (!(call.meta = json_object()))
		return NULL;
	if (call.session)
		json_object_set_new(call.meta, "session", json_string(call.session->id));
	else if (why[0] && req->session) {
		json_object_set_new(call.meta, "session_error", json_string(why));
		call.session_error = why;
	}
	reply = run(b, op, &call, req->id);
	json_decref(call.meta);
	*ret_after = call.after_commit;
	if (op->fn == op_hello) {
		/* The handshake counts once its record is on disk (the loop undoes it if not) ... */
		*ret_hello = reply_ok(reply);
		if (reply_ok(reply))
			c->greeted = true;
		/* ... and a refused one leaves nothing to talk about. */
		else if (!c->greeted && call.rc < 0)
			*ret_close = true;
	}
	return reply;
}

void
kw_dispatch(struct kw_broker *b, struct kw_conn *c, const uint8_t *body, size_t len,
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
		reply = refuse(b, c, req.id, "malformed", NULL, r, why);
	else
		reply = dispatch_request(b, c, &req, ret_close, &after, &hello);
	kw_request_clear(&req);
	if (!reply || kw_batch_push(b, c, reply, *ret_close, hello, after) < 0)
		*ret_close = true;
	json_decref(reply);
}

json_t *
kw_dispatch_event(struct kw_broker *b, const struct kw_caller *who, const char *action,
    int err, const char *why)
{
	json_t *reply = audited(b, who, -1, action, NULL, err, why, NULL,
	    kw_reply_error(-1, err, why));

	/* Sent at once, so committed at once (the loop delivered its batch first). */
	if (kw_batch_commit(b) < 0 && reply) {
		json_decref(reply);
		reply = kw_reply_error(-1, KW_ERR_AUDIT,
		    "request refused: the audit store cannot record it");
	}
	return reply;
}

void
kw_dispatch_frame_error(struct kw_broker *b, struct kw_conn *c, int err)
{
	char why[128];
	json_t *reply;

	if (err == KW_ERR_FRAME_TOO_LARGE)
		snprintf(why, sizeof(why), "frame larger than %d bytes", KW_FRAME_MAX);
	else if (err == KW_ERR_BAD_FRAME)
		snprintf(why, sizeof(why), "a frame must carry at least one byte");
	else if (err == KW_ERR_TIMEOUT)
		snprintf(why, sizeof(why), "message not completed within %lld s",
		    (long long)(b->client_timeout_ms / 1000));
	else
		snprintf(why, sizeof(why), "%s", kw_strerror(err));
	reply = audited(b, &c->caller, -1, "malformed", NULL, err, why, NULL,
	    kw_reply_error(-1, err, why));
	if (reply)
		(void)kw_batch_push(b, c, reply, true, false, NULL);
	json_decref(reply);
}
