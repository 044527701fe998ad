/*
 * test_session_cache.c - the client's session token cache (keywarden.h,
 * kw_session_store/load/forget) in the real kernel user keyring and in the
 * fallback file under $XDG_RUNTIME_DIR.
 *
 * Socket paths are unique per run (pid + random), so two runs at once, or a
 * developer's real login, never see each other's keys.  The key names the
 * tests look for are derived here from the spec, not from the code.
 */
#include <errno.h>
#include <fcntl.h>
#include <keyutils.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "client/keywarden.h"
#include "tests/unit/support/fixture.h"

static char sock_a[128], sock_b[128];
static struct kw_test_fx *fx;	/* its directory is $XDG_RUNTIME_DIR */

/* "keywarden:session:" + 16 hex digits of SHA-256(path), as SPEC4 says. */
static void
hex_of(const char *path, char hex[17])
{
	unsigned char d[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(d, (const unsigned char *)path, strlen(path));
	sodium_bin2hex(hex, 17, d, 8);
}

static key_serial_t
find_key(const char *path)
{
	char hex[17], desc[64];

	hex_of(path, hex);
	snprintf(desc, sizeof(desc), "keywarden:session:%s", hex);
	return (key_serial_t)keyctl_search(KEY_SPEC_USER_KEYRING, "user", desc, 0);
}

static void
file_of(const char *path, char *out, size_t n)
{
	char hex[17];

	hex_of(path, hex);
	snprintf(out, n, "%s/keywarden/session-%s", fx->dir, hex);
}

static void
expect_token(const char *path, const char *want)
{
	char *tok = NULL;

	assert_int_equal(kw_session_load(path, &tok), 0);
	assert_non_null(tok);
	assert_string_equal(tok, want);
	sodium_memzero(tok, strlen(tok));
	free(tok);
}

static void
expect_none(const char *path)
{
	char *tok = (char *)"untouched";

	assert_int_equal(kw_session_load(path, &tok), KW_ERR_NOT_FOUND);
	/* ret_* is left alone on failure. */
	assert_string_equal(tok, "untouched");
}

static int
setup(void **state)
{
	uint32_t r = randombytes_random();

	snprintf(sock_a, sizeof(sock_a), "/run/kw-test-%d-%08x/a.sock", (int)getpid(), r);
	snprintf(sock_b, sizeof(sock_b), "/run/kw-test-%d-%08x/b.sock", (int)getpid(), r);
	if (kw_test_fx_new("sc", &fx) != 0)
		return -1;
	setenv("XDG_RUNTIME_DIR", fx->dir, 1);
	unsetenv("KEYWARDEN_TOKEN_CACHE");
	return 0;
}

static int
teardown(void **state)
{
	int r;

	(void)kw_session_forget(sock_a);
	(void)kw_session_forget(sock_b);
	r = kw_test_fx_free(fx);
	fx = NULL;
	unsetenv("KEYWARDEN_TOKEN_CACHE");
	return r == 0 ? 0 : -1;
}

static int
setup_file(void **state)
{
	if (setup(state) < 0)
		return -1;
	setenv("KEYWARDEN_TOKEN_CACHE", "file", 1);
	return 0;
}

/* Skip the keyring tests where the kernel refuses keyctl (some containers). */
static void
need_keyring(void)
{
	key_serial_t id = add_key("user", "keywarden:test-probe", "x", 1, KEY_SPEC_USER_KEYRING);

	if (id < 0) {
		fprintf(stderr, "no usable user keyring (%s); skipped\n", strerror(errno));
		skip();
	}
	keyctl_invalidate(id);
}

#define TOKEN_A "kw1_0123456789abcdef0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define TOKEN_B "kw1_fedcba9876543210fedcba9876543210_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"

static void
test_keyring_round_trip(void **state)
{
	char path[256], buf[128];
	key_serial_t id;

	need_keyring();
	expect_none(sock_a);
	assert_int_equal(kw_session_store(sock_a, TOKEN_A, 60), 0);
	/* It is in the user keyring under the spec's name, with the token as payload. */
	assert_true((id = find_key(sock_a)) > 0);
	assert_int_equal(keyctl_read(id, buf, sizeof(buf)), (long)strlen(TOKEN_A));
	assert_memory_equal(buf, TOKEN_A, strlen(TOKEN_A));
	/* ... and nowhere on disk. */
	file_of(sock_a, path, sizeof(path));
	assert_int_equal(access(path, F_OK), -1);
	expect_token(sock_a, TOKEN_A);

	/* A second login replaces the token. */
	assert_int_equal(kw_session_store(sock_a, TOKEN_B, 60), 0);
	expect_token(sock_a, TOKEN_B);

	assert_int_equal(kw_session_forget(sock_a), 0);
	expect_none(sock_a);
	assert_int_equal(find_key(sock_a), -1);
	/* Until the kernel's collector runs, a dropped key may still show as revoked. */
	assert_true(errno == ENOKEY || errno == EKEYREVOKED);
	/* Forgetting nothing is not an error. */
	assert_int_equal(kw_session_forget(sock_a), 0);
}

/* The key carries a kernel timeout: /proc/keys shows it instead of "perm". */
static void
test_keyring_timeout_set(void **state)
{
	char line[512], want[16], timeout[16];
	key_serial_t id;
	bool seen = false;
	FILE *f;

	need_keyring();
	assert_int_equal(kw_session_store(sock_a, TOKEN_A, 3600), 0);
	assert_true((id = find_key(sock_a)) > 0);
	snprintf(want, sizeof(want), "%08x", (unsigned)id);
	assert_non_null(f = fopen("/proc/keys", "r"));
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, want, 8) != 0)
			continue;
		/* id flags usage timeout perm uid gid type description */
		assert_int_equal(sscanf(line, "%*s %*s %*s %15s", timeout), 1);
		assert_string_not_equal(timeout, "perm");
		seen = true;
	}
	fclose(f);
	assert_true(seen);
}

