/*
 * buf.c - the growing buffer a word's text is built in.
 */
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "policy/shell/shell_internal.h"

int
kw_sh_buf_put(struct sh_buf *b, const char *s, size_t n)
{
	int r;

	/* One byte more for the NUL kw_sh_buf_take writes; most words fit in the first 32. */
	if (b->len + n + 1 > b->cap &&
	    (r = kw_sh_grow(&b->s, &b->cap, b->len + n + 1 > 32 ? b->len + n + 1 : 32, 1)) != 0)
		return r;
	memcpy(b->s + b->len, s, n);
	b->len += n;
	return 0;
}

int
kw_sh_buf_putc(struct sh_buf *b, char c)
{
	if (b->len + 2 <= b->cap) {
		b->s[b->len++] = c;
		return 0;
	}
	return kw_sh_buf_put(b, &c, 1);
}

/* Move the text (NUL-terminated) and flags into *ret_word; b is left empty. */
int
kw_sh_buf_take(struct sh_buf *b, struct kw_sh_word *ret_word)
{
	int r;

	if (!b->s && (r = kw_sh_grow(&b->s, &b->cap, 1, 1)) != 0)
		return r;
	b->s[b->len] = '\0';
	ret_word->text = b->s;
	ret_word->flags = b->flags;
	memset(b, 0, sizeof(*b));
	return 0;
}

void
kw_sh_buf_free(struct sh_buf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}
