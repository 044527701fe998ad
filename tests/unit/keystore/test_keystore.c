/*
 * test_keystore.c - AES-256-GCM (keystore/aead.h) and the file backend
 * (keystore/backend_file.c) reached the way the broker reaches it:
 * kw_keystore_open with api.keySource "file" and the local master-key
 * provider, in a fresh data directory per test (support/fixture.h).
 *
 * The backend's promises checked here (SPEC5): values round-trip up to
 * KW_KEY_VALUE_MAX; a sealed file is bound to its (name, version), so a
 * renamed or copied file does not open; any change to a file is an
 * integrity error (KW_ERR_IO), never garbage; destroy removes; the data key
 * survives a reopen and is useless under another master key; modes are
 * 0600/0700 and no file holds a value's bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "keystore/cipher/aead.h"
#include "common/config.h"
#include "keystore/keystore.h"
#include "client/keywarden.h"
#include "tests/unit/support/fixture.h"

#define CONFIG_JSON \
	"{\"api\": {\"keySource\": \"file\"}, " \
	"\"security\": {\"encryption\": {\"atRest\": {\"keySource\": \"local\"}}}}"

#define U(s) ((const unsigned char *)(s))

struct fx {
	struct kw_test_fx *t;		/* the data directory */
	char ks_dir[128];
	struct kw_config *cfg;
	struct kw_keystore *ks;
};

/* ---- helpers ----------------------------------------------------------- */

static void
path_of(struct fx *f, char *buf, size_t len, const char *name, int version)
{
	snprintf(buf, len, "%s/%s/v%d.sealed", f->ks_dir, name, version);
}

static void
put_ok(struct kw_keystore *ks, const char *name, int version, const void *value, size_t len)
{
	int r = ks->ops->put(ks, name, version, value, len);

	if (r != 0)
		fail_msg("put(%s, %d, %zu bytes) = %d", name, version, len, r);
}

/* get must succeed and return exactly value; the buffer ends in a NUL. */
static void
get_eq(struct kw_keystore *ks, const char *name, int version, const void *value, size_t len)
{
	unsigned char *got = NULL;
	size_t glen = 0;
	int r = ks->ops->get(ks, name, version, &got, &glen);

	if (r != 0)
		fail_msg("get(%s, %d) = %d", name, version, r);
	assert_non_null(got);
	assert_int_equal(glen, len);
	assert_memory_equal(got, value, len);
	assert_int_equal(got[glen], '\0');
	kw_keystore_free_value(got, glen);
}

/* get must fail with want and leave the out-parameters alone. */
static void
get_fails(struct kw_keystore *ks, const char *name, int version, int want)
{
	unsigned char *got = (unsigned char *)(uintptr_t)0x1;
	size_t glen = 4242;
	int r = ks->ops->get(ks, name, version, &got, &glen);

	if (r != want)
		fail_msg("get(%s, %d) = %d, want %d", name, version, r, want);
	assert_ptr_equal(got, (unsigned char *)(uintptr_t)0x1);
	assert_int_equal(glen, 4242);
}

static void
open_store(struct fx *f)
{
	char err[512] = "";
	int r = kw_keystore_open(f->cfg, f->t->dir, &f->ks, err, sizeof(err));

	if (r != 0)
		fail_msg("kw_keystore_open = %d: %s", r, err);
	assert_non_null(f->ks);
	assert_string_equal(f->ks->ops->name, "file");
}

static void
reopen_store(struct fx *f)
{
	kw_keystore_close(f->ks);
	f->ks = NULL;
	open_store(f);
}

/* ---- fixtures ----------------------------------------------------------- */

