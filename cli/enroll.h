/*
 * enroll.h - showing a TOTP enrollment (user add, user totp-reset, totp
 * enroll): the one time the secret and recovery codes are visible.
 */
#ifndef KW_ENROLL_H
#define KW_ENROLL_H

#include <jansson.h>
#include <stdbool.h>

#include "common/macros.h"

/*
 * Print an enrollment object {"user","otpauth_uri","secret","recovery_codes"}
 * for a person: the URI, a QR code of it (when stdout is a terminal, or
 * always with force_qr), the base32 secret and the recovery codes.
 */
void kw_enroll_print(json_t *enrollment, bool force_qr) KW_NONNULL(1);

/*
 * Wipe the secret parts of an enrollment object (secret, URI, recovery
 * codes) in place, before it is released.  Accepts NULL.
 */
void kw_enroll_wipe(json_t *enrollment);

#endif
