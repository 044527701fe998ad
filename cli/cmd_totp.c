/*
 * cmd_totp.c - keywarden totp enroll: a new TOTP secret and recovery codes
 * for oneself.  It takes a session and a current code of the factor being
 * replaced: the token alone, which any process of the user can read, is not
 * enough to take the second factor over.
 */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "cli/enroll.h"
#include "cli/prompt.h"

/* Longer than any TOTP or recovery code (the broker takes up to 32). */
#define CODE_MAX 64

/* totp.enroll with the current code, over c (which carries the session). */
static int
enroll(kw_client *c, json_t **ret_res)
{
	char *code = NULL, *msg = NULL;
	json_t *args;
	int r;

	if (kw_read_secret("current TOTP or recovery code (not echoed): ", CODE_MAX, &code) < 0)
		return kw_cli_fail(KW_ERR_INVALID, "totp enroll", "no code read: replacing the second "
		    "factor takes a current TOTP or recovery code (at the prompt, or on stdin)");
	args = json_pack("{s:s}", "code", code);
	kw_secret_free(code);
	r = args ? kw_client_call(c, "totp.enroll", args, ret_res, &msg) : KW_ERR_NOMEM;
	json_decref(args);	/* the JSON allocator wipes the code */
	if (r < 0) {
		kw_cli_error("totp enroll", r, msg);
		free(msg);
		return kw_cli_exit_for(r);
	}
	return KW_EXIT_OK;
}

static int
totp_enroll(struct kw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "qr", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = cli->json, qr = false;
	kw_client *c = NULL;
	json_t *res = NULL;
	int ch, ex;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'q')
			return kw_cli_bad_option(cli, argc, argv, opts);
		qr = true;
	}
	if ((ex = kw_cli_args(cli, argc, argv, optind, "")) != 0)
		return ex;
	if ((ex = kw_cli_connect(cli, &c)) != 0)
		return ex;
	/* No session, no enrollment: say so before asking for a code. */
	if (!kw_cli_session_attached()) {
		kw_cli_error("totp enroll", KW_ERR_SESSION, "log in first: run keywarden login");
		kw_client_free(c);
		return KW_EXIT_DENIED;
	}
	ex = enroll(c, &res);
	kw_client_free(c);
	if (ex != 0)
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
		    "opened with them have ended: run `keywarden login` with a code from the new one.\n"
		    "Your administrators have been told of this change (an audited alert).\n");
	}
	kw_enroll_wipe(res);
	json_decref(res);
	return KW_EXIT_OK;
}

static const struct kw_cmd totp_commands[] = {
	{ .name = "enroll", .fn = totp_enroll,
	  .help = "a new secret, QR code and recovery codes (asks for a current code)",
	  .usage = "[--qr] [--json]",
	  .options = "  --qr    draw the QR code even when stdout is not a terminal\n"
	    "  --json  the enrollment: {\"otpauth_uri\", \"secret\", \"recovery_codes\", ...}\n"
	    "The current TOTP or recovery code is read at the prompt, or from stdin.\n" },
};

int
kw_cmd_totp(struct kw_cli *cli, int argc, char **argv)
{
	return kw_cli_run_group(cli, totp_commands, KW_ELEMENTSOF(totp_commands), argc, argv);
}
