/*
 * config.c - loading, validating and editing the configuration (config.h).
 *
 * The effective configuration is one JSON tree: the schema's defaults with
 * the file's values laid over them.  Validation walks the file's tree, so
 * every message names the exact path of what is wrong.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "common/fsutil.h"
#include "common/errors.h"
#include "common/log.h"
#include "common/names.h"
#include "common/perm.h"

#define KW_CONFIG_MAX_BYTES (1024 * 1024)

struct kw_config {
	json_t *root;
	json_t *set;		/* dotted paths the file gave a value: true */
	char digest[KW_CONFIG_DIGEST_LEN];	/* of the text it was parsed from, or "defaults" */
};

static const char *const alert_types[] = { "suspicious_activity", "failed_authentication", NULL };
/* Members each entry of a roles, alerts or filters value may have. */
static const char *const role_keys[] = { "permissions", NULL };
static const char *const alert_keys[] = { "type", "threshold", "action", "window", NULL };
static const char *const filter_keys[] = { "name", "regex", "replacement", NULL };
static const char *const secret_rule_keys[] = { "id", "regex", "keywords", "description",
	"entropy", NULL };
static const char *const alert_actions[] = { "notify", "block", NULL };

/* Set value (transferred) at a dotted path, creating objects on the way. */
static int
tree_set(json_t *root, const char *path, json_t *value)
{
	char buf[256];
	json_t *node = root;
	char *seg, *dot;

	if (strlen(path) >= sizeof(buf)) {
		json_decref(value);
		return KW_ERR_INVALID;
	}
	strcpy(buf, path);
	seg = buf;
	while ((dot = strchr(seg, '.'))) {
		*dot = '\0';
		json_t *next = json_object_get(node, seg);
		if (!json_is_object(next)) {
			next = json_object();
			if (!next || json_object_set_new(node, seg, next) < 0) {
				json_decref(value);
				return KW_ERR_NOMEM;
			}
		}
		node = next;
		seg = dot + 1;
	}
	return json_object_set_new(node, seg, value) < 0 ? KW_ERR_NOMEM : 0;
}

static json_t *
tree_get(json_t *root, const char *path)
{
	char buf[256];
	json_t *node = root;
	char *seg, *dot;

	if (strlen(path) >= sizeof(buf))
		return NULL;
	strcpy(buf, path);
	seg = buf;
	while ((dot = strchr(seg, '.'))) {
		*dot = '\0';
		node = json_object_get(node, seg);
		seg = dot + 1;
	}
	return json_object_get(node, seg);
}

struct kw_config *
kw_config_new_default(void)
{
	struct kw_config *cfg = calloc(1, sizeof(*cfg));
	const struct kw_config_key *schema;
	size_t n;

	if (!cfg || !(cfg->root = json_object()) || !(cfg->set = json_object()))
		goto fail;
	snprintf(cfg->digest, sizeof(cfg->digest), "defaults");
	schema = kw_config_schema(&n);
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_loads(schema[i].def, JSON_DECODE_ANY, NULL);
		/* A default that does not parse is a bug in the table, not input. */
		if (!v)
			abort();
		if (tree_set(cfg->root, schema[i].path, v) < 0)
			goto fail;
	}
	return cfg;
 fail:
	kw_config_free(cfg);
	return NULL;
}

void
kw_config_free(struct kw_config *cfg)
{
	if (!cfg)
		return;
	json_decref(cfg->root);
	json_decref(cfg->set);
	free(cfg);
}

static bool
in_list(const char *const *list, const char *s)
{
	for (; list && *list; list++)
		if (strcmp(*list, s) == 0)
			return true;
	return false;
}

static int
fail(char *err, size_t err_len, const char *path, const char *expect)
{
	snprintf(err, err_len, "%s: expected %s", path, expect);
	return KW_ERR_CONFIG;
}

