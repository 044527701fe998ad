/*
 * compound.c - ( ) { } if while until for select case and function: their
 * bodies' commands are commands of the script (depth unchanged: only a
 * substitution is deeper).  Each construct is one level of nesting.
 */
#include <stdbool.h>
#include <string.h>

#include "common/errors.h"
#include "policy/shell/shell_internal.h"

/* Take the keyword k where it must be, or fail saying why. */
int
kw_sh_expect(struct sh *p, enum sh_keyword k, const char *why)
{
	const struct sh_tok *t;
	int r;

	if ((r = kw_sh_peek(p, &t)) != 0)
		return r;
	if (kw_sh_keyword(t) != k)
		return kw_sh_fail(p, "%s", why);
	kw_sh_drop(p);
	return 0;
}

int
kw_sh_want(struct sh *p, enum sh_tok_type type, const char *why)
{
	const struct sh_tok *t;
	int r;

	if ((r = kw_sh_peek(p, &t)) != 0)
		return r;
	if (t->type != type)
		return kw_sh_fail(p, "%s", why);
	kw_sh_drop(p);
	return 0;
}

/* A list ended by the keyword close, and that keyword. */
static int
list_until(struct sh *p, enum sh_keyword close, const char *why)
{
	int r;

	if ((r = kw_sh_parse_list(p, STOP_KW(close))) != 0)
		return r;
	return kw_sh_expect(p, close, why);
}

static int
parse_subshell(struct sh *p)
{
	const struct sh_tok *t;
	int r;

	kw_sh_drop(p);
	if ((r = kw_sh_parse_list(p, STOP_RPAREN)) != 0 || (r = kw_sh_peek(p, &t)) != 0)
		return r;
	if (t->type != T_RPAREN)
		return kw_sh_fail(p, "missing ')'");
	kw_sh_drop(p);
	return 0;
}

/* if list then list { elif list then list } [ else list ] fi */
static int
parse_if(struct sh *p)
{
	const unsigned after_then = STOP_KW(K_ELIF) | STOP_KW(K_ELSE) | STOP_KW(K_FI);
	const struct sh_tok *t;
	enum sh_keyword k = K_ELIF;
	int r;

	kw_sh_drop(p);
	while (k == K_ELIF) {
		if ((r = list_until(p, K_THEN, "missing 'then'")) != 0 ||
		    (r = kw_sh_parse_list(p, after_then)) != 0 || (r = kw_sh_peek(p, &t)) != 0)
			return r;
		k = kw_sh_keyword(t);
		if (k == K_ELIF || k == K_ELSE)
			kw_sh_drop(p);
	}
	if (k == K_ELSE)
		return list_until(p, K_FI, "missing 'fi'");
	return kw_sh_expect(p, K_FI, "missing 'fi'");
}

/* do list done, or { list } (bash takes both after for and select). */
static int
loop_body(struct sh *p)
{
	const struct sh_tok *t;
	int r;

	if ((r = kw_sh_skip_newlines(p)) != 0 || (r = kw_sh_peek(p, &t)) != 0)
		return r;
	if (kw_sh_keyword(t) == K_LBRACE) {
		kw_sh_drop(p);
		return list_until(p, K_RBRACE, "missing '}'");
	}
	if ((r = kw_sh_expect(p, K_DO, "missing 'do'")) != 0)
		return r;
	return list_until(p, K_DONE, "missing 'done'");
}

/* The words after "in", up to ; or a newline; only their substitutions matter. */
static int
for_words(struct sh *p)
{
	const struct sh_tok *t;
	int r;

	while ((r = kw_sh_peek(p, &t)) == 0 && t->type == T_WORD)
		kw_sh_drop(p);
	if (r != 0)
		return r;
	if (t->type == T_SEMI) {
		kw_sh_drop(p);
		return 0;
	}
	if (t->type == T_NEWLINE)
		return kw_sh_newline(p);
	return kw_sh_fail(p, "missing 'do'");
}

