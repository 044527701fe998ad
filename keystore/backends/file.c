/*
 * backend_file.c - the file backend: each (name, version) sealed with
 * AES-256-GCM under a data key that the master-key provider wraps.
 *
 *	keystore/datakey.wrapped	the data key, as the provider wrapped it
 *	keystore/NAME/vN.sealed		"KWK1" IV ciphertext tag; AD = "NAME\0N"
 *
 * (The local provider's key file is dataDir/provider.key, outside this
 * folder.)  Every directory and file is opened under keystore/'s fd, never
 * through a link, and must be the broker's (fsutil.h's trust rule).
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
#include "common/log.h"
#include "keystore/backends/sealed_cache.h"
#include "keystore/providers/provider.h"

#define MAGIC "KWK1"
#define MAGIC_LEN 4
#define SEALED_MAX (MAGIC_LEN + KW_GCM_IV_LEN + KW_KEY_VALUE_MAX + KW_GCM_TAG_LEN)

struct filestore {
	char dir[4096];		/* dataDir/keystore, for messages */
	int dfd;		/* the same, opened once: everything is opened under it */
	struct kw_provider *provider;
	unsigned char *dek;	/* sodium_malloc'd, read-only after open */
	struct kw_sealed_cache *cache;	/* sealed files read, dropped by every write */
};

/* "vN.sealed" of a valid (name, version), into buf. */
static int
sealed_name(const char *name, int version, char *buf, size_t len)
{
	if (!kw_name_ok(KW_NAME_KEY, name) || version < 1)
		return KW_ERR_INVALID;
	return (size_t)snprintf(buf, len, "v%d.sealed", version) < len ? 0 : KW_ERR_INVALID;
}

