/*
 * script.c - the parse's result: commands appended as they end, the first
 * error's reason, the nesting bound, and freeing it all.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "policy/shell/shell_internal.h"

/* The first reason wins: later ones are consequences of it. */
int
kw_sh_fail(struct sh *p, const char *fmt, ...)
{
	va_list ap;

	if (p->script->error[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(p->script->error, sizeof(p->script->error), fmt, ap);
		va_end(ap);
	}
	return KW_ERR_INVALID;
}

/* Make room for need elements in *arrp (of size bytes each), doubling. */
int
kw_sh_grow(void *arrp, size_t *cap, size_t need, size_t size)
{
	void **arr = arrp;
	size_t n = *cap ? *cap : 4;
	void *grown;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	if (n > SIZE_MAX / size)
		return KW_ERR_NOMEM;
	grown = realloc(*arr, n * size);
	if (!grown)
		return KW_ERR_NOMEM;
	*arr = grown;
	*cap = n;
	return 0;
}

static void
word_clear(struct kw_sh_word *w)
{
	free(w->text);
	w->text = NULL;
}

void
kw_sh_cmd_clear(struct kw_sh_cmd *cmd)
{
	if (!cmd)
		return;
	for (size_t i = 0; i < cmd->n_assigns; i++)
		word_clear(&cmd->assigns[i]);
	for (size_t i = 0; i < cmd->argc; i++)
		word_clear(&cmd->argv[i]);
	for (size_t i = 0; i < cmd->n_redirs; i++) {
		word_clear(&cmd->redirs[i].target);
		free(cmd->redirs[i].body);
	}
	free(cmd->assigns);
	free(cmd->argv);
	free(cmd->redirs);
	memset(cmd, 0, sizeof(*cmd));
}

/*
 * Hand cmd to the script (on success it is the script's and *cmd is
 * zeroed; on failure it stays the caller's).  Its here-documents join the
 * queue of bodies read at the next newline.
 */
int
kw_sh_append(struct sh *p, struct kw_sh_cmd *cmd)
{
	struct kw_sh_script *sc = p->script;
	struct sh_src *src = &p->src;
	size_t n_docs = 0;
	int r;

	for (size_t i = 0; i < cmd->n_redirs; i++)
		if (cmd->redirs[i].op == KW_SH_R_HEREDOC)
			n_docs++;
	if (src->n_pending + n_docs > SH_MAX_PENDING)
		return kw_sh_fail(p, "too many here-documents on one line");
	if ((r = kw_sh_grow(&sc->cmds, &p->cap, sc->n_cmds + 1, sizeof(*sc->cmds))) != 0)
		return r;
	for (size_t i = 0; i < cmd->n_redirs; i++)
		if (cmd->redirs[i].op == KW_SH_R_HEREDOC)
			src->pending[src->n_pending++] = (struct sh_pending){
				.cmd = sc->n_cmds, .redir = i };
	cmd->origin = p->origin;
	cmd->depth = p->sub;
	sc->cmds[sc->n_cmds++] = *cmd;
	memset(cmd, 0, sizeof(*cmd));
	return 0;
}

/* One more level of nesting; the caller undoes it with p->nest--. */
int
kw_sh_enter(struct sh *p)
{
	if (p->nest >= KW_SH_MAX_DEPTH)
		return kw_sh_fail(p, "nested too deeply");
	p->nest++;
	return 0;
}

/* Commands appended since from read a pipe / run in the background. */
void
kw_sh_mark(struct sh *p, size_t from, bool piped, bool background)
{
	for (size_t i = from; i < p->script->n_cmds; i++) {
		p->script->cmds[i].piped_in |= piped;
		p->script->cmds[i].background |= background;
	}
}

void
kw_sh_free(struct kw_sh_script *script)
{
	if (!script)
		return;
	for (size_t i = 0; i < script->n_cmds; i++)
		kw_sh_cmd_clear(&script->cmds[i]);
	free(script->cmds);
	free(script);
}
