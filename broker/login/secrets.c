/*
 * secrets.c - the broker secret under the master-key provider, and the
 * subkeys derived from it (see secrets.h).
 *
 * dataDir/broker-secret.wrapped holds exactly the blob the provider's
 * new_dek or wrap returned, as keystore/datakey.wrapped does for the data
 * key; the provider's own magic says which provider made it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/login/secrets.h"
#include "common/errors.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "keystore/providers/provider.h"

#define SECRET_LEN	crypto_kdf_KEYBYTES
#define BLOB_MAX	8192	/* a KMS CiphertextBlob is at most 6 KiB */
#define LEGACY_MAX	4096	/* overwritten before removal up to this size */
/* crypto_kdf contexts are exactly 8 bytes. */
#define KDF_CONTEXT	"kwbroker"

_Static_assert(SECRET_LEN == KW_DEK_LEN, "providers wrap keys of the secret's size");

struct files {
	char dir[4096];
	int dfd;		/* dir, opened once: every file is opened under it */
	char wrapped[4200];	/* paths, for messages */
	char legacy[4200];
};

/* The wrapped file's bytes (malloc'd); KW_ERR_NOT_FOUND when there is none. */
static int
read_blob(const struct files *f, unsigned char **ret_blob, size_t *ret_len, char *err,
    size_t err_len)
{
	const char *path = f->wrapped;
	char why[384], *data = NULL;
	_cleanup_close_ int fd = kw_open_private(f->dfd, KW_SECRETS_WRAPPED, O_RDONLY, 0, why,
	    sizeof(why));
	int r;

	if (fd == KW_ERR_NOT_FOUND)
		return fd;
	if (fd < 0) {
		snprintf(err, err_len, "%s: %s", path, why);
		return fd;
	}
	if ((r = kw_read_fd(fd, BLOB_MAX, &data, ret_len)) < 0) {
		snprintf(err, err_len, "%s: %s", path, r == KW_ERR_INVALID ?
		    "larger than any wrapped key" : r == KW_ERR_NOMEM ? "out of memory" :
		    strerror(errno));
		return r == KW_ERR_NOMEM ? r : KW_ERR_IO;
	}
	*ret_blob = (unsigned char *)data;
	return 0;
}

/*
 * Overwrite master.key with zeros, then unlink it, each step made durable:
 * the plaintext secret of earlier versions goes, as far as an overwrite
 * reaches on this file system.  A failure is logged, not returned: the
 * broker can run, but an admin must remove the file.
 */
static void
remove_legacy(const struct files *f)
{
	static const unsigned char zeros[LEGACY_MAX];
	char why[384];
	_cleanup_close_ int fd = kw_open_private(f->dfd, KW_SECRETS_LEGACY, O_WRONLY, 0, why,
	    sizeof(why));
	struct stat st;

	if (fd == KW_ERR_NOT_FOUND)
		return;
	/* A link, another user's file, one we may not write: unlinked without the overwrite. */
	if (fd == KW_ERR_IO && errno != EACCES)
		goto fail;
	if (fd >= 0 && (fstat(fd, &st) < 0 || (st.st_size <= LEGACY_MAX &&
	    (kw_write_all(fd, zeros, (size_t)st.st_size) < 0 || fsync(fd) < 0))))
		goto fail;
	if (unlinkat(f->dfd, KW_SECRETS_LEGACY, 0) < 0 && errno != ENOENT)
		goto fail;
	/* The unlink is durable only once the directory is. */
	if (fsync(f->dfd) < 0)
		goto fail;
	kw_log_info("%s: removed; the broker secret is kept only in %s", f->legacy,
	    KW_SECRETS_WRAPPED);
	return;
 fail:
	kw_log_error("%s: cannot be removed (%s); it holds the broker secret in plaintext, "
	    "which %s now holds wrapped: remove it by hand", f->legacy, strerror(errno),
	    KW_SECRETS_WRAPPED);
}

/* The secret from the wrapped file; KW_ERR_NOT_FOUND when there is none. */
static int
unwrap_secret(struct kw_provider *p, const struct files *f, unsigned char *secret, char *err,
    size_t err_len)
{
	unsigned char *blob = NULL;
	size_t len = 0;
	int r;

	if ((r = read_blob(f, &blob, &len, err, err_len)) < 0)
		return r;
	r = p->ops->unwrap(p, blob, len, secret);
	free(blob);
	if (r < 0)
		snprintf(err, err_len, "%s: the %s provider could not unwrap the broker secret "
		    "(the reason is logged just before this); start with the "
		    "security.encryption.atRest settings and master key it was wrapped under, "
		    "or restore the file from a backup", f->wrapped, p->ops->name);
	return r;
}

/*
 * Put the secret read from master.key under the provider, bytes unchanged.
 * The blob is unwrapped and compared before it is written, and written
 * durably before master.key goes: a crash at any point leaves a store that
 * opens (master.key alone, or the wrapped file with or without it).
 */