static int
check_strings(const char *path, json_t *v, bool allow_empty_list, char *err, size_t err_len)
{
	size_t i;
	json_t *e;

	if (!json_is_array(v))
		return fail(err, err_len, path, "a list of strings");
	if (!allow_empty_list && json_array_size(v) == 0)
		return fail(err, err_len, path, "a non-empty list of strings");
	json_array_foreach(v, i, e) {
		if (!json_is_string(e) || json_string_length(e) == 0) {
			snprintf(err, err_len, "%s[%zu]: expected a non-empty string", path, i);
			return KW_ERR_CONFIG;
		}
	}
	return 0;
}

static int
check_roles(const char *path, json_t *v, char *err, size_t err_len)
{
	const char *name;
	json_t *role;
	char sub[320];

	if (!json_is_object(v))
		return fail(err, err_len, path, "an object of role names to {\"permissions\": [...]}");
	json_object_foreach(v, name, role) {
		if (!kw_name_ok(KW_NAME_ROLE, name)) {
			snprintf(err, err_len, "%s.%.64s: role names are 1-64 letters, digits, '_' or '-', "
			    "not starting with '-'",
			    path, name);
			return KW_ERR_CONFIG;
		}
		snprintf(sub, sizeof(sub), "%s.%s", path, name);
		if (!json_is_object(role))
			return fail(err, err_len, sub, "an object with \"permissions\"");
		const char *k;
		json_t *kv;
		json_object_foreach(role, k, kv)
			if (!in_list(role_keys, k))
				kw_log_warn("config: %s.%.64s: unknown key, ignored", sub, k);
		snprintf(sub, sizeof(sub), "%s.%s.permissions", path, name);
		json_t *perms = json_object_get(role, "permissions");
		if (!perms)
			return fail(err, err_len, sub, "a list of permissions (missing)");
		int r = check_strings(sub, perms, true, err, err_len);
		if (r < 0)
			return r;
		size_t i;
		json_t *p;
		json_array_foreach(perms, i, p) {
			struct kw_perm parsed;
			char why[320];
			if (kw_perm_parse(json_string_value(p), &parsed, why, sizeof(why)) < 0) {
				snprintf(err, err_len, "%s[%zu]: %s", sub, i, why);
				return KW_ERR_CONFIG;
			}
		}
	}
	return 0;
}

/* security.api.budgets: {"ROLE": {"dailyTokens": N}}, N a whole number of tokens. */
static const char *const budget_keys[] = { "dailyTokens", NULL };

static int
check_budgets(const char *path, json_t *v, char *err, size_t err_len)
{
	const char *name, *k;
	json_t *b, *kv, *n;
	char sub[320];

	if (!json_is_object(v))
		return fail(err, err_len, path, "an object of role names to {\"dailyTokens\": N}");
	json_object_foreach(v, name, b) {
		if (!kw_name_ok(KW_NAME_ROLE, name)) {
			snprintf(err, err_len, "%s.%.64s: role names are 1-64 letters, digits, '_' or "
			    "'-', not starting with '-'", path, name);
			return KW_ERR_CONFIG;
		}
		snprintf(sub, sizeof(sub), "%s.%s", path, name);
		if (!json_is_object(b))
			return fail(err, err_len, sub, "an object such as {\"dailyTokens\": 1000000}");
		json_object_foreach(b, k, kv)
			if (strcmp(k, "dailyTokens") != 0)
				kw_log_warn("config: %s.%.64s: unknown key, ignored", sub, k);
		snprintf(sub, sizeof(sub), "%s.%s.dailyTokens", path, name);
		n = json_object_get(b, "dailyTokens");
		if (!n)
			return fail(err, err_len, sub, "a whole number of tokens per UTC day (missing)");
		if (!json_is_integer(n) || json_integer_value(n) < 0)
			return fail(err, err_len, sub, "a whole number of tokens per UTC day, 0 or more");
	}
	return 0;
}

