/*
 * cli.h - what the keywarden command's subcommands share: global options,
 * exit statuses, and a connection to the broker.
 */
#ifndef KW_CLI_H
#define KW_CLI_H

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "client/keywarden.h"
#include "common/macros.h"

/* Exit statuses (keywarden(1)). */
#define KW_EXIT_OK		0
#define KW_EXIT_DENIED		1	/* denied or not found */
#define KW_EXIT_USAGE		2	/* usage or configuration error */
#define KW_EXIT_UNREACHABLE	3	/* no broker */

struct kw_cli {
	const char *socket;	/* --socket, or NULL until resolved */
	const char *config;	/* --config, $KEYWARDEN_CONFIG or the default */
	bool json;		/* --json, before the command or among its arguments */
	const struct kw_cmd *cmd;	/* the command kw_cli_run runs */
	char path[96];		/* its whole name, "keywarden key get": messages, usage */
};

/*
 * A row of a command table (wireguard-tools' { name, fn, help }), and what
 * --help and a usage error print for it.  A row with only the first three
 * still runs; its usage line then reads "[ARGS]".
 */
struct kw_cmd {
	const char *name;
	int (*fn)(struct kw_cli *cli, int argc, char **argv);
	const char *help;	/* one line: what it does */
	const char *usage;	/* after the name: "NAME [--version N] [--json]" */
	const char *options;	/* "  --opt  what it does\n" lines for --help, or NULL */
	unsigned flags;		/* KW_CMD_* */
};

#define KW_CMD_GROUP	(1u << 0)	/* fn runs a table of its own (kw_cli_run_group) */
#define KW_CMD_RAW	(1u << 1)	/* arguments pass untouched (exec: CMD's); no --json */
/* Runs without loading cli/lazy_libs.c's libraries up front (each loads when first
   called): a command that neither forks nor starts threads, run often (lazylib.h). */
#define KW_CMD_LEAN	(1u << 2)

/*
 * The socket to use: --socket, $KEYWARDEN_SOCKET, the config's broker.socket,
 * then the default.  Static or borrowed storage.
 */
const char *kw_cli_socket(struct kw_cli *cli) KW_NONNULL(1);

/*
 * Connect to the broker.  On failure prints "keywarden: broker unreachable
 * at PATH: why" and returns the exit status to use; 0 on success.
 */
int kw_cli_connect(struct kw_cli *cli, kw_client **ret_client) KW_NONNULL(1, 2);

/* The same, saying nothing when there is no broker (or none to trust): a
   libkeywarden error code, 0 on success. */
int kw_cli_connect_quiet(struct kw_cli *cli, kw_client **ret_client) KW_NONNULL(1, 2);

/* Whether the last kw_cli_connect attached a cached session token. */
bool kw_cli_session_attached(void);

/* Exit status for a libkeywarden error code. */
int kw_cli_exit_for(int err);

/*
 * output.c: print a broker's error reply (or a failure with its code) as
 * "keywarden: what: message", kept for --json's error object.
 */
void kw_cli_error(const char *what, int err, const char *message);

/*
 * Any other failure: "keywarden: what: " and the message on stderr, kept
 * for --json under err's name.  Returns the exit status for err.
 */
int kw_cli_fail(int err, const char *what, const char *fmt, ...) KW_PRINTF(3, 4) KW_NONNULL(2, 3);

/* Keep code and message as the failure --json reports (the last one wins). */
void kw_cli_record_error(const char *code, const char *message) KW_NONNULL(1, 2);

/*
 * The command's JSON result (borrowed; a copy is kept).  It is printed
 * by kw_cli_finish, indented, ASCII only (\uXXXX), with a newline.
 */
void kw_cli_print_json(json_t *v) KW_NONNULL(1);

/*
 * At the end of a run: print the JSON result; with --json and a failure,
 * with "error": {"code", "message"} added (or as the only member).
 */
void kw_cli_finish(struct kw_cli *cli, int ex) KW_NONNULL(1);

/*
 * safe.c: s (text from the broker or a file; NULL gives "") made safe for a
 * terminal: control characters, C1 controls and bytes that are not UTF-8
 * shown as \xHH (common/escape.h).  Every human output of foreign text goes
 * through it.  The result lives in one of 8 buffers used in turn (so up to
 * 8 may appear in one printf), wiped when reused and at exit.
 */
const char *kw_cli_safe(const char *s);

/*
 * Print s and a newline to stdout as data (key get, config get): the bytes
 * as they are for a program, through kw_cli_safe when stdout is a terminal.
 */
void kw_cli_print_data(const char *s);

/* True when argv[1..] has flag before "--" (and removes it). */
bool kw_cli_take_flag(int *argc, char **argv, const char *flag) KW_NONNULL(1, 2, 3);

/*
 * command.c: run cmd with argv (argv[0] its name).  The one place a
 * command's --help (usage and options on stdout, exit 0) and --json are
 * taken; cli->cmd and cli->path name the command while it runs.
 */
