/*
 * test_totp.c - TOTP codes, sealed seeds, recovery codes (broker/totp.h)
 * under the broker secret's subkeys (broker/login/secrets.h, tested in
 * test_secrets.c).
 *
 * Expected codes come from liboath's own generator (oath_totp_generate), and
 * the RFC 6238 SHA1 vectors pin that generator down first: the 6-digit code
 * is the last six digits of the RFC's 8-digit one.  Keys live in private
 * directories (support/fixture.h) removed with what they hold.
 */
#include <fcntl.h>
#include <liboath/oath.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "client/keywarden.h"
#include "broker/login/secrets.h"
#include "broker/login/totp.h"
#include "tests/unit/support/fixture.h"

/* RFC 6238 appendix B: the SHA1 seed is the ASCII text "12345678901234567890". */
static const unsigned char rfc_seed[KW_TOTP_SEED_LEN] = "12345678901234567890";

static struct kw_test_fx *fx;	/* the group's directory and broker secret (secrets()) */

static struct kw_secrets *
open_secrets(const char *dir)
{
	struct kw_secrets *s = NULL;
	char err[512] = "";

	if (kw_secrets_open(kw_test_defaults(), dir, false, &s, err, sizeof(err)) != 0)
		fail_msg("kw_secrets_open(%s): %s", dir, err);
	assert_non_null(s);
	return s;
}

