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

#include "common/config.h"
#include "keystore/backends/backend.h"
#include "common/macros.h"

/*
 * Open the backend the configuration names.  data_dir is broker.dataDir
 * (the file backend uses data_dir/keystore/).  0, KW_ERR_CONFIG or KW_ERR_IO
 * with the reason in err.  *ret_ks is the caller's (kw_keystore_close).
 */
int kw_keystore_open(const struct kw_config *cfg, const char *data_dir,
    struct kw_keystore **ret_ks, char *err, size_t err_len) KW_WUR KW_NONNULL(1, 2, 3, 4);

void kw_keystore_close(struct kw_keystore *ks);

/* kw_keystore_free_value (wipe and free a value from ops->get) is in backend.h. */

#endif
