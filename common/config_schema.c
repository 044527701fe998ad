/*
 * config_schema.c - every configuration key keywarden knows, with its type,
 * default and the words used when a value is wrong.
 *
 * The security.* and api.* keys are the security guide's, with its values
 * as defaults where the guide gives a policy (session limits, roles,
 * patterns); where it gives a site-specific example (a proxy host, a KMS key
 * ARN, a mail address) the default is empty.  broker.* keys are ours.
 */
#include <string.h>

#include "common/config.h"

static const char *const key_sources[] = { "file", "keychain", NULL };
static const char *const at_rest_sources[] = { "local", "passphrase", "pkcs11",
	"aws-kms", "kms", NULL };
static const char *const algorithms[] = { "AES-256-GCM", NULL };
static const char *const proxy_protocols[] = { "http", "https", NULL };
static const char *const proxy_auth_types[] = { "none", "basic", NULL };
static const char *const log_levels[] = { "debug", "info", "warn", "error", NULL };
static const char *const severities[] = { "error", "warning", "info", NULL };
static const char *const tls_versions[] = { "TLS1.2", "TLS1.3", NULL };
static const char *const mfa_methods[] = { "totp", NULL };
static const char *const verdicts[] = { "allow", "ask", "deny", NULL };

#define DAY 86400LL
/*
 * Every entry says whether keywarden acts on it today: E (enforced), or
 * why not (the end of "KEY is accepted but not enforced ...").  Keys of the
 * guide that wait for a part not written yet are accepted, so a guide's
 * configuration loads, and reported wherever they are set.
 */
#define E		.enforced = true
#define POLICY		.not_enforced = "yet (policy engine: issue 13..16)"
/* Policy keys: enforced on every tool call keywarden decides (keywarden hook claude). */
#define HOOK		.enforced = true
/* Enforced by keywarden run (sandbox/): the broker hands them out in sandbox.begin. */
#define SANDBOX		.enforced = true
/* Enforced by the API proxy (proxy/, keywarden-proxy) on its upstream traffic. */
#define APIPROXY	.enforced = true
#define NO_E2E		.not_enforced = "yet (no end-to-end encryption layer)"
#define NO_SOC2		.not_enforced = "yet (no SOC 2 reporting)"
#define ALWAYS(why)	.not_enforced = "(" why ")"

#define BOOL(p, d, e, h)	{ .path = p, .type = KW_CT_BOOL, .def = d, .expect = "true or false", \
				  e, .help = h }
#define SECS(p, d, lo, hi, e, h) { .path = p, .type = KW_CT_INT, .def = d, \
				  .expect = "a number of seconds", .min = lo, .max = hi, e, .help = h }
#define COUNT(p, d, lo, hi, e, h) { .path = p, .type = KW_CT_INT, .def = d, \
				  .expect = "a whole number", .min = lo, .max = hi, e, .help = h }
#define DAYS(p, d, lo, hi, e, h) { .path = p, .type = KW_CT_INT, .def = d, \
				  .expect = "a number of days", .min = lo, .max = hi, e, .help = h }
#define STR(p, d, e, h)		{ .path = p, .type = KW_CT_STRING, .def = d, .expect = "a string", \
				  e, .help = h }
#define PATH(p, d, e, h)	{ .path = p, .type = KW_CT_STRING, .def = d, \
				  .expect = "an absolute path", .abs_path = true, e, .help = h }
#define SECRET(p, d, e, h)	{ .path = p, .type = KW_CT_STRING, .def = d, .expect = "a string", \
				  .secret = true, e, .help = h }
#define ENUM(p, d, c, x, e, h)	{ .path = p, .type = KW_CT_ENUM, .def = d, .expect = x, \
				  .choices = c, e, .help = h }
#define LIST(p, d, e, h)	{ .path = p, .type = KW_CT_STRINGS, .def = d, \
				  .expect = "a list of strings", e, .help = h }

