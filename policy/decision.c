/*
 * decision.c - a decision as a list of effects, each decided on its own;
 * the decision is the most restrictive of them.  Also how a decision reads
 * as JSON and which permission each effect needs from the caller's roles.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/escape.h"
#include "policy/policy_internal.h"

static const char *const verdict_names[] = {
	[KW_VERDICT_ALLOW] = "allow", [KW_VERDICT_ASK] = "ask", [KW_VERDICT_DENY] = "deny",
};

static const char *const kind_names[] = {
	[KW_EFFECT_EXEC] = "exec", [KW_EFFECT_READ] = "read", [KW_EFFECT_WRITE] = "write",
	[KW_EFFECT_DELETE] = "delete", [KW_EFFECT_NET] = "net", [KW_EFFECT_OPAQUE] = "opaque",
};

const char *
kw_verdict_name(enum kw_verdict v)
{
	return (unsigned)v < KW_ELEMENTSOF(verdict_names) ? verdict_names[v] : "deny";
}

int
kw_verdict_from_name(const char *name)
{
	for (size_t i = 0; i < KW_ELEMENTSOF(verdict_names); i++)
		if (strcmp(name, verdict_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *
kw_effect_kind_name(enum kw_effect_kind kind)
{
	return (unsigned)kind < KW_ELEMENTSOF(kind_names) ? kind_names[kind] : "opaque";
}

void
kw_path_memo_clear(struct kw_path_memo *m)
{
	for (size_t i = 0; i < m->n_allowed; i++)
		free(m->allowed[i]);
	for (size_t i = 0; i < m->n_denied; i++)
		free(m->denied[i]);
	free(m->allowed);
	free(m->denied);
	m->allowed = m->denied = NULL;
	m->n_allowed = m->n_denied = 0;
}

struct kw_path_cache *
kw_decision_dirs(struct kw_decision *d)
{
	if (!d->memo)
		d->memo = calloc(1, sizeof(*d->memo));
	return d->memo ? &d->memo->dirs : NULL;
}

struct kw_decision *
kw_decision_new(const char *action)
{
	struct kw_decision *d = calloc(1, sizeof(*d));

	if (d)
		d->action = action;
	return d;
}

void
kw_decision_free(struct kw_decision *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n_effects; i++)
		free(d->effects[i].name);
	for (size_t i = 0; i < d->n_leaves; i++)
		free(d->leaves[i]);
	if (d->memo) {
		kw_path_memo_clear(d->memo);
		free(d->memo);
	}
	free(d->effects);
	free(d->leaves);
	free(d);
}

/*
 * src into dst (len bytes), escaped when it holds anything but printable
 * ASCII: most reasons are plain, and copying them is what a decision
 * spends its time on.
 */
static void
copy_text(char *dst, const char *src, size_t len)
{
	size_t n = 0;

	while (src[n] && (unsigned char)src[n] >= 0x20 && (unsigned char)src[n] < 0x7f)
		n++;
	if (src[n] != '\0') {
		kw_escape(src, dst, len);
		return;
	}
	if (n >= len)
		n = len - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

int
kw_decision_add(struct kw_decision *d, enum kw_effect_kind kind, const char *name,
    enum kw_verdict verdict, const char *rule, const char *fmt, ...)
{
	struct kw_effect *e, *nv;
	char raw[512];
	va_list ap;

	if (d->n_effects == d->cap_effects) {
		size_t cap = d->cap_effects ? 2 * d->cap_effects : 8;
		if (!(nv = realloc(d->effects, cap * sizeof(*nv))))
			return KW_ERR_NOMEM;
		d->effects = nv;
		d->cap_effects = cap;
	}
	e = &d->effects[d->n_effects];
	if (!(e->name = strdup(name ? name : "")))
		return KW_ERR_NOMEM;
	d->n_effects++;
	e->kind = kind;
	e->verdict = verdict;
	/* Reasons and rules quote paths and commands: escaped, they are one line of
	   UTF-8 whatever the bytes were (a reply, a record and a terminal take them). */
	copy_text(e->rule, rule ? rule : "", sizeof(e->rule));
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	copy_text(e->reason, raw, sizeof(e->reason));
	/* The first effect with the most restrictive verdict explains the decision. */
	if (d->n_effects == 1 || verdict > d->verdict) {
		d->verdict = verdict;
		memcpy(d->rule, e->rule, sizeof(d->rule));
		memcpy(d->reason, e->reason, sizeof(d->reason));
	}
	return 0;
}

int
kw_decision_leaf(struct kw_decision *d, const char *line)
{
	char **nv = realloc(d->leaves, (d->n_leaves + 1) * sizeof(char *));

	if (!nv)
		return KW_ERR_NOMEM;
	d->leaves = nv;
	if (!(nv[d->n_leaves] = strdup(line)))
		return KW_ERR_NOMEM;
	d->n_leaves++;
	return 0;
}

/* A resource name keeps to the characters the permission grammar can match. */
static bool
resource_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("._/@+=,:-", c));
}

bool
kw_effect_permission(const struct kw_effect *e, const char **ret_verb, char *res,
    size_t res_len)
{
	const char *type, *name = e->name;
	size_t n, i;

	switch (e->kind) {
	case KW_EFFECT_EXEC:	*ret_verb = "execute"; type = "command/"; break;
	case KW_EFFECT_READ:	*ret_verb = "read"; type = "file"; break;
	case KW_EFFECT_WRITE:
	case KW_EFFECT_DELETE:	*ret_verb = "write"; type = "file"; break;
	case KW_EFFECT_NET:	*ret_verb = "read"; type = "host/"; break;
	default:		return false;
	}
	/* Paths start with "/": "file" + "/etc/passwd" is "file/etc/passwd". */
	n = strlen(type);
	if (n + strlen(name) >= res_len || n + strlen(name) > 256 || name[0] == '\0') {
		res[0] = '\0';
		return true;
	}
	memcpy(res, type, n);
	/* Other characters become "_": never "/", so what a path lies under stays so. */
	for (i = 0; name[i]; i++)
		res[n + i] = resource_char(name[i]) ? name[i] : '_';
	res[n + i] = '\0';
	return true;
}

/* A name as JSON text: escaped when it is not printable UTF-8. */
static json_t *
text(const char *s)
{
	char buf[1024];

	return json_string(kw_escaped_len(s) == strlen(s) ? s : kw_escape(s, buf, sizeof(buf)));
}

json_t *
kw_decision_json(const struct kw_decision *d)
{
	json_t *effects = json_array(), *leaves = json_array(), *o;

	if (!effects || !leaves)
		goto fail;
	for (size_t i = 0; i < d->n_effects; i++) {
		const struct kw_effect *e = &d->effects[i];
		o = json_pack("{s:s, s:o, s:s, s:s, s:s}", "kind", kw_effect_kind_name(e->kind),
		    "name", text(e->name), "decision", kw_verdict_name(e->verdict), "rule", e->rule,
		    "reason", e->reason);
		if (!o || json_array_append_new(effects, o) < 0)
			goto fail;
	}
	for (size_t i = 0; i < d->n_leaves; i++)
		if (json_array_append_new(leaves, text(d->leaves[i])) < 0)
			goto fail;
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "decision", kw_verdict_name(d->verdict),
	    "rule", d->rule, "reason", d->reason, "action", d->action ? d->action : "",
	    "effects", effects, "leaves", leaves);
 fail:
	json_decref(effects);
	json_decref(leaves);
	return NULL;
}
