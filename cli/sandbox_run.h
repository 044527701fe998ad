/*
 * sandbox_run.h - the one path `keywarden run` and `keywarden exec
 * --sandbox` take to run a command under the kernel sandbox: the broker's
 * policy (sandbox.begin), the user's tightening profile, what the machine
 * offers, the plan, the scrubbed environment, the launch, and the record
 * (sandbox.report).  Without a broker, or when the broker refuses, the
 * command does not run.
 */
#ifndef KW_CLI_SANDBOX_RUN_H
#define KW_CLI_SANDBOX_RUN_H

#include <stdbool.h>
#include <stddef.h>

#include "cli/cli.h"

/* The options both commands take (--profile, --without, --require, the relay's). */
#define KW_CLI_SB_MAX_RELAY_KEYS 16
struct kw_cli_sandbox {
	const char *profile;	/* --profile: "default", "claude", or a file; NULL: by CMD */
	const char *without;	/* --without FEATURE[,...] (kw_sandbox_detect) */
	const char *require;	/* --require landlock=N, or NULL */
	bool check;		/* --check: print the plan, run nothing */
	bool json;		/* --json (with --check) */
	int relay;		/* --relay 1, --no-relay -1; 0: by profile (claude: on) */
	char *relay_keys[KW_CLI_SB_MAX_RELAY_KEYS];	/* --relay-key NAMEs (borrowed):
							   the key.get the relay passes */
	size_t n_relay_keys;
	const char *bad;	/* set by kw_cli_sandbox_option: a usage error's text */
};

/*
 * getopt_long codes of the shared options, and their table rows: a command
 * lists KW_CLI_SANDBOX_OPTIONS among its own and hands each code it gets
 * to kw_cli_sandbox_option.
 */
enum {
	KW_CLI_SB_PROFILE = 0x100,
	KW_CLI_SB_WITHOUT,
	KW_CLI_SB_REQUIRE,
	KW_CLI_SB_RELAY,
	KW_CLI_SB_NO_RELAY,
	KW_CLI_SB_RELAY_KEY,
};
#define KW_CLI_SANDBOX_OPTIONS \
	{ "profile", required_argument, NULL, KW_CLI_SB_PROFILE }, \
	{ "without", required_argument, NULL, KW_CLI_SB_WITHOUT }, \
	{ "require", required_argument, NULL, KW_CLI_SB_REQUIRE }, \
	{ "relay", no_argument, NULL, KW_CLI_SB_RELAY }, \
	{ "no-relay", no_argument, NULL, KW_CLI_SB_NO_RELAY }, \
	{ "relay-key", required_argument, NULL, KW_CLI_SB_RELAY_KEY }

/*
 * Take one of the shared options.  True when c was one of them; then
 * o->bad, when set, is a usage error to report (a bad --relay-key).
 */
bool kw_cli_sandbox_option(struct kw_cli_sandbox *o, int c, char *arg) KW_NONNULL(1);

/*
 * After the options: --relay-key implies the relay, and refuses
 * --no-relay.  NULL, or a usage error's text.
 */
const char *kw_cli_sandbox_options_done(struct kw_cli_sandbox *o) KW_NONNULL(1);

/*
 * Run cmd (NULL-terminated; NULL or empty with o->check) under the
 * sandbox, with keep (n_keep "NAME=value" strings, borrowed: keys, --env)
 * added to its scrubbed environment.  Returns the exit status: the
 * child's (128 + signal when killed), 3 without a broker, 1 when the
 * broker refuses, 2 when the machine falls short of what the policy or
 * --require asks (or a usage error).
 */
int kw_cli_sandbox_run(struct kw_cli *cli, const struct kw_cli_sandbox *o, char **cmd,
    char *const keep[], size_t n_keep) KW_NONNULL(1, 2);

#endif