/* Members of an object inside a list: required string/enum/int fields. */
static int
check_member_string(const char *path, size_t i, json_t *obj, const char *name,
    const char *const *choices, const char *expect, char *err, size_t err_len)
{
	json_t *v = json_object_get(obj, name);

	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    (choices && !in_list(choices, json_string_value(v)))) {
		snprintf(err, err_len, "%s[%zu].%s: expected %s%s", path, i, name, expect,
		    v ? "" : " (missing)");
		return KW_ERR_CONFIG;
	}
	return 0;
}

static void
warn_extra_members(const char *path, size_t i, json_t *obj, const char *const *known)
{
	const char *k;
	json_t *v;

	json_object_foreach(obj, k, v)
		if (!in_list(known, k))
			kw_log_warn("config: %s[%zu].%.64s: unknown key, ignored", path, i, k);
}

static int
check_alerts(const char *path, json_t *v, char *err, size_t err_len)
{
	size_t i;
	json_t *a;
	int r;

	if (!json_is_array(v))
		return fail(err, err_len, path, "a list of {\"type\", \"threshold\", \"action\"} objects");
	json_array_foreach(v, i, a) {
		if (!json_is_object(a)) {
			snprintf(err, err_len, "%s[%zu]: expected an object", path, i);
			return KW_ERR_CONFIG;
		}
		if ((r = check_member_string(path, i, a, "type", alert_types,
		    "one of: suspicious_activity, failed_authentication", err, err_len)) < 0 ||
		    (r = check_member_string(path, i, a, "action", alert_actions,
		    "one of: notify, block", err, err_len)) < 0)
			return r;
		json_t *t = json_object_get(a, "threshold");
		if (!json_is_integer(t) || json_integer_value(t) < 1 ||
		    json_integer_value(t) > 1000000) {
			snprintf(err, err_len, "%s[%zu].threshold: expected a whole number from 1 to 1000000",
			    path, i);
			return KW_ERR_CONFIG;
		}
		json_t *w = json_object_get(a, "window");
		if (w && (!json_is_integer(w) || json_integer_value(w) < 1 ||
		    json_integer_value(w) > 30 * 86400)) {
			snprintf(err, err_len, "%s[%zu].window: expected a number of seconds", path, i);
			return KW_ERR_CONFIG;
		}
		warn_extra_members(path, i, a, alert_keys);
	}
	return 0;
}

static int
check_filters(const char *path, json_t *v, char *err, size_t err_len)
{
	size_t i;
	json_t *f;
	int r;

	if (!json_is_array(v))
		return fail(err, err_len, path, "a list of {\"name\", \"regex\", \"replacement\"} objects");
	json_array_foreach(v, i, f) {
		if (!json_is_object(f)) {
			snprintf(err, err_len, "%s[%zu]: expected an object", path, i);
			return KW_ERR_CONFIG;
		}
		if ((r = check_member_string(path, i, f, "name", NULL, "a string", err, err_len)) < 0 ||
		    (r = check_member_string(path, i, f, "regex", NULL, "a regular expression",
		    err, err_len)) < 0)
			return r;
		if (!json_is_string(json_object_get(f, "replacement"))) {
			snprintf(err, err_len, "%s[%zu].replacement: expected a string", path, i);
			return KW_ERR_CONFIG;
		}
		warn_extra_members(path, i, f, filter_keys);
	}
	return 0;
}

/* A rule's optional members: keywords (non-empty strings), description, entropy. */
static int
check_secret_rule_extras(const char *path, size_t i, json_t *rule, char *err, size_t err_len)
{
	json_t *kws = json_object_get(rule, "keywords"), *kw, *desc, *ent;
	size_t j;

	if (kws && !json_is_array(kws))
		goto bad_keywords;
	json_array_foreach(kws, j, kw)
		if (!json_is_string(kw) || json_string_length(kw) == 0 ||
		    strlen(json_string_value(kw)) != json_string_length(kw))
			goto bad_keywords;
	if ((desc = json_object_get(rule, "description")) && !json_is_string(desc)) {
		snprintf(err, err_len, "%s[%zu].description: expected a string", path, i);
		return KW_ERR_CONFIG;
	}
	if ((ent = json_object_get(rule, "entropy")) &&
	    (!json_is_number(ent) || json_number_value(ent) < 0 || json_number_value(ent) > 8)) {
		snprintf(err, err_len, "%s[%zu].entropy: expected bits per character from 0 to 8",
		    path, i);
		return KW_ERR_CONFIG;
	}
	return 0;
 bad_keywords:
	snprintf(err, err_len, "%s[%zu].keywords: expected a list of non-empty strings", path, i);
	return KW_ERR_CONFIG;
}

