/*
 * ops.h - the requests broker/accounts/ serves (users, roles, grants and locks), and its
 * registration with the dispatcher.
 */
#ifndef KW_ACCOUNTS_OPS_H
#define KW_ACCOUNTS_OPS_H

#include <jansson.h>

#include "broker/dispatch/dispatch.h"
#include "common/macros.h"

/* Add accounts's requests (and what else it plugs in) to d.  0 or an error. */
int kw_accounts_register(struct kw_dispatcher *d, struct kw_services *svc) KW_WUR KW_NONNULL(1, 2);

/* The handlers (one file per group): fill *ret_result or fail with call->msg set. */
int kw_op_check(struct kw_call *call, json_t **ret_result);
int kw_op_user_add(struct kw_call *call, json_t **ret_result);
int kw_op_user_list(struct kw_call *call, json_t **ret_result);
int kw_op_user_show(struct kw_call *call, json_t **ret_result);
int kw_op_user_del(struct kw_call *call, json_t **ret_result);
int kw_op_user_lock(struct kw_call *call, json_t **ret_result);
int kw_op_user_unlock(struct kw_call *call, json_t **ret_result);
int kw_op_role_list(struct kw_call *call, json_t **ret_result);
int kw_op_role_show(struct kw_call *call, json_t **ret_result);
int kw_op_role_create(struct kw_call *call, json_t **ret_result);
int kw_op_role_delete(struct kw_call *call, json_t **ret_result);
int kw_op_role_grant(struct kw_call *call, json_t **ret_result);
int kw_op_role_revoke(struct kw_call *call, json_t **ret_result);

#endif
