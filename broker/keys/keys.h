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
#include <stddef.h>

#include "keystore/keystore.h"
#include "broker/store/keys.h"
#include "common/macros.h"

struct kw_state;

/*
 * Store value as the next version of name and make it current.  The
 * previous current version (if any) enters grace until now + grace.
 * *ret_version and *ret_previous (0: none) tell which.
 */
int kw_key_put(struct kw_state *st, struct kw_keystore *ks, const char *name, const unsigned char *value,
    size_t len, long long now, long long grace, int *ret_version, int *ret_previous)
	KW_WUR KW_NONNULL(1, 2, 3, 4, 8, 9);

/*
 * The value of version (0: the current one) of name, if it is current or
 * in grace, into *ret_value (free with kw_keystore_free_value).  Marks the
 * key used.  KW_ERR_NOT_FOUND when there is no such readable version.
 */
int kw_key_get(struct kw_state *st, struct kw_keystore *ks, const char *name, int version, long long now,
    unsigned char **ret_value, size_t *ret_len, int *ret_version) KW_WUR KW_NONNULL(1, 2, 3, 6, 7, 8);

/*
 * Remove from the backend every version marked destroyed whose copy is
 * still there.  Run after the marking committed: a crash in between leaves
 * the old state whole, and this sweep finishes the job on the next call.
 */
int kw_key_sweep(struct kw_state *st, struct kw_keystore *ks) KW_WUR KW_NONNULL(1, 2);

/* Expiring, revoking and listing touch only the bookkeeping: broker/store/keys.h. */

#endif
