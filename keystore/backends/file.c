/*
 * backend_file.c - the file backend: each (name, version) sealed with
 * AES-256-GCM under a data key that the master-key provider wraps.
 *
 *	keystore/datakey.wrapped	the data key, as the provider wrapped it
 *	keystore/NAME/vN.sealed		"KWK1" IV ciphertext tag; AD = "NAME\0N"
 *
 * The name and version are bound in as associated data, so a sealed file
 * copied under another name or version does not open.  Files are written
 * whole and renamed into place (fsutil.h): a crash leaves the old state or
 * the new, never a torn file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/names.h"
#include "keystore/cipher/aead.h"
#include "common/fsutil.h"
#include "keystore/backends/backend.h"
#include "common/errors.h"
#include "keystore/providers/provider.h"

#define MAGIC "KWK1"
#define MAGIC_LEN 4
#define SEALED_MAX (MAGIC_LEN + KW_GCM_IV_LEN + KW_KEY_VALUE_MAX + KW_GCM_TAG_LEN)

struct filestore {
	char dir[4096];
	struct kw_provider *provider;
	unsigned char *dek;	/* sodium_malloc'd, read-only after open */
};

static int
sealed_path(struct filestore *f, const char *name, int version, char *buf, size_t len)
{
	if (!kw_name_ok(KW_NAME_KEY, name) || version < 1)
		return KW_ERR_INVALID;
	return (size_t)snprintf(buf, len, "%s/%s/v%d.sealed", f->dir, name, version) < len ?
	    0 : KW_ERR_INVALID;
}

/* "NAME\0N": what the seal is bound to. */
static size_t
make_ad(const char *name, int version, unsigned char *ad, size_t len)
{
	int n = snprintf((char *)ad, len, "%s%c%d", name, '\0', version);

	return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

static int
file_put(struct kw_keystore *ks, const char *name, int version, const unsigned char *value,
    size_t len)
{
	struct filestore *f = ks->priv;
	unsigned char ad[96], *out;
	char path[4200], dir[4200];
	size_t adlen, olen = MAGIC_LEN + KW_GCM_IV_LEN + len + KW_GCM_TAG_LEN;
	int r;

	if (len == 0 || len > KW_KEY_VALUE_MAX || (r = sealed_path(f, name, version, path,
	    sizeof(path))) < 0 || !(adlen = make_ad(name, version, ad, sizeof(ad))))
		return KW_ERR_INVALID;
	/*
	 * A file already there is left by a write whose bookkeeping never
	 * committed (a crash): the rename below replaces it whole.
	 */
	snprintf(dir, sizeof(dir), "%s/%s", f->dir, name);
	if (kw_mkdir_p(dir, 0700) < 0 || !(out = malloc(olen)))
		return KW_ERR_IO;
	memcpy(out, MAGIC, MAGIC_LEN);
	r = kw_gcm_seal(f->dek, ad, adlen, value, len, out + MAGIC_LEN);
	if (r == 0 && kw_write_atomic(path, out, olen, 0600) < 0)
		r = KW_ERR_IO;
	free(out);
	return r;
}

static int
read_file(const char *path, unsigned char **ret, size_t *ret_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), r;
	char *data = NULL;

	if (fd < 0)
		return errno == ENOENT ? KW_ERR_NOT_FOUND : KW_ERR_IO;
	r = kw_read_fd(fd, SEALED_MAX, &data, ret_len);
	close(fd);
	if (r < 0)
		return r == KW_ERR_INVALID ? KW_ERR_IO : r;
	*ret = (unsigned char *)data;
	return 0;
}

static int
file_get(struct kw_keystore *ks, const char *name, int version, unsigned char **ret_value,
    size_t *ret_len)
{
	struct filestore *f = ks->priv;
	unsigned char ad[96], *sealed = NULL, *value;
	char path[4200];
	size_t adlen, slen = 0, len;
	int r;

	if ((r = sealed_path(f, name, version, path, sizeof(path))) < 0 ||
	    !(adlen = make_ad(name, version, ad, sizeof(ad))))
		return KW_ERR_INVALID;
	if ((r = read_file(path, &sealed, &slen)) < 0)
		return r;
	if (slen < MAGIC_LEN + KW_GCM_IV_LEN + KW_GCM_TAG_LEN + 1 ||
	    memcmp(sealed, MAGIC, MAGIC_LEN) != 0) {
		free(sealed);
		return KW_ERR_IO;
	}
	len = slen - MAGIC_LEN - KW_GCM_IV_LEN - KW_GCM_TAG_LEN;
	if (!(value = sodium_malloc(len + 1))) {
		free(sealed);
		return KW_ERR_NOMEM;
	}
	r = kw_gcm_open(f->dek, ad, adlen, sealed + MAGIC_LEN, slen - MAGIC_LEN, value);
	free(sealed);
	if (r < 0) {
		sodium_free(value);
		return KW_ERR_IO;
	}
	value[len] = '\0';
	*ret_value = value;
	*ret_len = len;
	return 0;
}

