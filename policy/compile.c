/*
 * compile.c - the policy settings of the configuration, read once into a
 * kw_policy.  The configuration has already checked each value's type;
 * what is checked here is what only the policy knows (a path entry must be
 * absolute or start with "~", a command rule must name a command).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "policy/policy_internal.h"

static void
strs_free(struct kw_strs *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static int
strs_load(const struct kw_config *cfg, const char *key, struct kw_strs *ret)
{
	json_t *list = kw_config_get(cfg, key), *item;
	size_t i;

	ret->key = key;
	ret->n = 0;
	if (!(ret->v = calloc(json_array_size(list) + 1, sizeof(char *))))
		return KW_ERR_NOMEM;
	json_array_foreach(list, i, item) {
		if (!json_is_string(item) || json_string_length(item) == 0)
			continue;
		if (!(ret->v[ret->n] = strdup(json_string_value(item))))
			return KW_ERR_NOMEM;
		ret->n++;
	}
	return 0;
}

/* Path entries: "/abs", "~", "~/x", "./x" (from the tool's cwd), or a glob. */
static int
check_paths(const struct kw_strs *s, char *err, size_t err_len)
{
	for (size_t i = 0; i < s->n; i++) {
		const char *v = s->v[i];
		if (v[0] == '/' || strcmp(v, "~") == 0 || strncmp(v, "~/", 2) == 0 ||
		    strcmp(v, ".") == 0 || strncmp(v, "./", 2) == 0 || strncmp(v, "**", 2) == 0)
			continue;
		snprintf(err, err_len, "%s: \"%.64s\" must be an absolute path, start with ~/ or "
		    "./, or be a pattern starting with **/", s->key, v);
		return KW_ERR_CONFIG;
	}
	return 0;
}

static void
rule_free(struct kw_cmd_rule *r)
{
	for (size_t i = 0; i < r->n_words; i++)
		free(r->words[i]);
	for (size_t i = 0; i < r->n_flags; i++)
		free(r->flags[i]);
	free(r->words);
	free(r->flags);
	free(r->name);
	free(r->text);
}

static int
push(char ***v, size_t *n, const char *s, size_t len)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(char *));

	if (!nv)
		return KW_ERR_NOMEM;
	*v = nv;
	if (!(nv[*n] = strndup(s, len)))
		return KW_ERR_NOMEM;
	(*n)++;
	return 0;
}

/* "rm -rf" -> name rm, flags r f; "git push --force" -> words push, flags --force. */
static int
rule_parse(const char *text, struct kw_cmd_rule *r)
{
	const char *p = text, *w;
	size_t len;
	int rc;

	if (!(r->text = strdup(text)))
		return KW_ERR_NOMEM;
	while (*p) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		for (w = p; *p && *p != ' ' && *p != '\t'; p++)
			;
		len = (size_t)(p - w);
		if (!r->name) {
			if (!(r->name = strndup(kw_cmd_basename(w), len - (size_t)(kw_cmd_basename(w) - w))))
				return KW_ERR_NOMEM;
		} else if (len > 2 && w[0] == '-' && w[1] == '-') {
			if ((rc = push(&r->flags, &r->n_flags, w, len)) < 0)
				return rc;
		} else if (len > 1 && w[0] == '-') {
			for (size_t i = 1; i < len; i++)
				if ((rc = push(&r->flags, &r->n_flags, w + i, 1)) < 0)
					return rc;
		} else if ((rc = push(&r->words, &r->n_words, w, len)) < 0) {
			return rc;
		}
	}
	return r->name ? 0 : KW_ERR_CONFIG;
}

static int
rules_load(const struct kw_config *cfg, const char *key, struct kw_cmd_rules *ret,
    char *err, size_t err_len)
{
	struct kw_strs s;
	int r;

	ret->key = key;
	ret->n = 0;
	if ((r = strs_load(cfg, key, &s)) < 0)
		goto out;
	if (!(ret->v = calloc(s.n + 1, sizeof(*ret->v)))) {
		r = KW_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < s.n; i++, ret->n++)
		if ((r = rule_parse(s.v[i], &ret->v[i])) < 0) {
			if (r == KW_ERR_CONFIG)
				snprintf(err, err_len, "%s: \"%.64s\" names no command", key, s.v[i]);
			ret->n++;
			goto out;
		}
	r = 0;
 out:
	strs_free(&s);
	return r;
}

static void
rules_free(struct kw_cmd_rules *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		rule_free(&rs->v[i]);
	free(rs->v);
}

