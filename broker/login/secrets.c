/*
 * secrets.c - master key and derived subkeys (see secrets.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "client/keywarden.h"
#include "broker/login/secrets.h"

#define MASTER_LEN crypto_kdf_KEYBYTES
/* crypto_kdf contexts are exactly 8 bytes. */
#define KDF_CONTEXT "kwbroker"

static int
read_master(int fd, const char *path, unsigned char *key, char *err, size_t err_len)
{
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) ||
	    st.st_size != MASTER_LEN) {
		snprintf(err, err_len, "%s: must be a %d-byte file of mode 0600", path, MASTER_LEN);
		return KW_ERR_IO;
	}
	n = read(fd, key, MASTER_LEN);
	if (n != MASTER_LEN) {
		snprintf(err, err_len, "%s: %s", path, n < 0 ? strerror(errno) : "short read");
		return KW_ERR_IO;
	}
	return 0;
}

static int
load_or_create(const char *path, bool must_exist, unsigned char *key, char *err, size_t err_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), r;

	if (fd >= 0) {
		r = read_master(fd, path, key, err, err_len);
		close(fd);
		return r;
	}
	if (errno != ENOENT) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return KW_ERR_IO;
	}
	if (must_exist) {
		snprintf(err, err_len, "%s is missing, but state.db holds second factors sealed "
		    "under it; restore it from a backup (a new key would lock every user out)", path);
		return KW_ERR_IO;
	}
	randombytes_buf(key, MASTER_LEN);
	if (kw_write_atomic(path, key, MASTER_LEN, 0600) < 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return KW_ERR_IO;
	}
	return 0;
}

int
kw_secrets_open(const char *dir, bool must_exist, struct kw_secrets **ret_secrets, char *err,
    size_t err_len)
{
	unsigned char *master = sodium_malloc(MASTER_LEN);
	struct kw_secrets *s = sodium_malloc(sizeof(*s));
	char path[4096];
	int r = KW_ERR_NOMEM;

	if (!master || !s)
		goto out;
	snprintf(path, sizeof(path), "%s/master.key", dir);
	if ((r = load_or_create(path, must_exist, master, err, err_len)) < 0)
		goto out;
	/* One subkey per purpose: a leak of one use's key says nothing of another's. */
	crypto_kdf_derive_from_key(s->totp_key, sizeof(s->totp_key), 1, KDF_CONTEXT, master);
	crypto_kdf_derive_from_key(s->recovery_key, sizeof(s->recovery_key), 2, KDF_CONTEXT, master);
	crypto_kdf_derive_from_key(s->session_key, sizeof(s->session_key), 3, KDF_CONTEXT, master);
	crypto_kdf_derive_from_key(s->audit_seed, sizeof(s->audit_seed), 4, KDF_CONTEXT, master);
	sodium_mprotect_readonly(s);
	*ret_secrets = TAKE_PTR(s);
	r = 0;
 out:
	sodium_free(master);
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
