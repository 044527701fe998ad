/*
 * frame.c - length-prefixed frames (see frame.h).
 */
#include <sodium.h>
#include <string.h>

#include "client/frame.h"
#include "client/keywarden.h"

void
kw_frame_reader_init(struct kw_frame_reader *r, size_t max)
{
	memset(r, 0, sizeof(*r));
	r->max = max;
}

void
kw_frame_reader_reset(struct kw_frame_reader *r)
{
	/* A body cut short may hold part of a key or a token. */
	if (r->body)
		sodium_memzero(r->body, r->body_got);
	free(r->body);
	r->body = NULL;
	r->hdr_got = 0;
	r->len = 0;
	r->body_got = 0;
	r->err = 0;
}

bool
kw_frame_reader_partial(const struct kw_frame_reader *r)
{
	return r->hdr_got > 0;
}

int
kw_frame_feed(struct kw_frame_reader *r, const uint8_t *buf, size_t n,
    size_t *ret_used)
{
	size_t used = 0;

	*ret_used = 0;
	if (r->err)
		return r->err;
	if (r->hdr_got < KW_FRAME_HDR) {
		size_t want = KW_FRAME_HDR - r->hdr_got;
		size_t take = n < want ? n : want;
		memcpy(r->hdr + r->hdr_got, buf, take);
		r->hdr_got += take;
		used += take;
		*ret_used = used;
		if (r->hdr_got < KW_FRAME_HDR)
			return 0;
		r->len = (uint32_t)r->hdr[0] << 24 | (uint32_t)r->hdr[1] << 16 |
		    (uint32_t)r->hdr[2] << 8 | r->hdr[3];
		/* Decide on the header alone: nothing is allocated for a bad length. */
		if (r->len == 0)
			return r->err = KW_ERR_BAD_FRAME;
		if (r->len > r->max)
			return r->err = KW_ERR_FRAME_TOO_LARGE;
		if (!(r->body = malloc((size_t)r->len + 1)))
			return r->err = KW_ERR_NOMEM;
		r->body_got = 0;
	}
	size_t want = r->len - r->body_got;
	size_t take = (n - used) < want ? (n - used) : want;
	memcpy(r->body + r->body_got, buf + used, take);
	r->body_got += take;
	used += take;
	*ret_used = used;
	return r->body_got == r->len ? 1 : 0;
}

int
kw_frame_take(struct kw_frame_reader *r, uint8_t **ret_body, size_t *ret_len)
{
	if (r->hdr_got < KW_FRAME_HDR || !r->body || r->body_got != r->len)
		return KW_ERR_INTERNAL;
	r->body[r->len] = '\0';
	*ret_len = r->len;
	*ret_body = TAKE_PTR(r->body);
	kw_frame_reader_reset(r);
	return 0;
}

int
kw_frame_encode(const void *body, size_t len, size_t max, uint8_t **ret_frame,
    size_t *ret_frame_len)
{
	uint8_t *f;

	if (len == 0 || !body)
		return KW_ERR_BAD_FRAME;
	if (len > max)
		return KW_ERR_FRAME_TOO_LARGE;
	if (!(f = malloc(KW_FRAME_HDR + len)))
		return KW_ERR_NOMEM;
	f[0] = (uint8_t)(len >> 24);
	f[1] = (uint8_t)(len >> 16);
	f[2] = (uint8_t)(len >> 8);
	f[3] = (uint8_t)len;
	memcpy(f + KW_FRAME_HDR, body, len);
	*ret_frame = f;
	*ret_frame_len = KW_FRAME_HDR + len;
	return 0;
}
