/*
 * word.c - reading one word: where it ends, quote removal, and the flags
 * that say what about it cannot be known before it runs.  The pieces that
 * start with a quote or a '$' are in quote.c, ansi_c.c and subst.c.
 */
#include <stdbool.h>
#include <string.h>

#include "common/errors.h"
#include "policy/shell/shell_internal.h"

/* What one word has shown so far, for the flags only its end can decide. */
struct shape {
	unsigned parens;	/* ( open in M_REGEX, M_ARITH, M_ARITH_SUB */
	unsigned braces;	/* { open: brace expansion (M_NORMAL), nesting (M_BRACE) */
	bool brace_list;	/* a , or .. inside an open { */
	bool bracket;		/* an unquoted [ (a ] after it makes a glob class) */
};

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

/* Whether the unquoted character at pos ends a word read in mode. */
static bool
word_ends(const struct sh_src *src, enum sh_mode mode, const struct shape *st)
{
	char c = src->s[src->pos];
	char next = src->pos + 1 < src->len ? src->s[src->pos + 1] : '\0';

	switch (mode) {
	case M_NORMAL:
		if ((c == '<' || c == '>') && next == '(')
			return false;	/* process substitution, part of the word */
		switch (c) {
		case ';': case '&': case '|': case '(': case ')': case '<': case '>':
			return true;
		default:
			return is_blank(c);
		}
	case M_REGEX:
	case M_ARITH:
		return is_blank(c) || (c == ')' && st->parens == 0);
	case M_ARITH_SUB:
		return c == ')' && st->parens == 0;
	case M_BRACE:
		return c == '}' && st->braces == 0;
	}
	return true;
}

/* A backslash outside quotes: the next character as itself; backslash-newline vanishes. */
static int
lex_escape(struct sh_src *src, struct sh_buf *w)
{
	if (src->pos + 1 >= src->len) {
		/* bash keeps a backslash that ends the text. */
		src->pos++;
		return kw_sh_buf_putc(w, '\\');
	}
	src->pos += 2;
	if (src->s[src->pos - 1] == '\n')
		return 0;
	w->flags |= KW_SH_QUOTED;
	return kw_sh_buf_putc(w, src->s[src->pos - 1]);
}

static int
lex_squote(struct sh *p, struct sh_buf *w)
{
	struct sh_src *src = &p->src;
	const char *end = memchr(src->s + src->pos + 1, '\'', src->len - src->pos - 1);
	size_t start = src->pos + 1;

	if (!end)
		return kw_sh_fail(p, "unterminated '");
	src->pos = (size_t)(end - src->s) + 1;
	w->flags |= KW_SH_QUOTED;
	return kw_sh_buf_put(w, src->s + start, src->pos - 1 - start);
}

/*
 * The flags an unquoted character gives: * and ? glob, [ with a later ]
 * is a class, { with a , or .. and a later } is brace expansion (which the
 * policy cannot know either, so it is GLOB too).  Counting for the modes
 * that nest.
 */
static void
note_char(const struct sh_src *src, enum sh_mode mode, struct shape *st, struct sh_buf *w)
{
	char c = src->s[src->pos];

	if (mode == M_REGEX || mode == M_ARITH || mode == M_ARITH_SUB) {
		if (c == '(')
			st->parens++;
		else if (c == ')' && st->parens > 0)
			st->parens--;
	}
	if (mode == M_BRACE) {
		if (c == '{')
			st->braces++;
		else if (c == '}' && st->braces > 0)
			st->braces--;
	}
	if (mode != M_NORMAL && mode != M_REGEX)
		return;
	if (c == '*' || c == '?' || (c == ']' && st->bracket))
		w->flags |= KW_SH_GLOB;
	else if (c == '[')
		st->bracket = true;
	if (mode != M_NORMAL)
		return;
	if (c == '{')
		st->braces++;
	else if (st->braces > 0 && (c == ',' ||
	    (c == '.' && src->pos + 1 < src->len && src->s[src->pos + 1] == '.')))
		st->brace_list = true;
	else if (c == '}' && st->braces > 0 && st->brace_list)
		w->flags |= KW_SH_GLOB;
}

/* One step of a word: a quoted part, an expansion, or one plain character. */
static int
lex_part(struct sh *p, enum sh_mode mode, struct shape *st, struct sh_buf *w)
{
	struct sh_src *src = &p->src;
	char c = src->s[src->pos];

	switch (c) {
	case '\\':
		return lex_escape(src, w);
	case '\'':
		return lex_squote(p, w);
	case '"':
		src->pos++;
		w->flags |= KW_SH_QUOTED;
		return kw_sh_lex_dquote(p, w, false);
	case '$':
		return kw_sh_lex_dollar(p, w, false);
	case '`':
		return kw_sh_lex_backtick(p, w, false);
	case '<':
	case '>':
		if (mode == M_NORMAL && src->pos + 1 < src->len && src->s[src->pos + 1] == '(')
			return kw_sh_lex_procsub(p, w);
		break;
	}
	note_char(src, mode, st, w);
	src->pos++;
	return kw_sh_buf_putc(w, c);
}

/*
 * Read a word at the current position into w (appending: a caller may
 * build one text of several).  It stops before what ends it in mode, or at
 * the end of the text; it may read nothing when it starts at its end.
 */
int
kw_sh_lex_word(struct sh *p, enum sh_mode mode, struct sh_buf *w)
{
	struct sh_src *src = &p->src;
	struct shape st = { 0 };
	size_t start = src->pos;
	int r;

	while (src->pos < src->len && !word_ends(src, mode, &st))
		if ((r = lex_part(p, mode, &st, w)) != 0)
			return r;
	/* The ~ is the word's first character as written, so it is unquoted. */
	if (mode == M_NORMAL && start < src->len && src->s[start] == '~')
		w->flags |= KW_SH_TILDE;
	return 0;
}
