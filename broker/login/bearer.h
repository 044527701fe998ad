/*
 * bearer.h - the shape every bearer token of the broker's has, and the one
 * way they are made and checked: PREFIX, a hex id naming the row, '_', and
 * a random secret (32 bytes, base64url).  The store keeps the id and a
 * keyed hash of the secret, never the secret; a token is checked by
 * finding its row by id and comparing hashes in constant time.  Sessions
 * ("kw1_") and the API proxy's tokens ("kwp1_") are both made here; the
 * domain mixed into the hash keeps one kind from ever passing for the other.
 */
#ifndef KW_BEARER_H
#define KW_BEARER_H

#include <stdbool.h>
#include <stddef.h>

#include <sodium.h>

#include "broker/login/secrets.h"
#include "common/macros.h"

#define KW_BEARER_HASH_LEN	crypto_generichash_BYTES

/*
 * Make a token: prefix, a random hex id of id_hex_len characters (into
 * id[id_hex_len + 1]), '_', a random secret; into token[token_len], with
 * the hash to store into hash.  The secret is wiped here; the caller wipes
 * token after use.  0, or KW_ERR_INVALID when token_len is too small.
 */
int kw_bearer_mint(const struct kw_secrets *s, const char *prefix, const char *domain,
    size_t id_hex_len, char *id, char *token, size_t token_len,
    unsigned char hash[KW_BEARER_HASH_LEN]) KW_WUR KW_NONNULL(1, 2, 3, 5, 6, 8);

/*
 * Split a token of this shape: its id into id[id_hex_len + 1] and a pointer
 * to its secret in *ret_secret.  false when the shape is wrong.
 */
bool kw_bearer_split(const char *token, const char *prefix, size_t id_hex_len, char *id,
    const char **ret_secret) KW_NONNULL(1, 2, 4, 5);

/*
 * Whether secret hashes to stored[stored_len] under domain (constant time
 * in the hash's length).
 */
bool kw_bearer_matches(const struct kw_secrets *s, const char *domain, const char *secret,
    const unsigned char *stored, size_t stored_len) KW_NONNULL(1, 2, 3, 4);

#endif
