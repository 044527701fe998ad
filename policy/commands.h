/*
 * commands.h - what keywarden knows about particular commands: which run
 * other commands (wrappers, shells, interpreters, find), which write or
 * delete their operands, which reach the network and through which
 * operands, and which flags mean the same.  Tables, and small readers of a
 * command's words built on them.  Used by policy/command.c only.
 */
#ifndef KW_POLICY_COMMANDS_H
#define KW_POLICY_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/shell/shell.h"

enum kw_cmd_kind {
	KW_CMD_PLAIN,
	KW_CMD_WRAPPER,		/* runs the command that follows its options */
	KW_CMD_SHELL,		/* sh, bash, ...: -c STRING, a script, or its input */
	KW_CMD_EVAL,		/* eval, source, . : code known only when it runs */
	KW_CMD_INTERPRETER,	/* python, node, perl, ...: one-liners are opaque */
	KW_CMD_FIND,		/* find: -exec runs commands, -delete deletes */
	KW_CMD_NET,		/* curl, wget, ssh, git, ...: reaches hosts */
};

enum kw_cmd_kind kw_cmd_kind(const char *name) KW_NONNULL(1);

/* kw_cmd_wrapped's answers besides an index. */
#define KW_CMD_LINE	((size_t)-1)	/* runs a command line, written to line */
#define KW_CMD_OPAQUE	((size_t)-2)	/* runs something that cannot be read */

/*
 * For a wrapper (w[0] is its name): the index in w of the command it runs
 * (n when it runs none), KW_CMD_LINE with the command string in line (env
 * -S, watch, su -c, flock -c), or KW_CMD_OPAQUE.
 */
size_t kw_cmd_wrapped(const char *name, const struct kw_sh_word *w, size_t n, char *line,
    size_t line_len) KW_NONNULL(1, 2, 4);

/* How a command treats its file operands. */
enum kw_cmd_files {
	KW_FILES_READ,		/* operands that look like paths are read */
	KW_FILES_WRITE,		/* every operand is written (touch, mkdir, tee, chmod MODE F) */
	KW_FILES_DELETE,	/* every operand is deleted (rm, rmdir, unlink, shred) */
	KW_FILES_MOVE,		/* the last operand is written, the others deleted (mv) */
	KW_FILES_COPY,		/* the last operand is written, the others read (cp, ln) */
	KW_FILES_EDIT,		/* written when editing in place (sed -i), else read */
	KW_FILES_DD,		/* dd: if=FILE is read, of=FILE written */
};
enum kw_cmd_files kw_cmd_files_of(const char *name) KW_NONNULL(1);

/* Leading operands that are not files (chmod's mode, grep's pattern, sed's script). */
size_t kw_cmd_script_operands(const char *name, const struct kw_sh_word *w, size_t n)
	KW_NONNULL(1);

/* sed -i, perl -i: the files are written. */
bool kw_cmd_edits_in_place(const char *name, const struct kw_sh_word *w, size_t n)
	KW_NONNULL(1);

/* python -c, node -e, perl -e, ...: code given on the command line. */
bool kw_cmd_one_liner(const char *name, const struct kw_sh_word *w, size_t n) KW_NONNULL(1);
/* No script operand (or "-"): the program comes from standard input. */
bool kw_cmd_program_from_stdin(const struct kw_sh_word *w, size_t n);

bool kw_cmd_find_exec(const char *word) KW_NONNULL(1);	/* -exec -execdir -ok -okdir */
bool kw_cmd_find_writes(const char *word) KW_NONNULL(1);	/* -fprint FILE, -fls FILE ... */

/* VAR=value that changes what runs or loads (PATH, LD_PRELOAD, BASH_ENV, ...). */
bool kw_cmd_dangerous_assign(const char *assignment) KW_NONNULL(1);

/* Flags that mean the same for a command's rules: rm's -R and --recursive are -r. */
bool kw_cmd_flag_alias(const char *name, const char *given_long, const char *rule_flag)
	KW_NONNULL(1, 2, 3);
bool kw_cmd_short_alias(const char *name, char given, char rule_flag) KW_NONNULL(1);

/* grep -r, cp -r, rg, tar, chmod -R, ...: the command walks the trees its operands name. */
bool kw_cmd_walks_tree(const char *name, const struct kw_sh_word *w, size_t n) KW_NONNULL(1);

/* tar --to-command=CMD, sort --compress-program=CMD, ...: the option runs a program. */
bool kw_cmd_runs_option(const char *name, const char *word) KW_NONNULL(1, 2);

/* A flag of the rules given in another form: git push origin +main is --force. */
bool kw_cmd_implied_flag(const char *name, char *const *args, size_t n, const char *flag)
	KW_NONNULL(1, 4);

/* sed's script (-e SCRIPT or its first operand) runs a command or opens a file of its
   own: e, r, R, w, W, s///e, s///w.  Scanned, not parsed: doubt says true. */
bool kw_cmd_sed_opens(const struct kw_sh_word *w, size_t n);

/* A rule's operand given in another spelling: chmod's 0777 and a+rwx are 777. */
bool kw_cmd_same_operand(const char *name, const char *given, const char *rule_word)
	KW_NONNULL(1, 2, 3);

/* What a network tool's arguments name (kw_cmd_net_scan). */
enum kw_net_what {
	KW_NET_HOST,		/* text: a URL or host reached */
	KW_NET_UNKNOWN,		/* a host is reached that is not known here (a git remote) */
	KW_NET_OPAQUE,		/* text: why the command cannot be analysed */
	KW_NET_READ,		/* text: a file read (curl -T, ssh -i) */
	KW_NET_WRITE,		/* text: a file written (curl -o, wget -O) */
};

struct kw_net_item {
	enum kw_net_what what;
	char text[1024];
};

/*
 * Read the arguments w[0..n) of the network tool name (curl, wget, nc,
 * socat, ssh, sftp, scp, rsync, ftp, telnet, git, httpie's http): the hosts
 * it reaches, the files its options read or write, and what makes it
 * opaque (curl -K, ssh -o ProxyCommand, nc -e, git -c core.sshCommand).
 * Fills up to max items and returns how many; more than max ends with an
 * OPAQUE item.
 */
size_t kw_cmd_net_scan(const char *name, const struct kw_sh_word *w, size_t n,
    struct kw_net_item *items, size_t max) KW_NONNULL(1, 4);

#endif
