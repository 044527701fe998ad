/*
 * test_config.c - unit tests for the configuration schema, parser, loader
 * and editor (config.h).
 *
 * The defaults are the security guide's values, every message names the
 * exact key path, and a file is believed only when its owner and mode say
 * nobody else could have written it.  File tests run in a private directory
 * (support/fixture.h); they expect to run as root (fchown to another uid).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/config.h"
#include "client/keywarden.h"
#include "common/log.h"
#include "tests/unit/support/fixture.h"

/* ---- helpers --------------------------------------------------------- */

static struct kw_config *
parse_ok(const char *text)
{
	struct kw_config *cfg = NULL;
	char err[512] = "";

	int r = kw_config_parse(text, strlen(text), &cfg, err, sizeof(err));
	if (r != 0)
		fail_msg("kw_config_parse(%s) = %d: %s", text, r, err);
	assert_non_null(cfg);
	return cfg;
}

/* Parse text, expect KW_ERR_CONFIG and an error that begins with `prefix`. */
static void
parse_bad(const char *text, const char *prefix)
{
	struct kw_config *cfg = (struct kw_config *)0x1;
	char err[512] = "";

	int r = kw_config_parse(text, strlen(text), &cfg, err, sizeof(err));
	if (r != KW_ERR_CONFIG)
		fail_msg("kw_config_parse(%s) = %d, want KW_ERR_CONFIG (err: %s)", text, r, err);
	if (strncmp(err, prefix, strlen(prefix)) != 0)
		fail_msg("kw_config_parse(%s):\n  err  \"%s\"\n  want \"%s...\"", text, err, prefix);
	assert_ptr_equal(cfg, (struct kw_config *)0x1);	/* untouched on failure */
}

/* Check value (JSON text) against key; 0 or the error text must begin with prefix. */
static void
check(const char *path, const char *json, const char *prefix)
{
	const struct kw_config_key *key = kw_config_schema_lookup(path);
	json_error_t jerr;
	json_t *v;
	char err[512] = "";

	if (!key)
		fail_msg("no schema key %s", path);
	if (!(v = json_loads(json, JSON_DECODE_ANY, &jerr)))
		fail_msg("test value %s: %s", json, jerr.text);
	int r = kw_config_check_value(key, path, v, err, sizeof(err));
	json_decref(v);
	if (!prefix) {
		if (r != 0)
			fail_msg("%s = %s refused: %s", path, json, err);
		return;
	}
	if (r != KW_ERR_CONFIG)
		fail_msg("%s = %s accepted, want \"%s...\"", path, json, prefix);
	if (strncmp(err, prefix, strlen(prefix)) != 0)
		fail_msg("%s = %s:\n  err  \"%s\"\n  want \"%s...\"", path, json, err, prefix);
}

static void
assert_json_eq(json_t *got, const char *want_text)
{
	json_t *want = json_loads(want_text, JSON_DECODE_ANY, NULL);

	assert_non_null(want);
	if (!json_equal(got, want)) {
		char *g = got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
		json_decref(want);
		fail_msg("got %s, want %s", g ? g : "NULL", want_text);
	}
	json_decref(want);
}

/* Route stderr (where kw_log writes) to a file while fn-like code runs. */
struct capture {
	FILE *f;
	int saved;
};

static void
capture_start(struct capture *c)
{
	fflush(stderr);
	assert_non_null(c->f = tmpfile());
	assert_true((c->saved = dup(STDERR_FILENO)) >= 0);
	assert_true(dup2(fileno(c->f), STDERR_FILENO) >= 0);
}

/* Stop capturing; the text is the caller's. */
static char *
capture_end(struct capture *c)
{
	char *text = calloc(1, 8192);

	fflush(stderr);
	assert_true(dup2(c->saved, STDERR_FILENO) >= 0);
	close(c->saved);
	assert_non_null(text);
	rewind(c->f);
	size_t n = fread(text, 1, 8191, c->f);
	text[n] = '\0';
	fclose(c->f);
	return text;
}

/* No "*.tmp.*" left behind by an atomic write in dir. */
static void
assert_no_temp_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".tmp."))
			fail_msg("temporary file left behind: %s/%s", dir, e->d_name);
	closedir(d);
}

/* ---- defaults and schema -------------------------------------------- */

static void
test_defaults_are_seed_values(void **state)
{
	struct kw_config *cfg = kw_config_new_default();

	assert_non_null(cfg);
	/* Session management (guide: timeout 3600, maxSessions 5, reauth 86400). */
	assert_int_equal(kw_config_int(cfg, "security.session.timeout"), 3600);
	assert_int_equal(kw_config_int(cfg, "security.session.maxSessions"), 5);
	assert_int_equal(kw_config_int(cfg, "security.session.reauthInterval"), 86400);
	assert_true(kw_config_bool(cfg, "security.session.requireReauth"));
	/* MFA. */
	assert_true(kw_config_bool(cfg, "security.authentication.mfa.enabled"));
	assert_true(kw_config_bool(cfg, "security.authentication.mfa.required"));
	assert_string_equal(kw_config_str(cfg, "security.authentication.mfa.method"), "totp");
	/* Audit. */
	assert_true(kw_config_bool(cfg, "security.audit.enabled"));
	assert_int_equal(kw_config_int(cfg, "security.audit.retention"), 90);
	/* RBAC roles. */
	assert_true(kw_config_bool(cfg, "security.authorization.rbac.enabled"));
	assert_json_eq(kw_config_get(cfg, "security.authorization.rbac.roles"),
	    "{\"developer\": {\"permissions\": [\"read\", \"write\", \"execute\"]},"
	    " \"reviewer\": {\"permissions\": [\"read\"]},"
	    " \"admin\": {\"permissions\": [\"*\"]}}");
	/* Alerts: lock after 3 failed authentications. */
	assert_json_eq(kw_config_get(cfg, "security.monitoring.alerts"),
	    "[{\"type\": \"suspicious_activity\", \"threshold\": 5, \"action\": \"notify\"},"
	    " {\"type\": \"failed_authentication\", \"threshold\": 3, \"action\": \"block\"}]");
	/* The broker's own keys (notes/SPEC.md). */
	assert_string_equal(kw_config_str(cfg, "broker.socket"), KW_SOCKET_DEFAULT);
	assert_string_equal(kw_config_str(cfg, "broker.socket"), "/run/keywarden/broker.sock");
	assert_string_equal(kw_config_str(cfg, "broker.dataDir"), KW_DATADIR_DEFAULT);
	assert_string_equal(kw_config_str(cfg, "broker.socketMode"), "0666");
	assert_int_equal(kw_config_int(cfg, "broker.maxClients"), 1024);
	assert_int_equal(kw_config_int(cfg, "broker.clientTimeout"), 5);
	assert_int_equal(kw_config_int(cfg, "broker.idleTimeout"), 300);
	/* A few of the guide's other values. */
	assert_string_equal(kw_config_str(cfg, "api.keySource"), "file");
	assert_string_equal(kw_config_str(cfg, "api.keychainService"), "anthropic-api-key");
	assert_int_equal(kw_config_int(cfg, "security.compliance.gdpr.dataRetention"), 30);
	assert_string_equal(kw_config_str(cfg, "security.encryption.inTransit.protocol"), "TLS1.3");
	assert_json_eq(kw_config_get(cfg, "security.sensitivePatterns"),
	    "[\"password\", \"api_key\", \"secret\", \"token\"]");
	/* No API key, ever. */
	assert_null(kw_config_get(cfg, "api.key"));
	kw_config_free(cfg);
	kw_config_free(NULL);
}

static void
test_empty_file_equals_defaults(void **state)
{
	struct kw_config *def = kw_config_new_default(), *cfg = parse_ok("{}");
	const struct kw_config_key *schema;
	size_t n;

	assert_non_null(def);
	schema = kw_config_schema(&n);
	for (size_t i = 0; i < n; i++) {
		json_t *a = kw_config_get(def, schema[i].path), *b = kw_config_get(cfg, schema[i].path);
		if (!a || !json_equal(a, b))
			fail_msg("%s differs between defaults and {}", schema[i].path);
	}
	kw_config_free(def);
	kw_config_free(cfg);
}