int kw_cli_run(struct kw_cli *cli, const struct kw_cmd *cmd, int argc, char **argv)
	KW_NONNULL(1, 2, 4);

/* Run the row of table[] named argv[1]; --help lists them, anything else is a usage error. */
int kw_cli_run_group(struct kw_cli *cli, const struct kw_cmd *table, size_t n, int argc,
    char **argv) KW_NONNULL(1, 2, 5);

/* The running command's usage, what it does and its options, on stdout. */
void kw_cli_help(struct kw_cli *cli) KW_NONNULL(1);

/*
 * A usage error: "keywarden CMD: reason" (none when fmt is NULL: it was
 * said) and the usage line on stderr.  Returns KW_EXIT_USAGE.
 */
int kw_cli_usage(struct kw_cli *cli, const char *fmt, ...) KW_PRINTF(2, 3) KW_NONNULL(1);

/* After getopt_long returned '?' (opterr is 0): which option, and what is wrong with it. */
int kw_cli_bad_option(struct kw_cli *cli, int argc, char **argv, const struct option *opts)
	KW_NONNULL(1, 3);

/* For a command without options: a usage error for the first word that looks like one. */
int kw_cli_no_options(struct kw_cli *cli, int argc, char **argv) KW_NONNULL(1, 3);

/*
 * argv[first..argc) must be the arguments names lists ("USER ROLE",
 * "KEY [VALUE]"); else a usage error naming the first one missing or the
 * first one too many.  0 or KW_EXIT_USAGE.
 */
int kw_cli_args(struct kw_cli *cli, int argc, char **argv, int first, const char *names)
	KW_NONNULL(1, 3, 5);

/*
 * Connect, send op with args (borrowed; NULL: {}), and return the exit status.
 * On success *ret_result holds the result (new reference); on failure the
 * reason has been printed as "keywarden: what: message".
 */
int kw_cli_call(struct kw_cli *cli, const char *what, const char *op, json_t *args,
    json_t **ret_result) KW_NONNULL(1, 2, 3, 5);

/*
 * kw_cli_call, then print the result: as JSON when json is set, else with
 * human(result).  args is consumed (NULL means the caller ran out of memory
 * building it).  Returns the exit status.
 */
int kw_cli_call_print(struct kw_cli *cli, const char *what, const char *op, json_t *args,
    bool json, void (*human)(json_t *result)) KW_NONNULL(1, 2, 3, 6);

/* A JSON array of strings joined with ", " ("-" when empty); malloc'd. */
char *kw_cli_join(json_t *array);

/*
 * records.c: audit records (REC objects from audit.query, incident.report; borrowed) as
 * a table: seq, time, user, action, resource, result, short details.
 * Control characters in them are shown escaped (kw_cli_safe).
 */
void kw_cli_print_records(FILE *f, json_t *records) KW_NONNULL(1);

/*
 * Where a command writes a result file (--output): a 0600 temporary file in
 * the target's directory, fsync'd, given to the user behind sudo
 * (kw_cli_give_to_invoker) and renamed into place by kw_cli_out_close, so
 * the file appears whole or not at all.  Without a path, stdout.
 */
struct kw_cli_out {
	FILE *f;		/* write here */
	char *path;		/* NULL: stdout */
	char *tmp;
	bool force;		/* replace an existing path */
};

/*
 * Open o for path (NULL: stdout).  Refuses an existing path unless force.
 * Prints why and returns the exit status on failure; 0 on success.
 */
int kw_cli_out_open(struct kw_cli_out *o, const char *what, const char *path, bool force)
	KW_NONNULL(1, 2);

/* Flush, fsync and move into place; releases o.  0 or the exit status (said why). */
int kw_cli_out_close(struct kw_cli_out *o, const char *what) KW_NONNULL(1, 2);

/* Drop an unfinished o and its temporary file.  Accepts a released o. */
void kw_cli_out_abort(struct kw_cli_out *o) KW_NONNULL(1);

/*
 * A file written for an administrator under sudo belongs to them: when the
 * CLI runs as root and SUDO_UID and SUDO_GID name a user other than root,
 * fchown fd (the file's mode stays as it is, 0600).  kw_cli_out_close does
 * this for --output files.  0 when given away or nothing was to do; -1
 * after saying on stderr that path stays root's.
 */
int kw_cli_give_to_invoker(int fd, const char *what, const char *path) KW_NONNULL(2, 3);

int kw_cmd_status(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_config(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_check(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_hook(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_policy(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_key(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_key_import(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_exec(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_run(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_admin(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_admin_user(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_admin_role(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_admin_session(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_admin_audit(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_admin_incident(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_admin_usage(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_login(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_logout(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_totp(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_setup(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_redact(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_setup_git(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_scan(struct kw_cli *cli, int argc, char **argv);

#endif
