/*
 * tokens.h - the API proxy's tokens: "kwp1_" ID "_" SECRET, shaped like a
 * session token (ID 128 public random bits in hex, SECRET 256 random bits in
 * base64url).  The broker keeps a keyed hash of the secret, the session and
 * the one key the token names (broker/store/proxy_tokens.h).
 */
#ifndef KW_APIPROXY_TOKENS_H
#define KW_APIPROXY_TOKENS_H

#include "broker/login/secrets.h"
#include "broker/login/sessions.h"
#include "broker/store/proxy_tokens.h"
#include "common/macros.h"

#define KW_PROXY_TOKEN_PREFIX	"kwp1_"

/*
 * Make a token for key in session ses at now, into token[KW_TOKEN_MAX]
 * (wipe it after use).  0, or the store's error.
 */
int kw_proxy_token_make(struct kw_state *st, const struct kw_secrets *s,
    const struct kw_session *ses, const char *key, long long now, char token[KW_TOKEN_MAX])
	KW_WUR KW_NONNULL(1, 2, 3, 4, 6);

/*
 * Check token's shape and secret: 0 with *ret_token; KW_ERR_EXPIRED when it
 * is malformed, was never issued, was purged or its secret is wrong (said
 * in why); KW_ERR_IO.  Whether its session still lives is the caller's
 * question.
 */
int kw_proxy_token_check(struct kw_state *st, const struct kw_secrets *s, const char *token,
    struct kw_proxy_token *ret_token, char *why, size_t why_len) KW_WUR KW_NONNULL(1, 2, 3, 4, 5);

#endif
