/*
 * redact.c - findings replaced as they are decided.  The redactor rides
 * a detection stream: each finding writes the text before it and its
 * replacement, and before the stream forgets input it writes what is
 * decided.  Nothing here copies a matched value; the HMAC mode hashes it
 * in place.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "common/errors.h"
#include "policy/detect/detect_internal.h"

/* Values this short are masked whole in the partial mode: 4 of them would be most. */
#define PARTIAL_MIN	9

struct kw_redactor {
	struct kw_detect_stream *stream;
	enum kw_redact_mode mode;
	unsigned char *key;		/* sodium_malloc'd copy, HMAC mode */
	size_t key_len;
	kw_write_fn write;
	void *ctx;
	unsigned long long written;	/* stream offset written up to */
	json_t *counts;
};

static int
count(struct kw_redactor *r, const char *rule)
{
	json_t *n = json_object_get(r->counts, rule);

	if (n)
		return json_integer_set(n, json_integer_value(n) + 1) < 0 ? KW_ERR_NOMEM : 0;
	return json_object_set_new(r->counts, rule, json_integer(1)) < 0 ? KW_ERR_NOMEM : 0;
}

static int
write_partial(struct kw_redactor *r, const char *value, size_t len)
{
	char stars[64];
	size_t keep = len >= PARTIAL_MIN ? 4 : 0, n = len - keep;
	int rc;

	memset(stars, '*', sizeof(stars));
	while (n > 0) {
		size_t k = n < sizeof(stars) ? n : sizeof(stars);
		if ((rc = r->write(stars, k, r->ctx)) < 0)
			return rc;
		n -= k;
	}
	return keep ? r->write(value + len - keep, keep, r->ctx) : 0;
}

static int
write_hmac(struct kw_redactor *r, const char *rule, const char *value, size_t len)
{
	crypto_auth_hmacsha256_state st;
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	char hex[2 * crypto_auth_hmacsha256_BYTES + 1], out[160];
	int n;

	crypto_auth_hmacsha256_init(&st, r->key, r->key_len);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)value, len);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
	n = snprintf(out, sizeof(out), "[%.100s:%.16s]", rule, hex);
	sodium_memzero(&st, sizeof(st));
	return r->write(out, (size_t)n, r->ctx);
}

static int
write_replacement(struct kw_redactor *r, const struct kw_finding *f, const char *value,
    size_t len)
{
	char out[160];
	int n;

	switch (r->mode) {
	case KW_REDACT_PARTIAL:
		return write_partial(r, value, len);
	case KW_REDACT_HMAC:
		return write_hmac(r, f->rule, value, len);
	case KW_REDACT_REPLACE:
		break;
	}
	if (f->replacement)
		return r->write(f->replacement, strlen(f->replacement), r->ctx);
	n = snprintf(out, sizeof(out), "[REDACTED:%.100s]", f->rule);
	return r->write(out, (size_t)n, r->ctx);
}

/* The text before the finding (still in the stream's buffer), then its replacement. */
static int
on_finding(const struct kw_finding *f, const char *value, size_t len, void *ctx)
{
	struct kw_redactor *r = ctx;
	size_t before = (size_t)(f->start - r->written);
	int rc;

	if (before && (rc = r->write(value - before, before, r->ctx)) < 0)
		return rc;
	if ((rc = write_replacement(r, f, value, len)) < 0 || (rc = count(r, f->rule)) < 0)
		return rc;
	r->written = f->end;
	return 0;
}

static int
on_flush(const char *buf, unsigned long long base, unsigned long long upto, void *ctx)
{
	struct kw_redactor *r = ctx;
	int rc;

	if (upto <= r->written)
		return 0;
	if ((rc = r->write(buf + (r->written - base), (size_t)(upto - r->written), r->ctx)) < 0)
		return rc;
	r->written = upto;
	return 0;
}

int
kw_redactor_new(const struct kw_detector *d, enum kw_redact_mode mode,
    const unsigned char *key, size_t key_len, kw_write_fn write, void *ctx,
    struct kw_redactor **ret)
{
	struct kw_redactor *r;
	int rc = KW_ERR_NOMEM;

	if (mode == KW_REDACT_HMAC && (!key || key_len == 0))
		return KW_ERR_INVALID;
	if (!(r = calloc(1, sizeof(*r))))
		return KW_ERR_NOMEM;
	r->mode = mode;
	r->write = write;
	r->ctx = ctx;
	if (!(r->counts = json_object()))
		goto out;
	if (mode == KW_REDACT_HMAC) {
		/* Idempotent; sodium_malloc needs it. */
		if (sodium_init() < 0 || !(r->key = sodium_malloc(key_len)))
			goto out;
		memcpy(r->key, key, key_len);
		r->key_len = key_len;
	}
	if ((rc = kw_detect_stream_new(d, on_finding, r, &r->stream)) < 0)
		goto out;
	kw_detect_stream_set_flush(r->stream, on_flush);
	*ret = TAKE_PTR(r);
	rc = 0;
 out:
	kw_redactor_free(r);
	return rc;
}

int
kw_redactor_feed(struct kw_redactor *r, const char *buf, size_t len)
{
	return kw_detect_stream_feed(r->stream, buf, len);
}

int
kw_redactor_end(struct kw_redactor *r)
{
	return kw_detect_stream_end(r->stream);
}

json_t *
kw_redactor_counts(const struct kw_redactor *r)
{
	return r->counts;
}

void
kw_redactor_free(struct kw_redactor *r)
{
	if (!r)
		return;
	kw_detect_stream_free(r->stream);
	sodium_free(r->key);
	json_decref(r->counts);
	free(r);
}

/* A growing output buffer, wiped when it moves or is dropped. */
struct outbuf {
	char *p;
	size_t len, cap;
};

static int
out_write(const char *buf, size_t len, void *ctx)
{
	struct outbuf *o = ctx;

	if (o->cap - o->len <= len) {
		size_t cap = o->cap ? o->cap : 4096;
		while (cap - o->len <= len)
			cap *= 2;
		char *p = malloc(cap);
		if (!p)
			return KW_ERR_NOMEM;
		if (o->p) {
			memcpy(p, o->p, o->len);
			sodium_memzero(o->p, o->cap);
		}
		free(o->p);
		o->p = p;
		o->cap = cap;
	}
	memcpy(o->p + o->len, buf, len);
	o->len += len;
	o->p[o->len] = '\0';
	return 0;
}

int
kw_redact_buffer(const struct kw_detector *d, enum kw_redact_mode mode,
    const unsigned char *key, size_t key_len, const char *in, size_t len, char **ret_out,
    size_t *ret_len, json_t **ret_counts)
{
	struct kw_redactor *r = NULL;
	struct outbuf o = { 0 };
	int rc;

	if ((rc = kw_redactor_new(d, mode, key, key_len, out_write, &o, &r)) < 0 ||
	    (rc = kw_redactor_feed(r, in, len)) < 0 ||
	    (rc = kw_redactor_end(r)) < 0 ||
	    (rc = out_write("", 0, &o)) < 0)
		goto out;
	*ret_out = TAKE_PTR(o.p);
	*ret_len = o.len;
	if (ret_counts)
		*ret_counts = json_incref(r->counts);
	rc = 0;
 out:
	if (o.p) {
		sodium_memzero(o.p, o.cap);
		free(o.p);
	}
	kw_redactor_free(r);
	return rc;
}
