/*
 * provider_local.c - the embedded default master key: 32 random bytes in
 * dataDir/provider.key (0600), made at first run.  It protects against a
 * copied keystore directory without the key file, not against root: so it
 * lives outside keystore/, and a copy of that folder does not carry it.
 * Earlier versions kept it in keystore/master.key; it is moved at start.
 *
 * Blob: "LOC1" | IV (12) | ciphertext (32) | tag (16), AES-256-GCM under
 * the key file's key with the associated data "keywarden data key".
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "keystore/cipher/aead.h"
#include "common/fsutil.h"
#include "common/errors.h"
#include "common/log.h"
#include "keystore/providers/provider.h"

#define MAGIC "LOC1"
#define AD "keywarden data key"
#define BLOB_LEN (4 + KW_GCM_IV_LEN + KW_DEK_LEN + KW_GCM_TAG_LEN)
#define KEY_FILE "provider.key"		/* in the data directory */
#define OLD_DIR "keystore"		/* where earlier versions kept it */
#define OLD_FILE "master.key"
#define OLD_PATH OLD_DIR "/" OLD_FILE

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
		kw_log_error("local provider: the data key does not open with " KEY_FILE " "
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

/*
 * keystore/master.key of earlier versions into kek, read through a trusted
 * keystore/ whose fd goes to *ret_kfd.  0, KW_ERR_NOT_FOUND, or a refusal
 * named in err.
 */
static int
read_old(int dfd, const char *dir, unsigned char *kek, int *ret_kfd, char *err, size_t err_len)
{
	char why[384];
	int kfd = kw_open_dir_private(dfd, OLD_DIR, 0, why, sizeof(why)), r;

	if (kfd == KW_ERR_NOT_FOUND)
		return kfd;
	if (kfd < 0) {
		snprintf(err, err_len, "%s/" OLD_DIR ": %s", dir, why);
		return kfd;
	}
	if ((r = kw_read_key_file(kfd, OLD_FILE, kek, KW_GCM_KEY_LEN, why, sizeof(why))) < 0) {
		if (r != KW_ERR_NOT_FOUND)
			snprintf(err, err_len, "%s/" OLD_PATH ": %s", dir, why);
		close(kfd);
		return r;
	}
	*ret_kfd = kfd;
	return 0;
}

/*
 * Move the old key file to dir/provider.key: renamed, so the same file and
 * bytes, and at no moment neither name nor two different keys; copied
 * (atomically, synced, then the old one removed) only across file systems.
 */
static int
move_old(int dfd, int kfd, const char *dir, const unsigned char *kek, char *err,
    size_t err_len)
{
	if (renameat2(kfd, OLD_FILE, dfd, KEY_FILE, RENAME_NOREPLACE) < 0 &&
	    (errno != EXDEV || kw_write_atomic_at(dfd, KEY_FILE, kek, KW_GCM_KEY_LEN, 0600) < 0 ||
	    unlinkat(kfd, OLD_FILE, 0) < 0))
		goto fail;
	/* Both directory entries changed: each is durable once its directory is. */
	if (fsync(dfd) < 0 || fsync(kfd) < 0)
		goto fail;
	kw_log_info("local provider: %s/" OLD_PATH " moved to %s/" KEY_FILE ", out of the "
	    "keystore folder whose data key it wraps", dir, dir);
	return 0;
 fail:
	snprintf(err, err_len, "%s/" OLD_PATH ": cannot be moved to %s/" KEY_FILE ": %s", dir, dir,
	    strerror(errno));
	return KW_ERR_IO;
}

/* Both files: a move cut short (the same key) loses the old one; two keys are refused. */
static int
both_found(int kfd, const char *dir, const unsigned char *kek, const unsigned char *old,
    char *err, size_t err_len)
{
	if (sodium_memcmp(kek, old, KW_GCM_KEY_LEN) != 0) {
		snprintf(err, err_len, "%s/" KEY_FILE " and %s/" OLD_PATH " both exist and hold "
		    "different keys: the data key opens with one of them only; move the other one "
		    "out of the data directory and start again", dir, dir);
		return KW_ERR_CONFIG;
	}
	if (unlinkat(kfd, OLD_FILE, 0) < 0 || fsync(kfd) < 0)
		kw_log_error("local provider: %s/" OLD_PATH ": cannot be removed (%s); it is a copy "
		    "of %s/" KEY_FILE ": remove it by hand", dir, strerror(errno), dir);
	else
		kw_log_info("local provider: %s/" OLD_PATH " removed; the key is in %s/" KEY_FILE,
		    dir, dir);
	return 0;
}

/* The key file's key (moved from its old place), or a new one made and saved on first use. */
static int
load_key(const char *dir, unsigned char *kek, char *err, size_t err_len)
{
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	unsigned char *old = NULL;
	int kfd = -1;
	char why[384];
	int r, r_old;

	if (dfd < 0) {
		snprintf(err, err_len, "%s: %s", dir, strerror(errno));
		return KW_ERR_IO;
	}
	r = kw_read_key_file(dfd, KEY_FILE, kek, KW_GCM_KEY_LEN, why, sizeof(why));
	if (r < 0 && r != KW_ERR_NOT_FOUND) {
		snprintf(err, err_len, "%s/" KEY_FILE ": %s", dir, why);
		return r;
	}
	if (!(old = sodium_malloc(KW_GCM_KEY_LEN))) {
		snprintf(err, err_len, "local provider: out of memory");
		sodium_memzero(kek, KW_GCM_KEY_LEN);
		return KW_ERR_NOMEM;
	}
	r_old = read_old(dfd, dir, r == 0 ? old : kek, &kfd, err, err_len);
	if (r_old < 0 && r_old != KW_ERR_NOT_FOUND)
		r = r_old;
	else if (r == 0 && r_old == 0)
		r = both_found(kfd, dir, kek, old, err, err_len);
	else if (r_old == 0)
		r = move_old(dfd, kfd, dir, kek, err, err_len);
	else if (r == KW_ERR_NOT_FOUND) {
		randombytes_buf(kek, KW_GCM_KEY_LEN);
		r = 0;
		if (kw_write_atomic_at(dfd, KEY_FILE, kek, KW_GCM_KEY_LEN, 0600) < 0) {
			snprintf(err, err_len, "%s/" KEY_FILE ": %s", dir, strerror(errno));
			r = KW_ERR_IO;
		}
	}
	if (r < 0)
		sodium_memzero(kek, KW_GCM_KEY_LEN);
	if (kfd >= 0)
		close(kfd);
	sodium_free(old);
	return r;
}

int
kw_provider_local_open(const struct kw_config *cfg, const char *dir, struct kw_provider **ret,
    char *err, size_t err_len)
{
	struct kw_provider *p = calloc(1, sizeof(*p));
	struct local *l = calloc(1, sizeof(*l));
	int r = KW_ERR_NOMEM;

	if (!p || !l || !(l->kek = sodium_malloc(KW_GCM_KEY_LEN)))
		goto fail;
	if ((r = load_key(dir, l->kek, err, err_len)) < 0)
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
