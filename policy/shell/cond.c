/*
 * cond.c - [[ ... ]] and (( ... )): commands named "[[" and "((" whose
 * words are read by their own rules (&& < ( are words inside [[ ]]; a
 * blank is the only separator inside (( ))).  A $( ) in them is still
 * parsed.
 */
#include <stdbool.h>
#include <string.h>

#include "common/errors.h"
#include "policy/shell/shell_internal.h"

/*
 * The words of (( )) or for (( )) from the current position through "))",
 * into cmd->argv (or only their substitutions' commands with cmd NULL).
 */
int
kw_sh_arith_words(struct sh *p, struct kw_sh_cmd *cmd)
{
	struct sh_src *src = &p->src;
	struct sh_buf w = { 0 };
	int r = 0;

	for (;;) {
		kw_sh_skip_blanks(src, true);
		if (src->pos >= src->len)
			return kw_sh_fail(p, "missing '))'");
		if (src->s[src->pos] == ')') {
			if (src->pos + 1 >= src->len || src->s[src->pos + 1] != ')')
				return kw_sh_fail(p, "missing '))'");
			src->pos += 2;
			return 0;
		}
		if ((r = kw_sh_lex_word(p, M_ARITH, &w)) == 0 && cmd)
			r = kw_sh_push_word(&cmd->argv, &cmd->argc, &w);
		kw_sh_buf_free(&w);
		if (r != 0)
			return r;
	}
}

/* (( ... )): the "(" kw_sh_peek read is the first of two. */
int
kw_sh_parse_dparen(struct sh *p)
{
	struct kw_sh_cmd cmd = { 0 };
	int r;

	p->src.pos = p->tok.start + 2;
	kw_sh_drop(p);
	if ((r = kw_sh_push_text(&cmd, "((")) != 0 ||
	    (r = kw_sh_arith_words(p, &cmd)) != 0 ||
	    (r = kw_sh_push_text(&cmd, "))")) != 0 ||
	    (r = kw_sh_trailing_redirs(p, &cmd)) != 0)
		goto out;
	r = kw_sh_append(p, &cmd);
 out:
	kw_sh_cmd_clear(&cmd);
	return r;
}

/* An operator inside [[ ]] read as a word: && || ( ) < >; ; & | alone are errors. */
static int
cond_operator(struct sh *p, struct sh_buf *w, bool *ret_done)
{
	struct sh_src *src = &p->src;
	char c = src->s[src->pos];
	char next = src->pos + 1 < src->len ? src->s[src->pos + 1] : '\0';
	size_t n = 1;

	*ret_done = true;
	if ((c == '<' || c == '>') && next == '(') {
		*ret_done = false;	/* a process substitution: a word */
		return 0;
	}
	if ((c == '&' || c == '|') && next == c)
		n = 2;
	else if (!strchr("()<>", c)) {
		if (strchr(";&|", c))
			return kw_sh_fail(p, "unexpected '%c' in [[ ]]", c);
		*ret_done = false;
		return 0;
	}
	src->pos += n;
	return kw_sh_buf_put(w, src->s + src->pos - n, n);
}

static bool
word_is(const struct sh_buf *w, const char *text)
{
	return w->flags == 0 && w->len == strlen(text) && memcmp(w->s, text, w->len) == 0;
}

/* The words after "[[" through "]]" into cmd; right of =~ a regex, where ( | are plain. */
static int
cond_words(struct sh *p, struct kw_sh_cmd *cmd)
{
	struct sh_src *src = &p->src;
	struct sh_buf w = { 0 };
	bool regex = false, op, end;
	int r;

	for (;;) {
		kw_sh_skip_blanks(src, true);
		if (src->pos >= src->len)
			return kw_sh_fail(p, "missing ']]'");
		if ((r = cond_operator(p, &w, &op)) == 0 && !op)
			r = kw_sh_lex_word(p, regex ? M_REGEX : M_NORMAL, &w);
		regex = word_is(&w, "=~");
		end = word_is(&w, "]]");
		if (r == 0)
			r = kw_sh_push_word(&cmd->argv, &cmd->argc, &w);
		kw_sh_buf_free(&w);
		if (r != 0 || end)
			return r;
	}
}

/* [[ ... ]]: the "[[" kw_sh_peek read, then its words and redirections. */
int
kw_sh_parse_dbrack(struct sh *p)
{
	struct kw_sh_cmd cmd = { 0 };
	int r;

	if ((r = kw_sh_push_word(&cmd.argv, &cmd.argc, &p->tok.w)) != 0)
		goto out;
	kw_sh_drop(p);
	if ((r = cond_words(p, &cmd)) != 0 || (r = kw_sh_trailing_redirs(p, &cmd)) != 0)
		goto out;
	r = kw_sh_append(p, &cmd);
 out:
	kw_sh_cmd_clear(&cmd);
	return r;
}
