/*
 * provider_passphrase.c - a master key derived from a passphrase: Argon2id
 * (crypto_pwhash, OPSLIMIT/MEMLIMIT_MODERATE) over the passphrase and a
 * random salt gives the KEK, which wraps the DEK with XChaCha20-Poly1305.
 *
 * The passphrase comes from security.encryption.atRest.passphraseFile or,
 * when that is empty, the systemd credential keywarden-passphrase
 * ($CREDENTIALS_DIRECTORY/keywarden-passphrase, LoadCredential=).  It is
 * read once at open and kept in guarded memory for the provider's lifetime.
 *
 * Blob: "PWH1" | salt (16) | nonce (24) | ciphertext (32) | tag (16); the
 * magic and salt are authenticated as associated data.  A derivation costs
 * ~0.7 s and 256 MiB, so the KEK of the last salt seen is kept: the broker
 * unwraps the same blob at every start and never derives twice for it.
 * Between calls the whole state is mprotect'ed PROT_NONE.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/log.h"
#include "keystore/providers/provider.h"

#define MAGIC		"PWH1"
#define MAGIC_LEN	4
#define SALT_LEN	crypto_pwhash_SALTBYTES
#define NONCE_LEN	crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN		crypto_aead_xchacha20poly1305_ietf_ABYTES
#define KEK_LEN		crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define AD_LEN		(MAGIC_LEN + SALT_LEN)
#define BLOB_LEN	(AD_LEN + NONCE_LEN + KW_DEK_LEN + TAG_LEN)
#define PASSPHRASE_MAX	1024
#define CREDENTIAL	"keywarden-passphrase"
#define BAD_BLOB	"wrong passphrase or damaged data key"

/* All of it in one sodium_malloc'd block: guarded, locked, wiped when freed. */
struct pw {
	unsigned char pass[PASSPHRASE_MAX + 1];
	size_t pass_len;
	bool have_kek;
	unsigned char salt[SALT_LEN];	/* the salt kek belongs to */
	unsigned char kek[KEK_LEN];
};

/* The KEK for salt into pw->kek, derived only when the cached one is for another salt. */
static int
kek_for_salt(struct pw *pw, const unsigned char salt[SALT_LEN])
{
	if (pw->have_kek && sodium_memcmp(pw->salt, salt, SALT_LEN) == 0)
		return 0;
	pw->have_kek = false;
	if (crypto_pwhash(pw->kek, KEK_LEN, (const char *)pw->pass, pw->pass_len, salt,
	    crypto_pwhash_OPSLIMIT_MODERATE, crypto_pwhash_MEMLIMIT_MODERATE,
	    crypto_pwhash_ALG_ARGON2ID13) != 0) {
		sodium_memzero(pw->kek, KEK_LEN);
		kw_log_error("passphrase provider: Argon2id needs %zu MiB of memory, which "
		    "it could not get", (size_t)crypto_pwhash_MEMLIMIT_MODERATE >> 20);
		return KW_ERR_NOMEM;
	}
	memcpy(pw->salt, salt, SALT_LEN);
	pw->have_kek = true;
	return 0;
}

static int
pw_wrap(struct kw_provider *p, const unsigned char *dek, unsigned char **ret_blob,
    size_t *ret_len)
{
	struct pw *pw = p->priv;
	unsigned char *blob = malloc(BLOB_LEN);
	int r = KW_ERR_NOMEM;

	if (!blob)
		return r;
	sodium_mprotect_readwrite(pw);
	memcpy(blob, MAGIC, MAGIC_LEN);
	randombytes_buf(blob + MAGIC_LEN, SALT_LEN);
	randombytes_buf(blob + AD_LEN, NONCE_LEN);
	if ((r = kek_for_salt(pw, blob + MAGIC_LEN)) < 0)
		goto out;
	crypto_aead_xchacha20poly1305_ietf_encrypt(blob + AD_LEN + NONCE_LEN, NULL, dek,
	    KW_DEK_LEN, blob, AD_LEN, NULL, blob + AD_LEN, pw->kek);
	*ret_blob = TAKE_PTR(blob);
	*ret_len = BLOB_LEN;
	r = 0;
 out:
	sodium_mprotect_noaccess(pw);
	free(blob);
	return r;
}

static int
pw_new_dek(struct kw_provider *p, unsigned char *dek, unsigned char **ret_blob, size_t *ret_len)
{
	int r;

	randombytes_buf(dek, KW_DEK_LEN);
	if ((r = pw_wrap(p, dek, ret_blob, ret_len)) < 0)
		sodium_memzero(dek, KW_DEK_LEN);
	return r;
}

