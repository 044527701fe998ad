/*
 * shell_internal.h - what the parser's files share: the parser state, the
 * word buffer and the token.  Not part of the contract (shell.h is).
 *
 * The parser is recursive descent over one token of lookahead.  Recursion
 * is bounded: every construct that recurses (a substitution, a compound
 * command, ${...}, $((...))) goes through kw_sh_enter, which refuses more
 * than KW_SH_MAX_DEPTH levels.
 */
#ifndef KW_SH_SHELL_INTERNAL_H
#define KW_SH_SHELL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/macros.h"
#include "policy/shell/shell.h"

/* Here-documents opened on one line and waiting for their bodies. */
#define SH_MAX_PENDING	16

/* A growing word: text after quote removal, and its KW_SH_* flags. */
struct sh_buf {
	char *s;
	size_t len, cap;
	unsigned flags;
};

enum sh_tok_type {
	T_EOF, T_WORD, T_NEWLINE, T_SEMI, T_DSEMI, T_SEMI_AND, T_DSEMI_AND, T_AMP,
	T_AND_IF, T_OR_IF, T_PIPE, T_PIPE_AMP, T_LPAREN, T_RPAREN, T_REDIR,
};

/* Redirection operators as written; kw_sh_parse_redir maps them to kw_sh_redir_op. */
enum sh_redir_kind {
	R_LT, R_GT, R_GTGT, R_CLOBBER, R_LTGT, R_AMPGT, R_AMPGTGT, R_GTAMP, R_LTAMP,
	R_DLESS, R_DLESSDASH, R_TLESS,
};

struct sh_tok {
	enum sh_tok_type type;
	size_t start;		/* offset of its first byte in the source */
	struct sh_buf w;	/* T_WORD */
	bool assign;		/* T_WORD: begins NAME=, NAME+= or NAME[..]= unquoted */
	enum sh_redir_kind redir;	/* T_REDIR */
	int fd;			/* T_REDIR: the descriptor written before it, else -2 */
};

/* A here-document waiting for its body: script->cmds[cmd].redirs[redir]. */
struct sh_pending {
	size_t cmd, redir;
};

/* One text being read: the line, a backtick's unescaped inside, a here-doc body. */
struct sh_src {
	const char *s;
	size_t len, pos;
	struct sh_pending pending[SH_MAX_PENDING];
	size_t n_pending;
};

struct sh {
	struct sh_src src;
	struct kw_sh_script *script;
	size_t cap;		/* room in script->cmds */
	unsigned nest;		/* constructs open around the current point */
	unsigned sub;		/* substitutions open around it: the depth of its commands */
	enum kw_sh_origin origin;
	bool have;		/* tok holds the next token, read but not taken */
	struct sh_tok tok;
};

/* How kw_sh_lex_word reads: where a word ends and what is special in it. */
enum sh_mode {
	M_NORMAL,	/* a shell word: ends at a blank or an operator */
	M_REGEX,	/* right of =~ in [[ ]]: ends at a blank outside ( ) */
	M_ARITH,	/* a word of (( )) or for (( )): ends at a blank or an unmatched ) */
	M_ARITH_SUB,	/* the inside of $(( )): ends only at an unmatched ) */
	M_BRACE,	/* the inside of ${ }: ends at an unmatched } */
};

/* Keywords, recognised only as a plain word in command position. */
enum sh_keyword {
	K_NONE, K_IF, K_THEN, K_ELIF, K_ELSE, K_FI, K_DO, K_DONE, K_CASE, K_ESAC,
	K_WHILE, K_UNTIL, K_FOR, K_SELECT, K_IN, K_FUNCTION, K_LBRACE, K_RBRACE,
	K_BANG, K_DLBRACK, K_TIME, K_COPROC,
};

/* What ends a list, beside the end of the text: keyword bits and these. */
#define STOP_KW(k)	(1u << (k))
#define STOP_RPAREN	(1u << 30)
#define STOP_DSEMI	(1u << 31)

/* script.c */
int kw_sh_fail(struct sh *p, const char *fmt, ...) KW_PRINTF(2, 3) KW_NONNULL(1, 2);
int kw_sh_grow(void *arrp, size_t *cap, size_t need, size_t size) KW_WUR KW_NONNULL(1, 2);
int kw_sh_append(struct sh *p, struct kw_sh_cmd *cmd) KW_WUR KW_NONNULL(1, 2);
void kw_sh_cmd_clear(struct kw_sh_cmd *cmd);
int kw_sh_enter(struct sh *p) KW_WUR KW_NONNULL(1);
void kw_sh_mark(struct sh *p, size_t from, bool piped, bool background) KW_NONNULL(1);

