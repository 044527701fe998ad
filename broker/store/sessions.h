/*
 * sessions.h - sessions as the state store keeps them: an id, the uid, a
 * keyed hash of the token's secret (never the secret) and three times.
 * Making tokens and checking them is broker/login/sessions.c.
 */
#ifndef KW_STORE_SESSIONS_H
#define KW_STORE_SESSIONS_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/macros.h"

struct kw_state;

#define KW_SESSION_ID_LEN	32
#define KW_SESSION_HASH_MAX	64

struct kw_session {
	char id[KW_SESSION_ID_LEN + 1];
	uid_t uid;
	long long created, last_used, expires;	/* expires < 0: no absolute limit */
};

/* Store a new session with the hash of its secret.  0, KW_ERR_INVALID (id taken), KW_ERR_IO. */
int kw_session_insert(struct kw_state *st, const struct kw_session *ses,
    const unsigned char *hash, size_t hash_len) KW_WUR KW_NONNULL(1, 2, 3);

/*
 * The session named id into *ret_session, and its stored hash into
 * hash[KW_SESSION_HASH_MAX] with *ret_hash_len.  0, KW_ERR_NOT_FOUND or
 * KW_ERR_IO.
 */
int kw_session_find(struct kw_state *st, const char *id, struct kw_session *ret_session,
    unsigned char hash[KW_SESSION_HASH_MAX], size_t *ret_hash_len) KW_WUR KW_NONNULL(1, 2, 3, 4, 5);

/* Mark session id used at now.  0 or KW_ERR_IO. */
int kw_session_touch(struct kw_state *st, const char *id, long long now) KW_WUR KW_NONNULL(1, 2);

/* Remove uid's oldest sessions beyond the newest max, appending their ids to
   evicted (borrowed array).  0 or KW_ERR_IO. */
int kw_session_evict(struct kw_state *st, uid_t uid, long long max, json_t *evicted)
	KW_WUR KW_NONNULL(1, 4);

/* Remove sessions idle since now - idle or past their expiry.  *ret_n (may be NULL) counts them. */
int kw_session_purge(struct kw_state *st, long long now, long long idle, int *ret_n) KW_WUR KW_NONNULL(1);

/* How many sessions of uid are live at now: used within idle seconds and not
   past their expiry (what kw_session_purge would keep).  0 or KW_ERR_IO. */
int kw_session_count(struct kw_state *st, uid_t uid, long long now, long long idle,
    long long *ret_n) KW_WUR KW_NONNULL(1, 5);
/* Revoke one session.  0, KW_ERR_NOT_FOUND or KW_ERR_IO. */
int kw_session_revoke(struct kw_state *st, const char *id) KW_WUR KW_NONNULL(1, 2);

/* Revoke every session of uid (uid < 0: of everyone); *ret_n (may be NULL) counts them. */
int kw_session_revoke_uid(struct kw_state *st, long long uid, int *ret_n) KW_WUR KW_NONNULL(1);

/*
 * Sessions of uid (uid < 0: all) as an array of {"id", "user", "created",
 * "last_used", "expires", "idle_expires"} (times as RFC 3339 text; idle is
 * security.session.timeout).  0, KW_ERR_NOMEM or KW_ERR_IO.
 */
int kw_session_list(struct kw_state *st, long long uid, long long idle, json_t **ret_array)
	KW_WUR KW_NONNULL(1, 4);

#endif
