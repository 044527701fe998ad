/*
 * keys.h - keys' metadata as the state store keeps it: names, numbered
 * versions (current, grace, destroyed; numbers never reused), when each was
 * made and last used, and whether a destroyed version's copy was wiped from
 * the keystore.  Never values.
 */
#ifndef KW_STORE_KEYS_H
#define KW_STORE_KEYS_H

#include <jansson.h>

#include "common/macros.h"

struct kw_state;

/* The number the next version of name gets, and its current one (0: none).  0 or KW_ERR_IO. */
int kw_keymeta_next(struct kw_state *st, const char *name, int *ret_next, int *ret_current)
	KW_WUR KW_NONNULL(1, 2, 3, 4);

/* Record version as name's current one; the previous current one enters grace
   until now + grace.  0 or KW_ERR_IO. */
int kw_keymeta_add(struct kw_state *st, const char *name, int version, long long now,
    long long grace) KW_WUR KW_NONNULL(1, 2);

/* The readable version (version > 0: that one if current or in grace; 0: the
   current one) into *ret_version.  0, KW_ERR_NOT_FOUND or KW_ERR_IO. */
int kw_keymeta_usable(struct kw_state *st, const char *name, int version, long long now,
    int *ret_version) KW_WUR KW_NONNULL(1, 2, 5);

/* Note that name was used at now.  0 or KW_ERR_IO. */
int kw_keymeta_used(struct kw_state *st, const char *name, long long now) KW_WUR KW_NONNULL(1, 2);

/* Destroyed versions whose copy is still in the keystore: [{"name", "version"}] (new). */
int kw_keymeta_unwiped(struct kw_state *st, json_t **ret_array) KW_WUR KW_NONNULL(1, 2);

/* The copy of (name, version) is gone from the keystore.  0 or KW_ERR_IO. */
int kw_keymeta_wiped(struct kw_state *st, const char *name, int version) KW_WUR KW_NONNULL(1, 2);

/* Mark destroyed the versions whose grace ended by now (bookkeeping only). */
int kw_key_expire(struct kw_state *st, long long now) KW_WUR KW_NONNULL(1);

/*
 * Mark destroyed one version (version > 0) or every live version of name
 * (the backend copies go at the next kw_key_sweep).  *ret_destroyed gets
 * the version numbers.
 */
int kw_key_revoke(struct kw_state *st, const char *name, int version, json_t **ret_destroyed)
	KW_WUR KW_NONNULL(1, 2, 4);

/* Every key with its versions (never values), as a new array. */
int kw_key_list(struct kw_state *st, json_t **ret_array) KW_WUR KW_NONNULL(1, 2);

#endif
