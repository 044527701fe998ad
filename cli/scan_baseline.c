/*
 * scan_baseline.c - the findings a project has accepted (detect-secrets'
 * baseline): a JSON file of {"file", "rule", "hash", "line"}, where hash is
 * kw_scan_hash (SHA-256 of the rule id and the value), never the value.  A
 * finding is known when its file, rule and hash are listed; the line is
 * there for the reader and does not count, so code moving around a known
 * finding does not make it new.
 *
 * The file holds no secret and is meant to be committed beside the code:
 * it is written 0644.  (A hash does confirm a guess of a short value; the
 * rules look for long random ones, which it does not.)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/scan.h"
#include "common/errors.h"
#include "common/fsutil.h"

#define BASELINE_MAX	(64u << 20)
#define BASELINE_VERSION 1

struct kw_baseline {
	json_t *entries;	/* the file's findings, as read */
	json_t *keys;		/* {key(entry): true} */
};

/* "HASH RULE\x1fFILE": one string for the three parts that make a finding known. */
static char *
key_of(const char *file, const char *rule, const char *hash)
{
	char *k = NULL;

	return asprintf(&k, "%s %s\x1f%s", hash, rule, file) < 0 ? NULL : k;
}

static int
bad(char *why, size_t why_len, const char *file, const char *what)
{
	snprintf(why, why_len, "%s: %s", file, what);
	return KW_ERR_CONFIG;
}

static int
take_entries(struct kw_baseline *b, json_t *doc, const char *file, char *why, size_t why_len)
{
	json_t *list = json_object_get(doc, "findings"), *e;
	size_t i;

	if (!json_is_object(doc) || !json_is_array(list))
		return bad(why, why_len, file, "not a keywarden baseline (no \"findings\" list)");
	if (json_integer_value(json_object_get(doc, "version")) != BASELINE_VERSION)
		return bad(why, why_len, file, "baseline version is not 1");
	json_array_foreach(list, i, e) {
		const char *f = json_string_value(json_object_get(e, "file")),
		    *rule = json_string_value(json_object_get(e, "rule")),
		    *hash = json_string_value(json_object_get(e, "hash"));
		_cleanup_free_ char *k = NULL;
		if (!f || !rule || !hash || strlen(hash) != KW_SCAN_HASH_HEX - 1) {
			snprintf(why, why_len, "%s: findings[%zu] needs \"file\", \"rule\" and a "
			    "64-digit \"hash\"", file, i);
			return KW_ERR_CONFIG;
		}
		if (!(k = key_of(f, rule, hash)) || json_object_set_new(b->keys, k, json_true()) < 0)
			return KW_ERR_NOMEM;
	}
	b->entries = json_incref(list);
	return 0;
}

int
kw_baseline_load(const char *file, struct kw_baseline **ret, char *why, size_t why_len)
{
	_cleanup_close_ int fd = open(file, O_RDONLY | O_NOCTTY | O_CLOEXEC);
	_cleanup_free_ char *text = NULL;
	struct kw_baseline *b = calloc(1, sizeof(*b));
	json_t *doc = NULL;
	json_error_t e;
	size_t len;
	int r = KW_ERR_NOMEM;

	if (!b || !(b->keys = json_object()))
		goto out;
	if (fd < 0 && errno == ENOENT) {
		r = (b->entries = json_array()) ? 0 : KW_ERR_NOMEM;
		goto out;
	}
	if (fd < 0 || (r = kw_read_fd(fd, BASELINE_MAX, &text, &len)) < 0) {
		snprintf(why, why_len, "cannot read %s: %s", file, fd >= 0 && r == KW_ERR_INVALID ?
		    "larger than 64 MiB" : strerror(errno));
		r = KW_ERR_IO;
		goto out;
	}
	if (!(doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e))) {
		snprintf(why, why_len, "%s is not valid JSON (line %d: %.100s)", file, e.line,
		    e.text);
		r = KW_ERR_CONFIG;
		goto out;
	}
	r = take_entries(b, doc, file, why, why_len);
 out:
	json_decref(doc);
	if (r < 0) {
		kw_baseline_free(b);
		return r;
	}
	*ret = b;
	return 0;
}

void
kw_baseline_free(struct kw_baseline *b)
{
	if (!b)
		return;
	json_decref(b->entries);
	json_decref(b->keys);
	free(b);
}

bool
kw_baseline_has(const struct kw_baseline *b, const struct kw_scan_finding *f)
{
	_cleanup_free_ char *k = key_of(f->file, f->rule, f->hash);

	return k && json_object_get(b->keys, k) != NULL;
}

static int
by_file_line(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int c = strcmp(json_string_value(json_object_get(x, "file")),
	    json_string_value(json_object_get(y, "file")));
	json_int_t lx = json_integer_value(json_object_get(x, "line")),
	    ly = json_integer_value(json_object_get(y, "line"));

	if (c)
		return c;
	if (lx != ly)
		return lx < ly ? -1 : 1;
	return strcmp(json_string_value(json_object_get(x, "rule")),
	    json_string_value(json_object_get(y, "rule")));
}

/* The entries the new file lists: kept ones, then this run's, sorted. */
static json_t *
entries(const struct kw_baseline *b, json_t *scanned, const struct kw_scan_result *r)
{
	size_t n = (b ? json_array_size(b->entries) : 0) + r->n, k = 0, i;
	_cleanup_free_ json_t **v = calloc(n ? n : 1, sizeof(*v));
	json_t *list = json_array(), *e;

	if (!v || !list)
		goto fail;
	if (b)
		json_array_foreach(b->entries, i, e)
			if (!json_object_get(scanned, json_string_value(json_object_get(e, "file"))))
				v[k++] = json_incref(e);
	for (i = 0; i < r->n; i++) {
		const struct kw_scan_finding *f = &r->findings[i];
		if (!(v[k] = json_pack("{s:s, s:s, s:I, s:s}", "file", f->file, "rule", f->rule,
		    "line", (json_int_t)f->line, "hash", f->hash)))
			goto fail;
		k++;
	}
	qsort(v, k, sizeof(*v), by_file_line);
	for (i = 0; i < k; i++)
		if (json_array_append_new(list, TAKE_PTR(v[i])) < 0)
			goto fail;
	return list;
 fail:
	for (i = 0; i < k; i++)
		json_decref(v[i]);
	json_decref(list);
	return NULL;
}

int
kw_baseline_write(const char *file, const struct kw_baseline *b, json_t *scanned,
    const struct kw_scan_result *r, size_t *ret_n)
{
	json_t *list = entries(b, scanned, r), *doc;
	char *text;
	int rc;

	if (!list)
		return KW_ERR_NOMEM;
	if (ret_n)
		*ret_n = json_array_size(list);
	doc = json_pack("{s:i, s:s, s:s, s:o}", "version", BASELINE_VERSION, "generator",
	    "keywarden " KW_VERSION, "hash", "sha256(rule, NUL, value)", "findings", list);
	if (!doc || !(text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER))) {
		json_decref(doc);
		return KW_ERR_NOMEM;
	}
	json_decref(doc);
	/* jansson ends without a newline; a file ends with one. */
	size_t len = strlen(text);
	char *nl = realloc(text, len + 2);
	if (!nl) {
		free(text);
		return KW_ERR_NOMEM;
	}
	nl[len] = '\n';
	rc = kw_write_atomic(file, nl, len + 1, 0644);
	free(nl);
	return rc;
}