static int
migrate(struct kw_provider *p, const struct files *f, const unsigned char *secret, char *err,
    size_t err_len)
{
	unsigned char *blob = NULL, *check = sodium_malloc(SECRET_LEN);
	size_t len = 0;
	int r = KW_ERR_NOMEM;

	if (!check) {
		snprintf(err, err_len, "broker secret: out of memory");
		goto out;
	}
	if ((r = p->ops->wrap(p, secret, &blob, &len)) < 0) {
		snprintf(err, err_len, "%s: the %s provider could not wrap the broker secret it "
		    "holds (the reason is logged just before this); the file is left as it was",
		    f->legacy, p->ops->name);
		goto out;
	}
	if (p->ops->unwrap(p, blob, len, check) < 0 ||
	    sodium_memcmp(check, secret, SECRET_LEN) != 0) {
		snprintf(err, err_len, "%s: the %s provider does not give back the broker secret "
		    "it wrapped; the file is left as it was", f->legacy, p->ops->name);
		r = KW_ERR_IO;
		goto out;
	}
	if (kw_write_atomic_at(f->dfd, KW_SECRETS_WRAPPED, blob, len, 0600) < 0) {
		snprintf(err, err_len, "%s: %s", f->wrapped, strerror(errno));
		r = KW_ERR_IO;
		goto out;
	}
	kw_log_info("%s: the broker secret is now wrapped by the %s provider in %s", f->legacy,
	    p->ops->name, KW_SECRETS_WRAPPED);
	remove_legacy(f);
	r = 0;
 out:
	free(blob);
	sodium_free(check);
	return r;
}

/* A new secret from the provider, saved wrapped. */
static int
create(struct kw_provider *p, const struct files *f, unsigned char *secret, char *err,
    size_t err_len)
{
	unsigned char *blob = NULL;
	size_t len = 0;
	int r;

	if ((r = p->ops->new_dek(p, secret, &blob, &len)) < 0) {
		snprintf(err, err_len, "%s: the %s provider could not make the broker secret "
		    "(the reason is logged just before this)", f->wrapped, p->ops->name);
		return r;
	}
	r = 0;
	if (kw_write_atomic_at(f->dfd, KW_SECRETS_WRAPPED, blob, len, 0600) < 0) {
		snprintf(err, err_len, "%s: %s", f->wrapped, strerror(errno));
		r = KW_ERR_IO;
	}
	free(blob);
	return r;
}

static int
load_secret(struct kw_provider *p, const struct files *f, bool must_exist,
    unsigned char *secret, char *err, size_t err_len)
{
	char why[384];
	int r = unwrap_secret(p, f, secret, err, err_len);

	if (r == 0) {
		/* A master.key beside it is left by a migration cut short. */
		remove_legacy(f);
		return 0;
	}
	if (r != KW_ERR_NOT_FOUND)
		return r;
	if ((r = kw_read_key_file(f->dfd, KW_SECRETS_LEGACY, secret, SECRET_LEN, why,
	    sizeof(why))) == 0)
		return migrate(p, f, secret, err, err_len);
	if (r != KW_ERR_NOT_FOUND) {
		snprintf(err, err_len, "%s: %s", f->legacy, why);
		return r;
	}
	if (must_exist) {
		snprintf(err, err_len, "%s is missing (and there is no %s to take the secret "
		    "from), but state.db holds second factors sealed under the broker secret; "
		    "restore it from a backup, with the security.encryption.atRest settings it "
		    "was wrapped under (a new secret would lock every user out)", f->wrapped,
		    KW_SECRETS_LEGACY);
		return KW_ERR_IO;
	}
	return create(p, f, secret, err, err_len);
}

static int
file_names(const char *dir, struct files *f, char *err, size_t err_len)
{
	if ((size_t)snprintf(f->dir, sizeof(f->dir), "%s", dir) >= sizeof(f->dir)) {
		snprintf(err, err_len, "broker.dataDir: path too long");
		return KW_ERR_CONFIG;
	}
	snprintf(f->wrapped, sizeof(f->wrapped), "%s/" KW_SECRETS_WRAPPED, dir);
	snprintf(f->legacy, sizeof(f->legacy), "%s/" KW_SECRETS_LEGACY, dir);
	/* The directory's trust is the broker's to check (main.c); its files are ours. */
	if ((f->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, err_len, "%s: %s", dir, strerror(errno));
		return KW_ERR_IO;
	}
	return 0;
}

int
kw_secrets_open(const struct kw_config *cfg, const char *dir, bool must_exist,
    struct kw_secrets **ret_secrets, char *err, size_t err_len)
{
	struct kw_provider *provider = NULL;
	unsigned char *secret = sodium_malloc(SECRET_LEN);
	struct kw_secrets *s = sodium_malloc(sizeof(*s));
	struct files f = { .dfd = -1 };
	int r = KW_ERR_NOMEM;

	if (!secret || !s) {
		snprintf(err, err_len, "broker secret: out of memory");
		goto out;
	}
	if ((r = file_names(dir, &f, err, err_len)) < 0 ||
	    (r = kw_provider_open(cfg, f.dir, &provider, err, err_len)) < 0 ||
	    (r = load_secret(provider, &f, must_exist, secret, err, err_len)) < 0)
		goto out;
	/* One subkey per purpose: a leak of one use's key says nothing of another's. */
	crypto_kdf_derive_from_key(s->totp_key, sizeof(s->totp_key), 1, KDF_CONTEXT, secret);
	crypto_kdf_derive_from_key(s->recovery_key, sizeof(s->recovery_key), 2, KDF_CONTEXT, secret);
	crypto_kdf_derive_from_key(s->session_key, sizeof(s->session_key), 3, KDF_CONTEXT, secret);
	crypto_kdf_derive_from_key(s->audit_seed, sizeof(s->audit_seed), 4, KDF_CONTEXT, secret);
	sodium_mprotect_readonly(s);
	*ret_secrets = TAKE_PTR(s);
	r = 0;
 out:
	if (f.dfd >= 0)
		close(f.dfd);
	kw_provider_close(provider);
	sodium_free(secret);	/* wipes */
	kw_secrets_free(s);
	return r;
}

void
kw_secrets_free(struct kw_secrets *s)
{
	/* sodium_free wipes before it unmaps. */
	if (s)
		sodium_free(s);
}
