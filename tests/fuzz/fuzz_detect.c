/*
 * fuzz_detect.c - libFuzzer target for the detection engine
 * (policy/detect/detect.h).
 *
 * The input's first byte chooses what runs:
 *   - even: the rest is text for the default rules (built-in secret rules
 *     and the seed's filters), scanned as a buffer and as a stream cut at
 *     places the input picks, then redacted in each mode;
 *   - odd: the rest, up to a NUL, is a user's secret rule regex and what
 *     follows is text: the rule must compile or fail cleanly (KW_ERR_CONFIG
 *     naming security.secrets.rules[0].regex), and if it compiles, run.
 * Invariants: findings come in input order, never overlap, lie within the
 * input, with the line and column the text gives; the stream finds what
 * the buffer finds; the redacted text (replace mode) holds no finding of a
 * secret rule when scanned again -- but for generic-secret on text that
 * was in the input: its entropy threshold applies to the whole value, so
 * a high-entropy head of a low-entropy value (cut short by a replacement)
 * can pass where the whole did not.  That is text the input showed as it
 * is, not a value the redaction let out.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "fuzz.h"
#include "common/config.h"
#include "common/errors.h"
#include "common/log.h"
#include "policy/detect/detect.h"

#define MAX_FINDINGS 4096

struct seen {
	const char *text;
	size_t len;
	size_t n;
	unsigned long long last_end;
	unsigned long long start[MAX_FINDINGS], end[MAX_FINDINGS];
};

static int
on_finding(const struct kw_finding *f, const char *value, size_t len, void *ctx)
{
	struct seen *s = ctx;
	unsigned long long line = 1, col_start = 0;

	CHECK(f->start < f->end && f->end <= s->len);
	CHECK(f->end - f->start == len);
	CHECK(memcmp(value, s->text + f->start, len) == 0);
	CHECK(f->start >= s->last_end);
	CHECK(f->rule && f->rule[0]);
	for (unsigned long long i = 0; i < f->start; i++)
		if (s->text[i] == '\n') {
			line++;
			col_start = i + 1;
		}
	CHECK(f->line == line && f->column == f->start - col_start + 1);
	s->last_end = f->end;
	CHECK(s->n < MAX_FINDINGS);
	s->start[s->n] = f->start;
	s->end[s->n++] = f->end;
	return 0;
}

static void
scan_both(const struct kw_detector *d, const uint8_t *data, size_t size)
{
	struct seen *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	struct kw_detect_stream *st = NULL;

	CHECK(a && b);
	a->text = b->text = (const char *)data;
	a->len = b->len = size;
	CHECK(kw_detect_buffer(d, (const char *)data, size, on_finding, a) == 0);
	CHECK(kw_detect_stream_new(d, on_finding, b, &st) == 0);
	/* Pieces whose sizes come from the input itself. */
	for (size_t off = 0; off < size;) {
		size_t n = 1 + data[off] * 7u % 97u;
		if (n > size - off)
			n = size - off;
		CHECK(kw_detect_stream_feed(st, (const char *)data + off, n) == 0);
		off += n;
	}
	CHECK(kw_detect_stream_end(st) == 0);
	kw_detect_stream_free(st);
	/* Inputs this small fit one window: the stream decides as the buffer does. */
	CHECK(a->n == b->n);
	CHECK(memcmp(a->start, b->start, a->n * sizeof(a->start[0])) == 0);
	CHECK(memcmp(a->end, b->end, a->n * sizeof(a->end[0])) == 0);
	free(a);
	free(b);
}

struct input {
	const uint8_t *data;
	size_t size;
};

static int
secret_left(const struct kw_finding *f, const char *value, size_t len, void *ctx)
{
	const struct input *in = ctx;

	if (strcmp(f->rule, "generic-secret") == 0 &&
	    memmem(in->data, in->size, value, len) != NULL)
		return 0;
	if (f->secret) {
		fprintf(stderr, "after redaction %s still finds [%llu, %llu)\n", f->rule, f->start,
		    f->end);
		abort();
	}
	return 0;
}

static void
redact_all(const struct kw_detector *d, const uint8_t *data, size_t size)
{
	static const unsigned char key[32] = "fuzz key fuzz key fuzz key fuzz";
	char *out = NULL;
	size_t len;
	json_t *counts = NULL;

	CHECK(kw_redact_buffer(d, KW_REDACT_REPLACE, NULL, 0, (const char *)data, size, &out, &len,
	    &counts) == 0);
	CHECK(out[len] == '\0' && json_is_object(counts));
	struct input in = { data, size };
	CHECK(kw_detect_buffer(d, out, len, secret_left, &in) == 0);
	free(out);
	json_decref(counts);
	CHECK(kw_redact_buffer(d, KW_REDACT_PARTIAL, NULL, 0, (const char *)data, size, &out, &len,
	    NULL) == 0);
	CHECK(len == size);
	free(out);
	CHECK(kw_redact_buffer(d, KW_REDACT_HMAC, key, sizeof(key), (const char *)data, size, &out,
	    &len, NULL) == 0);
	free(out);
}

static struct kw_detector *defaults;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct kw_config *cfg = kw_config_new_default();
	char err[256];

	kw_log_init("fuzz", KW_LOG_STDERR, LOG_ERR);
	CHECK(cfg && kw_detector_compile(cfg, KW_DETECT_SECRETS | KW_DETECT_FILTERS, &defaults,
	    err, sizeof(err)) == 0);
	kw_config_free(cfg);
	return 0;
}

static void
user_rule(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t rlen = nul ? (size_t)(nul - data) : size;
	char *regex = strndup((const char *)data, rlen);
	struct kw_config *cfg = NULL;
	struct kw_detector *d = NULL;
	json_t *doc;
	char *text, err[512];
	int r;

	CHECK(regex);
	doc = json_pack("{s:{s:{s:[{s:s, s:s, s:[s]}]}}}", "security", "secrets", "rules", "id",
	    "fuzz", "regex", regex, "keywords", "k");
	free(regex);
	if (!doc)		/* not UTF-8: a configuration cannot hold it */
		return;
	text = json_dumps(doc, 0);
	json_decref(doc);
	CHECK(text);
	r = kw_config_parse(text, strlen(text), &cfg, err, sizeof(err));
	free(text);
	if (r < 0)
		return;
	r = kw_detector_compile(cfg, KW_DETECT_SECRETS, &d, err, sizeof(err));
	kw_config_free(cfg);
	if (r < 0) {
		CHECK(r == KW_ERR_CONFIG && d == NULL);
		static const char want[] = "security.secrets.rules[0].regex: ";
		CHECK(strncmp(err, want, sizeof(want) - 1) == 0);
		return;
	}
	CHECK(r == 0 && d);
	if (nul)
		scan_both(d, nul + 1, size - rlen - 1);
	kw_detector_free(d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > 8192)
		return 0;
	if (data[0] % 2 == 0) {
		scan_both(defaults, data + 1, size - 1);
		redact_all(defaults, data + 1, size - 1);
	} else {
		user_rule(data + 1, size - 1);
	}
	return 0;
}
