/*
 * apiproxy_internal.h - the supervisor's state, shared by the files of
 * broker/apiproxy/ and no one else.
 */
#ifndef KW_APIPROXY_INTERNAL_H
#define KW_APIPROXY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker/apiproxy/apiproxy.h"
#include "broker/apiproxy/budget.h"
#include "rbac/rbac.h"

enum kw_apiproxy_state {
	KW_AP_OFF,		/* not enabled, or stopped */
	KW_AP_STARTING,		/* spawned, waiting for proxy.ready until due_ms */
	KW_AP_RUNNING,
	KW_AP_WAITING,		/* died: started again at due_ms */
	KW_AP_STOPPING,		/* asked to stop (SIGTERM): its records still land until
				   its channel closes, or it is killed at due_ms */
};

/* A call authorized and not yet recorded (proxy.record), oldest first. */
struct kw_ap_call {
	long long id;
	char user[65];
	uid_t uid;
	char key[128];
	int version;
	int64_t started_ms;
	struct kw_ap_call *next;
};

struct kw_apiproxy {
	struct kw_services *svc;		/* borrowed */
	struct kw_apiproxy_hooks hooks;
	bool hooked;
	enum kw_apiproxy_state state;
	bool first;				/* the broker's start waits for this one */
	pid_t pid;				/* the child, or 0 */
	int pidfd;				/* to wait for it with a bound, or -1 */
	const struct kw_peer *peer;		/* its connection (kw_loop_adopt), or NULL */
	int64_t due_ms;				/* ready deadline, or when to start again */
	int64_t backoff_ms;
	bool restart;				/* STOPPING: start a new one once it is gone */
	int64_t ready_ms;			/* when it said ready */
	char listen[128];			/* what it bound (proxy.ready) */
	struct kw_ap_call *calls;
	long long next_call;
	struct kw_spent *spent;			/* tokens each user spent today */
	bool seed_failed;			/* the seed did not fit in memory */
	/* Whom the proxy.* request being answered acts for: its records are theirs. */
	struct kw_caller as;
	char as_name[65];
};

/* supervise.c: the call authorized as id, or NULL; unlink and return it (free it). */
struct kw_ap_call *kw_ap_call_take(struct kw_apiproxy *ap, long long id);

/* supervise.c: record one api_call row for user (NULL: the proxy's own refusal);
   a success or an error only when logActions lists api_call.  0 or KW_ERR_AUDIT. */
int kw_ap_record(struct kw_apiproxy *ap, const char *user, uid_t uid, const char *result,
    const char *resource, json_t *meta, long long request_id);

/* supervise.c: the proxy said proxy.ready on peer with its listen address. */
int kw_ap_ready(struct kw_apiproxy *ap, const struct kw_peer *peer, const char *listen,
    char *why, size_t why_len);

/* ops.c: the feature's requests. */
int kw_ap_register_ops(struct kw_dispatcher *d);

/* op_usage.c: seed ap->spent from today's recorded calls.  0 or an error (logged). */
int kw_ap_seed_spent(struct kw_apiproxy *ap);

#endif
