/*
 * url.c - the host a URL, a scp-like "user@host:path" or a bare
 * "host[:port]" names, and whether it lies within a domain (see match.h).
 *
 * Built to be read by a policy: what browsers, curl and git could read
 * differently (a "\\" in the authority, percent-encoded or numeric-trick
 * hosts, control characters) is refused rather than guessed.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "common/errors.h"
#include "policy/match.h"

#define HOST_MAX	253	/* a DNS name's longest text form */

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* The length of "scheme" in "scheme://...", or 0 when text has none. */
static size_t
scheme_len(const char *text)
{
	size_t n = 0;

	if (!is_alpha(text[0]))
		return 0;
	while (is_alpha(text[n]) || is_digit(text[n]) ||
	    (text[n] != '\0' && strchr("+-.", text[n]) != NULL))
		n++;
	return strncmp(text + n, "://", 3) == 0 ? n : 0;
}

/* A decimal number of 1..5 digits, no sign, no leading zero; -1 otherwise. */
static long
decimal(const char *s, const char *e)
{
	long v = 0;

	if (e - s < 1 || e - s > 5 || (s[0] == '0' && e - s > 1))
		return -1;
	for (; s < e; s++) {
		if (!is_digit(*s))
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
}

static bool
all_digits(const char *s, const char *e)
{
	if (s == e)
		return false;
	for (; s < e; s++)
		if (!is_digit(*s))
			return false;
	return true;
}

/*
 * A host whose last label is a number is an IPv4 address to a URL parser,
 * which reads "2130706433", "0x7f.1" and "017.0.0.1" as 127.0.0.1: only the
 * plain dotted quad is accepted, the rest refused.
 */
static bool
ipv4_plain(const char *host)
{
	const char *last = strrchr(host, '.'), *p = host;
	const char *end = host + strlen(host);
	int parts = 0;

	last = last ? last + 1 : host;
	if (!all_digits(last, end) && !(last[0] == '0' && lower(last[1]) == 'x'))
		return true;	/* a name, not a number */
	for (;;) {
		const char *dot = strchrnul(p, '.');
		long v = decimal(p, dot);

		if (v < 0 || v > 255 || ++parts > 4)
			return false;
		if (*dot == '\0')
			return parts == 4;
		p = dot + 1;
	}
}

/* A name: letters, digits, "-", "_", "." in labels, none empty or led by "-". */
static int
check_name(char *host)
{
	size_t len = strlen(host);

	if (len > 0 && host[len - 1] == '.')
		host[--len] = '\0';
	/* Only one trailing "." goes: "a.com.." has an empty label. */
	if (len == 0 || len > HOST_MAX || host[len - 1] == '.')
		return KW_ERR_INVALID;
	for (size_t i = 0; i < len; i++) {
		char c = host[i];
		bool label_start = i == 0 || host[i - 1] == '.';

		if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_' && c != '.')
			return KW_ERR_INVALID;
		if (label_start && (c == '.' || c == '-'))
			return KW_ERR_INVALID;
		host[i] = lower(c);
	}
	return ipv4_plain(host) ? 0 : KW_ERR_INVALID;
}

/* "[v6]" at s: the address without brackets into host; *ret_end after "]". */
static int
read_ipv6(const char *s, const char *e, char *host, size_t hostlen, const char **ret_end)
{
	const char *close = memchr(s, ']', (size_t)(e - s));
	size_t n = 0;

	if (!close || close - s - 1 < 2 || (size_t)(close - s - 1) >= hostlen)
		return KW_ERR_INVALID;
	for (const char *p = s + 1; p < close; p++) {
		char c = lower(*p);

		/* Hex, ":" and an embedded IPv4; no zone ("%eth0"). */
		if (!is_digit(c) && !(c >= 'a' && c <= 'f') && c != ':' && c != '.')
			return KW_ERR_INVALID;
		host[n++] = c;
	}
	host[n] = '\0';
	if (!strchr(host, ':'))
		return KW_ERR_INVALID;
	*ret_end = close + 1;
	return 0;
}

/*
 * "host[:port]" in [s, e) into u.  With scp_ok a ":" followed by anything
 * but a port is the start of a scp-like path: the scheme becomes "ssh".
 */
static int
read_host_port(const char *s, const char *e, bool scp_ok, struct kw_url *u)
{
	const char *h_end;
	long port;
	int r;

	if (s < e && *s == '[') {
		if ((r = read_ipv6(s, e, u->host, sizeof(u->host), &h_end)) != 0)
			return r;
	} else {
		h_end = memchr(s, ':', (size_t)(e - s));
		if (!h_end)
			h_end = e;
		if ((size_t)(h_end - s) >= sizeof(u->host))
			return KW_ERR_INVALID;
		memcpy(u->host, s, (size_t)(h_end - s));
		u->host[h_end - s] = '\0';
		if ((r = check_name(u->host)) != 0)
			return r;
	}
	if (h_end == e)
		return 0;
	if (*h_end != ':')
		return KW_ERR_INVALID;
	/* "host://x" is a URL whose scheme could not be read: not scp. */
	if (scp_ok && strncmp(h_end, "://", 3) == 0)
		return KW_ERR_INVALID;
	if (scp_ok && !all_digits(h_end + 1, e)) {
		strcpy(u->scheme, "ssh");
		return 0;
	}
	port = decimal(h_end + 1, e);
	if (port < 1 || port > 65535)
		return KW_ERR_INVALID;
	u->port = (int)port;
	return 0;
}

int
kw_url_parse(const char *text, struct kw_url *ret)
{
	struct kw_url u = { .scheme = "", .host = "", .port = -1 };
	size_t slen = scheme_len(text);
	const char *auth = text, *end, *at;
	int r = KW_ERR_INVALID;

	for (const char *p = text; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			goto out;
	if (slen > 0) {
		if (slen >= sizeof(u.scheme))
			goto out;
		for (size_t i = 0; i < slen; i++)
			u.scheme[i] = lower(text[i]);
		auth = text + slen + 3;
	}
	/* The authority ends at the path, the query or the fragment. */
	end = auth + strcspn(auth, "/?#");
	if (memchr(auth, '\\', (size_t)(end - auth)))
		goto out;
	/* Userinfo runs to the last "@": "a.com@b.com" names b.com. */
	at = memrchr(auth, '@', (size_t)(end - auth));
	if (at)
		auth = at + 1;
	if ((r = read_host_port(auth, end, slen == 0, &u)) != 0)
		goto out;
	*ret = u;
	r = 0;
 out:
	return r;
}

/* An address is only ever itself: "10.0.0.1" is not within "0.1". */
static bool
is_address(const char *host)
{
	return strchr(host, ':') != NULL || strspn(host, "0123456789.") == strlen(host);
}

bool
kw_host_within(const char *host, const char *domain)
{
	size_t hlen = strlen(host), dlen;

	if (strncmp(domain, "*.", 2) == 0)
		domain += 2;
	else if (domain[0] == '.')
		domain++;
	dlen = strlen(domain);
	if (dlen > 0 && domain[dlen - 1] == '.')
		dlen--;
	if (dlen == 0 || hlen < dlen)
		return false;
	if (hlen == dlen)
		return strncasecmp(host, domain, dlen) == 0;
	if (is_address(host))
		return false;
	return host[hlen - dlen - 1] == '.' && strncasecmp(host + hlen - dlen, domain, dlen) == 0;
}
