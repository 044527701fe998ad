/*
 * cmd_logout.c - keywarden logout: end the cached session at the broker and
 * forget the token.
 *
 * The token is forgotten whatever the broker says: a user who logs out
 * expects no usable token to stay behind on the machine.  When the broker
 * could not be told, the session lives on there until it expires (or an
 * admin revokes it), and the exit status says so.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* The public id part of "kw1_ID_SECRET", for messages; "?" if malformed. */
static void
token_id(const char *token, char *out, size_t n)
{
	const char *p = strncmp(token, "kw1_", 4) == 0 ? token + 4 : NULL;
	const char *end = p ? strchr(p, '_') : NULL;

	if (!end || (size_t)(end - p) >= n || end == p)
		snprintf(out, n, "?");
	else
		snprintf(out, n, "%.*s", (int)(end - p), p);
}

static void
print_result(bool json, const char *id, bool revoked)
{
	if (json) {
		json_t *o = json_pack("{s:s, s:b}", "id", id, "revoked", revoked);
		if (o)
			kw_cli_print_json(o);
		json_decref(o);
	} else {
		printf(revoked ? "logged out; session %s ended\n" :
		    "logged out; session %s had already ended\n", kw_cli_safe(id));
	}
}

int
kw_cmd_logout(struct kw_cli *cli, int argc, char **argv)
{
	bool json = cli->json;
	const char *socket;
	kw_client *c = NULL;
	char *token = NULL, *msg = NULL, id[80];
	int r, ex, call = 0, forget;

	if ((ex = kw_cli_no_options(cli, argc, argv)) != 0 ||
	    (ex = kw_cli_args(cli, argc, argv, 1, "")) != 0)
		return ex;
	socket = kw_cli_socket(cli);
	if ((r = kw_session_load(socket, &token)) == KW_ERR_NOT_FOUND) {
		if (json) {
			json_t *o = json_pack("{s:n, s:b}", "id", "revoked", 0);
			if (o)
				kw_cli_print_json(o);
			json_decref(o);
		} else {
			printf("not logged in\n");
		}
		return KW_EXIT_OK;
	}
	if (r < 0) {
		kw_cli_error("logout: token cache", r, NULL);
		return kw_cli_exit_for(r);
	}
	token_id(token, id, sizeof(id));
	sodium_memzero(token, strlen(token));
	free(token);

	/* kw_cli_connect attaches the cached token; op logout ends that session. */
	if ((ex = kw_cli_connect(cli, &c)) == 0) {
		json_t *res = NULL;
		call = kw_client_call(c, "logout", NULL, &res, &msg);
		json_decref(res);
		kw_client_free(c);
	}
	if ((forget = kw_session_forget(socket)) < 0)
		kw_cli_error("logout: could not forget the cached token", forget, NULL);
	if (ex == 0 && call < 0 && call != KW_ERR_SESSION) {
		kw_cli_error("logout", call, msg);
		ex = kw_cli_exit_for(call);
	}
	if (ex != 0) {
		kw_cli_fail(call < 0 ? call : ex == KW_EXIT_UNREACHABLE ? KW_ERR_CONNECT : KW_ERR_DENIED,
		    "logout", "%s, but session %s stays valid at the broker "
		    "until it expires or an admin revokes it",
		    forget < 0 ? "the token is still cached" : "the token is forgotten here",
		    kw_cli_safe(id));
		goto out;
	}
	/* session_required: expired, revoked or evicted already; nothing left to end. */
	print_result(json, id, call == 0);
	ex = forget < 0 ? kw_cli_exit_for(forget) : KW_EXIT_OK;
 out:
	free(msg);
	return ex;
}
