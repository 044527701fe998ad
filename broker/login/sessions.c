/*
 * sessions.c - session tokens (see sessions.h).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "common/clock.h"
#include "client/keywarden.h"
#include "broker/login/sessions.h"

#define SECRET_BYTES 32
#define HASH_LEN crypto_generichash_BYTES
#define PREFIX "kw1_"

static void
secret_hash(const struct kw_secrets *s, const char *secret, unsigned char out[HASH_LEN])
{
	crypto_generichash(out, HASH_LEN, (const unsigned char *)secret, strlen(secret),
	    s->session_key, sizeof(s->session_key));
}

int
kw_session_create(struct kw_state *state, const struct kw_secrets *s, uid_t uid, long long now,
    long long lifetime, long long max_sessions, struct kw_session *ret_session,
    char token[KW_TOKEN_MAX], json_t **ret_evicted)
{
	unsigned char idb[KW_SESSION_ID_LEN / 2], sec[SECRET_BYTES], hash[HASH_LEN];
	char secret[sodium_base64_ENCODED_LEN(SECRET_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
	struct kw_session ses = { .uid = uid, .created = now, .last_used = now,
	    .expires = lifetime > 0 ? now + lifetime : -1 };
	json_t *evicted = json_array();
	int r;

	if (!evicted)
		return KW_ERR_NOMEM;
	randombytes_buf(idb, sizeof(idb));
	randombytes_buf(sec, sizeof(sec));
	sodium_bin2hex(ses.id, sizeof(ses.id), idb, sizeof(idb));
	sodium_bin2base64(secret, sizeof(secret), sec, sizeof(sec),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	secret_hash(s, secret, hash);
	snprintf(token, KW_TOKEN_MAX, PREFIX "%s_%s", ses.id, secret);
	sodium_memzero(sec, sizeof(sec));
	sodium_memzero(secret, sizeof(secret));
	r = kw_session_insert(state, &ses, hash, HASH_LEN);
	if (r == 0)
		r = kw_session_evict(state, uid, max_sessions, evicted);
	if (r < 0) {
		sodium_memzero(token, KW_TOKEN_MAX);
		json_decref(evicted);
		return r;
	}
	*ret_session = ses;
	*ret_evicted = evicted;
	return 0;
}

/* Split "kw1_ID_SECRET"; false when the shape is wrong. */
static bool
split(const char *token, char id[KW_SESSION_ID_LEN + 1], const char **ret_secret)
{
	size_t n = strlen(PREFIX);

	if (strncmp(token, PREFIX, n) != 0 || strlen(token) < n + KW_SESSION_ID_LEN + 2 ||
	    token[n + KW_SESSION_ID_LEN] != '_')
		return false;
	for (size_t i = 0; i < KW_SESSION_ID_LEN; i++)
		if (!strchr("0123456789abcdef", token[n + i]))
			return false;
	memcpy(id, token + n, KW_SESSION_ID_LEN);
	id[KW_SESSION_ID_LEN] = '\0';
	*ret_secret = token + n + KW_SESSION_ID_LEN + 1;
	return true;
}

int
kw_session_check(struct kw_state *state, const struct kw_secrets *s, const char *token, uid_t uid,
    long long now, long long idle, struct kw_session *ret_session, char *why, size_t why_len)
{
	unsigned char hash[HASH_LEN], stored[KW_SESSION_HASH_MAX];
	struct kw_session ses = { 0 };
	const char *secret;
	char id[KW_SESSION_ID_LEN + 1];
	size_t stored_len = 0;
	bool match = false;
	int r;

	if (!split(token, id, &secret)) {
		snprintf(why, why_len, "malformed session token");
		return KW_ERR_SESSION;
	}
	r = kw_session_find(state, id, &ses, stored, &stored_len);
	if (r < 0 && r != KW_ERR_NOT_FOUND)
		return r;
	if (r == 0) {
		secret_hash(s, secret, hash);
		match = stored_len == HASH_LEN && sodium_memcmp(stored, hash, HASH_LEN) == 0;
	}
	snprintf(ses.id, sizeof(ses.id), "%s", id);
	if (!match) {
		snprintf(why, why_len, "session %s is not valid (revoked, or never issued); "
		    "run keywarden login", ses.id);
		return KW_ERR_SESSION;
	}
	if (ses.uid != uid) {
		snprintf(why, why_len, "session %s belongs to another user", ses.id);
		return KW_ERR_DENIED;
	}
	if ((ses.expires >= 0 && now >= ses.expires) || now - ses.last_used >= idle) {
		snprintf(why, why_len, "session %s %s; run keywarden login", ses.id,
		    ses.expires >= 0 && now >= ses.expires ? "expired" : "ended after being idle");
		/* Gone for good: a failed delete only leaves a row nothing can use. */
		if (kw_session_revoke(state, ses.id) < 0)
			return KW_ERR_IO;
		return KW_ERR_SESSION;
	}
	/* Marked used once a second at most: within the second the row already says
	   so, and a request that changes nothing else then writes nothing. */
	if (ses.last_used != now && (r = kw_session_touch(state, ses.id, now)) < 0)
		return r;
	ses.last_used = now;
	*ret_session = ses;
	return 0;
}