static const struct kw_config_key schema[] = {
	/* The broker's own settings. */
	PATH("broker.socket", "\"" KW_SOCKET_DEFAULT "\"", E, "Unix socket the broker listens on"),
	PATH("broker.dataDir", "\"" KW_DATADIR_DEFAULT "\"", E,
	     "directory for state.db, audit.db and keystore/"),
	{ .path = "broker.socketMode", .type = KW_CT_STRING, .def = "\"0666\"",
	  .expect = "an octal mode such as \"0660\"", E,
	  .help = "permissions of the socket; callers are told apart by SO_PEERCRED" },
	COUNT("broker.maxClients", "1024", 1, 65536, E, "connections served at once"),
	COUNT("broker.maxClientsPerUser", "64", 1, 65536, E, "connections one user may hold at once "
	      "(uid 0 and the broker's own user: no limit, and room is kept for them)"),
	SECS("broker.helloTimeout", "5", 1, 3600, E,
	     "time a new connection has to complete the handshake"),
	SECS("broker.clientTimeout", "5", 1, 3600, E, "time a client has to finish a message it started"),
	SECS("broker.idleTimeout", "300", 1, 7 * DAY, E, "idle connections are closed after this"),
	COUNT("broker.uid", "-1", -1, 4294967294LL, E, "the broker's uid when it is neither root nor "
	      "the caller: the CLI trusts that socket instead of its own (-1: root or the caller)"),
	/* The API proxy (proxy/, started by the broker): Claude Code sends its
	   calls here with a scoped keywarden token; the real key is added here. */
	BOOL("broker.apiProxy.enabled", "false", E, "start the API proxy with the broker"),
	STR("broker.apiProxy.listen", "\"127.0.0.1:8788\"", E,
	    "loopback address:port the API proxy listens on (127.0.0.1, ::1 or localhost)"),
	COUNT("broker.apiProxy.maxConnections", "2048", 1, 65536, E,
	      "client connections the API proxy serves at once"),
	SECS("broker.apiProxy.idleTimeout", "300", 1, 7 * DAY, E,
	     "a proxied stream with no bytes either way for this long is closed"),

	/* api.* */
	ENUM("api.keySource", "\"file\"", key_sources, "one of: file, keychain", E,
	     "where API keys live: encrypted files or the Secret Service keychain"),
	STR("api.keychainService", "\"anthropic-api-key\"", E, "keychain item attribute 'service'"),
	STR("api.baseUrl", "\"https://api.anthropic.com\"", APIPROXY,
	    "where the API proxy forwards (scheme://host[:port])"),
	STR("api.verifyUrl", "\"\"", E, "HTTPS endpoint for a live key check (empty: format check only)"),
	SECS("api.rotationGrace", "86400", 0, 365 * DAY, E,
	     "how long the previous version stays readable after key rotate"),
	SECS("api.commandTimeout", "30", 1, 3600, E, "time limit for key import --from command:CMD"),
	BOOL("api.proxy.enabled", "false", APIPROXY, "send outbound HTTPS through a proxy"),
	STR("api.proxy.host", "\"\"", APIPROXY, "proxy host name"),
	COUNT("api.proxy.port", "8080", 1, 65535, APIPROXY, "proxy port"),
	ENUM("api.proxy.protocol", "\"https\"", proxy_protocols, "one of: http, https", APIPROXY,
	     "proxy protocol"),
	ENUM("api.proxy.auth.type", "\"none\"", proxy_auth_types, "one of: none, basic", APIPROXY,
	     "proxy authentication"),
	STR("api.proxy.auth.username", "\"\"", APIPROXY, "proxy user name (${VAR} reads the environment)"),
	SECRET("api.proxy.auth.password", "\"\"", APIPROXY,
	       "proxy password (prefer ${VAR}; a literal stays in this 0600 file)"),
	BOOL("api.proxy.verifyCertificate", "true", APIPROXY, "verify the proxy's TLS certificate"),

	/* File system access (policy/). */
	LIST("security.allowedPaths", "[]", HOOK, "paths tools may touch (empty: no allow-list)"),
	LIST("security.deniedPaths", "[\"/etc\", \"/root\", \"~/.ssh\"]", HOOK,
	     "paths tools may never touch"),
	BOOL("security.readOnly", "false", HOOK, "refuse every write"),
	BOOL("security.sandbox.enabled", "false", SANDBOX, "run tools in a sandbox"),
	BOOL("security.sandbox.allowNetwork", "false", SANDBOX, "sandboxed tools may use the network"),
	BOOL("security.sandbox.allowExec", "false", SANDBOX, "sandboxed tools may execute programs"),
	LIST("security.excludePatterns", "[\"**/.env\", \"**/.env.*\", \"**/secrets.json\", "
	     "\"**/credentials.json\", \"**/*.key\", \"**/*.pem\", \"**/id_rsa*\"]", HOOK,
	     "files never shown to tools"),
	BOOL("security.detectSensitiveFiles", "true", HOOK, "detect files that look like secrets"),
	LIST("security.sensitivePatterns", "[\"password\", \"api_key\", \"secret\", \"token\"]", HOOK,
	     "words that mark a file as sensitive"),

	/* Data privacy. */
	BOOL("security.filters.enabled", "true", E, "redact sensitive data with the patterns below"),
	{ .path = "security.filters.patterns", .type = KW_CT_FILTERS,
	  .def = "[{\"name\": \"email\", \"regex\": \"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\\\.[a-zA-Z]{2,}\", \"replacement\": \"[EMAIL]\"},"
	  " {\"name\": \"phone\", \"regex\": \"\\\\d{3}-\\\\d{3}-\\\\d{4}\", \"replacement\": \"[PHONE]\"},"
	  " {\"name\": \"ssn\", \"regex\": \"\\\\d{3}-\\\\d{2}-\\\\d{4}\", \"replacement\": \"[SSN]\"},"
	  " {\"name\": \"credit_card\", \"regex\": \"\\\\d{4}[\\\\s-]?\\\\d{4}[\\\\s-]?\\\\d{4}[\\\\s-]?\\\\d{4}\", \"replacement\": \"[CARD]\"}]",
	  .expect = "a list of {\"name\", \"regex\", \"replacement\"} objects", E,
	  .help = "redaction patterns" },
	{ .path = "security.secrets.rules", .type = KW_CT_SECRET_RULES, .def = "[]",
	  .expect = "a list of {\"id\", \"regex\", \"keywords\"} objects", E,
	  .help = "secret rules added to the built-in ones (an id of a built-in replaces it)" },
	LIST("security.secrets.allowlist.paths", "[]", E,
	     "globs of files whose findings are not reported (keywarden scan)"),
	LIST("security.secrets.allowlist.regexes", "[]", E,
	     "a finding whose text matches one of these is not one"),
	/* Acted on by keywarden hook claude (PostToolUse), with the broker's settings. */
	BOOL("security.autoRedact", "false", E, "redact tool output automatically"),
	BOOL("security.localProcessing.enabled", "true", POLICY, "process data locally"),
	BOOL("security.localProcessing.preprocessLocally", "true", POLICY, "preprocess data locally"),
	BOOL("security.localProcessing.cacheLocally", "true", POLICY, "cache data locally"),

	/* Command execution (policy/). */
	LIST("security.execution.allowedCommands", "[\"git\", \"npm\", \"node\", \"python\"]", HOOK,
	     "commands tools may run"),
	LIST("security.execution.deniedCommands", "[\"rm -rf\", \"dd\", \"mkfs\", \"sudo\"]", HOOK,
	     "commands tools may never run"),
	BOOL("security.execution.requireConfirmation", "true", HOOK, "ask before running a command"),
	BOOL("security.execution.whitelistMode", "false", HOOK, "allow only the whitelist"),
	LIST("security.execution.whitelist", "[]", HOOK, "commands allowed in whitelist mode"),
	/* keywarden scan is the rule no-hardcoded-secrets: these decide whether its findings fail. */
	BOOL("security.codeReview.enabled", "true", E, "scan generated code"),
	LIST("security.codeReview.rules", "[\"no-eval\", \"no-unsafe-regex\", \"no-sql-injection\", "
	     "\"no-xss\", \"no-hardcoded-secrets\"]", E, "code review rules"),
	ENUM("security.codeReview.severity", "\"error\"", severities,
	     "one of: error, warning, info", E, "severity of a rule violation"),

	/* Network. */
	/* API calls through keywarden-proxy (broker/apiproxy/budget.h). */
	{ .path = "security.api.budgets", .type = KW_CT_BUDGETS, .def = "{}",
	  .expect = "an object of role names to {\"dailyTokens\": N}", E,
	  .help = "daily API token budget (input + output, UTC day) per role for calls through the "
	  "API proxy; a user gets the largest of their roles' (none: unlimited)" },
	BOOL("security.network.enforceHttps", "true", E, "refuse plain HTTP"),
	BOOL("security.network.verifyCertificates", "true", E, "verify TLS certificates"),
	STR("security.network.caFile", "\"\"", APIPROXY,
	    "PEM file of extra CAs trusted upstream besides the system's (empty: the system's only)"),
	LIST("security.network.allowedHosts", "[\"api.anthropic.com\", \"console.anthropic.com\"]", HOOK,
	     "hosts outbound requests may reach"),
	BOOL("security.network.allowOutbound", "true", HOOK, "allow outbound connections"),
	LIST("security.network.allowedDomains", "[\"anthropic.com\"]", HOOK,
	     "domains outbound requests may reach"),

	/* Agent tool calls (keywarden hook claude). */
	ENUM("security.hooks.unknownTools", "\"deny\"", verdicts, "one of: allow, ask, deny", E,
	     "what a tool the policy does not know (an MCP tool) gets"),

	/* Audit. */
	BOOL("security.audit.enabled", "true", ALWAYS("the audit trail cannot be turned off"),
	     "keep the audit trail"),
	STR("security.audit.logFile", "\"\"", E, "also append each committed record as a JSON line here, as "
	    "stored (relative: inside broker.dataDir; empty: off)"),
	ENUM("security.audit.logLevel", "\"info\"", log_levels, "one of: debug, info, warn, error", E,
	     "broker log level"),
	LIST("security.audit.logActions", "[\"file_read\", \"file_write\", \"file_delete\", "
	     "\"command_execute\", \"api_call\"]", E, "tool actions the hook records"),
	BOOL("security.audit.includeTimestamp", "true", ALWAYS("every record carries its time"),
	     "records carry a timestamp"),
	BOOL("security.audit.includeUser", "true", E, "records carry the user"),
	BOOL("security.audit.includeContext", "true", E, "records carry metadata"),
	BOOL("security.audit.encrypt", "false", E, "seal record details to the auditor's key"),
	SECRET("security.audit.encryptionKey", "\"\"", E, "key that seals record details (prefer ${VAR})"),
	DAYS("security.audit.retention", "90", 1, 36500, E, "days records are kept"),
	BOOL("security.audit.autoArchive", "false", E, "archive records before pruning them"),
	SECS("security.audit.refusalWindow", "10", 0, 3600, E, "identical refusals of one user within "
	     "this time share one summary record with a count (0: every refusal its own record)"),
	COUNT("security.audit.refusalBurst", "5", 1, 1000, E, "identical refusals recorded one by one "
	      "in a window before the rest are counted"),
	{ .path = "security.audit.minFreeSpace", .type = KW_CT_INT, .def = "100",
	  .expect = "a number of megabytes", .min = 0, .max = 1048576, E,
	  .help = "raise an alert when less is free for the audit store (0: off)" },

	/* Monitoring. */
	BOOL("security.monitoring.enabled", "true", E, "raise alerts"),
	{ .path = "security.monitoring.alerts", .type = KW_CT_ALERTS,
	  .def = "[{\"type\": \"suspicious_activity\", \"threshold\": 5, \"action\": \"notify\"},"
	  " {\"type\": \"failed_authentication\", \"threshold\": 3, \"action\": \"block\"}]",
	  .expect = "a list of {\"type\", \"threshold\", \"action\"} objects", E,
	  .help = "alert rules" },
	STR("security.monitoring.notificationEmail", "\"\"", E, "where alert mail goes (empty: no mail)"),
	SECS("security.monitoring.window", "900", 1, 30 * DAY, E,
	     "refusals count towards suspicious_activity within this time"),
	SECS("security.monitoring.rateLimit", "300", 0, 7 * DAY, E,
	     "at most one alert per type and user within this time"),
	STR("security.monitoring.smtp.url", "\"smtp://127.0.0.1:25\"", E,
	    "mail server for alert mail (smtp:// or smtps://)"),
	STR("security.monitoring.smtp.from", "\"keywarden@localhost\"", E, "sender of alert mail"),
	STR("security.monitoring.webhookUrl", "\"\"", E, "URL alerts are posted to as JSON (empty: none)"),

	/* Compliance. */
	BOOL("security.compliance.gdpr.enabled", "false", E, "GDPR features"),
	DAYS("security.compliance.gdpr.dataRetention", "30", 1, 36500, E,
	     "days the pseudonyms of departed users are kept (with gdpr.enabled)"),
	BOOL("security.compliance.gdpr.rightToErasure", "true", E, "allow erasing a user"),
	BOOL("security.compliance.gdpr.dataPortability", "true", E, "allow exporting a user"),
	BOOL("security.compliance.soc2.enabled", "false", NO_SOC2, "SOC 2 controls"),
	BOOL("security.compliance.soc2.auditTrail", "true", NO_SOC2, "SOC 2: audit trail"),
	BOOL("security.compliance.soc2.accessControl", "true", NO_SOC2, "SOC 2: access control"),
	BOOL("security.compliance.soc2.encryption", "true", NO_SOC2, "SOC 2: encryption"),
	STR("security.compliance.dataResidency.region", "\"\"", E,
	    "region keys must stay in (e.g. us-east-1)"),
	BOOL("security.compliance.dataResidency.enforceRegion", "false", E,
	     "refuse KMS keys outside region"),

	/* Encryption. */
	BOOL("security.encryption.inTransit.enabled", "true",
	     ALWAYS("upstream traffic is always TLS; keywarden's only TCP listener is the API proxy, on loopback"),
	     "TLS on the network"),
	ENUM("security.encryption.inTransit.protocol", "\"TLS1.3\"", tls_versions,
	     "one of: TLS1.2, TLS1.3", APIPROXY, "lowest TLS version upstream"),
	LIST("security.encryption.inTransit.cipherSuites", "[\"TLS_AES_256_GCM_SHA384\", "
	     "\"TLS_CHACHA20_POLY1305_SHA256\"]", APIPROXY, "TLS 1.3 cipher suites upstream"),
	BOOL("security.encryption.atRest.enabled", "true", ALWAYS("stored keys are always encrypted"),
	     "encrypt stored keys"),
	/* One choice, which is the only cipher the keystore has: enforced by construction. */
	ENUM("security.encryption.atRest.algorithm", "\"AES-256-GCM\"", algorithms,
	     "AES-256-GCM", E, "cipher for stored keys"),
	ENUM("security.encryption.atRest.keySource", "\"local\"", at_rest_sources,
	     "one of: local, passphrase, pkcs11, aws-kms, kms", E, "master key provider"),
	STR("security.encryption.atRest.kmsKeyId", "\"\"", E, "KMS key ARN or pkcs11: URI"),
	STR("security.encryption.atRest.passphraseFile", "\"\"", E,
	    "passphrase provider: file holding the passphrase (empty: the systemd credential "
	    "keywarden-passphrase)"),
	STR("security.encryption.atRest.endpoint", "\"\"", E,
	    "aws-kms: endpoint URL (empty: https://kms.REGION.amazonaws.com)"),
	BOOL("security.encryption.e2e.enabled", "false", NO_E2E, "end-to-end encryption"),
	STR("security.encryption.e2e.publicKey", "\"\"", NO_E2E, "recipient public key"),

	/* Authentication, authorization, sessions. */
	BOOL("security.authentication.mfa.enabled", "true", E, "second factor on login"),
	/* Likewise: TOTP is the one second factor there is. */
	ENUM("security.authentication.mfa.method", "\"totp\"", mfa_methods, "totp", E, "second factor"),
	BOOL("security.authentication.mfa.required", "true", E, "no session without the second factor"),
	COUNT("security.authentication.mfa.window", "1", 0, 10, E,
	      "TOTP steps accepted either side of now (clock drift)"),
	SECS("security.authentication.lockout.interval", "900", 1, 30 * DAY, E,
	     "failed logins count towards a lock within this time"),
	{ .path = "security.authentication.lockout.duration", .type = KW_CT_INT, .def = "900",
	  .expect = "a number of seconds", .min = 0, .max = 365 * DAY, E,
	  .help = "how long a lock after failed logins lasts (0: until unlocked)" },
	COUNT("security.authentication.lockout.backoffFactor", "2", 1, 16, E,
	      "each automatic lock that repeats an earlier one lasts this many times longer (1: as long)"),
	SECS("security.authentication.lockout.maxDuration", "86400", 1, 365 * DAY, E,
	     "no automatic lock lasts longer (at least lockout.duration)"),
	SECS("security.authentication.lockout.backoffWindow", "86400", 1, 365 * DAY, E,
	     "a lock within this time of the end of the last one repeats it"),
	BOOL("security.authorization.rbac.enabled", "true",
	     ALWAYS("every request is decided by roles, deny by default"), "role-based access control"),
	{ .path = "security.authorization.rbac.roles", .type = KW_CT_ROLES,
	  .def = "{\"developer\": {\"permissions\": [\"read\", \"write\", \"execute\"]},"
	  " \"reviewer\": {\"permissions\": [\"read\"]},"
	  " \"admin\": {\"permissions\": [\"*\"]}}",
	  .expect = "an object of role names to {\"permissions\": [...]}", E,
	  .help = "roles and their permissions" },
	SECS("security.session.timeout", "3600", 1, 30 * DAY, E, "idle time after which a session ends"),
	COUNT("security.session.maxSessions", "5", 1, 1000, E, "sessions one user may hold"),
	BOOL("security.session.requireReauth", "true", E, "sessions end after reauthInterval"),
	SECS("security.session.reauthInterval", "86400", 60, 365 * DAY, E, "absolute session lifetime"),

	/* Incident response. */
	BOOL("security.incidentResponse.enabled", "true", E, "open incidents on blocks"),
	BOOL("security.incidentResponse.autoBlock", "true", E, "lock the account on an incident"),
	BOOL("security.incidentResponse.notifyAdmin", "true", E, "mail the admin on an incident"),
	BOOL("security.incidentResponse.logIncidents", "true", E, "write incidents to incidentLogPath"),
	STR("security.incidentResponse.incidentLogPath", "\"incidents.log\"", E,
	    "incident log (relative paths are inside broker.dataDir)"),

	/* Updates are the package manager's business; accepted so guide configs load. */
	BOOL("security.autoUpdate", "false", ALWAYS("updates come from packages"),
	     "accepted for compatibility; updates come from packages"),
	BOOL("security.autoUpdateSecurity", "false", ALWAYS("updates come from packages"),
	     "accepted for compatibility"),
};

const struct kw_config_key *
kw_config_schema(size_t *ret_n)
{
	*ret_n = KW_ELEMENTSOF(schema);
	return schema;
}

const struct kw_config_key *
kw_config_schema_lookup(const char *path)
{
	for (size_t i = 0; i < KW_ELEMENTSOF(schema); i++)
		if (strcmp(schema[i].path, path) == 0)
			return &schema[i];
	return NULL;
}
