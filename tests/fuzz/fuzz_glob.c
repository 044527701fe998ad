/*
 * fuzz_glob.c - libFuzzer target for the gitignore-style glob matcher
 * (policy/match.h, kw_glob_match) and the path normaliser it is used with.
 *
 * The input up to its first NUL is a pattern; what follows is a path, made
 * absolute and normalised (kw_path_normalise) before it is matched.  Beyond
 * not crashing and not hanging (libFuzzer's -timeout), the matcher must
 * keep the promises match.h makes:
 *   - "**" and "/" match every path;
 *   - a pattern of plain names matches exactly what kw_path_within says
 *     (anchored) or any path with a segment of that name (floating);
 *   - the path, its special characters escaped, matches itself and what is
 *     under it, and not a sibling spelt longer;
 *   - what matches a path matches all under it;
 *   - "/a/b" and "a/b" are one pattern, and "x" is "**\/x";
 *   - against fnmatch(3) with FNM_PATHNAME, for the patterns where the two
 *     mean the same (anchored with a leading "/", no "**", no "\\", no "//",
 *     no trailing "/", no "[:", "[." or "[=", no unclosed class, few
 *     stars, since glibc backtracks exponentially): a glob matches a path
 *     exactly when fnmatch matches the path or one of its parents.
 * A broken promise aborts, so the fuzzer reports it as a crash.
 */
#include <fnmatch.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "policy/match.h"

#define MAX_IN	4096

static bool
plain(const char *pattern)
{
	return strpbrk(pattern, "*?[\\") == NULL;
}

/* Whether the pattern has a "/" before its trailing ones (match.h: anchored). */
static bool
anchored(const char *pattern)
{
	size_t len = strlen(pattern);

	while (len > 0 && pattern[len - 1] == '/')
		len--;
	return memchr(pattern, '/', len) != NULL;
}

/* Whether a segment of pattern is "." or "..", which a normalised path never has. */
static bool
has_dot_segment(const char *pattern)
{
	for (const char *p = pattern; *p; ) {
		size_t n = strcspn(p, "/");

		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return true;
		p += n;
		p += strspn(p, "/");
	}
	return false;
}

/* Whether some segment of path (absolute, normalised) is name. */
static bool
has_segment(const char *path, const char *name, size_t len)
{
	for (const char *p = path + 1; *p; ) {
		size_t n = strcspn(p, "/");

		if (n == len && memcmp(p, name, len) == 0)
			return true;
		p += n;
		p += strspn(p, "/");
	}
	return false;
}

/* A plain pattern against what the path functions say. */
static void
check_plain(const char *pattern, const char *path, bool got)
{
	char want_dir[MAX_IN + 2], joined[MAX_IN + 2];
	size_t len = strlen(pattern);

	if (!plain(pattern) || len == 0)
		return;
	if (!anchored(pattern)) {
		while (len > 0 && pattern[len - 1] == '/')
			len--;
		if (len > 0)
			CHECK(got == has_segment(path, pattern, len));
		return;
	}
	if (has_dot_segment(pattern))
		return;
	snprintf(joined, sizeof(joined), "/%s", pattern);
	CHECK(kw_path_normalise(joined, want_dir, sizeof(want_dir)) == 0);
	CHECK(got == kw_path_within(path, want_dir));
}

/* The path as a pattern: every special character escaped. */
static void
check_self(const char *path)
{
	char esc[2 * MAX_IN + 2], longer[MAX_IN + 8];
	size_t o = 0;

	for (const char *p = path; *p; p++) {
		if (strchr("*?[\\", *p))
			esc[o++] = '\\';
		esc[o++] = *p;
	}
	esc[o] = '\0';
	CHECK(kw_glob_match(esc, path));
	snprintf(longer, sizeof(longer), "%s/x", path);
	CHECK(kw_glob_match(esc, longer));
	if (strcmp(path, "/") != 0) {
		snprintf(longer, sizeof(longer), "%sx", path);
		CHECK(!kw_glob_match(esc, longer));
	}
}

