/*
 * connect_parse.c - what the sandbox's network filter reads from a
 * confined program, and whether it lets it through: one HTTP/1.x CONNECT
 * request head (kw_sb_connect_parse) and the host check against the
 * plan's lists (kw_sb_host_allowed).
 *
 * The bytes come from the program the sandbox confines, so the parser is
 * strict and pure (no allocation, no I/O; fuzzed by tests/fuzz/
 * fuzz_connect.c).  Whatever an HTTP reader could take two ways is
 * refused rather than guessed: a bare CR or LF, an obs-fold, a space
 * before a header's colon, a control byte, a host in any form but a plain
 * DNS name, a plain dotted quad or a bracketed IPv6 address ("2130706433"
 * and "0x7f.1" are 127.0.0.1 to getaddrinfo, so a name whose last label is
 * numeric must be a dotted quad).  Errors are judged as soon as the bytes
 * that make them are there (a TLS ClientHello sent without a CONNECT is
 * refused at its first byte), success only once the head is whole.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "policy/match.h"
#include "sandbox/sandbox_internal.h"

#define HEAD_MAX	8192	/* a head longer than this is refused (400) */
#define HOST_MAX	253	/* a DNS name's longest text form */
#define LABEL_MAX	63

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* RFC 9110 tchar: what a method and a header name are made of. */
static bool
is_tchar(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/*
 * The line starting at start: 1 with *ret_eol at its CR, 0 when its end
 * is not there yet, -400 for a byte no head may hold (a bare CR or LF, a
 * control byte other than HTAB, DEL) or for a line that cannot end within
 * HEAD_MAX.  lim is min(len, HEAD_MAX); full says len reached HEAD_MAX.
 */
static int
find_line(const unsigned char *b, size_t start, size_t lim, bool full, size_t *ret_eol)
{
	for (size_t i = start; i < lim; i++) {
		unsigned char c = b[i];

		if (c == '\r') {
			if (i + 1 == lim)
				break;
			if (b[i + 1] != '\n')
				return -400;
			*ret_eol = i;
			return 1;
		}
		if (c == '\n' || (c < 0x20 && c != '\t') || c == 0x7f)
			return -400;
	}
	return full ? -400 : 0;
}

/* Decimal 1..65535, no sign, no leading zero; 0 for anything else. */
static unsigned short
read_port(const unsigned char *s, size_t n)
{
	unsigned long v = 0;

	if (n < 1 || n > 5 || s[0] == '0')
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return 0;
		v = v * 10 + (s[i] - '0');
	}
	return v <= 65535 ? (unsigned short)v : 0;
}

/* A plain dotted quad: four decimal parts 0..255 without leading zeros. */
static bool
is_dotted_quad(const char *s)
{
	int parts = 0;

	for (;;) {
		size_t n = 0;
		unsigned v = 0;

		while (is_digit((unsigned char)s[n]) && n < 4)
			v = v * 10 + (unsigned)(s[n++] - '0');
		if (n == 0 || n > 3 || v > 255 || (n > 1 && s[0] == '0'))
			return false;
		parts++;
		s += n;
		if (*s == '\0')
			return parts == 4;
		if (*s != '.' || parts == 4)
			return false;
		s++;
	}
}

/*
 * A DNS name or a dotted quad, in place: one trailing "." dropped, lower
 * case, labels of letters, digits and "-" (not leading), 1..63 each,
 * 253 in all.  A name whose last label is all digits must be a dotted quad.
 */
static bool
check_name(char *h)
{
	size_t len = strlen(h), label = 0;
	const char *last;

	if (len > 0 && h[len - 1] == '.')
		h[--len] = '\0';
	if (len == 0 || len > HOST_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)h[i];

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!is_alpha(c) && !is_digit(c) && c != '-')
			return false;
		if (c == '-' && label == 0)
			return false;
		if (++label > LABEL_MAX)
			return false;
		if (c >= 'A' && c <= 'Z')
			h[i] = (char)(c - 'A' + 'a');
	}
	if (label == 0)
		return false;
	last = strrchr(h, '.');
	last = last ? last + 1 : h;
	if (strspn(last, "0123456789") == strlen(last))
		return is_dotted_quad(h);
	return true;
}

/*
 * The request target in authority form, "host:port" or "[v6]:port", into
 * r->host and r->port.  False for anything else.
 */
static bool
read_authority(const unsigned char *s, size_t n, struct kw_sb_connect_req *r)
{
	const unsigned char *colon;
	size_t hlen;

	if (n == 0)
		return false;
	if (s[0] == '[') {
		const unsigned char *close = memchr(s, ']', n);
		unsigned char a6[16];

		if (!close || close + 1 >= s + n || close[1] != ':')
			return false;
		hlen = (size_t)(close - s - 1);
		if (hlen < 2 || hlen >= 46)
			return false;
		for (size_t i = 1; i <= hlen; i++)
			if (!is_hex(s[i]) && s[i] != ':' && s[i] != '.')
				return false;
		memcpy(r->host, s + 1, hlen);
		r->host[hlen] = '\0';
		for (size_t i = 0; i < hlen; i++)
			if (r->host[i] >= 'A' && r->host[i] <= 'F')
				r->host[i] = (char)(r->host[i] - 'A' + 'a');
		if (inet_pton(AF_INET6, r->host, a6) != 1)
			return false;
		colon = close + 1;
	} else {
		colon = memrchr(s, ':', n);
		if (!colon)
			return false;
		hlen = (size_t)(colon - s);
		if (hlen == 0 || hlen >= sizeof(r->host))
			return false;
		memcpy(r->host, s, hlen);
		r->host[hlen] = '\0';
		if (!check_name(r->host))
			return false;
	}
	r->port = read_port(colon + 1, (size_t)(s + n - colon - 1));
	return r->port != 0;
}