/* security.secrets.rules: [{"id", "regex", "keywords"?, "description"?, "entropy"?}] */
static int
check_secret_rules(const char *path, json_t *v, char *err, size_t err_len)
{
	size_t i;
	json_t *rule;
	int r;

	if (!json_is_array(v))
		return fail(err, err_len, path, "a list of {\"id\", \"regex\", \"keywords\"} objects");
	json_array_foreach(v, i, rule) {
		if (!json_is_object(rule)) {
			snprintf(err, err_len, "%s[%zu]: expected an object", path, i);
			return KW_ERR_CONFIG;
		}
		if ((r = check_member_string(path, i, rule, "id", NULL, "a string", err,
		    err_len)) < 0 ||
		    (r = check_member_string(path, i, rule, "regex", NULL, "a regular expression",
		    err, err_len)) < 0 ||
		    (r = check_secret_rule_extras(path, i, rule, err, err_len)) < 0)
			return r;
		warn_extra_members(path, i, rule, secret_rule_keys);
	}
	return 0;
}

static bool
octal_mode(const char *s)
{
	char *end;
	long m;

	if (!s || s[0] != '0' || strlen(s) != 4)
		return false;
	errno = 0;
	m = strtol(s, &end, 8);
	return errno == 0 && *end == '\0' && m >= 0 && m <= 0777;
}

int
kw_config_check_value(const struct kw_config_key *key, const char *path,
    json_t *v, char *err, size_t err_len)
{
	switch (key->type) {
	case KW_CT_BOOL:
		return json_is_boolean(v) ? 0 : fail(err, err_len, path, key->expect);
	case KW_CT_INT:
		if (!json_is_integer(v))
			return fail(err, err_len, path, key->expect);
		if (json_integer_value(v) < key->min || json_integer_value(v) > key->max) {
			snprintf(err, err_len, "%s: expected %s from %lld to %lld", path,
			    key->expect, key->min, key->max);
			return KW_ERR_CONFIG;
		}
		return 0;
	case KW_CT_STRING:
		if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
			return fail(err, err_len, path, key->expect);
		if (strcmp(key->path, "broker.socketMode") == 0 &&
		    !octal_mode(json_string_value(v)))
			return fail(err, err_len, path, key->expect);
		if (key->abs_path && json_string_value(v)[0] != '/')
			return fail(err, err_len, path, "an absolute path");
		/* sun_path holds 108 bytes with the terminating NUL. */
		if (strcmp(key->path, "broker.socket") == 0 && json_string_length(v) > 107)
			return fail(err, err_len, path, "a socket path of at most 107 bytes");
		return 0;
	case KW_CT_ENUM:
		if (!json_is_string(v) || !in_list(key->choices, json_string_value(v)))
			return fail(err, err_len, path, key->expect);
		return 0;
	case KW_CT_STRINGS:
		return check_strings(path, v, true, err, err_len);
	case KW_CT_ROLES:
		return check_roles(path, v, err, err_len);
	case KW_CT_ALERTS:
		return check_alerts(path, v, err, err_len);
	case KW_CT_FILTERS:
		return check_filters(path, v, err, err_len);
	case KW_CT_SECRET_RULES:
		return check_secret_rules(path, v, err, err_len);
	case KW_CT_BUDGETS:
		return check_budgets(path, v, err, err_len);
	}
	return fail(err, err_len, path, "a known type");
}

/* Drop members of one object that are not in known (they were warned about). */
static void
keep_known(json_t *obj, const char *const *known)
{
	const char *k;
	json_t *v;
	void *tmp;

	json_object_foreach_safe(obj, tmp, k, v)
		if (!in_list(known, k))
			json_object_del(obj, k);
}

