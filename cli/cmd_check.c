/*
 * cmd_check.c - keywarden check ACTION RESOURCE [--user USER] [--json]
 *
 * Asks the broker's decision point; exit 0 when allowed, 1 when denied.
 * Scripts and hooks use it to ask before they act.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int
kw_cmd_check(struct kw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "user", required_argument, NULL, 'u' },
		{ NULL, 0, NULL, 0 },
	};
	const char *user = NULL;
	json_t *args, *res = NULL;
	int c, ex;

	optind = 0;
	while ((c = getopt_long(argc, argv, "u:", opts, NULL)) != -1) {
		if (c != 'u')
			return kw_cli_bad_option(cli, argc, argv, opts);
		user = optarg;
	}
	if ((ex = kw_cli_args(cli, argc, argv, optind, "ACTION RESOURCE")) != 0)
		return ex;
	args = json_pack("{s:s, s:s}", "action", argv[optind], "resource", argv[optind + 1]);
	if (args && user)
		json_object_set_new(args, "user", json_string(user));
	ex = args ? kw_cli_call(cli, "check", "check", args, &res) : KW_EXIT_DENIED;
	json_decref(args);
	/* A denial is an answer too: with --json it is {"allowed": false, ...} (and the error). */
	if (ex == KW_EXIT_DENIED && cli->json) {
		json_t *o = json_pack("{s:b, s:s, s:s}", "allowed", 0, "action", argv[optind],
		    "resource", argv[optind + 1]);
		if (o && user)
			json_object_set_new(o, "user", json_string(user));
		if (o)
			kw_cli_print_json(o);
		json_decref(o);
	}
	if (ex)
		return ex;
	if (cli->json)
		kw_cli_print_json(res);
	else
		printf("allowed\n");
	json_decref(res);
	return KW_EXIT_OK;
}
