/*
 * test_match.c - the policy's matchers (policy/match.h): gitignore globs,
 * path normalisation and resolution (through real links in a mkdtemp
 * directory), URL parsing and domain containment.  Tables, one row a case;
 * a failing row names itself.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/errors.h"
#include "policy/match.h"
#include "tests/unit/support/fixture.h"

/* ---- globs ---------------------------------------------------------------- */

struct glob_case {
	const char *pattern;
	const char *path;
	bool want;
};

static const struct glob_case glob_cases[] = {
	/* No "/": the last segment at any depth, and what is under it. */
	{ "*.pem", "/a/b.pem", true },
	{ "*.pem", "/b.pem", true },
	{ "*.pem", "/a/b.pem.bak", false },
	{ "*.pem", "/a/pem", false },
	{ "*.pem", "/a/x.pem/inner", true },
	{ ".env", "/srv/app/.env", true },
	{ ".env", "/.env", true },
	{ ".env", "/srv/app/.envrc", false },
	{ ".env", "/srv/app/x.env", false },
	{ ".env", "/srv/.env/x", true },
	{ "id_rsa*", "/home/a/.ssh/id_rsa.pub", true },
	{ "**/id_rsa*", "/home/a/.ssh/id_rsa.pub", true },
	{ "**/id_rsa*", "/home/a/.ssh/id_rsa_dir/inner", true },
	{ "**/id_rsa*", "/home/a/.ssh/known_hosts", false },
	{ "*", "/", false },
	{ "*", "/x", true },
	{ "*", "/.hidden", true },
	/* A "/": anchored at the root, with or without the leading "/". */
	{ "/etc/*.conf", "/etc/a.conf", true },
	{ "etc/*.conf", "/etc/a.conf", true },
	{ "etc/*.conf", "/x/etc/a.conf", false },
	{ "/etc/*.conf", "/etc/sub/a.conf", false },
	{ "/etc/*.conf", "/etc/a.conf/inner", true },
	{ "/etc/*.conf", "/etc/a.confx", false },
	{ "/etc", "/etc", true },
	{ "/etc", "/etc/passwd", true },
	{ "/etc", "/etcetera", false },
	{ "/etc", "/", false },
	/* A trailing "/": no directory information, so the name and its contents. */
	{ "etc/", "/etc/x", true },
	{ "etc/", "/a/etc", true },
	{ "etc/", "/a/etcx", false },
	{ "/etc/", "/etc/passwd", true },
	{ "/etc/", "/a/etc", false },
	/* "**" as a segment, in every position. */
	{ "**", "/", true },
	{ "**", "/a/b/c", true },
	{ "/**", "/a", true },
	{ "**/x", "/x", true },
	{ "**/x", "/a/b/x", true },
	{ "**/x", "/a/b/xy", false },
	{ "**/x", "/a/x/b", true },
	{ "a/**/b", "/a/b", true },
	{ "a/**/b", "/a/x/b", true },
	{ "a/**/b", "/a/x/y/z/b", true },
	{ "a/**/b", "/a/x/y/z/c", false },
	{ "a/**/b", "/z/a/b", false },
	{ "a/**/b", "/a/b/c", true },
	{ "a/**", "/a", true },		/* "**" takes zero segments too */
	{ "a/**", "/a/b/c", true },
	{ "a/**", "/b", false },
	{ "a/**", "/ab", false },
	{ "**/a/**/b/**", "/x/a/y/b/z", true },
	{ "**/a/**/b/**", "/x/a/y/c/z", false },
	{ "**/**/**/**/x", "/x", true },
	{ "**/**/**/**/x", "/a/b/c/d/e/f/g/x", true },
	{ "**/**/**/**/x", "/a/b/c/d/e/f/g/y", false },
	{ "a/**/**/b", "/a/b", true },
	{ "**/.git", "/r/.git/config", true },
	{ "**/.git", "/r/.gitignore", false },
	{ "/a/**/b/*.key", "/a/1/2/b/k.key", true },
	{ "/a/**/b/*.key", "/a/1/2/b/k.pem", false },
	/* "**" inside a segment is a plain "*". */
	{ "a**b", "/x/aXXb", true },
	{ "a**b", "/x/a/b", false },
	{ "x/**y", "/x/ay", true },
	{ "x/**y", "/x/a/y", false },
	/* "*" and "?" stay inside their segment. */
	{ "/a/*", "/a", false },
	{ "/a/*", "/a/b", true },
	{ "/a/*", "/a/b/c", true },
	{ "/a/*/c", "/a/b/c", true },
	{ "/a/*/c", "/a/b/x/c", false },
	{ "/*", "/", false },
	{ "/a*", "/abc", true },
	{ "/*c", "/abc", true },
	{ "/a*c", "/ac", true },
	{ "/a*c", "/abd", false },
	{ "/*.*", "/.x", true },
	{ "/a*b*c", "/a/b/c", false },
	{ "/?", "/a", true },
	{ "/?", "/ab", false },
	{ "/a?c", "/abc", true },
	{ "/a?c", "/a/c", false },
	{ "/??", "/a", false },
	/* Classes. */
	{ "/[abc]", "/b", true },
	{ "/[abc]", "/d", false },
	{ "/[a-c]x", "/bx", true },
	{ "/[a-c]x", "/dx", false },
	{ "/[!a-c]x", "/dx", true },
	{ "/[!a-c]x", "/bx", false },
	{ "/[^a-c]x", "/dx", true },
	{ "/[^a-c]x", "/ax", false },
	{ "/[]]", "/]", true },
	{ "/[]a]", "/a", true },
	{ "/[!]]", "/]", false },
	{ "/[!]]", "/x", true },
	{ "/[a-]", "/-", true },
	{ "/[a-]", "/b", false },
	{ "/[z-a]", "/m", false },
	{ "/[ab", "/[ab", true },
	{ "/[ab", "/a", false },
	{ "/[]a-", "/[]a-", true },	/* unclosed: plain characters (fnmatch: no match) */
	{ "/[a/b]", "/[a/b]", true },
	{ "/[a/b]", "/a", false },
	{ "/[\\]]", "/]", true },
	{ "/[*]", "/*", true },
	{ "/[*]", "/a", false },
	{ "/[?]", "/?", true },
	{ "/[?]", "/a", false },
	{ "/[\x80-\xff]x", "/\xc3x", true },
	{ "/[\x80-\xff]x", "/ax", false },
	/* Escapes. */
	{ "/\\*", "/*", true },
	{ "/\\*", "/a", false },
	{ "/a\\?", "/a?", true },
	{ "/a\\?", "/ab", false },
	{ "/\\[ab]", "/[ab]", true },
	{ "/\\[ab]", "/a", false },
	{ "/a\\", "/a\\", true },
	{ "/\\a", "/a", true },
	{ "\\*.pem", "/k/*.pem", true },
	{ "\\*.pem", "/k/a.pem", false },
	/* Case, blank, root, doubled slashes. */
	{ "*.PEM", "/a/b.pem", false },
	{ "", "/a", false },
	{ "", "/", false },
	{ "/", "/a/b", true },
	{ "//a//b//", "/a/b/c", true },
	{ "//a//b//", "/a/c", false },
};