/* The effective config holds only what the schema knows. */
static void
strip_unknown(enum kw_config_type type, json_t *v)
{
	const char *k;
	json_t *e;
	size_t i;

	if (type == KW_CT_ROLES)
		json_object_foreach(v, k, e)
			keep_known(e, role_keys);
	else if (type == KW_CT_ALERTS)
		json_array_foreach(v, i, e)
			keep_known(e, alert_keys);
	else if (type == KW_CT_FILTERS)
		json_array_foreach(v, i, e)
			keep_known(e, filter_keys);
	else if (type == KW_CT_SECRET_RULES)
		json_array_foreach(v, i, e)
			keep_known(e, secret_rule_keys);
	else if (type == KW_CT_BUDGETS)
		json_object_foreach(v, k, e)
			keep_known(e, budget_keys);
}

/* True when some schema key lies below path (path is an inner object). */
static bool
is_section(const char *path)
{
	const struct kw_config_key *schema;
	size_t n, len = strlen(path);

	schema = kw_config_schema(&n);
	for (size_t i = 0; i < n; i++)
		if (strncmp(schema[i].path, path, len) == 0 && schema[i].path[len] == '.')
			return true;
	return false;
}

/* Walk the file's object at `prefix`, validating and copying into cfg. */
static int
merge_object(struct kw_config *cfg, const char *prefix, json_t *obj, char *err, size_t err_len)
{
	const char *k;
	json_t *v;
	char path[256];
	int r;

	json_object_foreach(obj, k, v) {
		if ((size_t)snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", k)
		    >= sizeof(path) || strchr(k, '.') || strlen(k) == 0) {
			kw_log_warn("config: %.64s%s%.64s: unknown key, ignored", prefix,
			    *prefix ? "." : "", k);
			continue;
		}
		if (strcmp(path, "api.key") == 0) {
			snprintf(err, err_len, "api.key: an API key must not be stored in the "
			    "configuration file; use 'keywarden key set' instead");
			return KW_ERR_CONFIG;
		}
		const struct kw_config_key *key = kw_config_schema_lookup(path);
		if (key) {
			if ((r = kw_config_check_value(key, path, v, err, err_len)) < 0)
				return r;
			json_t *copy = json_deep_copy(v);
			strip_unknown(key->type, copy);
			/* Roles in the file add to or replace single built-in roles, not all of them. */
			if (key->type == KW_CT_ROLES) {
				r = json_object_update(tree_get(cfg->root, path), copy) < 0 ?
				    KW_ERR_NOMEM : 0;
				json_decref(copy);
			} else {
				r = tree_set(cfg->root, path, copy);
			}
			if (r < 0 || json_object_set_new(cfg->set, path, json_true()) < 0)
				return r < 0 ? r : KW_ERR_NOMEM;
		} else if (is_section(path)) {
			if (!json_is_object(v))
				return fail(err, err_len, path, "an object");
			if ((r = merge_object(cfg, path, v, err, err_len)) < 0)
				return r;
		} else {
			kw_log_warn("config: %s: unknown key, ignored", path);
		}
	}
	return 0;
}