static int
group_setup(void **state)
{
	(void)state;
	return sodium_init() < 0 ? -1 : 0;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[512] = "";

	if (!f || kw_test_fx_new("keystore", &f->t) != 0 ||
	    kw_test_config(f->t, CONFIG_JSON, &f->cfg) != 0)
		return -1;
	snprintf(f->ks_dir, sizeof(f->ks_dir), "%s/keystore", f->t->dir);
	if (kw_keystore_open(f->cfg, f->t->dir, &f->ks, err, sizeof(err)) != 0) {
		fprintf(stderr, "setup: kw_keystore_open: %s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	int r;

	kw_keystore_close(f->ks);
	kw_config_free(f->cfg);
	r = kw_test_fx_free(f->t);
	free(f);
	return r == 0 ? 0 : -1;
}

/* ---- AES-256-GCM --------------------------------------------------------- */

static void
test_gcm_round_trip(void **state)
{
	static const size_t lens[] = { 0, 1, 15, 16, 17, 255, 4096, KW_KEY_VALUE_MAX };
	unsigned char key[KW_GCM_KEY_LEN], *in, *sealed, *out;
	const unsigned char ad[] = "anthropic\0" "1";

	(void)state;
	randombytes_buf(key, sizeof(key));
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t len = lens[i], slen = KW_GCM_IV_LEN + len + KW_GCM_TAG_LEN;
		in = malloc(len + 1);
		sealed = malloc(slen);
		out = malloc(len + 1);
		assert_true(in && sealed && out);
		randombytes_buf(in, len + 1);
		assert_int_equal(kw_gcm_seal(key, ad, sizeof(ad) - 1, in, len, sealed), 0);
		if (len >= 16)
			assert_true(memmem(sealed, slen, in, 16) == NULL);
		memset(out, 0xa5, len + 1);
		assert_int_equal(kw_gcm_open(key, ad, sizeof(ad) - 1, sealed, slen, out), 0);
		assert_memory_equal(out, in, len);
		/* Exactly len bytes written. */
		assert_int_equal(out[len], 0xa5);
		/* Without associated data too. */
		assert_int_equal(kw_gcm_seal(key, NULL, 0, in, len, sealed), 0);
		assert_int_equal(kw_gcm_open(key, NULL, 0, sealed, slen, out), 0);
		assert_memory_equal(out, in, len);
		free(in);
		free(sealed);
		free(out);
	}
}

static void
test_gcm_fresh_iv(void **state)
{
	unsigned char key[KW_GCM_KEY_LEN], a[KW_GCM_IV_LEN + 8 + KW_GCM_TAG_LEN],
	    b[sizeof(a)];

	(void)state;
	randombytes_buf(key, sizeof(key));
	assert_int_equal(kw_gcm_seal(key, NULL, 0, (const unsigned char *)"samedata", 8, a), 0);
	assert_int_equal(kw_gcm_seal(key, NULL, 0, (const unsigned char *)"samedata", 8, b), 0);
	/* A fresh IV each time: the same plaintext never seals the same way. */
	assert_memory_not_equal(a, b, KW_GCM_IV_LEN);
	assert_memory_not_equal(a + KW_GCM_IV_LEN, b + KW_GCM_IV_LEN, 8);
}

static bool
all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void
test_gcm_wrong_key_or_ad(void **state)
{
	enum { LEN = 100 };
	unsigned char key[KW_GCM_KEY_LEN], other[KW_GCM_KEY_LEN], in[LEN],
	    sealed[KW_GCM_IV_LEN + LEN + KW_GCM_TAG_LEN], out[LEN];
	const unsigned char ad[] = "anthropic\0" "1", ad2[] = "anthropic\0" "2";

	(void)state;
	randombytes_buf(key, sizeof(key));
	memcpy(other, key, sizeof(key));
	other[31] ^= 0x01;
	randombytes_buf(in, sizeof(in));
	assert_int_equal(kw_gcm_seal(key, ad, sizeof(ad) - 1, in, LEN, sealed), 0);

	memset(out, 0xa5, sizeof(out));
	assert_int_equal(kw_gcm_open(other, ad, sizeof(ad) - 1, sealed, sizeof(sealed), out),
	    KW_ERR_IO);
	assert_true(all_zero(out, LEN));

	memset(out, 0xa5, sizeof(out));
	assert_int_equal(kw_gcm_open(key, ad2, sizeof(ad2) - 1, sealed, sizeof(sealed), out),
	    KW_ERR_IO);
	assert_true(all_zero(out, LEN));

	memset(out, 0xa5, sizeof(out));
	assert_int_equal(kw_gcm_open(key, NULL, 0, sealed, sizeof(sealed), out), KW_ERR_IO);
	assert_true(all_zero(out, LEN));

	/* Shorter than IV + tag: refused, not read past. */
	assert_int_equal(kw_gcm_open(key, ad, sizeof(ad) - 1, sealed,
	    KW_GCM_IV_LEN + KW_GCM_TAG_LEN - 1, out), KW_ERR_IO);
	assert_int_equal(kw_gcm_open(key, ad, sizeof(ad) - 1, sealed, 0, out), KW_ERR_IO);
}

static void
test_gcm_tamper_every_byte(void **state)
{
	enum { LEN = 48 };
	unsigned char key[KW_GCM_KEY_LEN], in[LEN],
	    sealed[KW_GCM_IV_LEN + LEN + KW_GCM_TAG_LEN], bad[sizeof(sealed)], out[LEN];
	const unsigned char ad[] = "openai\0" "7";

	(void)state;
	randombytes_buf(key, sizeof(key));
	randombytes_buf(in, sizeof(in));
	assert_int_equal(kw_gcm_seal(key, ad, sizeof(ad) - 1, in, LEN, sealed), 0);
	for (size_t i = 0; i < sizeof(sealed); i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			memcpy(bad, sealed, sizeof(sealed));
			bad[i] ^= (unsigned char)(1u << bit);
			memset(out, 0xa5, sizeof(out));
			if (kw_gcm_open(key, ad, sizeof(ad) - 1, bad, sizeof(bad), out) != KW_ERR_IO)
				fail_msg("flipping bit %d of byte %zu was not detected", bit, i);
			if (!all_zero(out, LEN))
				fail_msg("flipping byte %zu left output behind", i);
		}
	}
	/* Truncated or extended: the tag moves, the check fails. */
	assert_int_equal(kw_gcm_open(key, ad, sizeof(ad) - 1, sealed, sizeof(sealed) - 1, out),
	    KW_ERR_IO);
	/* The original still opens. */
	assert_int_equal(kw_gcm_open(key, ad, sizeof(ad) - 1, sealed, sizeof(sealed), out), 0);
	assert_memory_equal(out, in, LEN);
}