/* "METHOD SP target SP HTTP/1.x": 0 for a CONNECT whose target is read, or -400/-405. */
static int
read_request_line(const unsigned char *s, size_t n, struct kw_sb_connect_req *r)
{
	const unsigned char *sp1 = memchr(s, ' ', n), *sp2, *end = s + n;
	size_t mlen, vlen;

	if (!sp1 || sp1 == s)
		return -400;
	mlen = (size_t)(sp1 - s);
	for (size_t i = 0; i < mlen; i++)
		if (!is_tchar(s[i]))
			return -400;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1));
	if (!sp2 || sp2 == sp1 + 1)
		return -400;
	for (const unsigned char *p = sp1 + 1; p < sp2; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			return -400;
	vlen = (size_t)(end - sp2 - 1);
	if (vlen != 8 || (memcmp(sp2 + 1, "HTTP/1.1", 8) != 0 &&
	    memcmp(sp2 + 1, "HTTP/1.0", 8) != 0))
		return -400;
	if (mlen != 7 || memcmp(s, "CONNECT", 7) != 0)
		return -405;
	return read_authority(sp1 + 1, (size_t)(sp2 - sp1 - 1), r) ? 0 : -400;
}

/* "name:value": a token, no space before the colon; the value has no control byte. */
static bool
header_ok(const unsigned char *s, size_t n)
{
	const unsigned char *colon = memchr(s, ':', n);

	if (!colon || colon == s)
		return false;
	for (const unsigned char *p = s; p < colon; p++)
		if (!is_tchar(*p))
			return false;
	/* find_line refused every other control byte; HTAB is whitespace here. */
	return true;
}

int
kw_sb_connect_parse(const char *buf, size_t len, struct kw_sb_connect_req *req)
{
	const unsigned char *b = (const unsigned char *)buf;
	struct kw_sb_connect_req r;
	bool full = len >= HEAD_MAX;
	size_t lim = full ? HEAD_MAX : len, pos, eol = 0;
	int k;

	memset(&r, 0, sizeof(r));
	if ((k = find_line(b, 0, lim, full, &eol)) <= 0)
		return k;
	if ((k = read_request_line(b, eol, &r)) < 0)
		return k;
	for (pos = eol + 2;; pos = eol + 2) {
		if ((k = find_line(b, pos, lim, full, &eol)) <= 0)
			return k;
		if (eol == pos)
			break;
		/* An obs-fold (a line led by a space or tab) is refused (RFC 9112 5.2). */
		if (b[pos] == ' ' || b[pos] == '\t' || !header_ok(b + pos, eol - pos))
			return -400;
	}
	r.head_len = eol + 2;
	*req = r;
	return 1;
}

/*
 * host in the forms the lists and the parser use: no brackets, one
 * trailing "." dropped, lower case.  False when it does not fit.
 */
static bool
normalise(const char *in, char out[256])
{
	size_t n = strlen(in);

	if (n >= 2 && in[0] == '[' && in[n - 1] == ']') {
		in++;
		n -= 2;
	}
	if (n > 0 && in[n - 1] == '.')
		n--;
	if (n == 0 || n > 255 - 1)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		out[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	out[n] = '\0';
	return true;
}

/* An address, not a name: getaddrinfo would not ask DNS for it. */
static bool
is_ip_literal(const char *h)
{
	unsigned char a[16];

	return strchr(h, ':') != NULL || strspn(h, "0123456789.") == strlen(h) ||
	    inet_pton(AF_INET, h, a) == 1;
}

/* The same IPv6 address written two ways ("::1", "0:0::1"). */
static bool
same_ipv6(const char *a, const char *b)
{
	unsigned char x[16], y[16];

	return strchr(a, ':') && strchr(b, ':') && inet_pton(AF_INET6, a, x) == 1 &&
	    inet_pton(AF_INET6, b, y) == 1 && memcmp(x, y, 16) == 0;
}

bool
kw_sb_host_allowed(const struct kw_sandbox_plan *plan, const char *host)
{
	char h[256], e[256];
	bool ip;

	if (!normalise(host, h))
		return false;
	ip = is_ip_literal(h);
	for (size_t i = 0; i < plan->n_hosts; i++) {
		if (!plan->allowed_hosts[i] || !normalise(plan->allowed_hosts[i], e))
			continue;
		if (strcmp(h, e) == 0 || same_ipv6(h, e))
			return true;
	}
	/* An address is admitted only by being listed itself, never by a domain. */
	if (ip)
		return false;
	for (size_t i = 0; i < plan->n_domains; i++)
		if (plan->allowed_domains[i] && kw_host_within(h, plan->allowed_domains[i]))
			return true;
	return false;
}
