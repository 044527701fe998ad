/*
 * cmd_config.c - keywarden config get KEY | set KEY [VALUE] | list
 *
 * Works on the configuration file itself (--config, $KEYWARDEN_CONFIG, or
 * the default), the way the security guide's `claude config set x.y value`
 * does.  The broker reads the file when it starts and on SIGHUP; `config
 * set` says whether the running broker has the change yet.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/config.h"
#include "cli/prompt.h"

#define MASK "********"

static void
config_usage(FILE *f)
{
	fprintf(f, "usage: keywarden config get KEY [--json]\n"
	    "       keywarden config set KEY VALUE      (secret keys: VALUE on stdin)\n"
	    "       keywarden config list [--json]\n");
}

/* Secrets are shown only as a reference to where they come from. */
static json_t *
shown_value(const struct kw_config_key *key, json_t *v)
{
	const char *s = json_string_value(v);

	if (key->secret && s && *s && strncmp(s, "${", 2) != 0)
		return json_string(MASK);
	return json_incref(v);
}

static void
print_value(json_t *v)
{
	if (json_is_string(v)) {
		kw_cli_print_data(json_string_value(v));
		return;
	}
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
	puts(s ? s : "?");
	free(s);
}

static int
load(struct kw_cli *cli, struct kw_config **ret_cfg)
{
	char err[1024];
	int r = kw_config_load(cli->config, true, ret_cfg, err, sizeof(err));

	if (r < 0) {
		/* A parse error quotes the file. */
		fprintf(stderr, "keywarden: config: %s\n", kw_cli_safe(err));
		return KW_EXIT_USAGE;
	}
	return 0;
}

static const struct kw_config_key *
known_key(const char *path)
{
	const struct kw_config_key *key = kw_config_schema_lookup(path);

	if (!key)
		fprintf(stderr, "keywarden: config: %.128s: unknown key "
		    "(keywarden config list shows them all)\n", kw_cli_safe(path));
	return key;
}

static int
config_get(struct kw_cli *cli, const char *path, bool json)
{
	const struct kw_config_key *key = known_key(path);
	struct kw_config *cfg = NULL;
	int ex;

	if (!key)
		return KW_EXIT_USAGE;
	if ((ex = load(cli, &cfg)) != 0)
		return ex;
	json_t *v = shown_value(key, kw_config_get(cfg, path));
	if (json) {
		json_t *o = json_pack("{s:s, s:o}", "key", path, "value", v);
		if (o)
			kw_cli_print_json(o);
		json_decref(o);
	} else {
		print_value(v);
		json_decref(v);
	}
	kw_config_free(cfg);
	return KW_EXIT_OK;
}