/* ---- the file backend ---------------------------------------------------- */

static void
test_file_round_trip(void **state)
{
	struct fx *f = *state;
	const char *v1 = "sk-ant-api03-first-value-aaaaaaaaaaaaaaaaaaaa";
	const char *v2 = "sk-ant-api03-second-value-bbbbbbbbbbbbbbbbbbb";
	const char *o1 = "sk-openai-xyz";

	put_ok(f->ks, "anthropic", 1, v1, strlen(v1));
	put_ok(f->ks, "anthropic", 2, v2, strlen(v2));
	put_ok(f->ks, "openai", 1, o1, strlen(o1));
	get_eq(f->ks, "anthropic", 1, v1, strlen(v1));
	get_eq(f->ks, "anthropic", 2, v2, strlen(v2));
	get_eq(f->ks, "openai", 1, o1, strlen(o1));
	/* Names with every allowed character class. */
	put_ok(f->ks, "A.b_c-9", 3, "x", 1);
	get_eq(f->ks, "A.b_c-9", 3, "x", 1);
	/* A version written again (an uncommitted attempt) is replaced whole. */
	put_ok(f->ks, "openai", 1, "replaced", 8);
	get_eq(f->ks, "openai", 1, "replaced", 8);
}

static void
test_file_sizes(void **state)
{
	struct fx *f = *state;
	static const size_t lens[] = { 1, 2, 31, 32, 33, 1000, KW_KEY_VALUE_MAX - 1,
	    KW_KEY_VALUE_MAX };
	unsigned char *v = malloc(KW_KEY_VALUE_MAX + 1);

	assert_non_null(v);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		/* Any byte, NUL included: the backend stores bytes. */
		randombytes_buf(v, lens[i]);
		put_ok(f->ks, "sized", (int)i + 1, v, lens[i]);
		get_eq(f->ks, "sized", (int)i + 1, v, lens[i]);
	}
	/* Empty and oversized values are refused, and nothing is written. */
	assert_int_equal(f->ks->ops->put(f->ks, "big", 1, v, KW_KEY_VALUE_MAX + 1), KW_ERR_INVALID);
	assert_int_equal(f->ks->ops->put(f->ks, "big", 1, v, 0), KW_ERR_INVALID);
	get_fails(f->ks, "big", 1, KW_ERR_NOT_FOUND);
	free(v);
}

