/*
 * test_providers.c - the master-key providers (keystore/providers/): the
 * passphrase and pkcs11 providers in depth, and for every provider the
 * wrap operation (a key made elsewhere, wrapped and unwrapped to the same
 * bytes) and its refusal of tampered blobs.
 *
 * The group set-up makes a private SoftHSM2 token (softhsm2-util and
 * pkcs11-tool, as in TESTING.md, with SOFTHSM2_CONF in the group's directory)
 * holding an AES-256 key "kek", PIN files, passphrase files, and one
 * passphrase blob.  An Argon2id derivation costs ~0.7 s and 256 MiB, so the
 * passphrase tests share that blob and count their derivations.  The
 * aws-kms test runs the integration suite's KMS stand-in
 * (tests/integration/kms_server.py, SigV4 checked) on 127.0.0.1; like
 * `make unit`, it runs from the top of the tree.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "common/config.h"
#include "client/keywarden.h"
#include "common/log.h"
#include "keystore/providers/provider.h"
#include "tests/unit/support/fixture.h"

#define SOFTHSM_MODULE	"/usr/lib/softhsm/libsofthsm2.so"
#define TOKEN		"keywarden"
#define USER_PIN	"1234"
#define SO_PIN		"12345678"
#define PASSPHRASE	"correct horse battery staple"
#define KMS_SERVER	"tests/integration/kms_server.py"
#define KMS_ARN		"arn:aws:kms:us-east-1:111122223333:key/TEST"
#define KMS_AKID	"AKIDEXAMPLE0TEST"
#define KMS_SECRET	"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

static struct kw_test_fx *fx;	/* its directory holds everything the tests make */
static char path_buf[8][4200];
/* The blob the group set-up wrapped with PASSPHRASE (file with a newline). */
static unsigned char *pw_blob;
static size_t pw_blob_len;
static unsigned char pw_dek[KW_DEK_LEN];
/* The KMS stand-in while it runs; the group tear-down stops it if a test fails midway. */
static struct kms {
	pid_t pid;
	int port;
	char record[4200];
} kms_server;

/* ---- helpers --------------------------------------------------------------- */

static const char *
in_dir(int slot, const char *name)
{
	snprintf(path_buf[slot], sizeof(path_buf[slot]), "%s/%s", fx->dir, name);
	return path_buf[slot];
}