/* Rewritings match.h says mean the same pattern. */
static void
check_equivalents(const char *pattern, const char *path, bool got)
{
	char other[MAX_IN + 8], under[MAX_IN + 8];
	const char *rest = pattern + strspn(pattern, "/");

	if (got) {
		snprintf(under, sizeof(under), "%s/zz", path);
		CHECK(kw_glob_match(pattern, under));
	}
	if (rest != pattern && anchored(rest))
		CHECK(kw_glob_match(rest, path) == got);
	if (*pattern && !anchored(pattern)) {
		snprintf(other, sizeof(other), "**/%s", pattern);
		CHECK(kw_glob_match(other, path) == got);
	}
}

/*
 * A "[" whose class does not close within its segment: this matcher reads
 * it as a plain "[", fnmatch its own way (around a "/", or "[]a-" at the
 * end, which it never matches).  Conservative: a "[" inside a class counts.
 */
static bool
class_unclosed(const char *pattern)
{
	for (const char *p = strchr(pattern, '['); p; p = strchr(p + 1, '[')) {
		const char *q = p + 1;

		if (*q == '!' || *q == '^')
			q++;
		if (*q == ']')
			q++;
		q += strcspn(q, "]/");
		if (*q != ']')
			return true;
	}
	return false;
}

static bool
fnmatch_comparable(const char *pattern)
{
	size_t len = strlen(pattern), stars = 0;

	for (const char *p = pattern; *p; p++)
		stars += *p == '*';
	return pattern[0] == '/' && len > 1 && len <= 256 && pattern[len - 1] != '/' &&
	    stars <= 4 && !strstr(pattern, "**") && !strchr(pattern, '\\') &&
	    !strstr(pattern, "//") && !strstr(pattern, "[:") && !strstr(pattern, "[.") &&
	    !strstr(pattern, "[=") && !class_unclosed(pattern);
}

/* fnmatch on the path and each of its parents ("/a", "/a/b", ...). */
static void
check_fnmatch(const char *pattern, const char *path, bool got)
{
	char prefix[MAX_IN + 2];
	bool any = false;
	size_t len = strlen(path);

	if (!fnmatch_comparable(pattern) || len > 512 || strcmp(path, "/") == 0)
		return;
	memcpy(prefix, path, len + 1);
	for (size_t i = len; i > 0 && !any; i--) {
		if (i < len && path[i] != '/')
			continue;
		prefix[i] = '\0';
		any = fnmatch(pattern, prefix, FNM_PATHNAME) == 0;
	}
	if (any != got) {
		fprintf(stderr, "glob \"%s\" on \"%s\": %d, fnmatch %d\n", pattern, path, got, any);
		CHECK(!"agrees with fnmatch");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char raw[MAX_IN + 2], path[MAX_IN + 2];
	char *copy;
	bool got;

	if (size > MAX_IN)
		return 0;
	/* pattern: the input up to its first NUL; the path: what follows. */
	copy = malloc(size + 2);
	CHECK(copy != NULL);
	memcpy(copy, data, size);
	copy[size] = copy[size + 1] = '\0';
	const char *pattern = copy, *given = copy + strlen(copy) + 1;

	snprintf(raw, sizeof(raw), "%s%s", given[0] == '/' ? "" : "/", given);
	if (kw_path_normalise(raw, path, sizeof(path)) != 0) {
		/* Still must not crash on what a caller should not pass. */
		(void)kw_glob_match(pattern, given);
		goto out;
	}
	got = kw_glob_match(pattern, path);
	CHECK(kw_glob_match("**", path));
	CHECK(kw_glob_match("/", path));
	CHECK(!kw_glob_match("", path));
	check_plain(pattern, path, got);
	check_self(path);
	check_equivalents(pattern, path, got);
	check_fnmatch(pattern, path, got);
 out:
	free(copy);
	return 0;
}
