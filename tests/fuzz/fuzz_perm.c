/*
 * fuzz_perm.c - libFuzzer target for the permission grammar (perm.h).
 *
 * The input up to its first NUL is a permission's text; whatever follows
 * that NUL is used as one more resource name to match.  kw_perm_parse must
 * agree with a plain reading of SPEC3's grammar, and an accepted permission
 * must keep its promises: its verb and no other (or every verb for '*'),
 * never a request about no resource once narrowed, every resource for the
 * pattern "*", and the pattern's own literal spelling.  A refusal must leave
 * the output alone and say something.  A broken invariant aborts, so the
 * fuzzer reports it as a crash.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "client/keywarden.h"
#include "common/perm.h"

static const char *const verbs[] = { "read", "write", "execute", "admin" };
#define N_VERBS (sizeof(verbs) / sizeof(verbs[0]))

static const char *const resources[] = {
	"key/anthropic", "key/anthropic-prod", "key/openai", "user/alice", "role/developer",
	"session/0123456789abcdef", "audit", "user", "", "key/", "/", "a/b/c/d/e/f",
	"key/\xff\xfe", "key/caf\xc3\xa9",
};
#define N_RESOURCES (sizeof(resources) / sizeof(resources[0]))

static bool
pattern_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("._/@+=,-*?", c) != NULL);
}

static bool
spec_verb_ok(const char *text, size_t vlen)
{
	if (vlen == 1 && text[0] == '*')
		return true;
	for (size_t i = 0; i < N_VERBS; i++)
		if (strlen(verbs[i]) == vlen && memcmp(verbs[i], text, vlen) == 0)
			return true;
	return false;
}

/* SPEC3's grammar, read directly. */
static bool
spec_accepts(const char *text)
{
	const char *colon = strchr(text, ':');
	size_t vlen = colon ? (size_t)(colon - text) : strlen(text);

	if (!spec_verb_ok(text, vlen))
		return false;
	if (!colon)
		return true;
	size_t plen = strlen(colon + 1);
	if (plen < 1 || plen > 128)
		return false;
	for (const char *c = colon + 1; *c; c++)
		if (!pattern_char_ok(*c))
			return false;
	return true;
}

/* A name the pattern must match: each '*' as `star`, each '?' as 'q'. */
static void
instantiate(const char *pattern, const char *star, char *out, size_t out_len)
{
	size_t n = 0, slen = strlen(star);

	for (const char *c = pattern; *c; c++) {
		if (*c == '*') {
			CHECK(n + slen < out_len);
			memcpy(out + n, star, slen);
			n += slen;
		} else {
			CHECK(n + 1 < out_len);
			out[n++] = *c == '?' ? 'q' : *c;
		}
	}
	out[n] = '\0';
}

