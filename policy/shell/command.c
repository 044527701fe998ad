/*
 * command.c - one command: which kind it is, simple commands (assignments,
 * words, redirections, f() definitions), [[ ]] and (( )), and the
 * redirections after a compound command.
 */
#include <stdbool.h>
#include <string.h>

#include "common/errors.h"
#include "policy/shell/shell_internal.h"

/*
 * The room kw_sh_grow left for n elements (4, then doubling): a command's
 * arrays keep no capacity of their own.
 */
size_t
kw_sh_room(size_t n)
{
	size_t cap = 4;

	if (n == 0)
		return 0;
	while (cap < n)
		cap *= 2;
	return cap;
}

int
kw_sh_push_word(struct kw_sh_word **arr, size_t *n, struct sh_buf *w)
{
	size_t cap = kw_sh_room(*n);
	int r;

	if ((r = kw_sh_grow(arr, &cap, *n + 1, sizeof(**arr))) != 0)
		return r;
	if ((r = kw_sh_buf_take(w, &(*arr)[*n])) != 0)
		return r;
	(*n)++;
	return 0;
}

int
kw_sh_push_text(struct kw_sh_cmd *cmd, const char *text)
{
	struct sh_buf w = { 0 };
	int r;

	if ((r = kw_sh_buf_put(&w, text, strlen(text))) == 0)
		r = kw_sh_push_word(&cmd->argv, &cmd->argc, &w);
	kw_sh_buf_free(&w);
	return r;
}

/* A descriptor for >& and <&: digits, "-" (close), or digits then "-" (move). */
static bool
is_descriptor(const char *s)
{
	size_t n = strspn(s, "0123456789");

	return (n > 0 && (s[n] == '\0' || (s[n] == '-' && s[n + 1] == '\0'))) ||
	    strcmp(s, "-") == 0;
}

static const struct {
	enum kw_sh_redir_op op;
	int fd;
} redir_kinds[] = {
	[R_LT] = { KW_SH_R_IN, 0 }, [R_GT] = { KW_SH_R_OUT, 1 },
	[R_GTGT] = { KW_SH_R_APPEND, 1 }, [R_CLOBBER] = { KW_SH_R_OUT, 1 },
	[R_LTGT] = { KW_SH_R_INOUT, 0 }, [R_AMPGT] = { KW_SH_R_OUT, -1 },
	[R_AMPGTGT] = { KW_SH_R_APPEND, -1 }, [R_GTAMP] = { KW_SH_R_DUP, 1 },
	[R_LTAMP] = { KW_SH_R_DUP, 0 }, [R_DLESS] = { KW_SH_R_HEREDOC, 0 },
	[R_DLESSDASH] = { KW_SH_R_HEREDOC, 0 }, [R_TLESS] = { KW_SH_R_HERESTRING, 0 },
};

/* The redirection token kw_sh_peek read and its target word, into cmd. */
int
kw_sh_parse_redir(struct sh *p, struct kw_sh_cmd *cmd)
{
	enum sh_redir_kind kind = p->tok.redir;
	int fd = p->tok.fd;
	struct kw_sh_redir rd = { .op = redir_kinds[kind].op, .fd = fd };
	size_t cap = kw_sh_room(cmd->n_redirs);
	const struct sh_tok *t;
	int r;

	kw_sh_drop(p);
	if ((r = kw_sh_peek(p, &t)) != 0)
		return r;
	if (t->type != T_WORD)
		return kw_sh_fail(p, "a redirection without a target");
	if ((r = kw_sh_grow(&cmd->redirs, &cap, cmd->n_redirs + 1, sizeof(rd))) != 0 ||
	    (r = kw_sh_take_word(p, &rd.target)) != 0)
		return r;
	if (fd == -2)
		rd.fd = redir_kinds[kind].fd;
	/* >&word with no descriptor before it is &>word when word is not one. */
	if (kind == R_GTAMP && fd == -2 && !is_descriptor(rd.target.text)) {
		rd.op = KW_SH_R_OUT;
		rd.fd = -1;
	}
	rd.body_expands = rd.op == KW_SH_R_HEREDOC && !(rd.target.flags & KW_SH_QUOTED);
	rd.strip_tabs = kind == R_DLESSDASH;
	cmd->redirs[cmd->n_redirs++] = rd;
	return 0;
}

/* Redirections after a compound command, [[ ]] or (( )), into cmd. */
int
kw_sh_trailing_redirs(struct sh *p, struct kw_sh_cmd *cmd)
{
	const struct sh_tok *t;
	int r;

	while ((r = kw_sh_peek(p, &t)) == 0 && t->type == T_REDIR)
		if ((r = kw_sh_parse_redir(p, cmd)) != 0)
			return r;
	return r;
}

