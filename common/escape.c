/*
 * escape.c - terminal-safe text (see escape.h).
 */
#include <stdbool.h>
#include <string.h>

#include "common/escape.h"

/* Continuation byte of a UTF-8 sequence, within [lo, hi] (narrower for the first one). */
static bool
cont(unsigned char c, unsigned char lo, unsigned char hi)
{
	return c >= lo && c <= hi;
}

/*
 * The length of the character at p when it may be shown as it is, or 0
 * when its first byte must be escaped: a control character, or not the
 * start of well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates).
 */
static size_t
printable_len(const unsigned char *p)
{
	unsigned char b = p[0];

	if (b < 0x20 || b == 0x7f)
		return 0;
	if (b < 0x80)
		return 1;
	if (b >= 0xc2 && b <= 0xdf)
		/* U+0080..U+009F are the C1 controls: C2 80..C2 9F. */
		return cont(p[1], b == 0xc2 ? 0xa0 : 0x80, 0xbf) ? 2 : 0;
	if (b >= 0xe0 && b <= 0xef)
		return cont(p[1], b == 0xe0 ? 0xa0 : 0x80, b == 0xed ? 0x9f : 0xbf) &&
		    cont(p[2], 0x80, 0xbf) ? 3 : 0;
	if (b >= 0xf0 && b <= 0xf4)
		return cont(p[1], b == 0xf0 ? 0x90 : 0x80, b == 0xf4 ? 0x8f : 0xbf) &&
		    cont(p[2], 0x80, 0xbf) && cont(p[3], 0x80, 0xbf) ? 4 : 0;
	return 0;
}

size_t
kw_escaped_len(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0, k;

	while (*p) {
		k = printable_len(p);
		n += k ? k : 4;
		p += k ? k : 1;
	}
	return n;
}

char *
kw_escape(const char *s, char *out, size_t out_len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0, k;

	while (*p) {
		k = printable_len(p);
		if (o + (k ? k : 4) >= out_len)
			break;
		if (k) {
			memcpy(out + o, p, k);
			o += k;
			p += k;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 0xf];
			p++;
		}
	}
	out[o] = '\0';
	return out;
}
