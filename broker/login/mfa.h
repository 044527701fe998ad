/*
 * mfa.h - second factors in state.db: enrolling a user (seed + recovery
 * codes) and checking a presented code, with the replay rule.
 */
#ifndef KW_MFA_H
#define KW_MFA_H

#include <jansson.h>
#include <sys/types.h>

#include "common/macros.h"
#include "broker/login/secrets.h"

struct kw_state;

/*
 * Give uid a new seed and 10 new recovery codes, replacing any old ones.
 * *ret_obj (new reference) is the enrollment object {"user", "otpauth_uri",
 * "secret", "recovery_codes"}: the only time these are shown.
 */
int kw_mfa_enroll(struct kw_state *st, const struct kw_secrets *s, uid_t uid, const char *user,
    json_t **ret_obj) KW_WUR KW_NONNULL(1, 2, 4, 5);

/*
 * Check code (a TOTP code or a recovery code) for uid at `now`.  A good
 * TOTP code advances the last accepted step; a good recovery code is used
 * up.  *ret_method is "totp" or "recovery".  0, KW_ERR_DENIED for a wrong
 * or replayed code, KW_ERR_NOT_FOUND when uid has no second factor.
 */
int kw_mfa_check(struct kw_state *st, const struct kw_secrets *s, uid_t uid, const char *code,
    long long now, unsigned window, const char **ret_method) KW_WUR KW_NONNULL(1, 2, 4, 7);

/*
 * What uid's second factor looks like, without its secrets:
 * {"enrolled", "enrolled_at", "recovery_codes_left"} (new reference; NULL on
 * ENOMEM).  A store that cannot be read shows as not enrolled.
 */
json_t *kw_mfa_status_json(struct kw_state *st, uid_t uid) KW_NONNULL(1);

#endif