/* The SHA-256 of a configuration's text, in hex: what tells two versions of a file apart. */
static void
digest_text(const char *text, size_t len, char out[KW_CONFIG_DIGEST_LEN])
{
	unsigned char d[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(d, (const unsigned char *)text, len);
	sodium_bin2hex(out, KW_CONFIG_DIGEST_LEN, d, sizeof(d));
}

int
kw_config_parse(const char *text, size_t len, struct kw_config **ret_cfg,
    char *err, size_t err_len)
{
	struct kw_config *cfg = NULL;
	json_error_t jerr;
	json_t *doc;
	int r;

	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		/* jansson quotes the text near the error, which may be a secret value. */
		char *near = strstr(jerr.text, " near ");
		if (near)
			*near = '\0';
		snprintf(err, err_len, "line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
		return KW_ERR_CONFIG;
	}
	if (!json_is_object(doc)) {
		snprintf(err, err_len, "the configuration must be a JSON object");
		r = KW_ERR_CONFIG;
		goto out;
	}
	if (!(cfg = kw_config_new_default())) {
		r = KW_ERR_NOMEM;
		goto out;
	}
	if ((r = merge_object(cfg, "", doc, err, err_len)) < 0)
		goto out;
	digest_text(text, len, cfg->digest);
	*ret_cfg = TAKE_PTR(cfg);
	r = 0;
 out:
	kw_config_free(cfg);
	json_decref(doc);
	return r;
}

/* The trust checks a configuration file must pass before it is believed. */
static int
check_file(int fd, const char *file, char *err, size_t err_len)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		snprintf(err, err_len, "%s: %s", file, strerror(errno));
		return KW_ERR_IO;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, err_len, "%s: not a regular file", file);
		return KW_ERR_DENIED;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		snprintf(err, err_len, "%s: refused: owned by uid %u, not by uid %u or root",
		    file, (unsigned)st.st_uid, (unsigned)geteuid());
		return KW_ERR_DENIED;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, err_len, "%s: refused: writable by %s (mode %04o); run chmod 600 %s",
		    file, (st.st_mode & S_IWOTH) ? "everyone" : "its group",
		    (unsigned)(st.st_mode & 07777), file);
		return KW_ERR_DENIED;
	}
	return 0;
}

/* A config file's text may hold secrets (a proxy password, a key): wiped when freed. */
static void
wipe_freep(char **p)
{
	if (*p) {
		sodium_memzero(*p, malloc_usable_size(*p));
		free(*p);
	}
}
#define _cleanup_wipe_ _cleanup_(wipe_freep)

/* Open and read a config file after the trust checks; ENOENT is returned as such. */
static int
read_config_file(const char *file, char **ret_text, size_t *ret_len, char *err, size_t err_len)
{
	/* O_NONBLOCK: a FIFO planted at the path must not hang us before the checks. */
	_cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	int r;

	if (fd < 0) {
		snprintf(err, err_len, "%s: %s", file, strerror(errno));
		return errno == ENOENT ? KW_ERR_NOT_FOUND : KW_ERR_IO;
	}
	if ((r = check_file(fd, file, err, err_len)) < 0)
		return r;
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	r = kw_read_fd(fd, KW_CONFIG_MAX_BYTES, ret_text, ret_len);
	if (r == KW_ERR_INVALID)
		snprintf(err, err_len, "%s: larger than %d bytes", file, KW_CONFIG_MAX_BYTES);
	else if (r < 0)
		snprintf(err, err_len, "%s: %s", file, strerror(errno));
	return r;
}

int
kw_config_load(const char *file, bool missing_ok, struct kw_config **ret_cfg,
    char *err, size_t err_len)
{
	_cleanup_wipe_ char *text = NULL;
	char why[512];
	size_t len;
	int r;

	r = read_config_file(file, &text, &len, err, err_len);
	if (r == KW_ERR_NOT_FOUND && missing_ok) {
		*ret_cfg = kw_config_new_default();
		return *ret_cfg ? 0 : KW_ERR_NOMEM;
	}
	if (r < 0)
		return r;
	if ((r = kw_config_parse(text, len, ret_cfg, why, sizeof(why))) < 0)
		snprintf(err, err_len, "%s: %s", file, why);
	return r;
}

const char *
kw_config_digest(const struct kw_config *cfg)
{
	return cfg->digest;
}

json_t *
kw_config_get(const struct kw_config *cfg, const char *path)
{
	return tree_get(cfg->root, path);
}

bool
kw_config_is_set(const struct kw_config *cfg, const char *path)
{
	return json_object_get(cfg->set, path) != NULL;
}

const char *
kw_config_unenforced_text(const struct kw_config_key *key, char *buf, size_t len)
{
	if (key->enforced)
		return NULL;
	snprintf(buf, len, "%s is accepted but not enforced %s", key->path,
	    key->not_enforced ? key->not_enforced : "yet");
	return buf;
}

