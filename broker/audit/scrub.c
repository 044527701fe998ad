/*
 * scrub.c - nothing the trail records holds a secret: before a record is
 * hashed and written, the strings of its metadata (keys and values, at any
 * depth) and its resource go through the secret rules, and a matched value
 * becomes "[REDACTED:<rule>]".  Handlers mask what they know to be secret
 * (kw_policy_mask); this catches what they do not (a key typed as a tool's
 * name or a check's resource).  Personal-data filters are not applied: the
 * trail names users through pseudonyms already (audit.h).
 *
 * Cheap when nothing matches: the engine's keyword prefilter looks at each
 * string once, and a string without a finding is left as it is.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/audit/audit_internal.h"
#include "common/errors.h"

struct spans {
	struct { size_t start, end; const char *rule; } *v;
	size_t n, cap;
};

static int
on_finding(const struct kw_finding *f, const char *value, size_t len, void *ctx)
{
	struct spans *s = ctx;
	void *nv;

	(void)value;
	(void)len;
	if (!f->secret)
		return 0;
	if (s->n == s->cap) {
		if (!(nv = realloc(s->v, (s->cap ? s->cap * 2 : 4) * sizeof(*s->v))))
			return KW_ERR_NOMEM;
		s->v = nv;
		s->cap = s->cap ? s->cap * 2 : 4;
	}
	s->v[s->n].start = (size_t)f->start;
	s->v[s->n].end = (size_t)f->end;
	s->v[s->n].rule = f->rule;	/* the detector's, outlives the call */
	s->n++;
	return 0;
}

int
kw_audit_scrub_text(const struct kw_detector *d, const char *in, size_t len, char **ret_out)
{
	struct spans s = { .v = NULL };
	size_t need = len + 1, at = 0, o = 0;
	char *out = NULL;
	int r;

	*ret_out = NULL;
	if ((r = kw_detect_buffer(d, in, len, on_finding, &s)) < 0 || s.n == 0)
		goto out;
	for (size_t i = 0; i < s.n; i++)
		need += strlen("[REDACTED:]") + strlen(s.v[i].rule);
	if (!(out = malloc(need))) {
		r = KW_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < s.n; i++) {
		memcpy(out + o, in + at, s.v[i].start - at);
		o += s.v[i].start - at;
		o += (size_t)sprintf(out + o, "[REDACTED:%s]", s.v[i].rule);
		at = s.v[i].end;
	}
	memcpy(out + o, in + at, len - at);
	out[o + len - at] = '\0';
	*ret_out = out;
 out:
	free(s.v);
	return r;
}

/* A string value scrubbed in place.  0 or KW_ERR_NOMEM. */
static int
scrub_string(const struct kw_detector *d, json_t *v)
{
	char *clean = NULL;
	int r;

	if ((r = kw_audit_scrub_text(d, json_string_value(v), json_string_length(v), &clean)) < 0)
		return r;
	/* A match that cut a multi-byte character leaves bytes jansson refuses. */
	r = clean && json_string_set_nocheck(v, clean) < 0 ? KW_ERR_NOMEM : 0;
	free(clean);
	return r;
}

/* Keys that held a secret renamed, after the walk (not while iterating). */
static int
rename_keys(json_t *obj, json_t *renames)
{
	const char *old;
	json_t *to, *e;

	json_object_foreach(renames, old, to) {
		if (!(e = json_incref(json_object_get(obj, old))) || json_object_del(obj, old) < 0 ||
		    json_object_set_new_nocheck(obj, json_string_value(to), e) < 0)
			return KW_ERR_NOMEM;
	}
	return 0;
}

int
kw_audit_scrub_json(const struct kw_detector *d, json_t *v)
{
	json_t *e, *renames = NULL;
	const char *key;
	char *clean;
	size_t i;
	int r = 0;

	if (json_is_string(v))
		return scrub_string(d, v);
	json_array_foreach(v, i, e)
		if ((r = kw_audit_scrub_json(d, e)) < 0)
			return r;
	json_object_foreach(v, key, e) {
		if ((r = kw_audit_scrub_json(d, e)) < 0 ||
		    (r = kw_audit_scrub_text(d, key, strlen(key), &clean)) < 0)
			goto out;
		if (!clean)
			continue;
		if (!renames)
			renames = json_object();
		r = renames && json_object_set_new_nocheck(renames, key,
		    json_stringn_nocheck(clean, strlen(clean))) == 0 ? 0 : KW_ERR_NOMEM;
		free(clean);
		if (r < 0)
			goto out;
	}
	r = renames ? rename_keys(v, renames) : 0;
 out:
	json_decref(renames);
	return r;
}