static void
check_accepted(const char *text, const struct kw_perm *p, const char *extra)
{
	const char *colon = strchr(text, ':');
	bool star_verb = strcmp(p->verb, "*") == 0;
	bool narrowed = p->pattern[0] != '\0';
	char name[KW_PERM_PATTERN_MAX * 8 + 1];

	/* The parse is the text, split at the first ':'. */
	CHECK(memchr(p->verb, '\0', sizeof(p->verb)) != NULL);
	CHECK(memchr(p->pattern, '\0', sizeof(p->pattern)) != NULL);
	CHECK(star_verb || kw_perm_verb_known(p->verb));
	CHECK(strncmp(text, p->verb, strlen(p->verb)) == 0);
	CHECK(strcmp(p->pattern, colon ? colon + 1 : "") == 0);
	CHECK(strlen(p->pattern) <= KW_PERM_PATTERN_MAX);
	CHECK(narrowed == (colon != NULL));

	for (size_t v = 0; v < N_VERBS; v++) {
		bool mine = star_verb || strcmp(p->verb, verbs[v]) == 0;

		/* No resource: only an unnarrowed permission for the verb. */
		CHECK(kw_perm_grants(p, verbs[v], NULL) == (mine && !narrowed));
		for (size_t r = 0; r < N_RESOURCES; r++) {
			bool g = kw_perm_grants(p, verbs[v], resources[r]);
			if (!mine || !narrowed)
				CHECK(g == mine);
			if (mine && strcmp(p->pattern, "*") == 0)
				CHECK(g);
		}
		bool g = kw_perm_grants(p, verbs[v], extra);
		if (!mine || !narrowed)
			CHECK(g == mine);
		if (mine && strcmp(p->pattern, "*") == 0)
			CHECK(g);
		if (!mine || !narrowed)
			continue;
		/* The pattern matches names spelled from it. */
		instantiate(p->pattern, "", name, sizeof(name));
		CHECK(kw_perm_grants(p, verbs[v], name));
		instantiate(p->pattern, "x/y.z", name, sizeof(name));
		CHECK(kw_perm_grants(p, verbs[v], name));
		if (!strpbrk(p->pattern, "*?"))
			CHECK(kw_perm_grants(p, verbs[v], p->pattern));
	}
	/* Never a verb the grammar does not have, unless the permission is '*'. */
	CHECK(kw_perm_grants(p, "bogus", "key/anthropic") == (star_verb &&
	    (!narrowed || kw_perm_grants(p, "read", "key/anthropic"))));
}

/*
 * 1-based position in text of the first character SPEC3 does not allow in
 * the pattern, when that is the only thing wrong; 0 otherwise.
 */
static size_t
spec_bad_position(const char *text)
{
	const char *colon = strchr(text, ':');
	size_t plen;

	if (!colon || !spec_verb_ok(text, (size_t)(colon - text)))
		return 0;
	plen = strlen(colon + 1);
	if (plen < 1 || plen > 128)
		return 0;
	for (const char *c = colon + 1; *c; c++)
		if (!pattern_char_ok(*c))
			return (size_t)(c - text) + 1;
	return 0;
}

static void
check_refused(const char *text, const struct kw_perm *p, const struct kw_perm *before,
    const char *err, size_t err_len)
{
	char want[64];
	size_t pos = spec_bad_position(text);

	CHECK(memcmp(p, before, sizeof(*p)) == 0);
	CHECK(memchr(err, '\0', err_len) != NULL);
	/* The message quotes the permission first. */
	CHECK(err[0] == '"');
	CHECK(strlen(err) > 2);
	/*
	 * A bad character is named by its position in the whole text, said
	 * after the quoted permission (which is short enough here to be whole).
	 */
	if (pos) {
		snprintf(want, sizeof(want), " at position %zu ", pos);
		CHECK(strlen(err) > strlen(text) + 2);
		CHECK(strstr(err + strlen(text) + 2, want) != NULL);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kw_perm p, before;
	char err[512];

	if (size > 4096)
		return 0;
	/* text: the input up to its first NUL; extra: what follows that NUL. */
	char *copy = malloc(size + 2);
	CHECK(copy != NULL);
	memcpy(copy, data, size);
	copy[size] = '\0';
	copy[size + 1] = '\0';
	const char *text = copy;
	const char *extra = copy + strlen(copy) + 1;

	memset(&p, 0xa5, sizeof(p));
	before = p;
	memset(err, 'X', sizeof(err));
	int r = kw_perm_parse(text, &p, err, sizeof(err));
	if (r == 0) {
		if (!spec_accepts(text)) {
			fprintf(stderr, "accepted against the grammar: \"%s\"\n", text);
			CHECK(!"parse agrees with the grammar");
		}
		check_accepted(text, &p, extra);
	} else {
		CHECK(r == KW_ERR_INVALID);
		if (spec_accepts(text)) {
			fprintf(stderr, "refused though grammatical: \"%s\": %s\n", text, err);
			CHECK(!"parse agrees with the grammar");
		}
		check_refused(text, &p, &before, err, sizeof(err));
	}
	free(copy);
	return 0;
}
