/*
 * test_secrets.c - the broker secret (broker/login/secrets.h): made by the
 * master-key provider and kept only wrapped (dataDir/broker-secret.wrapped),
 * the master.key of earlier versions moved under the provider with its
 * bytes unchanged, and the refusals that keep a store from being replaced
 * by a new secret.
 *
 * The provider is the default one, local (its key file in
 * dataDir/provider.key); the wrap and unwrap of every provider have
 * their own tests in test_providers.c.  Each test works in a mkdtemp
 * directory of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "broker/login/secrets.h"
#include "client/keywarden.h"
#include "common/config.h"
#include "common/log.h"
#include "keystore/providers/provider.h"

#define SECRET_LEN 32
/* "LOC1" | IV 12 | secret 32 | tag 16 */
#define LOCAL_BLOB_LEN (4 + 12 + 32 + 16)

struct fx {
	char dir[64];
	char wrapped[128], legacy[128], kek[128];
	struct kw_config *cfg;
	unsigned char known[SECRET_LEN];	/* the bytes of a master.key the test writes */
};

/* ---- helpers ----------------------------------------------------------- */

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static struct kw_config *
config(const char *json)
{
	struct kw_config *cfg = NULL;
	char err[256] = "";

	if (kw_config_parse(json, strlen(json), &cfg, err, sizeof(err)) != 0)
		fail_msg("config %s: %s", json, err);
	return cfg;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/kw-test-secrets.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->wrapped, sizeof(f->wrapped), "%s/broker-secret.wrapped", f->dir);
	snprintf(f->legacy, sizeof(f->legacy), "%s/master.key", f->dir);
	snprintf(f->kek, sizeof(f->kek), "%s/provider.key", f->dir);
	f->cfg = config("{}");
	randombytes_buf(f->known, sizeof(f->known));
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	kw_config_free(f->cfg);
	(void)nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static int
group_setup(void **state)
{
	/* The refusals log their providers' reasons; the tests check codes and err. */
	kw_log_init("test_secrets", KW_LOG_STDERR, LOG_CRIT);
	return sodium_init() < 0 ? -1 : 0;
}

static struct kw_secrets *
must_open(struct fx *f, bool must_exist)
{
	struct kw_secrets *s = NULL;
	char err[512] = "";

	if (kw_secrets_open(f->cfg, f->dir, must_exist, &s, err, sizeof(err)) != 0)
		fail_msg("kw_secrets_open(%s): %s", f->dir, err);
	assert_non_null(s);
	return s;
}

/* kw_secrets_open must fail with code; err is checked for each text and for the secret. */
static void
refused(struct fx *f, bool must_exist, int code, const char *text1, const char *text2)
{
	struct kw_secrets *s = NULL;
	char err[512] = "", hex[2 * SECRET_LEN + 1];
	int r = kw_secrets_open(f->cfg, f->dir, must_exist, &s, err, sizeof(err));

	if (r != code)
		fail_msg("kw_secrets_open = %d, want %d (%s)", r, code, err);
	assert_null(s);
	if (text1 && !strstr(err, text1))
		fail_msg("\"%s\" not in \"%s\"", text1, err);
	if (text2 && !strstr(err, text2))
		fail_msg("\"%s\" not in \"%s\"", text2, err);
	/* The message never carries the secret, raw or in hex. */
	sodium_bin2hex(hex, sizeof(hex), f->known, sizeof(f->known));
	assert_null(memmem(err, strlen(err), f->known, 8));
	assert_null(strstr(err, hex));
}

