/*
 * secrets.h - the broker's own key material: a 32-byte secret, kept on disk
 * only as dataDir/broker-secret.wrapped, wrapped by the keystore's
 * master-key provider (security.encryption.atRest.keySource: local,
 * passphrase, pkcs11 or aws-kms, whatever api.keySource says), and the
 * subkeys derived from it for each purpose.  Held in sodium_malloc memory,
 * wiped at exit.
 */
#ifndef KW_SECRETS_H
#define KW_SECRETS_H

#include <sodium.h>
#include <stdbool.h>

#include "common/config.h"
#include "common/macros.h"

/* The files in dataDir. */
#define KW_SECRETS_WRAPPED	"broker-secret.wrapped"	/* the provider's blob, 0600 */
#define KW_SECRETS_LEGACY	"master.key"	/* the plaintext secret of earlier versions */

struct kw_secrets {
	unsigned char totp_key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];	/* seals TOTP seeds */
	unsigned char recovery_key[crypto_generichash_KEYBYTES];	/* hashes recovery codes */
	unsigned char session_key[crypto_generichash_KEYBYTES];	/* hashes session tokens */
	unsigned char audit_seed[crypto_sign_SEEDBYTES];	/* Ed25519 seed: signs the audit trail */
};

/*
 * Open the configured provider (local keeps its key file in dir/provider.key),
 * unwrap dir/broker-secret.wrapped and derive the subkeys; the provider is
 * closed again before this returns.  When the wrapped file is absent:
 *
 *   - a dir/master.key of an earlier version (32 bytes, 0600) is wrapped
 *     with its bytes unchanged, so sealed seeds, recovery codes and session
 *     tokens stay valid: the wrapped file is checked and written durably
 *     first, then master.key is overwritten and removed;
 *   - else the provider makes a new secret -- unless must_exist, which the
 *     broker sets once anything sealed under the secret is stored: a new
 *     secret would silently make all of it unreadable.
 *
 * A master.key beside the wrapped file (a migration cut short) is removed.
 * Files are opened under dir's fd by common/fsutil.h's trust rule.  0,
 * KW_ERR_CONFIG (provider settings; a file that is a link or another
 * user's), KW_ERR_NOMEM or KW_ERR_IO (a file missing or malformed, a
 * provider refusing) with the reason in err, which never holds key
 * material.  *ret_secrets is sodium_malloc'd; free it with
 * kw_secrets_free.
 */
int kw_secrets_open(const struct kw_config *cfg, const char *dir, bool must_exist,
    struct kw_secrets **ret_secrets, char *err, size_t err_len) KW_WUR KW_NONNULL(1, 2, 4, 5);

/* Wipe and free.  Accepts NULL. */
void kw_secrets_free(struct kw_secrets *s);

#endif
