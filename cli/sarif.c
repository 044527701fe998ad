/*
 * sarif.c - a scan as a SARIF 2.1.0 log (OASIS Static Analysis Results
 * Interchange Format), the file code-scanning services ingest: one run,
 * the detector's rules with the configured level, a result per finding
 * located by a relative URI (under %SRCROOT%, the directory the paths are
 * relative to) and a region whose columns count Unicode code points
 * (run.columnKind), and the finding's hash as its partial fingerprint, so
 * a service tracks the same secret across commits without learning it.
 * Skipped files are the invocation's notifications.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/scan.h"

#define SCHEMA	"https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/" \
		"sarif-schema-2.1.0.json"
#define SRCROOT	"%SRCROOT%"
#define FINGERPRINT "keywardenSecretHash/v1"

/* s with every byte but ALPHA DIGIT - . _ ~ / percent-encoded (RFC 3986). */
static char *
uri_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = malloc(3 * strlen(s) + 1), *o = out;

	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~/", *p)) {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

/* {"uri", "uriBaseId"}: relative under %SRCROOT%, an absolute path as a file URI. */
static json_t *
artifact(const char *path)
{
	_cleanup_free_ char *esc = uri_escape(path);
	_cleanup_free_ char *abs = NULL;

	if (!esc)
		return NULL;
	if (path[0] == '/')
		return asprintf(&abs, "file://%s", esc) < 0 ? NULL : json_pack("{s:s}", "uri", abs);
	return json_pack("{s:s, s:s}", "uri", esc, "uriBaseId", SRCROOT);
}

static json_t *
rule_list(json_t *rules, const char *level, json_t *index)
{
	json_t *out = json_array(), *r;
	size_t i;

	if (!out)
		return NULL;
	json_array_foreach(rules, i, r) {
		const char *id = json_string_value(json_object_get(r, "id")),
		    *desc = json_string_value(json_object_get(r, "description"));
		if (!id)
			continue;
		if (json_object_set_new(index, id, json_integer((json_int_t)json_array_size(out))) < 0 ||
		    json_array_append_new(out, json_pack("{s:s, s:{s:s}, s:{s:s}, s:{s:[ss]}}",
		    "id", id, "shortDescription", "text", desc && *desc ? desc : id,
		    "defaultConfiguration", "level", level, "properties", "tags", "security",
		    "secret")) < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

static json_t *
result(const struct kw_scan_result *r, const struct kw_scan_finding *f, json_t *index)
{
	_cleanup_free_ char *text = NULL;
	json_t *rule_index = json_object_get(index, f->rule), *o;

	if (asprintf(&text, "%s: a secret (%s) in the code; move it to keywarden (keywarden key "
	    "set) and rotate it", f->rule, f->preview) < 0)
		return NULL;
	o = json_pack("{s:s, s:s, s:{s:s}, s:[{s:{s:o, s:{s:I, s:I, s:I, s:I}}}], s:{s:s}}",
	    "ruleId", f->rule, "level", kw_scan_level_name(r->level), "message", "text", text,
	    "locations", "physicalLocation", "artifactLocation", artifact(f->file), "region",
	    "startLine", (json_int_t)f->line, "startColumn", (json_int_t)f->char_column,
	    "endLine", (json_int_t)f->end_line, "endColumn", (json_int_t)f->end_char_column,
	    "partialFingerprints", FINGERPRINT, f->hash);
	if (o && rule_index)
		json_object_set(o, "ruleIndex", rule_index);
	if (o && r->baseline)
		json_object_set_new(o, "baselineState", json_string(f->known ? "unchanged" : "new"));
	return o;
}

static json_t *
notifications(const struct kw_scan_result *r)
{
	json_t *out = json_array(), *s;
	size_t i;

	json_array_foreach(r->skipped, i, s) {
		const char *file = json_string_value(json_object_get(s, "file")),
		    *why = json_string_value(json_object_get(s, "reason"));
		_cleanup_free_ char *text = NULL;
		if (asprintf(&text, "not scanned: %s", why) < 0 ||
		    json_array_append_new(out, json_pack("{s:s, s:{s:s}, s:[{s:{s:o}}]}", "level",
		    "note", "message", "text", text, "locations", "physicalLocation",
		    "artifactLocation", artifact(file))) < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

json_t *
kw_sarif_log(const struct kw_scan_result *r, json_t *rules, const char *base)
{
	json_t *index = json_object(), *results = json_array(), *log = NULL;
	_cleanup_free_ char *root = NULL, *esc = uri_escape(base);
	size_t i;

	if (!index || !results || !esc ||
	    asprintf(&root, "file://%s%s", esc, strcmp(base, "/") ? "/" : "") < 0)
		goto out;
	json_t *driver_rules = rule_list(rules, kw_scan_level_name(r->level), index);
	for (i = 0; i < r->n; i++)
		if (json_array_append_new(results, result(r, &r->findings[i], index)) < 0)
			goto out;
	log = json_pack("{s:s, s:s, s:[{s:{s:{s:s, s:s, s:o*}}, s:{s:{s:s}}, s:s, s:o, "
	    "s:[{s:b, s:o*}]}]}",
	    "$schema", SCHEMA, "version", "2.1.0", "runs",
	    "tool", "driver", "name", "keywarden", "version", KW_VERSION, "rules", driver_rules,
	    "originalUriBaseIds", SRCROOT, "uri", root,
	    "columnKind", "unicodeCodePoints",
	    "results", json_incref(results),
	    "invocations", "executionSuccessful", true, "toolExecutionNotifications",
	    notifications(r));
 out:
	json_decref(index);
	json_decref(results);
	return log;
}
