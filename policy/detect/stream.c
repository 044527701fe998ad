/*
 * stream.c - input of any size in bounded memory.  The input is scanned
 * in chunks; a chunk's findings are final only where they start at least
 * a window (the longest match a rule allows) before its end, and the
 * next scan starts there, with the bytes before it kept as context (for
 * lookbehinds and the "keywarden:allow" comment).  So a match straddling
 * two chunks is found once, in the scan where it lies whole.
 *
 * A buffer is scanned the same way, in place: no copy of the input.
 */
#include <string.h>

#include <sodium.h>

#include "common/errors.h"
#include "policy/detect/detect_internal.h"

/* Bytes kept before the next scan's start. */
#define CONTEXT		KW_DETECT_LINE_BACK
#define STREAM_CAP	(CONTEXT + KW_DETECT_CHUNK + KW_DETECT_WINDOW)

struct kw_detect_stream {
	const struct kw_detector *d;
	kw_finding_fn cb;
	void *ctx;
	struct kw_scan_scratch s;
	struct kw_line_cursor lc;
	char *buf;			/* STREAM_CAP bytes; buf[0] is stream offset base */
	size_t len;
	size_t from;			/* where the next scan starts, in buf */
	unsigned long long base;
	kw_stream_flush_fn flush;	/* told before input is forgotten (the redactor) */
	int failed;			/* the first error, returned from then on */
};

/*
 * One step over buf[0, len) (stream offset base): findings starting before
 * the commit point; *ret_from gets where the next step starts.
 */
static int
step(const struct kw_detector *d, struct kw_scan_scratch *s, struct kw_line_cursor *lc,
    const char *buf, size_t len, size_t from, bool final, unsigned long long base,
    kw_finding_fn cb, void *ctx, size_t *ret_from)
{
	size_t commit = final ? len : len - KW_DETECT_WINDOW;

	return kw_scan_window(d, s, lc, buf, len, from, commit, base, cb, ctx, ret_from);
}

int
kw_detect_buffer(const struct kw_detector *d, const char *buf, size_t len,
    kw_finding_fn cb, void *ctx)
{
	struct kw_scan_scratch s;
	struct kw_line_cursor lc = { 0 };
	size_t from = 0;
	int r;

	if ((r = kw_scan_scratch_init(d, &s)) < 0)
		goto out;
	while (from < len) {
		size_t lo = from > CONTEXT ? from - CONTEXT : 0;
		size_t hi = len - from > KW_DETECT_CHUNK + KW_DETECT_WINDOW ?
		    from + KW_DETECT_CHUNK + KW_DETECT_WINDOW : len;
		size_t next;

		kw_line_cursor_advance(&lc, buf, len, 0, lo);
		if ((r = step(d, &s, &lc, buf + lo, hi - lo, from - lo, hi == len, lo, cb, ctx,
		    &next)) < 0)
			goto out;
		from = lo + next;
	}
	r = 0;
 out:
	kw_scan_scratch_done(&s);
	return r;
}

int
kw_detect_stream_new(const struct kw_detector *d, kw_finding_fn cb, void *ctx,
    struct kw_detect_stream **ret_stream)
{
	struct kw_detect_stream *st;

	if (!(st = calloc(1, sizeof(*st))))
		return KW_ERR_NOMEM;
	st->d = d;
	st->cb = cb;
	st->ctx = ctx;
	if (kw_scan_scratch_init(d, &st->s) < 0 || !(st->buf = malloc(STREAM_CAP))) {
		kw_detect_stream_free(st);
		return KW_ERR_NOMEM;
	}
	*ret_stream = st;
	return 0;
}

/* Scan the full buffer, then keep only the context and the window. */
static int
stream_step(struct kw_detect_stream *st)
{
	size_t next, keep;
	int r;

	if ((r = step(st->d, &st->s, &st->lc, st->buf, st->len, st->from, false, st->base,
	    st->cb, st->ctx, &next)) < 0)
		return r;
	if (st->flush && (r = st->flush(st->buf, st->base, st->base + next, st->ctx)) < 0)
		return r;
	keep = next > CONTEXT ? next - CONTEXT : 0;
	kw_line_cursor_advance(&st->lc, st->buf, st->len, st->base, st->base + keep);
	sodium_memzero(st->buf, keep);
	memmove(st->buf, st->buf + keep, st->len - keep);
	st->len -= keep;
	st->base += keep;
	st->from = next - keep;
	return 0;
}

int
kw_detect_stream_feed(struct kw_detect_stream *s, const char *buf, size_t len)
{
	if (s->failed)
		return s->failed;
	while (len > 0) {
		size_t n = STREAM_CAP - s->len < len ? STREAM_CAP - s->len : len;
		memcpy(s->buf + s->len, buf, n);
		s->len += n;
		buf += n;
		len -= n;
		if (s->len == STREAM_CAP) {
			int r = stream_step(s);
			if (r < 0)
				return s->failed = r;
		}
	}
	return 0;
}

int
kw_detect_stream_end(struct kw_detect_stream *s)
{
	size_t next;
	int r;

	if (s->failed)
		return s->failed;
	r = step(s->d, &s->s, &s->lc, s->buf, s->len, s->from, true, s->base, s->cb, s->ctx,
	    &next);
	if (r == 0 && s->flush)
		r = s->flush(s->buf, s->base, s->base + s->len, s->ctx);
	if (r < 0)
		return s->failed = r;
	s->from = s->len;
	return 0;
}

void
kw_detect_stream_set_flush(struct kw_detect_stream *s, kw_stream_flush_fn fn)
{
	s->flush = fn;
}

void
kw_detect_stream_free(struct kw_detect_stream *s)
{
	if (!s)
		return;
	if (s->buf)
		sodium_memzero(s->buf, STREAM_CAP);
	free(s->buf);
	kw_scan_scratch_done(&s->s);
	free(s);
}
