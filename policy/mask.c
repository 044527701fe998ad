/*
 * mask.c - secrets inside a command line or URL are masked before the line
 * is recorded: an agent that puts an API key in a curl header must not
 * leave it in the audit trail.  The known key shapes (Anthropic, OpenAI,
 * AWS, GitHub, Slack, bearer tokens) and the value after a word that names
 * a secret ("password=", "x-api-key: ") are overwritten with '*', keeping
 * a short prefix so the record still says what kind of secret it was.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "policy/policy.h"

static bool
token_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.' || c == '/' ||
	    c == '+' || c == '=';
}

/* Overwrite the run of token characters at p (keeping keep of them); returns its end. */
static char *
blot(char *p, size_t keep, size_t min)
{
	size_t n = 0;

	while (token_char(p[n]))
		n++;
	if (n < min)
		return p + (n ? n : 1);
	for (size_t i = keep; i < n; i++)
		p[i] = '*';
	return p + n;
}

static const struct {
	const char *prefix;
	size_t min;	/* shortest run (prefix included) that is a key */
} shapes[] = {
	{ "sk-ant-", 20 }, { "sk-proj-", 20 }, { "sk-", 24 }, { "AKIA", 20 }, { "ASIA", 20 },
	{ "ghp_", 24 }, { "gho_", 24 }, { "ghs_", 24 }, { "ghu_", 24 }, { "github_pat_", 30 },
	{ "xoxb-", 20 }, { "xoxp-", 20 }, { "glpat-", 20 }, { "AIza", 30 },
};

static const char *const secret_words[] = { "password", "passwd", "secret", "token",
	"api_key", "apikey", "api-key", "authorization", "bearer", "private_key", NULL };

/* After a word naming a secret: skip "=", ":", quotes and spaces, then blot the value. */
static char *
after_word(char *p, size_t wlen)
{
	char *v = p + wlen;

	while (*v && (token_char(*v) && *v != '=' ))
		v++;
	if (*v != '=' && *v != ':' && *v != ' ')
		return p + wlen;
	while (*v == '=' || *v == ':' || *v == ' ' || *v == '"' || *v == '\'')
		v++;
	/* "Authorization: Bearer X": the scheme stays, the credential goes. */
	if (strncasecmp(v, "bearer ", 7) == 0 || strncasecmp(v, "basic ", 6) == 0)
		v = strchr(v, ' ') + 1;
	return blot(v, 0, 4);
}

void
kw_policy_mask(char *text)
{
	for (char *p = text; *p; ) {
		bool hit = false;
		if (p == text || !token_char(p[-1])) {
			for (size_t i = 0; i < KW_ELEMENTSOF(shapes) && !hit; i++)
				if (strncmp(p, shapes[i].prefix, strlen(shapes[i].prefix)) == 0) {
					char *end = blot(p, strlen(shapes[i].prefix), shapes[i].min);
					hit = end - p >= (ptrdiff_t)shapes[i].min;
					if (hit)
						p = end;
				}
			for (size_t i = 0; secret_words[i] && !hit; i++) {
				size_t n = strlen(secret_words[i]);
				if (strncasecmp(p, secret_words[i], n) == 0) {
					char *end = after_word(p, n);
					hit = end != p + n;
					p = end;
					if (!hit)
						hit = true;
				}
			}
		}
		if (!hit)
			p++;
	}
}
