/*
 * glob.c - gitignore-style globs over absolute paths (see match.h).
 *
 * The pattern and the path are both read as lists of segments.  Two
 * levels, each the classic wildcard matcher with a single backtrack point:
 * inside a segment "*" against characters, and across segments "**"
 * against whole segments.  The single backtrack point is enough because a
 * later star can absorb whatever an earlier one would have taken, so once
 * a later star is reached the earlier one's extent never matters again.
 * Each (pattern item, path item) pair is then compared at most once per
 * level, which bounds the work by the product of the lengths: no recursion,
 * no exponential blow-up whatever the pattern.
 *
 * Two implicit "**" segments give gitignore's reading: one in front of a
 * pattern with no "/" (it floats to any depth), and one after every
 * pattern, because a pattern that matches a directory also matches all
 * that is under it.  The second makes "pattern exhausted" a match.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "policy/match.h"

/* A segment: [s, e) of the pattern or the path. */
struct seg {
	const char *s;
	const char *e;
};

/* The segment starting at or after p (empty "//" skipped); false at the end. */
static bool
seg_at(const char *p, struct seg *ret)
{
	while (*p == '/')
		p++;
	if (*p == '\0')
		return false;
	ret->s = p;
	ret->e = strchrnul(p, '/');
	return true;
}

static bool
seg_is_globstar(const struct seg *g)
{
	return g->e - g->s == 2 && g->s[0] == '*' && g->s[1] == '*';
}

/*
 * Whether the class starting at p (just after "[") matches c.  *ret_end is
 * set after its "]"; false is returned with *ret_end NULL when the class
 * does not close inside the segment (the "[" is then an ordinary character).
 * Ranges run by byte value; a reversed range matches nothing.
 */
static bool
class_match(const char *p, const char *e, unsigned char c, const char **ret_end)
{
	bool negate = false, hit = false;
	const char *start;

	*ret_end = NULL;
	if (p < e && (*p == '!' || *p == '^')) {
		negate = true;
		p++;
	}
	for (start = p; p < e; p++) {
		unsigned char lo, hi;

		if (*p == ']' && p > start) {
			*ret_end = p + 1;
			return hit != negate;
		}
		if (*p == '\\' && p + 1 < e)
			p++;
		lo = hi = (unsigned char)*p;
		if (p + 2 < e && p[1] == '-' && p[2] != ']') {
			p += 2;
			if (*p == '\\' && p + 1 < e)
				p++;
			hi = (unsigned char)*p;
		}
		if (lo <= c && c <= hi)
			hit = true;
	}
	return false;
}

/*
 * Whether the one item at *pp (not "*") matches c; *pp moves past it.
 * A "\\" ending the segment stands for itself.
 */
static bool
item_match(const char **pp, const char *e, unsigned char c)
{
	const char *p = *pp, *end;
	bool hit;

	if (*p == '?') {
		*pp = p + 1;
		return true;
	}
	if (*p == '[') {
		hit = class_match(p + 1, e, c, &end);
		if (end) {
			*pp = end;
			return hit;
		}
	}
	if (*p == '\\' && p + 1 < e)
		p++;
	*pp = p + 1;
	return (unsigned char)*p == c;
}

/* One pattern segment against one name: "*" never leaves the name. */
static bool
seg_match(const struct seg *pat, const struct seg *name)
{
	const char *p = pat->s, *n = name->s;
	const char *star = NULL, *star_n = NULL;

	while (n < name->e) {
		if (p < pat->e && *p == '*') {
			while (p < pat->e && *p == '*')
				p++;
			star = p;
			star_n = n;
			continue;
		}
		if (p < pat->e && item_match(&p, pat->e, (unsigned char)*n)) {
			n++;
			continue;
		}
		if (!star)
			return false;
		p = star;
		n = ++star_n;
	}
	while (p < pat->e && *p == '*')
		p++;
	return p == pat->e;
}

/* Whether the pattern has a "/" before its trailing ones: it is anchored. */
static bool
anchored(const char *pattern)
{
	size_t len = strlen(pattern);

	while (len > 0 && pattern[len - 1] == '/')
		len--;
	return memchr(pattern, '/', len) != NULL;
}

bool
kw_glob_match(const char *pattern, const char *path)
{
	struct seg p = { NULL, NULL }, s = { NULL, NULL };
	struct seg back_p = { NULL, NULL }, back_s = { NULL, NULL };
	bool have_p, have_s, back = false, back_have_s = false;

	/* A blank pattern matches nothing, as in a .gitignore. */
	if (*pattern == '\0')
		return false;
	have_p = seg_at(pattern, &p);
	have_s = seg_at(path, &s);
	if (!anchored(pattern)) {
		/* The implicit leading "**". */
		back = true;
		back_p = p;
		back_s = s;
		back_have_s = have_s;
	}
	for (;;) {
		/* The implicit trailing "**": the pattern matched a prefix. */
		if (!have_p)
			return true;
		if (seg_is_globstar(&p)) {
			if (!seg_at(p.e, &p))
				return true;
			back = true;
			back_p = p;
			back_s = s;
			back_have_s = have_s;
			continue;
		}
		if (have_s && seg_match(&p, &s)) {
			have_p = seg_at(p.e, &p);
			have_s = seg_at(s.e, &s);
			continue;
		}
		/*
		 * Let the last "**" take one more segment and try again after
		 * it.  What follows a "**" is never another "**" (those were
		 * taken above), so it needs a segment: none left is a miss.
		 */
		if (!back || !back_have_s || !seg_at(back_s.e, &back_s))
			return false;
		p = back_p;
		s = back_s;
		have_p = have_s = true;
	}
}
