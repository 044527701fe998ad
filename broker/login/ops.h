/*
 * ops.h - broker/login/: proving who you are, and the sessions that follow.
 *
 * DESIGN: this folder owns the broker's own key material (secrets.h: the
 * keys that seal TOTP seeds and hash recovery codes and session tokens),
 * TOTP enrollment and code checks (totp.h, mfa.h), session tokens
 * (sessions.h: made and checked here, stored by broker/store/), and the
 * requests login, logout, account, status, totp.enroll, user.totp-reset and
 * session.*.  The dispatcher checks the token a request carries with
 * kw_session_check.
 */
#ifndef KW_LOGIN_OPS_H
#define KW_LOGIN_OPS_H

#include <jansson.h>

#include "broker/dispatch/dispatch.h"
#include "common/macros.h"

struct kw_user;

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

/*
 * The second factor of u, proved in this request (args.code: a TOTP or
 * recovery code), as login and totp.enroll ask for it: refused while u is
 * locked, checked with the replay rule, and a wrong code counted as a failed
 * authentication (at the failed_authentication threshold the monitor
 * blocks).  call->meta gets "method".  0, or KW_ERR_LOCKED, _BAD_REQUEST,
 * _NOT_FOUND (nothing enrolled), _DENIED (wrong code) with call->msg set.
 */
int kw_login_check_code(struct kw_call *call, const struct kw_user *u, long long now)
	KW_WUR KW_NONNULL(1, 2);

#endif