/* A configuration says which text it came from: the SHA-256 of those bytes. */
static void
test_digest_names_the_text(void **state)
{
	static const char text[] = "{\"security\": {\"session\": {\"timeout\": 600}}}\n";
	struct kw_config *def = kw_config_new_default(), *cfg = parse_ok(text);
	struct kw_config *same = parse_ok(text);
	struct kw_config *spaced = parse_ok("{ \"security\": {\"session\": {\"timeout\": 600}}}\n");
	unsigned char d[crypto_hash_sha256_BYTES];
	char hex[KW_CONFIG_DIGEST_LEN];

	assert_non_null(def);
	assert_string_equal(kw_config_digest(def), "defaults");
	crypto_hash_sha256(d, (const unsigned char *)text, strlen(text));
	sodium_bin2hex(hex, sizeof(hex), d, sizeof(d));
	assert_string_equal(kw_config_digest(cfg), hex);
	assert_string_equal(kw_config_digest(same), hex);
	/* The same settings in other bytes are another version of the file. */
	assert_string_not_equal(kw_config_digest(spaced), hex);
	kw_config_free(def);
	kw_config_free(cfg);
	kw_config_free(same);
	kw_config_free(spaced);
}

static void
test_schema_defaults_pass_checks(void **state)
{
	const struct kw_config_key *schema;
	size_t n, secrets = 0;
	char err[512];

	schema = kw_config_schema(&n);
	assert_true(n > 50);
	for (size_t i = 0; i < n; i++) {
		const struct kw_config_key *k = &schema[i];
		json_t *v = json_loads(k->def, JSON_DECODE_ANY, NULL);

		if (!v)
			fail_msg("%s: default %s does not parse", k->path, k->def);
		if (kw_config_check_value(k, k->path, v, err, sizeof(err)) != 0)
			fail_msg("%s: default %s refused: %s", k->path, k->def, err);
		json_decref(v);
		assert_non_null(k->expect);
		assert_non_null(k->help);
		assert_ptr_equal(kw_config_schema_lookup(k->path), k);
		if (k->type == KW_CT_INT)
			assert_true(k->min <= k->max);
		if (k->type == KW_CT_ENUM)
			assert_non_null(k->choices);
		/* A path is never a prefix section of another path. */
		for (size_t j = 0; j < n; j++) {
			size_t len = strlen(k->path);
			if (j != i && strncmp(schema[j].path, k->path, len) == 0)
				assert_true(schema[j].path[len] != '\0' && schema[j].path[len] != '.');
		}
		secrets += k->secret;
	}
	/* The masked keys of notes/SPEC.md, and only those. */
	assert_true(kw_config_schema_lookup("security.audit.encryptionKey")->secret);
	assert_true(kw_config_schema_lookup("api.proxy.auth.password")->secret);
	assert_int_equal(secrets, 2);
	assert_null(kw_config_schema_lookup("security.session"));
	assert_null(kw_config_schema_lookup("api.key"));
	assert_null(kw_config_schema_lookup(""));
}

/* ---- kw_config_check_value, type by type ----------------------------- */

static void
test_check_bool(void **state)
{
	check("security.readOnly", "true", NULL);
	check("security.readOnly", "false", NULL);
	check("security.readOnly", "1", "security.readOnly: expected true or false");
	check("security.readOnly", "\"true\"", "security.readOnly: expected true or false");
	check("security.readOnly", "null", "security.readOnly: expected true or false");
	check("security.readOnly", "[]", "security.readOnly: expected true or false");
	/* The path in the message is the caller's, as given. */
	check("security.session.requireReauth", "0",
	    "security.session.requireReauth: expected true or false");
}

static void
test_check_int(void **state)
{
	check("security.session.timeout", "1", NULL);
	check("security.session.timeout", "2592000", NULL);
	check("security.session.timeout", "\"3600\"",
	    "security.session.timeout: expected a number of seconds");
	check("security.session.timeout", "3600.0",
	    "security.session.timeout: expected a number of seconds");
	check("security.session.timeout", "true",
	    "security.session.timeout: expected a number of seconds");
	check("security.session.timeout", "0",
	    "security.session.timeout: expected a number of seconds from 1 to 2592000");
	check("security.session.timeout", "2592001",
	    "security.session.timeout: expected a number of seconds from 1 to 2592000");
	check("security.session.timeout", "-1",
	    "security.session.timeout: expected a number of seconds from 1 to 2592000");
	check("security.session.timeout", "-9223372036854775808",
	    "security.session.timeout: expected a number of seconds from 1");
	check("security.session.timeout", "9223372036854775807",
	    "security.session.timeout: expected a number of seconds from 1");
	check("security.session.maxSessions", "1001",
	    "security.session.maxSessions: expected a whole number from 1 to 1000");
	check("security.session.reauthInterval", "59",
	    "security.session.reauthInterval: expected a number of seconds from 60 to");
	check("security.audit.retention", "0",
	    "security.audit.retention: expected a number of days from 1 to 36500");
	check("api.proxy.port", "65536", "api.proxy.port: expected a whole number from 1 to 65535");
	check("broker.maxClients", "65536", NULL);
	check("broker.maxClients", "65537", "broker.maxClients: expected a whole number from 1 to 65536");
	check("broker.clientTimeout", "0", "broker.clientTimeout: expected a number of seconds");
	check("broker.idleTimeout", "604801", "broker.idleTimeout: expected a number of seconds");
}

static void
test_check_string(void **state)
{
	check("api.proxy.host", "\"proxy.company.com\"", NULL);
	check("api.proxy.host", "\"\"", NULL);
	check("api.proxy.auth.password", "\"${PROXY_PASS}\"", NULL);
	check("api.proxy.host", "5", "api.proxy.host: expected a string");
	check("api.proxy.host", "null", "api.proxy.host: expected a string");
	check("api.proxy.host", "[\"a\"]", "api.proxy.host: expected a string");
	check("broker.socket", "{}", "broker.socket: expected an absolute path");
}

static void
test_check_abs_path(void **state)
{
	char path[128], json[160];

	check("broker.socket", "\"/tmp/kw.sock\"", NULL);
	check("broker.dataDir", "\"/var/lib/kw\"", NULL);
	check("broker.socket", "\"\"", "broker.socket: expected an absolute path");
	check("broker.socket", "\"run/broker.sock\"", "broker.socket: expected an absolute path");
	check("broker.socket", "\"~/broker.sock\"", "broker.socket: expected an absolute path");
	check("broker.dataDir", "\"\"", "broker.dataDir: expected an absolute path");
	check("broker.dataDir", "\"./var\"", "broker.dataDir: expected an absolute path");
	check("broker.dataDir", "7", "broker.dataDir: expected an absolute path");
	/* sun_path holds 107 bytes and the NUL. */
	path[0] = '/';
	memset(path + 1, 's', 106);
	path[107] = '\0';
	snprintf(json, sizeof(json), "\"%s\"", path);
	check("broker.socket", json, NULL);
	path[107] = 's';
	path[108] = '\0';
	snprintf(json, sizeof(json), "\"%s\"", path);
	check("broker.socket", json, "broker.socket: expected a socket path of at most 107 bytes");
	check("broker.dataDir", json, NULL);	/* no such limit for a directory */
}

static void
test_check_socket_mode(void **state)
{
	static const char *const bad[] = {
		"\"666\"", "\"0999\"", "\"07777\"", "\"0o66\"", "\"\"", "\"0\"", "\"0-66\"",
		"\"0 66\"", "\"+0666\"", "\"0x1f\"", "\"rw-rw-rw-\"", "666", "438",
	};

	check("broker.socketMode", "\"0666\"", NULL);
	check("broker.socketMode", "\"0660\"", NULL);
	check("broker.socketMode", "\"0600\"", NULL);
	check("broker.socketMode", "\"0000\"", NULL);
	check("broker.socketMode", "\"0777\"", NULL);
	for (size_t i = 0; i < KW_ELEMENTSOF(bad); i++)
		check("broker.socketMode", bad[i],
		    "broker.socketMode: expected an octal mode such as \"0660\"");
}

static void
test_check_enum(void **state)
{
	check("api.keySource", "\"keychain\"", NULL);
	check("api.keySource", "\"file\"", NULL);
	check("api.keySource", "\"vault\"", "api.keySource: expected one of: file, keychain");
	check("api.keySource", "\"\"", "api.keySource: expected one of: file, keychain");
	check("api.keySource", "\"File\"", "api.keySource: expected one of: file, keychain");
	check("api.keySource", "1", "api.keySource: expected one of: file, keychain");
	check("security.encryption.atRest.keySource", "\"kms\"", NULL);
	check("security.encryption.atRest.keySource", "\"hsm\"",
	    "security.encryption.atRest.keySource: expected one of: local, passphrase, pkcs11");
	check("security.authentication.mfa.method", "\"sms\"",
	    "security.authentication.mfa.method: expected totp");
	check("security.audit.logLevel", "\"trace\"",
	    "security.audit.logLevel: expected one of: debug, info, warn, error");
}