static void
test_glob_table(void **state)
{
	size_t failed = 0;

	for (size_t i = 0; i < KW_ELEMENTSOF(glob_cases); i++) {
		const struct glob_case *c = &glob_cases[i];
		bool got = kw_glob_match(c->pattern, c->path);

		if (got != c->want) {
			print_error("glob \"%s\" on \"%s\": %d, want %d\n", c->pattern, c->path,
			    got, c->want);
			failed++;
		}
	}
	assert_int_equal(failed, 0);
	assert_true(KW_ELEMENTSOF(glob_cases) >= 80);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* n copies of unit after prefix, in a fresh buffer (the caller's) with room
   for 15 more bytes. */
static char *
repeat(const char *prefix, const char *unit, size_t n)
{
	size_t plen = strlen(prefix), ulen = strlen(unit);
	char *s = malloc(plen + n * ulen + 16);

	assert_non_null(s);
	memcpy(s, prefix, plen);
	for (size_t i = 0; i < n; i++)
		memcpy(s + plen + i * ulen, unit, ulen);
	s[plen + n * ulen] = '\0';
	return s;
}

/*
 * Patterns a backtracking-by-recursion matcher takes exponential time on.
 * Each must finish quickly (the bound is generous for sanitizer builds; the
 * exponential cases would take years) and give the right answer.
 */
static void
test_glob_adversarial(void **state)
{
	char *long_seg = repeat("/", "a", 4000);	/* one segment of 4000 "a" */
	char *deep = repeat("", "/a", 2000);		/* 2000 segments "a" */
	char *stars = repeat("/", "*a", 1000);		/* "*a*a...*a" */
	char *stars_b = repeat("/", "*a", 1000);
	char *globstars = repeat("", "**/", 1000);
	char *many = repeat("", "**/a/", 500);
	double t0 = now();

	assert_false(kw_glob_match("*a*a*a*a*a*b", long_seg));
	assert_true(kw_glob_match("*a*a*a*a*a*a", long_seg));
	assert_false(kw_glob_match("**/*a*a*a*a*a*b", deep));
	assert_false(kw_glob_match("**/**/**/**/x", deep));
	assert_true(kw_glob_match("**/**/**/**/a", deep));
	assert_false(kw_glob_match("**/a/**/a/**/a/**/b", deep));
	/* A 2 KB "*a*a..." that matches, and one that cannot (a "b" at the end). */
	assert_true(kw_glob_match(stars, long_seg));
	stars_b[strlen(stars_b) - 1] = 'b';
	assert_false(kw_glob_match(stars_b, long_seg));
	strcat(globstars, "x");
	assert_false(kw_glob_match(globstars, deep));
	strcat(many, "b");
	assert_false(kw_glob_match(many, deep));
	many[strlen(many) - 1] = 'a';
	assert_true(kw_glob_match(many, deep));
	if (now() - t0 > 10.0)
		fail_msg("adversarial globs took %.1f s", now() - t0);
	free(long_seg);
	free(deep);
	free(stars);
	free(stars_b);
	free(globstars);
	free(many);
}

/* ---- paths ---------------------------------------------------------------- */

struct within_case {
	const char *path;
	const char *dir;
	bool want;
};

static const struct within_case within_cases[] = {
	{ "/etc", "/etc", true },
	{ "/etc/passwd", "/etc", true },
	{ "/etcetera", "/etc", false },
	{ "/et", "/etc", false },
	{ "/", "/", true },
	{ "/a/b", "/", true },
	{ "/etc/x", "/etc/", true },
	{ "/", "/etc", false },
};

static void
test_path_within(void **state)
{
	for (size_t i = 0; i < KW_ELEMENTSOF(within_cases); i++) {
		const struct within_case *c = &within_cases[i];

		if (kw_path_within(c->path, c->dir) != c->want)
			fail_msg("within(\"%s\", \"%s\") is not %d", c->path, c->dir, c->want);
	}
}

struct norm_case {
	const char *path;
	size_t outlen;
	int r;
	const char *want;
};

static const struct norm_case norm_cases[] = {
	{ "/", 64, 0, "/" },
	{ "//a//b/", 64, 0, "/a/b" },
	{ "/a/./b/.", 64, 0, "/a/b" },
	{ "/a/b/..", 64, 0, "/a" },
	{ "/..", 64, 0, "/" },
	{ "/a/../../b", 64, 0, "/b" },
	{ "/.../..a/a..", 64, 0, "/.../..a/a.." },
	{ "a/b", 64, KW_ERR_INVALID, NULL },
	{ "", 64, KW_ERR_INVALID, NULL },
	{ "/abcdef", 8, 0, "/abcdef" },		/* 7 bytes and the NUL: fits */
	{ "/abcdefg", 8, KW_ERR_INVALID, NULL },
	{ "/abc/defgh", 8, KW_ERR_INVALID, NULL },
	{ "/abcdefghijkl/..", 8, 0, "/" },	/* too long only on the way */
	{ "/ab/cdefghijkl/../x", 8, 0, "/ab/x" },
};

static void
test_path_normalise(void **state)
{
	for (size_t i = 0; i < KW_ELEMENTSOF(norm_cases); i++) {
		const struct norm_case *c = &norm_cases[i];
		char out[64];
		int r;

		memset(out, 'Z', sizeof(out));
		r = kw_path_normalise(c->path, out, c->outlen);
		if (r != c->r)
			fail_msg("normalise(\"%s\", %zu): %d, want %d", c->path, c->outlen, r, c->r);
		if (c->want && strcmp(out, c->want) != 0)
			fail_msg("normalise(\"%s\"): \"%s\", want \"%s\"", c->path, out, c->want);
	}
}

struct lexical_case {
	const char *path;
	const char *cwd;
	const char *home;
	int r;
	const char *want;
};

static const struct lexical_case lexical_cases[] = {
	{ "~", "/w", "/home/a", 0, "/home/a" },
	{ "~/", "/w", "/home/a", 0, "/home/a" },
	{ "~/x/../y", "/w", "/home/a", 0, "/home/a/y" },
	{ "~bob/x", "/w", "/home/a", KW_ERR_INVALID, NULL },
	{ "~bob", "/w", "/home/a", KW_ERR_INVALID, NULL },
	{ "~", "/w", "", KW_ERR_INVALID, NULL },
	{ "~/x", "/w", "rel", KW_ERR_INVALID, NULL },
	{ "x/y", "/w", "/home/a", 0, "/w/x/y" },
	{ "./~", "/w", "/home/a", 0, "/w/~" },
	{ "../../../..", "/w/a", "/home/a", 0, "/" },
	{ ".", "/w/a/", "/home/a", 0, "/w/a" },
	{ "/abs/./p/", "/w", "/home/a", 0, "/abs/p" },
	{ "/abs/../../etc", "rel", "", 0, "/etc" },
	{ "", "/w", "/home/a", KW_ERR_INVALID, NULL },
	{ "x", "rel", "/home/a", KW_ERR_INVALID, NULL },
	{ "x", "", "/home/a", KW_ERR_INVALID, NULL },
};

static void
test_path_resolve_lexical(void **state)
{
	for (size_t i = 0; i < KW_ELEMENTSOF(lexical_cases); i++) {
		const struct lexical_case *c = &lexical_cases[i];
		struct kw_resolved r;
		int e;

		memset(&r, 'Z', sizeof(r));
		e = kw_path_resolve(c->path, c->cwd, c->home, false, &r);
		if (e != c->r)
			fail_msg("resolve(\"%s\", \"%s\", \"%s\"): %d, want %d", c->path, c->cwd,
			    c->home, e, c->r);
		if (!c->want) {
			/* Untouched on failure. */
			assert_int_equal(r.lexical[0], 'Z');
			continue;
		}
		if (strcmp(r.lexical, c->want) != 0)
			fail_msg("resolve(\"%s\"): \"%s\", want \"%s\"", c->path, r.lexical, c->want);
		assert_string_equal(r.real, r.lexical);
		assert_false(r.exists);
		assert_false(r.is_link);
	}
}

static void
test_path_resolve_too_long(void **state)
{
	char *big = repeat("/", "a", 5000);
	char *half = repeat("", "b", 3000);
	char *cwd = repeat("/", "c", 3000);
	char *down = repeat("", "/d", 2600), *up = repeat("", "/..", 2600);
	char *undone = malloc(strlen(down) + strlen(up) + 1);
	struct kw_resolved r;

	assert_int_equal(kw_path_resolve(big, "/", "/", false, &r), KW_ERR_INVALID);
	assert_int_equal(kw_path_resolve(half, cwd, "/", false, &r), KW_ERR_INVALID);
	assert_int_equal(kw_path_resolve(big, "/", "/", true, &r), KW_ERR_INVALID);
	/* 13000 bytes as written: refused, though it comes to "/". */
	assert_non_null(undone);
	strcat(strcpy(undone, down), up);
	assert_int_equal(kw_path_resolve(undone, "/", "/", false, &r), KW_ERR_INVALID);
	/* 6500 bytes: "/" once the ".." are applied, though too long on the way. */
	down[1300 * 2] = '\0';
	up[1300 * 3] = '\0';
	strcat(strcpy(undone, down), up);
	assert_true(strlen(undone) > PATH_MAX);
	assert_int_equal(kw_path_resolve(undone, "/", "/", false, &r), 0);
	assert_string_equal(r.lexical, "/");
	free(big);
	free(half);
	free(cwd);
	free(down);
	free(up);
	free(undone);
}

/* The fixture's directory as realpath(3) has it, and names under it. */
struct tree {
	char dir[256];
};

static const char *
at(const struct tree *t, const char *name)
{
	static char buf[8][512];
	static int i;
	char *p = buf[i++ % 8];
	int n = snprintf(p, sizeof(buf[0]), "%s/%s", t->dir, name);

	assert_true(n > 0 && (size_t)n < sizeof(buf[0]));
	return p;
}

/*
 * allow/          deny/secret    deny/sub/
 * allow/link  -> ../deny         (relative, into the denied directory)
 * allow/deep  -> DIR/deny/sub    (absolute)
 * allow/dang  -> DIR/deny/new    (its target does not exist)
 * allow/dang2 -> ../deny/new2
 * allow/f     -> ../deny/secret  (a file)
 * allow/hop   -> link            (a link to a link)
 * l1 -> l2, l2 -> l1             (a loop)
 */
static void
make_tree(const struct kw_test_fx *fx, struct tree *t)
{
	char real[PATH_MAX], target[512];

	assert_non_null(realpath(fx->dir, real));
	assert_true(strlen(real) < sizeof(t->dir));
	strcpy(t->dir, real);
	assert_int_equal(mkdir(at(t, "allow"), 0700), 0);
	assert_int_equal(mkdir(at(t, "deny"), 0700), 0);
	assert_int_equal(mkdir(at(t, "deny/sub"), 0700), 0);
	kw_test_write_text(at(t, "deny/secret"), "s", 0600);
	assert_int_equal(symlink("../deny", at(t, "allow/link")), 0);
	snprintf(target, sizeof(target), "%s/deny/sub", t->dir);
	assert_int_equal(symlink(target, at(t, "allow/deep")), 0);
	snprintf(target, sizeof(target), "%s/deny/new", t->dir);
	assert_int_equal(symlink(target, at(t, "allow/dang")), 0);
	assert_int_equal(symlink("../deny/new2", at(t, "allow/dang2")), 0);
	assert_int_equal(symlink("../deny/secret", at(t, "allow/f")), 0);
	assert_int_equal(symlink("link", at(t, "allow/hop")), 0);
	assert_int_equal(symlink("l2", at(t, "l1")), 0);
	assert_int_equal(symlink("l1", at(t, "l2")), 0);
}

struct fs_case {
	const char *path;	/* relative to the tree */
	const char *lexical;	/* under the tree */
	const char *real;	/* under the tree */
	bool exists;
	bool is_link;
};

static const struct fs_case fs_cases[] = {
	{ "deny/secret", "deny/secret", "deny/secret", true, false },
	{ "allow", "allow", "allow", true, false },
	/* Into the denied directory by a link: lexically allowed, really not. */
	{ "allow/link/secret", "allow/link/secret", "deny/secret", true, true },
	{ "allow/link", "allow/link", "deny", true, true },
	{ "allow/f", "allow/f", "deny/secret", true, true },
	{ "allow/hop/secret", "allow/hop/secret", "deny/secret", true, true },
	{ "allow/deep/x", "allow/deep/x", "deny/sub/x", false, true },
	/* ".." across a link: the kernel takes the target's parent. */
	{ "allow/deep/../secret", "allow/secret", "deny/secret", true, true },
	{ "allow/link/../allow/f", "allow/allow/f", "deny/secret", true, true },
	/* A link to nowhere: a write through it lands at the target. */
	{ "allow/dang", "allow/dang", "deny/new", true, true },
	{ "allow/dang2", "allow/dang2", "deny/new2", true, true },
	{ "allow/dang/x", "allow/dang/x", "deny/new/x", false, true },
	/* Missing names: the rest is appended lexically. */
	{ "allow/none", "allow/none", "allow/none", false, false },
	{ "allow/none/x/../y", "allow/none/y", "allow/none/y", false, false },
	{ "deny/secret/x", "deny/secret/x", "deny/secret/x", false, false },
	/* A loop: no hang, nothing exists past it. */
	{ "l1/x", "l1/x", NULL, false, true },
};

static void
test_path_resolve_fs(void **state)
{
	struct kw_test_fx *fx = *state;
	struct tree t;

	make_tree(fx, &t);
	for (size_t i = 0; i < KW_ELEMENTSOF(fs_cases); i++) {
		const struct fs_case *c = &fs_cases[i];
		struct kw_resolved r;

		assert_int_equal(kw_path_resolve(c->path, t.dir, "/nonexistent", true, &r), 0);
		if (strcmp(r.lexical, at(&t, c->lexical)) != 0)
			fail_msg("%s: lexical \"%s\"", c->path, r.lexical);
		if (c->real && strcmp(r.real, at(&t, c->real)) != 0)
			fail_msg("%s: real \"%s\", want \"%s\"", c->path, r.real, at(&t, c->real));
		if (r.exists != c->exists || r.is_link != c->is_link)
			fail_msg("%s: exists %d is_link %d, want %d %d", c->path, r.exists,
			    r.is_link, c->exists, c->is_link);
	}
}

/* What a policy sees: a deny glob on ->real catches what ->lexical hides. */
static void
test_path_resolve_for_policy(void **state)
{
	struct kw_test_fx *fx = *state;
	struct tree t;
	struct kw_resolved r;
	char deny[512];

	make_tree(fx, &t);
	snprintf(deny, sizeof(deny), "%s/deny", t.dir);
	/* home itself a link into the denied directory. */
	assert_int_equal(kw_path_resolve("~/secret", "/", at(&t, "allow/link"), true, &r), 0);
	assert_string_equal(r.real, at(&t, "deny/secret"));
	assert_true(kw_glob_match(deny, r.real));
	assert_false(kw_glob_match(deny, r.lexical));
	assert_true(kw_path_within(r.real, deny));
	assert_false(kw_path_within(r.lexical, deny));
	assert_true(kw_glob_match("**/deny/**", r.real));
	assert_false(kw_glob_match("**/deny/**", r.lexical));
	/* Without the file system, nothing is learnt. */
	assert_int_equal(kw_path_resolve("~/secret", "/", at(&t, "allow/link"), false, &r), 0);
	assert_string_equal(r.real, r.lexical);
	assert_false(r.exists);
	assert_false(r.is_link);
}

/* ---- URLs and hosts ------------------------------------------------------- */

struct url_case {
	const char *text;
	int r;
	const char *scheme;
	const char *host;
	int port;
};

static const struct url_case url_cases[] = {
	{ "https://api.anthropic.com/v1/messages", 0, "https", "api.anthropic.com", -1 },
	{ "https://evil.com@anthropic.com", 0, "https", "anthropic.com", -1 },
	{ "https://anthropic.com@evil.com", 0, "https", "evil.com", -1 },
	{ "https://anthropic.com.evil.com", 0, "https", "anthropic.com.evil.com", -1 },
	{ "https://user:pw@Host.example:8443/x?y", 0, "https", "host.example", 8443 },
	{ "https://a@b@c.com/", 0, "https", "c.com", -1 },
	{ "https://good.com#@evil.com", 0, "https", "good.com", -1 },
	{ "https://good.com?@evil.com", 0, "https", "good.com", -1 },
	{ "https://good.com/@evil.com", 0, "https", "good.com", -1 },
	{ "http://[::1]:8080/", 0, "http", "::1", 8080 },
	{ "http://[2001:DB8::1]/", 0, "http", "2001:db8::1", -1 },
	{ "http://[::ffff:127.0.0.1]/", 0, "http", "::ffff:127.0.0.1", -1 },
	{ "HTTPS://API.Anthropic.COM./v1", 0, "https", "api.anthropic.com", -1 },
	{ "git@github.com:org/repo.git", 0, "ssh", "github.com", -1 },
	{ "github.com:org/repo.git", 0, "ssh", "github.com", -1 },
	{ "git@[::1]:repo", 0, "ssh", "::1", -1 },
	{ "ssh://git@github.com/x", 0, "ssh", "github.com", -1 },
	{ "ssh://git@github.com:2222/x", 0, "ssh", "github.com", 2222 },
	{ "git+ssh://github.com/x", 0, "git+ssh", "github.com", -1 },
	{ "host", 0, "", "host", -1 },
	{ "host:443", 0, "", "host", 443 },
	{ "host/path", 0, "", "host", -1 },
	{ "host/pa:th", 0, "", "host", -1 },
	{ "[::1]:22", 0, "", "::1", 22 },
	{ "my_host.internal", 0, "", "my_host.internal", -1 },
	{ "xn--bcher-kva.example", 0, "", "xn--bcher-kva.example", -1 },
	{ "http://127.0.0.1/", 0, "http", "127.0.0.1", -1 },
	{ "https://a.com:65535", 0, "https", "a.com", 65535 },
	{ "https://a.com:1", 0, "https", "a.com", 1 },
	/* Refused. */
	{ "https://a.com\\@b.com", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "a.com\\@b.com", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "https://a.com:0", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "https://a.com:65536", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "https://a.com:99999999999", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "https://a.com:-1", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "https://a.com:/x", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "https://a.com:08", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "host:70000", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "https://%2e.com", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "https://anthropic%2ecom", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "http://2130706433/", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "http://0x7f.1/", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "http://010.0.0.1/", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "http://256.0.0.1/", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "http://[::1%25eth0]/", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "http://[::1/", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "http://[]/", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "http://[1.2.3.4]/", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "https://a..b", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "https://a.com..", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "https://-a.com", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "https://a b.com", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "https://a.com\n.evil", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "https://a.com/\t", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "file:///etc/passwd", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "https://", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "https://user@", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "1http://x", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "averyveryverylongscheme://x", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "-x", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "./file", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "/abs/path", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "", KW_ERR_INVALID, NULL, NULL, 0 },
	{ ".", KW_ERR_INVALID, NULL, NULL, 0 },
	{ "@", KW_ERR_INVALID, NULL, NULL, 0 },
	{ ":80", KW_ERR_INVALID, NULL, NULL, 0 },
};

static void
test_url_table(void **state)
{
	size_t failed = 0;

	for (size_t i = 0; i < KW_ELEMENTSOF(url_cases); i++) {
		const struct url_case *c = &url_cases[i];
		struct kw_url u, before;
		int r;

		memset(&u, 'Z', sizeof(u));
		before = u;
		r = kw_url_parse(c->text, &u);
		if (r != c->r) {
			print_error("url \"%s\": %d, want %d\n", c->text, r, c->r);
			failed++;
		} else if (r != 0 && memcmp(&u, &before, sizeof(u)) != 0) {
			print_error("url \"%s\": output touched on failure\n", c->text);
			failed++;
		} else if (r == 0 && (strcmp(u.scheme, c->scheme) != 0 ||
		    strcmp(u.host, c->host) != 0 || u.port != c->port)) {
			print_error("url \"%s\": \"%s\" \"%s\" %d, want \"%s\" \"%s\" %d\n",
			    c->text, u.scheme, u.host, u.port, c->scheme, c->host, c->port);
			failed++;
		}
	}
	assert_int_equal(failed, 0);
}

/* labels[i] copies of 'a' + i, joined by ".", then tail, into out. */
static void
host_of(char *out, size_t outlen, const size_t *labels, size_t n, const char *tail)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		assert_true(o + labels[i] + 2 < outlen);
		if (i > 0)
			out[o++] = '.';
		memset(out + o, 'a' + (int)i, labels[i]);
		o += labels[i];
	}
	snprintf(out + o, outlen - o, "%s", tail);
}

