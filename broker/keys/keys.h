/*
 * keys.h - API key versions: the bookkeeping in state.db over the values a
 * keystore backend holds.
 *
 * Exactly one version of a key is current.  Setting or rotating makes a new
 * current version; the one before stays readable until its grace period
 * ends (0 for set).  Destroying is two steps: the bookkeeping first (in the
 * request's transaction), the backend copy after that commits (sweep).
 * Destroyed versions keep their row, so numbers are never reused.
 */
#ifndef KW_KEYS_H
#define KW_KEYS_H

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>

#include "keystore/keystore.h"
#include "common/macros.h"

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

/* Mark destroyed the versions whose grace ended by now (bookkeeping only). */
int kw_key_expire(sqlite3 *db, long long now) KW_WUR KW_NONNULL(1);

/*
 * Remove from the backend every version marked destroyed whose copy is
 * still there.  Run after the marking committed: a crash in between leaves
 * the old state whole, and this sweep finishes the job on the next call.
 */
int kw_key_sweep(sqlite3 *db, struct kw_keystore *ks) KW_WUR KW_NONNULL(1, 2);

/*
 * Mark destroyed one version (version > 0) or every live version of name
 * (the backend copies go at the next kw_key_sweep).  *ret_destroyed gets
 * the version numbers.
 */
int kw_key_revoke(sqlite3 *db, const char *name, int version, json_t **ret_destroyed)
	KW_WUR KW_NONNULL(1, 2, 4);

/* Every key with its versions (never values), as a new array. */
int kw_key_list(sqlite3 *db, json_t **ret_array) KW_WUR KW_NONNULL(1, 2);

#endif