const char *
kw_config_str(const struct kw_config *cfg, const char *path)
{
	json_t *v = tree_get(cfg->root, path);

	if (!json_is_string(v))
		abort();
	return json_string_value(v);
}

long long
kw_config_int(const struct kw_config *cfg, const char *path)
{
	json_t *v = tree_get(cfg->root, path);

	if (!json_is_integer(v))
		abort();
	return json_integer_value(v);
}

bool
kw_config_bool(const struct kw_config *cfg, const char *path)
{
	json_t *v = tree_get(cfg->root, path);

	if (!json_is_boolean(v))
		abort();
	return json_is_true(v);
}

int
kw_config_value_from_arg(const struct kw_config_key *key, const char *arg,
    json_t **ret_value, char *err, size_t err_len)
{
	json_t *v = json_loads(arg, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	int r;

	/* A bare word for a string key is the string itself: `set api.keySource keychain`. */
	if (v && (key->type == KW_CT_STRING || key->type == KW_CT_ENUM) && !json_is_string(v)) {
		json_decref(v);
		v = NULL;
	}
	if (!v && !(v = json_string(arg))) {
		snprintf(err, err_len, "%s: expected %s", key->path, key->expect);
		return KW_ERR_CONFIG;
	}
	if ((r = kw_config_check_value(key, key->path, v, err, err_len)) < 0) {
		json_decref(v);
		return r;
	}
	*ret_value = v;
	return 0;
}

int
kw_config_file_set(const char *file, const char *path, json_t *value,
    char *err, size_t err_len)
{
	_cleanup_wipe_ char *text = NULL, *out = NULL;
	_cleanup_free_ char *dir = NULL;
	struct kw_config *check = NULL;
	json_t *doc = NULL;
	char why[512];
	size_t len;
	int r;

	if (!kw_config_schema_lookup(path)) {
		snprintf(err, err_len, "%.128s: unknown key", path);
		return KW_ERR_CONFIG;
	}
	r = read_config_file(file, &text, &len, err, err_len);
	if (r == KW_ERR_NOT_FOUND) {
		doc = json_object();
	} else if (r < 0) {
		return r;
	} else if (!(doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL)) ||
	    !json_is_object(doc)) {
		snprintf(err, err_len, "%s: not a valid configuration; fix it by hand first", file);
		r = KW_ERR_CONFIG;
		goto out;
	}
	if (!doc || (r = tree_set(doc, path, json_deep_copy(value))) < 0) {
		r = KW_ERR_NOMEM;
		goto out;
	}
	/* Refuse to write a file the broker would then refuse to start with. */
	if (!(out = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) ||
	    (r = kw_config_parse(out, strlen(out), &check, why, sizeof(why))) < 0) {
		snprintf(err, err_len, "%s: %s", file, out ? why : "out of memory");
		r = out ? KW_ERR_CONFIG : KW_ERR_NOMEM;
		goto out;
	}
	size_t olen = strlen(out);
	/* Not realloc: it would leave the old block unwiped. */
	char *grown = malloc(olen + 2);
	if (!grown) {
		r = KW_ERR_NOMEM;
		goto out;
	}
	memcpy(grown, out, olen);
	strcpy(grown + olen, "\n");
	wipe_freep(&out);
	out = grown;
	if ((dir = strdup(file)) && strrchr(dir, '/') && strrchr(dir, '/') != dir) {
		*strrchr(dir, '/') = '\0';
		if (kw_mkdir_p(dir, 0700) < 0) {
			snprintf(err, err_len, "%s: %s", dir, strerror(errno));
			r = KW_ERR_IO;
			goto out;
		}
	}
	if ((r = kw_write_atomic(file, out, olen + 1, 0600)) < 0)
		snprintf(err, err_len, "%s: %s", file, strerror(errno));
 out:
	kw_config_free(check);
	json_decref(doc);
	return r;
}
