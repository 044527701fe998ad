/*
 * shell.h - a parser for the bash command lines Claude Code's Bash tool
 * runs, written for the policy engine: it finds every simple command a line
 * would run (including those inside $(...), backticks, <(...), >(...),
 * subshells, { ...; }, if/while/for/case bodies and function bodies), with
 * their words after quote removal and their redirections.
 *
 * It never runs or expands anything.  What it cannot know is marked, not
 * guessed: a word holding $VAR, ${...}, $(...), `...` or $((...)) is
 * KW_SH_DYNAMIC; unquoted glob characters make it KW_SH_GLOB; an unquoted
 * leading ~ makes it KW_SH_TILDE.  The policy (policy/command.c) decides what
 * a marked word means.  Pure: no I/O, no logging, no globals.
 *
 * What the parse leaves out or reshapes (bash's meaning, for the policy):
 *   - the keywords time [-p], ! and coproc qualify a pipeline and are not
 *     words of it ("time rm x" is the command "rm x"); a coproc's commands
 *     are background;
 *   - a compound command's redirections ({ ...; } > f, done < list) apply
 *     to all of it: they come as a command of their own with no words and
 *     no assignments, after the compound's commands;
 *   - [[ ... ]] and (( ... )) are commands named "[[" and "((" whose words
 *     are what is between, with "]]" and "))" as their last word;
 *   - the words of for/select/case headers and of function names are no
 *     command's (a $( ) in them still is); a function body's commands are
 *     commands of the script where it is defined;
 *   - NAME=(a b) is one word, its value as written.
 */
#ifndef KW_SH_SHELL_H
#define KW_SH_SHELL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/macros.h"

#define KW_SH_MAX_LINE	(10 * 1024)	/* longer lines are refused (KW_ERR_INVALID) */
#define KW_SH_MAX_DEPTH	8		/* nesting of $( ) ` ` ( ) { } and compounds */

enum {
	KW_SH_DYNAMIC = 1 << 0,	/* holds an expansion whose value is unknown here */
	KW_SH_GLOB = 1 << 1,	/* holds unquoted * ? or [ */
	KW_SH_TILDE = 1 << 2,	/* starts with an unquoted ~ (~ or ~/... or ~user/...) */
	KW_SH_QUOTED = 1 << 3,	/* some part of it was quoted or escaped */
};

/*
 * One word after quote removal and escape processing.  Expansions are kept
 * as written ("$HOME/x" stays "$HOME/x", "$(pwd)" stays "$(pwd)") and
 * flagged KW_SH_DYNAMIC; the commands inside a $(...) or `...` are parsed
 * and appear as commands of their own in the script.
 */
struct kw_sh_word {
	char *text;		/* NUL-terminated, owned by the script */
	unsigned flags;		/* KW_SH_* */
};

enum kw_sh_redir_op {
	KW_SH_R_IN,		/* <   (target is read) */
	KW_SH_R_OUT,		/* >  >|  &>  (target is written) */
	KW_SH_R_APPEND,		/* >>  &>>   (target is written) */
	KW_SH_R_INOUT,		/* <>  (read and written) */
	KW_SH_R_DUP,		/* >&N  <&N  N>&-  (target is a descriptor, not a path) */
	KW_SH_R_HEREDOC,	/* << <<-  (body holds the document) */
	KW_SH_R_HERESTRING,	/* <<< (target is the string, not a path) */
};

struct kw_sh_redir {
	enum kw_sh_redir_op op;
	int fd;			/* the descriptor redirected (default 0 or 1; -1 for &> and &>>) */
	struct kw_sh_word target;	/* path, descriptor, here-string or here-doc delimiter */
	char *body;		/* here-document text (KW_SH_R_HEREDOC; NULL when the line
				   ended before it, which is an error), else NULL */
	bool body_expands;	/* unquoted delimiter: $(...) in the body runs */
	bool strip_tabs;	/* <<-: leading tabs were removed from the body's lines */
};

/* Where a command sits: what the policy needs to know about its context. */
enum kw_sh_origin {
	KW_SH_TOP,		/* a command of the line itself (also in ( ), { }, if, for...) */
	KW_SH_CMDSUB,		/* inside $( ) or ` ` */
	KW_SH_PROCSUB,		/* inside <( ) or >( ) */
};

/* One simple command: VAR=x ... argv ... with its redirections. */
struct kw_sh_cmd {
	struct kw_sh_word *assigns;	/* VAR=value prefixes, as "VAR=value" */
	size_t n_assigns;
	struct kw_sh_word *argv;	/* may be empty (a bare assignment or redirection) */
	size_t argc;
	struct kw_sh_redir *redirs;
	size_t n_redirs;
	enum kw_sh_origin origin;
	unsigned depth;		/* 0 at the top; +1 per enclosing substitution */
	bool piped_in;		/* reads the output of a previous command in a pipeline (|, |&):
				   every command of a later element, a $( ) in its words too */
	bool background;	/* ended by & (every command of the and-or list before it) */
};

struct kw_sh_script {
	struct kw_sh_cmd *cmds;	/* in source order, a substitution's commands before the
				   command that holds it; the commands of a here-document's
				   body after the line that opens it (the body follows it) */
	size_t n_cmds;
	char error[128];	/* why the line did not parse ("" when it did) */
};

/*
 * Parse len bytes of text (NUL bytes are an error).  On success returns 0
 * and *ret_script (free with kw_sh_free).  A line that does not parse
 * (unterminated quote or here-document, unbalanced parentheses, a keyword
 * out of place, nesting beyond KW_SH_MAX_DEPTH, more than KW_SH_MAX_LINE
 * bytes) returns KW_ERR_INVALID and still sets *ret_script, holding the
 * commands found before the error and the reason in ->error, so a caller
 * can decide on what it saw.  KW_ERR_NOMEM: *ret_script is NULL.
 */
int kw_sh_parse(const char *text, size_t len, struct kw_sh_script **ret_script)
	KW_WUR KW_NONNULL(1, 3);

/* Free a script and everything in it (NULL allowed). */
void kw_sh_free(struct kw_sh_script *script);

#endif
