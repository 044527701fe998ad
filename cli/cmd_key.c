/*
 * cmd_key.c - keywarden key get|set|list|rotate|revoke|verify
 *
 * `key get NAME` is what Claude Code runs as its apiKeyHelper: it prints the
 * key and nothing else, or one line on stderr and a non-zero exit; with
 * --proxy it prints a token for the API proxy instead, so Claude Code never
 * holds the key.  Values are never taken from argv, where every user can
 * read them.
 */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/progress.h"
#include "cli/prompt.h"
#include "cli/table.h"

#define KEY_VALUE_MAX 8192

/*
 * Parse [--version N] (when version is not NULL), [--proxy] (when proxy is
 * not NULL) and check that the positional arguments are names; 0 or the
 * exit status (said why).
 */
static int
parse_opts(struct kw_cli *cli, int argc, char **argv, const char *names, long *version,
    bool *proxy)
{
	static const struct option opts[] = {
		{ "version", required_argument, NULL, 'v' },
		{ "proxy", no_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'p' && proxy) {
			*proxy = true;
			continue;
		}
		if (c != 'v' || !version)
			return kw_cli_bad_option(cli, argc, argv, version ? opts : NULL);
		*version = strtol(optarg, &end, 10);
		if (*end || *version < 1)
			return kw_cli_usage(cli, "--version: '%.64s' is not a version (1, 2, ...)",
			    kw_cli_safe(optarg));
	}
	return kw_cli_args(cli, argc, argv, optind, names);
}

static int
parse(struct kw_cli *cli, int argc, char **argv, const char *names, long *version)
{
	return parse_opts(cli, argc, argv, names, version, NULL);
}

/*
 * key get NAME --proxy: a token for the API proxy instead of the key
 * (key.proxy_token, proxy/DESIGN.md).  It names this one key of this
 * session, dies with the session, and is all Claude Code's apiKeyHelper
 * then holds: the proxy adds the real key on its own side.
 */
static int
key_get_proxy(struct kw_cli *cli, const char *name)
{
	json_t *args = json_pack("{s:s}", "name", name), *res = NULL;
	int ex = args ? kw_cli_call(cli, "key get", "key.proxy_token", args, &res) :
	    KW_EXIT_DENIED;

	json_decref(args);
	if (ex)
		return ex;
	if (!json_is_string(json_object_get(res, "token"))) {
		json_decref(res);
		return kw_cli_fail(KW_ERR_INTERNAL, "key get", "the broker's answer holds no token");
	}
	if (cli->json)
		kw_cli_print_json(res);
	else
		kw_cli_print_data(json_string_value(json_object_get(res, "token")));
	fflush(stdout);
	json_decref(res);
	return KW_EXIT_OK;
}

static int
key_get(struct kw_cli *cli, int argc, char **argv)
{
	json_t *args, *res = NULL, *value;
	long version = 0;
	bool proxy = false;
	int ex;

	if ((ex = parse_opts(cli, argc, argv, "NAME", &version, &proxy)) != 0)
		return ex;
	if (proxy && version > 0)
		return kw_cli_usage(cli, "--proxy and --version: the proxy always uses the current "
		    "version");
	if (proxy)
		return key_get_proxy(cli, argv[optind]);
	args = json_pack("{s:s}", "name", argv[optind]);
	if (args && version > 0)
		json_object_set_new(args, "version", json_integer(version));
	ex = args ? kw_cli_call(cli, "key get", "key.get", args, &res) : KW_EXIT_DENIED;
	json_decref(args);
	if (ex)
		return ex;
	value = json_object_get(res, "value");
	if (cli->json)
		kw_cli_print_json(res);
	else
		kw_cli_print_data(json_string_value(value));
	fflush(stdout);
	json_decref(res);	/* the JSON allocator wipes the value */
	return KW_EXIT_OK;
}

/* The value for set/rotate: stdin or a hidden prompt, never argv. */
static int
read_value(const char *what, char **ret)
{
	/* Room for a line ending after the largest value: it is stripped before the check. */
	int r = kw_read_secret("key value (not echoed): ", KEY_VALUE_MAX + 2, ret);

	if (r == 0 && strlen(*ret) > KEY_VALUE_MAX) {
		kw_secret_free(*ret);
		*ret = NULL;
		r = -1;
	}
	if (r < 0)
		kw_cli_fail(KW_ERR_INVALID, what, "no value read (empty, or longer than %d bytes)",
		    KEY_VALUE_MAX);
	return r;
}

