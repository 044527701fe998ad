/*
 * cmd_admin_session.c - keywarden admin session list|revoke
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/table.h"

static int
usage(const char *text)
{
	fprintf(stderr, "usage: keywarden admin session %s\n", text);
	return KW_EXIT_USAGE;
}

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
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *user = NULL;
	bool json = cli->json;
	json_t *args, *res = NULL, *sessions, *s;
	const char **cells;
	char (*exp)[64];
	size_t i, n;
	int c, ex;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'u')
			user = optarg;
		else if (c == 'j')
			json = true;
		else
			return usage("list [--user USER] [--json]");
	}
	if (argc != optind)
		return usage("list [--user USER] [--json]");
	if (!(args = user ? json_pack("{s:s}", "user", user) : json_object()))
		return KW_EXIT_DENIED;
	ex = kw_cli_call(cli, "admin session list", "session.list", args, &res);
	json_decref(args);
	if (ex)
		return ex;
	if (json) {
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
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	static const char use[] = "revoke ID | --user USER | --all [--json]";
	const char *user = NULL;
	bool json = cli->json, all = false;
	json_t *args, *res = NULL;
	int c, ex;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'u')
			user = optarg;
		else if (c == 'a')
			all = true;
		else if (c == 'j')
			json = true;
		else
			return usage(use);
	}
	/* Exactly one of ID, --user and --all: revoking more than meant is not undoable. */
	if ((argc - optind) + (user != NULL) + all != 1 || argc - optind > 1)
		return usage(use);
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
	if (json)
		kw_cli_print_json(res);
	else
		printf("revoked %lld session(s)\n",
		    (long long)json_integer_value(json_object_get(res, "revoked")));
	json_decref(res);
	return KW_EXIT_OK;
}

static const struct kw_cmd session_commands[] = {
	{ "list", session_list, "list [--user USER] [--json]" },
	{ "revoke", session_revoke, "revoke ID | --user USER | --all [--json]" },
};

int
kw_cmd_admin_session(struct kw_cli *cli, int argc, char **argv)
{
	return kw_cli_run_group(cli, "admin session", session_commands,
	    KW_ELEMENTSOF(session_commands), argc, argv);
}
