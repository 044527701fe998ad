/*
 * requests.h - turning one request frame into one reply, through the
 * request table: parse, handshake, look up, authorize (rbac), handle,
 * audit.  The audit record is committed before the reply is returned, and
 * a change to state.db is committed only once its record is.
 */
#ifndef KW_REQUESTS_H
#define KW_REQUESTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/core/daemon.h"
#include "broker/login/sessions.h"

/* What a handler gets: the request, already authorized. */
struct kw_call {
	struct kw_broker *b;
	struct kw_conn *conn;
	const struct kw_caller *caller;
	json_t *args;		/* borrowed; shape checked by the dispatcher */
	const char *subject;	/* the user the request acts for */
	const char *resource;	/* "user/alice", or NULL */
	json_t *meta;		/* audit metadata; handlers add what the record should say */
	char msg[256];		/* the error message when the handler fails */
	int rc;			/* what the handler returned */
	const struct kw_session *session;	/* the valid session attached, or NULL */
	const char *token;	/* that session's token (for logout), or NULL */
	char res_buf[96];	/* storage for a resource a handler names itself */
	const char *session_error;	/* why an attached token was not accepted, or NULL */
	/* Work that may only follow the commit of this request's change (may be NULL). */
	kw_after_commit_fn after_commit;
	bool keep_on_error;	/* commit state changes even though the handler failed
				   (a failed login must still count) */
};

/* Fill *ret_result (new reference) and return 0, or return an error with call->msg set. */
typedef int (*kw_op_fn)(struct kw_call *call, json_t **ret_result);

struct kw_op {
	const char *name;
	const char *verb;	/* permission verb; "" for any caller; NULL: args.action */
	const char *res_type;	/* resource type ("user"), or NULL */
	const char *res_arg;	/* argument naming the resource, or NULL */
	const char *acts_as;	/* argument naming the user acted for, or NULL */
	const char *roles_arg;	/* argument naming roles handed out (a name or a list):
				   the verb is needed on role/NAME for each, too */
	bool writes;		/* runs in a state.db transaction */
	bool needs_session;	/* a valid session must be attached, whoever asks */
	kw_op_fn fn;
};

/*
 * Handle one complete frame body from c: the reply is held in the turn's
 * batch (batch.h) until its record commits.  *ret_close is set when the
 * connection must be closed after that reply.
 */
void kw_dispatch(struct kw_broker *b, struct kw_conn *c, const uint8_t *body,
    size_t len, bool *ret_close) KW_NONNULL(1, 2, 3, 5);

/*
 * Answer a framing error that ends the connection (oversized or empty
 * frame, a frame not finished in time): audited and held like any reply.
 */
void kw_dispatch_frame_error(struct kw_broker *b, struct kw_conn *c, int err)
	KW_NONNULL(1, 2);

/*
 * Audit and build the error reply for an event that is not a request, such
 * as a connection refused for lack of room (action "connect"), committing
 * at once: the caller sends it straight away.  Deliver the turn's batch
 * first.  Returns the reply (new reference; NULL on ENOMEM).
 */
json_t *kw_dispatch_event(struct kw_broker *b, const struct kw_caller *who,
    const char *action, int err, const char *why) KW_NONNULL(1, 2, 3);

/* Argument helpers for handlers: the string at key, or NULL. */
const char *kw_arg_str(json_t *args, const char *key) KW_NONNULL(2);

struct kw_user;
/* The registered user named by args.user; KW_ERR_NOT_FOUND with call->msg set. */
int kw_op_find_user(struct kw_call *call, struct kw_user *ret_user) KW_NONNULL(1, 2);

/* Handlers, one file per group. */
int kw_op_status(struct kw_call *call, json_t **ret_result);
int kw_op_check(struct kw_call *call, json_t **ret_result);
int kw_op_user_add(struct kw_call *call, json_t **ret_result);
int kw_op_user_list(struct kw_call *call, json_t **ret_result);
int kw_op_user_show(struct kw_call *call, json_t **ret_result);
int kw_op_user_del(struct kw_call *call, json_t **ret_result);
int kw_op_role_list(struct kw_call *call, json_t **ret_result);
int kw_op_role_show(struct kw_call *call, json_t **ret_result);
int kw_op_role_create(struct kw_call *call, json_t **ret_result);
int kw_op_role_delete(struct kw_call *call, json_t **ret_result);
int kw_op_role_grant(struct kw_call *call, json_t **ret_result);
int kw_op_role_revoke(struct kw_call *call, json_t **ret_result);
int kw_op_login(struct kw_call *call, json_t **ret_result);
int kw_op_logout(struct kw_call *call, json_t **ret_result);
int kw_op_account(struct kw_call *call, json_t **ret_result);
int kw_op_totp_enroll(struct kw_call *call, json_t **ret_result);
int kw_op_user_totp_reset(struct kw_call *call, json_t **ret_result);
int kw_op_user_lock(struct kw_call *call, json_t **ret_result);
int kw_op_user_unlock(struct kw_call *call, json_t **ret_result);
int kw_op_key_set(struct kw_call *call, json_t **ret_result);
int kw_op_key_rotate(struct kw_call *call, json_t **ret_result);
int kw_op_key_get(struct kw_call *call, json_t **ret_result);
int kw_op_key_list(struct kw_call *call, json_t **ret_result);
int kw_op_key_revoke(struct kw_call *call, json_t **ret_result);
int kw_op_key_verify(struct kw_call *call, json_t **ret_result);
int kw_op_session_list(struct kw_call *call, json_t **ret_result);
int kw_op_session_revoke(struct kw_call *call, json_t **ret_result);
int kw_op_user_export(struct kw_call *call, json_t **ret_result);
int kw_op_user_erase(struct kw_call *call, json_t **ret_result);
int kw_op_audit_query(struct kw_call *call, json_t **ret_result);
int kw_op_audit_verify(struct kw_call *call, json_t **ret_result);
int kw_op_audit_prune(struct kw_call *call, json_t **ret_result);
int kw_op_incident_list(struct kw_call *call, json_t **ret_result);
int kw_op_incident_report(struct kw_call *call, json_t **ret_result);

/* The broker's clock in Unix seconds (libfaketime moves it in tests). */
long long kw_now(void);

/* Whether sessions are required of non-root callers (mfa enabled and required). */
bool kw_mfa_required(const struct kw_broker *b) KW_NONNULL(1);

#endif
