/*
 * provider.h - master-key providers: where the key that wraps the
 * keystore's data key lives (security.encryption.atRest.keySource).
 *
 * Envelope encryption: key values are sealed with a 32-byte data key (DEK);
 * the DEK is stored only wrapped by the provider's master key (KEK), which
 * for pkcs11 and aws-kms never leaves the HSM or KMS.  A provider turns a
 * DEK into an opaque blob and back; it never sees key values.  The broker's
 * own secret (broker/login/secrets.h) is a second 32-byte key wrapped the
 * same way.
 *
 *   local       a 32-byte key file (dataDir/provider.key, 0600, outside the keystore
 *               folder it protects), made at first run
 *   passphrase  Argon2id (libsodium) over a passphrase read from a file or a
 *               systemd credential ($CREDENTIALS_DIRECTORY/keywarden-passphrase)
 *   pkcs11      an AES key in an HSM named by an RFC 7512 pkcs11: URI (kmsKeyId)
 *               with module-path and pin-source; AES-GCM in the token
 *   aws-kms     GenerateDataKey / Encrypt / Decrypt over HTTPS with SigV4 (libcurl)
 */
#ifndef KW_PROVIDER_H
#define KW_PROVIDER_H

#include <stddef.h>

#include "common/config.h"
#include "common/macros.h"

#define KW_DEK_LEN 32

struct kw_provider;

struct kw_provider_ops {
	const char *name;
	/*
	 * Make a fresh DEK: write it to dek[KW_DEK_LEN] (caller's secure memory)
	 * and its wrapped form to *ret_blob (malloc'd, *ret_len bytes).  A KMS
	 * may generate the DEK itself (GenerateDataKey).
	 */
	int (*new_dek)(struct kw_provider *p, unsigned char *dek, unsigned char **ret_blob,
	    size_t *ret_len);
	/*
	 * Wrap the caller's key dek[KW_DEK_LEN], made elsewhere (a key that
	 * predates the provider), into *ret_blob (malloc'd, *ret_len bytes):
	 * unwrap gives back the same bytes.  KW_ERR_IO when the HSM or KMS
	 * refuses (its reason logged).
	 */
	int (*wrap)(struct kw_provider *p, const unsigned char *dek, unsigned char **ret_blob,
	    size_t *ret_len);
	/*
	 * Unwrap a blob from new_dek or wrap into dek[KW_DEK_LEN].  KW_ERR_IO on
	 * any integrity failure.
	 */
	int (*unwrap)(struct kw_provider *p, const unsigned char *blob, size_t len,
	    unsigned char *dek);
	void (*close)(struct kw_provider *p);
};

struct kw_provider {
	const struct kw_provider_ops *ops;
	void *priv;		/* the provider's own state */
};

/*
 * Open the provider the configuration names; data_dir is the broker's data
 * directory, where local keeps its key file (provider.key; a
 * keystore/master.key of earlier versions is moved there).  0, KW_ERR_CONFIG (bad or missing settings, named in
 * err), KW_ERR_IO (HSM/KMS/file unreachable or refusing, reason in err).
 * *ret_provider is the caller's (kw_provider_close).
 */
int kw_provider_open(const struct kw_config *cfg, const char *data_dir,
    struct kw_provider **ret_provider, char *err, size_t err_len) KW_WUR KW_NONNULL(1, 2, 3, 4);

void kw_provider_close(struct kw_provider *p);

/* One constructor per provider (provider_*.c); same contract as kw_provider_open. */
int kw_provider_local_open(const struct kw_config *cfg, const char *dir, struct kw_provider **ret,
    char *err, size_t err_len);
int kw_provider_passphrase_open(const struct kw_config *cfg, const char *dir,
    struct kw_provider **ret, char *err, size_t err_len);
int kw_provider_pkcs11_open(const struct kw_config *cfg, const char *dir,
    struct kw_provider **ret, char *err, size_t err_len);
int kw_provider_awskms_open(const struct kw_config *cfg, const char *dir,
    struct kw_provider **ret, char *err, size_t err_len);

#endif
