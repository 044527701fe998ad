/*
 * totp.h - TOTP second factors (RFC 6238, SHA1, 30 s, 6 digits) and the
 * single-use recovery codes that stand in for a lost device.
 *
 * The arithmetic is liboath's; this file adds what a broker needs around it:
 * seeds sealed at rest, the replay rule and the enrollment data.
 */
#ifndef KW_TOTP_H
#define KW_TOTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "common/macros.h"
#include "broker/login/secrets.h"

#define KW_TOTP_SEED_LEN	20	/* bytes, as RFC 4226 recommends */
#define KW_TOTP_PERIOD		30
#define KW_TOTP_DIGITS		6
#define KW_RECOVERY_CODES	10
#define KW_RECOVERY_LEN		11	/* "xxxxx-xxxxx" */
#define KW_RECOVERY_HASH_LEN	32

/* Call once at start.  0 or KW_ERR_INTERNAL. */
int kw_totp_init(void) KW_WUR;

/*
 * Seal a seed for uid (the uid is bound in as associated data, so a sealed
 * seed moved to another user's row does not open).  *ret_blob is malloc'd,
 * *ret_len its size.  0 or KW_ERR_NOMEM.
 */
int kw_totp_seal(const struct kw_secrets *s, uid_t uid, const unsigned char *seed,
    unsigned char **ret_blob, size_t *ret_len) KW_WUR KW_NONNULL(1, 3, 4, 5);

/* Open a sealed seed into seed[KW_TOTP_SEED_LEN].  0, or KW_ERR_IO if it does not verify. */
int kw_totp_open(const struct kw_secrets *s, uid_t uid, const unsigned char *blob, size_t len,
    unsigned char *seed) KW_WUR KW_NONNULL(1, 3, 5);

/*
 * Check a code against seed at time `now` within ±window steps.  On a match
 * *ret_step is the code's time step.  Codes whose step is <= last_step (the
 * last accepted one; -1 for none) are refused: a code works once.
 * Returns 0, or KW_ERR_DENIED for a wrong, replayed or malformed code.
 */
int kw_totp_verify(const unsigned char *seed, time_t now, unsigned window, long long last_step,
    const char *code, long long *ret_step) KW_WUR KW_NONNULL(1, 5, 6);

/* The base32 seed (malloc'd, NUL-terminated) or NULL on ENOMEM. */
char *kw_totp_base32(const unsigned char *seed) KW_NONNULL(1);

/* otpauth://totp/keywarden:USER?secret=...&issuer=keywarden&...; malloc'd or NULL. */
char *kw_totp_uri(const char *user, const char *base32) KW_NONNULL(1, 2);

/* True when text looks like a recovery code ("xxxxx-xxxxx", base32 letters). */
bool kw_recovery_code_shape(const char *text) KW_NONNULL(1);

/* A new random recovery code into out[KW_RECOVERY_LEN + 1]. */
void kw_recovery_code_new(char *out) KW_NONNULL(1);

/* The keyed hash under which a recovery code is stored (case-insensitive). */
void kw_recovery_hash(const struct kw_secrets *s, const char *code,
    unsigned char out[KW_RECOVERY_HASH_LEN]) KW_NONNULL(1, 2, 3);

#endif
