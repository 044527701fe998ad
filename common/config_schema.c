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

#define DAY 86400LL
#define BOOL(p, d, h)	{ p, KW_CT_BOOL, d, "true or false", 0, 0, NULL, false, false, h }
#define SECS(p, d, lo, hi, h) { p, KW_CT_INT, d, "a number of seconds", lo, hi, NULL, false, false, h }
#define COUNT(p, d, lo, hi, h) { p, KW_CT_INT, d, "a whole number", lo, hi, NULL, false, false, h }
#define DAYS(p, d, lo, hi, h) { p, KW_CT_INT, d, "a number of days", lo, hi, NULL, false, false, h }
#define STR(p, d, h)	{ p, KW_CT_STRING, d, "a string", 0, 0, NULL, false, false, h }
#define PATH(p, d, h)	{ p, KW_CT_STRING, d, "an absolute path", 0, 0, NULL, false, true, h }
#define SECRET(p, d, h)	{ p, KW_CT_STRING, d, "a string", 0, 0, NULL, true, false, h }
#define ENUM(p, d, c, e, h) { p, KW_CT_ENUM, d, e, 0, 0, c, false, false, h }
#define LIST(p, d, h)	{ p, KW_CT_STRINGS, d, "a list of strings", 0, 0, NULL, false, false, h }

