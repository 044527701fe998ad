/*
 * test_sealed_cache.c - the file backend's memory of sealed files: what was
 * put comes back as a copy while the file is the same, a file changed in
 * any way (times, size, inode) is read again, a drop forgets, and a full
 * cache gives up the entry read longest ago.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/errors.h"
#include "keystore/backends/sealed_cache.h"

/* A file as fstat would describe it. */
static struct stat file_a = { .st_dev = 8, .st_ino = 100, .st_size = 3, .st_mode = 0100600,
	.st_nlink = 1, .st_mtim = { 1000, 5 }, .st_ctim = { 1000, 5 } };

static void
put(struct kw_sealed_cache *c, const char *name, int version, const char *bytes)
{
	kw_sealed_cache_put(c, name, version, &file_a, (const unsigned char *)bytes,
	    strlen(bytes));
}

static int
get_as(struct kw_sealed_cache *c, const char *name, int version, const struct stat *now,
    char *out, size_t out_len)
{
	unsigned char *s = NULL;
	size_t n = 0;
	int r = kw_sealed_cache_get(c, name, version, now, &s, &n);

	if (r == 0) {
		snprintf(out, out_len, "%.*s", (int)n, (const char *)s);
		free(s);
	}
	return r;
}

static int
get(struct kw_sealed_cache *c, const char *name, int version, char *out, size_t out_len)
{
	return get_as(c, name, version, &file_a, out, out_len);
}

static void
test_put_get_drop(void **state)
{
	struct kw_sealed_cache *c = kw_sealed_cache_new();
	char buf[64];

	(void)state;
	assert_non_null(c);
	assert_int_equal(get(c, "anthropic", 1, buf, sizeof(buf)), KW_ERR_NOT_FOUND);
	put(c, "anthropic", 1, "one");
	put(c, "anthropic", 2, "two");
	assert_int_equal(get(c, "anthropic", 1, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "one");
	assert_int_equal(get(c, "anthropic", 2, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "two");
	/* Another name with the same version is another entry. */
	assert_int_equal(get(c, "openai", 1, buf, sizeof(buf)), KW_ERR_NOT_FOUND);
	/* A put replaces; a drop forgets only its own. */
	put(c, "anthropic", 1, "uno");
	assert_int_equal(get(c, "anthropic", 1, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "uno");
	kw_sealed_cache_drop(c, "anthropic", 1);
	assert_int_equal(get(c, "anthropic", 1, buf, sizeof(buf)), KW_ERR_NOT_FOUND);
	assert_int_equal(get(c, "anthropic", 2, buf, sizeof(buf)), 0);
	kw_sealed_cache_drop(c, "nothing", 9);
	kw_sealed_cache_free(c);
}

static void
test_full_cache_evicts_least_recently_read(void **state)
{
	struct kw_sealed_cache *c = kw_sealed_cache_new();
	char name[32], buf[64];
	int kept = 0;

	(void)state;
	for (int i = 0; i < 32; i++) {
		snprintf(name, sizeof(name), "k%d", i);
		put(c, name, 1, name);
	}
	/* k0 is read again: k1 is now the one read longest ago. */
	assert_int_equal(get(c, "k0", 1, buf, sizeof(buf)), 0);
	put(c, "new", 1, "new");
	assert_int_equal(get(c, "new", 1, buf, sizeof(buf)), 0);
	assert_int_equal(get(c, "k0", 1, buf, sizeof(buf)), 0);
	assert_int_equal(get(c, "k1", 1, buf, sizeof(buf)), KW_ERR_NOT_FOUND);
	for (int i = 2; i < 32; i++) {
		snprintf(name, sizeof(name), "k%d", i);
		kept += get(c, name, 1, buf, sizeof(buf)) == 0;
	}
	assert_int_equal(kept, 30);
	kw_sealed_cache_free(c);
}

/* Any change to the file the bytes came from: the entry is not used (and goes). */
static void
test_changed_file_is_read_again(void **state)
{
	struct kw_sealed_cache *c = kw_sealed_cache_new();
	struct stat changed[6];
	char buf[64];

	(void)state;
	for (size_t i = 0; i < 6; i++)
		changed[i] = file_a;
	changed[0].st_ino++;
	changed[1].st_size++;
	changed[2].st_mtim.tv_nsec++;
	changed[3].st_ctim.tv_nsec++;
	changed[4].st_uid = 2001;
	changed[5].st_mode = 0100644;
	for (size_t i = 0; i < 6; i++) {
		put(c, "anthropic", 1, "one");
		assert_int_equal(get_as(c, "anthropic", 1, &changed[i], buf, sizeof(buf)),
		    KW_ERR_NOT_FOUND);
		/* Gone: not even the old file finds it now. */
		assert_int_equal(get(c, "anthropic", 1, buf, sizeof(buf)), KW_ERR_NOT_FOUND);
	}
	kw_sealed_cache_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get_drop),
		cmocka_unit_test(test_full_cache_evicts_least_recently_read),
		cmocka_unit_test(test_changed_file_is_read_again),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
