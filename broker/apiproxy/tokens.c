/*
 * tokens.c - the API proxy's tokens (see tokens.h).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "broker/apiproxy/tokens.h"
#include "broker/login/bearer.h"
#include "common/errors.h"

/* The prefix is the hash's domain too: a session's secret never passes for one of these. */
#define DOMAIN KW_PROXY_TOKEN_PREFIX

int
kw_proxy_token_make(struct kw_state *st, const struct kw_secrets *s,
    const struct kw_session *ses, const char *key, long long now, char token[KW_TOKEN_MAX])
{
	unsigned char hash[KW_BEARER_HASH_LEN];
	struct kw_proxy_token t = { .uid = ses->uid, .created = now };
	int r;

	snprintf(t.session, sizeof(t.session), "%s", ses->id);
	snprintf(t.key, sizeof(t.key), "%s", key);
	if ((r = kw_bearer_mint(s, KW_PROXY_TOKEN_PREFIX, DOMAIN, KW_PROXY_TOKEN_ID_LEN, t.id,
	    token, KW_TOKEN_MAX, hash)) < 0)
		return r;
	/* Tokens of sessions that ended go as new ones come. */
	if ((r = kw_proxy_token_purge(st)) == 0)
		r = kw_proxy_token_insert(st, &t, hash, sizeof(hash));
	if (r < 0)
		sodium_memzero(token, KW_TOKEN_MAX);
	return r;
}

int
kw_proxy_token_check(struct kw_state *st, const struct kw_secrets *s, const char *token,
    struct kw_proxy_token *ret_token, char *why, size_t why_len)
{
	unsigned char stored[KW_SESSION_HASH_MAX];
	size_t stored_len = 0;
	struct kw_proxy_token t;
	char id[KW_PROXY_TOKEN_ID_LEN + 1];
	const char *secret;
	bool match;
	int r;

	if (!kw_bearer_split(token, KW_PROXY_TOKEN_PREFIX, KW_PROXY_TOKEN_ID_LEN, id, &secret)) {
		snprintf(why, why_len, "keywarden: this is not a keywarden proxy token; "
		    "start Claude Code with keywarden exec --proxy");
		return KW_ERR_EXPIRED;
	}
	r = kw_proxy_token_find(st, id, &t, stored, &stored_len);
	if (r < 0 && r != KW_ERR_NOT_FOUND)
		return r;
	match = r == 0 && kw_bearer_matches(s, DOMAIN, secret, stored, stored_len);
	if (!match) {
		snprintf(why, why_len, "keywarden: proxy token %s is not valid (its session ended, "
		    "or it was never issued); run keywarden login", id);
		return KW_ERR_EXPIRED;
	}
	*ret_token = t;
	return 0;
}