static void
test_file_bad_names_and_versions(void **state)
{
	struct fx *f = *state;
	static const char *bad[] = { "", "../x", "a/b", ".hidden", "-opt", "sp ace", "nul\x01",
	    "01234567890123456789012345678901234567890123456789012345678901234" /* 65 */ };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (f->ks->ops->put(f->ks, bad[i], 1, U("v"), 1) != KW_ERR_INVALID)
			fail_msg("put under name \"%s\" was not refused", bad[i]);
		get_fails(f->ks, bad[i], 1, KW_ERR_INVALID);
		assert_int_equal(f->ks->ops->destroy(f->ks, bad[i], 1), KW_ERR_INVALID);
	}
	assert_int_equal(f->ks->ops->put(f->ks, "ok", 0, U("v"), 1), KW_ERR_INVALID);
	assert_int_equal(f->ks->ops->put(f->ks, "ok", -1, U("v"), 1), KW_ERR_INVALID);
	get_fails(f->ks, "ok", 0, KW_ERR_INVALID);
	/* 64 characters is the longest name. */
	put_ok(f->ks, "0123456789012345678901234567890123456789012345678901234567890123", 1, "v", 1);
}

static void
test_file_missing(void **state)
{
	struct fx *f = *state;

	get_fails(f->ks, "anthropic", 1, KW_ERR_NOT_FOUND);
	put_ok(f->ks, "anthropic", 1, "value-one", 9);
	get_fails(f->ks, "anthropic", 2, KW_ERR_NOT_FOUND);
	get_fails(f->ks, "anthropic", 100, KW_ERR_NOT_FOUND);
	get_fails(f->ks, "other", 1, KW_ERR_NOT_FOUND);
	assert_int_equal(f->ks->ops->destroy(f->ks, "anthropic", 2), KW_ERR_NOT_FOUND);
	assert_int_equal(f->ks->ops->destroy(f->ks, "other", 1), KW_ERR_NOT_FOUND);
}

