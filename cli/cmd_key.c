/*
 * cmd_key.c - keywarden key get|set|list|rotate|revoke|verify
 *
 * `key get NAME` is what Claude Code runs as its apiKeyHelper: it prints the
 * key and nothing else, or one line on stderr and a non-zero exit.  Values
 * are never taken from argv, where every user can read them.
 */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/prompt.h"
#include "cli/table.h"

#define KEY_VALUE_MAX 8192

static int
usage(const char *text)
{
	fprintf(stderr, "usage: keywarden key %s\n", text);
	return KW_EXIT_USAGE;
}

/* Parse [--json] [--version N]; positional arguments stay in argv[optind..]. */
static int
parse(struct kw_cli *cli, int argc, char **argv, bool *json, long *version)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "version", required_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	*json = cli->json;
	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'j') {
			*json = true;
		} else if (c == 'v' && version) {
			*version = strtol(optarg, &end, 10);
			if (*end || *version < 1)
				return -1;
		} else {
			return -1;
		}
	}
	return 0;
}

static int
key_get(struct kw_cli *cli, int argc, char **argv)
{
	json_t *args, *res = NULL, *value;
	long version = 0;
	bool json;
	int ex;

	if (parse(cli, argc, argv, &json, &version) < 0 || argc - optind != 1)
		return usage("get NAME [--version N] [--json]");
	args = json_pack("{s:s}", "name", argv[optind]);
	if (args && version > 0)
		json_object_set_new(args, "version", json_integer(version));
	ex = args ? kw_cli_call(cli, "key get", "key.get", args, &res) : KW_EXIT_DENIED;
	json_decref(args);
	if (ex)
		return ex;
	value = json_object_get(res, "value");
	if (json)
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
		fprintf(stderr, "keywarden: %s: no value read (empty, or longer than %d bytes)\n",
		    what, KEY_VALUE_MAX);
	return r;
}

static int
put(struct kw_cli *cli, int argc, char **argv, const char *verb, const char *op)
{
	char what[32], *value = NULL;
	json_t *args, *res = NULL;
	bool json;
	int ex;

	snprintf(what, sizeof(what), "key %s", verb);
	if (parse(cli, argc, argv, &json, NULL) < 0 || argc - optind < 1)
		return usage(strcmp(verb, "set") == 0 ? "set NAME   (the value on stdin)" :
		    "rotate NAME   (the new value on stdin)");
	if (argc - optind > 1) {
		fprintf(stderr, "keywarden: %s: refusing a key on the command line, where other users "
		    "can read it in the process list; pipe it on stdin or type it at the prompt\n", what);
		return KW_EXIT_USAGE;
	}
	if (read_value(what, &value) < 0)
		return KW_EXIT_USAGE;
	args = json_pack("{s:s, s:s}", "name", argv[optind], "value", value);
	kw_secret_free(value);
	ex = args ? kw_cli_call(cli, what, op, args, &res) : KW_EXIT_DENIED;
	json_decref(args);
	if (ex)
		return ex;
	if (json)
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
	bool json;

	if (parse(cli, argc, argv, &json, NULL) < 0 || argc != optind)
		return usage("list [--json]");
	return kw_cli_call_print(cli, "key list", "key.list", json_object(), json, print_key_table);
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
	bool json;

	if (parse(cli, argc, argv, &json, &version) < 0 || argc - optind != 1)
		return usage("revoke NAME [--version N] [--json]");
	args = json_pack("{s:s}", "name", argv[optind]);
	if (args && version > 0)
		json_object_set_new(args, "version", json_integer(version));
	return kw_cli_call_print(cli, "key revoke", "key.revoke", args, json, print_revoked);
}

static int
key_verify(struct kw_cli *cli, int argc, char **argv)
{
	json_t *args, *res = NULL;
	bool json, ok;
	int ex;

	if (parse(cli, argc, argv, &json, NULL) < 0 || argc - optind != 1)
		return usage("verify NAME [--json]");
	args = json_pack("{s:s}", "name", argv[optind]);
	ex = args ? kw_cli_call(cli, "key verify", "key.verify", args, &res) : KW_EXIT_DENIED;
	json_decref(args);
	if (ex)
		return ex;
	ok = json_is_true(json_object_get(res, "ok"));
	if (json)
		kw_cli_print_json(res);
	else
		printf("%s: %s (%s)\n", kw_cli_safe(argv[optind]), ok ? "ok" : "failed",
		    kw_cli_safe(json_string_value(json_object_get(res, "detail"))));
	json_decref(res);
	return ok ? KW_EXIT_OK : KW_EXIT_DENIED;
}

static const struct kw_cmd key_commands[] = {
	{ "get", key_get, "get NAME [--version N] [--json]   print the key (for apiKeyHelper)" },
	{ "set", key_set, "set NAME   value on stdin or at a hidden prompt" },
	{ "list", key_list, "list [--json]" },
	{ "rotate", key_rotate, "rotate NAME   new value on stdin; the old stays readable a while" },
	{ "revoke", key_revoke, "revoke NAME [--version N]" },
	{ "verify", key_verify, "verify NAME [--json]" },
	{ "import", kw_cmd_key_import, "import NAME --from env:VAR|dotenv:FILE[:VAR]|command:CMD" },
};

int
kw_cmd_key(struct kw_cli *cli, int argc, char **argv)
{
	return kw_cli_run_group(cli, "key", key_commands, KW_ELEMENTSOF(key_commands), argc, argv);
}