static void
test_keyring_expiry(void **state)
{
	need_keyring();
	/* Expiry counts whole seconds (the kernel's and the file's alike): a
	 * 1 s timeout stored at x.999 is gone at x+1.0, before the load below
	 * on a busy machine.  2 s leaves at least one whole second. */
	assert_int_equal(kw_session_store(sock_a, TOKEN_A, 2), 0);
	expect_token(sock_a, TOKEN_A);
	sleep(3);
	expect_none(sock_a);
}

static void
test_keyring_sockets_apart(void **state)
{
	need_keyring();
	assert_int_equal(kw_session_store(sock_a, TOKEN_A, 60), 0);
	expect_none(sock_b);
	assert_int_equal(kw_session_store(sock_b, TOKEN_B, 60), 0);
	expect_token(sock_a, TOKEN_A);
	expect_token(sock_b, TOKEN_B);
	assert_int_equal(kw_session_forget(sock_a), 0);
	expect_none(sock_a);
	expect_token(sock_b, TOKEN_B);
}

/* A token left in the file (an earlier fallback) is found in keyring mode and
 * replaced by the next keyring store. */
static void
test_keyring_reads_fallback_file(void **state)
{
	char path[256];

	need_keyring();
	setenv("KEYWARDEN_TOKEN_CACHE", "file", 1);
	assert_int_equal(kw_session_store(sock_a, TOKEN_A, 60), 0);
	unsetenv("KEYWARDEN_TOKEN_CACHE");
	expect_token(sock_a, TOKEN_A);
	assert_int_equal(kw_session_store(sock_a, TOKEN_B, 60), 0);
	file_of(sock_a, path, sizeof(path));
	assert_int_equal(access(path, F_OK), -1);
	expect_token(sock_a, TOKEN_B);
}

static void
test_file_round_trip(void **state)
{
	char path[256], dir[160], want[256], got[256] = "";
	long long now = (long long)time(NULL), expiry;
	int fd;
	ssize_t n;

	expect_none(sock_a);
	assert_int_equal(kw_session_store(sock_a, TOKEN_A, 60), 0);
	snprintf(dir, sizeof(dir), "%s/keywarden", fx->dir);
	file_of(sock_a, path, sizeof(path));
	assert_int_equal(kw_test_mode(dir), 0700);
	assert_int_equal(kw_test_mode(path), 0600);
	/* Not in the keyring. */
	assert_int_equal(find_key(sock_a), -1);

	/* "EXPIRY\nTOKEN\n" with the expiry timeout_s from now. */
	assert_true((fd = open(path, O_RDONLY)) >= 0);
	assert_true((n = read(fd, got, sizeof(got) - 1)) > 0);
	close(fd);
	got[n] = '\0';
	assert_int_equal(sscanf(got, "%lld", &expiry), 1);
	assert_true(expiry >= now + 60 && expiry <= now + 62);
	snprintf(want, sizeof(want), "%lld\n%s\n", expiry, TOKEN_A);
	assert_string_equal(got, want);

	expect_token(sock_a, TOKEN_A);
	assert_int_equal(kw_session_store(sock_a, TOKEN_B, 0), 0);
	expect_token(sock_a, TOKEN_B);
	assert_int_equal(kw_test_mode(path), 0600);

	assert_int_equal(kw_session_forget(sock_a), 0);
	assert_int_equal(access(path, F_OK), -1);
	expect_none(sock_a);
	assert_int_equal(kw_session_forget(sock_a), 0);
}