static void
test_check_strings(void **state)
{
	check("security.deniedPaths", "[]", NULL);
	check("security.deniedPaths", "[\"/etc\", \"/root\"]", NULL);
	check("security.deniedPaths", "\"/etc\"", "security.deniedPaths: expected a list of strings");
	check("security.deniedPaths", "{}", "security.deniedPaths: expected a list of strings");
	check("security.deniedPaths", "[\"/etc\", 5]",
	    "security.deniedPaths[1]: expected a non-empty string");
	check("security.deniedPaths", "[\"/etc\", \"\"]",
	    "security.deniedPaths[1]: expected a non-empty string");
	check("security.deniedPaths", "[null]", "security.deniedPaths[0]: expected a non-empty string");
	check("security.deniedPaths", "[[\"a\"]]",
	    "security.deniedPaths[0]: expected a non-empty string");
	check("security.execution.whitelist", "[\"git\", \"npm\", \"yarn\"]", NULL);
}

static void
test_check_roles(void **state)
{
	char name[80], json[200];
	const char *p = "security.authorization.rbac.roles";

	check(p, "{}", NULL);
	check(p, "{\"ops\": {\"permissions\": []}}", NULL);
	check(p, "{\"a-b_C9\": {\"permissions\": [\"read\"]}}", NULL);
	check(p, "[]", "security.authorization.rbac.roles: expected an object of role names");
	check(p, "\"admin\"", "security.authorization.rbac.roles: expected an object of role names");
	check(p, "{\"bad name\": {\"permissions\": []}}",
	    "security.authorization.rbac.roles.bad name: role names are 1-64 letters");
	check(p, "{\"a.b\": {\"permissions\": []}}",
	    "security.authorization.rbac.roles.a.b: role names are 1-64 letters");
	check(p, "{\"\": {\"permissions\": []}}",
	    "security.authorization.rbac.roles.: role names are 1-64 letters");
	check(p, "{\"r\\u00e9le\": {\"permissions\": []}}",
	    "security.authorization.rbac.roles.r\xc3\xa9le: role names are 1-64 letters");
	memset(name, 'r', 64);
	name[64] = '\0';
	snprintf(json, sizeof(json), "{\"%s\": {\"permissions\": []}}", name);
	check(p, json, NULL);
	snprintf(json, sizeof(json), "{\"%sr\": {\"permissions\": []}}", name);
	check(p, json, "security.authorization.rbac.roles.rrrr");
	check(p, "{\"dev\": [\"read\"]}",
	    "security.authorization.rbac.roles.dev: expected an object with \"permissions\"");
	check(p, "{\"dev\": {}}",
	    "security.authorization.rbac.roles.dev.permissions: expected a list of permissions (missing)");
	check(p, "{\"dev\": {\"perms\": [\"read\"]}}",
	    "security.authorization.rbac.roles.dev.permissions: expected a list of permissions (missing)");
	check(p, "{\"dev\": {\"permissions\": \"read\"}}",
	    "security.authorization.rbac.roles.dev.permissions: expected a list of strings");
	check(p, "{\"dev\": {\"permissions\": null}}",
	    "security.authorization.rbac.roles.dev.permissions: expected a list of strings");
	check(p, "{\"dev\": {\"permissions\": [\"read\", 1]}}",
	    "security.authorization.rbac.roles.dev.permissions[1]: expected a non-empty string");
	check(p, "{\"dev\": {\"permissions\": [\"\"]}}",
	    "security.authorization.rbac.roles.dev.permissions[0]: expected a non-empty string");
	/* The first bad role is named, after good ones. */
	check(p, "{\"ok\": {\"permissions\": []}, \"bad\": {\"permissions\": [true]}}",
	    "security.authorization.rbac.roles.bad.permissions[0]: expected a non-empty string");
}

static void
test_check_alerts(void **state)
{
	const char *p = "security.monitoring.alerts";

	check(p, "[]", NULL);
	check(p, "[{\"type\": \"failed_authentication\", \"threshold\": 1, \"action\": \"block\","
	    " \"window\": 300}]", NULL);
	check(p, "[{\"type\": \"suspicious_activity\", \"threshold\": 1000000, \"action\": \"notify\"}]",
	    NULL);
	check(p, "{}", "security.monitoring.alerts: expected a list of");
	check(p, "[5]", "security.monitoring.alerts[0]: expected an object");
	check(p, "[{\"type\": \"x\", \"threshold\": 3, \"action\": \"block\"}]",
	    "security.monitoring.alerts[0].type: expected one of: suspicious_activity, "
	    "failed_authentication");
	check(p, "[{\"threshold\": 3, \"action\": \"block\"}]",
	    "security.monitoring.alerts[0].type: expected one of: suspicious_activity, "
	    "failed_authentication (missing)");
	check(p, "[{\"type\": 1, \"threshold\": 3, \"action\": \"block\"}]",
	    "security.monitoring.alerts[0].type: expected one of");
	check(p, "[{\"type\": \"failed_authentication\", \"threshold\": 3, \"action\": \"ban\"}]",
	    "security.monitoring.alerts[0].action: expected one of: notify, block");
	check(p, "[{\"type\": \"failed_authentication\", \"threshold\": 3}]",
	    "security.monitoring.alerts[0].action: expected one of: notify, block (missing)");
	check(p, "[{\"type\": \"failed_authentication\", \"threshold\": 3, \"action\": \"\"}]",
	    "security.monitoring.alerts[0].action: expected one of: notify, block");
	static const char *const thresholds[] = { "0", "-1", "1000001", "\"3\"", "2.5", "null" };
	for (size_t i = 0; i < KW_ELEMENTSOF(thresholds); i++) {
		char json[200];
		snprintf(json, sizeof(json), "[{\"type\": \"failed_authentication\", \"threshold\": 3,"
		    " \"action\": \"block\"}, {\"type\": \"failed_authentication\", \"threshold\": %s,"
		    " \"action\": \"block\"}]", thresholds[i]);
		check(p, json, "security.monitoring.alerts[1].threshold: expected a whole number "
		    "from 1 to 1000000");
	}
	check(p, "[{\"type\": \"failed_authentication\", \"action\": \"block\"}]",
	    "security.monitoring.alerts[0].threshold: expected a whole number");
	check(p, "[{\"type\": \"failed_authentication\", \"threshold\": 3, \"action\": \"block\","
	    " \"window\": 0}]", "security.monitoring.alerts[0].window: expected a number of seconds");
	check(p, "[{\"type\": \"failed_authentication\", \"threshold\": 3, \"action\": \"block\","
	    " \"window\": \"1h\"}]", "security.monitoring.alerts[0].window: expected a number of seconds");
	check(p, "[{\"type\": \"failed_authentication\", \"threshold\": 3, \"action\": \"block\","
	    " \"window\": 2592001}]", "security.monitoring.alerts[0].window: expected a number of seconds");
}

static void
test_check_filters(void **state)
{
	const char *p = "security.filters.patterns";

	check(p, "[]", NULL);
	check(p, "[{\"name\": \"n\", \"regex\": \"x+\", \"replacement\": \"\"}]", NULL);
	check(p, "\"x\"", "security.filters.patterns: expected a list of");
	check(p, "[[]]", "security.filters.patterns[0]: expected an object");
	check(p, "[{\"name\": \"email\", \"replacement\": \"[EMAIL]\"}]",
	    "security.filters.patterns[0].regex: expected a regular expression (missing)");
	check(p, "[{\"name\": \"email\", \"regex\": \"\", \"replacement\": \"[EMAIL]\"}]",
	    "security.filters.patterns[0].regex: expected a regular expression");
	check(p, "[{\"name\": \"email\", \"regex\": 5, \"replacement\": \"[EMAIL]\"}]",
	    "security.filters.patterns[0].regex: expected a regular expression");
	check(p, "[{\"regex\": \"x\", \"replacement\": \"y\"}]",
	    "security.filters.patterns[0].name: expected a string (missing)");
	check(p, "[{\"name\": \"\", \"regex\": \"x\", \"replacement\": \"y\"}]",
	    "security.filters.patterns[0].name: expected a string");
	check(p, "[{\"name\": \"a\", \"regex\": \"x\", \"replacement\": \"y\"},"
	    " {\"name\": \"b\", \"regex\": \"x\"}]",
	    "security.filters.patterns[1].replacement: expected a string");
	check(p, "[{\"name\": \"a\", \"regex\": \"x\", \"replacement\": null}]",
	    "security.filters.patterns[0].replacement: expected a string");
}

/* ---- kw_config_parse ------------------------------------------------ */

