/*
 * test_perm.c - unit tests for the permission grammar and its matching
 * (perm.h).
 *
 * The grammar is SPEC3's: VERB [":" PATTERN], verbs read, write, execute,
 * admin and '*', patterns of 1..128 characters from [A-Za-z0-9._/@+=,-]
 * plus the globs '*' (crossing '/') and '?'.  A narrowed permission never
 * grants a request about no resource; '*' alone grants everything.  Error
 * messages quote the permission and, for a bad character, give its 1-based
 * position in the whole text; the spec's examples are checked word for word.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/keywarden.h"
#include "common/perm.h"

static const char *const all_verbs[] = { "read", "write", "execute", "admin" };
#define N_VERBS (sizeof(all_verbs) / sizeof(all_verbs[0]))

/* ---- helpers --------------------------------------------------------- */

static struct kw_perm
parse_ok(const char *text)
{
	struct kw_perm p;
	char err[512] = "";

	memset(&p, 0xa5, sizeof(p));
	int r = kw_perm_parse(text, &p, err, sizeof(err));
	if (r != 0)
		fail_msg("\"%s\" refused: %s", text, err);
	/* Both fields are proper strings after a successful parse. */
	assert_non_null(memchr(p.verb, '\0', sizeof(p.verb)));
	assert_non_null(memchr(p.pattern, '\0', sizeof(p.pattern)));
	return p;
}

/*
 * Parse text expecting KW_ERR_INVALID; the message goes to err.  The output
 * struct must come back byte for byte as it went in.
 */
static void
parse_fail(const char *text, char *err, size_t err_len)
{
	struct kw_perm p, before;

	memset(&p, 0x5a, sizeof(p));
	before = p;
	memset(err, 'X', err_len);
	int r = kw_perm_parse(text, &p, err, err_len);
	if (r == 0)
		fail_msg("\"%s\" accepted (verb \"%s\", pattern \"%s\")", text, p.verb, p.pattern);
	assert_int_equal(r, KW_ERR_INVALID);
	assert_memory_equal(&p, &before, sizeof(p));
	assert_non_null(memchr(err, '\0', err_len));
	assert_true(err[0] != '\0');
}

static void
expect_error(const char *text, const char *want)
{
	char err[512];

	parse_fail(text, err, sizeof(err));
	assert_string_equal(err, want);
}

/* The message starts with the quoted permission and contains `part`. */
static void
expect_error_part(const char *text, const char *part)
{
	char err[512], quoted[300];

	parse_fail(text, err, sizeof(err));
	snprintf(quoted, sizeof(quoted), "\"%s\": ", text);
	if (strncmp(err, quoted, strlen(quoted)) != 0)
		fail_msg("message for \"%s\" does not start with the quoted permission: %s", text, err);
	if (strstr(err, part) == NULL)
		fail_msg("message for \"%s\" lacks \"%s\": %s", text, part, err);
}

static bool
grants(const char *perm_text, const char *verb, const char *resource)
{
	struct kw_perm p = parse_ok(perm_text);

	return kw_perm_grants(&p, verb, resource);
}

/* ---- parsing: verbs -------------------------------------------------- */

static void
test_verbs_without_pattern(void **state)
{
	const char *verbs[] = { "read", "write", "execute", "admin", "*" };

	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		struct kw_perm p = parse_ok(verbs[i]);
		assert_string_equal(p.verb, verbs[i]);
		assert_string_equal(p.pattern, "");
	}
}

static void
test_verbs_with_pattern(void **state)
{
	const char *verbs[] = { "read", "write", "execute", "admin", "*" };
	char text[64];

	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		snprintf(text, sizeof(text), "%s:key/anthropic*", verbs[i]);
		struct kw_perm p = parse_ok(text);
		assert_string_equal(p.verb, verbs[i]);
		assert_string_equal(p.pattern, "key/anthropic*");
	}
}

