/*
 * frame.h - length-prefixed frames, the lowest layer of the wire protocol.
 *
 * A frame is a 4-byte big-endian body length followed by the body.  A body
 * is 1..KW_FRAME_MAX bytes; a length of 0 or above the maximum is an error
 * detected from the header alone, before any memory is allocated for the
 * body.  Shared by the broker and libkeywarden so both sides agree.
 */
#ifndef KW_FRAME_H
#define KW_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/macros.h"

#define KW_FRAME_HDR 4

/* Incremental decoder for a byte stream.  Zero-initialise, then set max. */
struct kw_frame_reader {
	size_t max;		/* largest body accepted */
	uint8_t hdr[KW_FRAME_HDR];
	size_t hdr_got;
	uint32_t len;		/* body length once the header is complete */
	uint8_t *body;		/* allocated after len passed the check */
	size_t body_got;
	int err;		/* sticky: a bad header ends the stream */
};

/* Prepare a reader that accepts bodies up to max bytes. */
void kw_frame_reader_init(struct kw_frame_reader *r, size_t max) KW_NONNULL(1);

/* Free any partial body and return to the start state. */
void kw_frame_reader_reset(struct kw_frame_reader *r) KW_NONNULL(1);

/* True while a frame has been started but not completed. */
bool kw_frame_reader_partial(const struct kw_frame_reader *r) KW_NONNULL(1);

/*
 * Consume bytes from buf[0..n).  *ret_used tells how many were consumed
 * (always set).  Returns 1 when a whole frame is ready (take it with
 * kw_frame_take before feeding more), 0 when more bytes are needed,
 * KW_ERR_FRAME_TOO_LARGE or KW_ERR_BAD_FRAME (zero length) for a bad header,
 * KW_ERR_NOMEM.  After an error the stream cannot be resynchronised: every
 * later call returns the same error until kw_frame_reader_reset.
 */
int kw_frame_feed(struct kw_frame_reader *r, const uint8_t *buf, size_t n,
    size_t *ret_used) KW_WUR KW_NONNULL(1, 4);

/*
 * Hand over the completed body: *ret_body (malloc'd, NUL-terminated past
 * *ret_len for convenience) belongs to the caller.  The reader is reset.
 * Returns KW_ERR_INTERNAL if no frame is complete.
 */
int kw_frame_take(struct kw_frame_reader *r, uint8_t **ret_body,
    size_t *ret_len) KW_WUR KW_NONNULL(1, 2, 3);

/*
 * Build header + body in one new buffer (*ret_frame, caller frees).
 * Returns KW_ERR_BAD_FRAME if len is 0, KW_ERR_FRAME_TOO_LARGE above max,
 * KW_ERR_NOMEM.
 */
int kw_frame_encode(const void *body, size_t len, size_t max,
    uint8_t **ret_frame, size_t *ret_frame_len) KW_WUR KW_NONNULL(4, 5);

#endif