static int
file_destroy(struct kw_keystore *ks, const char *name, int version)
{
	struct filestore *f = ks->priv;
	char path[4200], dir[4200];
	int fd;

	if (sealed_path(f, name, version, path, sizeof(path)) < 0)
		return KW_ERR_INVALID;
	if (unlink(path) < 0)
		return errno == ENOENT ? KW_ERR_NOT_FOUND : KW_ERR_IO;
	/* The unlink is durable only once the directory is. */
	snprintf(dir, sizeof(dir), "%s/%s", f->dir, name);
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	(void)rmdir(dir);	/* only succeeds once the last version is gone */
	return 0;
}

static void
file_close(struct kw_keystore *ks)
{
	struct filestore *f = ks->priv;

	kw_provider_close(f->provider);
	sodium_free(f->dek);
	free(f);
	free(ks);
}

static const struct kw_keystore_ops file_ops = {
	.name = "file",
	.put = file_put,
	.get = file_get,
	.destroy = file_destroy,
	.close = file_close,
};

/* True when dir has a key directory (a sealed value may be inside). */
static bool
holds_keys(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool any = false;

	while (d && !any && (e = readdir(d)))
		any = e->d_type == DT_DIR && e->d_name[0] != '.' && kw_name_ok(KW_NAME_KEY, e->d_name);
	if (d)
		closedir(d);
	return any;
}

/* Unwrap the data key, or make and wrap one on first use. */
static int
load_dek(struct filestore *f, char *err, size_t err_len)
{
	char path[4200];
	unsigned char *blob = NULL;
	size_t len = 0;
	int r;

	snprintf(path, sizeof(path), "%s/datakey.wrapped", f->dir);
	r = read_file(path, &blob, &len);
	if (r == KW_ERR_NOT_FOUND && holds_keys(f->dir)) {
		/* A new data key would turn every stored key into an integrity error. */
		snprintf(err, err_len, "%s is missing, but the keystore holds sealed keys; restore it "
		    "from a backup", path);
		return KW_ERR_IO;
	}
	if (r == KW_ERR_NOT_FOUND) {
		if ((r = f->provider->ops->new_dek(f->provider, f->dek, &blob, &len)) < 0) {
			snprintf(err, err_len, "keystore: the %s provider could not make a data key",
			    f->provider->ops->name);
			return r;
		}
		r = kw_write_atomic(path, blob, len, 0600) < 0 ? KW_ERR_IO : 0;
		if (r < 0)
			snprintf(err, err_len, "%s: %s", path, strerror(errno));
		free(blob);
		return r;
	}
	if (r < 0) {
		snprintf(err, err_len, "%s: cannot be read", path);
		return r;
	}
	r = f->provider->ops->unwrap(f->provider, blob, len, f->dek);
	free(blob);
	if (r < 0)
		snprintf(err, err_len, "%s: the %s provider could not unwrap the data key; its "
		    "reason is logged just before this", path, f->provider->ops->name);
	return r;
}

/*
 * Temporary files of writes a crash cut short hold only ciphertext, but
 * they pile up: remove them at start, before anything writes.
 */
static void
remove_leftovers(const char *dir)
{
	DIR *top = opendir(dir), *sub;
	struct dirent *k, *e;
	char path[4200];

	if (!top)
		return;
	while ((k = readdir(top))) {
		if (k->d_name[0] == '.' || !kw_name_ok(KW_NAME_KEY, k->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, k->d_name);
		if (!(sub = opendir(path)))
			continue;
		while ((e = readdir(sub)))
			if (strstr(e->d_name, ".sealed.tmp.")) {
				snprintf(path, sizeof(path), "%s/%s/%s", dir, k->d_name, e->d_name);
				(void)unlink(path);
			}
		closedir(sub);
	}
	closedir(top);
}

int
kw_keystore_file_open(const struct kw_config *cfg, const char *data_dir,
    struct kw_keystore **ret_ks, char *err, size_t err_len)
{
	struct kw_keystore *ks = calloc(1, sizeof(*ks));
	struct filestore *f = calloc(1, sizeof(*f));
	int r = KW_ERR_NOMEM;

	if (!ks || !f || !(f->dek = sodium_malloc(KW_DEK_LEN)))
		goto fail;
	snprintf(f->dir, sizeof(f->dir), "%s/keystore", data_dir);
	if (kw_mkdir_p(f->dir, 0700) < 0) {
		snprintf(err, err_len, "%s: %s", f->dir, strerror(errno));
		r = KW_ERR_IO;
		goto fail;
	}
	if ((r = kw_provider_open(cfg, f->dir, &f->provider, err, err_len)) < 0 ||
	    (r = load_dek(f, err, err_len)) < 0)
		goto fail;
	remove_leftovers(f->dir);
	sodium_mprotect_readonly(f->dek);
	ks->ops = &file_ops;
	ks->priv = f;
	*ret_ks = ks;
	return 0;
 fail:
	if (f) {
		kw_provider_close(f->provider);
		sodium_free(f->dek);
	}
	free(f);
	free(ks);
	return r;
}
