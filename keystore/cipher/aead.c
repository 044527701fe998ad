/*
 * aead.c - AES-256-GCM (see aead.h).
 */
#include <openssl/evp.h>
#include <sodium.h>

#include "keystore/cipher/aead.h"
#include "common/errors.h"

int
kw_gcm_seal(const unsigned char key[KW_GCM_KEY_LEN], const unsigned char *ad, size_t ad_len,
    const unsigned char *in, size_t len, unsigned char *out)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	unsigned char *iv = out, *ct = out + KW_GCM_IV_LEN;
	int n = 0, fin = 0, ok;

	if (!ctx)
		return KW_ERR_INTERNAL;
	randombytes_buf(iv, KW_GCM_IV_LEN);
	ok = EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, iv) == 1 &&
	    (ad_len == 0 || EVP_EncryptUpdate(ctx, NULL, &n, ad, (int)ad_len) == 1) &&
	    (len == 0 || EVP_EncryptUpdate(ctx, ct, &n, in, (int)len) == 1) &&
	    EVP_EncryptFinal_ex(ctx, ct + n, &fin) == 1 &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, KW_GCM_TAG_LEN, ct + len) == 1;
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : KW_ERR_INTERNAL;
}

int
kw_gcm_open(const unsigned char key[KW_GCM_KEY_LEN], const unsigned char *ad, size_t ad_len,
    const unsigned char *in, size_t in_len, unsigned char *out)
{
	EVP_CIPHER_CTX *ctx;
	size_t len;
	int n = 0, fin = 0, ok;

	if (in_len < KW_GCM_IV_LEN + KW_GCM_TAG_LEN)
		return KW_ERR_IO;
	len = in_len - KW_GCM_IV_LEN - KW_GCM_TAG_LEN;
	if (!(ctx = EVP_CIPHER_CTX_new()))
		return KW_ERR_INTERNAL;
	ok = EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, in) == 1 &&
	    (ad_len == 0 || EVP_DecryptUpdate(ctx, NULL, &n, ad, (int)ad_len) == 1) &&
	    (len == 0 || EVP_DecryptUpdate(ctx, out, &n, in + KW_GCM_IV_LEN, (int)len) == 1) &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, KW_GCM_TAG_LEN,
	    (void *)(in + KW_GCM_IV_LEN + len)) == 1 &&
	    EVP_DecryptFinal_ex(ctx, out + n, &fin) == 1;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok) {
		/* No partial plaintext survives a failed check. */
		sodium_memzero(out, len);
		return KW_ERR_IO;
	}
	return 0;
}