static void
test_pattern_every_allowed_char(void **state)
{
	static const char all[] = "read:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._/@+=,-*?";
	struct kw_perm p = parse_ok(all);

	assert_string_equal(p.verb, "read");
	assert_string_equal(p.pattern, all + strlen("read:"));
	/* Glob characters alone are patterns too. */
	assert_string_equal(parse_ok("read:*").pattern, "*");
	assert_string_equal(parse_ok("read:?").pattern, "?");
	assert_string_equal(parse_ok("*:*").pattern, "*");
	assert_string_equal(parse_ok("admin:audit").pattern, "audit");
}

static void
test_verb_known(void **state)
{
	for (size_t i = 0; i < N_VERBS; i++)
		assert_true(kw_perm_verb_known(all_verbs[i]));
	assert_false(kw_perm_verb_known("*"));
	assert_false(kw_perm_verb_known(""));
	assert_false(kw_perm_verb_known("Read"));
	assert_false(kw_perm_verb_known("reed"));
	assert_false(kw_perm_verb_known("read "));
	assert_false(kw_perm_verb_known("rea"));
	assert_false(kw_perm_verb_known("readx"));
	assert_false(kw_perm_verb_known("read:key/x"));
}

/* ---- matching -------------------------------------------------------- */

static void
test_star_grants_everything(void **state)
{
	const char *resources[] = { NULL, "key/anthropic", "user/alice", "role/developer",
		"session/0123abcd", "audit", "user", "role", "" };

	for (size_t v = 0; v < N_VERBS; v++)
		for (size_t r = 0; r < sizeof(resources) / sizeof(resources[0]); r++)
			if (!grants("*", all_verbs[v], resources[r]))
				fail_msg("\"*\" refuses %s on %s", all_verbs[v],
				    resources[r] ? resources[r] : "(none)");
	/* Administration in particular: the built-in admin role is just [*]. */
	assert_true(grants("*", "admin", "user/alice"));
	assert_true(grants("*", "admin", "role/ops"));
	assert_true(grants("*", "admin", "user"));
}

static void
test_unnarrowed_verb_grants_only_itself(void **state)
{
	const char *resources[] = { NULL, "key/anthropic", "user/alice", "audit" };

	for (size_t have = 0; have < N_VERBS; have++) {
		struct kw_perm p = parse_ok(all_verbs[have]);
		for (size_t want = 0; want < N_VERBS; want++)
			for (size_t r = 0; r < sizeof(resources) / sizeof(resources[0]); r++) {
				bool g = kw_perm_grants(&p, all_verbs[want], resources[r]);
				if (g != (have == want))
					fail_msg("\"%s\" %s %s on %s", all_verbs[have],
					    g ? "grants" : "refuses", all_verbs[want],
					    resources[r] ? resources[r] : "(none)");
			}
	}
}

static void
test_narrowed_verb_grants_only_itself(void **state)
{
	char text[64];

	for (size_t have = 0; have < N_VERBS; have++) {
		snprintf(text, sizeof(text), "%s:key/*", all_verbs[have]);
		struct kw_perm p = parse_ok(text);
		for (size_t want = 0; want < N_VERBS; want++)
			assert_int_equal(kw_perm_grants(&p, all_verbs[want], "key/anthropic"),
			    have == want);
	}
	/* '*' narrowed: every verb, on the pattern only. */
	for (size_t want = 0; want < N_VERBS; want++) {
		assert_true(grants("*:key/*", all_verbs[want], "key/anthropic"));
		assert_false(grants("*:key/*", all_verbs[want], "user/alice"));
	}
	/* Not "admin" because the verb is a prefix or suffix of another word. */
	assert_false(grants("read", "rea", "key/a"));
	assert_false(grants("read", "reader", "key/a"));
	assert_false(grants("read", "", "key/a"));
}

