/*
 * ops.h - broker/accounts/: who may do what.
 *
 * DESIGN: this folder owns the identities keywarden knows (Unix users
 * registered by uid), their role grants, the roles (configured ones and
 * those made from the CLI, compiled once for decisions: roles.h), account
 * locks set by an administrator, and "check" (may the subject do ACTION on
 * RESOURCE).  Rows live in broker/store/ (users.h, roles.h, locks.h); the
 * decision itself is rbac/.  Automatic locks after failed logins are
 * broker/alerts/'s.
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
