/*
 * provider_local.c - the embedded default master key: 32 random bytes in
 * keystore/master.key (0600), made at first run.  It protects against a
 * copied keystore directory without the key file, not against root.
 *
 * Blob: "LOC1" | IV (12) | ciphertext (32) | tag (16), AES-256-GCM under
 * the key file's key with the associated data "keywarden data key".
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "keystore/cipher/aead.h"
#include "common/fsutil.h"
#include "common/errors.h"
#include "common/log.h"
#include "keystore/providers/provider.h"

#define MAGIC "LOC1"
#define AD "keywarden data key"
#define BLOB_LEN (4 + KW_GCM_IV_LEN + KW_DEK_LEN + KW_GCM_TAG_LEN)

struct local {
	unsigned char *kek;	/* sodium_malloc'd */
};

static int
local_wrap(struct kw_provider *p, const unsigned char *dek, unsigned char **ret_blob,
    size_t *ret_len)
{
	struct local *l = p->priv;
	unsigned char *blob = malloc(BLOB_LEN);

	if (!blob)
		return KW_ERR_NOMEM;
	memcpy(blob, MAGIC, 4);
	if (kw_gcm_seal(l->kek, (const unsigned char *)AD, strlen(AD), dek, KW_DEK_LEN, blob + 4) < 0) {
		free(blob);
		return KW_ERR_INTERNAL;
	}
	*ret_blob = blob;
	*ret_len = BLOB_LEN;
	return 0;
}

static int
local_new_dek(struct kw_provider *p, unsigned char *dek, unsigned char **ret_blob, size_t *ret_len)
{
	int r;

	randombytes_buf(dek, KW_DEK_LEN);
	if ((r = local_wrap(p, dek, ret_blob, ret_len)) < 0)
		sodium_memzero(dek, KW_DEK_LEN);
	return r;
}

static int
local_unwrap(struct kw_provider *p, const unsigned char *blob, size_t len, unsigned char *dek)
{
	struct local *l = p->priv;

	if (len != BLOB_LEN || memcmp(blob, MAGIC, 4) != 0) {
		kw_log_error("local provider: not a data key wrapped by the local master key");
		return KW_ERR_IO;
	}
	if (kw_gcm_open(l->kek, (const unsigned char *)AD, strlen(AD), blob + 4, len - 4, dek) < 0) {
		kw_log_error("local provider: the data key does not open with keystore/master.key "
		    "(the master key or the wrapped data key was changed)");
		return KW_ERR_IO;
	}
	return 0;
}

static void
local_close(struct kw_provider *p)
{
	struct local *l = p->priv;

	sodium_free(l->kek);
	free(l);
	free(p);
}

static const struct kw_provider_ops local_ops = {
	.name = "local",
	.new_dek = local_new_dek,
	.wrap = local_wrap,
	.unwrap = local_unwrap,
	.close = local_close,
};

/* The key file's key, or a new one made and saved on first use. */
static int
load_key(const char *path, unsigned char *kek, char *err, size_t err_len)
{
	const char *name;
	_cleanup_close_ int dfd = kw_open_dir_of(path, &name);
	char why[384];
	int r;

	if (dfd < 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return KW_ERR_IO;
	}
	r = kw_read_key_file(dfd, name, kek, KW_GCM_KEY_LEN, why, sizeof(why));
	if (r != KW_ERR_NOT_FOUND) {
		if (r < 0)
			snprintf(err, err_len, "%s: %s", path, why);
		return r;
	}
	randombytes_buf(kek, KW_GCM_KEY_LEN);
	if (kw_write_atomic_at(dfd, name, kek, KW_GCM_KEY_LEN, 0600) < 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return KW_ERR_IO;
	}
	return 0;
}

int
kw_provider_local_open(const struct kw_config *cfg, const char *dir, struct kw_provider **ret,
    char *err, size_t err_len)
{
	struct kw_provider *p = calloc(1, sizeof(*p));
	struct local *l = calloc(1, sizeof(*l));
	char path[4096];
	int r = KW_ERR_NOMEM;

	if (!p || !l || !(l->kek = sodium_malloc(KW_GCM_KEY_LEN)))
		goto fail;
	snprintf(path, sizeof(path), "%s/master.key", dir);
	if ((r = load_key(path, l->kek, err, err_len)) < 0)
		goto fail;
	p->ops = &local_ops;
	p->priv = l;
	*ret = p;
	return 0;
 fail:
	if (l)
		sodium_free(l->kek);
	free(l);
	free(p);
	return r;
}
