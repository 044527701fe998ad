/*
 * aead.h - AES-256-GCM through OpenSSL EVP, the cipher of the file backend
 * and of the local provider.  One call seals, one opens; a failed tag check
 * is an error, never output.
 */
#ifndef KW_AEAD_H
#define KW_AEAD_H

#include <stddef.h>

#include "common/macros.h"

#define KW_GCM_IV_LEN	12
#define KW_GCM_TAG_LEN	16
#define KW_GCM_KEY_LEN	32

/*
 * out must hold KW_GCM_IV_LEN + len + KW_GCM_TAG_LEN bytes: a fresh random
 * IV, the ciphertext and the tag.  ad (may be NULL with ad_len 0) is
 * authenticated, not stored.  0 or KW_ERR_INTERNAL.
 */
int kw_gcm_seal(const unsigned char key[KW_GCM_KEY_LEN], const unsigned char *ad, size_t ad_len,
    const unsigned char *in, size_t len, unsigned char *out) KW_WUR KW_NONNULL(1, 6);

/*
 * Open what kw_gcm_seal made (in_len bytes) into out (in_len - IV - TAG
 * bytes).  0, or KW_ERR_IO when anything was changed or the key is wrong.
 */
int kw_gcm_open(const unsigned char key[KW_GCM_KEY_LEN], const unsigned char *ad, size_t ad_len,
    const unsigned char *in, size_t in_len, unsigned char *out) KW_WUR KW_NONNULL(1, 4, 6);

#endif
