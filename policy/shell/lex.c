/*
 * lex.c - tokens: operators, redirection operators with their descriptor,
 * words, comments and blanks, and the one token of lookahead the parser
 * reads through.  Keywords are words here; the parser decides where they
 * are keywords.
 */
#include <stdbool.h>
#include <string.h>

#include "common/errors.h"
#include "policy/shell/shell_internal.h"

static const struct {
	const char *text;
	enum sh_tok_type type;
	enum sh_redir_kind redir;
} operators[] = {	/* longest first where one is the start of another */
	{ .text = ";;&", .type = T_DSEMI_AND }, { .text = ";;", .type = T_DSEMI },
	{ .text = ";&", .type = T_SEMI_AND }, { .text = ";", .type = T_SEMI },
	{ .text = "&&", .type = T_AND_IF },
	{ .text = "&>>", .type = T_REDIR, .redir = R_AMPGTGT },
	{ .text = "&>", .type = T_REDIR, .redir = R_AMPGT }, { .text = "&", .type = T_AMP },
	{ .text = "||", .type = T_OR_IF }, { .text = "|&", .type = T_PIPE_AMP },
	{ .text = "|", .type = T_PIPE },
	{ .text = "(", .type = T_LPAREN }, { .text = ")", .type = T_RPAREN },
	{ .text = "\n", .type = T_NEWLINE },
	{ .text = "<<<", .type = T_REDIR, .redir = R_TLESS },
	{ .text = "<<-", .type = T_REDIR, .redir = R_DLESSDASH },
	{ .text = "<<", .type = T_REDIR, .redir = R_DLESS },
	{ .text = "<>", .type = T_REDIR, .redir = R_LTGT },
	{ .text = "<&", .type = T_REDIR, .redir = R_LTAMP },
	{ .text = "<", .type = T_REDIR, .redir = R_LT },
	{ .text = ">>", .type = T_REDIR, .redir = R_GTGT },
	{ .text = ">&", .type = T_REDIR, .redir = R_GTAMP },
	{ .text = ">|", .type = T_REDIR, .redir = R_CLOBBER },
	{ .text = ">", .type = T_REDIR, .redir = R_GT },
};

static const struct {
	const char *name;
	enum sh_keyword k;
} keywords[] = {
	{ "if", K_IF }, { "then", K_THEN }, { "elif", K_ELIF }, { "else", K_ELSE },
	{ "fi", K_FI }, { "do", K_DO }, { "done", K_DONE }, { "case", K_CASE },
	{ "esac", K_ESAC }, { "while", K_WHILE }, { "until", K_UNTIL }, { "for", K_FOR },
	{ "select", K_SELECT }, { "in", K_IN }, { "function", K_FUNCTION },
	{ "{", K_LBRACE }, { "}", K_RBRACE }, { "!", K_BANG }, { "[[", K_DLBRACK },
	{ "time", K_TIME }, { "coproc", K_COPROC },
};

void
kw_sh_skip_blanks(struct sh_src *src, bool newlines)
{
	while (src->pos < src->len) {
		char c = src->s[src->pos];

		if (c == ' ' || c == '\t' || (newlines && c == '\n'))
			src->pos++;
		else if (c == '\\' && src->pos + 1 < src->len && src->s[src->pos + 1] == '\n')
			src->pos += 2;
		else
			break;
	}
}

/* A word a keyword can be: unquoted and without expansions. */
enum sh_keyword
kw_sh_keyword(const struct sh_tok *t)
{
	if (t->type != T_WORD || (t->w.flags & (KW_SH_QUOTED | KW_SH_DYNAMIC)) || t->w.len > 8)
		return K_NONE;
	for (size_t i = 0; i < KW_ELEMENTSOF(keywords); i++)
		if (keywords[i].name[0] == t->w.s[0] && strlen(keywords[i].name) == t->w.len &&
		    memcmp(keywords[i].name, t->w.s, t->w.len) == 0)
			return keywords[i].k;
	return K_NONE;
}

/* Whether the text at pos starts NAME=, NAME+= or NAME[...]= (an assignment). */
static bool
starts_assignment(const struct sh_src *src, size_t pos)
{
	const char *s = src->s;
	size_t i = pos;

	while (i < src->len && (s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') ||
	    (s[i] >= 'A' && s[i] <= 'Z') || (i > pos && s[i] >= '0' && s[i] <= '9')))
		i++;
	if (i == pos)
		return false;
	if (i < src->len && s[i] == '[') {
		while (i < src->len && s[i] != ']' && !strchr(" \t\n;&|()<>", s[i]))
			i++;
		if (i >= src->len || s[i] != ']')
			return false;
		i++;
	}
	if (i < src->len && s[i] == '+')
		i++;
	return i < src->len && s[i] == '=';
}

/*
 * NAME=( words ): an array assignment, one word whose value is kept as
 * written ("a=(1 "b c")"), with the flags of the words in it.
 */
