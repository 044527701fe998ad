/*
 * mfa.c - enrollment and code checks (see mfa.h).
 */
#include <stdlib.h>
#include <string.h>

#include "broker/store/factors.h"
#include "client/keywarden.h"
#include "broker/login/mfa.h"
#include "broker/login/totp.h"

static int
store_recovery(struct kw_state *st, const struct kw_secrets *s, uid_t uid, json_t *codes)
{
	unsigned char hash[KW_RECOVERY_HASH_LEN];
	char code[KW_RECOVERY_LEN + 1];
	int r;

	if ((r = kw_factor_recovery_clear(st, uid)) < 0)
		return r;
	for (int i = 0; i < KW_RECOVERY_CODES; i++) {
		kw_recovery_code_new(code);
		kw_recovery_hash(s, code, hash);
		r = kw_factor_recovery_add(st, uid, hash, sizeof(hash));
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
kw_mfa_enroll(struct kw_state *st, const struct kw_secrets *s, uid_t uid, const char *user,
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
	r = kw_factor_totp_put(st, uid, blob, blen);
	if (r < 0 || (r = store_recovery(st, s, uid, codes)) < 0)
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
check_recovery(struct kw_state *st, const struct kw_secrets *s, uid_t uid, const char *code,
    long long now)
{
	unsigned char hash[KW_RECOVERY_HASH_LEN];

	kw_recovery_hash(s, code, hash);
	return kw_factor_recovery_use(st, uid, hash, sizeof(hash), now);
}

static int
check_totp(struct kw_state *st, const struct kw_secrets *s, uid_t uid, const char *code,
    long long now, unsigned window)
{
	unsigned char *seed = sodium_malloc(KW_TOTP_SEED_LEN), *sealed = NULL;
	long long last = -1, step = -1;
	size_t len = 0;
	int r;

	if (!seed)
		return KW_ERR_NOMEM;
	if ((r = kw_factor_totp_get(st, uid, &sealed, &len, &last)) < 0 ||
	    (r = kw_totp_open(s, uid, sealed, len, seed)) < 0 ||
	    (r = kw_totp_verify(seed, (time_t)now, window, last, code, &step)) < 0)
		goto out;
	r = kw_factor_totp_used(st, uid, step);
 out:
	free(sealed);
	sodium_free(seed);
	return r;
}

int
kw_mfa_check(struct kw_state *st, const struct kw_secrets *s, uid_t uid, const char *code,
    long long now, unsigned window, const char **ret_method)
{
	long long enrolled_at, left;
	int r;

	/* No factor, no guess: whatever the code looks like, it counts as no failure. */
	*ret_method = "none";
	if ((r = kw_factor_status(st, uid, &enrolled_at, &left)) < 0)
		return r;
	if (enrolled_at < 0)
		return KW_ERR_NOT_FOUND;
	if (kw_recovery_code_shape(code)) {
		*ret_method = "recovery";
		return check_recovery(st, s, uid, code, now);
	}
	*ret_method = "totp";
	return check_totp(st, s, uid, code, now, window);
}

json_t *
kw_mfa_status_json(struct kw_state *st, uid_t uid)
{
	long long enrolled = -1, left = 0;

	/* A store that cannot say reads as not enrolled: this is a report, not a check. */
	if (kw_factor_status(st, uid, &enrolled, &left) < 0)
		enrolled = -1;
	return json_pack("{s:b, s:o, s:I}", "enrolled", enrolled >= 0,
	    "enrolled_at", enrolled >= 0 ? json_integer(enrolled) : json_null(),
	    "recovery_codes_left", (json_int_t)left);
}
