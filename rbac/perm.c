/*
 * perm.c - permission parsing and matching (see perm.h).
 */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "keywarden.h"
#include "perm.h"

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

int
kw_perm_parse(const char *text, struct kw_perm *ret_perm, char *err, size_t err_len)
{
	const char *colon = strchr(text, ':');
	size_t vlen = colon ? (size_t)(colon - text) : strlen(text);
	struct kw_perm p = { "", "" };

	if (vlen == 0) {
		snprintf(err, err_len, "\"%.160s\": missing verb (expected read, write, execute, "
		    "admin or *)", text);
		return KW_ERR_INVALID;
	}
	if (vlen < sizeof(p.verb)) {
		memcpy(p.verb, text, vlen);
		p.verb[vlen] = '\0';
	}
	if (vlen >= sizeof(p.verb) || (!kw_perm_verb_known(p.verb) && strcmp(p.verb, "*") != 0)) {
		snprintf(err, err_len, "\"%.160s\": unknown verb \"%.*s\" (expected read, write, "
		    "execute, admin or *)", text, (int)(vlen > 32 ? 32 : vlen), text);
		return KW_ERR_INVALID;
	}
	if (colon) {
		const char *pat = colon + 1;
		size_t plen = strlen(pat);
		if (plen == 0) {
			snprintf(err, err_len, "\"%.160s\": empty resource pattern after ':'", text);
			return KW_ERR_INVALID;
		}
		if (plen > KW_PERM_PATTERN_MAX) {
			snprintf(err, err_len, "\"%.40s...\": resource pattern longer than %d characters",
			    text, KW_PERM_PATTERN_MAX);
			return KW_ERR_INVALID;
		}
		for (size_t i = 0; i < plen; i++) {
			if (!pattern_char(pat[i])) {
				snprintf(err, err_len, "\"%.160s\": character '%c' at position %zu is "
				    "not allowed in a resource pattern", text,
				    (pat[i] >= 0x20 && pat[i] < 0x7f) ? pat[i] : '?',
				    (size_t)(pat - text) + i + 1);
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
