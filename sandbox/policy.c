/*
 * policy.c - the sandbox policy: read from the broker's sandbox.begin
 * reply, then tightened (never loosened) by the user's profile file.
 *
 * Members of the broker's object: booleans "enabled", "allowNetwork",
 * "allowExec", "readOnly", "whitelistMode"; lists "allowedPaths",
 * "deniedPaths", "excludePatterns", "whitelist", "allowedHosts",
 * "allowedDomains"; the string "home".  Each is required: the broker
 * always sends them, and a missing deniedPaths read as "nothing denied"
 * would open what the administrator closed, so a reply without one is
 * refused with its name rather than given a default.  Optional:
 * "readOnlyPaths" (a list) and "profile" ("default").  A member of the
 * wrong type is refused with its name.  Paths must be absolute.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/errors.h"
#include "policy/match.h"
#include "sandbox/sandbox.h"

static void
strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void
kw_sandbox_policy_free(struct kw_sandbox_policy *p)
{
	if (!p)
		return;
	strv_free(p->allowed_paths, p->n_allowed);
	strv_free(p->read_only_paths, p->n_read_only);
	strv_free(p->denied_paths, p->n_denied);
	strv_free(p->exclude_patterns, p->n_exclude);
	strv_free(p->whitelist, p->n_whitelist);
	strv_free(p->allowed_hosts, p->n_hosts);
	strv_free(p->allowed_domains, p->n_domains);
	free(p->home);
	free(p->profile);
	free(p);
}

static int
get_bool(const json_t *obj, const char *name, bool *out, char *err, size_t err_len)
{
	json_t *v = json_object_get(obj, name);

	if (!v) {
		snprintf(err, err_len, "sandbox policy: \"%s\" is missing", name);
		return KW_ERR_INVALID;
	}
	if (!json_is_boolean(v)) {
		snprintf(err, err_len, "sandbox policy: \"%s\" must be true or false", name);
		return KW_ERR_INVALID;
	}
	*out = json_is_true(v);
	return 0;
}

/* A list of strings; paths (absolute) are normalised. */
static int
get_list(const json_t *obj, const char *name, bool paths, char ***out, size_t *n, char *err,
    size_t err_len)
{
	json_t *v = json_object_get(obj, name), *e;
	size_t i;

	*out = NULL;
	*n = 0;
	if (!v && strcmp(name, "readOnlyPaths") == 0)
		return 0;	/* a profile's; the broker sends none */
	if (!v) {
		snprintf(err, err_len, "sandbox policy: \"%s\" is missing", name);
		return KW_ERR_INVALID;
	}
	if (!json_is_array(v)) {
		snprintf(err, err_len, "sandbox policy: \"%s\" must be a list of strings", name);
		return KW_ERR_INVALID;
	}
	if (!(*out = calloc(json_array_size(v) + 1, sizeof(char *))))
		return KW_ERR_NOMEM;
	json_array_foreach(v, i, e) {
		char norm[4096];
		const char *s = json_string_value(e);

		if (!s || !*s) {
			snprintf(err, err_len, "sandbox policy: \"%s\"[%zu] must be a non-empty "
			    "string", name, i);
			return KW_ERR_INVALID;
		}
		if (paths) {
			if (kw_path_normalise(s, norm, sizeof(norm)) != 0) {
				snprintf(err, err_len, "sandbox policy: \"%s\"[%zu] must be an "
				    "absolute path", name, i);
				return KW_ERR_INVALID;
			}
			s = norm;
		}
		if (!((*out)[(*n)++] = strdup(s)))
			return KW_ERR_NOMEM;
	}
	return 0;
}

static int
get_str(const json_t *obj, const char *name, const char *def, char **out, char *err,
    size_t err_len)
{
	json_t *v = json_object_get(obj, name);

	if (v && !json_is_string(v)) {
		snprintf(err, err_len, "sandbox policy: \"%s\" must be a string", name);
		return KW_ERR_INVALID;
	}
	if (!v && !def) {
		*out = NULL;
		return 0;
	}
	return (*out = strdup(v ? json_string_value(v) : def)) ? 0 : KW_ERR_NOMEM;
}

