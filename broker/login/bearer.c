/*
 * bearer.c - making and checking the broker's bearer tokens (see bearer.h).
 */
#include <stdio.h>
#include <string.h>

#include "broker/login/bearer.h"
#include "common/errors.h"

#define SECRET_BYTES	32

/* BLAKE2b keyed with the session key, over domain then secret. */
static void
hash_secret(const struct kw_secrets *s, const char *domain, const char *secret,
    unsigned char out[KW_BEARER_HASH_LEN])
{
	crypto_generichash_state h;

	crypto_generichash_init(&h, s->session_key, sizeof(s->session_key), KW_BEARER_HASH_LEN);
	crypto_generichash_update(&h, (const unsigned char *)domain, strlen(domain));
	crypto_generichash_update(&h, (const unsigned char *)secret, strlen(secret));
	crypto_generichash_final(&h, out, KW_BEARER_HASH_LEN);
	sodium_memzero(&h, sizeof(h));
}

int
kw_bearer_mint(const struct kw_secrets *s, const char *prefix, const char *domain,
    size_t id_hex_len, char *id, char *token, size_t token_len,
    unsigned char hash[KW_BEARER_HASH_LEN])
{
	unsigned char idb[64], sec[SECRET_BYTES];
	char secret[sodium_base64_ENCODED_LEN(SECRET_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
	int n;

	if (id_hex_len % 2 || id_hex_len / 2 > sizeof(idb))
		return KW_ERR_INVALID;
	randombytes_buf(idb, id_hex_len / 2);
	randombytes_buf(sec, sizeof(sec));
	sodium_bin2hex(id, id_hex_len + 1, idb, id_hex_len / 2);
	sodium_bin2base64(secret, sizeof(secret), sec, sizeof(sec),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	hash_secret(s, domain, secret, hash);
	n = snprintf(token, token_len, "%s%s_%s", prefix, id, secret);
	sodium_memzero(sec, sizeof(sec));
	sodium_memzero(secret, sizeof(secret));
	if (n < 0 || (size_t)n >= token_len) {
		sodium_memzero(token, token_len);
		return KW_ERR_INVALID;
	}
	return 0;
}

bool
kw_bearer_split(const char *token, const char *prefix, size_t id_hex_len, char *id,
    const char **ret_secret)
{
	size_t n = strlen(prefix);

	if (strncmp(token, prefix, n) != 0 || strlen(token) < n + id_hex_len + 2 ||
	    token[n + id_hex_len] != '_' ||
	    strspn(token + n, "0123456789abcdef") != id_hex_len)
		return false;
	memcpy(id, token + n, id_hex_len);
	id[id_hex_len] = '\0';
	*ret_secret = token + n + id_hex_len + 1;
	return true;
}

bool
kw_bearer_matches(const struct kw_secrets *s, const char *domain, const char *secret,
    const unsigned char *stored, size_t stored_len)
{
	unsigned char hash[KW_BEARER_HASH_LEN];
	bool match;

	hash_secret(s, domain, secret, hash);
	match = stored_len == KW_BEARER_HASH_LEN &&
	    sodium_memcmp(stored, hash, KW_BEARER_HASH_LEN) == 0;
	sodium_memzero(hash, sizeof(hash));
	return match;
}
