/*
 * requests.h - turning one request frame into one reply, through the
 * request table: parse, handshake, look up, authorize (rbac), handle,
 * audit.  The audit record is committed before the reply is returned.
 */
#ifndef KW_REQUESTS_H
#define KW_REQUESTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"

/* A handler fills *ret_result (new reference) or returns an error with msg. */
typedef int (*kw_op_fn)(struct kw_broker *b, struct kw_conn *c, json_t *args,
    json_t **ret_result, char *msg, size_t msg_len);

struct kw_op {
	const char *name;
	const char *perm;	/* permission rbac must grant; "" for any caller */
	kw_op_fn fn;
};

/*
 * Handle one complete frame body from c.  Returns the reply message (new
 * reference; NULL only on ENOMEM).  *ret_close is set when the connection
 * must be closed after the reply is sent.
 */
json_t *kw_dispatch(struct kw_broker *b, struct kw_conn *c, const uint8_t *body,
    size_t len, bool *ret_close) KW_NONNULL(1, 2, 3, 5);

/*
 * Reply to a framing error that ends the connection (oversized or empty
 * frame, a frame not finished in time): audited like any other answer.
 */
json_t *kw_dispatch_frame_error(struct kw_broker *b, struct kw_conn *c, int err)
	KW_NONNULL(1, 2);

/*
 * Audit and build the error reply for an event that is not a request, such
 * as a connection refused for lack of room (action "connect").  Returns the
 * reply (new reference; NULL on ENOMEM).
 */
json_t *kw_dispatch_event(struct kw_broker *b, const struct kw_caller *who,
    const char *action, int err, const char *why) KW_NONNULL(1, 2, 3);

/* Handlers, one file each. */
int kw_op_status(struct kw_broker *b, struct kw_conn *c, json_t *args,
    json_t **ret_result, char *msg, size_t msg_len);

#endif
