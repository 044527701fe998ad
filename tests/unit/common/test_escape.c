/*
 * test_escape.c - unit tests for terminal-safe text (common/escape.h): what
 * is kept, what is shown as \xHH, and how a short buffer cuts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/escape.h"

static void
check(const char *in, const char *want)
{
	char out[256];

	assert_int_equal(kw_escaped_len(in), strlen(want));
	assert_string_equal(kw_escape(in, out, sizeof(out)), want);
}

static void
test_printable_text_is_kept(void **state)
{
	check("", "");
	check("plain ASCII text, with ~ and \\", "plain ASCII text, with ~ and \\");
	/* Two-, three- and four-byte UTF-8: an e acute, the euro sign, an emoji. */
	check("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	/* U+00A0, the first character after the C1 block. */
	check("\xc2\xa0", "\xc2\xa0");
}

static void
test_controls_are_escaped(void **state)
{
	check("\x1b[2J", "\\x1b[2J");
	check("a\nb\tc\rd", "a\\x0ab\\x09c\\x0dd");
	check("\x7f\x01", "\\x7f\\x01");
	/* C1 controls as UTF-8: CSI (U+009B) and U+0080. */
	check("\xc2\x9b" "31m", "\\xc2\\x9b31m");
	check("\xc2\x80", "\\xc2\\x80");
}

static void
test_malformed_utf8_is_escaped(void **state)
{
	check("\xff\xfe", "\\xff\\xfe");
	check("\x80", "\\x80");				/* a lone continuation byte */
	check("\xc3", "\\xc3");				/* cut short at the end */
	check("\xe2\x82", "\\xe2\\x82");
	check("\xc0\xaf", "\\xc0\\xaf");		/* overlong '/' */
	check("\xe0\x80\xaf", "\\xe0\\x80\\xaf");	/* overlong, three bytes */
	check("\xed\xa0\x80", "\\xed\\xa0\\x80");	/* a UTF-16 surrogate */
	check("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80");	/* beyond U+10FFFF */
}

static void
test_short_buffer_cuts_whole_units(void **state)
{
	char out[8];

	/* "ab" fits, the 4-byte escape of ESC would not leave room for the NUL. */
	assert_string_equal(kw_escape("ab\x1b" "cd", out, 6), "ab");
	assert_string_equal(kw_escape("ab\x1b" "cd", out, 7), "ab\\x1b");
	/* A character is not split either. */
	assert_string_equal(kw_escape("a\xe2\x82\xac", out, 4), "a");
	assert_string_equal(kw_escape("anything", out, 1), "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_printable_text_is_kept),
		cmocka_unit_test(test_controls_are_escaped),
		cmocka_unit_test(test_malformed_utf8_is_escaped),
		cmocka_unit_test(test_short_buffer_cuts_whole_units),
	};

	return cmocka_run_group_tests_name("escape", tests, NULL, NULL);
}