static int
lex_array(struct sh *p, struct sh_buf *w)
{
	struct sh_src *src = &p->src;
	struct sh_buf scratch = { 0 };
	size_t start = src->pos;
	int r = 0;

	src->pos++;
	for (;;) {
		kw_sh_skip_blanks(src, true);
		if (src->pos >= src->len) {
			r = kw_sh_fail(p, "unterminated array assignment");
			break;
		}
		if (src->s[src->pos] == ')')
			break;
		size_t before = src->pos;
		if ((r = kw_sh_lex_word(p, M_NORMAL, &scratch)) != 0)
			break;
		if (src->pos == before) {
			r = kw_sh_fail(p, "unexpected '%c' in array assignment", src->s[src->pos]);
			break;
		}
	}
	w->flags |= scratch.flags & ~(unsigned)KW_SH_TILDE;
	kw_sh_buf_free(&scratch);
	if (r != 0)
		return r;
	src->pos++;
	return kw_sh_buf_put(w, src->s + start, src->pos - start);
}

static int
lex_word_token(struct sh *p, struct sh_tok *t)
{
	struct sh_src *src = &p->src;
	int r;

	t->type = T_WORD;
	t->assign = starts_assignment(src, src->pos);
	if ((r = kw_sh_lex_word(p, M_NORMAL, &t->w)) != 0)
		return r;
	if (t->assign && t->w.len > 0 && t->w.s[t->w.len - 1] == '=' &&
	    src->pos < src->len && src->s[src->pos] == '(')
		return lex_array(p, &t->w);
	return 0;
}

/* Digits right before < or > are the descriptor redirected (2>, 10<): at most 9. */
static int
descriptor(const struct sh_src *src, size_t *ret_len)
{
	size_t i = src->pos;
	int fd = 0;

	while (i < src->len && i - src->pos < 9 && src->s[i] >= '0' && src->s[i] <= '9')
		fd = fd * 10 + (src->s[i++] - '0');
	if (i == src->pos || i >= src->len || (src->s[i] != '<' && src->s[i] != '>') ||
	    (i + 1 < src->len && src->s[i + 1] == '('))
		return -2;
	*ret_len = i - src->pos;
	return fd;
}

/* An operator at the current position: 1 when one was read into t, else 0. */
static int
lex_operator(struct sh_src *src, struct sh_tok *t)
{
	size_t skip = 0;
	int fd = descriptor(src, &skip);
	char c = src->s[src->pos + skip];

	/* Most tokens are words: do not try every operator on them. */
	if (c == '\0' || !strchr(";&|()<>\n", c))
		return 0;
	for (size_t i = 0; i < KW_ELEMENTSOF(operators); i++) {
		size_t n;
		if (operators[i].text[0] != c)
			continue;
		n = strlen(operators[i].text);
		if (src->len - src->pos - skip < n ||
		    memcmp(src->s + src->pos + skip, operators[i].text, n) != 0)
			continue;
		if (fd != -2 && operators[i].type != T_REDIR)
			return 0;
		t->type = operators[i].type;
		t->redir = operators[i].redir;
		t->fd = fd;
		src->pos += skip + n;
		return 1;
	}
	return 0;
}

static int
lex_token(struct sh *p, struct sh_tok *t)
{
	struct sh_src *src = &p->src;
	char c, next;

	for (;;) {
		kw_sh_skip_blanks(src, false);
		t->start = src->pos;
		if (src->pos >= src->len) {
			t->type = T_EOF;
			return 0;
		}
		if (src->s[src->pos] != '#')
			break;
		/* A comment runs to the newline, which stays a token. */
		while (src->pos < src->len && src->s[src->pos] != '\n')
			src->pos++;
	}
	c = src->s[src->pos];
	next = src->pos + 1 < src->len ? src->s[src->pos + 1] : '\0';
	if ((c == '<' || c == '>') && next == '(')
		return lex_word_token(p, t);
	if (lex_operator(src, t))
		return 0;
	return lex_word_token(p, t);
}

int
kw_sh_peek(struct sh *p, const struct sh_tok **ret_tok)
{
	struct sh_tok t = { .fd = -2 };
	int r;

	/* Lexed into t, not p->tok: a $( ) in the word uses the lookahead itself. */
	if (!p->have) {
		if ((r = lex_token(p, &t)) != 0) {
			kw_sh_buf_free(&t.w);
			return r;
		}
		p->tok = t;
		p->have = true;
	}
	*ret_tok = &p->tok;
	return 0;
}

void
kw_sh_drop(struct sh *p)
{
	kw_sh_buf_free(&p->tok.w);
	p->have = false;
}

/* Take the word token read by kw_sh_peek. */
int
kw_sh_take_word(struct sh *p, struct kw_sh_word *ret_word)
{
	int r = kw_sh_buf_take(&p->tok.w, ret_word);

	kw_sh_drop(p);
	return r;
}

static const char *const token_names[] = {
	[T_EOF] = "end of line", [T_NEWLINE] = "newline", [T_SEMI] = ";", [T_DSEMI] = ";;",
	[T_SEMI_AND] = ";&", [T_DSEMI_AND] = ";;&", [T_AMP] = "&", [T_AND_IF] = "&&",
	[T_OR_IF] = "||", [T_PIPE] = "|", [T_PIPE_AMP] = "|&", [T_LPAREN] = "(",
	[T_RPAREN] = ")", [T_REDIR] = "redirection",
};

int
kw_sh_unexpected(struct sh *p, const struct sh_tok *t)
{
	if (t->type == T_WORD)
		return kw_sh_fail(p, "unexpected '%.*s'", (int)(t->w.len < 32 ? t->w.len : 32),
		    t->w.s ? t->w.s : "");
	if (t->type == T_EOF)
		return kw_sh_fail(p, "unexpected end of line");
	return kw_sh_fail(p, "unexpected '%s'", token_names[t->type]);
}