int
kw_sandbox_policy_from_json(const json_t *obj, struct kw_sandbox_policy **ret, char *err,
    size_t err_len)
{
	struct kw_sandbox_policy *p = NULL;
	int r;

	*ret = NULL;
	if (json_typeof(obj) != JSON_OBJECT) {
		snprintf(err, err_len, "sandbox policy: not a JSON object");
		return KW_ERR_INVALID;
	}
	if (!(p = calloc(1, sizeof(*p))))
		return KW_ERR_NOMEM;
	if ((r = get_bool(obj, "enabled", &p->enabled, err, err_len)) != 0 ||
	    (r = get_bool(obj, "allowNetwork", &p->allow_network, err, err_len)) != 0 ||
	    (r = get_bool(obj, "allowExec", &p->allow_exec, err, err_len)) != 0 ||
	    (r = get_bool(obj, "readOnly", &p->read_only, err, err_len)) != 0 ||
	    (r = get_bool(obj, "whitelistMode", &p->whitelist_mode, err, err_len)) != 0 ||
	    (r = get_list(obj, "allowedPaths", true, &p->allowed_paths, &p->n_allowed, err,
	    err_len)) != 0 ||
	    (r = get_list(obj, "readOnlyPaths", true, &p->read_only_paths, &p->n_read_only, err,
	    err_len)) != 0 ||
	    (r = get_list(obj, "deniedPaths", true, &p->denied_paths, &p->n_denied, err,
	    err_len)) != 0 ||
	    (r = get_list(obj, "excludePatterns", false, &p->exclude_patterns, &p->n_exclude,
	    err, err_len)) != 0 ||
	    (r = get_list(obj, "whitelist", false, &p->whitelist, &p->n_whitelist, err,
	    err_len)) != 0 ||
	    (r = get_list(obj, "allowedHosts", false, &p->allowed_hosts, &p->n_hosts, err,
	    err_len)) != 0 ||
	    (r = get_list(obj, "allowedDomains", false, &p->allowed_domains, &p->n_domains, err,
	    err_len)) != 0 ||
	    (r = get_str(obj, "home", NULL, &p->home, err, err_len)) != 0 ||
	    (r = get_str(obj, "profile", "default", &p->profile, err, err_len)) != 0)
		goto out;
	if (!p->home || p->home[0] != '/') {
		snprintf(err, err_len, "sandbox policy: \"home\" must be an absolute path");
		r = KW_ERR_INVALID;
		goto out;
	}
	*ret = p;
	p = NULL;
	r = 0;
 out:
	kw_sandbox_policy_free(p);
	return r;
}

/* ---- the user's profile: only ever tighter ---- */

static int
read_profile(const char *file, json_t **ret, char *err, size_t err_len)
{
	struct stat st;
	json_error_t jerr;
	int fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, err_len, "profile %.200s: %s", file, strerror(errno));
		return KW_ERR_IO;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != getuid() ||
	    (st.st_mode & 022)) {
		snprintf(err, err_len, "profile %.200s: must be a regular file of yours, not "
		    "writable by others (chmod go-w)", file);
		close(fd);
		return KW_ERR_DENIED;
	}
	*ret = json_loadfd(fd, JSON_REJECT_DUPLICATES, &jerr);
	close(fd);
	if (!*ret || !json_is_object(*ret)) {
		snprintf(err, err_len, "profile %.200s: not a JSON object (%.80s, line %d)", file,
		    *ret ? "wrong type" : jerr.text, jerr.line);
		json_decref(*ret);
		*ret = NULL;
		return KW_ERR_INVALID;
	}
	return 0;
}

/* A boolean may only move the strict way: strict_value is the tighter one. */
static int
tighten_bool(const json_t *prof, const char *file, const char *name, bool strict_value,
    bool *field, char *err, size_t err_len)
{
	json_t *v = json_object_get(prof, name);

	if (!v)
		return 0;
	if (!json_is_boolean(v)) {
		snprintf(err, err_len, "profile %.200s: \"%s\" must be true or false", file, name);
		return KW_ERR_INVALID;
	}
	if (json_is_true(v) != strict_value && *field == strict_value) {
		snprintf(err, err_len, "profile %.200s: \"%s\": %s would loosen the "
		    "administrator's policy; a profile can only tighten it", file, name,
		    strict_value ? "false" : "true");
		return KW_ERR_DENIED;
	}
	*field = json_is_true(v) ? true : false;
	return 0;
}

