/*
 * backend.h - the interface a keystore backend serves (api.keySource), and
 * each backend's constructor.  keystore.c picks one from its table; a
 * backend includes this header, the provider interface and common/, never
 * keystore.h (which includes this).
 */
#ifndef KW_KEYSTORE_BACKEND_H
#define KW_KEYSTORE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"
#include "common/macros.h"

#define KW_KEY_VALUE_MAX 8192

struct kw_keystore;

struct kw_keystore_ops {
	const char *name;
	/*
	 * The backend keeps one value per key (the keychain): a put replaces
	 * the value every other version had, so no version outlives the next
	 * one and rotation can give no grace period.
	 */
	bool one_value;
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

/* Constructors, one file each; the contract of kw_keystore_open (keystore.h). */
int kw_keystore_file_open(const struct kw_config *cfg, const char *data_dir,
    struct kw_keystore **ret_ks, char *err, size_t err_len);
int kw_keystore_keychain_open(const struct kw_config *cfg, const char *data_dir,
    struct kw_keystore **ret_ks, char *err, size_t err_len);

/*
 * Memory for a value a backend hands out: len + 1 bytes, locked, never in a
 * core dump (keystore/value.c).  NULL when out of memory.  Given back with
 * kw_keystore_free_value.
 */
unsigned char *kw_keystore_alloc_value(size_t len);

/* Wipe and free a value from ops->get (whoever holds it).  Accepts NULL. */
void kw_keystore_free_value(unsigned char *value, size_t len);

#endif
