/*
 * cmd_config.c - keywarden config get KEY | set KEY [VALUE] | list [--json]
 *
 * Works on the configuration file itself (--config, $KEYWARDEN_CONFIG, or
 * the default), the way the security guide's `claude config set x.y value`
 * does.  The broker reads the file when it starts and on SIGHUP; `config
 * set` says whether the running broker has the change yet.
 */
#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/fsutil.h"
#include "policy/detect/detect.h"
#include "policy/policy.h"
#include "common/config.h"
#include "cli/prompt.h"

#define MASK "********"

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

	/* A parse error quotes the file. */
	return r < 0 ? kw_cli_fail(KW_ERR_CONFIG, "config", "%s", kw_cli_safe(err)) : 0;
}

static const struct kw_config_key *
known_key(const char *path)
{
	const struct kw_config_key *key = kw_config_schema_lookup(path);

	if (!key)
		kw_cli_fail(KW_ERR_CONFIG, "config", "%.128s: unknown key "
		    "(keywarden config list shows them all)", kw_cli_safe(path));
	return key;
}

/* What --json says of a key besides its value: whether it is enforced, and if not, why. */
static void
add_enforcement(json_t *o, const struct kw_config_key *key)
{
	char text[256];

	json_object_set_new(o, "enforced", json_boolean(key->enforced));
	if (kw_config_unenforced_text(key, text, sizeof(text)))
		json_object_set_new(o, "warning", json_string(text));
}

static int
config_get(struct kw_cli *cli, int argc, char **argv)
{
	const struct kw_config_key *key;
	struct kw_config *cfg = NULL;
	int ex;

	if ((ex = kw_cli_no_options(cli, argc, argv)) != 0 ||
	    (ex = kw_cli_args(cli, argc, argv, 1, "KEY")) != 0)
		return ex;
	if (!(key = known_key(argv[1])))
		return KW_EXIT_USAGE;
	if ((ex = load(cli, &cfg)) != 0)
		return ex;
	json_t *v = shown_value(key, kw_config_get(cfg, key->path));
	if (cli->json) {
		json_t *o = json_pack("{s:s, s:o}", "key", key->path, "value", v);
		if (o) {
			add_enforcement(o, key);
			kw_cli_print_json(o);
		}
		json_decref(o);
	} else {
		print_value(v);
		json_decref(v);
	}
	kw_config_free(cfg);
	return KW_EXIT_OK;
}

/* One line per key; those not enforced are marked, after the value (completion reads the first word). */
static void
print_list(json_t *all, const struct kw_config_key *schema, size_t n)
{
	size_t width = 0;

	for (size_t i = 0; i < n; i++)
		if (strlen(schema[i].path) > width)
			width = strlen(schema[i].path);
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_object_get(all, schema[i].path);
		char *s = json_dumps(json_object_get(e, "value"),
		    JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
		printf("%-*s  %s%s\n", (int)width, schema[i].path, s ? s : "?",
		    schema[i].enforced ? "" : "  (accepted, not enforced)");
		free(s);
	}
}

static int
config_list(struct kw_cli *cli, int argc, char **argv)
{
	const struct kw_config_key *schema;
	struct kw_config *cfg = NULL;
	json_t *all;
	size_t n;
	int ex;

	if ((ex = kw_cli_no_options(cli, argc, argv)) != 0 ||
	    (ex = kw_cli_args(cli, argc, argv, 1, "")) != 0 || (ex = load(cli, &cfg)) != 0)
		return ex;
	if (!(all = json_object())) {
		kw_config_free(cfg);
		return KW_EXIT_DENIED;
	}
	schema = kw_config_schema(&n);
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_pack("{s:o, s:b}", "value",
		    shown_value(&schema[i], kw_config_get(cfg, schema[i].path)),
		    "set", kw_config_is_set(cfg, schema[i].path));
		if (e)
			add_enforcement(e, &schema[i]);
		json_object_set_new(all, schema[i].path, e);
	}
	if (cli->json)
		kw_cli_print_json(all);
	else
		print_list(all, schema, n);
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

	/* With --json stdout holds one JSON value: this is for a person. */
	if (cli->json || kw_config_load(cli->config, false, &cfg, err, sizeof(err)) < 0)
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

/* The value of a secret key: stdin or a hidden prompt, never argv. */
static int
read_secret_value(const struct kw_config_key *key, char **ret)
{
	int r = kw_read_secret("value (not echoed): ", 64 * 1024, ret);

	if (r < 0)
		return kw_cli_fail(KW_ERR_INVALID, "config", "%s: no value read from stdin%s",
		    key->path, r == KW_ERR_INVALID ? " (empty or too long)" : "");
	return 0;
}

/* What config set did: nothing but the warning for a person; the key, the value shown and the file for a program. */
static void
print_set(struct kw_cli *cli, const struct kw_config_key *key, json_t *value)
{
	char text[256];

	if (kw_config_unenforced_text(key, text, sizeof(text)))
		fprintf(stderr, "keywarden: config set: warning: %s\n", text);
	if (cli->json) {
		json_t *o = json_pack("{s:s, s:o, s:s}", "key", key->path, "value",
		    shown_value(key, value), "file", cli->config);
		if (o) {
			add_enforcement(o, key);
			kw_cli_print_json(o);
		}
		json_decref(o);
	}
}

