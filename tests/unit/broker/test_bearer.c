/*
 * test_bearer.c - the broker's bearer tokens: a minted token splits back
 * into its id and secret and matches its hash under its own domain only;
 * the hashes are the ones stored before the helper existed (a session's is
 * BLAKE2b of the secret alone, keyed); malformed shapes are refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "broker/login/bearer.h"
#include "common/errors.h"

static struct kw_secrets secrets;

static void
test_mint_split_match(void **state)
{
	unsigned char hash[KW_BEARER_HASH_LEN], legacy[KW_BEARER_HASH_LEN];
	char id[33], back[33], token[128];
	const char *secret;

	(void)state;
	randombytes_buf(secrets.session_key, sizeof(secrets.session_key));
	assert_int_equal(kw_bearer_mint(&secrets, "kw1_", "", 32, id, token, sizeof(token),
	    hash), 0);
	assert_int_equal(strlen(id), 32);
	assert_int_equal(strncmp(token, "kw1_", 4), 0);
	assert_true(kw_bearer_split(token, "kw1_", 32, back, &secret));
	assert_string_equal(back, id);
	assert_true(kw_bearer_matches(&secrets, "", secret, hash, sizeof(hash)));
	/* Another domain, a changed secret, a short stored hash: no. */
	assert_false(kw_bearer_matches(&secrets, "kwp1_", secret, hash, sizeof(hash)));
	assert_false(kw_bearer_matches(&secrets, "", "x", hash, sizeof(hash)));
	assert_false(kw_bearer_matches(&secrets, "", secret, hash, sizeof(hash) - 1));
	/* A session's hash as stored before: keyed BLAKE2b of the secret alone. */
	crypto_generichash(legacy, sizeof(legacy), (const unsigned char *)secret, strlen(secret),
	    secrets.session_key, sizeof(secrets.session_key));
	assert_memory_equal(legacy, hash, sizeof(hash));
	/* Two tokens never share an id or a secret. */
	char token2[128], id2[33];
	assert_int_equal(kw_bearer_mint(&secrets, "kw1_", "", 32, id2, token2, sizeof(token2),
	    hash), 0);
	assert_string_not_equal(id, id2);
	assert_string_not_equal(token, token2);
}

static void
test_proxy_domain(void **state)
{
	unsigned char hash[KW_BEARER_HASH_LEN], legacy[KW_BEARER_HASH_LEN];
	crypto_generichash_state h;
	char id[33], token[128];
	const char *secret;

	(void)state;
	randombytes_buf(secrets.session_key, sizeof(secrets.session_key));
	assert_int_equal(kw_bearer_mint(&secrets, "kwp1_", "kwp1_", 32, id, token,
	    sizeof(token), hash), 0);
	assert_true(kw_bearer_split(token, "kwp1_", 32, id, &secret));
	assert_true(kw_bearer_matches(&secrets, "kwp1_", secret, hash, sizeof(hash)));
	assert_false(kw_bearer_matches(&secrets, "", secret, hash, sizeof(hash)));
	/* As the proxy's tokens were stored: the prefix, then the secret. */
	crypto_generichash_init(&h, secrets.session_key, sizeof(secrets.session_key),
	    sizeof(legacy));
	crypto_generichash_update(&h, (const unsigned char *)"kwp1_", 5);
	crypto_generichash_update(&h, (const unsigned char *)secret, strlen(secret));
	crypto_generichash_final(&h, legacy, sizeof(legacy));
	assert_memory_equal(legacy, hash, sizeof(hash));
}

static void
test_shapes_refused(void **state)
{
	static const char *const bad[] = {
		"", "kw1_", "kw2_0123456789abcdef0123456789abcdef_s",
		"kw1_0123456789abcdef0123456789abcde_s",	/* id one short */
		"kw1_0123456789abcdef0123456789abcdeF_s",	/* upper case */
		"kw1_0123456789abcdef0123456789abcdef",		/* no secret */
		"kw1_0123456789abcdef0123456789abcdef_",	/* empty secret */
		"kw1_0123456789abcdef0123456789abcdefXs",	/* no separator */
	};
	unsigned char hash[KW_BEARER_HASH_LEN];
	char id[33], token[40];
	const char *secret;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(kw_bearer_split(bad[i], "kw1_", 32, id, &secret));
	assert_true(kw_bearer_split("kw1_0123456789abcdef0123456789abcdef_s", "kw1_", 32, id,
	    &secret));
	assert_string_equal(secret, "s");
	/* No room for the whole token: refused, and nothing of it is left. */
	assert_int_equal(kw_bearer_mint(&secrets, "kw1_", "", 32, id, token, sizeof(token),
	    hash), KW_ERR_INVALID);
	for (size_t i = 0; i < sizeof(token); i++)
		assert_int_equal(token[i], 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mint_split_match),
		cmocka_unit_test(test_proxy_domain),
		cmocka_unit_test(test_shapes_refused),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