static const struct kw_config_key schema[] = {
	/* The broker's own settings. */
	PATH("broker.socket", "\"" KW_SOCKET_DEFAULT "\"", "Unix socket the broker listens on"),
	PATH("broker.dataDir", "\"" KW_DATADIR_DEFAULT "\"", "directory for state.db, audit.db and keystore/"),
	{ "broker.socketMode", KW_CT_STRING, "\"0666\"", "an octal mode such as \"0660\"",
	  0, 0, NULL, false, false, "permissions of the socket; callers are told apart by SO_PEERCRED" },
	COUNT("broker.maxClients", "1024", 1, 65536, "connections served at once"),
	COUNT("broker.maxClientsPerUser", "64", 1, 65536, "connections one user may hold at once "
	      "(uid 0 and the broker's own user: no limit, and room is kept for them)"),
	SECS("broker.helloTimeout", "5", 1, 3600, "time a new connection has to complete the handshake"),
	SECS("broker.clientTimeout", "5", 1, 3600, "time a client has to finish a message it started"),
	SECS("broker.idleTimeout", "300", 1, 7 * DAY, "idle connections are closed after this"),
	COUNT("broker.uid", "-1", -1, 4294967294LL, "the broker's uid when it is neither root nor "
	      "the caller: the CLI trusts that socket instead of its own (-1: root or the caller)"),

	/* api.* */
	ENUM("api.keySource", "\"file\"", key_sources, "one of: file, keychain",
	     "where API keys live: encrypted files or the Secret Service keychain"),
	STR("api.keychainService", "\"anthropic-api-key\"", "keychain item attribute 'service'"),
	STR("api.verifyUrl", "\"\"", "HTTPS endpoint for a live key check (empty: format check only)"),
	SECS("api.rotationGrace", "86400", 0, 365 * DAY,
	     "how long the previous version stays readable after key rotate"),
	SECS("api.commandTimeout", "30", 1, 3600, "time limit for key import --from command:CMD"),
	BOOL("api.proxy.enabled", "false", "send outbound HTTPS through a proxy"),
	STR("api.proxy.host", "\"\"", "proxy host name"),
	COUNT("api.proxy.port", "8080", 1, 65535, "proxy port"),
	ENUM("api.proxy.protocol", "\"https\"", proxy_protocols, "one of: http, https", "proxy protocol"),
	ENUM("api.proxy.auth.type", "\"none\"", proxy_auth_types, "one of: none, basic", "proxy authentication"),
	STR("api.proxy.auth.username", "\"\"", "proxy user name (${VAR} reads the environment)"),
	SECRET("api.proxy.auth.password", "\"\"", "proxy password (prefer ${VAR}; a literal stays in this 0600 file)"),
	BOOL("api.proxy.verifyCertificate", "true", "verify the proxy's TLS certificate"),

	/* File system access (policy/). */
	LIST("security.allowedPaths", "[]", "paths tools may touch (empty: no allow-list)"),
	LIST("security.deniedPaths", "[\"/etc\", \"/root\", \"~/.ssh\"]", "paths tools may never touch"),
	BOOL("security.readOnly", "false", "refuse every write"),
	BOOL("security.sandbox.enabled", "false", "run tools in a sandbox"),
	BOOL("security.sandbox.allowNetwork", "false", "sandboxed tools may use the network"),
	BOOL("security.sandbox.allowExec", "false", "sandboxed tools may execute programs"),
	LIST("security.excludePatterns", "[\"**/.env\", \"**/.env.*\", \"**/secrets.json\", "
	     "\"**/credentials.json\", \"**/*.key\", \"**/*.pem\", \"**/id_rsa*\"]",
	     "files never shown to tools"),
	BOOL("security.detectSensitiveFiles", "true", "detect files that look like secrets"),
	LIST("security.sensitivePatterns", "[\"password\", \"api_key\", \"secret\", \"token\"]",
	     "words that mark a file as sensitive"),

	/* Data privacy. */
	BOOL("security.filters.enabled", "true", "redact sensitive data with the patterns below"),
	{ "security.filters.patterns", KW_CT_FILTERS,
	  "[{\"name\": \"email\", \"regex\": \"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\\\.[a-zA-Z]{2,}\", \"replacement\": \"[EMAIL]\"},"
	  " {\"name\": \"phone\", \"regex\": \"\\\\d{3}-\\\\d{3}-\\\\d{4}\", \"replacement\": \"[PHONE]\"},"
	  " {\"name\": \"ssn\", \"regex\": \"\\\\d{3}-\\\\d{2}-\\\\d{4}\", \"replacement\": \"[SSN]\"},"
	  " {\"name\": \"credit_card\", \"regex\": \"\\\\d{4}[\\\\s-]?\\\\d{4}[\\\\s-]?\\\\d{4}[\\\\s-]?\\\\d{4}\", \"replacement\": \"[CARD]\"}]",
	  "a list of {\"name\", \"regex\", \"replacement\"} objects", 0, 0, NULL, false, false,
	  "redaction patterns" },
	BOOL("security.autoRedact", "false", "redact tool output automatically"),
	BOOL("security.localProcessing.enabled", "true", "process data locally"),
	BOOL("security.localProcessing.preprocessLocally", "true", "preprocess data locally"),
	BOOL("security.localProcessing.cacheLocally", "true", "cache data locally"),

	/* Command execution (policy/). */
	LIST("security.execution.allowedCommands", "[\"git\", \"npm\", \"node\", \"python\"]",
	     "commands tools may run"),
	LIST("security.execution.deniedCommands", "[\"rm -rf\", \"dd\", \"mkfs\", \"sudo\"]",
	     "commands tools may never run"),
	BOOL("security.execution.requireConfirmation", "true", "ask before running a command"),
	BOOL("security.execution.whitelistMode", "false", "allow only the whitelist"),
	LIST("security.execution.whitelist", "[]", "commands allowed in whitelist mode"),
	BOOL("security.codeReview.enabled", "true", "scan generated code"),
	LIST("security.codeReview.rules", "[\"no-eval\", \"no-unsafe-regex\", \"no-sql-injection\", "
	     "\"no-xss\", \"no-hardcoded-secrets\"]", "code review rules"),
	ENUM("security.codeReview.severity", "\"error\"", severities,
	     "one of: error, warning, info", "severity of a rule violation"),

	/* Network. */
	BOOL("security.network.enforceHttps", "true", "refuse plain HTTP"),
	BOOL("security.network.verifyCertificates", "true", "verify TLS certificates"),
	LIST("security.network.allowedHosts", "[\"api.anthropic.com\", \"console.anthropic.com\"]",
	     "hosts outbound requests may reach"),
	BOOL("security.network.allowOutbound", "true", "allow outbound connections"),
	LIST("security.network.allowedDomains", "[\"anthropic.com\"]", "domains outbound requests may reach"),

	/* Audit. */
	BOOL("security.audit.enabled", "true", "keep the audit trail"),
	STR("security.audit.logFile", "\"\"", "also append each committed record as a JSON line here, as "
	    "stored (relative: inside broker.dataDir; empty: off)"),
	ENUM("security.audit.logLevel", "\"info\"", log_levels, "one of: debug, info, warn, error",
	     "broker log level"),
	LIST("security.audit.logActions", "[\"file_read\", \"file_write\", \"file_delete\", "
	     "\"command_execute\", \"api_call\"]", "tool actions the hook records"),
	BOOL("security.audit.includeTimestamp", "true", "records carry a timestamp"),
	BOOL("security.audit.includeUser", "true", "records carry the user"),
	BOOL("security.audit.includeContext", "true", "records carry metadata"),
	BOOL("security.audit.encrypt", "false", "seal record details to the auditor's key"),
	SECRET("security.audit.encryptionKey", "\"\"", "key that seals record details (prefer ${VAR})"),
	DAYS("security.audit.retention", "90", 1, 36500, "days records are kept"),
	BOOL("security.audit.autoArchive", "false", "archive records before pruning them"),
	SECS("security.audit.refusalWindow", "10", 0, 3600, "identical refusals of one user within "
	     "this time share one summary record with a count (0: every refusal its own record)"),
	COUNT("security.audit.refusalBurst", "5", 1, 1000, "identical refusals recorded one by one "
	      "in a window before the rest are counted"),
	{ "security.audit.minFreeSpace", KW_CT_INT, "100", "a number of megabytes", 0, 1048576,
	  NULL, false, false, "raise an alert when less is free for the audit store (0: off)" },

	/* Monitoring. */
	BOOL("security.monitoring.enabled", "true", "raise alerts"),
	{ "security.monitoring.alerts", KW_CT_ALERTS,
	  "[{\"type\": \"suspicious_activity\", \"threshold\": 5, \"action\": \"notify\"},"
	  " {\"type\": \"failed_authentication\", \"threshold\": 3, \"action\": \"block\"}]",
	  "a list of {\"type\", \"threshold\", \"action\"} objects", 0, 0, NULL, false, false,
	  "alert rules" },
	STR("security.monitoring.notificationEmail", "\"\"", "where alert mail goes (empty: no mail)"),
	SECS("security.monitoring.window", "900", 1, 30 * DAY,
	     "refusals count towards suspicious_activity within this time"),
	SECS("security.monitoring.rateLimit", "300", 0, 7 * DAY,
	     "at most one alert per type and user within this time"),
	STR("security.monitoring.smtp.url", "\"smtp://127.0.0.1:25\"",
	    "mail server for alert mail (smtp:// or smtps://)"),
	STR("security.monitoring.smtp.from", "\"keywarden@localhost\"", "sender of alert mail"),
	STR("security.monitoring.webhookUrl", "\"\"", "URL alerts are posted to as JSON (empty: none)"),

	/* Compliance. */
	BOOL("security.compliance.gdpr.enabled", "false", "GDPR features"),
	DAYS("security.compliance.gdpr.dataRetention", "30", 1, 36500,
	     "days the pseudonyms of departed users are kept (with gdpr.enabled)"),
	BOOL("security.compliance.gdpr.rightToErasure", "true", "allow erasing a user"),
	BOOL("security.compliance.gdpr.dataPortability", "true", "allow exporting a user"),
	BOOL("security.compliance.soc2.enabled", "false", "SOC 2 controls"),
	BOOL("security.compliance.soc2.auditTrail", "true", "SOC 2: audit trail"),
	BOOL("security.compliance.soc2.accessControl", "true", "SOC 2: access control"),
	BOOL("security.compliance.soc2.encryption", "true", "SOC 2: encryption"),
	STR("security.compliance.dataResidency.region", "\"\"", "region keys must stay in (e.g. us-east-1)"),
	BOOL("security.compliance.dataResidency.enforceRegion", "false", "refuse KMS keys outside region"),

	/* Encryption. */
	BOOL("security.encryption.inTransit.enabled", "true", "TLS for TCP clients"),
	ENUM("security.encryption.inTransit.protocol", "\"TLS1.3\"", tls_versions,
	     "one of: TLS1.2, TLS1.3", "lowest TLS version"),
	LIST("security.encryption.inTransit.cipherSuites", "[\"TLS_AES_256_GCM_SHA384\", "
	     "\"TLS_CHACHA20_POLY1305_SHA256\"]", "TLS 1.3 cipher suites"),
	BOOL("security.encryption.atRest.enabled", "true", "encrypt stored keys"),
	ENUM("security.encryption.atRest.algorithm", "\"AES-256-GCM\"", algorithms,
	     "AES-256-GCM", "cipher for stored keys"),
	ENUM("security.encryption.atRest.keySource", "\"local\"", at_rest_sources,
	     "one of: local, passphrase, pkcs11, aws-kms, kms", "master key provider"),
	STR("security.encryption.atRest.kmsKeyId", "\"\"", "KMS key ARN or pkcs11: URI"),
	STR("security.encryption.atRest.passphraseFile", "\"\"",
	    "passphrase provider: file holding the passphrase (empty: the systemd credential "
	    "keywarden-passphrase)"),
	STR("security.encryption.atRest.endpoint", "\"\"",
	    "aws-kms: endpoint URL (empty: https://kms.REGION.amazonaws.com)"),
	BOOL("security.encryption.e2e.enabled", "false", "end-to-end encryption"),
	STR("security.encryption.e2e.publicKey", "\"\"", "recipient public key"),

	/* Authentication, authorization, sessions. */
	BOOL("security.authentication.mfa.enabled", "true", "second factor on login"),
	ENUM("security.authentication.mfa.method", "\"totp\"", mfa_methods, "totp", "second factor"),
	BOOL("security.authentication.mfa.required", "true", "no session without the second factor"),
	COUNT("security.authentication.mfa.window", "1", 0, 10,
	      "TOTP steps accepted either side of now (clock drift)"),
	SECS("security.authentication.lockout.interval", "900", 1, 30 * DAY,
	     "failed logins count towards a lock within this time"),
	{ "security.authentication.lockout.duration", KW_CT_INT, "900", "a number of seconds", 0,
	  365 * DAY, NULL, false, false, "how long a lock after failed logins lasts (0: until unlocked)" },
	COUNT("security.authentication.lockout.backoffFactor", "2", 1, 16,
	      "each automatic lock that repeats an earlier one lasts this many times longer (1: as long)"),
	SECS("security.authentication.lockout.maxDuration", "86400", 1, 365 * DAY,
	     "no automatic lock lasts longer (at least lockout.duration)"),
	SECS("security.authentication.lockout.backoffWindow", "86400", 1, 365 * DAY,
	     "a lock within this time of the end of the last one repeats it"),
	BOOL("security.authorization.rbac.enabled", "true", "role-based access control"),
	{ "security.authorization.rbac.roles", KW_CT_ROLES,
	  "{\"developer\": {\"permissions\": [\"read\", \"write\", \"execute\"]},"
	  " \"reviewer\": {\"permissions\": [\"read\"]},"
	  " \"admin\": {\"permissions\": [\"*\"]}}",
	  "an object of role names to {\"permissions\": [...]}", 0, 0, NULL, false, false,
	  "roles and their permissions" },
	SECS("security.session.timeout", "3600", 1, 30 * DAY, "idle time after which a session ends"),
	COUNT("security.session.maxSessions", "5", 1, 1000, "sessions one user may hold"),
	BOOL("security.session.requireReauth", "true", "sessions end after reauthInterval"),
	SECS("security.session.reauthInterval", "86400", 60, 365 * DAY, "absolute session lifetime"),

	/* Incident response. */
	BOOL("security.incidentResponse.enabled", "true", "open incidents on blocks"),
	BOOL("security.incidentResponse.autoBlock", "true", "lock the account on an incident"),
	BOOL("security.incidentResponse.notifyAdmin", "true", "mail the admin on an incident"),
	BOOL("security.incidentResponse.logIncidents", "true", "write incidents to incidentLogPath"),
	STR("security.incidentResponse.incidentLogPath", "\"incidents.log\"",
	    "incident log (relative paths are inside broker.dataDir)"),

	/* Updates are the package manager's business; accepted so guide configs load. */
	BOOL("security.autoUpdate", "false", "accepted for compatibility; updates come from packages"),
	BOOL("security.autoUpdateSecurity", "false", "accepted for compatibility"),
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
