/*
 * ansi_c.c - $'...' quoting: the escapes are decoded, so $'\x72m' is the
 * word "rm" (quoted), as bash would run it.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/errors.h"
#include "policy/shell/shell_internal.h"

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Up to max digits of base (8 or 16) at s[*i..n); how many were read. */
static size_t
read_number(const char *s, size_t n, size_t *i, unsigned base, size_t max, uint32_t *ret)
{
	size_t k = 0;
	uint32_t v = 0;

	while (k < max && *i < n) {
		int d = hex_value(s[*i]);
		if (d < 0 || (unsigned)d >= base)
			break;
		v = v * base + (unsigned)d;
		(*i)++;
		k++;
	}
	*ret = v;
	return k;
}

/* A code point as UTF-8 into out (at most 4 bytes); its length. */
static size_t
utf8(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	if (cp > 0x10ffff)
		cp = 0xfffd;
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static const struct {
	char letter;
	char value;
} simple_escapes[] = {
	{ 'a', '\a' }, { 'b', '\b' }, { 'e', 0x1b }, { 'E', 0x1b }, { 'f', '\f' },
	{ 'n', '\n' }, { 'r', '\r' }, { 't', '\t' }, { 'v', '\v' }, { '\\', '\\' },
	{ '\'', '\'' }, { '"', '"' }, { '?', '?' },
};

/*
 * Decode the escape at s[*i] (just after the backslash) into out; its
 * length.  An escape bash does not know stays as written.  Never longer
 * than what it decodes (\u and \U give at most as many bytes as digits).
 */
static size_t
decode(const char *s, size_t n, size_t *i, char *out)
{
	char c = s[(*i)++];
	uint32_t v;

	for (size_t k = 0; k < KW_ELEMENTSOF(simple_escapes); k++)
		if (simple_escapes[k].letter == c) {
			out[0] = simple_escapes[k].value;
			return 1;
		}
	if (c >= '0' && c <= '7') {
		(*i)--;
		read_number(s, n, i, 8, 3, &v);
		out[0] = (char)(v & 0xff);
		return 1;
	}
	if (c == 'x' && read_number(s, n, i, 16, 2, &v) > 0) {
		out[0] = (char)v;
		return 1;
	}
	if ((c == 'u' && read_number(s, n, i, 16, 4, &v) > 0) ||
	    (c == 'U' && read_number(s, n, i, 16, 8, &v) > 0))
		return utf8(v, out);
	if (c == 'c' && *i < n) {
		out[0] = (char)(s[(*i)++] & 0x1f);
		return 1;
	}
	out[0] = '\\';
	out[1] = c;
	return 2;
}

/*
 * From just after $' through the closing quote.  A decoded NUL ends the
 * string for bash (the rest up to the quote is dropped), so it does here.
 */
int
kw_sh_lex_ansi_c(struct sh *p, struct sh_buf *w)
{
	struct sh_src *src = &p->src;
	bool cut = false;
	char out[4];
	size_t n;
	int r;

	w->flags |= KW_SH_QUOTED;
	while (src->pos < src->len && src->s[src->pos] != '\'') {
		if (src->s[src->pos] == '\\' && src->pos + 1 < src->len) {
			src->pos++;
			n = decode(src->s, src->len, &src->pos, out);
		} else
			out[0] = src->s[src->pos++], n = 1;
		cut = cut || (n == 1 && out[0] == '\0');
		if (!cut && (r = kw_sh_buf_put(w, out, n)) != 0)
			return r;
	}
	if (src->pos >= src->len)
		return kw_sh_fail(p, "unterminated $'");
	src->pos++;
	return 0;
}
