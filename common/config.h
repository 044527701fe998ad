/*
 * config.h - keywarden's configuration: the JSON schema of the security
 * guide (security.*, api.*) plus the broker's own broker.* keys.
 *
 * A configuration is the built-in defaults with the file's values laid
 * over them, validated against one schema table (config_schema.c).  Values
 * are read by dotted path ("security.session.timeout").  Shared by the
 * broker and the CLI; messages go through log.h.  Role permissions are
 * checked with rbac's grammar (rbac/perm.h), so programs using this link
 * rbac/perm.c too.
 */
#ifndef KW_CONFIG_H
#define KW_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/macros.h"

#define KW_CONFIG_PATH_DEFAULT	"/etc/keywarden/config.json"
#define KW_SOCKET_DEFAULT	"/run/keywarden/broker.sock"
#define KW_DATADIR_DEFAULT	"/var/lib/keywarden"

struct kw_config;

/* Value kinds a schema entry can hold. */
enum kw_config_type {
	KW_CT_BOOL,
	KW_CT_INT,		/* integer within [min, max] */
	KW_CT_STRING,
	KW_CT_ENUM,		/* string from a fixed list */
	KW_CT_STRINGS,		/* array of strings */
	KW_CT_ROLES,		/* object: role name -> {"permissions": [..]} */
	KW_CT_ALERTS,		/* array of {type, threshold, action} */
	KW_CT_FILTERS,		/* array of {name, regex, replacement} */
	KW_CT_SECRET_RULES,	/* array of {id, regex, keywords?, description?, entropy?} */
	KW_CT_BUDGETS,		/* object: role name -> {"dailyTokens": N} */
};

struct kw_config_key {
	const char *path;		/* dotted path */
	enum kw_config_type type;
	const char *def;		/* default as JSON text */
	const char *expect;		/* "a number of seconds": used in errors */
	long long min, max;		/* KW_CT_INT bounds */
	const char *const *choices;	/* KW_CT_ENUM, NULL-terminated */
	bool secret;			/* masked by `config list/get` */
	bool abs_path;			/* KW_CT_STRING that must be an absolute path */
	const char *help;		/* one line for `config list` and the man page */
	/*
	 * Whether keywarden acts on the value today.  A key that is accepted
	 * (so a guide's configuration loads) but not acted on says why in
	 * not_enforced, which ends "KEY is accepted but not enforced ...".
	 */
	bool enforced;
	const char *not_enforced;
};

/* The schema, in display order; *ret_n gets the count.  Static storage. */
const struct kw_config_key *kw_config_schema(size_t *ret_n);
/* Schema entry for a dotted path, or NULL if the key is unknown. */
const struct kw_config_key *kw_config_schema_lookup(const char *path) KW_NONNULL(1);

/* A configuration holding only the defaults.  NULL on ENOMEM. */
struct kw_config *kw_config_new_default(void);

/*
 * Parse and validate JSON text (no file checks).  On success *ret_cfg is the
 * caller's.  Returns KW_ERR_CONFIG with "key.path: what was expected" in err
 * for the first invalid value or unparsable text ("config: line 3: ...").
 * Unknown keys are logged as warnings naming their path, and skipped.
 */
int kw_config_parse(const char *text, size_t len, struct kw_config **ret_cfg,
    char *err, size_t err_len) KW_WUR KW_NONNULL(1, 3, 4);

/*
 * Load a config file.  A missing file gives the defaults when missing_ok.
 * The file must be a regular file owned by the effective uid or root and
 * not writable by group or others, else KW_ERR_DENIED.  KW_ERR_IO when it
 * cannot be read, KW_ERR_CONFIG when invalid.  err always explains.
 */
int kw_config_load(const char *path, bool missing_ok, struct kw_config **ret_cfg,
    char *err, size_t err_len) KW_WUR KW_NONNULL(1, 3, 4);

/* Whether the file gave path a value (rather than the default). */
bool kw_config_is_set(const struct kw_config *cfg, const char *path) KW_NONNULL(1, 2);

/*
 * For a key that is not enforced, the one sentence every part says about
 * it, "KEY is accepted but not enforced yet (policy engine: ...)", in buf;
 * NULL for an enforced key.
 */
const char *kw_config_unenforced_text(const struct kw_config_key *key, char *buf, size_t len)
	KW_NONNULL(1, 2);

/* Room for kw_config_digest's text: 64 hex digits and a NUL. */
#define KW_CONFIG_DIGEST_LEN	65

/*
 * The SHA-256 (hex) of the text cfg was parsed from -- for a loaded file,
 * of the file's bytes as read -- or "defaults" for the built-in defaults (a
 * missing file).  Borrowed from cfg.
 */
const char *kw_config_digest(const struct kw_config *cfg) KW_NONNULL(1);

/* Free a configuration.  Accepts NULL. */
void kw_config_free(struct kw_config *cfg);

/* Effective value at a dotted path (borrowed), NULL for unknown paths. */
json_t *kw_config_get(const struct kw_config *cfg, const char *path) KW_NONNULL(1, 2);
/* Typed readers for known keys of that type; programming errors abort. */
const char *kw_config_str(const struct kw_config *cfg, const char *path) KW_NONNULL(1, 2);
long long kw_config_int(const struct kw_config *cfg, const char *path) KW_NONNULL(1, 2);
bool kw_config_bool(const struct kw_config *cfg, const char *path) KW_NONNULL(1, 2);

/*
 * Check one value against a key's schema entry.  0 or KW_ERR_CONFIG with
 * "path: expected ..." in err.
 */
int kw_config_check_value(const struct kw_config_key *key, const char *path,
    json_t *value, char *err, size_t err_len) KW_WUR KW_NONNULL(1, 2, 4);

/*
 * Turn a command-line word into a value for key, the way `config set`
 * reads it: JSON when it parses as JSON of the right kind, otherwise the
 * word itself as a string.  *ret_value is a new reference.
 */
int kw_config_value_from_arg(const struct kw_config_key *key, const char *arg,
    json_t **ret_value, char *err, size_t err_len) KW_WUR KW_NONNULL(1, 2, 3, 4);

/*
 * Set path to value (borrowed) in the config file at `path`, creating the
 * file (0600) and its parents (0700) if needed.  The file is rewritten
 * atomically and keeps mode 0600; the result is validated first.
 */
int kw_config_file_set(const char *file, const char *path, json_t *value,
    char *err, size_t err_len) KW_WUR KW_NONNULL(1, 2, 3, 4);

#endif
