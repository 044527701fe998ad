/*
 * heredoc.c - here-document bodies.  A << names its delimiter; the body is
 * the lines after the next newline up to a line that is the delimiter
 * (after leading tabs for <<-).  Several on one line are read in order.
 * With an unquoted delimiter the body expands like "...": the commands of
 * its $( ) and backticks run, and are parsed here (origin CMDSUB).  They
 * follow the command that reads the body, as the body follows it.
 */
#include <stdbool.h>
#include <string.h>

#include "common/errors.h"
#include "policy/shell/shell_internal.h"

/* Parse the substitutions in src->s[from..to) for the command at index holder. */
static int
scan_body(struct sh *p, size_t holder, size_t from, size_t to)
{
	const struct kw_sh_cmd *h = &p->script->cmds[holder];
	struct sh_src outer = p->src;
	unsigned outer_sub = p->sub;
	bool piped = h->piped_in, background = h->background;
	size_t first = p->script->n_cmds;
	struct sh_buf scratch = { 0 };
	int r;

	p->src = (struct sh_src){ .s = outer.s, .len = to, .pos = from };
	p->sub = h->depth;
	r = kw_sh_lex_dquote(p, &scratch, true);
	kw_sh_buf_free(&scratch);
	if (r == 0)
		r = kw_sh_heredocs_done(p);
	p->src = outer;
	p->sub = outer_sub;
	kw_sh_mark(p, first, piped, background);
	return r;
}

/* The body of one pending here-document, from the current position. */
static int
read_body(struct sh *p, const struct sh_pending *pend)
{
	struct sh_src *src = &p->src;
	struct kw_sh_redir *rd = &p->script->cmds[pend->cmd].redirs[pend->redir];
	const char *delim = rd->target.text;
	size_t dlen = strlen(delim), from = src->pos, line = src->pos;
	struct sh_buf body = { 0 };
	struct kw_sh_word w;
	int r = 0;

	for (;;) {
		if (src->pos >= src->len) {
			kw_sh_buf_free(&body);
			return kw_sh_fail(p, "unterminated here-document (no line '%.32s')", delim);
		}
		line = src->pos;
		const char *nl = memchr(src->s + line, '\n', src->len - line);
		size_t eol = nl ? (size_t)(nl - src->s) : src->len, text = line;
		while (rd->strip_tabs && text < eol && src->s[text] == '\t')
			text++;
		src->pos = nl ? eol + 1 : eol;
		if (eol - text == dlen && memcmp(src->s + text, delim, dlen) == 0)
			break;
		if ((r = kw_sh_buf_put(&body, src->s + text, src->pos - text)) != 0)
			break;
	}
	if (r == 0 && (r = kw_sh_buf_take(&body, &w)) == 0)
		rd->body = w.text;
	kw_sh_buf_free(&body);
	if (r == 0 && rd->body_expands)
		r = scan_body(p, pend->cmd, from, line);
	return r;
}

/* After a newline: the bodies of the here-documents opened before it. */
static int
read_bodies(struct sh *p)
{
	int r = 0;

	for (size_t i = 0; i < p->src.n_pending && r == 0; i++) {
		struct sh_pending pend = p->src.pending[i];
		r = read_body(p, &pend);
	}
	p->src.n_pending = 0;
	return r;
}

/* Take the newline token kw_sh_peek read, and the bodies that follow it. */
int
kw_sh_newline(struct sh *p)
{
	kw_sh_drop(p);
	return read_bodies(p);
}

int
kw_sh_skip_newlines(struct sh *p)
{
	const struct sh_tok *t;
	int r;

	while ((r = kw_sh_peek(p, &t)) == 0 && t->type == T_NEWLINE)
		if ((r = kw_sh_newline(p)) != 0)
			return r;
	return r;
}

/* At the end of a text: a here-document still waiting is unterminated. */
int
kw_sh_heredocs_done(struct sh *p)
{
	if (p->src.n_pending == 0)
		return 0;
	return kw_sh_fail(p, "unterminated here-document (no newline after <<%.32s)",
	    p->script->cmds[p->src.pending[0].cmd].redirs[p->src.pending[0].redir].target.text);
}
