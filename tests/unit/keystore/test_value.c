/*
 * test_value.c - the memory key values are handed out in: more values out
 * at once than there are slots still works (the rest get regions of their
 * own), a slot given back is wiped and handed out again, and a value too
 * large for a slot is served too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <sodium.h>

#include "keystore/backends/backend.h"

#define MANY 40

static void
test_values_out_at_once(void **state)
{
	unsigned char *v[MANY];

	(void)state;
	for (int i = 0; i < MANY; i++) {
		assert_non_null(v[i] = kw_keystore_alloc_value(100));
		memset(v[i], 'a' + i % 26, 101);
		for (int j = 0; j < i; j++)
			assert_ptr_not_equal(v[i], v[j]);
	}
	/* Each kept its own bytes while all were out. */
	for (int i = 0; i < MANY; i++)
		assert_int_equal(v[i][100], 'a' + i % 26);
	for (int i = 0; i < MANY; i++)
		kw_keystore_free_value(v[i], 100);
}

static void
test_slot_is_wiped_and_reused(void **state)
{
	unsigned char *a, *b;

	(void)state;
	a = kw_keystore_alloc_value(64);
	assert_non_null(a);
	memset(a, 'k', 65);
	kw_keystore_free_value(a, 64);
	/* The first free slot is the one just given back: nothing of it is left. */
	b = kw_keystore_alloc_value(64);
	assert_ptr_equal(a, b);
	for (int i = 0; i < 65; i++)
		assert_int_equal(b[i], 0);
	kw_keystore_free_value(b, 64);
	/* Larger than a slot, and NULL. */
	assert_non_null(a = kw_keystore_alloc_value(8192));
	memset(a, 'x', 8193);
	kw_keystore_free_value(a, 8192);
	kw_keystore_free_value(NULL, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values_out_at_once),
		cmocka_unit_test(test_slot_is_wiped_and_reused),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