static int
put(struct kw_cli *cli, int argc, char **argv, const char *verb, const char *op)
{
	char what[32], *value = NULL;
	json_t *args, *res = NULL;
	int ex;

	snprintf(what, sizeof(what), "key %s", verb);
	/* A second word would be the value itself: refused as such, not as a usage slip. */
	if ((ex = parse(cli, argc, argv, "NAME [VALUE...]", NULL)) != 0)
		return ex;
	if (argc - optind > 1)
		return kw_cli_fail(KW_ERR_INVALID, what, "refusing a key on the command line, where "
		    "other users can read it in the process list; pipe it on stdin or type it at the "
		    "prompt");
	if (read_value(what, &value) < 0)
		return KW_EXIT_USAGE;
	args = json_pack("{s:s, s:s}", "name", argv[optind], "value", value);
	kw_secret_free(value);
	ex = args ? kw_cli_call(cli, what, op, args, &res) : KW_EXIT_DENIED;
	json_decref(args);
	if (ex)
		return ex;
	if (cli->json)
		kw_cli_print_json(res);
	else if (json_is_string(json_object_get(res, "grace_unavailable")))
		printf("%s: version %lld is current; %s\n", kw_cli_safe(argv[optind]),
		    (long long)json_integer_value(json_object_get(res, "version")),
		    kw_cli_safe(json_string_value(json_object_get(res, "grace_unavailable"))));
	else if (json_is_string(json_object_get(res, "grace_until")))
		printf("%s: version %lld is current; version %lld stays readable until %s\n",
		    kw_cli_safe(argv[optind]),
		    (long long)json_integer_value(json_object_get(res, "version")),
		    (long long)json_integer_value(json_object_get(res, "previous")),
		    kw_cli_safe(json_string_value(json_object_get(res, "grace_until"))));
	else
		printf("%s: version %lld is current\n", kw_cli_safe(argv[optind]),
		    (long long)json_integer_value(json_object_get(res, "version")));
	json_decref(res);
	return KW_EXIT_OK;
}

static int
key_set(struct kw_cli *cli, int argc, char **argv)
{
	return put(cli, argc, argv, "set", "key.set");
}

static int
key_rotate(struct kw_cli *cli, int argc, char **argv)
{
	return put(cli, argc, argv, "rotate", "key.rotate");
}

static void
print_key_table(json_t *res)
{
	json_t *keys = json_object_get(res, "keys"), *k;
	size_t i, n = json_array_size(keys);
	const char **cells = calloc(n * 5 + 1, sizeof(*cells));
	char (*cur)[16] = calloc(n + 1, sizeof(*cur)), (*vers)[64] = calloc(n + 1, sizeof(*vers));

	if (cells && cur && vers) {
		json_array_foreach(keys, i, k) {
			json_t *v, *list = json_object_get(k, "versions");
			size_t j, o = 0;
			snprintf(cur[i], sizeof(cur[i]), "%lld",
			    (long long)json_integer_value(json_object_get(k, "current")));
			json_array_foreach(list, j, v)
				o += (size_t)snprintf(vers[i] + o, o < sizeof(vers[i]) ?
				    sizeof(vers[i]) - o : 0, "%s%lld%s", j ? "," : "",
				    (long long)json_integer_value(json_object_get(v, "version")),
				    strcmp(json_string_value(json_object_get(v, "state")), "grace") == 0 ?
				    "(grace)" : "");
			cells[i * 5] = json_string_value(json_object_get(k, "name"));
			cells[i * 5 + 1] = json_is_integer(json_object_get(k, "current")) ? cur[i] : "-";
			cells[i * 5 + 2] = vers[i];
			cells[i * 5 + 3] = json_string_value(json_object_get(k, "created"));
			cells[i * 5 + 4] = json_string_value(json_object_get(k, "last_used"));
		}
		kw_table_print(stdout, 5, (const char *const[]){ "NAME", "CURRENT", "VERSIONS",
		    "CREATED", "LAST-USED" }, cells, n);
	}
	free(cells);
	free(cur);
	free(vers);
}

static int
key_list(struct kw_cli *cli, int argc, char **argv)
{
	int ex;

	if ((ex = parse(cli, argc, argv, "", NULL)) != 0)
		return ex;
	return kw_cli_call_print(cli, "key list", "key.list", json_object(), cli->json,
	    print_key_table);
}

static void
print_revoked(json_t *res)
{
	json_t *d = json_object_get(res, "destroyed"), *v;
	size_t i;

	printf("%s: destroyed version",
	    kw_cli_safe(json_string_value(json_object_get(res, "name"))));
	json_array_foreach(d, i, v)
		printf("%s %lld", i ? "," : "", (long long)json_integer_value(v));
	printf("\n");
}

