/*
 * proxy_tokens.c - the proxy_tokens table (see proxy_tokens.h).
 */
#include <stdio.h>
#include <string.h>

#include "broker/store/proxy_tokens.h"
#include "broker/store/state_sqlite.h"
#include "common/errors.h"

int
kw_proxy_token_insert(struct kw_state *st, const struct kw_proxy_token *t,
    const unsigned char *hash, size_t hash_len)
{
	return kw_sql_exec(st->db, NULL, "INSERT INTO proxy_tokens (id, session, uid, key, "
	    "secret_hash, created) VALUES (?, ?, ?, ?, ?, ?)", "ttitbi", t->id, t->session,
	    (long long)t->uid, t->key, hash, hash_len, t->created);
}

int
kw_proxy_token_find(struct kw_state *st, const char *id, struct kw_proxy_token *ret_token,
    unsigned char hash[KW_SESSION_HASH_MAX], size_t *ret_hash_len)
{
	struct kw_proxy_token t = { 0 };
	sqlite3_stmt *q = NULL;
	int r, rc, n;

	if ((r = kw_sql_prepare(st->db, &q, "SELECT session, uid, key, secret_hash, created "
	    "FROM proxy_tokens WHERE id = ?", "t", id)) < 0)
		return r;
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		snprintf(t.id, sizeof(t.id), "%s", id);
		snprintf(t.session, sizeof(t.session), "%s", (const char *)sqlite3_column_text(q, 0));
		t.uid = (uid_t)sqlite3_column_int64(q, 1);
		snprintf(t.key, sizeof(t.key), "%s", (const char *)sqlite3_column_text(q, 2));
		t.created = sqlite3_column_int64(q, 4);
		n = sqlite3_column_bytes(q, 3);
		if (n < 0 || n > KW_SESSION_HASH_MAX)
			n = 0;
		if (n > 0)
			memcpy(hash, sqlite3_column_blob(q, 3), (size_t)n);
		*ret_hash_len = (size_t)n;
		*ret_token = t;
	}
	kw_sql_done(q);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? KW_ERR_NOT_FOUND : KW_ERR_IO;
}

int
kw_proxy_token_purge(struct kw_state *st)
{
	return kw_sql_exec(st->db, NULL, "DELETE FROM proxy_tokens WHERE session NOT IN "
	    "(SELECT id FROM sessions)", "");
}