static void
test_url_host_limits(void **state)
{
	static const size_t fits[] = { 63, 63, 63, 61 }, over[] = { 63, 63, 63, 62 };
	static const size_t huge[] = { 400 };
	char host[600], text[700];
	struct kw_url u;

	/* 253 characters with a trailing "." is fine; 254 is not. */
	host_of(host, sizeof(host), fits, 4, ".");
	snprintf(text, sizeof(text), "https://%s", host);
	assert_int_equal(kw_url_parse(text, &u), 0);
	assert_int_equal(strlen(u.host), 253);
	host_of(host, sizeof(host), over, 4, "");
	snprintf(text, sizeof(text), "https://%s", host);
	assert_int_equal(kw_url_parse(text, &u), KW_ERR_INVALID);
	host_of(host, sizeof(host), huge, 1, "");
	snprintf(text, sizeof(text), "https://%s/x", host);
	assert_int_equal(kw_url_parse(text, &u), KW_ERR_INVALID);
	snprintf(text, sizeof(text), "http://[%s]", host);
	memset(text + 8, ':', 300);
	assert_int_equal(kw_url_parse(text, &u), KW_ERR_INVALID);
}

struct within_host_case {
	const char *host;
	const char *domain;
	bool want;
};

static const struct within_host_case host_cases[] = {
	{ "anthropic.com", "anthropic.com", true },
	{ "api.anthropic.com", "anthropic.com", true },
	{ "a.b.anthropic.com", "anthropic.com", true },
	{ "evilanthropic.com", "anthropic.com", false },
	{ "anthropic.com.evil.net", "anthropic.com", false },
	{ "anthropic.com", "api.anthropic.com", false },
	{ "api.anthropic.com", ".anthropic.com", true },
	{ "api.anthropic.com", "*.anthropic.com", true },
	{ "anthropic.com", "*.anthropic.com", true },
	{ "API.Anthropic.com", "anthropic.COM", true },
	{ "api.anthropic.com", "anthropic.com.", true },
	{ "anthropic.com", "", false },
	{ "anthropic.com", ".", false },
	{ "anthropic.com", "*.", false },
	{ "", "anthropic.com", false },
	{ "com", "anthropic.com", false },
	{ "10.0.0.1", "10.0.0.1", true },
	{ "10.0.0.1", "0.1", false },
	{ "10.0.0.1", "0.0.1", false },
	{ "::1", "::1", true },
	{ "fe80::1", "::1", false },
	{ "xanthropic.com", "*anthropic.com", false },
};