static void
test_pattern_exact(void **state)
{
	assert_true(grants("read:key/anthropic", "read", "key/anthropic"));
	assert_false(grants("read:key/anthropic", "read", "key/anthropic-prod"));
	assert_false(grants("read:key/anthropic", "read", "key/anthropi"));
	assert_false(grants("read:key/anthropic", "read", "key/anthropic/x"));
	assert_false(grants("read:key/anthropic", "read", "xkey/anthropic"));
	assert_false(grants("read:key/anthropic", "read", "Key/anthropic"));
	assert_false(grants("read:key/anthropic", "read", ""));
	/* The whole name: no substring or prefix matching. */
	assert_false(grants("read:anthropic", "read", "key/anthropic"));
	assert_false(grants("read:key", "read", "key/anthropic"));
	assert_true(grants("admin:audit", "admin", "audit"));
	assert_true(grants("admin:user", "admin", "user"));
	assert_false(grants("admin:user", "admin", "user/alice"));
	/* '.' is a plain character, not "any". */
	assert_true(grants("read:key/a.b", "read", "key/a.b"));
	assert_false(grants("read:key/a.b", "read", "key/axb"));
}

static void
test_pattern_star_crosses_slash(void **state)
{
	assert_true(grants("read:key/*", "read", "key/anthropic"));
	assert_true(grants("read:key/*", "read", "key/a/b/c"));
	assert_true(grants("read:key/*", "read", "key/"));
	assert_false(grants("read:key/*", "read", "key"));
	assert_false(grants("read:key/*", "read", "user/alice"));
	assert_true(grants("read:key/a*", "read", "key/a/b"));
	assert_true(grants("read:*", "read", "audit"));
	assert_true(grants("read:*", "read", "user/alice"));
	assert_true(grants("read:*", "read", "session/x/y"));
	assert_true(grants("read:*/alice", "read", "user/alice"));
	assert_true(grants("read:*/alice", "read", "a/b/alice"));
	assert_false(grants("read:*/alice", "read", "user/alice2"));
	assert_true(grants("read:*e*", "read", "user/bob"));
	/* A leading '.' is an ordinary character under flags 0 (no FNM_PERIOD). */
	assert_true(grants("read:key/*", "read", "key/.hidden"));
	assert_true(grants("read:*", "read", ".x"));
}

static void
test_pattern_question(void **state)
{
	assert_true(grants("read:key/?", "read", "key/a"));
	assert_false(grants("read:key/?", "read", "key/ab"));
	assert_false(grants("read:key/?", "read", "key/"));
	assert_true(grants("read:user/al?ce", "read", "user/alice"));
	assert_true(grants("read:user/al?ce", "read", "user/alxce"));
	assert_false(grants("read:user/al?ce", "read", "user/alce"));
	/* '?' is one character, '/' included. */
	assert_true(grants("read:key?x", "read", "key/x"));
	assert_true(grants("read:???", "read", "a/b"));
	assert_false(grants("read:???", "read", "a/bc"));
}

static void
test_pattern_prefix_glob(void **state)
{
	static const char *const perm = "read:key/anthropic*";

	assert_true(grants(perm, "read", "key/anthropic"));
	assert_true(grants(perm, "read", "key/anthropic-prod"));
	assert_true(grants(perm, "read", "key/anthropic/2"));
	assert_false(grants(perm, "read", "key/openai"));
	assert_false(grants(perm, "read", "xkey/anthropic"));
	assert_false(grants(perm, "read", "key/anthropi"));
	assert_false(grants(perm, "read", "key/Anthropic"));
	assert_false(grants(perm, "read", "user/anthropic"));
	/* The verb still has to match. */
	assert_false(grants(perm, "write", "key/anthropic"));
	assert_false(grants(perm, "admin", "key/anthropic"));
}

static void
test_narrowed_never_grants_without_resource(void **state)
{
	const char *perms[] = { "read:*", "read:key/*", "read:key/anthropic", "*:*",
		"admin:*", "admin:user/*", "execute:?*" };

	for (size_t i = 0; i < sizeof(perms) / sizeof(perms[0]); i++) {
		struct kw_perm p = parse_ok(perms[i]);
		for (size_t v = 0; v < N_VERBS; v++)
			if (kw_perm_grants(&p, all_verbs[v], NULL))
				fail_msg("\"%s\" grants %s with no resource", perms[i], all_verbs[v]);
	}
}