static void
test_file_expiry(void **state)
{
	char path[256], content[256];

	/* Expiry counts whole seconds (the kernel's and the file's alike): a
	 * 1 s timeout stored at x.999 is gone at x+1.0, before the load below
	 * on a busy machine.  2 s leaves at least one whole second. */
	assert_int_equal(kw_session_store(sock_a, TOKEN_A, 2), 0);
	expect_token(sock_a, TOKEN_A);
	sleep(3);
	expect_none(sock_a);

	/* A file whose expiry has passed is refused and removed. */
	file_of(sock_a, path, sizeof(path));
	snprintf(content, sizeof(content), "%lld\n%s\n", (long long)time(NULL) - 10, TOKEN_A);
	kw_test_write_text(path, content, 0600);
	expect_none(sock_a);
	assert_int_equal(access(path, F_OK), -1);
}

static void
test_file_sockets_apart(void **state)
{
	assert_int_equal(kw_session_store(sock_a, TOKEN_A, 60), 0);
	expect_none(sock_b);
	assert_int_equal(kw_session_store(sock_b, TOKEN_B, 60), 0);
	expect_token(sock_a, TOKEN_A);
	expect_token(sock_b, TOKEN_B);
	assert_int_equal(kw_session_forget(sock_b), 0);
	expect_none(sock_b);
	expect_token(sock_a, TOKEN_A);
}

/* A directory someone loosened is tightened; a file others could read is not used. */
static void
test_file_modes_enforced(void **state)
{
	char path[256], dir[160], content[256];
	char *tok = NULL;

	snprintf(dir, sizeof(dir), "%s/keywarden", fx->dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(chmod(dir, 0755), 0);
	assert_int_equal(kw_session_store(sock_a, TOKEN_A, 60), 0);
	assert_int_equal(kw_test_mode(dir), 0700);

	file_of(sock_a, path, sizeof(path));
	snprintf(content, sizeof(content), "%lld\n%s\n", (long long)time(NULL) + 60, TOKEN_A);
	kw_test_write_text(path, content, 0644);
	assert_int_equal(kw_session_load(sock_a, &tok), KW_ERR_IO);
	assert_null(tok);

	/* Damaged content: not a token, removed. */
	kw_test_write_text(path, "garbage", 0600);
	expect_none(sock_a);
	assert_int_equal(access(path, F_OK), -1);
}

static void
test_no_runtime_dir(void **state)
{
	unsetenv("XDG_RUNTIME_DIR");
	expect_none(sock_a);
	assert_int_equal(kw_session_store(sock_a, TOKEN_A, 60), KW_ERR_CONFIG);
	assert_int_equal(kw_session_forget(sock_a), 0);
}

static void
test_bad_input(void **state)
{
	char *tok = NULL;

	assert_int_equal(kw_session_store(sock_a, "", 60), KW_ERR_INVALID);
	assert_int_equal(kw_session_store(sock_a, "kw1_a\nb", 60), KW_ERR_INVALID);
	assert_int_equal(kw_session_store(sock_a, NULL, 60), KW_ERR_INVALID);
	setenv("KEYWARDEN_TOKEN_CACHE", "envvar", 1);
	assert_int_equal(kw_session_store(sock_a, TOKEN_A, 60), KW_ERR_CONFIG);
	assert_int_equal(kw_session_load(sock_a, &tok), KW_ERR_CONFIG);
	assert_null(tok);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_keyring_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keyring_timeout_set, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keyring_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keyring_sockets_apart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keyring_reads_fallback_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_round_trip, setup_file, teardown),
		cmocka_unit_test_setup_teardown(test_file_expiry, setup_file, teardown),
		cmocka_unit_test_setup_teardown(test_file_sockets_apart, setup_file, teardown),
		cmocka_unit_test_setup_teardown(test_file_modes_enforced, setup_file, teardown),
		cmocka_unit_test_setup_teardown(test_no_runtime_dir, setup_file, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("session_cache", tests, NULL, NULL);
}
