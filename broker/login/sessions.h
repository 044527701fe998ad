/*
 * sessions.h - short-lived session tokens (state.db).
 *
 * A token is "kw1_" ID "_" SECRET: ID is 128 public random bits (hex) that
 * name the session in lists and audit records; SECRET is 256 random bits
 * (base64url) of which the broker keeps only a keyed hash.  A session ends
 * when idle for `idle` seconds, at `expires` (absolute), or when revoked.
 */
#ifndef KW_SESSIONS_H
#define KW_SESSIONS_H

#include <jansson.h>
#include <sys/types.h>
#include <time.h>

#include "common/clock.h"
#include "common/macros.h"
#include "broker/login/secrets.h"
#include "broker/store/sessions.h"

struct kw_state;

#define KW_TOKEN_MAX		128

/*
 * Create a session for uid at `now` with absolute lifetime `lifetime`
 * seconds (0: none).  If the user then holds more than max_sessions, the
 * oldest are removed and their ids appended to *ret_evicted (a new array).
 * The token is written to token[KW_TOKEN_MAX] (wipe it after use).
 */
int kw_session_create(struct kw_state *st, const struct kw_secrets *s, uid_t uid, long long now,
    long long lifetime, long long max_sessions, struct kw_session *ret_session,
    char token[KW_TOKEN_MAX], json_t **ret_evicted) KW_WUR KW_NONNULL(1, 2, 7, 8, 9);

/*
 * Check a token presented by uid at `now` against the idle limit and, if it
 * is good, mark it used.  Returns 0 with *ret_session filled; KW_ERR_DENIED
 * when the session belongs to another uid (it is left untouched, so a
 * stranger cannot keep it alive); KW_ERR_SESSION with a reason in why when
 * malformed, unknown (revoked), wrong secret, idle too long or expired.  An
 * expired or idle session is deleted.
 */
int kw_session_check(struct kw_state *st, const struct kw_secrets *s, const char *token, uid_t uid,
    long long now, long long idle, struct kw_session *ret_session, char *why, size_t why_len)
	KW_WUR KW_NONNULL(1, 2, 3, 7, 8);

/* Purging, revoking and listing are the store's own (broker/store/sessions.h). */

#endif
