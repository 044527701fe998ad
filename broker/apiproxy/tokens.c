/*
 * tokens.c - the API proxy's tokens (see tokens.h).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "broker/apiproxy/tokens.h"
#include "common/errors.h"

#define SECRET_BYTES	32
#define HASH_LEN	crypto_generichash_BYTES

/* Keyed like session secrets, but over a different input: one never passes for the other. */
static void
secret_hash(const struct kw_secrets *s, const char *secret, unsigned char out[HASH_LEN])
{
	crypto_generichash_state h;

	crypto_generichash_init(&h, s->session_key, sizeof(s->session_key), HASH_LEN);
	crypto_generichash_update(&h, (const unsigned char *)KW_PROXY_TOKEN_PREFIX,
	    strlen(KW_PROXY_TOKEN_PREFIX));
	crypto_generichash_update(&h, (const unsigned char *)secret, strlen(secret));
	crypto_generichash_final(&h, out, HASH_LEN);
	sodium_memzero(&h, sizeof(h));
}

int
kw_proxy_token_make(struct kw_state *st, const struct kw_secrets *s,
    const struct kw_session *ses, const char *key, long long now, char token[KW_TOKEN_MAX])
{
	unsigned char idb[KW_PROXY_TOKEN_ID_LEN / 2], sec[SECRET_BYTES], hash[HASH_LEN];
	char secret[sodium_base64_ENCODED_LEN(SECRET_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
	struct kw_proxy_token t = { .uid = ses->uid, .created = now };
	int r;

	randombytes_buf(idb, sizeof(idb));
	randombytes_buf(sec, sizeof(sec));
	sodium_bin2hex(t.id, sizeof(t.id), idb, sizeof(idb));
	snprintf(t.session, sizeof(t.session), "%s", ses->id);
	snprintf(t.key, sizeof(t.key), "%s", key);
	sodium_bin2base64(secret, sizeof(secret), sec, sizeof(sec),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	secret_hash(s, secret, hash);
	snprintf(token, KW_TOKEN_MAX, KW_PROXY_TOKEN_PREFIX "%s_%s", t.id, secret);
	sodium_memzero(sec, sizeof(sec));
	sodium_memzero(secret, sizeof(secret));
	/* Tokens of sessions that ended go as new ones come. */
	if ((r = kw_proxy_token_purge(st)) == 0)
		r = kw_proxy_token_insert(st, &t, hash, HASH_LEN);
	if (r < 0)
		sodium_memzero(token, KW_TOKEN_MAX);
	return r;
}

int
kw_proxy_token_check(struct kw_state *st, const struct kw_secrets *s, const char *token,
    struct kw_proxy_token *ret_token, char *why, size_t why_len)
{
	unsigned char hash[HASH_LEN], stored[KW_SESSION_HASH_MAX];
	size_t n = strlen(KW_PROXY_TOKEN_PREFIX), stored_len = 0;
	struct kw_proxy_token t;
	char id[KW_PROXY_TOKEN_ID_LEN + 1];
	bool match;
	int r;

	if (strncmp(token, KW_PROXY_TOKEN_PREFIX, n) != 0 ||
	    strlen(token) < n + KW_PROXY_TOKEN_ID_LEN + 2 || token[n + KW_PROXY_TOKEN_ID_LEN] != '_' ||
	    strspn(token + n, "0123456789abcdef") != KW_PROXY_TOKEN_ID_LEN) {
		snprintf(why, why_len, "keywarden: this is not a keywarden proxy token; "
		    "start Claude Code with keywarden exec --proxy");
		return KW_ERR_EXPIRED;
	}
	memcpy(id, token + n, KW_PROXY_TOKEN_ID_LEN);
	id[KW_PROXY_TOKEN_ID_LEN] = '\0';
	r = kw_proxy_token_find(st, id, &t, stored, &stored_len);
	if (r < 0 && r != KW_ERR_NOT_FOUND)
		return r;
	match = false;
	if (r == 0) {
		secret_hash(s, token + n + KW_PROXY_TOKEN_ID_LEN + 1, hash);
		match = stored_len == HASH_LEN && sodium_memcmp(stored, hash, HASH_LEN) == 0;
	}
	if (!match) {
		snprintf(why, why_len, "keywarden: proxy token %s is not valid (its session ended, "
		    "or it was never issued); run keywarden login", id);
		return KW_ERR_EXPIRED;
	}
	*ret_token = t;
	return 0;
}