static void
test_parse_values_override_defaults(void **state)
{
	struct kw_config *cfg = parse_ok(
	    "{\"security\": {\"session\": {\"timeout\": 60},"
	    "  \"authorization\": {\"rbac\": {\"roles\": {\"ops\": {\"permissions\": [\"read\"]}}}}},"
	    " \"broker\": {\"socket\": \"/tmp/kw.sock\", \"socketMode\": \"0660\"},"
	    " \"api\": {\"proxy\": {\"auth\": {\"type\": \"basic\"}}}}");

	assert_int_equal(kw_config_int(cfg, "security.session.timeout"), 60);
	/* Siblings keep their defaults. */
	assert_int_equal(kw_config_int(cfg, "security.session.maxSessions"), 5);
	assert_string_equal(kw_config_str(cfg, "broker.socket"), "/tmp/kw.sock");
	assert_string_equal(kw_config_str(cfg, "broker.socketMode"), "0660");
	assert_string_equal(kw_config_str(cfg, "broker.dataDir"), KW_DATADIR_DEFAULT);
	assert_string_equal(kw_config_str(cfg, "api.proxy.auth.type"), "basic");
	/* Roles in the file add to the built-in roles one by one ... */
	assert_json_eq(kw_config_get(cfg, "security.authorization.rbac.roles"),
	    "{\"developer\": {\"permissions\": [\"read\", \"write\", \"execute\"]},"
	    " \"reviewer\": {\"permissions\": [\"read\"]}, \"admin\": {\"permissions\": [\"*\"]},"
	    " \"ops\": {\"permissions\": [\"read\"]}}");
	kw_config_free(cfg);
	/* ... and replace one of them by name; other lists replace the default whole. */
	cfg = parse_ok("{\"security\": {\"authorization\": {\"rbac\": {\"roles\":"
	    " {\"reviewer\": {\"permissions\": [\"read:key/*\"]}}}},"
	    " \"sensitivePatterns\": [\"pin\"]}}");
	assert_json_eq(json_object_get(kw_config_get(cfg, "security.authorization.rbac.roles"),
	    "reviewer"), "{\"permissions\": [\"read:key/*\"]}");
	assert_int_equal(json_object_size(kw_config_get(cfg, "security.authorization.rbac.roles")), 3);
	assert_json_eq(kw_config_get(cfg, "security.sensitivePatterns"), "[\"pin\"]");
	/* Sections read as objects; unknown paths read as NULL. */
	assert_true(json_is_object(kw_config_get(cfg, "security.session")));
	assert_null(kw_config_get(cfg, "security.session.nope"));
	assert_null(kw_config_get(cfg, "nope.nope.nope"));
	char longpath[300];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	assert_null(kw_config_get(cfg, longpath));
	kw_config_free(cfg);
}

static void
test_parse_guide_config(void **state)
{
	/* Every JSON snippet of seed/security-guide.txt, merged (without api.key). */
	static const char guide[] =
	    "{\"api\": {\"keySource\": \"keychain\", \"keychainService\": \"anthropic-api-key\","
	    "  \"proxy\": {\"enabled\": true, \"host\": \"proxy.company.com\", \"port\": 8080,"
	    "   \"protocol\": \"https\", \"auth\": {\"type\": \"basic\", \"username\": \"${PROXY_USER}\","
	    "   \"password\": \"${PROXY_PASS}\"}, \"verifyCertificate\": true}},"
	    " \"security\": {"
	    "  \"allowedPaths\": [\"/home/user/projects\", \"/opt/workspace\"],"
	    "  \"deniedPaths\": [\"/etc\", \"/root\", \"/home/user/.ssh\"], \"readOnly\": false,"
	    "  \"sandbox\": {\"enabled\": true, \"allowNetwork\": false, \"allowExec\": false},"
	    "  \"excludePatterns\": [\"**/.env\", \"**/.env.*\", \"**/secrets.json\","
	    "   \"**/credentials.json\", \"**/*.key\", \"**/*.pem\", \"**/id_rsa*\"],"
	    "  \"detectSensitiveFiles\": true,"
	    "  \"sensitivePatterns\": [\"password\", \"api_key\", \"secret\", \"token\"],"
	    "  \"filters\": {\"enabled\": true, \"patterns\": ["
	    "   {\"name\": \"email\", \"regex\": \"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\\\.[a-zA-Z]{2,}\","
	    "    \"replacement\": \"[EMAIL]\"},"
	    "   {\"name\": \"phone\", \"regex\": \"\\\\d{3}-\\\\d{3}-\\\\d{4}\", \"replacement\": \"[PHONE]\"}]},"
	    "  \"autoRedact\": true,"
	    "  \"localProcessing\": {\"enabled\": true, \"preprocessLocally\": true, \"cacheLocally\": true},"
	    "  \"execution\": {\"allowedCommands\": [\"git\", \"npm\", \"node\", \"python\"],"
	    "   \"deniedCommands\": [\"rm -rf\", \"dd\", \"mkfs\", \"sudo\"], \"requireConfirmation\": true,"
	    "   \"whitelistMode\": true, \"whitelist\": [\"git\", \"npm\", \"yarn\"]},"
	    "  \"codeReview\": {\"enabled\": true, \"rules\": [\"no-eval\", \"no-unsafe-regex\","
	    "   \"no-sql-injection\", \"no-xss\", \"no-hardcoded-secrets\"], \"severity\": \"error\"},"
	    "  \"network\": {\"enforceHttps\": true, \"verifyCertificates\": true,"
	    "   \"allowedHosts\": [\"api.anthropic.com\", \"console.anthropic.com\"],"
	    "   \"allowOutbound\": false, \"allowedDomains\": [\"anthropic.com\"]},"
	    "  \"audit\": {\"enabled\": true, \"logFile\": \"~/.claude/audit.log\", \"logLevel\": \"info\","
	    "   \"logActions\": [\"file_read\", \"file_write\", \"file_delete\", \"command_execute\","
	    "   \"api_call\"], \"includeTimestamp\": true, \"includeUser\": true, \"includeContext\": true,"
	    "   \"encrypt\": true, \"encryptionKey\": \"${LOG_ENCRYPTION_KEY}\", \"retention\": 90,"
	    "   \"autoArchive\": true},"
	    "  \"monitoring\": {\"enabled\": true, \"alerts\": ["
	    "   {\"type\": \"suspicious_activity\", \"threshold\": 5, \"action\": \"notify\"},"
	    "   {\"type\": \"failed_authentication\", \"threshold\": 3, \"action\": \"block\"}],"
	    "   \"notificationEmail\": \"security@company.com\"},"
	    "  \"compliance\": {\"gdpr\": {\"enabled\": true, \"dataRetention\": 30, \"rightToErasure\": true,"
	    "   \"dataPortability\": true}, \"soc2\": {\"enabled\": true, \"auditTrail\": true,"
	    "   \"accessControl\": true, \"encryption\": true},"
	    "   \"dataResidency\": {\"region\": \"us-east-1\", \"enforceRegion\": true}},"
	    "  \"encryption\": {\"inTransit\": {\"enabled\": true, \"protocol\": \"TLS1.3\","
	    "   \"cipherSuites\": [\"TLS_AES_256_GCM_SHA384\", \"TLS_CHACHA20_POLY1305_SHA256\"]},"
	    "   \"atRest\": {\"enabled\": true, \"algorithm\": \"AES-256-GCM\", \"keySource\": \"kms\","
	    "   \"kmsKeyId\": \"arn:aws:kms:...\"}, \"e2e\": {\"enabled\": true, \"publicKey\": \"pk\"}},"
	    "  \"authentication\": {\"mfa\": {\"enabled\": true, \"method\": \"totp\", \"required\": true}},"
	    "  \"authorization\": {\"rbac\": {\"enabled\": true, \"roles\": {"
	    "   \"developer\": {\"permissions\": [\"read\", \"write\", \"execute\"]},"
	    "   \"reviewer\": {\"permissions\": [\"read\"]}, \"admin\": {\"permissions\": [\"*\"]}}}},"
	    "  \"session\": {\"timeout\": 3600, \"maxSessions\": 5, \"requireReauth\": true,"
	    "   \"reauthInterval\": 86400},"
	    "  \"autoUpdate\": true, \"autoUpdateSecurity\": true,"
	    "  \"incidentResponse\": {\"enabled\": true, \"autoBlock\": true, \"notifyAdmin\": true,"
	    "   \"logIncidents\": true, \"incidentLogPath\": \"~/.claude/incidents.log\"}}}";
	struct kw_config *cfg = parse_ok(guide);

	assert_string_equal(kw_config_str(cfg, "api.keySource"), "keychain");
	assert_string_equal(kw_config_str(cfg, "security.encryption.atRest.keySource"), "kms");
	assert_int_equal(kw_config_int(cfg, "api.proxy.port"), 8080);
	assert_false(kw_config_bool(cfg, "security.network.allowOutbound"));
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    kw_config_get(cfg, "security.filters.patterns"), 1), "regex")), "\\d{3}-\\d{3}-\\d{4}");
	kw_config_free(cfg);
}

