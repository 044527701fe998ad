/*
 * cmd_exec.c - keywarden exec --key NAME=VAR [--key ...] [--sandbox ...] -- CMD [ARG...]
 *              keywarden exec --proxy [--key NAME] [--sandbox ...] -- CMD [ARG...]
 *
 * Runs CMD with the named keys in its environment, and only there: the
 * shell that started keywarden never sees them.  With --proxy, CMD gets no
 * key at all: ANTHROPIC_BASE_URL names the API proxy and
 * ANTHROPIC_AUTH_TOKEN holds a proxy token for the key NAME (default
 * anthropic; key.proxy_token, proxy/DESIGN.md), and ANTHROPIC_API_KEY is
 * removed from its environment, so that Claude Code neither prefers a key
 * it was left nor sends one to the proxy.  With --sandbox, CMD runs
 * confined as under keywarden run (cli/sandbox_run.c), the variables handed
 * in past its environment scrub.  The exit status is CMD's (128 + signal
 * when it was killed).
 */
#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/sandbox_run.h"
#include "common/names.h"

#define MAX_KEYS 16
#define PROXY_KEY_DEFAULT "anthropic"

struct binding {
	char name[65];
	char var[65];
	char *value;
};

/* What --proxy sets: the token first (a secret of sorts), then where it works. */
enum { PROXY_TOKEN, PROXY_BASE_URL, PROXY_BINDINGS };

static bool
var_ok(const char *v)
{
	if (!*v || (*v >= '0' && *v <= '9'))
		return false;
	return strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") ==
	    strlen(v);
}

static int
parse_binding(const char *arg, struct binding *b)
{
	const char *eq = strchr(arg, '=');

	if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof(b->name) ||
	    strlen(eq + 1) >= sizeof(b->var) || !var_ok(eq + 1))
		return -1;
	memcpy(b->name, arg, (size_t)(eq - arg));
	b->name[eq - arg] = '\0';
	strcpy(b->var, eq + 1);
	return 0;
}

static void
wipe_all(struct binding *b, int n)
{
	for (int i = 0; i < n; i++) {
		if (b[i].value) {
			sodium_memzero(b[i].value, strlen(b[i].value));
			free(b[i].value);
			b[i].value = NULL;
		}
	}
}

static int
fetch(struct kw_cli *cli, struct binding *b)
{
	json_t *args = json_pack("{s:s}", "name", b->name), *res = NULL;
	int ex = args ? kw_cli_call(cli, "exec", "key.get", args, &res) : KW_EXIT_DENIED;

	json_decref(args);
	if (ex)
		return ex;
	b->value = strdup(json_string_value(json_object_get(res, "value")));
	json_decref(res);
	return b->value ? 0 : KW_EXIT_DENIED;
}

/*
 * --proxy: a proxy token for the key name and the proxy's base URL, from
 * one key.proxy_token; b[PROXY_TOKEN] and b[PROXY_BASE_URL] filled.
 */
static int
fetch_proxy(struct kw_cli *cli, const char *name, struct binding *b)
{
	json_t *args = json_pack("{s:s}", "name", name), *res = NULL;
	const char *token, *url;
	int ex = args ? kw_cli_call(cli, "exec", "key.proxy_token", args, &res) :
	    KW_EXIT_DENIED;

	json_decref(args);
	if (ex)
		return ex;
	token = json_string_value(json_object_get(res, "token"));
	url = json_string_value(json_object_get(res, "base_url"));
	if (!token || !url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
		json_decref(res);
		return kw_cli_fail(KW_ERR_INTERNAL, "exec", "the broker's answer holds no proxy "
		    "token and base URL (is broker.apiProxy.enabled true?)");
	}
	snprintf(b[PROXY_TOKEN].name, sizeof(b[PROXY_TOKEN].name), "%s", name);
	strcpy(b[PROXY_TOKEN].var, "ANTHROPIC_AUTH_TOKEN");
	strcpy(b[PROXY_BASE_URL].var, "ANTHROPIC_BASE_URL");
	b[PROXY_TOKEN].value = strdup(token);
	b[PROXY_BASE_URL].value = strdup(url);
	json_decref(res);	/* the JSON allocator wipes the token */
	return b[PROXY_TOKEN].value && b[PROXY_BASE_URL].value ? 0 : KW_EXIT_DENIED;
}

