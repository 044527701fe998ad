/*
 * quote.c - double quotes (and here-document bodies, read by the same
 * rules) and the expansions a '$' starts.  An expansion stays in the text
 * as written and makes the word DYNAMIC; the commands of a $( ) inside are
 * parsed (subst.c).
 */
#include <stdbool.h>
#include <string.h>

#include "common/errors.h"
#include "policy/shell/shell_internal.h"

static bool
is_name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool
is_name_char(char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9');
}

/* Inside "...": a backslash quotes only $ ` \ " and newline (not " in a here-doc). */
static int
dquote_escape(struct sh_src *src, struct sh_buf *w, bool heredoc)
{
	char next = src->s[src->pos + 1];

	if (next == '\n') {
		src->pos += 2;
		return 0;
	}
	if (strchr("$`\\", next) || (next == '"' && !heredoc)) {
		src->pos += 2;
		return kw_sh_buf_putc(w, next);
	}
	src->pos++;
	return kw_sh_buf_putc(w, '\\');
}

/*
 * The inside of "..." from just after the opening quote, through the
 * closing one.  With heredoc, a here-document body: " is an ordinary
 * character and the text ends at the end of the source.
 */
int
kw_sh_lex_dquote(struct sh *p, struct sh_buf *w, bool heredoc)
{
	struct sh_src *src = &p->src;
	int r;

	while (src->pos < src->len) {
		char c = src->s[src->pos];

		if (c == '"' && !heredoc) {
			src->pos++;
			return 0;
		}
		if (c == '\\' && src->pos + 1 < src->len)
			r = dquote_escape(src, w, heredoc);
		else if (c == '$')
			r = kw_sh_lex_dollar(p, w, true);
		else if (c == '`')
			r = kw_sh_lex_backtick(p, w, true);
		else {
			src->pos++;
			r = kw_sh_buf_putc(w, c);
		}
		if (r != 0)
			return r;
	}
	return heredoc ? 0 : kw_sh_fail(p, "unterminated \"");
}

/*
 * ${...} and $((...)): read the inside by its own rules into a scratch
 * buffer (for the commands of any $( ) in it), then keep the text as written.
 */
static int
lex_enclosed(struct sh *p, struct sh_buf *w, size_t skip, enum sh_mode mode,
    const char *close, const char *what)
{
	struct sh_src *src = &p->src;
	struct sh_buf scratch = { 0 };
	size_t start = src->pos, n = strlen(close);
	int r;

	if ((r = kw_sh_enter(p)) != 0)
		return r;
	src->pos += skip;
	r = kw_sh_lex_word(p, mode, &scratch);
	kw_sh_buf_free(&scratch);
	p->nest--;
	if (r != 0)
		return r;
	if (src->len - src->pos < n || memcmp(src->s + src->pos, close, n) != 0)
		return kw_sh_fail(p, "unterminated %s", what);
	src->pos += n;
	w->flags |= KW_SH_DYNAMIC;
	return kw_sh_buf_put(w, src->s + start, src->pos - start);
}

/* $( ... ): its commands join the script; the word keeps "$(...)" as written. */
static int
lex_cmdsub(struct sh *p, struct sh_buf *w)
{
	struct sh_src *src = &p->src;
	size_t start = src->pos;
	int r;

	src->pos += 2;
	if ((r = kw_sh_sub_list(p, KW_SH_CMDSUB)) != 0)
		return r;
	w->flags |= KW_SH_DYNAMIC;
	return kw_sh_buf_put(w, src->s + start, src->pos - start);
}

/* $NAME, $1, $@ and the other one-character parameters, as written. */
static int
lex_param(struct sh_src *src, struct sh_buf *w)
{
	size_t start = src->pos, end = src->pos + 1;

	if (is_name_start(src->s[end]))
		while (end < src->len && is_name_char(src->s[end]))
			end++;
	else
		end++;
	src->pos = end;
	w->flags |= KW_SH_DYNAMIC;
	return kw_sh_buf_put(w, src->s + start, end - start);
}

/* A '$' at the current position, and what it starts. */
int
kw_sh_lex_dollar(struct sh *p, struct sh_buf *w, bool in_dquote)
{
	struct sh_src *src = &p->src;
	char next = src->pos + 1 < src->len ? src->s[src->pos + 1] : '\0';

	if (next == '(') {
		if (src->pos + 2 < src->len && src->s[src->pos + 2] == '(' &&
		    kw_sh_arith_closes(src, src->pos + 3))
			return lex_enclosed(p, w, 3, M_ARITH_SUB, "))", "$((");
		return lex_cmdsub(p, w);
	}
	if (next == '{')
		return lex_enclosed(p, w, 2, M_BRACE, "}", "${");
	if (next == '\'' && !in_dquote) {
		src->pos += 2;
		return kw_sh_lex_ansi_c(p, w);
	}
	if (next == '"' && !in_dquote) {
		/* $"..." is translated by the locale: as unknowable as "...". */
		src->pos += 2;
		w->flags |= KW_SH_QUOTED;
		return kw_sh_lex_dquote(p, w, false);
	}
	if (next == '[')
		/* $[...], the old arithmetic: the rest reads as plain characters. */
		w->flags |= KW_SH_DYNAMIC;
	else if (next != '\0' && (is_name_char(next) || strchr("@*#?-$!", next)))
		return lex_param(src, w);
	src->pos++;
	return kw_sh_buf_putc(w, '$');
}