/* "NAME\0N": what the seal is bound to. */
static size_t
make_ad(const char *name, int version, unsigned char *ad, size_t len)
{
	int n = snprintf((char *)ad, len, "%s%c%d", name, '\0', version);

	return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

/*
 * The key's directory, keystore/NAME (made with create): trusted, not a
 * link.  The fd, KW_ERR_NOT_FOUND, or a refusal that is logged: a key
 * directory of another user's was planted, and the broker must say where.
 */
static int
key_dir(const struct filestore *f, const char *name, bool create)
{
	char why[384];
	int fd = kw_open_dir_private(f->dfd, name, create ? 0700 : 0, why, sizeof(why));

	if (fd < 0 && fd != KW_ERR_NOT_FOUND)
		kw_log_error("keystore: %s/%s: %s", f->dir, name, why);
	return fd == KW_ERR_NOT_FOUND || fd >= 0 ? fd : KW_ERR_IO;
}

static int
file_put(struct kw_keystore *ks, const char *name, int version, const unsigned char *value,
    size_t len)
{
	struct filestore *f = ks->priv;
	unsigned char ad[96], *out;
	char file[32];
	size_t adlen, olen = MAGIC_LEN + KW_GCM_IV_LEN + len + KW_GCM_TAG_LEN;
	_cleanup_close_ int kfd = -1;
	int r;

	if (len == 0 || len > KW_KEY_VALUE_MAX || sealed_name(name, version, file,
	    sizeof(file)) < 0 || !(adlen = make_ad(name, version, ad, sizeof(ad))))
		return KW_ERR_INVALID;
	/*
	 * A file already there is left by a write whose bookkeeping never
	 * committed (a crash): the rename below replaces it whole.
	 */
	if ((kfd = key_dir(f, name, true)) < 0)
		return KW_ERR_IO;
	if (!(out = malloc(olen)))
		return KW_ERR_NOMEM;
	memcpy(out, MAGIC, MAGIC_LEN);
	r = kw_gcm_seal(f->dek, ad, adlen, value, len, out + MAGIC_LEN);
	kw_sealed_cache_drop(f->cache, name, version);
	if (r == 0 && kw_write_atomic_at(kfd, file, out, olen, 0600) < 0)
		r = KW_ERR_IO;
	/* Again: a read between the first drop and the rename kept the old bytes. */
	kw_sealed_cache_drop(f->cache, name, version);
	free(out);
	return r;
}

/*
 * The bytes of name under dirfd (shown as dir/name): a trusted regular
 * file, not a link; *ret_st is what it was (fstat).  KW_ERR_NOT_FOUND, or
 * KW_ERR_IO (a refusal is logged).
 */
static int
read_file(int dirfd, const char *dir, const char *name, size_t max, unsigned char **ret,
    size_t *ret_len, struct stat *ret_st)
{
	char why[384], *data = NULL;
	_cleanup_close_ int fd = kw_open_private(dirfd, name, O_RDONLY, 0, why, sizeof(why));
	int r;

	if (fd == KW_ERR_NOT_FOUND)
		return fd;
	if (fd < 0) {
		kw_log_error("keystore: %s/%s: %s", dir, name, why);
		return KW_ERR_IO;
	}
	if ((r = kw_read_fd(fd, max, &data, ret_len)) < 0)
		return r == KW_ERR_INVALID ? KW_ERR_IO : r;
	if (fstat(fd, ret_st) < 0) {
		free(data);
		return KW_ERR_IO;
	}
	*ret = (unsigned char *)data;
	return 0;
}

static int
file_get(struct kw_keystore *ks, const char *name, int version, unsigned char **ret_value,
    size_t *ret_len)
{
	struct filestore *f = ks->priv;
	unsigned char ad[96], *sealed = NULL, *value;
	char file[32], shown[4200];
	size_t adlen, slen = 0, len;
	_cleanup_close_ int kfd = -1;
	bool remember = false;
	char rel[200];
	struct stat st;
	int r;

	if (sealed_name(name, version, file, sizeof(file)) < 0 ||
	    !(adlen = make_ad(name, version, ad, sizeof(ad))))
		return KW_ERR_INVALID;
	/* The bytes read last time, while the file is still the one they came from. */
	snprintf(rel, sizeof(rel), "%s/%s", name, file);
	r = fstatat(f->dfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 ?
	    kw_sealed_cache_get(f->cache, name, version, &st, &sealed, &slen) : KW_ERR_NOT_FOUND;
	if (r == KW_ERR_NOMEM)
		return r;
	if (r == KW_ERR_NOT_FOUND) {
		if ((kfd = key_dir(f, name, false)) < 0)
			return kfd;
		snprintf(shown, sizeof(shown), "%s/%s", f->dir, name);
		if ((r = read_file(kfd, shown, file, SEALED_MAX, &sealed, &slen, &st)) < 0)
			return r;
		remember = true;
	}
	if (slen < MAGIC_LEN + KW_GCM_IV_LEN + KW_GCM_TAG_LEN + 1 ||
	    memcmp(sealed, MAGIC, MAGIC_LEN) != 0) {
		free(sealed);
		return KW_ERR_IO;
	}
	len = slen - MAGIC_LEN - KW_GCM_IV_LEN - KW_GCM_TAG_LEN;
	if (!(value = kw_keystore_alloc_value(len))) {
		free(sealed);
		return KW_ERR_NOMEM;
	}
	r = kw_gcm_open(f->dek, ad, adlen, sealed + MAGIC_LEN, slen - MAGIC_LEN, value);
	/* Only what opened: a damaged file is read (and reported) again each time. */
	if (r == 0 && remember)
		kw_sealed_cache_put(f->cache, name, version, &st, sealed, slen);
	free(sealed);
	if (r < 0) {
		kw_keystore_free_value(value, len);
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
	_cleanup_close_ int kfd = -1;
	char file[32];

	if (sealed_name(name, version, file, sizeof(file)) < 0)
		return KW_ERR_INVALID;
	kw_sealed_cache_drop(f->cache, name, version);
	if ((kfd = key_dir(f, name, false)) < 0)
		return kfd;
	if (unlinkat(kfd, file, 0) < 0)
		return errno == ENOENT ? KW_ERR_NOT_FOUND : KW_ERR_IO;
	/* The unlink is durable only once the directory is. */
	(void)fsync(kfd);
	(void)unlinkat(f->dfd, name, AT_REMOVEDIR);	/* only once the last version is gone */
	kw_sealed_cache_drop(f->cache, name, version);
	return 0;
}

static void
file_close(struct kw_keystore *ks)
{
	struct filestore *f = ks->priv;

	kw_provider_close(f->provider);
	kw_sealed_cache_free(f->cache);
	sodium_free(f->dek);
	close(f->dfd);
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

/* A fresh DIR stream over the directory fd (its own offset). */
static DIR *
open_stream(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

	if (!d && fd >= 0)
		close(fd);
	return d;
}

/* True when the keystore has a key directory (a sealed value may be inside). */
static bool
holds_keys(int dfd)
{
	DIR *d = open_stream(dfd);
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
	const char *name = "datakey.wrapped";
	char why[384];
	unsigned char *blob = NULL;
	size_t len = 0;
	_cleanup_close_ int fd = kw_open_private(f->dfd, name, O_RDONLY, 0, why, sizeof(why));
	int r;

	if (fd == KW_ERR_NOT_FOUND && holds_keys(f->dfd)) {
		/* A new data key would turn every stored key into an integrity error. */
		snprintf(err, err_len, "%s/%s is missing, but the keystore holds sealed keys; restore "
		    "it from a backup", f->dir, name);
		return KW_ERR_IO;
	}
	if (fd == KW_ERR_NOT_FOUND) {
		if ((r = f->provider->ops->new_dek(f->provider, f->dek, &blob, &len)) < 0) {
			snprintf(err, err_len, "keystore: the %s provider could not make a data key",
			    f->provider->ops->name);
			return r;
		}
		r = kw_write_atomic_at(f->dfd, name, blob, len, 0600) < 0 ? KW_ERR_IO : 0;
		if (r < 0)
			snprintf(err, err_len, "%s/%s: %s", f->dir, name, strerror(errno));
		free(blob);
		return r;
	}
	if (fd < 0) {
		snprintf(err, err_len, "%s/%s: %s", f->dir, name, why);
		return fd;
	}
	if ((r = kw_read_fd(fd, SEALED_MAX, (char **)&blob, &len)) < 0) {
		snprintf(err, err_len, "%s/%s: cannot be read", f->dir, name);
		return r == KW_ERR_NOMEM ? r : KW_ERR_IO;
	}
	r = f->provider->ops->unwrap(f->provider, blob, len, f->dek);
	free(blob);
	if (r < 0)
		snprintf(err, err_len, "%s/%s: the %s provider could not unwrap the data key; its "
		    "reason is logged just before this", f->dir, name, f->provider->ops->name);
	return r;
}

/*
 * Temporary files of writes a crash cut short hold only ciphertext, but
 * they pile up: remove them at start, before anything writes.
 */
static void
remove_leftovers(const struct filestore *f)
{
	DIR *top = open_stream(f->dfd), *sub;
	struct dirent *k, *e;
	struct stat st;
	int kfd;

	if (!top)
		return;
	while ((k = readdir(top))) {
		/* Key directories (and links in their place, which key_dir names): not files. */
		if (k->d_name[0] == '.' || !kw_name_ok(KW_NAME_KEY, k->d_name) ||
		    fstatat(f->dfd, k->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !(S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode)))
			continue;
		if ((kfd = key_dir(f, k->d_name, false)) < 0)
			continue;
		if (!(sub = fdopendir(kfd))) {
			close(kfd);
			continue;
		}
		while ((e = readdir(sub)))
			if (strstr(e->d_name, ".sealed.tmp."))
				(void)unlinkat(kfd, e->d_name, 0);
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
	_cleanup_close_ int ddfd = -1;
	char why[384];
	int r = KW_ERR_NOMEM;

	if (!ks || !f || !(f->dek = sodium_malloc(KW_DEK_LEN)) ||
	    !(f->cache = kw_sealed_cache_new()))
		goto fail;
	f->dfd = -1;
	snprintf(f->dir, sizeof(f->dir), "%s/keystore", data_dir);
	/* The data directory's trust is the broker's to check (main.c); keystore/ is ours. */
	if ((ddfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, err_len, "%s: %s", data_dir, strerror(errno));
		r = KW_ERR_IO;
		goto fail;
	}
	if ((f->dfd = kw_open_dir_private(ddfd, "keystore", 0700, why, sizeof(why))) < 0) {
		snprintf(err, err_len, "%s: %s", f->dir, why);
		r = f->dfd == KW_ERR_NOT_FOUND ? KW_ERR_IO : f->dfd;
		goto fail;
	}
	if ((r = kw_provider_open(cfg, data_dir, &f->provider, err, err_len)) < 0 ||
	    (r = load_dek(f, err, err_len)) < 0)
		goto fail;
	remove_leftovers(f);
	sodium_mprotect_readonly(f->dek);
	ks->ops = &file_ops;
	ks->priv = f;
	*ret_ks = ks;
	return 0;
 fail:
	if (f) {
		kw_provider_close(f->provider);
		kw_sealed_cache_free(f->cache);
		sodium_free(f->dek);
		if (f->dfd >= 0)
			close(f->dfd);
	}
	free(f);
	free(ks);
	return r;
}