static void
test_parse_error_names_key_path(void **state)
{
	/* The exact text of notes/SPEC.md's example. */
	parse_bad("{\"security\": {\"session\": {\"timeout\": \"1h\"}}}",
	    "security.session.timeout: expected a number of seconds");
	struct kw_config *cfg = NULL;
	char err[512];
	const char *t = "{\"security\": {\"session\": {\"timeout\": \"1h\"}}}";
	assert_int_equal(kw_config_parse(t, strlen(t), &cfg, err, sizeof(err)), KW_ERR_CONFIG);
	assert_string_equal(err, "security.session.timeout: expected a number of seconds");

	parse_bad("{\"security\": {\"session\": {\"timeout\": 0}}}",
	    "security.session.timeout: expected a number of seconds from 1 to 2592000");
	parse_bad("{\"security\": {\"session\": {\"timeout\": {\"s\": 1}}}}",
	    "security.session.timeout: expected a number of seconds");
	parse_bad("{\"security\": {\"monitoring\": {\"alerts\": ["
	    "{\"type\": \"suspicious_activity\", \"threshold\": 5, \"action\": \"notify\"},"
	    "{\"type\": \"failed_authentication\", \"threshold\": 0, \"action\": \"block\"}]}}}",
	    "security.monitoring.alerts[1].threshold: ");
	parse_bad("{\"api\": {\"keySource\": \"vault\"}}", "api.keySource: expected one of: file, keychain");
	parse_bad("{\"api\": {\"proxy\": {\"auth\": {\"type\": 1}}}}", "api.proxy.auth.type: expected");
	parse_bad("{\"broker\": {\"socketMode\": \"666\"}}", "broker.socketMode: expected an octal mode");
	parse_bad("{\"broker\": {\"socketMode\": 438}}", "broker.socketMode: expected an octal mode");
	parse_bad("{\"security\": {\"execution\": {\"deniedCommands\": [\"sudo\", \"\"]}}}",
	    "security.execution.deniedCommands[1]: expected a non-empty string");
	parse_bad("{\"security\": {\"filters\": {\"patterns\": [{\"name\": \"x\", \"replacement\": \"\"}]}}}",
	    "security.filters.patterns[0].regex: expected a regular expression (missing)");
	parse_bad("{\"security\": {\"authorization\": {\"rbac\": {\"roles\": {\"x y\": {\"permissions\": []}}}}}}",
	    "security.authorization.rbac.roles.x y: role names");
	/* The first problem wins, even after an unknown key. */
	parse_bad("{\"zzz\": 1, \"security\": {\"readOnly\": \"no\"}}",
	    "security.readOnly: expected true or false");
}

static void
test_parse_section_not_object(void **state)
{
	parse_bad("{\"security\": 5}", "security: expected an object");
	parse_bad("{\"api\": []}", "api: expected an object");
	parse_bad("{\"broker\": null}", "broker: expected an object");
	parse_bad("{\"security\": {\"session\": [3600]}}", "security.session: expected an object");
	parse_bad("{\"security\": {\"compliance\": {\"gdpr\": true}}}",
	    "security.compliance.gdpr: expected an object");
	parse_bad("{\"api\": {\"proxy\": {\"auth\": \"basic\"}}}", "api.proxy.auth: expected an object");
}

static void
test_parse_role_permission_grammar(void **state)
{
	/* Role permissions are checked with rbac's grammar, and the entry is named. */
	parse_bad("{\"security\": {\"authorization\": {\"rbac\": {\"roles\": {\"ops\":"
	    " {\"permissions\": [\"read\", \"reed:key/x\"]}}}}}}",
	    "security.authorization.rbac.roles.ops.permissions[1]: \"reed:key/x\": unknown verb");
	parse_bad("{\"security\": {\"authorization\": {\"rbac\": {\"roles\": {\"ops\":"
	    " {\"permissions\": [\"read:key/[x]\"]}}}}}}",
	    "security.authorization.rbac.roles.ops.permissions[0]: ");
	/* A role name must not read as a command-line option. */
	parse_bad("{\"security\": {\"authorization\": {\"rbac\": {\"roles\": {\"-ops\":"
	    " {\"permissions\": [\"read\"]}}}}}}",
	    "security.authorization.rbac.roles.-ops: role names are");
}

static void
test_parse_api_key_refused(void **state)
{
	static const char *const texts[] = {
		"{\"api\": {\"key\": \"sk-ant-api03-SECRETVALUE\"}}",
		"{\"api\": {\"keySource\": \"file\", \"key\": \"sk-ant-api03-SECRETVALUE\"}}",
		"{\"api\": {\"key\": null}}",
		"{\"api\": {\"key\": {\"value\": \"sk-ant-api03-SECRETVALUE\"}}}",
	};
	struct kw_config *cfg = NULL;
	char err[512];

	for (size_t i = 0; i < KW_ELEMENTSOF(texts); i++) {
		parse_bad(texts[i], "api.key: ");
		assert_int_equal(kw_config_parse(texts[i], strlen(texts[i]), &cfg, err, sizeof(err)),
		    KW_ERR_CONFIG);
		/* The message explains, and never repeats the key. */
		assert_non_null(strstr(err, "keywarden key set"));
		assert_null(strstr(err, "SECRETVALUE"));
		assert_null(cfg);
	}
}

static void
test_parse_unparsable(void **state)
{
	struct kw_config *cfg = NULL;
	char err[512];
	const char *t;

	t = "{\n  \"security\": {\n    \"readOnly\": true,\n  }\n}\n";
	assert_int_equal(kw_config_parse(t, strlen(t), &cfg, err, sizeof(err)), KW_ERR_CONFIG);
	assert_true(strncmp(err, "line 4", 6) == 0);
	assert_null(cfg);

	t = "{\"a\": 1";
	parse_bad(t, "line 1");
	parse_bad("", "line ");
	parse_bad("   \n\n", "line ");
	parse_bad("{\"a\": 1} x", "line 1");
	parse_bad("{\"security\": {\"readOnly\": tru}}", "line 1");
	/* Duplicate keys are refused: which one wins would be a guess. */
	parse_bad("{\"security\": {\"readOnly\": true, \"readOnly\": false}}", "line 1");
	/* Not an object. */
	parse_bad("[]", "the configuration must be a JSON object");
	parse_bad("[{\"security\": {}}]", "the configuration must be a JSON object");
	parse_bad("\"text\"", "line 1");
	/* Deep nesting is a parse error, not a crash. */
	char *deep = malloc(10001);
	assert_non_null(deep);
	memset(deep, '[', 5000);
	memset(deep + 5000, ']', 5000);
	deep[10000] = '\0';
	parse_bad(deep, "line 1");
	free(deep);

	/* The text near the error is not quoted: it may be a secret value. */
	t = "{\"api\": {\"proxy\": {\"auth\": {\"password\": sk-ant-SECRETVALUE}}}}";
	assert_int_equal(kw_config_parse(t, strlen(t), &cfg, err, sizeof(err)), KW_ERR_CONFIG);
	assert_null(strstr(err, "SECRETVALUE"));
	assert_null(strstr(err, "sk-ant"));
	t = "{\"api\": {\"proxy\": {\"auth\": {\"password\": \"sk-ant-SECRETVALUE\" \"x\"}}}}";
	assert_int_equal(kw_config_parse(t, strlen(t), &cfg, err, sizeof(err)), KW_ERR_CONFIG);
	assert_null(strstr(err, "SECRETVALUE"));
}

static void
test_parse_unknown_keys_warned_and_dropped(void **state)
{
	struct capture cap;
	struct kw_config *cfg;
	char *out;

	kw_log_init("test_config", KW_LOG_STDERR, LOG_INFO);
	capture_start(&cap);
	cfg = parse_ok("{\"bogus\": 1, \"security\": {\"bogus2\": {\"deep\": true},"
	    " \"session\": {\"timeout\": 60, \"extra\": 1}},"
	    " \"security.session.maxSessions\": 9, \"api\": {\"\": 1}}");
	out = capture_end(&cap);

	/* Known values still apply. */
	assert_int_equal(kw_config_int(cfg, "security.session.timeout"), 60);
	/* A dotted key is not a path: maxSessions keeps its default. */
	assert_int_equal(kw_config_int(cfg, "security.session.maxSessions"), 5);
	/* Unknown keys are not part of the effective configuration. */
	assert_null(kw_config_get(cfg, "bogus"));
	assert_null(kw_config_get(cfg, "security.bogus2"));
	assert_null(kw_config_get(cfg, "security.session.extra"));
	assert_null(json_object_get(kw_config_get(cfg, "security"), "security.session.maxSessions"));
	assert_null(json_object_get(kw_config_get(cfg, "api"), ""));
	/* Each is warned about by its full path. */
	if (!strstr(out, "warning: config: bogus: unknown key") ||
	    !strstr(out, "warning: config: security.bogus2: unknown key") ||
	    !strstr(out, "warning: config: security.session.extra: unknown key") ||
	    !strstr(out, "security.session.maxSessions: unknown key"))
		fail_msg("warnings on stderr:\n%s", out);
	free(out);
	kw_config_free(cfg);
}

