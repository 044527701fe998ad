/*
 * perm.c - permission parsing and matching (see perm.h).
 */
#include <fnmatch.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/errors.h"
#include "common/perm.h"

static const char *const verbs[] = { "read", "write", "execute", "admin", NULL };

bool
kw_perm_verb_known(const char *verb)
{
	for (size_t i = 0; verbs[i]; i++)
		if (strcmp(verbs[i], verb) == 0)
			return true;
	return false;
}

static bool
pattern_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    strchr("._/@+=,-*?", c) != NULL;
}

/*
 * Quote untrusted text for a message: printable ASCII as is, anything else
 * (and the quote and backslash) as \xNN, cut at max input bytes with "...".
 */
static void
quote(char *out, size_t out_len, const char *in, size_t max)
{
	size_t o = 0, i;

	for (i = 0; in[i] && i < max && o + 5 < out_len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, out_len - o, "\\x%02x", c);
	}
	if (in[i] && o + 4 < out_len)
		o += (size_t)snprintf(out + o, out_len - o, "...");
	out[o] = '\0';
}

int
kw_perm_parse(const char *text, struct kw_perm *ret_perm, char *err, size_t err_len)
{
	const char *colon = strchr(text, ':');
	size_t vlen = colon ? (size_t)(colon - text) : strlen(text);
	struct kw_perm p = { "", "" };
	char shown[200], verb[64];

	quote(shown, sizeof(shown), text, 40 + KW_PERM_PATTERN_MAX);
	if (vlen == 0) {
		snprintf(err, err_len, "\"%s\": missing verb (expected read, write, execute, "
		    "admin or *)", shown);
		return KW_ERR_INVALID;
	}
	if (vlen < sizeof(p.verb)) {
		memcpy(p.verb, text, vlen);
		p.verb[vlen] = '\0';
	}
	if (vlen >= sizeof(p.verb) || (!kw_perm_verb_known(p.verb) && strcmp(p.verb, "*") != 0)) {
		char head[40];
		snprintf(head, sizeof(head), "%.*s", (int)(vlen < 32 ? vlen : 32), text);
		quote(verb, sizeof(verb), head, vlen < 32 ? vlen : 31);
		snprintf(err, err_len, "\"%s\": unknown verb \"%s%s\" (expected read, write, "
		    "execute, admin or *)", shown, verb, vlen > 31 ? "..." : "");
		return KW_ERR_INVALID;
	}
	if (colon) {
		const char *pat = colon + 1;
		size_t plen = strlen(pat);
		if (plen == 0) {
			snprintf(err, err_len, "\"%s\": empty resource pattern after ':'", shown);
			return KW_ERR_INVALID;
		}
		if (plen > KW_PERM_PATTERN_MAX) {
			snprintf(err, err_len, "\"%s\": resource pattern longer than %d characters",
			    shown, KW_PERM_PATTERN_MAX);
			return KW_ERR_INVALID;
		}
		for (size_t i = 0; i < plen; i++) {
			if (!pattern_char(pat[i])) {
				char bad[8];
				quote(bad, sizeof(bad), (char[]){ pat[i], '\0' }, 1);
				snprintf(err, err_len, "\"%s\": character '%s' at position %zu "
				    "(counting from 1) is not allowed in a resource pattern", shown,
				    bad, (size_t)(pat - text) + i + 1);
				return KW_ERR_INVALID;
			}
		}
		memcpy(p.pattern, pat, plen + 1);
	}
	*ret_perm = p;
	return 0;
}

bool
kw_perm_grants(const struct kw_perm *perm, const char *verb, const char *resource)
{
	if (strcmp(perm->verb, "*") != 0 && strcmp(perm->verb, verb) != 0)
		return false;
	if (perm->pattern[0] == '\0')
		return true;
	/* Flags 0: '*' crosses '/', so "key/a*" covers "key/a/b" too. */
	return resource && fnmatch(perm->pattern, resource, 0) == 0;
}

static bool
has_glob(const char *s)
{
	return strpbrk(s, "*?") != NULL;
}

bool
kw_perm_covers(const struct kw_perm *have, const struct kw_perm *want)
{
	size_t hlen = strlen(have->pattern);

	if (strcmp(have->verb, "*") != 0 && strcmp(have->verb, want->verb) != 0)
		return false;
	if (have->pattern[0] == '\0')
		return true;
	if (want->pattern[0] == '\0')
		return false;
	if (strcmp(have->pattern, want->pattern) == 0)
		return true;
	/* A literal name is one resource: matching decides exactly. */
	if (!has_glob(want->pattern))
		return fnmatch(have->pattern, want->pattern, 0) == 0;
	/* "X*" with a literal X matches every name that starts with X, and every
	   name want matches starts with X when want's text does (X has no glob). */
	return have->pattern[hlen - 1] == '*' && strcspn(have->pattern, "*?") == hlen - 1 &&
	    strncmp(have->pattern, want->pattern, hlen - 1) == 0;
}

size_t
kw_perm_first_uncovered(const struct kw_perm *have, size_t n_have,
    const struct kw_perm *want, size_t n_want)
{
	size_t i, j;

	for (i = 0; i < n_want; i++) {
		for (j = 0; j < n_have && !kw_perm_covers(&have[j], &want[i]); j++)
			;
		if (j == n_have)
			return i;
	}
	return n_want;
}
