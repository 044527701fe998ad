/*
 * parse.c - the grammar above the command: lists (; & newline), and-or
 * lists (&& ||), pipelines (| |& ! time coproc), and the entry point.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "policy/shell/shell_internal.h"

/* Whether t ends the list being read (a keyword only where a command would start). */
static bool
stops_here(const struct sh_tok *t, unsigned stops)
{
	enum sh_keyword k;

	if (t->type == T_RPAREN)
		return stops & STOP_RPAREN;
	if (t->type == T_DSEMI || t->type == T_SEMI_AND || t->type == T_DSEMI_AND)
		return stops & STOP_DSEMI;
	k = kw_sh_keyword(t);
	return k != K_NONE && (stops & STOP_KW(k));
}

/* pipeline { (&& | ||) newlines pipeline } */
static int
parse_and_or(struct sh *p)
{
	const struct sh_tok *t;
	int r;

	if ((r = kw_sh_parse_pipeline(p)) != 0)
		return r;
	while ((r = kw_sh_peek(p, &t)) == 0 && (t->type == T_AND_IF || t->type == T_OR_IF)) {
		kw_sh_drop(p);
		if ((r = kw_sh_skip_newlines(p)) != 0 || (r = kw_sh_parse_pipeline(p)) != 0)
			return r;
	}
	return r;
}

/*
 * and-or lists separated by ; & or newlines, up to the end of the text or
 * a token in stops (left for the caller).  & sends everything before it
 * since the last separator to the background.
 */
int
kw_sh_parse_list(struct sh *p, unsigned stops)
{
	const struct sh_tok *t;
	int r;

	for (;;) {
		if ((r = kw_sh_skip_newlines(p)) != 0 || (r = kw_sh_peek(p, &t)) != 0)
			return r;
		if (t->type == T_EOF || stops_here(t, stops))
			return 0;
		size_t first = p->script->n_cmds;
		if ((r = parse_and_or(p)) != 0 || (r = kw_sh_peek(p, &t)) != 0)
			return r;
		if (t->type == T_AMP)
			kw_sh_mark(p, first, false, true);
		if (t->type == T_AMP || t->type == T_SEMI)
			kw_sh_drop(p);
		else if (t->type == T_EOF || stops_here(t, stops))
			return 0;
		else if (t->type != T_NEWLINE)
			return kw_sh_unexpected(p, t);
	}
}

/* time [-p] and !, which only qualify the pipeline after them. */
static int
skip_prefixes(struct sh *p, bool *ret_coproc)
{
	const struct sh_tok *t;
	enum sh_keyword k;
	int r;

	while ((r = kw_sh_peek(p, &t)) == 0) {
		k = kw_sh_keyword(t);
		if (k != K_BANG && k != K_TIME && k != K_COPROC)
			break;
		*ret_coproc |= k == K_COPROC;
		kw_sh_drop(p);
		if (k == K_TIME && (r = kw_sh_peek(p, &t)) == 0 && t->type == T_WORD &&
		    t->w.flags == 0 && t->w.len == 2 && memcmp(t->w.s, "-p", 2) == 0)
			kw_sh_drop(p);
		if (r != 0)
			return r;
	}
	return r;
}

/*
 * [time [-p]] [!] command { (| | |&) newlines command }.  Every command of
 * an element after the first reads the pipe (a $( ) in its words too: it
 * inherits stdin).  A coproc runs in the background.
 */
int
kw_sh_parse_pipeline(struct sh *p)
{
	const struct sh_tok *t;
	size_t first = p->script->n_cmds;
	bool coproc = false;
	int r;

	if ((r = skip_prefixes(p, &coproc)) != 0 || (r = kw_sh_parse_command(p)) != 0)
		return r;
	while ((r = kw_sh_peek(p, &t)) == 0 && (t->type == T_PIPE || t->type == T_PIPE_AMP)) {
		size_t element = p->script->n_cmds;
		kw_sh_drop(p);
		if ((r = kw_sh_skip_newlines(p)) != 0 || (r = kw_sh_parse_command(p)) != 0)
			return r;
		kw_sh_mark(p, element, true, false);
	}
	if (coproc)
		kw_sh_mark(p, first, false, true);
	return r;
}

int
kw_sh_parse(const char *text, size_t len, struct kw_sh_script **ret_script)
{
	struct sh p = { .src = { .s = text, .len = len } };
	int r;

	p.script = calloc(1, sizeof(*p.script));
	if (!p.script)
		return KW_ERR_NOMEM;
	if (len > KW_SH_MAX_LINE)
		r = kw_sh_fail(&p, "longer than %d bytes", KW_SH_MAX_LINE);
	else if (memchr(text, '\0', len))
		r = kw_sh_fail(&p, "a NUL byte");
	else if ((r = kw_sh_parse_list(&p, 0)) == 0)
		r = kw_sh_heredocs_done(&p);
	kw_sh_drop(&p);
	if (r == KW_ERR_NOMEM) {
		kw_sh_free(p.script);
		return r;
	}
	*ret_script = p.script;
	return r;
}