static void
test_file_bound_to_name_and_version(void **state)
{
	struct fx *f = *state;
	char p1[256], p2[256], p5[256], q[256], dir[256];
	unsigned char *data;
	size_t len;

	put_ok(f->ks, "anthropic", 1, "value-of-version-1", 18);
	put_ok(f->ks, "anthropic", 2, "value-of-version-2", 18);
	put_ok(f->ks, "openai", 1, "value-of-openai-1", 17);
	path_of(f, p1, sizeof(p1), "anthropic", 1);
	path_of(f, p2, sizeof(p2), "anthropic", 2);
	path_of(f, p5, sizeof(p5), "anthropic", 5);

	/* v1 renamed to v5: does not open as version 5. */
	data = kw_test_read(p1, &len);
	assert_int_equal(rename(p1, p5), 0);
	get_fails(f->ks, "anthropic", 5, KW_ERR_IO);
	get_fails(f->ks, "anthropic", 1, KW_ERR_NOT_FOUND);
	/* v1's bytes over v2: version 2 fails its check instead of giving v1's value. */
	kw_test_write(p2, data, len, 0600);
	get_fails(f->ks, "anthropic", 2, KW_ERR_IO);

	/* Copied under another key name (same version number): does not open. */
	snprintf(dir, sizeof(dir), "%s/stolen", f->ks_dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	path_of(f, q, sizeof(q), "stolen", 1);
	kw_test_write(q, data, len, 0600);
	get_fails(f->ks, "stolen", 1, KW_ERR_IO);
	/* Over another key's version 1. */
	path_of(f, q, sizeof(q), "openai", 1);
	kw_test_write(q, data, len, 0600);
	get_fails(f->ks, "openai", 1, KW_ERR_IO);
	/* Put back where it came from, it opens again. */
	kw_test_write(p1, data, len, 0600);
	get_eq(f->ks, "anthropic", 1, "value-of-version-1", 18);
	free(data);
}

static void
test_file_tamper_every_byte(void **state)
{
	struct fx *f = *state;
	const char *value = "sk-ant-api03-tamper-target-0123456789";
	unsigned char *orig, *bad;
	char p[256];
	size_t len;

	put_ok(f->ks, "anthropic", 3, value, strlen(value));
	path_of(f, p, sizeof(p), "anthropic", 3);
	orig = kw_test_read(p, &len);
	/* "KWK1" + IV + ciphertext + tag. */
	assert_int_equal(len, 4 + KW_GCM_IV_LEN + strlen(value) + KW_GCM_TAG_LEN);
	assert_memory_equal(orig, "KWK1", 4);
	bad = malloc(len + 1);
	assert_non_null(bad);
	for (size_t i = 0; i < len; i++) {
		memcpy(bad, orig, len);
		bad[i] ^= 0x01;
		kw_test_write(p, bad, len, 0600);
		get_fails(f->ks, "anthropic", 3, KW_ERR_IO);
		bad[i] ^= 0x81;
		kw_test_write(p, bad, len, 0600);
		get_fails(f->ks, "anthropic", 3, KW_ERR_IO);
	}
	/* Truncated anywhere, to nothing included. */
	for (size_t cut = 0; cut < len; cut += (cut < 40 ? 1 : 7)) {
		kw_test_write(p, orig, cut, 0600);
		get_fails(f->ks, "anthropic", 3, KW_ERR_IO);
	}
	/* A byte appended. */
	memcpy(bad, orig, len);
	bad[len] = 0;
	kw_test_write(p, bad, len + 1, 0600);
	get_fails(f->ks, "anthropic", 3, KW_ERR_IO);
	/* A file far larger than any sealed value. */
	{
		size_t big = 4 * KW_KEY_VALUE_MAX;
		unsigned char *z = calloc(1, big);
		assert_non_null(z);
		memcpy(z, orig, len);
		kw_test_write(p, z, big, 0600);
		get_fails(f->ks, "anthropic", 3, KW_ERR_IO);
		free(z);
	}
	/* The original bytes still open. */
	kw_test_write(p, orig, len, 0600);
	get_eq(f->ks, "anthropic", 3, value, strlen(value));
	free(orig);
	free(bad);
}

static void
test_file_destroy(void **state)
{
	struct fx *f = *state;
	char p1[256], p2[256], dir[256];
	struct stat st;

	put_ok(f->ks, "anthropic", 1, "one", 3);
	put_ok(f->ks, "anthropic", 2, "two", 3);
	path_of(f, p1, sizeof(p1), "anthropic", 1);
	path_of(f, p2, sizeof(p2), "anthropic", 2);
	snprintf(dir, sizeof(dir), "%s/anthropic", f->ks_dir);
	assert_int_equal(f->ks->ops->destroy(f->ks, "anthropic", 1), 0);
	assert_int_equal(stat(p1, &st), -1);
	assert_int_equal(errno, ENOENT);
	get_fails(f->ks, "anthropic", 1, KW_ERR_NOT_FOUND);
	get_eq(f->ks, "anthropic", 2, "two", 3);
	assert_int_equal(f->ks->ops->destroy(f->ks, "anthropic", 1), KW_ERR_NOT_FOUND);
	assert_int_equal(f->ks->ops->destroy(f->ks, "anthropic", 2), 0);
	get_fails(f->ks, "anthropic", 2, KW_ERR_NOT_FOUND);
	/* The key's directory goes with its last version. */
	assert_int_equal(stat(dir, &st), -1);
	/* And the name can be used again. */
	put_ok(f->ks, "anthropic", 3, "three", 5);
	get_eq(f->ks, "anthropic", 3, "three", 5);
}

static void
test_file_reopen_keeps_values(void **state)
{
	struct fx *f = *state;
	unsigned char *wrapped1, *wrapped2;
	size_t w1, w2;
	char p[256];

	put_ok(f->ks, "anthropic", 1, "persisted-value-1", 17);
	put_ok(f->ks, "openai", 4, "persisted-value-2", 17);
	snprintf(p, sizeof(p), "%s/datakey.wrapped", f->ks_dir);
	wrapped1 = kw_test_read(p, &w1);
	reopen_store(f);
	get_eq(f->ks, "anthropic", 1, "persisted-value-1", 17);
	get_eq(f->ks, "openai", 4, "persisted-value-2", 17);
	/* The data key was reused, not remade. */
	wrapped2 = kw_test_read(p, &w2);
	assert_int_equal(w1, w2);
	assert_memory_equal(wrapped1, wrapped2, w1);
	/* Two stores open on one directory see each other's values. */
	{
		struct kw_keystore *ks2 = NULL;
		char err[512] = "";
		assert_int_equal(kw_keystore_open(f->cfg, f->t->dir, &ks2, err, sizeof(err)), 0);
		put_ok(ks2, "shared", 1, "from-the-second", 15);
		get_eq(f->ks, "shared", 1, "from-the-second", 15);
		kw_keystore_close(ks2);
	}
	free(wrapped1);
	free(wrapped2);
}

static void
test_file_changed_master_key(void **state)
{
	struct fx *f = *state;
	unsigned char mk[32], *orig, *wrapped;
	char p[256], wp[256], err[512] = "";
	struct kw_keystore *ks = NULL;
	size_t len, wlen;
	int r;

	put_ok(f->ks, "anthropic", 1, "needs-the-right-master", 22);
	kw_keystore_close(f->ks);
	f->ks = NULL;
	snprintf(p, sizeof(p), "%s/provider.key", f->t->dir);
	orig = kw_test_read(p, &len);
	assert_int_equal(len, 32);

	/* Another 32-byte key: the data key does not unwrap. */
	randombytes_buf(mk, sizeof(mk));
	kw_test_write(p, mk, sizeof(mk), 0600);
	r = kw_keystore_open(f->cfg, f->t->dir, &ks, err, sizeof(err));
	assert_int_not_equal(r, 0);
	assert_null(ks);
	assert_true(err[0] != '\0');
	assert_non_null(strstr(err, "datakey.wrapped"));

	/* One bit changed. */
	memcpy(mk, orig, 32);
	mk[0] ^= 0x80;
	kw_test_write(p, mk, sizeof(mk), 0600);
	err[0] = '\0';
	assert_int_not_equal(kw_keystore_open(f->cfg, f->t->dir, &ks, err, sizeof(err)), 0);

	/* Wrong length, or readable by others: refused before use. */
	kw_test_write(p, orig, 31, 0600);
	err[0] = '\0';
	assert_int_not_equal(kw_keystore_open(f->cfg, f->t->dir, &ks, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "provider.key"));
	kw_test_write(p, orig, 32, 0644);
	err[0] = '\0';
	assert_int_not_equal(kw_keystore_open(f->cfg, f->t->dir, &ks, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "provider.key"));

	/* A tampered wrapped data key does not unwrap either. */
	kw_test_write(p, orig, 32, 0600);
	snprintf(wp, sizeof(wp), "%s/datakey.wrapped", f->ks_dir);
	wrapped = kw_test_read(wp, &wlen);
	wrapped[wlen - 1] ^= 0x01;
	kw_test_write(wp, wrapped, wlen, 0600);
	assert_int_not_equal(kw_keystore_open(f->cfg, f->t->dir, &ks, err, sizeof(err)), 0);
	wrapped[wlen - 1] ^= 0x01;
	kw_test_write(wp, wrapped, wlen, 0600);

	/* The original key opens the store and its values again. */
	open_store(f);
	get_eq(f->ks, "anthropic", 1, "needs-the-right-master", 22);
	free(orig);
	free(wrapped);
}

static void
test_file_first_open_makes_keys(void **state)
{
	struct fx *f = *state;
	char p[256];
	struct stat st;

	/* The local provider's key file is beside keystore/, not in it. */
	snprintf(p, sizeof(p), "%s/provider.key", f->t->dir);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 32);
	snprintf(p, sizeof(p), "%s/master.key", f->ks_dir);
	assert_int_equal(stat(p, &st), -1);
	snprintf(p, sizeof(p), "%s/datakey.wrapped", f->ks_dir);
	assert_int_equal(stat(p, &st), 0);
	/* "LOC1" + IV + wrapped 32-byte key + tag. */
	assert_int_equal(st.st_size, 4 + KW_GCM_IV_LEN + 32 + KW_GCM_TAG_LEN);
}

