/*
 * compile.c - a detector from a configuration: the built-in secret rules,
 * security.secrets.rules, security.filters.patterns and the allowlists,
 * each regex compiled once by PCRE2 (JIT when the platform has it).
 *
 * Rule order decides ties (same start, same length): the built-in rules,
 * then the configuration's rules, then generic-secret, then the filters.
 * A configured rule with a built-in's id replaces it.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "common/errors.h"
#include "policy/detect/detect_internal.h"

#define GENERIC_ID	"generic-secret"

static int
compile_regex(const char *pattern, const char *where, pcre2_code **ret_re,
    char *err, size_t err_len)
{
	int code;
	PCRE2_SIZE off;
	pcre2_code *re;

	re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
	if (!re) {
		PCRE2_UCHAR msg[256];
		if (code == PCRE2_ERROR_NOMEMORY)
			return KW_ERR_NOMEM;
		pcre2_get_error_message(code, msg, sizeof(msg));
		snprintf(err, err_len, "%s: %s at offset %zu", where, (char *)msg, (size_t)off);
		return KW_ERR_CONFIG;
	}
	/* Without JIT (an unsupported CPU) pcre2_match interprets: slower, same answers. */
	(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	*ret_re = re;
	return 0;
}

/* Index of keyword kw (lowercased) in d's table, added if new; -1 on ENOMEM. */
static long
keyword_index(struct kw_detector *d, const char *kw, size_t len)
{
	char **k;
	size_t *kl;
	char *s;

	for (size_t i = 0; i < d->n_keywords; i++)
		if (d->keyword_len[i] == len && strncasecmp(d->keywords[i], kw, len) == 0)
			return (long)i;
	if (!(k = realloc(d->keywords, (d->n_keywords + 1) * sizeof(*k))))
		return -1;
	d->keywords = k;
	if (!(kl = realloc(d->keyword_len, (d->n_keywords + 1) * sizeof(*kl))))
		return -1;
	d->keyword_len = kl;
	if (!(s = strndup(kw, len)))
		return -1;
	for (size_t i = 0; i < len; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			s[i] = (char)(s[i] - 'A' + 'a');
	d->keywords[d->n_keywords] = s;
	d->keyword_len[d->n_keywords] = len;
	return (long)d->n_keywords++;
}

static int
rule_add_keyword(struct kw_detector *d, struct kw_rule *rule, const char *kw, size_t len)
{
	long i;
	size_t *k;

	if (len == 0)
		return 0;
	if ((i = keyword_index(d, kw, len)) < 0 ||
	    !(k = realloc(rule->keywords, (rule->n_keywords + 1) * sizeof(*k))))
		return KW_ERR_NOMEM;
	rule->keywords = k;
	k[rule->n_keywords++] = (size_t)i;
	return 0;
}

/* A new rule slot at the end of d's table, zeroed. */
static struct kw_rule *
rule_new(struct kw_detector *d)
{
	struct kw_rule *r = realloc(d->rules, (d->n_rules + 1) * sizeof(*r));

	if (!r)
		return NULL;
	d->rules = r;
	memset(&r[d->n_rules], 0, sizeof(*r));
	return &r[d->n_rules++];
}

/* Fill a rule's regex (and the number of its "secret" group). */
static int
rule_set_regex(struct kw_rule *rule, const char *pattern, const char *where,
    char *err, size_t err_len)
{
	int r, g;

	if ((r = compile_regex(pattern, where, &rule->re, err, err_len)) < 0)
		return r;
	g = pcre2_substring_number_from_name(rule->re, (PCRE2_SPTR)"secret");
	rule->secret_group = g > 0 ? g : 0;
	return 0;
}

static int
add_builtin(struct kw_detector *d, const struct kw_builtin_rule *b, char *err, size_t err_len)
{
	struct kw_rule *rule;
	char where[96];
	int r;

	if (!(rule = rule_new(d)) || !(rule->id = strdup(b->id)) ||
	    !(rule->description = strdup(b->description)))
		return KW_ERR_NOMEM;
	rule->secret = true;
	rule->entropy = b->entropy;
	snprintf(where, sizeof(where), "built-in rule %s", b->id);
	if ((r = rule_set_regex(rule, b->regex, where, err, err_len)) < 0)
		return r;
	for (const char *p = b->keywords; p && *p;) {
		size_t n = strcspn(p, " ");
		if ((r = rule_add_keyword(d, rule, p, n)) < 0)
			return r;
		p += n + strspn(p + n, " ");
	}
	return 0;
}

/* security.secrets.rules[i]: {"id", "regex", "keywords"?, "description"?, "entropy"?} */
static int
add_configured(struct kw_detector *d, json_t *spec, size_t i, char *err, size_t err_len)
{
	struct kw_rule *rule;
	const char *desc = json_string_value(json_object_get(spec, "description"));
	json_t *kws = json_object_get(spec, "keywords"), *kw;
	char where[96];
	size_t j;
	int r;

	if (!(rule = rule_new(d)) ||
	    !(rule->id = strdup(json_string_value(json_object_get(spec, "id")))) ||
	    !(rule->description = strdup(desc ? desc : rule->id)))
		return KW_ERR_NOMEM;
	rule->secret = true;
	rule->entropy = json_number_value(json_object_get(spec, "entropy"));
	snprintf(where, sizeof(where), "security.secrets.rules[%zu].regex", i);
	if ((r = rule_set_regex(rule, json_string_value(json_object_get(spec, "regex")), where,
	    err, err_len)) < 0)
		return r;
	json_array_foreach(kws, j, kw)
		if ((r = rule_add_keyword(d, rule, json_string_value(kw),
		    json_string_length(kw))) < 0)
			return r;
	return 0;
}

/* security.filters.patterns[i]: {"name", "regex", "replacement"} */
static int
add_filter(struct kw_detector *d, json_t *spec, size_t i, char *err, size_t err_len)
{
	struct kw_rule *rule;
	const char *name = json_string_value(json_object_get(spec, "name"));
	char where[96];

	if (!(rule = rule_new(d)) || !(rule->id = strdup(name)) ||
	    !(rule->description = strdup(name)) ||
	    !(rule->replacement = strdup(json_string_value(json_object_get(spec, "replacement")))))
		return KW_ERR_NOMEM;
	/* The seed's filter names carry their validators. */
	if (strcmp(name, "credit_card") == 0)
		rule->validator = KW_VALIDATE_LUHN;
	else if (strcmp(name, "ssn") == 0)
		rule->validator = KW_VALIDATE_SSN;
	snprintf(where, sizeof(where), "security.filters.patterns[%zu].regex", i);
	return rule_set_regex(rule, json_string_value(json_object_get(spec, "regex")), where,
	    err, err_len);
}

static bool
configured_has_id(json_t *rules, const char *id)
{
	size_t i;
	json_t *r;

	json_array_foreach(rules, i, r)
		if (json_is_string(json_object_get(r, "id")) &&
		    strcmp(json_string_value(json_object_get(r, "id")), id) == 0)
			return true;
	return false;
}

static int
add_secret_rules(struct kw_detector *d, const struct kw_config *cfg, char *err, size_t err_len)
{
	const struct kw_builtin_rule *b;
	json_t *conf = kw_config_get(cfg, "security.secrets.rules"), *spec;
	size_t n, i, generic = (size_t)-1;
	int r;

	b = kw_detect_builtin_rules(&n);
	for (i = 0; i < n; i++) {
		if (strcmp(b[i].id, GENERIC_ID) == 0) {
			generic = i;
			continue;
		}
		if (!configured_has_id(conf, b[i].id) &&
		    (r = add_builtin(d, &b[i], err, err_len)) < 0)
			return r;
	}
	json_array_foreach(conf, i, spec)
		if ((r = add_configured(d, spec, i, err, err_len)) < 0)
			return r;
	if (generic != (size_t)-1 && !configured_has_id(conf, GENERIC_ID) &&
	    (r = add_builtin(d, &b[generic], err, err_len)) < 0)
		return r;
	return 0;
}

static int
add_allowlists(struct kw_detector *d, const struct kw_config *cfg, char *err, size_t err_len)
{
	json_t *res = kw_config_get(cfg, "security.secrets.allowlist.regexes");
	json_t *paths = kw_config_get(cfg, "security.secrets.allowlist.paths");
	json_t *v;
	char where[96];
	size_t i;
	int r;

	if (json_array_size(res) &&
	    !(d->allow_re = calloc(json_array_size(res), sizeof(*d->allow_re))))
		return KW_ERR_NOMEM;
	json_array_foreach(res, i, v) {
		snprintf(where, sizeof(where), "security.secrets.allowlist.regexes[%zu]", i);
		if ((r = compile_regex(json_string_value(v), where, &d->allow_re[i],
		    err, err_len)) < 0)
			return r;
		d->n_allow_re++;
	}
	if (json_array_size(paths) &&
	    !(d->allow_paths = calloc(json_array_size(paths), sizeof(*d->allow_paths))))
		return KW_ERR_NOMEM;
	json_array_foreach(paths, i, v) {
		if (!(d->allow_paths[i] = strdup(json_string_value(v))))
			return KW_ERR_NOMEM;
		d->n_allow_paths++;
	}
	return 0;
}

/* The prefilter's trigram index over the keyword table (scan.c). */
static int
index_keywords(struct kw_detector *d)
{
	if (d->n_keywords == 0)
		return 0;
	if (!(d->trigram_first = malloc(KW_TRIGRAMS * sizeof(*d->trigram_first))) ||
	    !(d->kw_next = malloc(d->n_keywords * sizeof(*d->kw_next))))
		return KW_ERR_NOMEM;
	memset(d->trigram_first, 0xff, KW_TRIGRAMS * sizeof(*d->trigram_first));
	for (size_t k = d->n_keywords; k-- > 0;) {
		const unsigned char *kw = (const unsigned char *)d->keywords[k];
		d->kw_next[k] = -1;
		if (d->keyword_len[k] < 3) {
			d->has_short_kw = true;
			continue;
		}
		unsigned h = kw_trigram(kw[0], kw[1], kw[2]);
		d->kw_next[k] = d->trigram_first[h];
		d->trigram_first[h] = (int)k;
		d->trigram_bits[h / 64] |= 1ULL << (h % 64);
	}
	return 0;
}

int
kw_detector_compile(const struct kw_config *cfg, unsigned which,
    struct kw_detector **ret_detector, char *err, size_t err_len)
{
	struct kw_detector *d;
	json_t *filters, *spec;
	size_t i;
	int r = KW_ERR_NOMEM;

	if (err_len)
		err[0] = '\0';
	if (!(d = calloc(1, sizeof(*d))) || !(d->mctx = pcre2_match_context_create(NULL)))
		goto out;
	pcre2_set_match_limit(d->mctx, KW_DETECT_MATCH_LIMIT);
	if ((which & KW_DETECT_SECRETS) && (r = add_secret_rules(d, cfg, err, err_len)) < 0)
		goto out;
	if ((which & KW_DETECT_FILTERS) && kw_config_bool(cfg, "security.filters.enabled")) {
		filters = kw_config_get(cfg, "security.filters.patterns");
		json_array_foreach(filters, i, spec)
			if ((r = add_filter(d, spec, i, err, err_len)) < 0)
				goto out;
	}
	if ((r = add_allowlists(d, cfg, err, err_len)) < 0 || (r = index_keywords(d)) < 0)
		goto out;
	*ret_detector = TAKE_PTR(d);
	r = 0;
 out:
	if (r == KW_ERR_NOMEM && err_len)
		snprintf(err, err_len, "detector: out of memory");
	kw_detector_free(d);
	return r;
}

void
kw_detector_free(struct kw_detector *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n_rules; i++) {
		free(d->rules[i].id);
		free(d->rules[i].description);
		free(d->rules[i].replacement);
		free(d->rules[i].keywords);
		pcre2_code_free(d->rules[i].re);
	}
	free(d->rules);
	for (size_t i = 0; i < d->n_keywords; i++)
		free(d->keywords[i]);
	free(d->keywords);
	free(d->keyword_len);
	free(d->trigram_first);
	free(d->kw_next);
	for (size_t i = 0; i < d->n_allow_re; i++)
		pcre2_code_free(d->allow_re[i]);
	free(d->allow_re);
	for (size_t i = 0; i < d->n_allow_paths; i++)
		free(d->allow_paths[i]);
	free(d->allow_paths);
	pcre2_match_context_free(d->mctx);
	free(d);
}

json_t *
kw_detector_rules(const struct kw_detector *d)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < d->n_rules; i++)
		if (json_array_append_new(a, json_pack("{s:s, s:b, s:s}", "id", d->rules[i].id,
		    "secret", d->rules[i].secret, "description", d->rules[i].description)) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

bool
kw_detector_has_rule(const struct kw_detector *d, const char *id)
{
	for (size_t i = 0; i < d->n_rules; i++)
		if (strcmp(d->rules[i].id, id) == 0)
			return true;
	return false;
}

/*
 * A glob (fnmatch(3), where "*" crosses "/"; a leading "**" + "/" is
 * dropped) matches the path as given or any of its trailing parts: "*.lock"
 * matches "a/b/c.lock", "docs/" + "*" matches "x/docs/y".
 */
bool
kw_detector_path_allowed(const struct kw_detector *d, const char *path)
{
	for (size_t i = 0; i < d->n_allow_paths; i++)
		for (const char *p = path; p; p = strchr(p, '/') ? strchr(p, '/') + 1 : NULL) {
			const char *g = d->allow_paths[i];
			if (strncmp(g, "**/", 3) == 0)
				g += 3;
			if (fnmatch(g, p, 0) == 0)
				return true;
		}
	return false;
}
