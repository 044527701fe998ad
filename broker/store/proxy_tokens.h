/*
 * proxy_tokens.h - the API proxy's tokens as the state store keeps them: an
 * id, the session and user they belong to, the one key they name and a
 * keyed hash of the secret (never the secret).  A token is good only while
 * its session lives; making and checking tokens is broker/apiproxy/tokens.c.
 */
#ifndef KW_STORE_PROXY_TOKENS_H
#define KW_STORE_PROXY_TOKENS_H

#include <stddef.h>
#include <sys/types.h>

#include "broker/store/sessions.h"
#include "common/macros.h"

struct kw_state;

#define KW_PROXY_TOKEN_ID_LEN	32
#define KW_PROXY_KEY_MAX	128

struct kw_proxy_token {
	char id[KW_PROXY_TOKEN_ID_LEN + 1];
	char session[KW_SESSION_ID_LEN + 1];
	uid_t uid;
	char key[KW_PROXY_KEY_MAX];
	long long created;
};

/* Store a new token with the hash of its secret.  0, KW_ERR_INVALID (id taken), KW_ERR_IO. */
int kw_proxy_token_insert(struct kw_state *st, const struct kw_proxy_token *t,
    const unsigned char *hash, size_t hash_len) KW_WUR KW_NONNULL(1, 2, 3);

/*
 * The token named id into *ret_token and its stored hash into
 * hash[KW_SESSION_HASH_MAX] with *ret_hash_len.  0, KW_ERR_NOT_FOUND or
 * KW_ERR_IO.
 */
int kw_proxy_token_find(struct kw_state *st, const char *id, struct kw_proxy_token *ret_token,
    unsigned char hash[KW_SESSION_HASH_MAX], size_t *ret_hash_len) KW_WUR KW_NONNULL(1, 2, 3, 4, 5);

/* Remove the tokens of sessions that no longer exist.  0 or KW_ERR_IO. */
int kw_proxy_token_purge(struct kw_state *st) KW_WUR KW_NONNULL(1);

#endif