/* Run argv with stdout and stderr to /dev/null; its exit status, -1 on failure. */
static int
run(char *const argv[])
{
	pid_t pid = fork();
	int status, null;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static struct kw_config *
config(const char *fmt, ...) KW_PRINTF(1, 2);

/* A configuration from an atRest object's JSON members (printf-style). */
static struct kw_config *
config(const char *fmt, ...)
{
	char members[8192], text[9000];
	struct kw_config *cfg = NULL;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(members, sizeof(members), fmt, ap);
	va_end(ap);
	snprintf(text, sizeof(text), "{\"security\": {\"encryption\": {\"atRest\": {%s}}}}",
	    members);
	if (kw_test_config(fx, text, &cfg) != 0)
		fail_msg("config %s refused (why: on stderr)", text);
	return cfg;
}

static struct kw_config *
pw_config(const char *file)
{
	return config("\"keySource\": \"passphrase\", \"passphraseFile\": \"%s\"", file);
}

/* pkcs11: URI for the test token; object_part like "object=kek;type=secret". */
static struct kw_config *
p11_config(const char *object_part, const char *pin_file)
{
	return config("\"keySource\": \"pkcs11\", \"kmsKeyId\": \"pkcs11:token=" TOKEN ";%s"
	    "?module-path=" SOFTHSM_MODULE "&pin-source=file:%s\"", object_part, pin_file);
}

/* Open through kw_provider_open, as the broker does; the code, err filled. */
static int
open_provider(struct kw_config *cfg, struct kw_provider **ret, char *err, size_t err_len)
{
	int r;

	err[0] = '\0';
	r = kw_provider_open(cfg, fx->dir, ret, err, err_len);
	kw_config_free(cfg);
	return r;
}

static struct kw_provider *
must_open(struct kw_config *cfg)
{
	struct kw_provider *p = NULL;
	char err[512];

	if (open_provider(cfg, &p, err, sizeof(err)) != 0)
		fail_msg("provider open: %s", err);
	return p;
}

static bool
contains(const unsigned char *hay, size_t hay_len, const unsigned char *needle, size_t len)
{
	return memmem(hay, hay_len, needle, len) != NULL;
}

/*
 * wrap on p: a key of our own comes back from unwrap byte for byte, the
 * blob holds neither it nor any 8 bytes of it, and a second wrap of the
 * same key is another blob (fresh IV or nonce) that opens to the same key.
 * The first blob is left in *ret_blob for the caller.
 */
static void
wrap_round_trip(struct kw_provider *p, const unsigned char key[KW_DEK_LEN],
    unsigned char **ret_blob, size_t *ret_len)
{
	unsigned char out[KW_DEK_LEN], *blob = NULL, *blob2 = NULL;
	size_t len = 0, len2 = 0, i;

	assert_non_null(p->ops->wrap);
	assert_int_equal(p->ops->wrap(p, key, &blob, &len), 0);
	assert_int_equal(p->ops->wrap(p, key, &blob2, &len2), 0);
	for (i = 0; i + 8 <= KW_DEK_LEN; i++) {
		assert_false(contains(blob, len, key + i, 8));
		assert_false(contains(blob2, len2, key + i, 8));
	}
	assert_true(len != len2 || memcmp(blob, blob2, len) != 0);
	memset(out, 0, sizeof(out));
	assert_int_equal(p->ops->unwrap(p, blob, len, out), 0);
	assert_memory_equal(out, key, KW_DEK_LEN);
	memset(out, 0, sizeof(out));
	assert_int_equal(p->ops->unwrap(p, blob2, len2, out), 0);
	assert_memory_equal(out, key, KW_DEK_LEN);
	free(blob2);
	*ret_blob = blob;
	*ret_len = len;
}

/* Each byte at offsets flipped, and the blob cut or lengthened: unwrap refuses every one. */
static void
tampered_refused(struct kw_provider *p, const unsigned char *blob, size_t len,
    const size_t *offsets, size_t n)
{
	unsigned char out[KW_DEK_LEN], *bad = malloc(len + 1);
	size_t i;

	assert_non_null(bad);
	for (i = 0; i < n; i++) {
		assert_true(offsets[i] < len);
		memcpy(bad, blob, len);
		bad[offsets[i]] ^= 0x04;
		assert_int_equal(p->ops->unwrap(p, bad, len, out), KW_ERR_IO);
	}
	memcpy(bad, blob, len);
	assert_int_equal(p->ops->unwrap(p, bad, len - 1, out), KW_ERR_IO);
	bad[len] = 0;
	assert_int_equal(p->ops->unwrap(p, bad, len + 1, out), KW_ERR_IO);
	free(bad);
}

/* ---- group set-up ------------------------------------------------------------ */

static int
make_token(void)
{
	char conf[4400];
	char *init[] = { "softhsm2-util", "--init-token", "--free", "--label", TOKEN,
		"--so-pin", SO_PIN, "--pin", USER_PIN, NULL };
	char *keygen[] = { "pkcs11-tool", "--module", SOFTHSM_MODULE, "--token-label", TOKEN,
		"--login", "--pin", USER_PIN, "--keygen", "--key-type", "AES:32", "--label", "kek",
		"--id", "01", NULL };
	/* A second key with a label of its own, for the "one key only" check. */
	char *keygen2[] = { "pkcs11-tool", "--module", SOFTHSM_MODULE, "--token-label", TOKEN,
		"--login", "--pin", USER_PIN, "--keygen", "--key-type", "AES:32", "--label", "kek",
		"--id", "02", NULL };

	if (mkdir(in_dir(0, "tokens"), 0700) < 0)
		return -1;
	snprintf(conf, sizeof(conf), "directories.tokendir = %s\nobjectstore.backend = file\n"
	    "log.level = ERROR\n", in_dir(0, "tokens"));
	kw_test_write_text(in_dir(1, "softhsm2.conf"), conf, 0600);
	if (setenv("SOFTHSM2_CONF", in_dir(1, "softhsm2.conf"), 1) < 0)
		return -1;
	if (run(init) != 0 || run(keygen) != 0 || run(keygen2) != 0) {
		fprintf(stderr, "test_providers: could not make a SoftHSM token "
		    "(softhsm2 and opensc installed?)\n");
		return -1;
	}
	return 0;
}

static int
group_setup(void **state)
{
	struct kw_provider *p = NULL;
	struct kw_config *cfg;
	char err[512] = "";
	int r;

	if (sodium_init() < 0)
		return -1;
	/* Providers log why an unwrap failed; the tests check codes instead. */
	kw_log_init("test_providers", KW_LOG_STDERR, LOG_CRIT);
	if (kw_test_fx_new("providers", &fx) != 0 || make_token() < 0)
		return -1;
	kw_test_write_text(in_dir(0, "pin"), USER_PIN "\n", 0600);
	kw_test_write_text(in_dir(0, "pin.wrong"), "4321\n", 0600);
	kw_test_write_text(in_dir(0, "pin.open"), USER_PIN "\n", 0644);
	kw_test_write_text(in_dir(0, "pass"), PASSPHRASE "\n", 0600);
	kw_test_write_text(in_dir(0, "pass.nonl"), PASSPHRASE, 0400);
	kw_test_write_text(in_dir(0, "pass.wrong"), "incorrect horse\n", 0600);
	kw_test_write_text(in_dir(0, "pass.open"), PASSPHRASE "\n", 0640);
	kw_test_write_text(in_dir(0, "pass.empty"), "\n", 0600);
	if (mkdir(in_dir(0, "creds"), 0700) < 0)
		return -1;
	kw_test_write_text(in_dir(0, "creds/keywarden-passphrase"), PASSPHRASE, 0400);
	/* One derivation, shared by the passphrase tests. */
	cfg = pw_config(in_dir(0, "pass"));
	r = kw_provider_open(cfg, fx->dir, &p, err, sizeof(err));
	kw_config_free(cfg);
	if (r != 0 || p->ops->new_dek(p, pw_dek, &pw_blob, &pw_blob_len) != 0) {
		fprintf(stderr, "test_providers: passphrase set-up: %s\n", err);
		kw_provider_close(p);
		return -1;
	}
	kw_provider_close(p);
	return 0;
}

static void kms_stop(struct kms *k);

static int
group_teardown(void **state)
{
	kms_stop(&kms_server);
	free(pw_blob);
	return kw_test_fx_free(fx) == 0 ? 0 : -1;
}

/* ---- passphrase ------------------------------------------------------------ */

static void
test_passphrase_blob_shape(void **state)
{
	/* "PWH1" + salt 16 + nonce 24 + DEK 32 + tag 16; the DEK is not in it. */
	assert_int_equal(pw_blob_len, 4 + 16 + 24 + 32 + 16);
	assert_memory_equal(pw_blob, "PWH1", 4);
	assert_false(contains(pw_blob, pw_blob_len, pw_dek, KW_DEK_LEN));
	assert_false(contains(pw_blob, pw_blob_len, (const unsigned char *)PASSPHRASE, 8));
}

/* Two derivations: the set-up's blob in a fresh provider, then a new DEK. */
static void
test_passphrase_round_trip(void **state)
{
	struct kw_provider *p = must_open(pw_config(in_dir(0, "pass")));
	unsigned char dek[KW_DEK_LEN], dek2[KW_DEK_LEN], *blob = NULL;
	size_t len = 0;

	assert_string_equal(p->ops->name, "passphrase");
	assert_int_equal(p->ops->unwrap(p, pw_blob, pw_blob_len, dek), 0);
	assert_memory_equal(dek, pw_dek, KW_DEK_LEN);
	/* A new DEK: fresh salt, so a different blob and DEK; unwrap uses the cached KEK. */
	assert_int_equal(p->ops->new_dek(p, dek, &blob, &len), 0);
	assert_int_equal(len, pw_blob_len);
	assert_memory_not_equal(blob + 4, pw_blob + 4, 16);
	assert_memory_not_equal(dek, pw_dek, KW_DEK_LEN);
	assert_false(contains(blob, len, dek, KW_DEK_LEN));
	assert_int_equal(p->ops->unwrap(p, blob, len, dek2), 0);
	assert_memory_equal(dek, dek2, KW_DEK_LEN);
	free(blob);
	kw_provider_close(p);
}

/* One derivation: the systemd credential, without a trailing newline, is the same passphrase. */
static void
test_passphrase_credential_and_newline(void **state)
{
	struct kw_provider *p;
	unsigned char dek[KW_DEK_LEN];

	assert_int_equal(setenv("CREDENTIALS_DIRECTORY", in_dir(0, "creds"), 1), 0);
	p = must_open(config("\"keySource\": \"passphrase\""));
	unsetenv("CREDENTIALS_DIRECTORY");
	assert_int_equal(p->ops->unwrap(p, pw_blob, pw_blob_len, dek), 0);
	assert_memory_equal(dek, pw_dek, KW_DEK_LEN);
	kw_provider_close(p);
}

/* One derivation. */
static void
test_passphrase_wrong(void **state)
{
	struct kw_provider *p = must_open(pw_config(in_dir(0, "pass.wrong")));
	unsigned char dek[KW_DEK_LEN];

	assert_int_equal(p->ops->unwrap(p, pw_blob, pw_blob_len, dek), KW_ERR_IO);
	kw_provider_close(p);
}

/* Two derivations: the right salt once, the changed salt last. */
static void
test_passphrase_tampered(void **state)
{
	struct kw_provider *p = must_open(pw_config(in_dir(0, "pass.nonl")));
	unsigned char dek[KW_DEK_LEN], *bad = malloc(pw_blob_len + 1);
	/* Offsets in the magic, the nonce, the ciphertext and the tag; the salt (4) last. */
	const size_t offsets[] = { 0, 20, 43, 44, 60, 75, pw_blob_len - 1, 4 };
	size_t i;

	assert_non_null(bad);
	assert_int_equal(p->ops->unwrap(p, pw_blob, pw_blob_len, dek), 0);
	for (i = 0; i < KW_ELEMENTSOF(offsets); i++) {
		memcpy(bad, pw_blob, pw_blob_len);
		bad[offsets[i]] ^= 0x01;
		assert_int_equal(p->ops->unwrap(p, bad, pw_blob_len, dek), KW_ERR_IO);
	}
	memcpy(bad, pw_blob, pw_blob_len);
	assert_int_equal(p->ops->unwrap(p, bad, pw_blob_len - 1, dek), KW_ERR_IO);
	bad[pw_blob_len] = 0;
	assert_int_equal(p->ops->unwrap(p, bad, pw_blob_len + 1, dek), KW_ERR_IO);
	assert_int_equal(p->ops->unwrap(p, bad, 0, dek), KW_ERR_IO);
	free(bad);
	kw_provider_close(p);
}

static void
test_passphrase_file_refused(void **state)
{
	struct kw_provider *p = NULL;
	char err[512];

	/* Readable by the group. */
	assert_int_equal(open_provider(pw_config(in_dir(0, "pass.open")), &p, err, sizeof(err)),
	    KW_ERR_CONFIG);
	assert_non_null(strstr(err, "chmod 600"));
	/* Empty once the newline is gone. */
	assert_int_equal(open_provider(pw_config(in_dir(0, "pass.empty")), &p, err, sizeof(err)),
	    KW_ERR_CONFIG);
	assert_non_null(strstr(err, "empty"));
	/* Missing. */
	assert_int_equal(open_provider(pw_config(in_dir(0, "pass.none")), &p, err, sizeof(err)),
	    KW_ERR_IO);
	/* Relative. */
	assert_int_equal(open_provider(pw_config("pass"), &p, err, sizeof(err)), KW_ERR_CONFIG);
	/* Neither a file nor a credential. */
	unsetenv("CREDENTIALS_DIRECTORY");
	assert_int_equal(open_provider(config("\"keySource\": \"passphrase\""), &p, err,
	    sizeof(err)), KW_ERR_CONFIG);
	assert_non_null(strstr(err, "passphraseFile"));
	assert_null(p);
}

/* ---- pkcs11 ------------------------------------------------------------------ */

static void
test_pkcs11_round_trip(void **state)
{
	struct kw_provider *p = must_open(p11_config("object=kek;id=%01;type=secret",
	    in_dir(0, "pin")));
	unsigned char dek[KW_DEK_LEN], dek2[KW_DEK_LEN], dek3[KW_DEK_LEN];
	unsigned char *blob = NULL, *blob2 = NULL;
	size_t len = 0, len2 = 0;

	assert_string_equal(p->ops->name, "pkcs11");
	assert_int_equal(p->ops->new_dek(p, dek, &blob, &len), 0);
	assert_int_equal(len, 4 + 12 + 32 + 16);
	assert_memory_equal(blob, "P11G", 4);
	assert_int_equal(p->ops->unwrap(p, blob, len, dek2), 0);
	assert_memory_equal(dek, dek2, KW_DEK_LEN);
	kw_provider_close(p);

	/* Another provider (a restarted broker), the key named by id alone: same DEK. */
	p = must_open(p11_config("id=%01", in_dir(0, "pin")));
	memset(dek2, 0, sizeof(dek2));
	assert_int_equal(p->ops->unwrap(p, blob, len, dek2), 0);
	assert_memory_equal(dek, dek2, KW_DEK_LEN);
	/* A second DEK differs in DEK, IV and ciphertext. */
	assert_int_equal(p->ops->new_dek(p, dek3, &blob2, &len2), 0);
	assert_memory_not_equal(dek, dek3, KW_DEK_LEN);
	assert_memory_not_equal(blob + 4, blob2 + 4, 12);
	assert_memory_not_equal(blob + 16, blob2 + 16, 48);
	free(blob);
	free(blob2);
	kw_provider_close(p);
}

/* RFC 7512's type=secret-key, and type=secret as SPEC5 writes it, wherever it stands. */
static void
test_pkcs11_uri_spellings(void **state)
{
	const char *objects[] = { "type=secret;id=%01", "id=%01;type=secret-key",
		"object=kek;type=secret;id=%01", "id=%01;type=secretkey" };
	size_t i;

	for (i = 0; i < KW_ELEMENTSOF(objects); i++)
		kw_provider_close(must_open(p11_config(objects[i], in_dir(0, "pin"))));
}

/* The blob never holds the DEK, nor any 8 bytes of it. */
static void
test_pkcs11_dek_not_in_blob(void **state)
{
	struct kw_provider *p = must_open(p11_config("object=kek;id=%01", in_dir(0, "pin")));
	unsigned char dek[KW_DEK_LEN], *blob = NULL;
	size_t len = 0, i, k;

	for (k = 0; k < 4; k++) {
		assert_int_equal(p->ops->new_dek(p, dek, &blob, &len), 0);
		assert_false(contains(blob, len, dek, KW_DEK_LEN));
		for (i = 0; i + 8 <= KW_DEK_LEN; i++)
			assert_false(contains(blob, len, dek + i, 8));
		free(blob);
		blob = NULL;
	}
	kw_provider_close(p);
}

static void
test_pkcs11_wrong_pin(void **state)
{
	struct kw_provider *p = NULL;
	char err[512];

	assert_int_equal(open_provider(p11_config("object=kek;id=%01", in_dir(0, "pin.wrong")),
	    &p, err, sizeof(err)), KW_ERR_IO);
	assert_string_equal(err, "HSM login failed (CKR_PIN_INCORRECT)");
	assert_null(p);
	/* The right PIN still works afterwards. */
	p = must_open(p11_config("object=kek;id=%01", in_dir(0, "pin")));
	kw_provider_close(p);
}

static void
test_pkcs11_tampered(void **state)
{
	struct kw_provider *p = must_open(p11_config("object=kek;id=%01", in_dir(0, "pin")));
	unsigned char dek[KW_DEK_LEN], dek2[KW_DEK_LEN], *blob = NULL, *bad;
	/* Magic, IV, ciphertext, tag. */
	const size_t offsets[] = { 0, 3, 4, 15, 16, 30, 47, 48, 63 };
	size_t len = 0, i;

	assert_int_equal(p->ops->new_dek(p, dek, &blob, &len), 0);
	assert_non_null(bad = malloc(len + 1));
	for (i = 0; i < KW_ELEMENTSOF(offsets); i++) {
		memcpy(bad, blob, len);
		bad[offsets[i]] ^= 0x80;
		memset(dek2, 0xAA, sizeof(dek2));
		assert_int_equal(p->ops->unwrap(p, bad, len, dek2), KW_ERR_IO);
	}
	memcpy(bad, blob, len);
	assert_int_equal(p->ops->unwrap(p, bad, len - 1, dek2), KW_ERR_IO);
	bad[len] = 0;
	assert_int_equal(p->ops->unwrap(p, bad, len + 1, dek2), KW_ERR_IO);
	/* Not the passphrase provider's blob either. */
	assert_int_equal(p->ops->unwrap(p, pw_blob, pw_blob_len, dek2), KW_ERR_IO);
	/* The failures left no operation half-done in the session. */
	assert_int_equal(p->ops->unwrap(p, blob, len, dek2), 0);
	assert_memory_equal(dek, dek2, KW_DEK_LEN);
	free(bad);
	free(blob);
	kw_provider_close(p);
}

static void
test_pkcs11_missing_object(void **state)
{
	struct kw_provider *p = NULL;
	char err[512];

	assert_int_equal(open_provider(p11_config("object=nokey;type=secret", in_dir(0, "pin")),
	    &p, err, sizeof(err)), KW_ERR_CONFIG);
	assert_non_null(strstr(err, "no secret key"));
	/* Two keys are labelled kek: the label alone is ambiguous. */
	assert_int_equal(open_provider(p11_config("object=kek", in_dir(0, "pin")), &p, err,
	    sizeof(err)), KW_ERR_CONFIG);
	assert_non_null(strstr(err, "more than one"));
	/* A private key is not a secret key. */
	assert_int_equal(open_provider(p11_config("object=kek;type=private", in_dir(0, "pin")),
	    &p, err, sizeof(err)), KW_ERR_CONFIG);
	assert_null(p);
}

static void
test_pkcs11_bad_uri(void **state)
{
	struct kw_provider *p = NULL;
	char err[512];

	/* No URI. */
	assert_int_equal(open_provider(config("\"keySource\": \"pkcs11\""), &p, err,
	    sizeof(err)), KW_ERR_CONFIG);
	assert_non_null(strstr(err, "kmsKeyId"));
	/* Not pkcs11:. */
	assert_int_equal(open_provider(config("\"keySource\": \"pkcs11\", \"kmsKeyId\": "
	    "\"arn:aws:kms:eu-west-1:1:key/x\""), &p, err, sizeof(err)), KW_ERR_CONFIG);
	/* No module. */
	assert_int_equal(open_provider(config("\"keySource\": \"pkcs11\", \"kmsKeyId\": "
	    "\"pkcs11:token=" TOKEN ";object=kek\""), &p, err, sizeof(err)), KW_ERR_CONFIG);
	assert_non_null(strstr(err, "module-path"));
	/* A PIN in the URI, which `config list` shows. */
	assert_int_equal(open_provider(config("\"keySource\": \"pkcs11\", \"kmsKeyId\": "
	    "\"pkcs11:token=" TOKEN ";id=%%01?module-path=" SOFTHSM_MODULE "&pin-value="
	    USER_PIN "\""), &p, err, sizeof(err)), KW_ERR_CONFIG);
	assert_null(strstr(err, USER_PIN));
	/* No PIN for a token that needs one. */
	assert_int_equal(open_provider(config("\"keySource\": \"pkcs11\", \"kmsKeyId\": "
	    "\"pkcs11:token=" TOKEN ";id=%%01?module-path=" SOFTHSM_MODULE "\""), &p, err,
	    sizeof(err)), KW_ERR_CONFIG);
	assert_non_null(strstr(err, "pin-source"));
	/* A PIN file others can read. */
	assert_int_equal(open_provider(p11_config("id=%01", in_dir(0, "pin.open")), &p, err,
	    sizeof(err)), KW_ERR_CONFIG);
	assert_non_null(strstr(err, "chmod 600"));
	/* A module that is not there. */
	assert_int_equal(open_provider(config("\"keySource\": \"pkcs11\", \"kmsKeyId\": "
	    "\"pkcs11:token=" TOKEN ";id=%%01?module-path=%s/none.so&pin-source=file:%s\"",
	    fx->dir, in_dir(0, "pin")), &p, err, sizeof(err)), KW_ERR_IO);
	/* A token that is not there. */
	assert_int_equal(open_provider(config("\"keySource\": \"pkcs11\", \"kmsKeyId\": "
	    "\"pkcs11:token=elsewhere;id=%%01?module-path=" SOFTHSM_MODULE
	    "&pin-source=file:%s\"", in_dir(0, "pin")), &p, err, sizeof(err)), KW_ERR_IO);
	assert_non_null(strstr(err, "elsewhere"));
	assert_null(p);
}

/* ---- wrap: a key made elsewhere, under each provider ------------------------- */

static void
test_local_wrap(void **state)
{
	struct kw_provider *p = must_open(config("\"keySource\": \"local\""));
	struct kw_provider *other = NULL;
	struct kw_config *cfg;
	unsigned char key[KW_DEK_LEN], out[KW_DEK_LEN], *blob = NULL;
	/* Magic, IV, ciphertext, tag. */
	const size_t offsets[] = { 0, 3, 4, 15, 16, 30, 47, 48, 63 };
	char err[512] = "";
	size_t len = 0;

	randombytes_buf(key, sizeof(key));
	assert_string_equal(p->ops->name, "local");
	wrap_round_trip(p, key, &blob, &len);
	/* "LOC1" | IV 12 | key 32 | tag 16: the shape of a wrapped data key. */
	assert_int_equal(len, 4 + 12 + 32 + 16);
	assert_memory_equal(blob, "LOC1", 4);
	tampered_refused(p, blob, len, offsets, KW_ELEMENTSOF(offsets));
	kw_provider_close(p);

	/* The same key file (a restarted broker) opens it ... */
	p = must_open(config("\"keySource\": \"local\""));
	assert_int_equal(p->ops->unwrap(p, blob, len, out), 0);
	assert_memory_equal(out, key, KW_DEK_LEN);
	kw_provider_close(p);
	/* ... another one (a new key file in another directory) does not. */
	assert_int_equal(mkdir(in_dir(2, "local2"), 0700), 0);
	cfg = config("\"keySource\": \"local\"");
	assert_int_equal(kw_provider_open(cfg, in_dir(2, "local2"), &other, err, sizeof(err)), 0);
	kw_config_free(cfg);
	assert_int_equal(other->ops->unwrap(other, blob, len, out), KW_ERR_IO);
	kw_provider_close(other);
	free(blob);
}

/* Two derivations: the wrap's fresh salt, then the same salt in a second provider. */
static void
test_passphrase_wrap(void **state)
{
	struct kw_provider *p = must_open(pw_config(in_dir(0, "pass")));
	unsigned char key[KW_DEK_LEN], out[KW_DEK_LEN], *blob = NULL;
	/* Magic, nonce, ciphertext, tag: not the salt, whose change costs a derivation. */
	const size_t offsets[] = { 0, 20, 43, 44, 60, 75, 83 };
	size_t len = 0;

	randombytes_buf(key, sizeof(key));
	/* The unwrap reuses the KEK the wrap derived for its fresh salt. */
	assert_int_equal(p->ops->wrap(p, key, &blob, &len), 0);
	assert_int_equal(len, 4 + 16 + 24 + 32 + 16);
	assert_memory_equal(blob, "PWH1", 4);
	assert_false(contains(blob, len, key, KW_DEK_LEN));
	assert_int_equal(p->ops->unwrap(p, blob, len, out), 0);
	assert_memory_equal(out, key, KW_DEK_LEN);
	kw_provider_close(p);

	p = must_open(pw_config(in_dir(0, "pass.nonl")));
	memset(out, 0, sizeof(out));
	assert_int_equal(p->ops->unwrap(p, blob, len, out), 0);
	assert_memory_equal(out, key, KW_DEK_LEN);
	tampered_refused(p, blob, len, offsets, KW_ELEMENTSOF(offsets));
	free(blob);
	kw_provider_close(p);
}

static void
test_pkcs11_wrap(void **state)
{
	struct kw_provider *p = must_open(p11_config("object=kek;id=%01", in_dir(0, "pin")));
	unsigned char key[KW_DEK_LEN], out[KW_DEK_LEN], *blob = NULL;
	const size_t offsets[] = { 0, 3, 4, 15, 16, 30, 47, 48, 63 };
	size_t len = 0;

	randombytes_buf(key, sizeof(key));
	wrap_round_trip(p, key, &blob, &len);
	assert_int_equal(len, 4 + 12 + 32 + 16);
	assert_memory_equal(blob, "P11G", 4);
	tampered_refused(p, blob, len, offsets, KW_ELEMENTSOF(offsets));
	kw_provider_close(p);

	/* Another session on the token (a restarted broker), the key named by id alone. */
	p = must_open(p11_config("id=%01", in_dir(0, "pin")));
	assert_int_equal(p->ops->unwrap(p, blob, len, out), 0);
	assert_memory_equal(out, key, KW_DEK_LEN);
	kw_provider_close(p);
	/* The token's other AES key does not open it. */
	p = must_open(p11_config("id=%02", in_dir(0, "pin")));
	assert_int_equal(p->ops->unwrap(p, blob, len, out), KW_ERR_IO);
	kw_provider_close(p);
	free(blob);
}

/* ---- aws-kms, against the KMS stand-in ----------------------------------------- */

/* Start kms_server.py on 127.0.0.1; its port is the first line it prints. */
static void
kms_start(struct kms *k)
{
	char *argv[] = { "/usr/bin/python3", KMS_SERVER, "--record", k->record, "--access-key",
		KMS_AKID, "--secret-key", KMS_SECRET, "--key-id", KMS_ARN, NULL };
	char line[32] = "";
	int fds[2];
	FILE *f;

	if (access(KMS_SERVER, R_OK) != 0)
		fail_msg("%s: not found; run the unit tests from the top of the tree", KMS_SERVER);
	snprintf(k->record, sizeof(k->record), "%s/kms-requests.jsonl", fx->dir);
	assert_int_equal(pipe(fds), 0);
	assert_true((k->pid = fork()) >= 0);
	if (k->pid == 0) {
		int log = open(in_dir(3, "kms-server.log"), O_WRONLY | O_CREAT | O_APPEND, 0600);

		/* Its stderr is not ours: a caller's pipe would stay open as long as it runs. */
		dup2(fds[1], 1);
		dup2(log, 2);
		close(fds[0]);
		close(fds[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	assert_non_null(f = fdopen(fds[0], "r"));
	if (!fgets(line, sizeof(line), f) || (k->port = atoi(line)) <= 0)
		fail_msg("kms_server.py did not start (got \"%s\")", line);
	fclose(f);
}

static void
kms_stop(struct kms *k)
{
	if (k->pid > 0) {
		kill(k->pid, SIGTERM);
		(void)waitpid(k->pid, NULL, 0);
		k->pid = 0;
	}
}

static struct kw_config *
kms_config(const struct kms *k)
{
	return config("\"keySource\": \"aws-kms\", \"kmsKeyId\": \"" KMS_ARN "\", "
	    "\"endpoint\": \"http://127.0.0.1:%d\"", k->port);
}

/* The recorded requests, "Op:status[:unsigned]" each, space-separated. */
static void
kms_ops(const struct kms *k, char *out, size_t size)
{
	char line[65536];
	FILE *f = fopen(k->record, "r");
	size_t used = 0;

	out[0] = '\0';
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		json_t *rec = json_loads(line, 0, NULL);
		/* The target header, not "op": a request refused for its signature has no op. */
		const char *op = json_string_value(json_object_get(json_object_get(rec, "headers"),
		    "x-amz-target"));
		int status = (int)json_integer_value(json_object_get(rec, "status"));
		bool signed_ok = json_is_true(json_object_get(rec, "signature_ok"));

		assert_non_null(rec);
		if (op && strncmp(op, "TrentService.", 13) == 0)
			op += 13;
		used += (size_t)snprintf(out + used, size - used, "%s%s:%d%s", used ? " " : "",
		    op ? op : "-", status, signed_ok ? "" : ":unsigned");
		assert_true(used < size);
		json_decref(rec);
	}
	fclose(f);
}

static void
test_awskms_wrap(void **state)
{
	static const char *const proxies[] = { "http_proxy", "HTTP_PROXY", "https_proxy",
		"HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY" };
	struct kms *k = &kms_server;
	struct kw_provider *p = NULL;
	unsigned char key[KW_DEK_LEN], dek[KW_DEK_LEN], out[KW_DEK_LEN];
	unsigned char *blob = NULL, *blob2 = NULL;
	/* Magic, key id, IV, ciphertext, tag of the stand-in's blob (10, 2 + 43, 12, 32, 16). */
	const size_t offsets[] = { 0, 14, 56, 60, 90, 110 };
	char ops[1024], err[512];
	size_t len = 0, len2 = 0, i;

	for (i = 0; i < KW_ELEMENTSOF(proxies); i++)
		unsetenv(proxies[i]);
	setenv("AWS_ACCESS_KEY_ID", KMS_AKID, 1);
	setenv("AWS_SECRET_ACCESS_KEY", KMS_SECRET, 1);
	unsetenv("AWS_SESSION_TOKEN");
	kms_start(k);
	p = must_open(kms_config(k));
	randombytes_buf(key, sizeof(key));
	wrap_round_trip(p, key, &blob, &len);
	assert_int_equal(len, 10 + 2 + strlen(KMS_ARN) + 12 + 32 + 16);
	assert_memory_equal(blob, "KWTESTKMS1", 10);
	tampered_refused(p, blob, len, offsets, KW_ELEMENTSOF(offsets));
	/* A data key from GenerateDataKey opens the same way. */
	assert_int_equal(p->ops->new_dek(p, dek, &blob2, &len2), 0);
	assert_int_equal(p->ops->unwrap(p, blob2, len2, out), 0);
	assert_memory_equal(out, dek, KW_DEK_LEN);
	kw_provider_close(p);

	/* Every call was signed, and the stand-in checked each signature. */
	kms_ops(k, ops, sizeof(ops));
	assert_string_equal(ops, "Encrypt:200 Encrypt:200 Decrypt:200 Decrypt:200 "
	    "Decrypt:400 Decrypt:400 Decrypt:400 Decrypt:400 Decrypt:400 Decrypt:400 "
	    "Decrypt:400 Decrypt:400 GenerateDataKey:200 Decrypt:200");

	/* A wrong secret key: KMS refuses the Encrypt's signature, and wrap says so. */
	setenv("AWS_SECRET_ACCESS_KEY", "not" KMS_SECRET, 1);
	assert_int_equal(open_provider(kms_config(k), &p, err, sizeof(err)), 0);
	free(blob);
	blob = NULL;
	assert_int_equal(p->ops->wrap(p, key, &blob, &len), KW_ERR_IO);
	assert_null(blob);
	kw_provider_close(p);
	kms_ops(k, ops, sizeof(ops));
	if (!strstr(ops, "GenerateDataKey:200 Decrypt:200 Encrypt:400:unsigned"))
		fail_msg("requests: %s", ops);
	free(blob2);
	kms_stop(k);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_passphrase_blob_shape),
		cmocka_unit_test(test_passphrase_round_trip),
		cmocka_unit_test(test_passphrase_credential_and_newline),
		cmocka_unit_test(test_passphrase_wrong),
		cmocka_unit_test(test_passphrase_tampered),
		cmocka_unit_test(test_passphrase_file_refused),
		cmocka_unit_test(test_pkcs11_round_trip),
		cmocka_unit_test(test_pkcs11_uri_spellings),
		cmocka_unit_test(test_pkcs11_dek_not_in_blob),
		cmocka_unit_test(test_pkcs11_wrong_pin),
		cmocka_unit_test(test_pkcs11_tampered),
		cmocka_unit_test(test_pkcs11_missing_object),
		cmocka_unit_test(test_pkcs11_bad_uri),
		cmocka_unit_test(test_local_wrap),
		cmocka_unit_test(test_passphrase_wrap),
		cmocka_unit_test(test_pkcs11_wrap),
		cmocka_unit_test(test_awskms_wrap),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
