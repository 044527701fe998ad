/*
 * sessions.c - session tokens (see sessions.h).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "client/keywarden.h"
#include "broker/login/sessions.h"
#include "broker/store/sql.h"

#define SECRET_BYTES 32
#define HASH_LEN crypto_generichash_BYTES
#define PREFIX "kw1_"

static void
secret_hash(const struct kw_secrets *s, const char *secret, unsigned char out[HASH_LEN])
{
	crypto_generichash(out, HASH_LEN, (const unsigned char *)secret, strlen(secret),
	    s->session_key, sizeof(s->session_key));
}

/* Remove the oldest sessions of uid beyond max, collecting their ids. */
static int
evict(sqlite3 *db, uid_t uid, long long max, json_t *evicted)
{
	sqlite3_stmt *st = NULL;
	json_t *ids = NULL, *id;
	size_t i;
	int r;

	if ((r = kw_sql_prepare(db, &st, "SELECT id FROM sessions WHERE uid = ? "
	    "ORDER BY created DESC, rowid DESC LIMIT -1 OFFSET ?", "ii", (long long)uid, max)) < 0)
		return r;
	r = kw_sql_column_strings(st, &ids);
	sqlite3_finalize(st);
	if (r < 0)
		return r;
	json_array_foreach(ids, i, id) {
		if ((r = kw_session_revoke(db, json_string_value(id))) < 0)
			break;
		json_array_append(evicted, id);
	}
	json_decref(ids);
	return r < 0 ? r : 0;
}

int
kw_session_create(sqlite3 *db, const struct kw_secrets *s, uid_t uid, long long now,
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
	r = kw_sql_exec(db, NULL, "INSERT INTO sessions (id, uid, secret_hash, created, last_used, "
	    "expires) VALUES (?, ?, ?, ?, ?, NULLIF(?, -1))", "tibiii", ses.id, (long long)uid,
	    hash, (size_t)HASH_LEN, now, now, ses.expires);
	if (r == 0)
		r = evict(db, uid, max_sessions, evicted);
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
kw_session_check(sqlite3 *db, const struct kw_secrets *s, const char *token, uid_t uid,
    long long now, long long idle, struct kw_session *ret_session, char *why, size_t why_len)
{
	unsigned char hash[HASH_LEN];
	struct kw_session ses = { 0 };
	sqlite3_stmt *st = NULL;
	const char *secret;
	bool match = false;
	int r, rc;

	if (!split(token, ses.id, &secret)) {
		snprintf(why, why_len, "malformed session token");
		return KW_ERR_SESSION;
	}
	if ((r = kw_sql_prepare(db, &st, "SELECT uid, secret_hash, created, last_used, "
	    "IFNULL(expires, -1) FROM sessions WHERE id = ?", "t", ses.id)) < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		ses.uid = (uid_t)sqlite3_column_int64(st, 0);
		ses.created = sqlite3_column_int64(st, 2);
		ses.last_used = sqlite3_column_int64(st, 3);
		ses.expires = sqlite3_column_int64(st, 4);
		secret_hash(s, secret, hash);
		match = sqlite3_column_bytes(st, 1) == HASH_LEN &&
		    sodium_memcmp(sqlite3_column_blob(st, 1), hash, HASH_LEN) == 0;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return KW_ERR_IO;
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
		if (kw_session_revoke(db, ses.id) < 0)
			return KW_ERR_IO;
		return KW_ERR_SESSION;
	}
	ses.last_used = now;
	if ((r = kw_sql_exec(db, NULL, "UPDATE sessions SET last_used = ? WHERE id = ?", "it",
	    now, ses.id)) < 0)
		return r;
	*ret_session = ses;
	return 0;
}

int
kw_session_purge(sqlite3 *db, long long now, long long idle, int *ret_n)
{
	return kw_sql_exec(db, ret_n, "DELETE FROM sessions WHERE last_used <= ? OR "
	    "(expires IS NOT NULL AND expires <= ?)", "ii", now - idle, now);
}

int
kw_session_revoke(sqlite3 *db, const char *id)
{
	int r, n = 0;

	if ((r = kw_sql_exec(db, &n, "DELETE FROM sessions WHERE id = ?", "t", id)) < 0)
		return r;
	return n == 0 ? KW_ERR_NOT_FOUND : 0;
}

int
kw_session_revoke_uid(sqlite3 *db, long long uid, int *ret_n)
{
	return uid < 0 ? kw_sql_exec(db, ret_n, "DELETE FROM sessions", "") :
	    kw_sql_exec(db, ret_n, "DELETE FROM sessions WHERE uid = ?", "i", uid);
}

int
kw_session_list(sqlite3 *db, long long uid, long long idle, json_t **ret_array)
{
	sqlite3_stmt *st = NULL;
	json_t *a = json_array();
	char c[32], l[32], e[32], ie[32];
	int r, rc;

	if (!a)
		return KW_ERR_NOMEM;
	r = uid < 0 ? kw_sql_prepare(db, &st, "SELECT s.id, u.name, s.created, s.last_used, "
	    "IFNULL(s.expires, -1) FROM sessions s JOIN users u USING (uid) ORDER BY s.created", "") :
	    kw_sql_prepare(db, &st, "SELECT s.id, u.name, s.created, s.last_used, "
	    "IFNULL(s.expires, -1) FROM sessions s JOIN users u USING (uid) WHERE s.uid = ? "
	    "ORDER BY s.created", "i", uid);
	if (r < 0) {
		json_decref(a);
		return r;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		long long exp = sqlite3_column_int64(st, 4);
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:o, s:s}",
		    "id", (const char *)sqlite3_column_text(st, 0),
		    "user", (const char *)sqlite3_column_text(st, 1),
		    "created", kw_time_text(sqlite3_column_int64(st, 2), c),
		    "last_used", kw_time_text(sqlite3_column_int64(st, 3), l),
		    "expires", exp < 0 ? json_null() : json_string(kw_time_text(exp, e)),
		    "idle_expires", kw_time_text(sqlite3_column_int64(st, 3) + idle, ie)));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		json_decref(a);
		return KW_ERR_IO;
	}
	*ret_array = a;
	return 0;
}