/*
 * A compound command's redirections apply to all of it: they become a
 * command of their own with no words, after the compound's commands, so
 * the policy sees every file a line opens.
 */
int
kw_sh_compound_redirs(struct sh *p)
{
	struct kw_sh_cmd cmd = { 0 };
	int r;

	if ((r = kw_sh_trailing_redirs(p, &cmd)) == 0 && cmd.n_redirs > 0)
		r = kw_sh_append(p, &cmd);
	kw_sh_cmd_clear(&cmd);
	return r;
}

/* The body of a function definition: its commands are the script's. */
int
kw_sh_function_body(struct sh *p)
{
	int r;

	if ((r = kw_sh_skip_newlines(p)) != 0 || (r = kw_sh_enter(p)) != 0)
		return r;
	r = kw_sh_parse_command(p);
	p->nest--;
	return r;
}

/* NAME ( ) after the word NAME: the "(" was peeked. */
static int
function_def(struct sh *p)
{
	int r;

	kw_sh_drop(p);
	if ((r = kw_sh_want(p, T_RPAREN, "expected ')' after '('")) != 0)
		return r;
	return kw_sh_function_body(p);
}

/* One word of a simple command: an assignment while no command name was seen. */
static int
simple_word(struct sh *p, struct kw_sh_cmd *cmd)
{
	size_t cap;
	int r;

	if (cmd->argc > 0 || !p->tok.assign) {
		r = kw_sh_push_word(&cmd->argv, &cmd->argc, &p->tok.w);
		kw_sh_drop(p);
		return r;
	}
	cap = kw_sh_room(cmd->n_assigns);
	if ((r = kw_sh_grow(&cmd->assigns, &cap, cmd->n_assigns + 1, sizeof(*cmd->assigns))) != 0)
		return r;
	/* An assignment's value is neither globbed nor brace-expanded. */
	p->tok.w.flags &= ~KW_SH_GLOB;
	return kw_sh_take_word(p, &cmd->assigns[cmd->n_assigns++]);
}

/*
 * [assignments] words and redirections, in any order, up to an operator.
 * A word followed by "()" defines a function instead.
 */
int
kw_sh_parse_simple(struct sh *p)
{
	struct kw_sh_cmd cmd = { 0 };
	const struct sh_tok *t;
	int r;

	while ((r = kw_sh_peek(p, &t)) == 0) {
		if (t->type == T_REDIR)
			r = kw_sh_parse_redir(p, &cmd);
		else if (t->type == T_WORD)
			r = simple_word(p, &cmd);
		else if (t->type == T_LPAREN && cmd.argc == 1 && cmd.n_assigns == 0 &&
		    cmd.n_redirs == 0) {
			kw_sh_cmd_clear(&cmd);
			return function_def(p);
		} else
			break;
		if (r != 0)
			goto out;
	}
	if (r == 0 && cmd.argc == 0 && cmd.n_assigns == 0 && cmd.n_redirs == 0)
		r = kw_sh_unexpected(p, t);
	if (r == 0)
		r = kw_sh_append(p, &cmd);
 out:
	kw_sh_cmd_clear(&cmd);
	return r;
}

/* Whether the "(" token t starts "((" arithmetic rather than a subshell. */
static bool
opens_arith(const struct sh *p, const struct sh_tok *t)
{
	return t->start + 1 < p->src.len && p->src.s[t->start + 1] == '(' &&
	    kw_sh_arith_closes(&p->src, t->start + 2);
}

/* One command: compound (with its redirections), [[ ]], (( )) or simple. */
int
kw_sh_parse_command(struct sh *p)
{
	const struct sh_tok *t;
	enum sh_keyword k;
	int r;

	if ((r = kw_sh_peek(p, &t)) != 0)
		return r;
	if (t->type == T_LPAREN)
		return opens_arith(p, t) ? kw_sh_parse_dparen(p) :
		    (r = kw_sh_parse_compound(p, K_NONE)) != 0 ? r : kw_sh_compound_redirs(p);
	k = kw_sh_keyword(t);
	switch (k) {
	case K_LBRACE: case K_IF: case K_WHILE: case K_UNTIL: case K_FOR: case K_SELECT:
	case K_CASE:
		if ((r = kw_sh_parse_compound(p, k)) != 0)
			return r;
		return kw_sh_compound_redirs(p);
	case K_FUNCTION:
		return kw_sh_parse_compound(p, k);
	case K_DLBRACK:
		return kw_sh_parse_dbrack(p);
	case K_THEN: case K_ELIF: case K_ELSE: case K_FI: case K_DO: case K_DONE:
	case K_ESAC: case K_RBRACE:
		return kw_sh_unexpected(p, t);
	default:
		return kw_sh_parse_simple(p);
	}
}