static int
run(char **cmd, struct binding *b, int n, bool proxy)
{
	int status;
	pid_t pid = fork();

	if (pid < 0) {
		wipe_all(b, n);
		return kw_cli_fail(KW_ERR_IO, "exec", "%s", strerror(errno));
	}
	if (pid == 0) {
		/* A key left in the environment would win over the token, or reach the proxy. */
		if (proxy && unsetenv("ANTHROPIC_API_KEY") < 0)
			_exit(127);
		for (int i = 0; i < n; i++)
			if (setenv(b[i].var, b[i].value, 1) < 0)
				_exit(127);
		execvp(cmd[0], cmd);
		fprintf(stderr, "keywarden: exec: %s: %s\n", kw_cli_safe(cmd[0]), strerror(errno));
		_exit(127);
	}
	wipe_all(b, n);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return KW_EXIT_DENIED;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/*
 * Under the sandbox: each key as "VAR=value", handed in on purpose (the
 * scrub would drop a name like ANTHROPIC_API_KEY); wiped after.
 */
static int
run_sandboxed(struct kw_cli *cli, const struct kw_cli_sandbox *o, char **cmd,
    struct binding *b, int n)
{
	char *keep[MAX_KEYS];
	int k = 0, ex;

	for (; k < n; k++) {
		size_t len = strlen(b[k].var) + 1 + strlen(b[k].value) + 1;
		if (!(keep[k] = malloc(len)))
			break;
		snprintf(keep[k], len, "%s=%s", b[k].var, b[k].value);
	}
	wipe_all(b, n);
	ex = k < n ? kw_cli_fail(KW_ERR_NOMEM, "exec", "out of memory") :
	    kw_cli_sandbox_run(cli, o, cmd, keep, (size_t)k);
	for (int i = 0; i < k; i++) {
		sodium_memzero(keep[i], strlen(keep[i]));
		free(keep[i]);
	}
	return ex;
}

int
kw_cmd_exec(struct kw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "sandbox", no_argument, NULL, 'S' },
		{ "proxy", no_argument, NULL, 'P' },
		KW_CLI_SANDBOX_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct binding b[MAX_KEYS];
	struct kw_cli_sandbox o = { 0 };
	bool sandbox = false, proxy = false;
	const char *bad, *keys[MAX_KEYS];
	int c, n = 0, ex;

	memset(b, 0, sizeof(b));
	optind = 0;
	/* "+": options end at the command, whose own options are its business. */
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		if (c == 'h') {
			kw_cli_help(cli);
			return KW_EXIT_OK;
		}
		if (c == 'S' || c == 'P') {
			*(c == 'S' ? &sandbox : &proxy) = true;
			continue;
		}
		if (kw_cli_sandbox_option(&o, c, optarg)) {
			if (o.bad)
				return kw_cli_usage(cli, "%s", o.bad);
			continue;
		}
		if (c != 'k')
			return kw_cli_bad_option(cli, argc, argv, opts);
		if (n == MAX_KEYS)
			return kw_cli_usage(cli, "at most %d --key options", MAX_KEYS);
		keys[n++] = optarg;
	}
	if (proxy && n > 1)
		return kw_cli_usage(cli, "--proxy takes one --key NAME: the key the proxy adds");
	if (proxy && n == 1 && !kw_name_ok(KW_NAME_KEY, keys[0]))
		return kw_cli_usage(cli, "--key '%.64s': with --proxy a key name (%s), not NAME=VAR",
		    kw_cli_safe(keys[0]), kw_name_rule(KW_NAME_KEY));
	for (int i = 0; !proxy && i < n; i++)
		if (parse_binding(keys[i], &b[i]) < 0)
			return kw_cli_usage(cli, "--key: '%.64s' is not NAME=VAR (VAR a variable name)",
			    kw_cli_safe(keys[i]));
	if (n == 0 && !proxy)
		return kw_cli_usage(cli, "missing --key NAME=VAR (or --proxy)");
	if (optind >= argc)
		return kw_cli_usage(cli, "missing CMD");
	if (!sandbox && (o.profile || o.without || o.require || o.relay || o.n_relay_keys))
		return kw_cli_usage(cli, "--profile, --require, --without and the relay's options "
		    "go with --sandbox");
	if ((bad = kw_cli_sandbox_options_done(&o)))
		return kw_cli_usage(cli, "%s", bad);
	if (proxy) {
		if ((ex = fetch_proxy(cli, n ? keys[0] : PROXY_KEY_DEFAULT, b)) != 0) {
			wipe_all(b, PROXY_BINDINGS);
			return ex;
		}
		n = PROXY_BINDINGS;
	}
	for (int i = 0; !proxy && i < n; i++) {
		if ((ex = fetch(cli, &b[i])) != 0) {
			wipe_all(b, n);
			return ex;
		}
	}
	if (sandbox) {
		/*
		 * The sandbox lets the claude profile reach $ANTHROPIC_BASE_URL:
		 * the proxy's, then.  This process's own environment is nobody
		 * else's to read, and it holds no key of ours.
		 */
		if (proxy && (unsetenv("ANTHROPIC_API_KEY") < 0 ||
		    setenv("ANTHROPIC_BASE_URL", b[PROXY_BASE_URL].value, 1) < 0)) {
			wipe_all(b, n);
			return kw_cli_fail(KW_ERR_NOMEM, "exec", "out of memory");
		}
		return run_sandboxed(cli, &o, argv + optind, b, n);
	}
	return run(argv + optind, b, n, proxy);
}