static bool
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static void
spit(const char *path, const unsigned char *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	if (len)
		assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

static unsigned char *
slurp(const char *path, size_t *ret_len)
{
	FILE *fp = fopen(path, "rb");
	unsigned char *buf = malloc(65536);
	size_t n;

	assert_non_null(fp);
	assert_non_null(buf);
	n = fread(buf, 1, 65536, fp);
	fclose(fp);
	*ret_len = n;
	return buf;
}

/* An earlier version's data directory: master.key holding f->known. */
static void
write_legacy(struct fx *f)
{
	spit(f->legacy, f->known, sizeof(f->known), 0600);
}

/* The subkeys an earlier version derived from master.key's bytes. */
static void
assert_keys_of(const struct kw_secrets *s, const unsigned char secret[SECRET_LEN])
{
	unsigned char k[32];

	crypto_kdf_derive_from_key(k, sizeof(s->totp_key), 1, "kwbroker", secret);
	assert_memory_equal(s->totp_key, k, sizeof(s->totp_key));
	crypto_kdf_derive_from_key(k, sizeof(s->recovery_key), 2, "kwbroker", secret);
	assert_memory_equal(s->recovery_key, k, sizeof(s->recovery_key));
	crypto_kdf_derive_from_key(k, sizeof(s->session_key), 3, "kwbroker", secret);
	assert_memory_equal(s->session_key, k, sizeof(s->session_key));
}

static void
assert_same_keys(const struct kw_secrets *a, const struct kw_secrets *b)
{
	assert_memory_equal(a->totp_key, b->totp_key, sizeof(a->totp_key));
	assert_memory_equal(a->recovery_key, b->recovery_key, sizeof(a->recovery_key));
	assert_memory_equal(a->session_key, b->session_key, sizeof(a->session_key));
}

/* What the wrapped file opens to under the directory's local provider. */
static void
unwrap_file(struct fx *f, unsigned char out[SECRET_LEN])
{
	struct kw_provider *p = NULL;
	char err[256] = "";
	unsigned char *blob;
	size_t len;

	assert_int_equal(kw_provider_open(f->cfg, f->dir, &p, err, sizeof(err)), 0);
	blob = slurp(f->wrapped, &len);
	assert_int_equal(p->ops->unwrap(p, blob, len, out), 0);
	free(blob);
	kw_provider_close(p);
}

/* ---- a new store --------------------------------------------------------- */

static void
test_new_secret_is_kept_only_wrapped(void **state)
{
	struct fx *f = *state;
	struct kw_secrets *s;
	unsigned char *blob, secret[SECRET_LEN];
	struct stat st;
	size_t len, i;
	mode_t old = umask(0);	/* the broker's umask must not widen the file */

	s = must_open(f, false);
	umask(old);
	assert_int_equal(lstat(f->wrapped, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, geteuid());
	blob = slurp(f->wrapped, &len);
	assert_int_equal(len, LOCAL_BLOB_LEN);
	assert_memory_equal(blob, "LOC1", 4);
	/* No plaintext secret in dataDir: only the local provider's key file, provider.key. */
	assert_false(exists(f->legacy));
	assert_int_equal(stat(f->kek, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	/* The file holds the secret the subkeys come from, and not in the clear. */
	unwrap_file(f, secret);
	assert_keys_of(s, secret);
	for (i = 0; i + 8 <= SECRET_LEN; i++)
		assert_null(memmem(blob, len, secret + i, 8));
	free(blob);
	kw_secrets_free(s);
}

static void
test_reopening_gives_the_same_keys(void **state)
{
	struct fx *f = *state;
	struct kw_secrets *a, *b, *c;
	unsigned char *blob, *blob2;
	size_t len, len2;
	char dir2[128], err[512] = "";

	a = must_open(f, false);
	blob = slurp(f->wrapped, &len);
	b = must_open(f, true);
	assert_same_keys(a, b);
	/* Opening does not rewrap. */
	blob2 = slurp(f->wrapped, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(blob, blob2, len);
	/* The subkeys differ from one another. */
	assert_memory_not_equal(a->recovery_key, a->session_key, sizeof(a->session_key));
	assert_memory_not_equal(a->totp_key, a->session_key, sizeof(a->session_key));
	/* A new directory gets a new secret. */
	snprintf(dir2, sizeof(dir2), "%s/other", f->dir);
	assert_int_equal(mkdir(dir2, 0700), 0);
	if (kw_secrets_open(f->cfg, dir2, false, &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_memory_not_equal(a->totp_key, c->totp_key, sizeof(a->totp_key));
	assert_memory_not_equal(a->session_key, c->session_key, sizeof(a->session_key));
	free(blob);
	free(blob2);
	kw_secrets_free(a);
	kw_secrets_free(b);
	kw_secrets_free(c);
}

/* ---- the master.key of earlier versions ------------------------------------ */

static void
test_master_key_is_moved_under_the_provider(void **state)
{
	struct fx *f = *state;
	struct kw_secrets *s, *again;
	unsigned char secret[SECRET_LEN], *blob;
	size_t len;

	write_legacy(f);
	/* must_exist: state.db holds seeds sealed under master.key. */
	s = must_open(f, true);
	/* The same bytes: seeds, recovery-code and session-token hashes stay valid. */
	assert_keys_of(s, f->known);
	assert_false(exists(f->legacy));
	unwrap_file(f, secret);
	assert_memory_equal(secret, f->known, SECRET_LEN);
	blob = slurp(f->wrapped, &len);
	assert_int_equal(len, LOCAL_BLOB_LEN);
	assert_null(memmem(blob, len, f->known, 8));
	free(blob);
	/* The next start unwraps it. */
	again = must_open(f, true);
	assert_same_keys(s, again);
	kw_secrets_free(s);
	kw_secrets_free(again);
}

/*
 * A crash after the wrapped file was written leaves master.key beside it,
 * whole or partly overwritten: the wrapped file wins, master.key goes.
 */
static void
test_migration_cut_short_is_finished(void **state)
{
	struct fx *f = *state;
	static const unsigned char zeros[SECRET_LEN];
	struct kw_secrets *s;

	write_legacy(f);
	kw_secrets_free(must_open(f, true));
	/* Whole. */
	write_legacy(f);
	s = must_open(f, true);
	assert_keys_of(s, f->known);
	assert_false(exists(f->legacy));
	kw_secrets_free(s);
	/* Overwritten with zeros, not yet unlinked. */
	spit(f->legacy, zeros, sizeof(zeros), 0600);
	s = must_open(f, true);
	assert_keys_of(s, f->known);
	assert_false(exists(f->legacy));
	kw_secrets_free(s);
	/* Cut to a few bytes. */
	spit(f->legacy, zeros, 5, 0600);
	s = must_open(f, true);
	assert_keys_of(s, f->known);
	assert_false(exists(f->legacy));
	kw_secrets_free(s);
}

/* want: KW_ERR_IO for a malformed file, KW_ERR_CONFIG for one that is not trusted. */
static void
expect_legacy_refused(struct fx *f, const char *what, int want)
{
	struct kw_secrets *s = NULL;
	char err[512] = "";
	int r = kw_secrets_open(f->cfg, f->dir, false, &s, err, sizeof(err));

	if (r != want)
		fail_msg("%s: master.key gave %d, want %d (%s)", what, r, want, err);
	assert_null(s);
	assert_non_null(strstr(err, "master.key"));
	/* Neither replaced by a new secret nor moved. */
	assert_false(exists(f->wrapped));
	assert_true(exists(f->legacy));
}

static void
write_key(struct fx *f, size_t len, mode_t mode)
{
	unsigned char buf[64];

	memset(buf, 0x42, sizeof(buf));
	unlink(f->legacy);
	spit(f->legacy, buf, len, mode);
}

static void
test_bad_master_key_files_are_refused(void **state)
{
	struct fx *f = *state;
	char link[128];

	write_key(f, 32, 0644);
	expect_legacy_refused(f, "0644", KW_ERR_IO);
	write_key(f, 32, 0640);
	expect_legacy_refused(f, "0640", KW_ERR_IO);
	write_key(f, 32, 0604);
	expect_legacy_refused(f, "0604", KW_ERR_IO);
	write_key(f, 31, 0600);
	expect_legacy_refused(f, "31 bytes", KW_ERR_IO);
	write_key(f, 33, 0600);
	expect_legacy_refused(f, "33 bytes", KW_ERR_IO);
	write_key(f, 0, 0600);
	expect_legacy_refused(f, "empty", KW_ERR_IO);
	/* A directory, a symlink or another user's file in its place is not trusted. */
	unlink(f->legacy);
	assert_int_equal(mkdir(f->legacy, 0700), 0);
	expect_legacy_refused(f, "directory", KW_ERR_CONFIG);
	rmdir(f->legacy);
	snprintf(link, sizeof(link), "%s/real.key", f->dir);
	spit(link, f->known, SECRET_LEN, 0600);
	assert_int_equal(symlink(link, f->legacy), 0);
	expect_legacy_refused(f, "symlink", KW_ERR_CONFIG);
	unlink(f->legacy);
	if (geteuid() == 0) {
		write_legacy(f);
		assert_int_equal(chown(f->legacy, 2001, 2001), 0);
		expect_legacy_refused(f, "another user's", KW_ERR_CONFIG);
		unlink(f->legacy);
	}
	/* The well-formed one is moved. */
	write_legacy(f);
	kw_secrets_free(must_open(f, false));
	assert_false(exists(f->legacy));
}

/* A provider that cannot be opened leaves master.key as it was. */
static void
test_master_key_kept_when_the_provider_fails(void **state)
{
	struct fx *f = *state;
	unsigned char *data;
	size_t len;

	write_legacy(f);
	kw_config_free(f->cfg);
	f->cfg = config("{\"security\": {\"encryption\": {\"atRest\": {\"keySource\": \"pkcs11\", "
	    "\"kmsKeyId\": \"pkcs11:token=none;object=kek\"}}}}");
	refused(f, true, KW_ERR_CONFIG, "module-path", NULL);
	assert_false(exists(f->wrapped));
	data = slurp(f->legacy, &len);
	assert_int_equal(len, SECRET_LEN);
	assert_memory_equal(data, f->known, SECRET_LEN);
	free(data);
}

/* ---- refusals ---------------------------------------------------------------- */

static void
test_missing_secret_not_remade_when_it_must_exist(void **state)
{
	struct fx *f = *state;
	struct kw_secrets *s;

	refused(f, true, KW_ERR_IO, "broker-secret.wrapped is missing", "restore it");
	assert_false(exists(f->wrapped));	/* nothing was made */
	assert_false(exists(f->legacy));
	/* A new store (nothing sealed yet) gets one. */
	s = must_open(f, false);
	kw_secrets_free(s);
	kw_secrets_free(must_open(f, true));
	/* Gone after that: refused again, the lost secret not replaced. */
	assert_int_equal(unlink(f->wrapped), 0);
	refused(f, true, KW_ERR_IO, "broker-secret.wrapped is missing", "restore it");
	assert_false(exists(f->wrapped));
}

static void
test_secret_that_does_not_unwrap_is_refused(void **state)
{
	struct fx *f = *state;
	unsigned char *blob, *bad, kek[32];
	const size_t offsets[] = { 0, 4, 20, 40, 63 };
	char pass[128], json[512];
	size_t len, i;

	write_legacy(f);
	kw_secrets_free(must_open(f, true));
	blob = slurp(f->wrapped, &len);
	assert_non_null(bad = malloc(len));
	/* Changed anywhere: refused, and the file is left for a restore. */
	for (i = 0; i < KW_ELEMENTSOF(offsets); i++) {
		memcpy(bad, blob, len);
		bad[offsets[i]] ^= 0x10;
		spit(f->wrapped, bad, len, 0600);
		refused(f, true, KW_ERR_IO, "broker-secret.wrapped: the local provider could not "
		    "unwrap", "restore the file");
		free(slurp(f->wrapped, &len));
	}
	spit(f->wrapped, blob, len - 1, 0600);
	refused(f, true, KW_ERR_IO, "could not unwrap", NULL);
	spit(f->wrapped, blob, 0, 0600);
	refused(f, false, KW_ERR_IO, "could not unwrap", NULL);

	/* Another local key file. */
	spit(f->wrapped, blob, len, 0600);
	randombytes_buf(kek, sizeof(kek));
	unlink(f->kek);
	spit(f->kek, kek, sizeof(kek), 0600);
	refused(f, true, KW_ERR_IO, "could not unwrap", NULL);
	/* Another provider, which cannot read the local provider's blob. */
	snprintf(pass, sizeof(pass), "%s/pass", f->dir);
	spit(pass, (const unsigned char *)"a passphrase\n", 13, 0600);
	snprintf(json, sizeof(json), "{\"security\": {\"encryption\": {\"atRest\": {"
	    "\"keySource\": \"passphrase\", \"passphraseFile\": \"%s\"}}}}", pass);
	kw_config_free(f->cfg);
	f->cfg = config(json);
	refused(f, true, KW_ERR_IO, "the passphrase provider could not unwrap", NULL);
	/* A master.key beside a file that does not unwrap is not taken instead. */
	write_legacy(f);
	refused(f, true, KW_ERR_IO, "could not unwrap", NULL);
	assert_true(exists(f->legacy));
	free(blob);
	free(bad);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_new_secret_is_kept_only_wrapped, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reopening_gives_the_same_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_master_key_is_moved_under_the_provider, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_migration_cut_short_is_finished, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_master_key_files_are_refused, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_master_key_kept_when_the_provider_fails, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_missing_secret_not_remade_when_it_must_exist,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_secret_that_does_not_unwrap_is_refused, setup,
		    teardown),
	};

	return cmocka_run_group_tests_name("secrets", tests, group_setup, NULL);
}
