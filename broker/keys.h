/*
 * keys.h - API key versions: the bookkeeping in state.db over the values a
 * keystore backend holds.
 *
 * Exactly one version of a key is current.  Setting or rotating makes a new
 * current version; the one before stays readable until its grace period
 * ends (0 for set), and is then destroyed in the backend at the next key
 * operation.  Destroyed versions keep their row, so numbers are never reused.
 */
#ifndef KW_KEYS_H
#define KW_KEYS_H

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>

#include "keystore.h"
#include "macros.h"

/*
 * Store value as the next version of name and make it current.  The
 * previous current version (if any) enters grace until now + grace.
 * *ret_version and *ret_previous (0: none) tell which.
 */
int kw_key_put(sqlite3 *db, struct kw_keystore *ks, const char *name, const unsigned char *value,
    size_t len, long long now, long long grace, int *ret_version, int *ret_previous)
	KW_WUR KW_NONNULL(1, 2, 3, 4, 8, 9);

/*
 * The value of version (0: the current one) of name, if it is current or
 * in grace, into *ret_value (free with kw_keystore_free_value).  Marks the
 * key used.  KW_ERR_NOT_FOUND when there is no such readable version.
 */
int kw_key_get(sqlite3 *db, struct kw_keystore *ks, const char *name, int version, long long now,
    unsigned char **ret_value, size_t *ret_len, int *ret_version) KW_WUR KW_NONNULL(1, 2, 3, 6, 7, 8);

/* Destroy versions whose grace ended by now; *ret_n (may be NULL) counts them. */
int kw_key_purge(sqlite3 *db, struct kw_keystore *ks, long long now, int *ret_n) KW_WUR KW_NONNULL(1, 2);

/*
 * Destroy one version (version > 0) or every version of name; the key is
 * forgotten when none is left.  *ret_destroyed gets the version numbers.
 */
int kw_key_revoke(sqlite3 *db, struct kw_keystore *ks, const char *name, int version,
    json_t **ret_destroyed) KW_WUR KW_NONNULL(1, 2, 3, 5);

/* Every key with its versions (never values), as a new array. */
int kw_key_list(sqlite3 *db, json_t **ret_array) KW_WUR KW_NONNULL(1, 2);

#endif