static void
test_unnarrowed_grants_without_resource(void **state)
{
	for (size_t v = 0; v < N_VERBS; v++) {
		assert_true(grants(all_verbs[v], all_verbs[v], NULL));
		assert_true(grants("*", all_verbs[v], NULL));
	}
}

/* ---- coverage: is one permission within another ----------------------- */

static bool
covers(const char *have_text, const char *want_text)
{
	struct kw_perm have = parse_ok(have_text), want = parse_ok(want_text);

	return kw_perm_covers(&have, &want);
}

static void
test_covers_verbs(void **state)
{
	for (size_t h = 0; h < N_VERBS; h++) {
		for (size_t w = 0; w < N_VERBS; w++)
			assert_int_equal(covers(all_verbs[h], all_verbs[w]), h == w);
		assert_true(covers("*", all_verbs[h]));
		/* "*" is every verb, today's and tomorrow's: only "*" covers it. */
		assert_false(covers(all_verbs[h], "*"));
		assert_false(covers(all_verbs[h], "*:key/x"));
	}
	assert_true(covers("*", "*"));
	assert_true(covers("*", "*:key/x"));
	assert_true(covers("*:key/*", "*:key/x"));
	assert_true(covers("*:key/*", "admin:key/x"));
	assert_false(covers("admin:key/*", "*:key/x"));
}

static void
test_covers_unnarrowed(void **state)
{
	/* An unnarrowed permission covers every pattern of its verb ... */
	assert_true(covers("read", "read:key/x"));
	assert_true(covers("read", "read:*"));
	assert_true(covers("admin", "admin:role/*"));
	/* ... and only an unnarrowed one covers it: "read" grants requests about
	   no resource, which no pattern does, "*" included. */
	assert_false(covers("read:*", "read"));
	assert_false(covers("*:*", "read"));
	assert_false(covers("*:*", "*"));
	assert_false(covers("admin:role/*", "admin"));
	assert_false(covers("admin:role/*", "*"));
}

static void
test_covers_patterns(void **state)
{
	/* Equal. */
	assert_true(covers("read:key/a", "read:key/a"));
	assert_true(covers("read:key/a?b*", "read:key/a?b*"));
	/* A literal want: have's pattern decides by matching. */
	assert_true(covers("read:key/*", "read:key/anthropic"));
	assert_true(covers("read:key/?", "read:key/a"));
	assert_true(covers("read:*/alice", "read:user/alice"));
	assert_false(covers("read:key/?", "read:key/ab"));
	assert_false(covers("read:key/a", "read:key/b"));
	assert_false(covers("read:key/*", "read:key"));
	assert_false(covers("read:user/*", "read:key/a"));
	/* A literal X then '*' covers what starts with X. */
	assert_true(covers("read:*", "read:key/*"));
	assert_true(covers("read:*", "read:?"));
	assert_true(covers("read:key/*", "read:key/*"));
	assert_true(covers("read:key/*", "read:key/a*"));
	assert_true(covers("read:key/*", "read:key/?"));
	assert_true(covers("read:key/team-*", "read:key/team-a?"));
	assert_true(covers("read:key/team-*", "read:key/team-sub*"));
	assert_true(covers("admin:role/*", "admin:role/team-*"));
	/* ... and nothing that could match a name not starting with X. */
	assert_false(covers("read:key/a*", "read:key/*"));
	assert_false(covers("read:key/a*", "read:key/?"));
	assert_false(covers("read:key/a*", "read:*"));
	assert_false(covers("read:key/*", "read:*"));
	assert_false(covers("read:key/*", "read:?ey/a"));
	assert_false(covers("read:key/*", "read:ke?/a"));
	assert_false(covers("admin:user/*", "admin:role/x"));
	/* Conservative: true inclusions this check does not see. */
	assert_false(covers("read:*a", "read:b*a"));
	assert_false(covers("read:key/?*", "read:key/ab*"));
	assert_false(covers("read:k*/*", "read:key/*"));
}

/*
 * Soundness: whenever covers() says yes, every request the wanted
 * permission grants over a set of names is granted by the covering one.
 */
