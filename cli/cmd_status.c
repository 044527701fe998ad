/*
 * cmd_status.c - keywarden status [--json]
 *
 * Who the broker says the caller is, their session, and, when the broker
 * runs the API proxy (broker.apiProxy.enabled), where it listens: the base
 * URL Claude Code is pointed at by exec --proxy and setup claude --proxy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static void
print_session(json_t *res)
{
	json_t *s = json_object_get(res, "session");
	const char *expires = json_string_value(json_object_get(s, "expires"));
	const char *idle = json_string_value(json_object_get(s, "idle_expires"));
	const char *why = json_string_value(json_object_get(res, "session_error"));

	if (!json_is_object(s)) {
		/* session_error: a token was sent and the broker did not accept it. */
		if (why)
			printf("session   none: %s (keywarden login starts a new one)\n",
			    kw_cli_safe(why));
		else
			printf("session   none (keywarden login starts one)\n");
		return;
	}
	printf("session   %s\n", kw_cli_safe(json_string_value(json_object_get(s, "id"))));
	printf("expires   %s\n", kw_cli_safe(expires ? expires : "no absolute limit"));
	if (idle)
		printf("idle      expires %s unless used before\n", kw_cli_safe(idle));
}

/*
 * The broker's api_proxy object (proxy/DESIGN.md): "listen", "base_url",
 * "running", "pid", "restarts", "upstream" -- each shown when present, so
 * that a broker saying more or less still reads.
 */
static void
print_api_proxy(json_t *res)
{
	json_t *ap = json_object_get(res, "api_proxy"), *v;
	const char *url, *listen, *upstream;

	if (!json_is_object(ap))
		return;
	url = json_string_value(json_object_get(ap, "base_url"));
	listen = json_string_value(json_object_get(ap, "listen"));
	upstream = json_string_value(json_object_get(ap, "upstream"));
	printf("api proxy %s", kw_cli_safe(url ? url : listen ? listen : "on"));
	if ((v = json_object_get(ap, "running")) && json_is_boolean(v))
		printf(" (%s)", json_is_true(v) ? "running" : "not running");
	if (json_is_integer(v = json_object_get(ap, "pid")))
		printf(" pid %lld", (long long)json_integer_value(v));
	if (json_integer_value(json_object_get(ap, "restarts")) > 0)
		printf(", restarted %lld time(s)",
		    (long long)json_integer_value(json_object_get(ap, "restarts")));
	if (upstream)
		printf(", forwarding to %s", kw_cli_safe(upstream));
	printf("\n");
}

static void
print_human(const char *socket, json_t *res)
{
	json_t *caller = json_object_get(res, "caller");

	printf("broker    reachable at %s\n", kw_cli_safe(socket));
	printf("version   keywarden %s (protocol %lld)\n",
	    kw_cli_safe(json_string_value(json_object_get(res, "version"))),
	    (long long)json_integer_value(json_object_get(res, "protocol")));
	printf("caller    %s (uid %lld, gid %lld, pid %lld)\n",
	    kw_cli_safe(json_string_value(json_object_get(caller, "user"))),
	    (long long)json_integer_value(json_object_get(caller, "uid")),
	    (long long)json_integer_value(json_object_get(caller, "gid")),
	    (long long)json_integer_value(json_object_get(caller, "pid")));
	if (json_is_string(json_object_get(res, "user"))) {
		char *roles = kw_cli_join(json_object_get(res, "roles"));
		printf("user      %s (roles: %s)\n",
		    kw_cli_safe(json_string_value(json_object_get(res, "user"))),
		    kw_cli_safe(roles ? roles : "?"));
		free(roles);
	} else {
		printf("user      not a keywarden user\n");
	}
	print_session(res);
	if (json_is_string(json_object_get(res, "config_sha256")))
		printf("config    %s (sha256 %.16s...)\n",
		    kw_cli_safe(json_string_value(json_object_get(res, "config_path"))),
		    kw_cli_safe(json_string_value(json_object_get(res, "config_sha256"))));
	print_api_proxy(res);
}

int
kw_cmd_status(struct kw_cli *cli, int argc, char **argv)
{
	bool json = cli->json;
	kw_client *c = NULL;
	json_t *res = NULL;
	char *msg = NULL;
	int r, ex;

	if ((ex = kw_cli_no_options(cli, argc, argv)) != 0 ||
	    (ex = kw_cli_args(cli, argc, argv, 1, "")) != 0)
		return ex;
	if ((ex = kw_cli_connect(cli, &c)) != 0) {
		if (json) {
			json_t *o = json_pack("{s:{s:b, s:s}}", "broker", "reachable", 0,
			    "socket", kw_cli_socket(cli));
			if (o)
				kw_cli_print_json(o);
			json_decref(o);
		}
		return ex;
	}
	if ((r = kw_client_call(c, "status", NULL, &res, &msg)) < 0) {
		kw_cli_error("status", r, msg);
		ex = kw_cli_exit_for(r);
		goto out;
	}
	if (json) {
		/* O?: a broker without sessions omits "session"; print null then. */
		json_t *o = json_pack("{s:{s:b, s:s, s:O, s:O}, s:O, s:O, s:O, s:O?}",
		    "broker", "reachable", 1, "socket", kw_cli_socket(cli),
		    "version", json_object_get(res, "version"),
		    "protocol", json_object_get(res, "protocol"),
		    "caller", json_object_get(res, "caller"),
		    "user", json_object_get(res, "user"),
		    "roles", json_object_get(res, "roles"),
		    "session", json_object_get(res, "session"));
		if (!o) {
			ex = KW_EXIT_DENIED;
			goto out;
		}
		if (json_object_get(res, "session_error"))
			json_object_set(o, "session_error", json_object_get(res, "session_error"));
		if (json_object_get(res, "api_proxy"))
			json_object_set(o, "api_proxy", json_object_get(res, "api_proxy"));
		/* For an administrator: the configuration in force (config set compares it). */
		if (json_object_get(res, "config_sha256"))
			json_object_set_new(o, "config", json_pack("{s:O, s:O}",
			    "path", json_object_get(res, "config_path"),
			    "sha256", json_object_get(res, "config_sha256")));
		kw_cli_print_json(o);
		json_decref(o);
	} else {
		print_human(kw_cli_socket(cli), res);
	}
	ex = KW_EXIT_OK;
 out:
	free(msg);
	json_decref(res);
	kw_client_free(c);
	return ex;
}
