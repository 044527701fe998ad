/*
 * fuzz_config.c - libFuzzer target for the configuration parser.
 *
 * The input is a config file's text.  When kw_config_parse accepts it, the
 * typed readers the broker uses must work, every schema key must hold a
 * value its own check accepts, and the effective configuration written out
 * as a file must parse again to the same values.  The same bytes are also
 * read as a `keywarden config set` argument for one schema key.  A broken
 * invariant aborts, so the fuzzer reports it as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "fuzz.h"
#include "client/keywarden.h"
#include "common/log.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Unknown keys are warnings: thousands per second would drown the output. */
	kw_log_init("fuzz", KW_LOG_STDERR, LOG_ERR);
	return 0;
}

/* The readers the broker calls at start-up; each aborts on a wrong type. */
static void
read_some_keys(const struct kw_config *cfg)
{
	long long t = kw_config_int(cfg, "security.session.timeout");
	CHECK(t >= 1 && t <= 30LL * 86400);
	CHECK(kw_config_int(cfg, "broker.maxClients") >= 1);
	CHECK(kw_config_int(cfg, "broker.clientTimeout") >= 1);
	(void)kw_config_bool(cfg, "security.audit.enabled");
	(void)kw_config_bool(cfg, "security.authentication.mfa.required");
	CHECK(kw_config_str(cfg, "broker.socket")[0] == '/');
	CHECK(strlen(kw_config_str(cfg, "broker.socket")) <= 107);
	CHECK(kw_config_str(cfg, "broker.dataDir")[0] == '/');
	const char *mode = kw_config_str(cfg, "broker.socketMode");
	CHECK(strlen(mode) == 4 && mode[0] == '0');
	CHECK(json_is_object(kw_config_get(cfg, "security.authorization.rbac.roles")));
	CHECK(json_is_array(kw_config_get(cfg, "security.monitoring.alerts")));
	CHECK(kw_config_get(cfg, "api.key") == NULL);
}

static void
check_all_keys(const struct kw_config *cfg)
{
	const struct kw_config_key *schema;
	size_t n;
	char err[512];

	schema = kw_config_schema(&n);
	for (size_t i = 0; i < n; i++) {
		json_t *v = kw_config_get(cfg, schema[i].path);
		CHECK(v != NULL);
		if (kw_config_check_value(&schema[i], schema[i].path, v, err, sizeof(err)) != 0) {
			fprintf(stderr, "effective value refused: %s\n", err);
			CHECK(!"effective value passes its own check");
		}
	}
}

/* Write the effective sections out as a file and parse that again. */
static void
check_round_trip(const struct kw_config *cfg)
{
	struct kw_config *again = NULL;
	const struct kw_config_key *schema;
	char err[512];
	size_t n;
	json_t *doc = json_pack("{s:O, s:O, s:O}", "broker", kw_config_get(cfg, "broker"),
	    "api", kw_config_get(cfg, "api"), "security", kw_config_get(cfg, "security"));

	CHECK(doc != NULL);
	char *text = json_dumps(doc, JSON_COMPACT);
	CHECK(text != NULL);
	if (kw_config_parse(text, strlen(text), &again, err, sizeof(err)) != 0) {
		fprintf(stderr, "effective configuration does not parse again: %s\n", err);
		CHECK(!"round trip");
	}
	schema = kw_config_schema(&n);
	for (size_t i = 0; i < n; i++)
		CHECK(json_equal(kw_config_get(cfg, schema[i].path),
		    kw_config_get(again, schema[i].path)));
	kw_config_free(again);
	free(text);
	json_decref(doc);
}

/* The bytes after the first as a `config set` word for the key the first picks. */
static void
check_value_from_arg(const uint8_t *data, size_t size)
{
	const struct kw_config_key *schema, *key;
	json_t *v = NULL;
	char err[512];
	size_t n;

	if (size < 1 || size > 4096)
		return;
	schema = kw_config_schema(&n);
	key = &schema[data[0] % n];
	char *arg = malloc(size);
	CHECK(arg != NULL);
	memcpy(arg, data + 1, size - 1);
	arg[size - 1] = '\0';
	int r = kw_config_value_from_arg(key, arg, &v, err, sizeof(err));
	if (r == 0) {
		CHECK(v != NULL);
		CHECK(kw_config_check_value(key, key->path, v, err, sizeof(err)) == 0);
		json_decref(v);
	} else {
		CHECK(r == KW_ERR_CONFIG || r == KW_ERR_NOMEM);
		/* The message names the key first. */
		CHECK(strncmp(err, key->path, strlen(key->path)) == 0);
	}
	free(arg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kw_config *cfg = NULL;
	char err[512];

	memset(err, 'X', sizeof(err));
	int r = kw_config_parse((const char *)data, size, &cfg, err, sizeof(err));
	if (r == 0) {
		CHECK(cfg != NULL);
		read_some_keys(cfg);
		check_all_keys(cfg);
		check_round_trip(cfg);
		kw_config_free(cfg);
	} else {
		CHECK(r == KW_ERR_CONFIG || r == KW_ERR_NOMEM);
		CHECK(cfg == NULL);
		CHECK(memchr(err, '\0', sizeof(err)) != NULL);
		CHECK(err[0] != '\0');
	}
	check_value_from_arg(data, size);
	return 0;
}