/* ---- kw_config_value_from_arg --------------------------------------- */

static json_t *
from_arg_ok(const char *path, const char *arg)
{
	const struct kw_config_key *key = kw_config_schema_lookup(path);
	json_t *v = NULL;
	char err[512] = "";

	assert_non_null(key);
	if (kw_config_value_from_arg(key, arg, &v, err, sizeof(err)) != 0)
		fail_msg("%s %s refused: %s", path, arg, err);
	assert_non_null(v);
	return v;
}

static void
from_arg_bad(const char *path, const char *arg, const char *prefix)
{
	const struct kw_config_key *key = kw_config_schema_lookup(path);
	json_t *v = (json_t *)0x1;
	char err[512] = "";

	assert_non_null(key);
	assert_int_equal(kw_config_value_from_arg(key, arg, &v, err, sizeof(err)), KW_ERR_CONFIG);
	assert_ptr_equal(v, (json_t *)0x1);
	if (strncmp(err, prefix, strlen(prefix)) != 0)
		fail_msg("%s %s:\n  err  \"%s\"\n  want \"%s...\"", path, arg, err, prefix);
}

static void
test_value_from_arg(void **state)
{
	json_t *v;

	/* String and enum keys take a bare word (the guide's `config set api.keySource keychain`). */
	v = from_arg_ok("api.keySource", "keychain");
	assert_json_eq(v, "\"keychain\"");
	json_decref(v);
	v = from_arg_ok("api.keySource", "\"keychain\"");
	assert_json_eq(v, "\"keychain\"");
	json_decref(v);
	v = from_arg_ok("api.keychainService", "anthropic-api-key");
	assert_json_eq(v, "\"anthropic-api-key\"");
	json_decref(v);
	/* A word that happens to be JSON of another type is still the string. */
	v = from_arg_ok("api.proxy.host", "123");
	assert_json_eq(v, "\"123\"");
	json_decref(v);
	v = from_arg_ok("api.proxy.host", "true");
	assert_json_eq(v, "\"true\"");
	json_decref(v);
	v = from_arg_ok("api.proxy.host", "[\"a\"]");
	assert_json_eq(v, "\"[\\\"a\\\"]\"");
	json_decref(v);
	v = from_arg_ok("api.proxy.host", "");
	assert_json_eq(v, "\"\"");
	json_decref(v);
	v = from_arg_ok("security.audit.encryptionKey", "${LOG_ENCRYPTION_KEY}");
	assert_json_eq(v, "\"${LOG_ENCRYPTION_KEY}\"");
	json_decref(v);
	v = from_arg_ok("broker.socketMode", "0660");
	assert_json_eq(v, "\"0660\"");
	json_decref(v);
	from_arg_bad("api.keySource", "vault", "api.keySource: expected one of: file, keychain");
	from_arg_bad("broker.socketMode", "660", "broker.socketMode: expected an octal mode");

	/* List, int and bool keys take JSON. */
	v = from_arg_ok("security.sensitivePatterns", "[\"password\",\"api_key\",\"secret\",\"token\"]");
	assert_json_eq(v, "[\"password\", \"api_key\", \"secret\", \"token\"]");
	json_decref(v);
	v = from_arg_ok("security.execution.whitelist", "[\"git\",\"npm\",\"yarn\"]");
	assert_json_eq(v, "[\"git\", \"npm\", \"yarn\"]");
	json_decref(v);
	v = from_arg_ok("security.audit.retention", "90");
	assert_json_eq(v, "90");
	json_decref(v);
	v = from_arg_ok("security.sandbox.enabled", "true");
	assert_json_eq(v, "true");
	json_decref(v);
	v = from_arg_ok("security.authorization.rbac.roles", "{\"ops\":{\"permissions\":[\"read\"]}}");
	assert_json_eq(v, "{\"ops\": {\"permissions\": [\"read\"]}}");
	json_decref(v);

	from_arg_bad("security.session.timeout", "abc", "security.session.timeout: expected a number of seconds");
	from_arg_bad("security.session.timeout", "1h", "security.session.timeout: expected a number of seconds");
	from_arg_bad("security.session.timeout", "60.5", "security.session.timeout: expected a number of seconds");
	from_arg_bad("security.session.timeout", "0",
	    "security.session.timeout: expected a number of seconds from 1 to 2592000");
	from_arg_bad("security.session.timeout", "\"60\"", "security.session.timeout: expected");
	from_arg_bad("security.sandbox.enabled", "yes", "security.sandbox.enabled: expected true or false");
	from_arg_bad("security.sensitivePatterns", "password",
	    "security.sensitivePatterns: expected a list of strings");
	from_arg_bad("security.sensitivePatterns", "[\"a\",", "security.sensitivePatterns: expected a list");
	from_arg_bad("security.sensitivePatterns", "[\"a\",\"a\",1]", "security.sensitivePatterns[2]:");
	from_arg_bad("security.authorization.rbac.roles", "{\"a\":1,\"a\":2}",
	    "security.authorization.rbac.roles: expected");
	/* A word that is not valid UTF-8 cannot become a JSON string. */
	from_arg_bad("api.proxy.host", "\xff\xfe", "api.proxy.host: expected a string");
}

/* ---- kw_config_load: file checks ------------------------------------ */

static void
load_expect(const char *file, bool missing_ok, int want, const char *needle)
{
	struct kw_config *cfg = (struct kw_config *)0x1;
	char err[1024] = "";

	int r = kw_config_load(file, missing_ok, &cfg, err, sizeof(err));
	if (r != want)
		fail_msg("kw_config_load(%s) = %d, want %d: %s", file, r, want, err);
	if (r == 0) {
		kw_config_free(cfg);
		return;
	}
	assert_ptr_equal(cfg, (struct kw_config *)0x1);
	/* The message names the file, then says why. */
	if (strncmp(err, file, strlen(file)) != 0 || (needle && !strstr(err, needle)))
		fail_msg("kw_config_load(%s): err \"%s\", want the file and \"%s\"", file, err,
		    needle ? needle : "");
}

static void
test_load_missing(void **state)
{
	_cleanup_free_ char *f = kw_test_path(*state, "nope/config.json");
	struct kw_config *cfg = NULL;
	char err[1024];

	assert_int_equal(kw_config_load(f, true, &cfg, err, sizeof(err)), 0);
	assert_non_null(cfg);
	assert_int_equal(kw_config_int(cfg, "security.session.timeout"), 3600);
	kw_config_free(cfg);
	load_expect(f, false, KW_ERR_NOT_FOUND, "No such file");
}

static void
test_load_good_file(void **state)
{
	_cleanup_free_ char *f = kw_test_path(*state, "config.json");
	struct kw_config *cfg = NULL;
	char err[1024];

	kw_test_write_text(f, "{\"security\": {\"session\": {\"timeout\": 120}}}\n", 0600);
	assert_int_equal(kw_config_load(f, false, &cfg, err, sizeof(err)), 0);
	assert_int_equal(kw_config_int(cfg, "security.session.timeout"), 120);
	kw_config_free(cfg);
	/* Readable by others is fine; writable is not. */
	assert_int_equal(chmod(f, 0644), 0);
	load_expect(f, false, 0, NULL);
	assert_int_equal(chmod(f, 0400), 0);
	load_expect(f, true, 0, NULL);
}

static void
test_load_writable_refused(void **state)
{
	static const mode_t modes[] = { 0666, 0620, 0602, 0660, 0622, 0777, 0020, 0002 };
	_cleanup_free_ char *f = kw_test_path(*state, "config.json");

	kw_test_write_text(f, "{}", 0600);
	for (size_t i = 0; i < KW_ELEMENTSOF(modes); i++) {
		assert_int_equal(chmod(f, modes[i]), 0);
		/* missing_ok does not soften a refusal. */
		load_expect(f, true, KW_ERR_DENIED, "writable");
		load_expect(f, false, KW_ERR_DENIED, (modes[i] & 0002) ? "everyone" : "its group");
	}
}

