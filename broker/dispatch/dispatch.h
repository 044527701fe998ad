/*
 * dispatch.h - turning one request frame into one reply.
 *
 * DESIGN: broker/dispatch/ is where features plug in.  Each feature folder
 * exports a table of the requests it serves (struct kw_op, one row per
 * request, naming the permission it needs); broker/main.c registers the
 * tables, and kw_dispatch is the one path every request takes: parse,
 * handshake, look up, attach the session, authorize (rbac/, the one
 * decision), run the handler, audit.  Every answer, allowed or refused, is
 * recorded before it is returned: the reply is held in the turn's group
 * commit (batch.h) and a change to the state store lands only with its
 * record.  The one exception is a refusal one user repeats within a window:
 * it is counted and answered, and a summary record with the count follows
 * when the window closes (refusals.h).  Features may also register timers (run by the event loop) and
 * defer a request to a worker thread (kw_call_defer) when it must wait on
 * the network.
 *
 * The dispatcher knows connections only as struct kw_peer (embedded in the
 * event loop's connection); handlers see services (services.h), never the
 * daemon.
 */
#ifndef KW_DISPATCH_H
#define KW_DISPATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/dispatch/batch.h"
#include "broker/dispatch/peer.h"
#include "broker/dispatch/services.h"
#include "common/macros.h"
#include "common/names.h"
#include "rbac/rbac.h"

struct kw_session;
struct kw_user;
struct kw_dispatcher;

/* What a handler gets: the request, already authorized. */
struct kw_call {
	struct kw_services *svc;
	struct kw_dispatcher *d;
	struct kw_peer *peer;
	const struct kw_caller *caller;
	const struct kw_op *op;
	json_t *args;		/* borrowed; shape checked by the dispatcher */
	int64_t id;		/* the request id */
	const char *subject;	/* the user the request acts for */
	const char *resource;	/* "user/alice", or NULL */
	json_t *meta;		/* audit metadata; handlers add what the record should say */
	char msg[256];		/* the error message when the handler fails */
	const struct kw_session *session;	/* the valid session attached, or NULL */
	const char *token;	/* that session's token (for logout), or NULL */
	char res_buf[96];	/* storage for a resource a handler names itself */
	kw_after_commit_fn after_commit;	/* work that may only follow the commit (key
					   sweeps, scrubbing), or NULL */
	bool keep_on_error;	/* keep state changes although the handler failed
				   (a failed login must still count) */
	struct kw_deferred *deferred;	/* set by kw_call_defer */
	const char *action;	/* the audited action when it is not the request's name
				   (a tool call is recorded as file_read, ...), or NULL */
	bool always_record;	/* record this answer even for a KW_OP_ORDINARY request
				   logActions does not list (a policy's "ask") */
};

/* Fill *ret_result (new reference) and return 0, or return an error with call->msg set. */
typedef int (*kw_op_fn)(struct kw_call *call, json_t **ret_result);

/* The permission verb a request needs. */
enum kw_verb {
	KW_VERB_NONE,		/* any caller (hello, status, login, ...) */
	KW_VERB_READ,
	KW_VERB_WRITE,
	KW_VERB_EXECUTE,
	KW_VERB_ADMIN,
	KW_VERB_FROM_ARGS,	/* the request's "action" names it (check) */
	KW_VERB_FROM_HANDLER,	/* what the request touches is known only once its
				   arguments are analysed (a tool call): a session is
				   required as for any permissioned request, and the
				   handler has each permission decided through
				   kw_call_authorize before it answers */
};

enum {
	KW_OP_WRITES = 1 << 0,		/* runs in a state transaction of its own */
	KW_OP_SESSION = 1 << 1,		/* a valid session must be attached, whoever asks */
	KW_OP_HANDSHAKE = 1 << 2,	/* the protocol handshake (hello) */
	KW_OP_ORDINARY = 1 << 3,	/* recorded only when security.audit.logActions lists it
					   (a refusal is always recorded) */
	KW_OP_ROLES_OPTIONAL = 1 << 4,	/* .roles may be absent */
	KW_OP_TARGET_NOT_STRONGER = 1 << 5,	/* the user named by .arg may hold no permission
					   the subject lacks (ceiling.c; root is not limited) */
	KW_OP_INTERNAL = 1 << 6,	/* answered only on an internal peer (peer.h), whoever
					   else asks (root and the broker's own uid included);
					   an internal peer is answered nothing else */
};