static int
pw_unwrap(struct kw_provider *p, const unsigned char *blob, size_t len, unsigned char *dek)
{
	struct pw *pw = p->priv;
	int r;

	if (len != BLOB_LEN || memcmp(blob, MAGIC, MAGIC_LEN) != 0) {
		kw_log_error("passphrase provider: %s (not a passphrase-wrapped data key)", BAD_BLOB);
		return KW_ERR_IO;
	}
	sodium_mprotect_readwrite(pw);
	if ((r = kek_for_salt(pw, blob + MAGIC_LEN)) == 0 &&
	    crypto_aead_xchacha20poly1305_ietf_decrypt(dek, NULL, NULL, blob + AD_LEN + NONCE_LEN,
	    KW_DEK_LEN + TAG_LEN, blob, AD_LEN, blob + AD_LEN, pw->kek) != 0) {
		sodium_memzero(dek, KW_DEK_LEN);
		kw_log_error("passphrase provider: %s", BAD_BLOB);
		r = KW_ERR_IO;
	}
	sodium_mprotect_noaccess(pw);
	return r;
}

static void
pw_close(struct kw_provider *p)
{
	if (!p)
		return;
	if (p->priv)
		sodium_free(p->priv);
	free(p);
}

static const struct kw_provider_ops pw_ops = {
	.name = "passphrase",
	.new_dek = pw_new_dek,
	.wrap = pw_wrap,
	.unwrap = pw_unwrap,
	.close = pw_close,
};

/* The passphrase file's path into buf: the setting, else the systemd credential. */
static int
passphrase_path(const struct kw_config *cfg, char *buf, size_t size, char *err, size_t err_len)
{
	const char *file = kw_config_str(cfg, "security.encryption.atRest.passphraseFile");
	const char *creds = secure_getenv("CREDENTIALS_DIRECTORY");

	if (file[0] != '\0') {
		if (file[0] != '/') {
			snprintf(err, err_len, "security.encryption.atRest.passphraseFile: "
			    "expected an absolute path");
			return KW_ERR_CONFIG;
		}
		if ((size_t)snprintf(buf, size, "%s", file) >= size)
			goto too_long;
		return 0;
	}
	if (!creds || creds[0] != '/') {
		snprintf(err, err_len, "security.encryption.atRest.passphraseFile: not set, and no "
		    "systemd credential " CREDENTIAL " ($CREDENTIALS_DIRECTORY is unset)");
		return KW_ERR_CONFIG;
	}
	if ((size_t)snprintf(buf, size, "%s/" CREDENTIAL, creds) < size)
		return 0;
 too_long:
	snprintf(err, err_len, "security.encryption.atRest.passphraseFile: path too long");
	return KW_ERR_CONFIG;
}

/*
 * Read the passphrase into pw.  The file must be private (no access for
 * group or others) and owned by us or root: anyone else who can write it
 * chooses our master key.  One trailing newline is not part of it.
 */
static int
read_passphrase(const char *path, struct pw *pw, char *err, size_t err_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	size_t len = 0;
	ssize_t n;

	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, err_len, "passphrase file %s: %s", path, strerror(errno));
		return KW_ERR_IO;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077) ||
	    (st.st_uid != geteuid() && st.st_uid != 0)) {
		snprintf(err, err_len, "passphrase file %s: must be a regular file owned by this "
		    "user or root, readable by no one else (chmod 600)", path);
		return KW_ERR_CONFIG;
	}
	while (len <= PASSPHRASE_MAX) {
		n = read(fd, pw->pass + len, PASSPHRASE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, err_len, "passphrase file %s: %s", path, strerror(errno));
			return KW_ERR_IO;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > PASSPHRASE_MAX) {
		snprintf(err, err_len, "passphrase file %s: longer than %d bytes", path,
		    PASSPHRASE_MAX);
		return KW_ERR_CONFIG;
	}
	if (len > 0 && pw->pass[len - 1] == '\n')
		len--;
	if (len == 0) {
		snprintf(err, err_len, "passphrase file %s: the passphrase is empty", path);
		return KW_ERR_CONFIG;
	}
	pw->pass_len = len;
	return 0;
}

int
kw_provider_passphrase_open(const struct kw_config *cfg, const char *dir,
    struct kw_provider **ret, char *err, size_t err_len)
{
	struct kw_provider *p = calloc(1, sizeof(*p));
	struct pw *pw = sodium_malloc(sizeof(*pw));
	char path[4096];
	int r = KW_ERR_NOMEM;

	if (!p || !pw) {
		snprintf(err, err_len, "passphrase provider: out of memory");
		goto out;
	}
	sodium_memzero(pw, sizeof(*pw));
	if ((r = passphrase_path(cfg, path, sizeof(path), err, err_len)) < 0 ||
	    (r = read_passphrase(path, pw, err, err_len)) < 0)
		goto out;
	/* Unreadable between calls: a stray read elsewhere in the broker faults instead. */
	sodium_mprotect_noaccess(pw);
	p->ops = &pw_ops;
	p->priv = TAKE_PTR(pw);
	*ret = TAKE_PTR(p);
	r = 0;
 out:
	if (pw)
		sodium_free(pw);
	free(p);
	return r;
}