/*
 * keystore/master.key of earlier versions is moved to dataDir/provider.key,
 * the same bytes, and opens the store; a move cut short (both, the same
 * key) drops the old name; two different keys are refused.
 */
static void
test_file_old_key_file_is_moved(void **state)
{
	struct fx *f = *state;
	char oldp[256], newp[256], err[512] = "";
	struct kw_keystore *ks = NULL;
	unsigned char *key, *moved, other[32];
	size_t len;
	struct stat st;

	put_ok(f->ks, "anthropic", 1, "from-before-the-move", 20);
	kw_keystore_close(f->ks);
	f->ks = NULL;
	snprintf(oldp, sizeof(oldp), "%s/master.key", f->ks_dir);
	snprintf(newp, sizeof(newp), "%s/provider.key", f->t->dir);
	key = kw_test_read(newp, &len);
	assert_int_equal(rename(newp, oldp), 0);

	open_store(f);
	get_eq(f->ks, "anthropic", 1, "from-before-the-move", 20);
	assert_int_equal(stat(oldp, &st), -1);
	moved = kw_test_read(newp, &len);
	assert_int_equal(len, 32);
	assert_memory_equal(moved, key, 32);
	assert_int_equal(kw_test_mode(newp), 0600);
	free(moved);

	kw_keystore_close(f->ks);
	f->ks = NULL;
	kw_test_write(oldp, key, 32, 0600);
	open_store(f);
	assert_int_equal(stat(oldp, &st), -1);
	kw_keystore_close(f->ks);
	f->ks = NULL;

	randombytes_buf(other, sizeof(other));
	kw_test_write(oldp, other, 32, 0600);
	assert_int_equal(kw_keystore_open(f->cfg, f->t->dir, &ks, err, sizeof(err)),
	    KW_ERR_CONFIG);
	assert_null(ks);
	assert_non_null(strstr(err, "different keys"));
	assert_int_equal(stat(oldp, &st), 0);
	unlink(oldp);
	open_store(f);
	free(key);
}