/* Each path must lie within what the policy grants (its allowed paths, or the cwd). */
static int
tighten_paths(const struct kw_sandbox_policy *p, const json_t *prof, const char *file,
    const char *name, const char *cwd, char ***out, size_t *n, char *err, size_t err_len)
{
	json_t *tmp = json_object(), *v = json_object_get(prof, name);
	int r;

	if (!v)
		return json_decref(tmp), 0;
	json_object_set(tmp, name, v);
	r = get_list(tmp, name, true, out, n, err, err_len);
	json_decref(tmp);
	if (r != 0)
		return r;
	for (size_t i = 0; i < *n; i++) {
		bool inside = false;

		for (size_t j = 0; j < p->n_allowed; j++)
			inside = inside || kw_path_within((*out)[i], p->allowed_paths[j]);
		if (p->n_allowed == 0)
			inside = kw_path_within((*out)[i], cwd);
		if (!inside) {
			snprintf(err, err_len, "profile %.200s: \"%s\": %.200s lies outside what the "
			    "administrator's policy grants; a profile can only narrow it", file, name,
			    (*out)[i]);
			return KW_ERR_DENIED;
		}
	}
	return 0;
}

int
kw_sandbox_policy_tighten(struct kw_sandbox_policy *p, const char *file, const char *cwd,
    char *err, size_t err_len)
{
	static const char *const known[] = {
		"readOnly", "allowNetwork", "allowExec", "allowedPaths", "readOnlyPaths",
	};
	json_t *prof = NULL, *v;
	char **paths = NULL, **ro = NULL;
	size_t n_paths = 0, n_ro = 0;
	const char *key;
	int r;

	if ((r = read_profile(file, &prof, err, err_len)) != 0)
		return r;
	json_object_foreach(prof, key, v) {
		bool ok = false;

		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			ok = ok || strcmp(key, known[i]) == 0;
		if (!ok) {
			snprintf(err, err_len, "profile %.200s: unknown member \"%.64s\" (known: "
			    "readOnly, allowNetwork, allowExec, allowedPaths, readOnlyPaths)", file,
			    key);
			r = KW_ERR_INVALID;
			goto out;
		}
	}
	if ((r = tighten_paths(p, prof, file, "allowedPaths", cwd, &paths, &n_paths, err,
	    err_len)) != 0 ||
	    (r = tighten_paths(p, prof, file, "readOnlyPaths", cwd, &ro, &n_ro, err,
	    err_len)) != 0 ||
	    (r = tighten_bool(prof, file, "readOnly", true, &p->read_only, err, err_len)) != 0 ||
	    (r = tighten_bool(prof, file, "allowNetwork", false, &p->allow_network, err,
	    err_len)) != 0 ||
	    (r = tighten_bool(prof, file, "allowExec", false, &p->allow_exec, err, err_len)) != 0)
		goto out;
	if (json_object_get(prof, "allowedPaths") && n_paths == 0 && p->n_allowed > 0) {
		/* An empty list means "the cwd", which may lie outside the policy's paths. */
		snprintf(err, err_len, "profile %.200s: \"allowedPaths\" is empty, which would "
		    "mean the current directory; list the paths to keep instead", file);
		r = KW_ERR_DENIED;
		goto out;
	}
	if (json_object_get(prof, "allowedPaths")) {
		strv_free(p->allowed_paths, p->n_allowed);
		p->allowed_paths = paths;
		p->n_allowed = n_paths;
		paths = NULL;
		n_paths = 0;
	}
	if (n_ro) {
		char **all = realloc(p->read_only_paths,
		    (p->n_read_only + n_ro + 1) * sizeof(char *));

		if (!all) {
			r = KW_ERR_NOMEM;
			goto out;
		}
		memcpy(all + p->n_read_only, ro, n_ro * sizeof(char *));
		p->read_only_paths = all;
		p->n_read_only += n_ro;
		free(ro);
		ro = NULL;
		n_ro = 0;
	}
	r = 0;
 out:
	strv_free(paths, n_paths);
	strv_free(ro, n_ro);
	json_decref(prof);
	return r;
}
