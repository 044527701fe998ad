/*
 * keystore.h - where API keys live: the interface every backend serves
 * (api.keySource): "file" (sealed files under a provider-wrapped data key)
 * or "keychain" (the Secret Service through libsecret).
 *
 * A key has a name ([A-Za-z0-9._-], 1-64) and numbered versions; exactly one
 * version is current.  Metadata (versions, states, times) is kept by the
 * broker in state.db; a backend stores and returns values by (name, version).
 * Values travel in sodium_malloc'd memory and are wiped when freed.
 */
#ifndef KW_KEYSTORE_H
#define KW_KEYSTORE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "macros.h"

#define KW_KEY_VALUE_MAX 8192

struct kw_keystore;

struct kw_keystore_ops {
	const char *name;
	/*
	 * Store value under (name, version), durably before returning.  The
	 * broker's bookkeeping never asks twice for a version it committed; a
	 * version left by an uncommitted attempt is replaced.
	 */
	int (*put)(struct kw_keystore *ks, const char *name, int version,
	    const unsigned char *value, size_t len);
	/*
	 * The value of (name, version) into *ret_value (sodium_malloc'd, NUL after
	 * the len bytes; free with kw_keystore_free_value).  KW_ERR_NOT_FOUND when
	 * absent, KW_ERR_IO on an integrity failure (tampering) -- never garbage.
	 */
	int (*get)(struct kw_keystore *ks, const char *name, int version,
	    unsigned char **ret_value, size_t *ret_len);
	/* Destroy (name, version) for good.  KW_ERR_NOT_FOUND when absent. */
	int (*destroy)(struct kw_keystore *ks, const char *name, int version);
	void (*close)(struct kw_keystore *ks);
};

struct kw_keystore {
	const struct kw_keystore_ops *ops;
	void *priv;
};

/*
 * Open the backend the configuration names.  data_dir is broker.dataDir
 * (the file backend uses data_dir/keystore/).  0, KW_ERR_CONFIG or KW_ERR_IO
 * with the reason in err.  *ret_ks is the caller's (kw_keystore_close).
 */
int kw_keystore_open(const struct kw_config *cfg, const char *data_dir,
    struct kw_keystore **ret_ks, char *err, size_t err_len) KW_WUR KW_NONNULL(1, 2, 3, 4);

void kw_keystore_close(struct kw_keystore *ks);

/* Wipe and free a value from ops->get.  Accepts NULL. */
void kw_keystore_free_value(unsigned char *value, size_t len);

/* True when name is a valid key name. */
bool kw_key_name_ok(const char *name);

/* Backends (one file each). */
int kw_keystore_file_open(const struct kw_config *cfg, const char *data_dir,
    struct kw_keystore **ret_ks, char *err, size_t err_len);
int kw_keystore_keychain_open(const struct kw_config *cfg, const char *data_dir,
    struct kw_keystore **ret_ks, char *err, size_t err_len);

#endif
