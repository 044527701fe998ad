/*
 * cmd_totp.c - keywarden totp enroll: a new TOTP secret and recovery codes
 * for oneself (needs a session, so only someone already logged in can
 * replace their second factor).
 */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "cli/enroll.h"

static int
totp_enroll(struct kw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "qr", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = cli->json, qr = false;
	json_t *res = NULL;
	int c, ex;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'j')
			json = true;
		else if (c == 'q')
			qr = true;
		else
			goto usage;
	}
	if (argc != optind)
		goto usage;
	if ((ex = kw_cli_call(cli, "totp enroll", "totp.enroll", NULL, &res)) != 0)
		return ex;
	/*
	 * The broker ends the sessions opened with the old factor, this one
	 * included: the cached token is dead, so it goes too.
	 */
	(void)kw_session_forget(kw_cli_socket(cli));
	if (json)
		kw_cli_print_json(res);
	else {
		kw_enroll_print(res, qr);
		printf("\nThe previous secret and recovery codes no longer work, and the sessions\n"
		    "opened with them have ended: run `keywarden login` with a code from the new one.\n");
	}
	kw_enroll_wipe(res);
	json_decref(res);
	return KW_EXIT_OK;
 usage:
	fprintf(stderr, "usage: keywarden totp enroll [--qr] [--json]\n");
	return KW_EXIT_USAGE;
}

static const struct kw_cmd totp_commands[] = {
	{ "enroll", totp_enroll, "enroll [--qr] [--json]   new secret, QR code and recovery codes" },
};

int
kw_cmd_totp(struct kw_cli *cli, int argc, char **argv)
{
	return kw_cli_run_group(cli, "totp", totp_commands, KW_ELEMENTSOF(totp_commands),
	    argc, argv);
}
