/*
 * totp.c - TOTP and recovery codes (see totp.h).
 */
#include <ctype.h>
#include <liboath/oath.h>
#include <stdio.h>
#include <string.h>

#include "client/keywarden.h"
#include "broker/login/totp.h"

#define B32 "abcdefghijklmnopqrstuvwxyz234567"

int
kw_totp_init(void)
{
	return oath_init() == OATH_OK ? 0 : KW_ERR_INTERNAL;
}

static void
uid_ad(uid_t uid, unsigned char ad[16])
{
	memset(ad, 0, 16);
	snprintf((char *)ad, 16, "totp:%u", (unsigned)uid);
}

int
kw_totp_seal(const struct kw_secrets *s, uid_t uid, const unsigned char *seed,
    unsigned char **ret_blob, size_t *ret_len)
{
	size_t len = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + KW_TOTP_SEED_LEN +
	    crypto_aead_xchacha20poly1305_ietf_ABYTES;
	unsigned char *blob = malloc(len), ad[16];
	unsigned long long clen;

	if (!blob)
		return KW_ERR_NOMEM;
	uid_ad(uid, ad);
	randombytes_buf(blob, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(blob + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
	    &clen, seed, KW_TOTP_SEED_LEN, ad, sizeof(ad), NULL, blob, s->totp_key);
	*ret_blob = blob;
	*ret_len = len;
	return 0;
}

int
kw_totp_open(const struct kw_secrets *s, uid_t uid, const unsigned char *blob, size_t len,
    unsigned char *seed)
{
	const size_t npub = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
	unsigned long long mlen;
	unsigned char ad[16];

	if (len != npub + KW_TOTP_SEED_LEN + crypto_aead_xchacha20poly1305_ietf_ABYTES)
		return KW_ERR_IO;
	uid_ad(uid, ad);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(seed, &mlen, NULL, blob + npub, len - npub,
	    ad, sizeof(ad), blob, s->totp_key) != 0 || mlen != KW_TOTP_SEED_LEN) {
		sodium_memzero(seed, KW_TOTP_SEED_LEN);
		return KW_ERR_IO;
	}
	return 0;
}

static bool
six_digits(const char *code)
{
	for (int i = 0; i < KW_TOTP_DIGITS; i++)
		if (!isdigit((unsigned char)code[i]))
			return false;
	return code[KW_TOTP_DIGITS] == '\0';
}

int
kw_totp_verify(const unsigned char *seed, time_t now, unsigned window, long long last_step,
    const char *code, long long *ret_step)
{
	uint64_t counter = 0;
	int pos = 0, r;

	if (!six_digits(code))
		return KW_ERR_DENIED;
	r = oath_totp_validate3((const char *)seed, KW_TOTP_SEED_LEN, now, KW_TOTP_PERIOD, 0,
	    window, &pos, &counter, code);
	if (r < 0)
		return KW_ERR_DENIED;
	/* The replay rule: each step's code is good once, and never after a later one. */
	if ((long long)counter <= last_step)
		return KW_ERR_DENIED;
	*ret_step = (long long)counter;
	return 0;
}

char *
kw_totp_base32(const unsigned char *seed)
{
	char *out = NULL;
	size_t len = 0;

	if (oath_base32_encode((const char *)seed, KW_TOTP_SEED_LEN, &out, &len) != OATH_OK)
		return NULL;
	return out;
}

char *
kw_totp_uri(const char *user, const char *base32)
{
	char *uri = NULL;

	/* User names are checked to [A-Za-z0-9._-], which need no escaping in a URI. */
	if (asprintf(&uri, "otpauth://totp/keywarden:%s?secret=%s&issuer=keywarden"
	    "&algorithm=SHA1&digits=%d&period=%d", user, base32, KW_TOTP_DIGITS,
	    KW_TOTP_PERIOD) < 0)
		return NULL;
	return uri;
}

bool
kw_recovery_code_shape(const char *text)
{
	if (strlen(text) != KW_RECOVERY_LEN || text[5] != '-')
		return false;
	for (int i = 0; i < KW_RECOVERY_LEN; i++)
		if (i != 5 && !strchr(B32, tolower((unsigned char)text[i])))
			return false;
	return true;
}

void
kw_recovery_code_new(char *out)
{
	for (int i = 0; i < KW_RECOVERY_LEN; i++)
		out[i] = i == 5 ? '-' : B32[randombytes_uniform(32)];
	out[KW_RECOVERY_LEN] = '\0';
}

void
kw_recovery_hash(const struct kw_secrets *s, const char *code,
    unsigned char out[KW_RECOVERY_HASH_LEN])
{
	char lower[64] = "";
	size_t n = strlen(code);

	/*
	 * The whole text is hashed, so a longer one never matches a code it starts
	 * with; past 63 characters it cannot be a code, whatever it hashes to.
	 */
	if (n >= sizeof(lower))
		n = sizeof(lower) - 1;
	for (size_t i = 0; i < n; i++)
		lower[i] = (char)tolower((unsigned char)code[i]);
	crypto_generichash(out, KW_RECOVERY_HASH_LEN, (const unsigned char *)lower,
	    strlen(lower), s->recovery_key, sizeof(s->recovery_key));
	sodium_memzero(lower, sizeof(lower));
}
