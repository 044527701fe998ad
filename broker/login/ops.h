/*
 * ops.h - the requests broker/login/ serves (TOTP enrollment, login, sessions and the status a caller sees), and its
 * registration with the dispatcher.
 */
#ifndef KW_LOGIN_OPS_H
#define KW_LOGIN_OPS_H

#include <jansson.h>

#include "broker/dispatch/dispatch.h"
#include "common/macros.h"

/* Add login's requests (and what else it plugs in) to d.  0 or an error. */
int kw_login_register(struct kw_dispatcher *d, struct kw_services *svc) KW_WUR KW_NONNULL(1, 2);

/* The handlers (one file per group): fill *ret_result or fail with call->msg set. */
int kw_op_status(struct kw_call *call, json_t **ret_result);
int kw_op_login(struct kw_call *call, json_t **ret_result);
int kw_op_logout(struct kw_call *call, json_t **ret_result);
int kw_op_account(struct kw_call *call, json_t **ret_result);
int kw_op_totp_enroll(struct kw_call *call, json_t **ret_result);
int kw_op_user_totp_reset(struct kw_call *call, json_t **ret_result);
int kw_op_session_list(struct kw_call *call, json_t **ret_result);
int kw_op_session_revoke(struct kw_call *call, json_t **ret_result);

#endif