/* ---- modes and plaintext on disk ----------------------------------------- */

static const unsigned char *scan_value;
static size_t scan_len;
static int scan_files, scan_dirs;
static char scan_bad[512];

static int
check_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	mode_t m = st->st_mode & 07777;

	(void)ftw;
	if (flag == FTW_D || flag == FTW_DP) {
		scan_dirs++;
		if (m != 0700 && !scan_bad[0])
			snprintf(scan_bad, sizeof(scan_bad), "directory %s is mode %o", path, m);
		return 0;
	}
	if (flag != FTW_F) {
		snprintf(scan_bad, sizeof(scan_bad), "%s is not a regular file", path);
		return 0;
	}
	scan_files++;
	if (m != 0600 && !scan_bad[0])
		snprintf(scan_bad, sizeof(scan_bad), "file %s is mode %o", path, m);
	{
		size_t len;
		unsigned char *data = kw_test_read(path, &len);
		if (memmem(data, len, scan_value, scan_len) && !scan_bad[0])
			snprintf(scan_bad, sizeof(scan_bad), "%s holds a value in plaintext", path);
		/* A 16-byte slice of the value is also too much. */
		if (scan_len > 32 && memmem(data, len, scan_value + 8, 16) && !scan_bad[0])
			snprintf(scan_bad, sizeof(scan_bad), "%s holds part of a value", path);
		free(data);
	}
	return 0;
}

static void
test_file_modes_and_no_plaintext(void **state)
{
	struct fx *f = *state;
	const char *values[] = {
		"sk-ant-api03-PLAINTEXT-CANARY-abcdefghijklmnopqrstuvwxyz012345",
		"second-PLAINTEXT-CANARY-value-0123456789-0123456789-0123456789",
	};
	unsigned char *big = malloc(KW_KEY_VALUE_MAX);

	assert_non_null(big);
	/* A permissive umask must not make the files readable by others. */
	mode_t old = umask(0);
	put_ok(f->ks, "anthropic", 1, values[0], strlen(values[0]));
	put_ok(f->ks, "anthropic", 2, values[1], strlen(values[1]));
	memset(big, 'Q', KW_KEY_VALUE_MAX);
	put_ok(f->ks, "big", 1, big, KW_KEY_VALUE_MAX);
	umask(old);
	for (size_t i = 0; i < 3; i++) {
		scan_value = i < 2 ? (const unsigned char *)values[i] : big;
		scan_len = i < 2 ? strlen(values[i]) : KW_KEY_VALUE_MAX;
		scan_files = scan_dirs = 0;
		scan_bad[0] = '\0';
		assert_int_equal(nftw(f->ks_dir, check_one, 16, FTW_PHYS), 0);
		if (scan_bad[0])
			fail_msg("%s", scan_bad);
		/*
		 * datakey.wrapped, 3 sealed files (no temporary file left behind;
		 * the provider's key file is outside); keystore/ and 2 key
		 * directories.
		 */
		assert_int_equal(scan_files, 4);
		assert_int_equal(scan_dirs, 3);
	}
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gcm_round_trip),
		cmocka_unit_test(test_gcm_fresh_iv),
		cmocka_unit_test(test_gcm_wrong_key_or_ad),
		cmocka_unit_test(test_gcm_tamper_every_byte),
		cmocka_unit_test_setup_teardown(test_file_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_bad_names_and_versions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_bound_to_name_and_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_tamper_every_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_destroy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_reopen_keeps_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_changed_master_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_old_key_file_is_moved, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_first_open_makes_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_modes_and_no_plaintext, setup, teardown),
	};

	return cmocka_run_group_tests_name("keystore", tests, group_setup, NULL);
}
