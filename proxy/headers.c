/*
 * headers.c - which headers cross the proxy, and where the client's
 * credential is (proxy/DESIGN.md, "Forwarding").
 *
 * Everything end to end passes unchanged, the anthropic-* headers included.
 * What belongs to one hop (RFC 9110 7.6.1: Connection, Keep-Alive, TE,
 * Trailer, Transfer-Encoding, Upgrade, Proxy-*) stays on its hop; Host and
 * Content-Length are curl's to write for the upstream request; Expect is
 * answered by the proxy itself; and the client's credential never leaves:
 * the real key replaces it.
 *
 * And what is never forwarded at all: a request whose framing or header
 * syntax a later hop could read differently from MHD (two lengths, a length
 * and a chunked body, a name with a space before its colon).  The proxy
 * keeps upstream connections alive and shares them between clients, so
 * such a request would let one client write the start of the next client's
 * request (request smuggling, RFC 9112 11.2).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/proxy.h"

static const char *const hop_by_hop[] = {
	"connection", "keep-alive", "te", "trailer", "trailers", "transfer-encoding", "upgrade",
};

static bool
is_hop_by_hop(const char *name)
{
	if (strncasecmp(name, "proxy-", 6) == 0)
		return true;
	for (size_t i = 0; i < KW_ELEMENTSOF(hop_by_hop); i++)
		if (strcasecmp(name, hop_by_hop[i]) == 0)
			return true;
	return false;
}

bool
kw_proxy_header_forwarded(const char *name)
{
	static const char *const own[] = {
		"host", "content-length", "expect", "x-api-key", "authorization",
	};

	if (!*name || is_hop_by_hop(name))
		return false;
	for (size_t i = 0; i < KW_ELEMENTSOF(own); i++)
		if (strcasecmp(name, own[i]) == 0)
			return false;
	return true;
}

bool
kw_proxy_header_returned(const char *name)
{
	/* MHD writes its own framing (chunked or a length) for the client. */
	return *name && !is_hop_by_hop(name) && strcasecmp(name, "content-length") != 0;
}

const char *
kw_proxy_credential(const char *x_api_key, const char *authorization)
{
	if (x_api_key && *x_api_key)
		return x_api_key;
	if (!authorization || strncasecmp(authorization, "bearer ", 7) != 0)
		return NULL;
	authorization += 7;
	while (*authorization == ' ')
		authorization++;
	return *authorization ? authorization : NULL;
}

/* RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
   "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
static bool
is_token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    strchr("!#$%&'*+-.^_`|~", c)))
			return false;
	}
	return true;
}

/* RFC 9110 5.5: field values are visible characters, spaces, tabs and obs-text. */
static bool
is_field_value(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c < ' ' && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

void
kw_proxy_framing_header(struct kw_proxy_framing *f, const char *name, const char *value)
{
	if (f->problem)
		return;
	if (!is_token(name)) {
		f->problem = "keywarden: a header name is not a token (RFC 9110 5.1; "
		    "no space before the colon)";
		return;
	}
	if (value && !is_field_value(value)) {
		f->problem = "keywarden: a header value holds a control character";
		return;
	}
	if (strcasecmp(name, "content-length") == 0) {
		const char *v = value ? value : "";
		char *end;
		unsigned long long n;

		if (*v < '0' || *v > '9' || strspn(v, "0123456789") != strlen(v) ||
		    strlen(v) > 19) {
			f->problem = "keywarden: Content-Length is not a number";
			return;
		}
		n = strtoull(v, &end, 10);
		/* RFC 9112 6.3: differing lengths make the message's end ambiguous. */
		if (f->has_length && n != f->length) {
			f->problem = "keywarden: more than one Content-Length, with different values";
			return;
		}
		f->has_length = true;
		f->length = n;
	} else if (strcasecmp(name, "transfer-encoding") == 0) {
		/* The only coding MHD decodes; another (or a list, or a second
		   header) would be read differently by the next hop. */
		if (f->has_te || !value || strcasecmp(value, "chunked") != 0) {
			f->problem = "keywarden: Transfer-Encoding other than a single \"chunked\"";
			return;
		}
		f->has_te = true;
	}
}

const char *
kw_proxy_framing_finish(struct kw_proxy_framing *f)
{
	/* RFC 9112 6.1: both may be a smuggling attempt; refused rather than guessed. */
	if (!f->problem && f->has_te && f->has_length)
		f->problem = "keywarden: both Transfer-Encoding and Content-Length";
	return f->problem;
}
