/*
 * cli.h - what the keywarden command's subcommands share: global options,
 * exit statuses, and a connection to the broker.
 */
#ifndef KW_CLI_H
#define KW_CLI_H

#include <jansson.h>
#include <stdbool.h>

#include "keywarden.h"
#include "macros.h"

/* Exit statuses (keywarden(1)). */
#define KW_EXIT_OK		0
#define KW_EXIT_DENIED		1	/* denied or not found */
#define KW_EXIT_USAGE		2	/* usage or configuration error */
#define KW_EXIT_UNREACHABLE	3	/* no broker */

struct kw_cli {
	const char *socket;	/* --socket, or NULL until resolved */
	const char *config;	/* --config, $KEYWARDEN_CONFIG or the default */
	bool json;		/* --json given before the command */
};

struct kw_cmd {
	const char *name;
	int (*fn)(struct kw_cli *cli, int argc, char **argv);
	const char *help;
};

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

/* Exit status for a libkeywarden error code. */
int kw_cli_exit_for(int err);

/* Print an error reply / failure as "keywarden: what: message". */
void kw_cli_error(const char *what, int err, const char *message);

/* Print a JSON value to stdout, indented, with a newline. */
void kw_cli_print_json(json_t *v) KW_NONNULL(1);

/* True when argv has "--json" (and removes it), for per-command parsing. */
bool kw_cli_take_flag(int *argc, char **argv, const char *flag) KW_NONNULL(1, 2, 3);

int kw_cmd_status(struct kw_cli *cli, int argc, char **argv);
int kw_cmd_config(struct kw_cli *cli, int argc, char **argv);

#endif
