/*
 * cmd_run.c - keywarden run [--profile NAME|FILE] [--check] [--require
 * landlock=N] [--without FEATURE[,...]] [--env NAME]... [--relay|--no-relay]
 * [--relay-key NAME]... [--json] [--] CMD [ARG...]
 *
 * Runs CMD, and everything it starts, confined by the kernel under the
 * administrator's policy (cli/sandbox_run.c does the work; exec --sandbox
 * takes the same path).  The exit status is CMD's.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/sandbox_run.h"

#define MAX_ENV 32

/* --env NAME: a variable name. */
static bool
env_name_ok(const char *v)
{
	if (!*v || (*v >= '0' && *v <= '9') || strlen(v) > 128)
		return false;
	return strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") ==
	    strlen(v);
}

extern char **environ;

/* The "NAME=value" entry of environ for name, or NULL. */
static char *
env_entry(const char *name)
{
	size_t len = strlen(name);

	for (char **e = environ; e && *e; e++)
		if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
			return *e;
	return NULL;
}

/* "NAME=value" of each --env NAME set here: handed in on purpose, past the scrub. */
static size_t
kept_env(char **names, size_t n, char **keep)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		char *e = env_entry(names[i]);
		for (size_t j = 0; j < k && e; j++)
			if (keep[j] == e)
				e = NULL;
		if (e)
			keep[k++] = e;
	}
	return k;
}

int
kw_cmd_run(struct kw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		KW_CLI_SANDBOX_OPTIONS,
		{ "check", no_argument, NULL, 'C' },
		{ "env", required_argument, NULL, 'e' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct kw_cli_sandbox o = { 0 };
	char *names[MAX_ENV], *keep[MAX_ENV];
	const char *bad;
	size_t n_names = 0, n_keep;
	int c;

	optind = 0;
	/* "+": options end at the command, whose own options are its business. */
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		if (kw_cli_sandbox_option(&o, c, optarg)) {
			if (o.bad)
				return kw_cli_usage(cli, "%s", o.bad);
			continue;
		}
		switch (c) {
		case 'C': o.check = true; break;
		case 'j': o.json = true; break;
		case 'h': kw_cli_help(cli); return KW_EXIT_OK;
		case 'e':
			if (n_names == MAX_ENV)
				return kw_cli_usage(cli, "at most %d --env options", MAX_ENV);
			if (!env_name_ok(optarg))
				return kw_cli_usage(cli, "--env: '%.64s' is not a variable name",
				    kw_cli_safe(optarg));
			names[n_names++] = optarg;
			break;
		default:
			return kw_cli_bad_option(cli, argc, argv, opts);
		}
	}
	if ((bad = kw_cli_sandbox_options_done(&o)))
		return kw_cli_usage(cli, "%s", bad);
	if (o.json && !o.check)
		return kw_cli_usage(cli, "--json goes with --check (a run's output is CMD's)");
	/* --check --json: one JSON value on stdout whatever happens, an error too. */
	cli->json = o.json;
	if (optind >= argc && !o.check)
		return kw_cli_usage(cli, "missing CMD");
	n_keep = kept_env(names, n_names, keep);
	return kw_cli_sandbox_run(cli, &o, optind < argc ? argv + optind : NULL, keep, n_keep);
}
