/*
 * cmd_admin_session.c - keywarden admin session list|revoke
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/table.h"

/*
 * When the session stops working if nobody uses it: the earlier of its
 * absolute expiry (null when reauthentication is not required) and its idle
 * expiry.  Both are RFC 3339 UTC in one format, so they compare as strings.
 */
static const char *
effective_expiry(json_t *s, char *buf, size_t n)
{
	const char *abs = json_string_value(json_object_get(s, "expires"));
	const char *idle = json_string_value(json_object_get(s, "idle_expires"));

	if (idle && (!abs || strcmp(idle, abs) < 0)) {
		snprintf(buf, n, "%s (idle)", idle);
		return buf;
	}
	return abs;
}

static int
session_list(struct kw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "user", required_argument, NULL, 'u' },
		{ NULL, 0, NULL, 0 },
	};
	const char *user = NULL;
	json_t *args, *res = NULL, *sessions, *s;
	const char **cells;
	char (*exp)[64];
	size_t i, n;
	int c, ex;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'u')
			return kw_cli_bad_option(cli, argc, argv, opts);
		user = optarg;
	}
	if ((ex = kw_cli_args(cli, argc, argv, optind, "")) != 0)
		return ex;
	if (!(args = user ? json_pack("{s:s}", "user", user) : json_object()))
		return KW_EXIT_DENIED;
	ex = kw_cli_call(cli, "admin session list", "session.list", args, &res);
	json_decref(args);
	if (ex)
		return ex;
	if (cli->json) {
		kw_cli_print_json(res);
		json_decref(res);
		return KW_EXIT_OK;
	}
	sessions = json_object_get(res, "sessions");
	n = json_array_size(sessions);
	cells = calloc(n * 5 + 1, sizeof(*cells));
	exp = calloc(n + 1, sizeof(*exp));
	if (!cells || !exp) {
		ex = KW_EXIT_DENIED;
		goto out;
	}
	json_array_foreach(sessions, i, s) {
		cells[i * 5] = json_string_value(json_object_get(s, "id"));
		cells[i * 5 + 1] = json_string_value(json_object_get(s, "user"));
		cells[i * 5 + 2] = json_string_value(json_object_get(s, "created"));
		cells[i * 5 + 3] = json_string_value(json_object_get(s, "last_used"));
		cells[i * 5 + 4] = effective_expiry(s, exp[i], sizeof(exp[i]));
	}
	kw_table_print(stdout, 5,
	    (const char *const[]){ "ID", "USER", "CREATED", "LAST-USED", "EXPIRES" }, cells, n);
 out:
	free(cells);
	free(exp);
	json_decref(res);
	return ex;
}

static int
session_revoke(struct kw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "user", required_argument, NULL, 'u' },
		{ "all", no_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	const char *user = NULL;
	bool all = false;
	json_t *args, *res = NULL;
	int c, ex;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'u')
			user = optarg;
		else if (c == 'a')
			all = true;
		else
			return kw_cli_bad_option(cli, argc, argv, opts);
	}
	if ((ex = kw_cli_args(cli, argc, argv, optind, "[ID]")) != 0)
		return ex;
	/* Exactly one of ID, --user and --all: revoking more than meant is not undoable. */
	if ((argc - optind) + (user != NULL) + all == 0)
		return kw_cli_usage(cli, "missing ID, --user USER or --all");
	if ((argc - optind) + (user != NULL) + all != 1)
		return kw_cli_usage(cli, "give one of ID, --user USER and --all");
	if (argc - optind == 1)
		args = json_pack("{s:s}", "id", argv[optind]);
	else if (user)
		args = json_pack("{s:s}", "user", user);
	else
		args = json_pack("{s:b}", "all", 1);
	if (!args)
		return KW_EXIT_DENIED;
	ex = kw_cli_call(cli, "admin session revoke", "session.revoke", args, &res);
	json_decref(args);
	if (ex)
		return ex;
	if (cli->json)
		kw_cli_print_json(res);
	else
		printf("revoked %lld session(s)\n",
		    (long long)json_integer_value(json_object_get(res, "revoked")));
	json_decref(res);
	return KW_EXIT_OK;
}

static const struct kw_cmd session_commands[] = {
	{ .name = "list", .fn = session_list, .help = "who holds which session, until when",
	  .usage = "[--user USER] [--json]",
	  .options = "  --user USER  only USER's sessions\n"
	    "  --json       {\"sessions\": [{\"id\", \"user\", \"created\", \"last_used\", "
	    "\"expires\", ...}]}\n" },
	{ .name = "revoke", .fn = session_revoke,
	  .help = "end sessions, effective on their very next request",
	  .usage = "ID | --user USER | --all [--json]",
	  .options = "  ID           one session (admin session list shows them)\n"
	    "  --user USER  every session of USER\n"
	    "  --all        every session\n"
	    "  --json       {\"revoked\": N}\n" },
};

int
kw_cmd_admin_session(struct kw_cli *cli, int argc, char **argv)
{
	return kw_cli_run_group(cli, session_commands, KW_ELEMENTSOF(session_commands), argc,
	    argv);
}
