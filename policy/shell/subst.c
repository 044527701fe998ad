/*
 * subst.c - command and process substitutions: $( ), ` `, <( ), >( ).
 * Their commands are parsed as commands of the script, one level deeper,
 * and appended before the command whose word holds them.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "policy/shell/shell_internal.h"

/*
 * Whether "((" ending just before pos opens arithmetic: bash reads to the
 * ")" matching the second "(" and wants another ")" right after it;
 * otherwise "((" is two subshells (or "$((" a $( holding a subshell).
 * When in doubt it is not arithmetic, so the commands are parsed.
 */
bool
kw_sh_arith_closes(const struct sh_src *src, size_t pos)
{
	unsigned depth = 0;

	for (size_t i = pos; i < src->len; i++) {
		char c = src->s[i];

		if (c == '\\')
			i++;
		else if (c == '\'' || c == '"') {
			const char *q = memchr(src->s + i + 1, c, src->len - i - 1);
			if (!q)
				return false;
			i = (size_t)(q - src->s);
		} else if (c == '(')
			depth++;
		else if (c == ')' && depth > 0)
			depth--;
		else if (c == ')')
			return i + 1 < src->len && src->s[i + 1] == ')';
	}
	return false;
}

/*
 * The list of a $( ), <( ) or >( ), from just after its "(" through its
 * ")": its commands are one substitution deeper and have origin.
 */
int
kw_sh_sub_list(struct sh *p, enum kw_sh_origin origin)
{
	enum kw_sh_origin outer = p->origin;
	const struct sh_tok *t;
	int r;

	if ((r = kw_sh_enter(p)) != 0)
		return r;
	p->sub++;
	p->origin = origin;
	if ((r = kw_sh_parse_list(p, STOP_RPAREN)) == 0 &&
	    (r = kw_sh_peek(p, &t)) == 0) {
		if (t->type == T_RPAREN)
			kw_sh_drop(p);
		else
			r = kw_sh_fail(p, "unterminated %s", origin == KW_SH_CMDSUB ?
			    "$(" : "process substitution");
	}
	p->origin = outer;
	p->sub--;
	p->nest--;
	return r;
}

/*
 * Parse text (not the source: a backtick's inside after unescaping) as a
 * script of its own whose commands have origin and depth.
 */
int
kw_sh_sub_text(struct sh *p, const char *text, size_t len, enum kw_sh_origin origin,
    unsigned depth)
{
	struct sh_src outer = p->src;
	enum kw_sh_origin outer_origin = p->origin;
	unsigned outer_sub = p->sub;
	int r;

	if ((r = kw_sh_enter(p)) != 0)
		return r;
	p->src = (struct sh_src){ .s = text, .len = len };
	p->origin = origin;
	p->sub = depth;
	if ((r = kw_sh_parse_list(p, 0)) == 0)
		r = kw_sh_heredocs_done(p);
	kw_sh_drop(p);
	p->src = outer;
	p->origin = outer_origin;
	p->sub = outer_sub;
	p->nest--;
	return r;
}

/* The end of a backtick substitution starting at pos: the next unescaped `. */
static const char *
backtick_end(const struct sh_src *src, size_t pos)
{
	for (size_t i = pos + 1; i < src->len; i++) {
		if (src->s[i] == '\\')
			i++;
		else if (src->s[i] == '`')
			return src->s + i;
	}
	return NULL;
}

/*
 * `...`: inside, a backslash quotes only $ ` \ (and " within double
 * quotes); the unescaped text is parsed as a script, and the word keeps
 * the backticks as written.
 */
int
kw_sh_lex_backtick(struct sh *p, struct sh_buf *w, bool in_dquote)
{
	struct sh_src *src = &p->src;
	const char *end = backtick_end(src, src->pos);
	size_t start = src->pos, stop;
	struct sh_buf in = { 0 };
	int r = 0;

	if (!end)
		return kw_sh_fail(p, "unterminated `");
	stop = (size_t)(end - src->s);
	for (size_t i = start + 1; i < stop && r == 0; i++) {
		char next = i + 1 < stop ? src->s[i + 1] : '\0';
		if (src->s[i] == '\\' && next && (strchr("$`\\", next) || (in_dquote && next == '"')))
			i++;
		r = kw_sh_buf_putc(&in, src->s[i]);
	}
	if (r == 0)
		r = kw_sh_sub_text(p, in.s ? in.s : "", in.len, KW_SH_CMDSUB, p->sub + 1);
	kw_sh_buf_free(&in);
	if (r != 0)
		return r;
	src->pos = stop + 1;
	w->flags |= KW_SH_DYNAMIC;
	return kw_sh_buf_put(w, src->s + start, src->pos - start);
}

/* <(...) or >(...): commands with origin PROCSUB; the word keeps it as written. */
int
kw_sh_lex_procsub(struct sh *p, struct sh_buf *w)
{
	struct sh_src *src = &p->src;
	size_t start = src->pos;
	int r;

	src->pos += 2;
	if ((r = kw_sh_sub_list(p, KW_SH_PROCSUB)) != 0)
		return r;
	w->flags |= KW_SH_DYNAMIC;
	return kw_sh_buf_put(w, src->s + start, src->pos - start);
}