/* for NAME [in WORDS] (; | newline) body, or for (( ... )) [;] body; select alike. */
static int
parse_for(struct sh *p)
{
	const struct sh_tok *t;
	int r;

	kw_sh_drop(p);
	if ((r = kw_sh_peek(p, &t)) != 0)
		return r;
	if (t->type == T_LPAREN && t->start + 1 < p->src.len && p->src.s[t->start + 1] == '(') {
		p->src.pos = t->start + 2;
		kw_sh_drop(p);
		if ((r = kw_sh_arith_words(p, NULL)) != 0 || (r = kw_sh_peek(p, &t)) != 0)
			return r;
		if (t->type == T_SEMI)
			kw_sh_drop(p);
		return loop_body(p);
	}
	if (t->type != T_WORD)
		return kw_sh_fail(p, "missing the name after 'for'");
	kw_sh_drop(p);
	if ((r = kw_sh_skip_newlines(p)) != 0 || (r = kw_sh_peek(p, &t)) != 0)
		return r;
	if (kw_sh_keyword(t) == K_IN) {
		kw_sh_drop(p);
		if ((r = for_words(p)) != 0)
			return r;
	} else if (t->type == T_SEMI)
		kw_sh_drop(p);
	return loop_body(p);
}

/* [(] PATTERN { | PATTERN } ) */
static int
case_patterns(struct sh *p)
{
	const struct sh_tok *t;
	int r;

	if ((r = kw_sh_peek(p, &t)) != 0)
		return r;
	if (t->type == T_LPAREN)
		kw_sh_drop(p);
	for (;;) {
		if ((r = kw_sh_peek(p, &t)) != 0)
			return r;
		if (t->type != T_WORD)
			return kw_sh_fail(p, "a case pattern missing");
		kw_sh_drop(p);
		if ((r = kw_sh_peek(p, &t)) != 0)
			return r;
		kw_sh_drop(p);
		if (t->type == T_RPAREN)
			return 0;
		if (t->type != T_PIPE)
			return kw_sh_fail(p, "missing ')' after a case pattern");
	}
}

/* case WORD in { PATTERNS ) list (;; | ;& | ;;&) } esac */
static int
parse_case(struct sh *p)
{
	const struct sh_tok *t;
	int r;

	kw_sh_drop(p);
	if ((r = kw_sh_want(p, T_WORD, "missing the word after 'case'")) != 0)
		return r;
	if ((r = kw_sh_skip_newlines(p)) != 0 || (r = kw_sh_expect(p, K_IN, "missing 'in'")) != 0)
		return r;
	for (;;) {
		if ((r = kw_sh_skip_newlines(p)) != 0 || (r = kw_sh_peek(p, &t)) != 0)
			return r;
		if (kw_sh_keyword(t) == K_ESAC) {
			kw_sh_drop(p);
			return 0;
		}
		if (t->type == T_EOF)
			return kw_sh_fail(p, "missing 'esac'");
		if ((r = case_patterns(p)) != 0 ||
		    (r = kw_sh_parse_list(p, STOP_DSEMI | STOP_KW(K_ESAC))) != 0 ||
		    (r = kw_sh_peek(p, &t)) != 0)
			return r;
		if (t->type == T_DSEMI || t->type == T_SEMI_AND || t->type == T_DSEMI_AND)
			kw_sh_drop(p);
		else if (kw_sh_keyword(t) != K_ESAC)
			return kw_sh_fail(p, "missing 'esac'");
	}
}

/* function NAME [()] body */
static int
parse_function(struct sh *p)
{
	const struct sh_tok *t;
	int r;

	kw_sh_drop(p);
	if ((r = kw_sh_want(p, T_WORD, "missing the name after 'function'")) != 0 ||
	    (r = kw_sh_peek(p, &t)) != 0)
		return r;
	if (t->type == T_LPAREN) {
		kw_sh_drop(p);
		if ((r = kw_sh_want(p, T_RPAREN, "expected ')' after '('")) != 0)
			return r;
	}
	return kw_sh_function_body(p);
}

/* The compound command the keyword k (K_NONE: a "(") kw_sh_peek read starts. */
int
kw_sh_parse_compound(struct sh *p, enum sh_keyword k)
{
	int r;

	if ((r = kw_sh_enter(p)) != 0)
		return r;
	switch (k) {
	case K_NONE:
		r = parse_subshell(p);
		break;
	case K_LBRACE:
		kw_sh_drop(p);
		r = list_until(p, K_RBRACE, "missing '}'");
		break;
	case K_IF:
		r = parse_if(p);
		break;
	case K_WHILE:
	case K_UNTIL:
		kw_sh_drop(p);
		if ((r = list_until(p, K_DO, "missing 'do'")) == 0)
			r = list_until(p, K_DONE, "missing 'done'");
		break;
	case K_FOR:
	case K_SELECT:
		r = parse_for(p);
		break;
	case K_CASE:
		r = parse_case(p);
		break;
	default:
		r = parse_function(p);
		break;
	}
	p->nest--;
	return r;
}