static void
test_load_not_regular_refused(void **state)
{
	struct kw_test_fx *t = *state;
	_cleanup_free_ char *d = kw_test_path(*state, "config.d");

	assert_int_equal(mkdir(d, 0700), 0);
	load_expect(d, false, KW_ERR_DENIED, "not a regular file");
	load_expect(d, true, KW_ERR_DENIED, "not a regular file");
	load_expect(t->dir, true, KW_ERR_DENIED, "not a regular file");
	load_expect("/dev/null", true, KW_ERR_DENIED, "not a regular file");
}

static void
test_load_fifo_does_not_hang(void **state)
{
	char *f = kw_test_path(*state, "config.fifo");
	int status = 0;
	bool hung;
	pid_t pid;

	assert_int_equal(mkfifo(f, 0600), 0);
	/* In a child, so a hang cannot stall the suite. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct kw_config *cfg = NULL;
		char err[512];
		alarm(5);
		_exit(kw_config_load(f, false, &cfg, err, sizeof(err)) == KW_ERR_DENIED ? 0 : 1);
	}
	free(f);	/* before any skip: cleanup attributes do not run on longjmp */
	for (int i = 0; i < 40 && waitpid(pid, &status, WNOHANG) == 0; i++)
		usleep(50 * 1000);
	hung = waitpid(pid, &status, WNOHANG) == 0;
	if (hung) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		fail_msg("kw_config_load on a FIFO blocked instead of refusing it");
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
test_load_foreign_owner_refused(void **state)
{
	_cleanup_free_ char *f = kw_test_path(*state, "config.json");
	int fd;

	if (geteuid() != 0)
		skip();		/* only root can give a file away */
	kw_test_write_text(f, "{}", 0600);
	fd = open(f, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fchown(fd, 65534, 65534), 0);
	close(fd);
	load_expect(f, false, KW_ERR_DENIED, "owned by uid 65534");
	load_expect(f, true, KW_ERR_DENIED, "owned by uid 65534");
	/* A group other than ours does not matter when the group cannot write. */
	assert_int_equal(chown(f, 0, 65534), 0);
	load_expect(f, false, 0, NULL);
}

static void
test_load_invalid_content(void **state)
{
	_cleanup_free_ char *f = kw_test_path(*state, "config.json");
	char want[512];
	struct kw_config *cfg = NULL;
	char err[1024];

	kw_test_write_text(f, "{\"security\": {\"session\": {\"timeout\": \"1h\"}}}", 0600);
	/* notes/SPEC.md: "<file>: security.session.timeout: expected a number of seconds" */
	snprintf(want, sizeof(want), "%s: security.session.timeout: expected a number of seconds", f);
	assert_int_equal(kw_config_load(f, false, &cfg, err, sizeof(err)), KW_ERR_CONFIG);
	assert_string_equal(err, want);

	kw_test_write_text(f, "{\n\"security\": {\n\"readOnly\": true,,\n}\n}", 0600);
	load_expect(f, true, KW_ERR_CONFIG, ": line 3");

	kw_test_write_text(f, "", 0600);
	load_expect(f, true, KW_ERR_CONFIG, ": line 1");
}

static void
test_load_too_large(void **state)
{
	_cleanup_free_ char *f = kw_test_path(*state, "config.json");
	size_t n = 1024 * 1024 + 10;
	char *big = malloc(n + 1);

	/* Valid JSON padded with white space past the 1 MiB limit. */
	assert_non_null(big);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = '\0';
	kw_test_write_text(f, big, 0600);
	free(big);
	struct kw_config *cfg = NULL;
	char err[1024];
	int r = kw_config_load(f, false, &cfg, err, sizeof(err));
	assert_true(r < 0);
	assert_null(cfg);
	assert_non_null(strstr(err, "larger than"));
}

/* ---- kw_config_file_set --------------------------------------------- */

static void
set_ok(const char *file, const char *path, const char *json)
{
	json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
	char err[1024] = "";

	assert_non_null(v);
	if (kw_config_file_set(file, path, v, err, sizeof(err)) != 0)
		fail_msg("set %s = %s in %s: %s", path, json, file, err);
	json_decref(v);
}

static void
test_file_set_creates_private_file(void **state)
{
	struct kw_test_fx *t = *state;
	_cleanup_free_ char *dir1 = kw_test_path(*state, "etc");
	_cleanup_free_ char *dir2 = kw_test_path(*state, "etc/keywarden");
	_cleanup_free_ char *f = kw_test_path(*state, "etc/keywarden/config.json");
	struct kw_config *cfg = NULL;
	char err[1024];
	mode_t old = umask(0);	/* a lax umask must not loosen the modes */

	set_ok(f, "security.session.timeout", "60");
	umask(old);
	assert_int_equal(kw_test_mode(f), 0600);
	assert_int_equal(kw_test_mode(dir1), 0700);
	assert_int_equal(kw_test_mode(dir2), 0700);
	assert_int_equal(kw_test_mode(t->dir), 0700);	/* an existing parent is left alone */
	assert_int_equal(kw_config_load(f, false, &cfg, err, sizeof(err)), 0);
	assert_int_equal(kw_config_int(cfg, "security.session.timeout"), 60);
	kw_config_free(cfg);
	/* The file holds only what was set, not the whole default tree. */
	_cleanup_free_ char *text = (char *)kw_test_read(f, NULL);
	json_t *doc = json_loads(text, 0, NULL);
	assert_json_eq(doc, "{\"security\": {\"session\": {\"timeout\": 60}}}");
	json_decref(doc);
	assert_no_temp_files(dir2);
}

static void
test_file_set_preserves_other_keys(void **state)
{
	struct kw_test_fx *t = *state;
	_cleanup_free_ char *f = kw_test_path(*state, "config.json");
	struct capture cap;

	kw_test_write_text(f, "{\"security\": {\"session\": {\"maxSessions\": 3}, \"readOnly\": true},"
	    " \"broker\": {\"socket\": \"/tmp/x.sock\"}, \"futureKey\": {\"x\": 1}}", 0600);
	capture_start(&cap);		/* futureKey draws a warning; keep the output tidy */
	set_ok(f, "security.session.timeout", "60");
	set_ok(f, "api.keySource", "\"keychain\"");
	set_ok(f, "security.sensitivePatterns", "[\"a\", \"b\"]");
	free(capture_end(&cap));

	_cleanup_free_ char *text = (char *)kw_test_read(f, NULL);
	json_t *doc = json_loads(text, 0, NULL);
	assert_json_eq(doc, "{\"security\": {\"session\": {\"maxSessions\": 3, \"timeout\": 60},"
	    " \"readOnly\": true, \"sensitivePatterns\": [\"a\", \"b\"]},"
	    " \"broker\": {\"socket\": \"/tmp/x.sock\"}, \"futureKey\": {\"x\": 1},"
	    " \"api\": {\"keySource\": \"keychain\"}}");
	json_decref(doc);
	/* Overwrite an existing value. */
	struct kw_config *cfg = NULL;
	char err[1024];
	capture_start(&cap);
	set_ok(f, "security.session.maxSessions", "7");
	int r = kw_config_load(f, false, &cfg, err, sizeof(err));
	free(capture_end(&cap));
	assert_int_equal(r, 0);
	assert_int_equal(kw_config_int(cfg, "security.session.maxSessions"), 7);
	assert_int_equal(kw_config_int(cfg, "security.session.timeout"), 60);
	kw_config_free(cfg);
	assert_int_equal(kw_test_mode(f), 0600);
	assert_no_temp_files(t->dir);
}

/* set must fail with `want`, err must contain needle, and the file must not change. */
static void
set_refused(const char *file, const char *path, const char *json, int want, const char *needle)
{
	struct stat before, after;
	size_t len_before, len_after;
	_cleanup_free_ char *text_before = (char *)kw_test_read(file, &len_before);
	json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
	char err[1024] = "";

	assert_non_null(v);
	assert_int_equal(stat(file, &before), 0);
	int r = kw_config_file_set(file, path, v, err, sizeof(err));
	json_decref(v);
	if (r != want)
		fail_msg("set %s = %s: %d, want %d (err: %s)", path, json, r, want, err);
	if (needle && !strstr(err, needle))
		fail_msg("set %s = %s: err \"%s\" lacks \"%s\"", path, json, err, needle);
	_cleanup_free_ char *text_after = (char *)kw_test_read(file, &len_after);
	assert_int_equal(stat(file, &after), 0);
	assert_int_equal(len_before, len_after);
	assert_memory_equal(text_before, text_after, len_before);
	assert_int_equal(before.st_ino, after.st_ino);	/* not even replaced by a copy */
	assert_int_equal(before.st_mode, after.st_mode);
}

static void
test_file_set_refuses_invalid_result(void **state)
{
	struct kw_test_fx *t = *state;
	_cleanup_free_ char *f = kw_test_path(*state, "config.json");
	char want[512];

	kw_test_write_text(f, "{\n  \"security\": {\"session\": {\"timeout\": 60}}\n}\n", 0600);
	snprintf(want, sizeof(want), "%s: security.session.timeout: expected a number of seconds", f);
	set_refused(f, "security.session.timeout", "\"abc\"", KW_ERR_CONFIG, want);
	set_refused(f, "security.session.timeout", "0", KW_ERR_CONFIG, "from 1 to 2592000");
	set_refused(f, "security.monitoring.alerts",
	    "[{\"type\": \"failed_authentication\", \"threshold\": 0, \"action\": \"block\"}]",
	    KW_ERR_CONFIG, "security.monitoring.alerts[0].threshold: ");
	/* Only whole keys are set: a section is not a key. */
	set_refused(f, "security.session", "5", KW_ERR_CONFIG, "security.session: unknown key");
	/* An API key is never written to the file, and never echoed. */
	set_refused(f, "api.key", "\"sk-ant-api03-SECRETVALUE\"", KW_ERR_CONFIG, "api.key: ");
	char err[1024];
	json_t *k = json_string("sk-ant-api03-SECRETVALUE");
	assert_int_equal(kw_config_file_set(f, "api.key", k, err, sizeof(err)), KW_ERR_CONFIG);
	assert_null(strstr(err, "SECRETVALUE"));
	json_decref(k);
	assert_no_temp_files(t->dir);
}

static void
test_file_set_refuses_bad_existing_file(void **state)
{
	_cleanup_free_ char *f = kw_test_path(*state, "config.json");

	/* Unparsable: the user fixes it by hand, keywarden does not guess. */
	kw_test_write_text(f, "{\"security\": {\"readOnly\": tru", 0600);
	set_refused(f, "security.readOnly", "false", KW_ERR_CONFIG, "fix it by hand");
	kw_test_write_text(f, "[1, 2]", 0600);
	set_refused(f, "security.readOnly", "false", KW_ERR_CONFIG, "fix it by hand");
	kw_test_write_text(f, "{\"a\": 1, \"a\": 2}", 0600);
	set_refused(f, "security.readOnly", "false", KW_ERR_CONFIG, "fix it by hand");
	/* A file the broker would refuse is not rewritten either. */
	kw_test_write_text(f, "{}", 0666);
	set_refused(f, "security.readOnly", "false", KW_ERR_DENIED, "writable");
	kw_test_write_text(f, "{}", 0620);
	set_refused(f, "security.readOnly", "false", KW_ERR_DENIED, "writable");
}

static void
test_file_set_keeps_mode_0600(void **state)
{
	_cleanup_free_ char *f = kw_test_path(*state, "config.json");

	kw_test_write_text(f, "{}", 0600);
	set_ok(f, "security.readOnly", "true");
	assert_int_equal(kw_test_mode(f), 0600);
	set_ok(f, "security.readOnly", "false");
	assert_int_equal(kw_test_mode(f), 0600);
	/* A file that was more open than 0600 (but safe to read) ends up 0600. */
	assert_int_equal(chmod(f, 0644), 0);
	set_ok(f, "security.readOnly", "true");
	assert_int_equal(kw_test_mode(f), 0600);
	struct kw_config *cfg = NULL;
	char err[1024];
	assert_int_equal(kw_config_load(f, false, &cfg, err, sizeof(err)), 0);
	assert_true(kw_config_bool(cfg, "security.readOnly"));
	kw_config_free(cfg);
}

/*
 * Every key says whether it is enforced, and an unenforced one why not; the
 * sentence about it is the one every part prints.
 */
static void
test_schema_enforced_flags(void **state)
{
	const struct kw_config_key *schema;
	size_t n, unenforced = 0;
	char buf[256];

	schema = kw_config_schema(&n);
	for (size_t i = 0; i < n; i++) {
		const struct kw_config_key *k = &schema[i];
		if (k->enforced && k->not_enforced)
			fail_msg("%s: enforced, yet says why it is not", k->path);
		if (!k->enforced && !k->not_enforced)
			fail_msg("%s: neither enforced nor saying why not", k->path);
		if (k->enforced) {
			assert_null(kw_config_unenforced_text(k, buf, sizeof(buf)));
			continue;
		}
		unenforced++;
		assert_ptr_equal(kw_config_unenforced_text(k, buf, sizeof(buf)), buf);
		assert_true(strncmp(buf, k->path, strlen(k->path)) == 0);
	}
	assert_true(unenforced > 0 && unenforced < n);
	assert_true(kw_config_schema_lookup("security.session.timeout")->enforced);
	assert_true(kw_config_schema_lookup("security.authentication.lockout.duration")->enforced);
	/* The policy keys are enforced on every tool call keywarden hook claude asks about. */
	assert_true(kw_config_schema_lookup("security.readOnly")->enforced);
	assert_true(kw_config_schema_lookup("security.execution.deniedCommands")->enforced);
	/* keywarden run applies the sandbox keys (sandbox.begin hands them out). */
	assert_true(kw_config_schema_lookup("security.sandbox.enabled")->enforced);
	assert_false(kw_config_schema_lookup("security.audit.enabled")->enforced);
	assert_string_equal(kw_config_unenforced_text(
	    kw_config_schema_lookup("security.compliance.soc2.enabled"), buf, sizeof(buf)),
	    "security.compliance.soc2.enabled is accepted but not enforced yet (no SOC 2 reporting)");
	(void)state;
}

/* Set means given by the file: defaults are not set, a file's value is, even the default's. */
static void
test_is_set(void **state)
{
	struct kw_config *cfg = kw_config_new_default();

	assert_false(kw_config_is_set(cfg, "security.session.timeout"));
	kw_config_free(cfg);
	cfg = parse_ok("{\"security\": {\"readOnly\": false, \"session\": {\"timeout\": 60},"
	    " \"authorization\": {\"rbac\": {\"roles\": {\"ops\": {\"permissions\": [\"read\"]}}}}}}");
	assert_true(kw_config_is_set(cfg, "security.readOnly"));
	assert_true(kw_config_is_set(cfg, "security.session.timeout"));
	assert_true(kw_config_is_set(cfg, "security.authorization.rbac.roles"));
	assert_false(kw_config_is_set(cfg, "security.session.maxSessions"));
	assert_false(kw_config_is_set(cfg, "security.session"));
	assert_false(kw_config_is_set(cfg, "security.noSuchKey"));
	kw_config_free(cfg);
	(void)state;
}

#define TMP_TEST(fn) cmocka_unit_test_setup_teardown(fn, kw_test_setup, kw_test_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_are_seed_values),
		cmocka_unit_test(test_empty_file_equals_defaults),
		cmocka_unit_test(test_digest_names_the_text),
		cmocka_unit_test(test_schema_defaults_pass_checks),
		cmocka_unit_test(test_schema_enforced_flags),
		cmocka_unit_test(test_is_set),
		cmocka_unit_test(test_check_bool),
		cmocka_unit_test(test_check_int),
		cmocka_unit_test(test_check_string),
		cmocka_unit_test(test_check_abs_path),
		cmocka_unit_test(test_check_socket_mode),
		cmocka_unit_test(test_check_enum),
		cmocka_unit_test(test_check_strings),
		cmocka_unit_test(test_check_roles),
		cmocka_unit_test(test_check_alerts),
		cmocka_unit_test(test_check_filters),
		cmocka_unit_test(test_parse_values_override_defaults),
		cmocka_unit_test(test_parse_guide_config),
		cmocka_unit_test(test_parse_error_names_key_path),
		cmocka_unit_test(test_parse_section_not_object),
		cmocka_unit_test(test_parse_role_permission_grammar),
		cmocka_unit_test(test_parse_api_key_refused),
		cmocka_unit_test(test_parse_unparsable),
		cmocka_unit_test(test_parse_unknown_keys_warned_and_dropped),
		cmocka_unit_test(test_value_from_arg),
		TMP_TEST(test_load_missing),
		TMP_TEST(test_load_good_file),
		TMP_TEST(test_load_writable_refused),
		TMP_TEST(test_load_not_regular_refused),
		TMP_TEST(test_load_fifo_does_not_hang),
		TMP_TEST(test_load_foreign_owner_refused),
		TMP_TEST(test_load_invalid_content),
		TMP_TEST(test_load_too_large),
		TMP_TEST(test_file_set_creates_private_file),
		TMP_TEST(test_file_set_preserves_other_keys),
		TMP_TEST(test_file_set_refuses_invalid_result),
		TMP_TEST(test_file_set_refuses_bad_existing_file),
		TMP_TEST(test_file_set_keeps_mode_0600),
	};

	/* Warnings for the unknown keys some tests use are expected noise. */
	kw_log_init("test_config", KW_LOG_STDERR, LOG_INFO);
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