struct kw_op {
	const char *name;		/* "key.get" */
	enum kw_verb verb;
	const char *resource;		/* resource type ("key"), or NULL */
	const char *arg;		/* argument naming the resource, or NULL */
	enum kw_name_kind arg_kind;	/* what that argument must look like */
	const char *acts_as;		/* argument naming the user acted for, or NULL */
	const char *roles;		/* argument naming roles handed out (a name or a list):
					   the verb is needed on role/NAME for each, too, and
					   each must be within the subject's own permissions */
	const char *perms;		/* argument listing permissions a new role would grant:
					   each must be within the subject's own permissions */
	unsigned flags;			/* KW_OP_* */
	kw_op_fn fn;
};

/* A timer a feature registers: the loop asks when it is due and runs it then. */
struct kw_timer {
	const char *name;
	/* Milliseconds until due (0: now; at most a minute, the wall clock may jump). */
	int (*due_ms)(void *data);
	/* Run inside the current turn (its records join the group commit). */
	void (*run)(void *data);
	void *data;
	void (*free)(void *data);	/* releases data when the dispatcher goes; may be NULL */
};

/*
 * Make a dispatcher for svc (borrowed; svc->batch is set to its batch).
 * client_timeout_s is quoted in the refusal of a frame not finished in time.
 * 0 or KW_ERR_NOMEM.  Free with kw_dispatcher_free (accepts NULL).
 */
int kw_dispatcher_new(struct kw_services *svc, long long client_timeout_s,
    struct kw_dispatcher **ret_d) KW_WUR KW_NONNULL(1, 3);
void kw_dispatcher_free(struct kw_dispatcher *d);

/* Register a feature's requests (n rows, static storage).  0, KW_ERR_NOMEM or
   KW_ERR_INVALID for a name already registered. */
int kw_dispatch_add_ops(struct kw_dispatcher *d, const struct kw_op *ops, size_t n)
	KW_WUR KW_NONNULL(1, 2);

/* Register a timer (copied).  0 or KW_ERR_NOMEM. */
int kw_dispatch_add_timer(struct kw_dispatcher *d, const struct kw_timer *t)
	KW_WUR KW_NONNULL(1, 2);

/* Milliseconds until the first timer is due (-1: no timer). */
int kw_dispatch_timers_due_ms(struct kw_dispatcher *d) KW_NONNULL(1);
/* Run the timers that are due. */
void kw_dispatch_run_timers(struct kw_dispatcher *d) KW_NONNULL(1);

/*
 * At shutdown: write the summary records of the refusals still being
 * counted (security.audit.refusalWindow) into the turn, for the loop to
 * commit with its last batch.
 */
void kw_dispatch_flush(struct kw_dispatcher *d) KW_NONNULL(1);

/*
 * Handle one complete frame body from peer: the reply is held in the turn's
 * batch until its record commits.  *ret_close is set when the connection
 * must be closed after that reply.
 */
void kw_dispatch(struct kw_dispatcher *d, struct kw_peer *peer, const uint8_t *body,
    size_t len, bool *ret_close) KW_NONNULL(1, 2, 3, 5);

/*
 * Answer a framing error that ends the connection (oversized or empty
 * frame, a frame not finished in time): audited and held like any reply.
 */
void kw_dispatch_frame_error(struct kw_dispatcher *d, struct kw_peer *peer, int err)
	KW_NONNULL(1, 2);

/*
 * Refuse peer for something that is not a request (no hello in time:
 * action "handshake", KW_ERR_TIMEOUT) and end the connection: audited and
 * held like any reply.
 */
void kw_dispatch_hangup(struct kw_dispatcher *d, struct kw_peer *peer, const char *action,
    int err, const char *why) KW_NONNULL(1, 2, 3, 5);

/*
 * Audit and build the error reply for an event that is not a request, such
 * as a connection refused for lack of room (action "connect"), committing
 * at once: the caller sends it straight away.  Deliver the turn's batch
 * first.  Returns the reply (new reference; NULL on ENOMEM).
 */
json_t *kw_dispatch_event(struct kw_dispatcher *d, const struct kw_caller *who,
    const char *action, int err, const char *why) KW_NONNULL(1, 2, 3);

/* A connection is gone: forget its held replies and its deferred requests. */
void kw_dispatch_forget_peer(struct kw_dispatcher *d, const struct kw_peer *peer)
	KW_NONNULL(1, 2);

/*
 * Waiting on the network (a live key check, later an upstream call) never
 * happens on the event loop.  A handler that must wait hands the request to
 * the worker thread: work(ctx) runs there (no stores, no services: only
 * what ctx holds), then finish(call, ctx, ret_result) runs back on the loop
 * and its outcome is audited and answered like any handler's.  The handler
 * returns 0 with *ret_result left NULL after kw_call_defer succeeded.  The
 * connection reads no further request until the answer is out.  free_ctx
 * (may be NULL) releases ctx in every case.  Only for requests without
 * KW_OP_WRITES.  0, or KW_ERR_NOMEM / KW_ERR_INTERNAL (ctx released).
 */