static void
test_covers_is_sound(void **state)
{
	static const char *const perms[] = { "*", "read", "write", "*:*", "read:*",
		"read:key/*", "read:key/a*", "read:key/?", "read:key/ab", "read:key/a?",
		"read:*/a", "read:key", "write:key/*", "admin:user/*", "admin:role/*",
		"admin:role/team-*", "admin:role/team-a", "*:key/*", "read:?*", "read:??" };
	static const char *const names[] = { "key", "key/", "key/a", "key/ab", "key/abc",
		"key/b", "key/a/b", "user/a", "user/bob", "role/team-a", "role/team-",
		"role/x", "a", "ab", "k/a", NULL };
	static const char *const verbs[] = { "read", "write", "execute", "admin" };
	size_t n = sizeof(perms) / sizeof(perms[0]), checked = 0;

	for (size_t h = 0; h < n; h++)
		for (size_t w = 0; w < n; w++) {
			struct kw_perm have = parse_ok(perms[h]), want = parse_ok(perms[w]);
			if (!kw_perm_covers(&have, &want))
				continue;
			checked++;
			for (size_t v = 0; v < 4; v++)
				for (size_t r = 0; r < sizeof(names) / sizeof(names[0]); r++)
					if (kw_perm_grants(&want, verbs[v], names[r]) &&
					    !kw_perm_grants(&have, verbs[v], names[r]))
						fail_msg("\"%s\" said to cover \"%s\" but does not "
						    "grant %s on %s", perms[h], perms[w], verbs[v],
						    names[r] ? names[r] : "(none)");
		}
	assert_true(checked > n);
}

static void
test_first_uncovered(void **state)
{
	struct kw_perm have[] = { parse_ok("read:key/team-*"), parse_ok("write:key/team-a"),
		parse_ok("admin:role/team-*") };
	struct kw_perm want[] = { parse_ok("read:key/team-b"), parse_ok("admin:role/team-x"),
		parse_ok("write:key/team-b"), parse_ok("*") };
	struct kw_perm split[] = { parse_ok("read"), parse_ok("write"), parse_ok("execute"),
		parse_ok("admin") };
	struct kw_perm star = parse_ok("*");

	assert_int_equal(kw_perm_first_uncovered(have, 3, want, 2), 2);
	assert_int_equal(kw_perm_first_uncovered(have, 3, want, 4), 2);
	assert_int_equal(kw_perm_first_uncovered(have, 3, want + 3, 1), 0);
	assert_int_equal(kw_perm_first_uncovered(&star, 1, want, 4), 4);
	/* Nothing wanted is always within; nothing held covers nothing else. */
	assert_int_equal(kw_perm_first_uncovered(NULL, 0, NULL, 0), 0);
	assert_int_equal(kw_perm_first_uncovered(have, 3, NULL, 0), 0);
	assert_int_equal(kw_perm_first_uncovered(NULL, 0, want, 1), 0);
	/* Permissions are not combined: the four verbs do not make "*". */
	assert_int_equal(kw_perm_first_uncovered(split, 4, &star, 1), 0);
	assert_int_equal(kw_perm_first_uncovered(split, 4, split, 4), 4);
}

/* ---- parse errors ---------------------------------------------------- */

static void
test_error_missing_verb(void **state)
{
	expect_error_part(":x", "missing verb");
	expect_error_part(":", "missing verb");
	expect_error_part(":key/anthropic*", "missing verb");
	expect_error_part("", "missing verb");
}

static void
test_error_unknown_verb(void **state)
{
	/* SPEC3's example, word for word. */
	expect_error("reed:key/x",
	    "\"reed:key/x\": unknown verb \"reed\" (expected read, write, execute, admin or *)");
	expect_error("reed",
	    "\"reed\": unknown verb \"reed\" (expected read, write, execute, admin or *)");
	expect_error_part("Read:key/x", "unknown verb \"Read\"");
	expect_error_part("READ", "unknown verb \"READ\"");
	expect_error_part("rea", "unknown verb \"rea\"");
	expect_error_part("read ", "unknown verb \"read \"");
	expect_error_part(" read", "unknown verb \" read\"");
	expect_error_part("**", "unknown verb \"**\"");
	expect_error_part("*read", "unknown verb \"*read\"");
	/* Longer than any verb, with and without a pattern. */
	expect_error_part("executes", "unknown verb \"executes\"");
	expect_error_part("executes:key/x", "unknown verb \"executes\"");
	expect_error_part("readwriteexecuteadmin:key/x", "unknown verb \"readwriteexecuteadmin\"");
}