/* The file's bytes (NULL and 0 when there is none), to put back if a set is refused. */
static char *
file_bytes(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, n;

	*ret_len = 0;
	if (!f)
		return NULL;
	for (;;) {
		char *nb = cap - *ret_len < 4096 ? realloc(buf, cap = cap * 2 + 4096) : buf;
		if (!nb)
			break;
		buf = nb;
		if ((n = fread(buf + *ret_len, 1, cap - *ret_len, f)) == 0)
			break;
		*ret_len += n;
	}
	fclose(f);
	return buf;
}

/*
 * What only the policy and the detector can judge (a path entry, a regex
 * that does not compile): the file as written must compile as the broker
 * will compile it, or the set is undone.  0, or KW_ERR_CONFIG with err.
 */
static int
compiles(const char *file, char *err, size_t err_len)
{
	struct kw_config *cfg = NULL;
	struct kw_policy *p = NULL;
	struct kw_detector *d = NULL;
	int r;

	if ((r = kw_config_load(file, true, &cfg, err, err_len)) == 0 &&
	    (r = kw_policy_compile(cfg, &p, err, err_len)) == 0)
		r = kw_detector_compile(cfg, KW_DETECT_SECRETS | KW_DETECT_FILTERS, &d, err, err_len);
	kw_detector_free(d);
	kw_policy_free(p);
	kw_config_free(cfg);
	return r;
}

static int
config_set(struct kw_cli *cli, int argc, char **argv)
{
	const struct kw_config_key *key;
	const char *arg = argc > 2 ? argv[2] : NULL;
	char *secret = NULL;
	json_t *value = NULL;
	char err[1024];
	int ex;

	if ((ex = kw_cli_no_options(cli, argc, argv)) != 0 ||
	    (ex = kw_cli_args(cli, argc, argv, 1, "KEY [VALUE]")) != 0)
		return ex;
	if (!(key = known_key(argv[1])))
		return KW_EXIT_USAGE;
	if (key->secret && arg && strncmp(arg, "${", 2) != 0)
		return kw_cli_fail(KW_ERR_INVALID, "config", "%s: refusing a secret on the command "
		    "line, where other users can read it; give it on stdin or as ${VAR}", key->path);
	if (!arg && !key->secret)
		return kw_cli_usage(cli, "missing VALUE");
	if (!arg) {
		if ((ex = read_secret_value(key, &secret)) != 0)
			return ex;
		arg = secret;
	}
	size_t old_len = 0;
	char *old = file_bytes(cli->config, &old_len);
	if (kw_config_value_from_arg(key, arg, &value, err, sizeof(err)) < 0 ||
	    kw_config_file_set(cli->config, key->path, value, err, sizeof(err)) < 0) {
		ex = kw_cli_fail(KW_ERR_CONFIG, "config", "%s", kw_cli_safe(err));
	} else if (compiles(cli->config, err, sizeof(err)) < 0) {
		/* Put the file back as it was: the broker would refuse to start with it. */
		if (old ? kw_write_atomic(cli->config, old, old_len, 0600) < 0 :
		    unlink(cli->config) < 0)
			kw_cli_fail(KW_ERR_IO, "config", "%s: cannot restore the previous file",
			    kw_cli_safe(cli->config));
		ex = kw_cli_fail(KW_ERR_CONFIG, "config", "%s", kw_cli_safe(err));
	} else {
		print_set(cli, key, value);
		tell_applied(cli);
	}
	if (old)
		sodium_memzero(old, old_len);	/* it may hold a ${VAR}'s neighbour, a secret */
	free(old);
	json_decref(value);
	kw_secret_free(secret);
	return ex;
}

static const struct kw_cmd config_commands[] = {
	{ .name = "get", .fn = config_get, .help = "print the value of KEY (secrets masked)",
	  .usage = "KEY [--json]",
	  .options = "  KEY     a dotted key, such as security.session.timeout\n"
	    "  --json  {\"key\", \"value\", \"enforced\"} (and \"warning\" when not enforced)\n" },
	{ .name = "set", .fn = config_set,
	  .help = "set KEY in the configuration file (the broker reads it when it starts)",
	  .usage = "KEY VALUE [--json]   (a secret key: VALUE on stdin, or ${VAR})",
	  .options = "  KEY     a dotted key, such as security.session.timeout\n"
	    "  VALUE   JSON of the key's type, or a bare word for a string\n"
	    "  --json  {\"key\", \"value\", \"file\", \"enforced\"} (and \"warning\")\n"
	    "A key that is accepted but not enforced yet is set, with a warning saying so.\n" },
	{ .name = "list", .fn = config_list,
	  .help = "every key with its value; keys not enforced yet are marked",
	  .usage = "[--json]",
	  .options = "  --json  {KEY: {\"value\", \"set\", \"enforced\"[, \"warning\"]}, ...}\n" },
};

int
kw_cmd_config(struct kw_cli *cli, int argc, char **argv)
{
	return kw_cli_run_group(cli, config_commands, KW_ELEMENTSOF(config_commands), argc, argv);
}