/* buf.c */
int kw_sh_buf_putc(struct sh_buf *b, char c) KW_WUR KW_NONNULL(1);
int kw_sh_buf_put(struct sh_buf *b, const char *s, size_t n) KW_WUR KW_NONNULL(1);
int kw_sh_buf_take(struct sh_buf *b, struct kw_sh_word *ret_word) KW_WUR KW_NONNULL(1, 2);
void kw_sh_buf_free(struct sh_buf *b);

/* word.c, quote.c, ansi_c.c, subst.c */
int kw_sh_lex_word(struct sh *p, enum sh_mode mode, struct sh_buf *w) KW_WUR KW_NONNULL(1, 3);
int kw_sh_lex_dquote(struct sh *p, struct sh_buf *w, bool heredoc) KW_WUR KW_NONNULL(1, 2);
int kw_sh_lex_dollar(struct sh *p, struct sh_buf *w, bool in_dquote) KW_WUR KW_NONNULL(1, 2);
int kw_sh_lex_ansi_c(struct sh *p, struct sh_buf *w) KW_WUR KW_NONNULL(1, 2);
int kw_sh_lex_backtick(struct sh *p, struct sh_buf *w, bool in_dquote) KW_WUR KW_NONNULL(1, 2);
int kw_sh_lex_procsub(struct sh *p, struct sh_buf *w) KW_WUR KW_NONNULL(1, 2);
bool kw_sh_arith_closes(const struct sh_src *src, size_t pos) KW_NONNULL(1);
int kw_sh_sub_list(struct sh *p, enum kw_sh_origin origin) KW_WUR KW_NONNULL(1);
int kw_sh_sub_text(struct sh *p, const char *text, size_t len, enum kw_sh_origin origin,
    unsigned depth) KW_WUR KW_NONNULL(1, 2);

/* lex.c */
int kw_sh_peek(struct sh *p, const struct sh_tok **ret_tok) KW_WUR KW_NONNULL(1, 2);
void kw_sh_drop(struct sh *p) KW_NONNULL(1);
int kw_sh_take_word(struct sh *p, struct kw_sh_word *ret_word) KW_WUR KW_NONNULL(1, 2);
void kw_sh_skip_blanks(struct sh_src *src, bool newlines) KW_NONNULL(1);
enum sh_keyword kw_sh_keyword(const struct sh_tok *t) KW_NONNULL(1);
int kw_sh_unexpected(struct sh *p, const struct sh_tok *t) KW_NONNULL(1, 2);

/* heredoc.c */
int kw_sh_newline(struct sh *p) KW_WUR KW_NONNULL(1);
int kw_sh_skip_newlines(struct sh *p) KW_WUR KW_NONNULL(1);
int kw_sh_heredocs_done(struct sh *p) KW_WUR KW_NONNULL(1);

/* parse.c, compound.c, command.c, cond.c */
int kw_sh_parse_list(struct sh *p, unsigned stops) KW_WUR KW_NONNULL(1);
int kw_sh_parse_pipeline(struct sh *p) KW_WUR KW_NONNULL(1);
int kw_sh_parse_command(struct sh *p) KW_WUR KW_NONNULL(1);
int kw_sh_parse_compound(struct sh *p, enum sh_keyword k) KW_WUR KW_NONNULL(1);
int kw_sh_parse_simple(struct sh *p) KW_WUR KW_NONNULL(1);
int kw_sh_parse_redir(struct sh *p, struct kw_sh_cmd *cmd) KW_WUR KW_NONNULL(1, 2);
int kw_sh_trailing_redirs(struct sh *p, struct kw_sh_cmd *cmd) KW_WUR KW_NONNULL(1, 2);
size_t kw_sh_room(size_t n);
int kw_sh_push_word(struct kw_sh_word **arr, size_t *n, struct sh_buf *w) KW_WUR KW_NONNULL(1, 2, 3);
int kw_sh_push_text(struct kw_sh_cmd *cmd, const char *text) KW_WUR KW_NONNULL(1, 2);
int kw_sh_arith_words(struct sh *p, struct kw_sh_cmd *cmd) KW_WUR KW_NONNULL(1);
int kw_sh_parse_dparen(struct sh *p) KW_WUR KW_NONNULL(1);
int kw_sh_compound_redirs(struct sh *p) KW_WUR KW_NONNULL(1);
int kw_sh_function_body(struct sh *p) KW_WUR KW_NONNULL(1);
int kw_sh_parse_dbrack(struct sh *p) KW_WUR KW_NONNULL(1);
int kw_sh_expect(struct sh *p, enum sh_keyword k, const char *why) KW_WUR KW_NONNULL(1, 3);
/* The next token must be of type: dropped, 0; else fail with why. */
int kw_sh_want(struct sh *p, enum sh_tok_type type, const char *why) KW_WUR KW_NONNULL(1, 3);

#endif