static int
config_list(struct kw_cli *cli, bool json)
{
	const struct kw_config_key *schema;
	struct kw_config *cfg = NULL;
	json_t *all;
	size_t n, width = 0;
	int ex;

	if ((ex = load(cli, &cfg)) != 0)
		return ex;
	if (!(all = json_object())) {
		kw_config_free(cfg);
		return KW_EXIT_DENIED;
	}
	schema = kw_config_schema(&n);
	for (size_t i = 0; i < n; i++) {
		json_object_set_new(all, schema[i].path,
		    shown_value(&schema[i], kw_config_get(cfg, schema[i].path)));
		if (strlen(schema[i].path) > width)
			width = strlen(schema[i].path);
	}
	if (json) {
		kw_cli_print_json(all);
	} else {
		for (size_t i = 0; i < n; i++) {
			char *s = json_dumps(json_object_get(all, schema[i].path),
			    JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
			printf("%-*s  %s\n", (int)width, schema[i].path, s ? s : "?");
			free(s);
		}
	}
	json_decref(all);
	kw_config_free(cfg);
	return KW_EXIT_OK;
}

/*
 * The CLI edits the file; the broker reads it at start and on SIGHUP.  Say
 * which, and -- when the broker answers and shows an administrator its
 * configuration's digest (status) -- whether it runs with this file as it
 * is now.
 */
static void
tell_applied(struct kw_cli *cli)
{
	static const char hint[] = "send SIGHUP to keywardend (systemctl reload keywarden) to "
	    "apply it";
	struct kw_config *cfg = NULL;
	kw_client *c = NULL;
	json_t *st = NULL;
	char err[512], *msg = NULL, full[4096];
	const char *running, *path, *file = realpath(cli->config, full) ? full : cli->config;

	if (kw_config_load(cli->config, false, &cfg, err, sizeof(err)) < 0)
		return;
	if (kw_cli_connect_quiet(cli, &c) < 0) {
		printf("no broker answers at %s: one reads %s when it starts\n",
		    kw_cli_safe(kw_cli_socket(cli)), kw_cli_safe(file));
	} else if (kw_client_call(c, "status", NULL, &st, &msg) < 0 ||
	    !(running = json_string_value(json_object_get(st, "config_sha256")))) {
		printf("%s; only root or an administrator can see whether the broker at %s has\n",
		    hint, kw_cli_safe(kw_cli_socket(cli)));
	} else if ((path = json_string_value(json_object_get(st, "config_path"))) &&
	    strcmp(path, file) != 0) {
		printf("the broker at %s reads %s, not %s: this change is not for it\n",
		    kw_cli_safe(kw_cli_socket(cli)), kw_cli_safe(path), kw_cli_safe(file));
	} else if (strcmp(running, kw_config_digest(cfg)) == 0) {
		printf("the broker at %s runs with %s as it is now: applied\n",
		    kw_cli_safe(kw_cli_socket(cli)), kw_cli_safe(file));
	} else {
		printf("not applied yet: the broker at %s runs with another version of %s; %s\n",
		    kw_cli_safe(kw_cli_socket(cli)), kw_cli_safe(file), hint);
	}
	free(msg);
	json_decref(st);
	kw_client_free(c);
	kw_config_free(cfg);
}

static int
config_set(struct kw_cli *cli, const char *path, const char *arg)
{
	const struct kw_config_key *key = known_key(path);
	char *secret = NULL;
	json_t *value = NULL;
	char err[1024];
	int r;

	if (!key)
		return KW_EXIT_USAGE;
	if (key->secret && arg && strncmp(arg, "${", 2) != 0) {
		fprintf(stderr, "keywarden: config: %s: refusing a secret on the command line, "
		    "where other users can read it; give it on stdin or as ${VAR}\n", path);
		return KW_EXIT_USAGE;
	}
	if (!arg) {
		if (!key->secret) {
			config_usage(stderr);
			return KW_EXIT_USAGE;
		}
		if ((r = kw_read_secret("value (not echoed): ", 64 * 1024, &secret)) < 0) {
			fprintf(stderr, "keywarden: config: %s: no value read from stdin%s\n", path,
			    r == KW_ERR_INVALID ? " (empty or too long)" : "");
			return KW_EXIT_USAGE;
		}
		arg = secret;
	}
	r = KW_EXIT_OK;
	if (kw_config_value_from_arg(key, arg, &value, err, sizeof(err)) < 0 ||
	    kw_config_file_set(cli->config, path, value, err, sizeof(err)) < 0) {
		fprintf(stderr, "keywarden: config: %s\n", kw_cli_safe(err));
		r = KW_EXIT_USAGE;
	} else {
		tell_applied(cli);
	}
	json_decref(value);
	kw_secret_free(secret);
	return r;
}

int
kw_cmd_config(struct kw_cli *cli, int argc, char **argv)
{
	bool json = kw_cli_take_flag(&argc, argv, "--json") || cli->json;

	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		config_usage(stdout);
		return KW_EXIT_OK;
	}
	if (argc == 3 && strcmp(argv[1], "get") == 0)
		return config_get(cli, argv[2], json);
	if (argc == 2 && strcmp(argv[1], "list") == 0)
		return config_list(cli, json);
	if ((argc == 3 || argc == 4) && strcmp(argv[1], "set") == 0)
		return config_set(cli, argv[2], argc == 4 ? argv[3] : NULL);
	config_usage(stderr);
	return KW_EXIT_USAGE;
}
