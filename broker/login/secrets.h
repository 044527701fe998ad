/*
 * secrets.h - the broker's own key material: a 32-byte master key in
 * dataDir/master.key (0600, made at first start) and the subkeys derived
 * from it for each purpose.  Held in sodium_malloc memory, wiped at exit.
 */
#ifndef KW_SECRETS_H
#define KW_SECRETS_H

#include <sodium.h>
#include <stdbool.h>

#include "common/macros.h"

struct kw_secrets {
	unsigned char totp_key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];	/* seals TOTP seeds */
	unsigned char recovery_key[crypto_generichash_KEYBYTES];	/* hashes recovery codes */
	unsigned char session_key[crypto_generichash_KEYBYTES];	/* hashes session tokens */
	unsigned char audit_seed[crypto_sign_SEEDBYTES];	/* Ed25519 seed: signs the audit trail */
};

/*
 * Load dir/master.key and derive the subkeys.  When the file is absent it is
 * made with fresh random bytes -- unless must_exist, which the broker sets
 * once anything sealed under the key is stored: a new key would silently
 * make all of it unreadable.  A key file of the wrong size, or readable by
 * group or others, is refused.  *ret_secrets is sodium_malloc'd; free it
 * with kw_secrets_free.  0 or KW_ERR_IO with the reason in err.
 */
int kw_secrets_open(const char *dir, bool must_exist, struct kw_secrets **ret_secrets,
    char *err, size_t err_len) KW_WUR KW_NONNULL(1, 3, 4);

/* Wipe and free.  Accepts NULL. */
void kw_secrets_free(struct kw_secrets *s);

#endif
