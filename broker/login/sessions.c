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
#include "broker/login/bearer.h"
#include "broker/login/sessions.h"

#define PREFIX "kw1_"
/* A session's secret is hashed as is (no domain): the rows stored so far say so. */
#define DOMAIN ""

int
kw_session_create(struct kw_state *state, const struct kw_secrets *s, uid_t uid, long long now,
    long long lifetime, long long max_sessions, struct kw_session *ret_session,
    char token[KW_TOKEN_MAX], json_t **ret_evicted)
{
	unsigned char hash[KW_BEARER_HASH_LEN];
	struct kw_session ses = { .uid = uid, .created = now, .last_used = now,
	    .expires = lifetime > 0 ? now + lifetime : -1 };
	json_t *evicted = json_array();
	int r;

	if (!evicted)
		return KW_ERR_NOMEM;
	r = kw_bearer_mint(s, PREFIX, DOMAIN, KW_SESSION_ID_LEN, ses.id, token, KW_TOKEN_MAX,
	    hash);
	if (r == 0)
		r = kw_session_insert(state, &ses, hash, sizeof(hash));
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

int
kw_session_check(struct kw_state *state, const struct kw_secrets *s, const char *token, uid_t uid,
    long long now, long long idle, struct kw_session *ret_session, char *why, size_t why_len)
{
	unsigned char stored[KW_SESSION_HASH_MAX];
	struct kw_session ses = { 0 };
	const char *secret;
	char id[KW_SESSION_ID_LEN + 1];
	size_t stored_len = 0;
	bool match = false;
	int r;

	if (!kw_bearer_split(token, PREFIX, KW_SESSION_ID_LEN, id, &secret)) {
		snprintf(why, why_len, "malformed session token");
		return KW_ERR_SESSION;
	}
	r = kw_session_find(state, id, &ses, stored, &stored_len);
	if (r < 0 && r != KW_ERR_NOT_FOUND)
		return r;
	if (r == 0)
		match = kw_bearer_matches(s, DOMAIN, secret, stored, stored_len);
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

