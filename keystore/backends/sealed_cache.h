/*
 * sealed_cache.h - the file backend's memory of sealed key files it has
 * read, so a key read costs a decryption and not a directory walk, an
 * open, a read and a close (the broker reads the same few keys over and
 * over).  It holds sealed bytes only (encrypted, as on disk), never a
 * value.  An entry is used only while the file is still the one it was
 * read from: same device, inode, size, modification and change times (one
 * fstatat per read).  Anything that writes the file, renames another over
 * it or touches its times changes one of those (the change time cannot be
 * set from user space), so a tampered file is read -- and its damage
 * reported -- at the next read, as without the cache.  The broker's own
 * writes (file_put, file_destroy) also drop the entry.  Thread-safe.
 */
#ifndef KW_SEALED_CACHE_H
#define KW_SEALED_CACHE_H

#include <stddef.h>
#include <sys/stat.h>

#include "common/macros.h"

struct kw_sealed_cache;

/* A new, empty cache, or NULL (out of memory). */
struct kw_sealed_cache *kw_sealed_cache_new(void);
void kw_sealed_cache_free(struct kw_sealed_cache *c);

/*
 * Copy the sealed bytes of (name, version) into a new buffer (*ret, the
 * caller frees), if they were read from the file now is (its lstat).  0,
 * KW_ERR_NOT_FOUND (not cached, or the file changed) or KW_ERR_NOMEM.
 */
int kw_sealed_cache_get(struct kw_sealed_cache *c, const char *name, int version,
    const struct stat *now, unsigned char **ret, size_t *ret_len)
	KW_WUR KW_NONNULL(1, 2, 4, 5, 6);

/*
 * Remember (name, version)'s sealed bytes (copied), read from the file
 * `was` describes (fstat of the descriptor read); the entry read longest
 * ago makes room.
 */
void kw_sealed_cache_put(struct kw_sealed_cache *c, const char *name, int version,
    const struct stat *was, const unsigned char *sealed, size_t len) KW_NONNULL(1, 2, 4, 5);

/* Forget (name, version): before the file is written or removed. */
void kw_sealed_cache_drop(struct kw_sealed_cache *c, const char *name, int version)
	KW_NONNULL(1, 2);

#endif