/*
 * The longest run of plain characters in a glob: a path the glob matches
 * holds it.  NULL (no test) for a glob with escapes or without such a run.
 */
static char *
required_text(const char *glob)
{
	size_t best = 0, best_at = 0, run = 0;
	bool in_class = false;

	if (strchr(glob, '\\'))
		return NULL;
	for (size_t i = 0; glob[i]; i++) {
		char c = glob[i];
		if (in_class || c == '*' || c == '?' || c == '[' || c == '/') {
			in_class = (in_class && c != ']') || c == '[';
			run = 0;
			continue;
		}
		if (++run > best) {
			best = run;
			best_at = i + 1 - run;
		}
	}
	return best >= 2 ? strndup(glob + best_at, best) : NULL;
}

static int
required_texts(struct kw_policy *p)
{
	if (!(p->exclude_lit = calloc(p->exclude.n + 1, sizeof(char *))))
		return KW_ERR_NOMEM;
	for (size_t i = 0; i < p->exclude.n; i++)
		p->exclude_lit[i] = required_text(p->exclude.v[i]);	/* NULL: no test */
	return 0;
}

void
kw_policy_free(struct kw_policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; p->exclude_lit && i < p->exclude.n; i++)
		free(p->exclude_lit[i]);
	free(p->exclude_lit);
	strs_free(&p->allowed_paths);
	strs_free(&p->denied_paths);
	strs_free(&p->exclude);
	strs_free(&p->sensitive);
	strs_free(&p->allowed_hosts);
	strs_free(&p->allowed_domains);
	rules_free(&p->allowed_cmds);
	rules_free(&p->denied_cmds);
	rules_free(&p->whitelist);
	kw_detector_free(p->secrets);
	free(p);
}

int
kw_policy_compile(const struct kw_config *cfg, struct kw_policy **ret_policy, char *err,
    size_t err_len)
{
	struct kw_policy *p = calloc(1, sizeof(*p));
	int r = KW_ERR_NOMEM, v;

	err[0] = '\0';
	if (!p)
		return r;
	if ((r = strs_load(cfg, "security.allowedPaths", &p->allowed_paths)) < 0 ||
	    (r = strs_load(cfg, "security.deniedPaths", &p->denied_paths)) < 0 ||
	    (r = strs_load(cfg, "security.excludePatterns", &p->exclude)) < 0 ||
	    (r = strs_load(cfg, "security.sensitivePatterns", &p->sensitive)) < 0 ||
	    (r = strs_load(cfg, "security.network.allowedHosts", &p->allowed_hosts)) < 0 ||
	    (r = strs_load(cfg, "security.network.allowedDomains", &p->allowed_domains)) < 0 ||
	    (r = rules_load(cfg, "security.execution.allowedCommands", &p->allowed_cmds,
	    err, err_len)) < 0 ||
	    (r = rules_load(cfg, "security.execution.deniedCommands", &p->denied_cmds,
	    err, err_len)) < 0 ||
	    (r = rules_load(cfg, "security.execution.whitelist", &p->whitelist, err,
	    err_len)) < 0 ||
	    (r = check_paths(&p->allowed_paths, err, err_len)) < 0 ||
	    (r = check_paths(&p->denied_paths, err, err_len)) < 0 ||
	    (r = required_texts(p)) < 0)
		goto fail;
	p->read_only = kw_config_bool(cfg, "security.readOnly");
	p->detect_sensitive = kw_config_bool(cfg, "security.detectSensitiveFiles");
	/* Its own detector, secret rules only: the policy needs no one else's, and a
	   rule that does not compile names itself here as it does for redaction. */
	if (p->detect_sensitive &&
	    (r = kw_detector_compile(cfg, KW_DETECT_SECRETS, &p->secrets, err, err_len)) < 0)
		goto fail;
	p->require_confirmation = kw_config_bool(cfg, "security.execution.requireConfirmation");
	p->whitelist_mode = kw_config_bool(cfg, "security.execution.whitelistMode");
	p->allow_outbound = kw_config_bool(cfg, "security.network.allowOutbound");
	p->enforce_https = kw_config_bool(cfg, "security.network.enforceHttps");
	v = kw_verdict_from_name(kw_config_str(cfg, "security.hooks.unknownTools"));
	p->unknown_tools = v < 0 ? KW_VERDICT_DENY : (enum kw_verdict)v;
	*ret_policy = p;
	return 0;
 fail:
	if (r == KW_ERR_NOMEM && !err[0])
		snprintf(err, err_len, "out of memory");
	kw_policy_free(p);
	return r;
}