static void
test_error_very_long_verb(void **state)
{
	char text[2000], err[512];

	memset(text, 'r', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	parse_fail(text, err, sizeof(err));
	assert_int_equal(err[0], '"');
	assert_non_null(strstr(err, "unknown verb"));
	text[1000] = ':';
	parse_fail(text, err, sizeof(err));
	assert_non_null(strstr(err, "unknown verb"));
}

static void
test_error_empty_pattern(void **state)
{
	expect_error("read:", "\"read:\": empty resource pattern after ':'");
	expect_error("*:", "\"*:\": empty resource pattern after ':'");
	expect_error_part("admin:", "empty resource pattern");
}

static void
test_error_bad_character_spec_example(void **state)
{
	expect_error("read:key/[ab]", "\"read:key/[ab]\": character '[' at position 10 "
	    "(counting from 1) is not allowed in a resource pattern");
}

static void
test_error_bad_characters(void **state)
{
	/* Position counted from 1 over the whole text, verb included. */
	expect_error_part("read:key/a b", "character ' ' at position 11 (counting from 1) "
	    "is not allowed in a resource pattern");
	expect_error_part("write:!key", "character '!' at position 7 (counting from 1)");
	expect_error_part("*:a b", "character ' ' at position 4 (counting from 1)");
	expect_error_part("execute:x!", "character '!' at position 10 (counting from 1)");
	expect_error_part("admin:[", "character '[' at position 7 (counting from 1)");
	expect_error_part("read:key/a]", "character ']' at position 11 (counting from 1)");
	/* A backslash is shown escaped, in the quote and in the character named. */
	{
		char err[512];
		parse_fail("read:key/\\*", err, sizeof(err));
		assert_non_null(strstr(err, "\"read:key/\\x5c*\""));
		assert_non_null(strstr(err, "character '\\x5c' at position 10 (counting from 1)"));
	}
	/* A second ':' belongs to the pattern, where it is not allowed. */
	expect_error_part("read:key:x", "character ':' at position 9 (counting from 1)");
	expect_error_part("read::", "character ':' at position 6 (counting from 1)");
	/* The first bad character is the one named. */
	expect_error_part("read:a!b[c", "character '!' at position 7 (counting from 1)");
}

static void
test_error_control_and_high_bytes(void **state)
{
	char err[512];

	/* The byte is not copied raw into the message; the position still is right. */
	parse_fail("read:key/\x01", err, sizeof(err));
	assert_non_null(strstr(err, "at position 10 (counting from 1) is not allowed"));
	assert_null(strchr(err + 1 + strlen("read:key/\x01") + 1, '\x01'));
	parse_fail("read:\tkey", err, sizeof(err));
	assert_non_null(strstr(err, "at position 6 (counting from 1)"));
	parse_fail("read:key/x\x7f", err, sizeof(err));
	assert_non_null(strstr(err, "at position 11 (counting from 1)"));
	/* UTF-8 is outside the set: the first byte of "é" at 10. */
	parse_fail("read:key/\xc3\xa9", err, sizeof(err));
	assert_non_null(strstr(err, "at position 10 (counting from 1)"));
}

static void
test_pattern_length_limit(void **state)
{
	char text[300], err[512];
	size_t vlen = strlen("read:");

	/* 128 characters: accepted and kept whole. */
	memcpy(text, "read:", vlen);
	memset(text + vlen, 'a', KW_PERM_PATTERN_MAX);
	text[vlen + KW_PERM_PATTERN_MAX] = '\0';
	assert_int_equal(KW_PERM_PATTERN_MAX, 128);
	struct kw_perm p = parse_ok(text);
	assert_int_equal(strlen(p.pattern), 128);
	assert_string_equal(p.pattern, text + vlen);
	assert_true(kw_perm_grants(&p, "read", text + vlen));

	/* 128 with globs, as the longest pattern a role can hold. */
	text[vlen] = '*';
	text[vlen + KW_PERM_PATTERN_MAX - 1] = '?';
	p = parse_ok(text);
	assert_int_equal(strlen(p.pattern), 128);

	/* 129: refused, and the message quotes the permission (maybe shortened). */
	memset(text + vlen, 'a', KW_PERM_PATTERN_MAX + 1);
	text[vlen + KW_PERM_PATTERN_MAX + 1] = '\0';
	parse_fail(text, err, sizeof(err));
	assert_true(strncmp(err, "\"read:aaaa", 10) == 0);
	assert_non_null(strstr(err, "128"));

	/* Much longer, and with a bad character inside: still just refused. */
	memset(text + vlen, 'a', 250);
	text[vlen + 200] = '[';
	text[vlen + 250] = '\0';
	parse_fail(text, err, sizeof(err));
}

static void
test_error_small_buffer(void **state)
{
	char err[8];

	/* The message is cut, but ends in a NUL inside the buffer. */
	parse_fail("reed:key/x", err, sizeof(err));
	assert_int_equal(strlen(err), sizeof(err) - 1);
	parse_fail("read:key/[ab]", err, sizeof(err));
	assert_int_equal(strlen(err), sizeof(err) - 1);
}

static void
test_failure_leaves_output_untouched(void **state)
{
	/* parse_fail compares the whole struct; run it over each kind of error. */
	const char *bad[] = { "", ":x", "reed:key/x", "executes", "read:", "read:key/[ab]",
		"read:key/a b", "read:\x01", "read:key:x", "Read" };
	char err[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_fail(bad[i], err, sizeof(err));

	/* And a good parse after a bad one starts clean: no pattern left over. */
	struct kw_perm p;
	assert_int_equal(kw_perm_parse("read:key/x", &p, err, sizeof(err)), 0);
	assert_int_equal(kw_perm_parse("write", &p, err, sizeof(err)), 0);
	assert_string_equal(p.verb, "write");
	assert_string_equal(p.pattern, "");
	assert_true(kw_perm_grants(&p, "write", NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verbs_without_pattern),
		cmocka_unit_test(test_verbs_with_pattern),
		cmocka_unit_test(test_pattern_every_allowed_char),
		cmocka_unit_test(test_verb_known),
		cmocka_unit_test(test_star_grants_everything),
		cmocka_unit_test(test_unnarrowed_verb_grants_only_itself),
		cmocka_unit_test(test_narrowed_verb_grants_only_itself),
		cmocka_unit_test(test_pattern_exact),
		cmocka_unit_test(test_pattern_star_crosses_slash),
		cmocka_unit_test(test_pattern_question),
		cmocka_unit_test(test_pattern_prefix_glob),
		cmocka_unit_test(test_narrowed_never_grants_without_resource),
		cmocka_unit_test(test_unnarrowed_grants_without_resource),
		cmocka_unit_test(test_covers_verbs),
		cmocka_unit_test(test_covers_unnarrowed),
		cmocka_unit_test(test_covers_patterns),
		cmocka_unit_test(test_covers_is_sound),
		cmocka_unit_test(test_first_uncovered),
		cmocka_unit_test(test_error_missing_verb),
		cmocka_unit_test(test_error_unknown_verb),
		cmocka_unit_test(test_error_very_long_verb),
		cmocka_unit_test(test_error_empty_pattern),
		cmocka_unit_test(test_error_bad_character_spec_example),
		cmocka_unit_test(test_error_bad_characters),
		cmocka_unit_test(test_error_control_and_high_bytes),
		cmocka_unit_test(test_pattern_length_limit),
		cmocka_unit_test(test_error_small_buffer),
		cmocka_unit_test(test_failure_leaves_output_untouched),
	};

	return cmocka_run_group_tests_name("perm", tests, NULL, NULL);
}
