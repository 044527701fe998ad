/*
 * mfa.c - enrollment and code checks (see mfa.h).
 */
#include <string.h>

#include "client/keywarden.h"
#include "broker/login/mfa.h"
#include "broker/store/sql.h"
#include "broker/login/totp.h"

static int
store_recovery(sqlite3 *db, const struct kw_secrets *s, uid_t uid, json_t *codes)
{
	unsigned char hash[KW_RECOVERY_HASH_LEN];
	char code[KW_RECOVERY_LEN + 1];
	int r;

	if ((r = kw_sql_exec(db, NULL, "DELETE FROM recovery_codes WHERE uid = ?", "i",
	    (long long)uid)) < 0)
		return r;
	for (int i = 0; i < KW_RECOVERY_CODES; i++) {
		kw_recovery_code_new(code);
		kw_recovery_hash(s, code, hash);
		r = kw_sql_exec(db, NULL, "INSERT INTO recovery_codes (uid, hash) VALUES (?, ?)", "ib",
		    (long long)uid, hash, sizeof(hash));
		/* Two equal codes out of 2^50 would collide on the key: draw again. */
		if (r == KW_ERR_INVALID) {
			i--;
			continue;
		}
		if (r < 0 || json_array_append_new(codes, json_string(code)) < 0)
			return r < 0 ? r : KW_ERR_NOMEM;
	}
	sodium_memzero(code, sizeof(code));
	return 0;
}

int
kw_mfa_enroll(sqlite3 *db, const struct kw_secrets *s, uid_t uid, const char *user,
    json_t **ret_obj)
{
	unsigned char *seed = sodium_malloc(KW_TOTP_SEED_LEN), *blob = NULL;
	char *b32 = NULL, *uri = NULL;
	json_t *codes = json_array();
	size_t blen;
	int r = KW_ERR_NOMEM;

	if (!seed || !codes)
		goto out;
	randombytes_buf(seed, KW_TOTP_SEED_LEN);
	if ((r = kw_totp_seal(s, uid, seed, &blob, &blen)) < 0)
		goto out;
	r = kw_sql_exec(db, NULL, "INSERT OR REPLACE INTO totp (uid, seed, last_step, enrolled) "
	    "VALUES (?, ?, -1, strftime('%s', 'now'))", "ib", (long long)uid, blob, blen);
	if (r < 0 || (r = store_recovery(db, s, uid, codes)) < 0)
		goto out;
	r = KW_ERR_NOMEM;
	if (!(b32 = kw_totp_base32(seed)) || !(uri = kw_totp_uri(user, b32)))
		goto out;
	*ret_obj = json_pack("{s:s, s:s, s:s, s:O}", "user", user, "otpauth_uri", uri,
	    "secret", b32, "recovery_codes", codes);
	r = *ret_obj ? 0 : KW_ERR_NOMEM;
 out:
	sodium_free(seed);
	free(blob);
	if (b32) {
		sodium_memzero(b32, strlen(b32));
		free(b32);
	}
	if (uri) {
		sodium_memzero(uri, strlen(uri));
		free(uri);
	}
	json_decref(codes);
	return r;
}

static int
check_recovery(sqlite3 *db, const struct kw_secrets *s, uid_t uid, const char *code, long long now)
{
	unsigned char hash[KW_RECOVERY_HASH_LEN];
	int r, n = 0;

	kw_recovery_hash(s, code, hash);
	/* Looked up by keyed hash: the comparison never touches the code itself. */
	r = kw_sql_exec(db, &n, "UPDATE recovery_codes SET used = ? WHERE uid = ? AND hash = ? "
	    "AND used IS NULL", "iib", now, (long long)uid, hash, sizeof(hash));
	if (r < 0)
		return r;
	return n == 1 ? 0 : KW_ERR_DENIED;
}

static int
check_totp(sqlite3 *db, const struct kw_secrets *s, uid_t uid, const char *code, long long now,
    unsigned window)
{
	unsigned char *seed = sodium_malloc(KW_TOTP_SEED_LEN);
	sqlite3_stmt *st = NULL;
	long long last = -1, step = -1;
	int r, rc;

	if (!seed)
		return KW_ERR_NOMEM;
	if ((r = kw_sql_prepare(db, &st, "SELECT seed, last_step FROM totp WHERE uid = ?", "i",
	    (long long)uid)) < 0)
		goto out;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = rc == SQLITE_DONE ? KW_ERR_NOT_FOUND : KW_ERR_IO;
		goto out;
	}
	last = sqlite3_column_int64(st, 1);
	if ((r = kw_totp_open(s, uid, sqlite3_column_blob(st, 0),
	    (size_t)sqlite3_column_bytes(st, 0), seed)) < 0)
		goto out;
	if ((r = kw_totp_verify(seed, (time_t)now, window, last, code, &step)) < 0)
		goto out;
	r = kw_sql_exec(db, NULL, "UPDATE totp SET last_step = ? WHERE uid = ?", "ii", step,
	    (long long)uid);
 out:
	sqlite3_finalize(st);
	sodium_free(seed);
	return r;
}

static int
enrolled(sqlite3 *db, uid_t uid)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = kw_sql_prepare(db, &st, "SELECT 1 FROM totp WHERE uid = ?", "i",
	    (long long)uid)) < 0)
		return r;
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? KW_ERR_NOT_FOUND : KW_ERR_IO;
}

int
kw_mfa_check(sqlite3 *db, const struct kw_secrets *s, uid_t uid, const char *code,
    long long now, unsigned window, const char **ret_method)
{
	int r;

	/* No factor, no guess: whatever the code looks like, it counts as no failure. */
	*ret_method = "none";
	if ((r = enrolled(db, uid)) < 0)
		return r;
	if (kw_recovery_code_shape(code)) {
		*ret_method = "recovery";
		return check_recovery(db, s, uid, code, now);
	}
	*ret_method = "totp";
	return check_totp(db, s, uid, code, now, window);
}

json_t *
kw_mfa_status_json(sqlite3 *db, uid_t uid)
{
	sqlite3_stmt *st = NULL;
	long long enrolled = -1, left = 0;

	if (kw_sql_prepare(db, &st, "SELECT enrolled FROM totp WHERE uid = ?", "i",
	    (long long)uid) == 0 && sqlite3_step(st) == SQLITE_ROW)
		enrolled = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if (kw_sql_prepare(db, &st, "SELECT count(*) FROM recovery_codes WHERE uid = ? AND "
	    "used IS NULL", "i", (long long)uid) == 0 && sqlite3_step(st) == SQLITE_ROW)
		left = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return json_pack("{s:b, s:o, s:I}", "enrolled", enrolled >= 0,
	    "enrolled_at", enrolled >= 0 ? json_integer(enrolled) : json_null(),
	    "recovery_codes_left", (json_int_t)left);
}