static int
key_revoke(struct kw_cli *cli, int argc, char **argv)
{
	long version = 0;
	json_t *args;
	int ex;

	if ((ex = parse(cli, argc, argv, "NAME", &version)) != 0)
		return ex;
	args = json_pack("{s:s}", "name", argv[optind]);
	if (args && version > 0)
		json_object_set_new(args, "version", json_integer(version));
	return kw_cli_call_print(cli, "key revoke", "key.revoke", args, cli->json, print_revoked);
}

static int
key_verify(struct kw_cli *cli, int argc, char **argv)
{
	struct kw_progress progress;
	json_t *args, *res = NULL;
	bool ok;
	int ex;

	if ((ex = parse(cli, argc, argv, "NAME", NULL)) != 0)
		return ex;
	args = json_pack("{s:s}", "name", argv[optind]);
	/* With api.verifyUrl the broker asks the provider: seconds, on a slow network. */
	kw_progress_init(&progress, true);
	kw_progress_show(&progress, "checking %.64s...", kw_cli_safe(argv[optind]));
	ex = args ? kw_cli_call(cli, "key verify", "key.verify", args, &res) : KW_EXIT_DENIED;
	kw_progress_end(&progress, false);
	json_decref(args);
	if (ex)
		return ex;
	ok = json_is_true(json_object_get(res, "ok"));
	if (cli->json)
		kw_cli_print_json(res);
	else
		printf("%s: %s (%s)\n", kw_cli_safe(argv[optind]), ok ? "ok" : "failed",
		    kw_cli_safe(json_string_value(json_object_get(res, "detail"))));
	if (!ok)
		kw_cli_record_error(kw_error_name(KW_ERR_DENIED), "the key did not verify");
	json_decref(res);
	return ok ? KW_EXIT_OK : KW_EXIT_DENIED;
}

static const struct kw_cmd key_commands[] = {
	{ .name = "get", .fn = key_get,
	  .help = "print the key and nothing else (what Claude Code's apiKeyHelper runs)",
	  .usage = "NAME [--version N] [--proxy] [--json]",
	  .options = "  --version N  an older version, readable during its grace period\n"
	    "  --proxy      a token for the API proxy instead of the key: it works only\n"
	    "               through the proxy, only for NAME and only while your session\n"
	    "               lasts (apiKeyHelper: keywarden key get anthropic --proxy)\n"
	    "  --json       {\"name\", \"version\", \"value\"} instead of the bare key;\n"
	    "               with --proxy {\"token\", \"expires\", \"base_url\"}\n" },
	{ .name = "set", .fn = key_set, .help = "store a new key, or replace the current version",
	  .usage = "NAME [--json]   (the value on stdin or at a hidden prompt)",
	  .options = "  --json  {\"name\", \"version\", ...}\n"
	    "The value is never taken from the command line.\n" },
	{ .name = "list", .fn = key_list, .help = "the keys you may read, with their versions",
	  .usage = "[--json]",
	  .options = "  --json  {\"keys\": [{\"name\", \"current\", \"versions\", ...}]}\n" },
	{ .name = "rotate", .fn = key_rotate,
	  .help = "a new version; the old one stays readable for api.rotationGrace",
	  .usage = "NAME [--json]   (the new value on stdin or at a hidden prompt)",
	  .options = "  --json  {\"name\", \"version\", \"previous\", \"grace_until\"}\n" },
	{ .name = "revoke", .fn = key_revoke, .help = "destroy one version, or the whole key",
	  .usage = "NAME [--version N] [--json]",
	  .options = "  --version N  only that version\n"
	    "  --json       {\"name\", \"destroyed\": [versions]}\n" },
	{ .name = "verify", .fn = key_verify,
	  .help = "check the key's format, and with api.verifyUrl the key itself",
	  .usage = "NAME [--json]",
	  .options = "  --json  {\"name\", \"ok\", \"detail\", ...}; exit 1 when it fails\n" },
	{ .name = "import", .fn = kw_cmd_key_import,
	  .help = "move a key in from the environment, a .env file or a command",
	  .usage = "NAME --from SOURCE [--json]",
	  .options = "  --from env:VAR            this environment's VAR\n"
	    "  --from dotenv:FILE[:VAR]  VAR (default ANTHROPIC_API_KEY) of a .env file\n"
	    "  --from command:CMD        the first line CMD prints (api.commandTimeout)\n"
	    "  --json                    {\"name\", \"version\", ...}\n" },
};

int
kw_cmd_key(struct kw_cli *cli, int argc, char **argv)
{
	return kw_cli_run_group(cli, key_commands, KW_ELEMENTSOF(key_commands), argc, argv);
}