static void
test_host_within(void **state)
{
	for (size_t i = 0; i < KW_ELEMENTSOF(host_cases); i++) {
		const struct within_host_case *c = &host_cases[i];

		if (kw_host_within(c->host, c->domain) != c->want)
			fail_msg("host_within(\"%s\", \"%s\") is not %d", c->host, c->domain,
			    c->want);
	}
}

/* Parsed, then matched: the tricks end up outside the domain. */
static void
test_url_then_domain(void **state)
{
	static const struct {
		const char *url;
		bool within;
	} cases[] = {
		{ "https://api.anthropic.com/v1", true },
		{ "HTTPS://API.Anthropic.COM./v1", true },
		{ "https://evil.com@anthropic.com", true },
		{ "https://anthropic.com@evil.com", false },
		{ "https://anthropic.com.evil.com", false },
		{ "https://evilanthropic.com", false },
	};
	struct kw_url u;

	for (size_t i = 0; i < KW_ELEMENTSOF(cases); i++) {
		assert_int_equal(kw_url_parse(cases[i].url, &u), 0);
		if (kw_host_within(u.host, "anthropic.com") != cases[i].within)
			fail_msg("%s: host %s", cases[i].url, u.host);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_glob_table),
		cmocka_unit_test(test_glob_adversarial),
		cmocka_unit_test(test_path_within),
		cmocka_unit_test(test_path_normalise),
		cmocka_unit_test(test_path_resolve_lexical),
		cmocka_unit_test(test_path_resolve_too_long),
		cmocka_unit_test_setup_teardown(test_path_resolve_fs, kw_test_setup, kw_test_teardown),
		cmocka_unit_test_setup_teardown(test_path_resolve_for_policy, kw_test_setup,
		    kw_test_teardown),
		cmocka_unit_test(test_url_table),
		cmocka_unit_test(test_url_host_limits),
		cmocka_unit_test(test_host_within),
		cmocka_unit_test(test_url_then_domain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