static int
setup(void **state)
{
	if (sodium_init() < 0 || kw_totp_init() != 0 || kw_test_fx_new("totp", &fx) != 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	int r = kw_test_fx_free(fx);

	fx = NULL;
	oath_done();
	return r == 0 ? 0 : -1;
}

static struct kw_secrets *
secrets(void)
{
	if (!fx->secrets)
		assert_int_equal(kw_test_fx_secrets(fx), 0);
	return fx->secrets;
}

/* liboath's code for seed at t. */
static void
gen(const unsigned char *seed, time_t t, unsigned digits, char out[16])
{
	assert_int_equal(oath_totp_generate((const char *)seed, KW_TOTP_SEED_LEN, t,
	    KW_TOTP_PERIOD, 0, digits, out), OATH_OK);
}

/* ---- codes -------------------------------------------------------------- */

static const struct {
	time_t t;
	const char *eight, *six;
} vectors[] = {
	{ 59, "94287082", "287082" },
	{ 1111111109, "07081804", "081804" },
	{ 1234567890, "89005924", "005924" },
	{ 2000000000, "69279037", "279037" },
};

static void
test_rfc6238_vectors_through_liboath(void **state)
{
	char code[16];

	for (size_t i = 0; i < KW_ELEMENTSOF(vectors); i++) {
		gen(rfc_seed, vectors[i].t, 8, code);
		assert_string_equal(code, vectors[i].eight);
		gen(rfc_seed, vectors[i].t, 6, code);
		assert_string_equal(code, vectors[i].six);
		assert_string_equal(code, vectors[i].eight + 2);
	}
}

static void
test_verify_accepts_rfc_codes_at_their_time(void **state)
{
	for (size_t i = 0; i < KW_ELEMENTSOF(vectors); i++) {
		long long step = -7;

		assert_int_equal(kw_totp_verify(rfc_seed, vectors[i].t, 0, -1, vectors[i].six,
		    &step), 0);
		assert_int_equal(step, (long long)(vectors[i].t / 30));
	}
}

static void
test_verify_refuses_rfc_codes_at_another_time_with_window_0(void **state)
{
	long long step = -7;

	/* One step later and one step earlier; window 0 looks at the current step only. */
	assert_int_equal(kw_totp_verify(rfc_seed, 1111111109 + 30, 0, -1, "081804", &step),
	    KW_ERR_DENIED);
	assert_int_equal(kw_totp_verify(rfc_seed, 1111111109 - 30, 0, -1, "081804", &step),
	    KW_ERR_DENIED);
	assert_int_equal(step, -7);
}

static void
test_window_edges(void **state)
{
	const long long s = 40000000;	/* a step in 2008 */
	char code[16];
	long long step;

	gen(rfc_seed, (time_t)(s * 30), 6, code);
	for (unsigned w = 0; w <= 3; w++) {
		/* The last second of step s+w and the first of step s-w still accept it. */
		step = -1;
		assert_int_equal(kw_totp_verify(rfc_seed, (time_t)((s + w) * 30 + 29), w, -1, code,
		    &step), 0);
		assert_int_equal(step, s);
		step = -1;
		assert_int_equal(kw_totp_verify(rfc_seed, (time_t)((s - w) * 30), w, -1, code,
		    &step), 0);
		assert_int_equal(step, s);
		/* s ± window*30 seconds from the start of step s. */
		assert_int_equal(kw_totp_verify(rfc_seed, (time_t)(s * 30 + w * 30), w, -1, code,
		    &step), 0);
		assert_int_equal(kw_totp_verify(rfc_seed, (time_t)(s * 30 - w * 30), w, -1, code,
		    &step), 0);
		/* One second beyond either edge refuses it. */
		assert_int_equal(kw_totp_verify(rfc_seed, (time_t)((s + w + 1) * 30), w, -1, code,
		    &step), KW_ERR_DENIED);
		assert_int_equal(kw_totp_verify(rfc_seed, (time_t)((s - w) * 30 - 1), w, -1, code,
		    &step), KW_ERR_DENIED);
	}
	/* The largest window the configuration allows (10). */
	assert_int_equal(kw_totp_verify(rfc_seed, (time_t)((s + 10) * 30), 10, -1, code, &step), 0);
	assert_int_equal(kw_totp_verify(rfc_seed, (time_t)((s + 11) * 30), 10, -1, code, &step),
	    KW_ERR_DENIED);
}

static void
test_replay_is_refused(void **state)
{
	const long long s = 40000000;
	char code[16], prev[16];
	long long step = -1;

	gen(rfc_seed, (time_t)(s * 30), 6, code);
	gen(rfc_seed, (time_t)((s - 1) * 30), 6, prev);
	assert_string_not_equal(code, prev);
	/* The code was accepted before: last_step = s. */
	assert_int_equal(kw_totp_verify(rfc_seed, (time_t)(s * 30 + 5), 1, s, code, &step),
	    KW_ERR_DENIED);
	/* A later step accepted already: an older code is no good either. */
	assert_int_equal(kw_totp_verify(rfc_seed, (time_t)(s * 30 + 5), 1, s + 1, code, &step),
	    KW_ERR_DENIED);
	/* The step before was the last accepted one: this one is fresh. */
	assert_int_equal(kw_totp_verify(rfc_seed, (time_t)(s * 30 + 5), 1, s - 1, code, &step), 0);
	assert_int_equal(step, s);
	/* ... and the previous step's code, still inside the window, is refused after it. */
	assert_int_equal(kw_totp_verify(rfc_seed, (time_t)(s * 30 + 5), 1, s, prev, &step),
	    KW_ERR_DENIED);
	assert_int_equal(kw_totp_verify(rfc_seed, (time_t)(s * 30 + 5), 1, s - 2, prev, &step), 0);
	assert_int_equal(step, s - 1);
}

static void
test_malformed_codes_are_refused(void **state)
{
	const time_t t = 1111111109;	/* the right code is 081804 */
	const char *bad[] = {
		"", "08180", "0818040", "1081804", "08180a", "O81804", "abcdef", " 081804",
		"081804 ", "081 804", "081804\n", "+81804", "-81804", "08180\t", "８１８０４",
		"08180400",
	};
	long long step = -7;

	for (size_t i = 0; i < KW_ELEMENTSOF(bad); i++) {
		if (kw_totp_verify(rfc_seed, t, 1, -1, bad[i], &step) != KW_ERR_DENIED)
			fail_msg("code \"%s\" accepted", bad[i]);
	}
	assert_int_equal(step, -7);
	/* And the well-formed code itself still works. */
	assert_int_equal(kw_totp_verify(rfc_seed, t, 1, -1, "081804", &step), 0);
}

static void
test_wrong_code_is_refused(void **state)
{
	char code[16];
	long long step;

	gen(rfc_seed, 1111111109, 6, code);
	code[5] = code[5] == '9' ? '0' : (char)(code[5] + 1);
	assert_int_equal(kw_totp_verify(rfc_seed, 1111111109, 1, -1, code, &step), KW_ERR_DENIED);
}

/* ---- sealing ------------------------------------------------------------ */

static void
test_seal_open_round_trip(void **state)
{
	struct kw_secrets *s = secrets();
	unsigned char seed[KW_TOTP_SEED_LEN], out[KW_TOTP_SEED_LEN], *blob = NULL, *blob2 = NULL;
	size_t len = 0, len2 = 0;

	randombytes_buf(seed, sizeof(seed));
	assert_int_equal(kw_totp_seal(s, 2001, seed, &blob, &len), 0);
	assert_non_null(blob);
	assert_int_equal(len, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + KW_TOTP_SEED_LEN +
	    crypto_aead_xchacha20poly1305_ietf_ABYTES);
	/* The seed is not in the blob in the clear. */
	assert_null(memmem(blob, len, seed, sizeof(seed)));
	assert_int_equal(kw_totp_open(s, 2001, blob, len, out), 0);
	assert_memory_equal(out, seed, sizeof(seed));
	/* A fresh nonce each time: sealing again gives another blob. */
	assert_int_equal(kw_totp_seal(s, 2001, seed, &blob2, &len2), 0);
	assert_int_equal(len2, len);
	assert_memory_not_equal(blob, blob2, len);
	memset(out, 0, sizeof(out));
	assert_int_equal(kw_totp_open(s, 2001, blob2, len2, out), 0);
	assert_memory_equal(out, seed, sizeof(seed));
	free(blob);
	free(blob2);
}

static void
test_open_with_another_uid_fails(void **state)
{
	struct kw_secrets *s = secrets();
	unsigned char seed[KW_TOTP_SEED_LEN], out[KW_TOTP_SEED_LEN], *blob = NULL;
	size_t len = 0;

	randombytes_buf(seed, sizeof(seed));
	assert_int_equal(kw_totp_seal(s, 2001, seed, &blob, &len), 0);
	assert_int_equal(kw_totp_open(s, 2002, blob, len, out), KW_ERR_IO);
	assert_int_equal(kw_totp_open(s, 0, blob, len, out), KW_ERR_IO);
	assert_int_equal(kw_totp_open(s, 20010, blob, len, out), KW_ERR_IO);
	assert_int_equal(kw_totp_open(s, 200, blob, len, out), KW_ERR_IO);
	free(blob);
	/* The largest uid still fits the associated data and is told apart. */
	assert_int_equal(kw_totp_seal(s, 4294967294u, seed, &blob, &len), 0);
	assert_int_equal(kw_totp_open(s, 4294967294u, blob, len, out), 0);
	assert_memory_equal(out, seed, sizeof(seed));
	assert_int_equal(kw_totp_open(s, 4294967293u, blob, len, out), KW_ERR_IO);
	free(blob);
}

static void
test_open_with_another_broker_secret_fails(void **state)
{
	struct kw_secrets *s = secrets(), *other;
	unsigned char seed[KW_TOTP_SEED_LEN], out[KW_TOTP_SEED_LEN], *blob = NULL;
	struct kw_test_fx *t = NULL;
	size_t len = 0;

	assert_int_equal(kw_test_fx_new("totp", &t), 0);
	other = open_secrets(t->dir);
	randombytes_buf(seed, sizeof(seed));
	assert_int_equal(kw_totp_seal(s, 2001, seed, &blob, &len), 0);
	assert_int_equal(kw_totp_open(other, 2001, blob, len, out), KW_ERR_IO);
	free(blob);
	kw_secrets_free(other);
	assert_int_equal(kw_test_fx_free(t), 0);
}

static void
test_tampered_blob_fails(void **state)
{
	struct kw_secrets *s = secrets();
	unsigned char seed[KW_TOTP_SEED_LEN], out[KW_TOTP_SEED_LEN], *blob = NULL;
	size_t len = 0;

	randombytes_buf(seed, sizeof(seed));
	assert_int_equal(kw_totp_seal(s, 2001, seed, &blob, &len), 0);
	/* Every byte matters: nonce, ciphertext and tag. */
	for (size_t i = 0; i < len; i++) {
		blob[i] ^= 0x01;
		memset(out, 0xa5, sizeof(out));
		if (kw_totp_open(s, 2001, blob, len, out) != KW_ERR_IO)
			fail_msg("blob with byte %zu flipped opened", i);
		blob[i] ^= 0x01;
	}
	assert_int_equal(kw_totp_open(s, 2001, blob, len, out), 0);
	assert_memory_equal(out, seed, sizeof(seed));
	free(blob);
}

static void
test_wrong_length_fails(void **state)
{
	struct kw_secrets *s = secrets();
	unsigned char seed[KW_TOTP_SEED_LEN], out[KW_TOTP_SEED_LEN], *blob = NULL, *big;
	size_t len = 0;

	randombytes_buf(seed, sizeof(seed));
	assert_int_equal(kw_totp_seal(s, 2001, seed, &blob, &len), 0);
	assert_int_equal(kw_totp_open(s, 2001, blob, len - 1, out), KW_ERR_IO);
	assert_int_equal(kw_totp_open(s, 2001, blob, 0, out), KW_ERR_IO);
	assert_int_equal(kw_totp_open(s, 2001, blob, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
	    out), KW_ERR_IO);
	big = calloc(1, len + 1);
	assert_non_null(big);
	memcpy(big, blob, len);
	assert_int_equal(kw_totp_open(s, 2001, big, len + 1, out), KW_ERR_IO);
	free(big);
	free(blob);
}

/* ---- enrollment data ---------------------------------------------------- */

static void
test_base32_of_rfc_seed(void **state)
{
	char *b32 = kw_totp_base32(rfc_seed), *raw = NULL;
	size_t n = 0;

	assert_non_null(b32);
	assert_string_equal(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
	/* It decodes back to the seed (what an authenticator app does). */
	assert_int_equal(oath_base32_decode(b32, strlen(b32), &raw, &n), OATH_OK);
	assert_int_equal(n, KW_TOTP_SEED_LEN);
	assert_memory_equal(raw, rfc_seed, KW_TOTP_SEED_LEN);
	free(raw);
	free(b32);
}

static void
test_otpauth_uri_shape(void **state)
{
	char *uri = kw_totp_uri("alice", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");

	assert_non_null(uri);
	assert_string_equal(uri, "otpauth://totp/keywarden:alice?secret="
	    "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=keywarden&algorithm=SHA1&digits=6&period=30");
	free(uri);
	uri = kw_totp_uri("svc.deploy-1_x", "AAAA");
	assert_non_null(uri);
	assert_string_equal(uri, "otpauth://totp/keywarden:svc.deploy-1_x?secret=AAAA"
	    "&issuer=keywarden&algorithm=SHA1&digits=6&period=30");
	free(uri);
}

/* ---- recovery codes ----------------------------------------------------- */

static void
test_recovery_code_shape(void **state)
{
	const char *good[] = { "abcde-fghij", "klmno-pqrst", "uvwxy-z2345", "67aaa-bbbbb",
	    "ABCDE-FGHIJ", "aBcDe-FgHiJ" };
	const char *bad[] = { "", "abcde", "abcdefghij", "abcde-fghi", "abcde-fghijk",
	    "abcdef-ghij", "abcd-efghij", "abcde_fghij", "abcde fghij", "abcde-fghi1",
	    "abcde-fghi8", "abcde-fghi9", "0bcde-fghij", "abcde-fghi-", "-abcde-fghi",
	    "abcde--ghij", "123456", "abcde-fghij\n", " abcde-fghij", "abcde-fgh!j" };

	for (size_t i = 0; i < KW_ELEMENTSOF(good); i++)
		if (!kw_recovery_code_shape(good[i]))
			fail_msg("\"%s\" refused", good[i]);
	for (size_t i = 0; i < KW_ELEMENTSOF(bad); i++)
		if (kw_recovery_code_shape(bad[i]))
			fail_msg("\"%s\" accepted", bad[i]);
}

static int
cmp_code(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
test_new_recovery_codes_have_the_shape_and_differ(void **state)
{
	enum { N = 1000 };
	char (*codes)[KW_RECOVERY_LEN + 1] = calloc(N, sizeof(*codes));
	const char *alpha = "abcdefghijklmnopqrstuvwxyz234567";

	assert_non_null(codes);
	for (int i = 0; i < N; i++) {
		memset(codes[i], 'X', sizeof(codes[i]));
		kw_recovery_code_new(codes[i]);
		assert_int_equal(strlen(codes[i]), KW_RECOVERY_LEN);
		if (!kw_recovery_code_shape(codes[i]))
			fail_msg("new code \"%s\" has not the shape", codes[i]);
		/* Lowercase, as SPEC4 writes them. */
		for (int j = 0; j < KW_RECOVERY_LEN; j++)
			assert_true(j == 5 ? codes[i][j] == '-' : strchr(alpha, codes[i][j]) != NULL);
	}
	qsort(codes, N, sizeof(*codes), cmp_code);
	for (int i = 1; i < N; i++)
		if (strcmp(codes[i - 1], codes[i]) == 0)
			fail_msg("code \"%s\" drawn twice", codes[i]);
	free(codes);
}

static void
test_recovery_hash_is_case_insensitive_and_keyed(void **state)
{
	struct kw_secrets *s = secrets(), *other;
	unsigned char a[KW_RECOVERY_HASH_LEN], b[KW_RECOVERY_HASH_LEN], c[KW_RECOVERY_HASH_LEN],
	    d[KW_RECOVERY_HASH_LEN], plain[KW_RECOVERY_HASH_LEN];
	struct kw_test_fx *t = NULL;

	kw_recovery_hash(s, "abcde-fghij", a);
	kw_recovery_hash(s, "ABCDE-FGHIJ", b);
	assert_memory_equal(a, b, sizeof(a));
	kw_recovery_hash(s, "aBcDe-fGhIj", b);
	assert_memory_equal(a, b, sizeof(a));
	/* Deterministic under one key, different for another code. */
	kw_recovery_hash(s, "abcde-fghij", c);
	assert_memory_equal(a, c, sizeof(a));
	kw_recovery_hash(s, "abcde-fghik", c);
	assert_memory_not_equal(a, c, sizeof(a));
	/* Keyed: not the plain BLAKE2b of the code ... */
	crypto_generichash(plain, sizeof(plain), (const unsigned char *)"abcde-fghij", 11, NULL, 0);
	assert_memory_not_equal(a, plain, sizeof(a));
	/* ... and another broker secret gives another hash. */
	assert_int_equal(kw_test_fx_new("totp", &t), 0);
	other = open_secrets(t->dir);
	kw_recovery_hash(other, "abcde-fghij", d);
	assert_memory_not_equal(a, d, sizeof(a));
	kw_secrets_free(other);
	assert_int_equal(kw_test_fx_free(t), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc6238_vectors_through_liboath),
		cmocka_unit_test(test_verify_accepts_rfc_codes_at_their_time),
		cmocka_unit_test(test_verify_refuses_rfc_codes_at_another_time_with_window_0),
		cmocka_unit_test(test_window_edges),
		cmocka_unit_test(test_replay_is_refused),
		cmocka_unit_test(test_malformed_codes_are_refused),
		cmocka_unit_test(test_wrong_code_is_refused),
		cmocka_unit_test(test_seal_open_round_trip),
		cmocka_unit_test(test_open_with_another_uid_fails),
		cmocka_unit_test(test_open_with_another_broker_secret_fails),
		cmocka_unit_test(test_tampered_blob_fails),
		cmocka_unit_test(test_wrong_length_fails),
		cmocka_unit_test(test_base32_of_rfc_seed),
		cmocka_unit_test(test_otpauth_uri_shape),
		cmocka_unit_test(test_recovery_code_shape),
		cmocka_unit_test(test_new_recovery_codes_have_the_shape_and_differ),
		cmocka_unit_test(test_recovery_hash_is_case_insensitive_and_keyed),
	};

	return cmocka_run_group_tests_name("totp", tests, setup, teardown);
}