typedef void (*kw_work_fn)(void *ctx);
typedef int (*kw_finish_fn)(struct kw_call *call, void *ctx, json_t **ret_result);
int kw_call_defer(struct kw_call *call, kw_work_fn work, kw_finish_fn finish,
    void (*free_ctx)(void *ctx), void *ctx) KW_WUR KW_NONNULL(1, 2, 3);

/* The eventfd the loop watches for finished work, and collecting it:
   each finished request is audited and its reply joins the turn. */
int kw_dispatch_worker_fd(const struct kw_dispatcher *d) KW_NONNULL(1);
void kw_dispatch_worker_drain(struct kw_dispatcher *d) KW_NONNULL(1);

/*
 * After a reload replaced svc->cfg (between turns): take its
 * security.audit.refusalWindow and refusalBurst -- refusal windows still
 * open are closed first, their summaries written into a turn the caller
 * commits -- and client_timeout_s (quoted in refusals).
 */
void kw_dispatch_reload(struct kw_dispatcher *d, long long client_timeout_s) KW_NONNULL(1);

/*
 * For a handler whose answer has parts only some callers may see: whether
 * call's caller (itself, not a user it acts for) holds verb on resource,
 * decided as the request table's rows are (a session first, where one is
 * required).  Errors read as no.
 */
bool kw_call_may(struct kw_call *call, const char *verb, const char *resource)
	KW_NONNULL(1, 2, 3);

/* One permission a KW_VERB_FROM_HANDLER request needs. */
struct kw_need {
	const char *verb;	/* "read", "write", "execute" */
	const char *resource;	/* "file/etc/passwd"; NULL: only an unnarrowed permission */
};

/*
 * For a KW_VERB_FROM_HANDLER request: decide each need for call's subject
 * with rbac, as the table's rows are decided.  0 when every need is
 * granted; KW_ERR_DENIED with *ret_i the first refused and its reason in
 * why; KW_ERR_INTERNAL when the state store cannot be read (no is the
 * answer then too).
 */
int kw_call_authorize(struct kw_call *call, const struct kw_need *needs, size_t n,
    size_t *ret_i, char *why, size_t why_len) KW_WUR KW_NONNULL(1, 4, 5);

/*
 * A feature that starts a helper and serves it as an internal peer
 * (kw_loop_adopt) watches it here: gone(data, peer) when that connection
 * closes (inside a turn: records written then land with it), stopping(data)
 * when the broker stops, before its last turn is committed.  One watcher.
 */
struct kw_internal_watch {
	void (*gone)(void *data, const struct kw_peer *peer);
	/* The broker is stopping: ask the helper to finish; true while it still is
	   (the loop keeps serving its channel meanwhile). */
	bool (*finishing)(void *data);
	void (*stopping)(void *data);
	void *data;
};
void kw_dispatch_watch_internal(struct kw_dispatcher *d, const struct kw_internal_watch *w)
	KW_NONNULL(1, 2);
/*
 * The event loop is stopping: true while an internal helper is still
 * finishing (asked to stop, its last requests still to come); the loop
 * keeps serving until false.  The helper bounds how long that is.
 */
bool kw_dispatch_helpers_finishing(struct kw_dispatcher *d) KW_NONNULL(1);
/* The event loop's word that an internal peer's connection is closing. */
void kw_dispatch_internal_gone(struct kw_dispatcher *d, const struct kw_peer *peer)
	KW_NONNULL(1, 2);

/* The turn's group commit, for the loop to commit and deliver. */
struct kw_batch *kw_dispatch_batch(struct kw_dispatcher *d) KW_NONNULL(1);

/* Argument helper for handlers: the string at key, or NULL. */
const char *kw_arg_str(json_t *args, const char *key) KW_NONNULL(2);

/* The registered user named by args.user; KW_ERR_NOT_FOUND with call->msg set. */
int kw_op_find_user(struct kw_call *call, struct kw_user *ret_user) KW_NONNULL(1, 2);

/*
 * Whether security.audit.logActions lists action (a glob match): an
 * ordinary request's allowed answer is recorded only then (refusals always).
 */
bool kw_dispatch_action_logged(const struct kw_services *svc, const char *action)
	KW_NONNULL(1, 2);

/* Whether sessions are required of non-root callers (mfa enabled and required). */
bool kw_mfa_required(const struct kw_services *svc) KW_NONNULL(1);

#endif
