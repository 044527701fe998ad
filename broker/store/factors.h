/*
 * factors.h - second factors as the state store keeps them: a user's TOTP
 * seed (sealed: the store never sees it in the clear) with the last time
 * step used, and keyed hashes of recovery codes.  Enrolling and checking
 * codes is broker/login/mfa.c.
 */
#ifndef KW_STORE_FACTORS_H
#define KW_STORE_FACTORS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/macros.h"

struct kw_state;

/* Store uid's sealed seed (replacing any), enrolled now, no step used.  0 or KW_ERR_IO. */
int kw_factor_totp_put(struct kw_state *st, uid_t uid, const unsigned char *sealed, size_t len)
	KW_WUR KW_NONNULL(1, 3);

/*
 * uid's sealed seed (*ret_sealed malloc'd, *ret_len bytes) and the last
 * step a code was accepted for (-1: none).  0, KW_ERR_NOT_FOUND, KW_ERR_NOMEM
 * or KW_ERR_IO.
 */
int kw_factor_totp_get(struct kw_state *st, uid_t uid, unsigned char **ret_sealed,
    size_t *ret_len, long long *ret_last_step) KW_WUR KW_NONNULL(1, 3, 4, 5);

/* Remember the step a code was accepted for (no replay).  0 or KW_ERR_IO. */
int kw_factor_totp_used(struct kw_state *st, uid_t uid, long long step) KW_WUR KW_NONNULL(1);

/* Drop uid's recovery codes.  0 or KW_ERR_IO. */
int kw_factor_recovery_clear(struct kw_state *st, uid_t uid) KW_WUR KW_NONNULL(1);

/* Add a recovery code's hash.  0, KW_ERR_INVALID (the hash is there already), KW_ERR_IO. */
int kw_factor_recovery_add(struct kw_state *st, uid_t uid, const unsigned char *hash,
    size_t len) KW_WUR KW_NONNULL(1, 3);

/* Use the unused code with this hash at now.  0, KW_ERR_DENIED (none), KW_ERR_IO. */
int kw_factor_recovery_use(struct kw_state *st, uid_t uid, const unsigned char *hash,
    size_t len, long long now) KW_WUR KW_NONNULL(1, 3);

/*
 * When uid enrolled (Unix seconds, -1: not enrolled) and how many recovery
 * codes are left.  0 or KW_ERR_IO.
 */
int kw_factor_status(struct kw_state *st, uid_t uid, long long *ret_enrolled_at,
    long long *ret_codes_left) KW_WUR KW_NONNULL(1, 3, 4);

/* Whether any user has a seed stored; true when the store cannot tell. */
bool kw_factor_any(struct kw_state *st) KW_NONNULL(1);

#endif
