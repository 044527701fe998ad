/*
 * ops.h - broker/keys/: the API keys the broker hands out.
 *
 * DESIGN: this folder owns key operations (set, rotate, get, list, revoke,
 * verify): the values live in a keystore backend (keystore/), their
 * versions and states in the state store (broker/store/keys.h), and
 * keys.h keeps the two in step.  The live check of a key (api.verifyUrl)
 * runs on the dispatcher's worker thread, never on the event loop.
 */
#ifndef KW_KEYS_OPS_H
#define KW_KEYS_OPS_H

#include <jansson.h>

#include "broker/dispatch/dispatch.h"
#include "common/macros.h"

/* Add keys's requests (and what else it plugs in) to d.  0 or an error. */
int kw_keys_register(struct kw_dispatcher *d, struct kw_services *svc) KW_WUR KW_NONNULL(1, 2);

/* The handlers (one file per group): fill *ret_result or fail with call->msg set. */
int kw_op_key_set(struct kw_call *call, json_t **ret_result);
int kw_op_key_rotate(struct kw_call *call, json_t **ret_result);
int kw_op_key_get(struct kw_call *call, json_t **ret_result);
int kw_op_key_list(struct kw_call *call, json_t **ret_result);
int kw_op_key_revoke(struct kw_call *call, json_t **ret_result);
int kw_op_key_verify(struct kw_call *call, json_t **ret_result);

#endif
