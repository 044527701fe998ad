/*
 * proto.h - the message layer of the wire protocol (JSON bodies).
 *
 * Request:  {"id": N, "op": "name", "args": {...}, "session": "kw1_..."}
 *           ("args" and "session" optional)
 * Reply:    {"id": N, "ok": true,  "result": {...}}
 *           {"id": N, "ok": false, "error": {"code": "denied", "message": "..."}}
 * The first request on a connection must be
 *           {"id": N, "op": "hello", "args": {"version": 1}}
 * id is an integer 0..2^53 chosen by the client and echoed back; it is null
 * in replies to messages whose id could not be read.
 */
#ifndef KW_PROTO_H
#define KW_PROTO_H

#include <jansson.h>
#include <stdint.h>

#include "common/macros.h"

/* Largest request id: the integers JSON numbers carry exactly. */
#define KW_PROTO_ID_MAX ((json_int_t)1 << 53)
/* Longest operation name. */
#define KW_PROTO_OP_MAX 64
/* Longest session token accepted in a request. */
#define KW_PROTO_SESSION_MAX 128

struct kw_request {
	json_t *msg;		/* the whole parsed message (owned) */
	json_int_t id;		/* -1 when absent or unusable */
	const char *op;		/* borrowed from msg */
	json_t *args;		/* borrowed from msg; an empty object if absent */
	const char *session;	/* borrowed from msg; NULL if absent */
};

/*
 * Parse a request body.  On success fills *req (release with
 * kw_request_clear).  On failure returns KW_ERR_BAD_JSON or
 * KW_ERR_BAD_REQUEST, still sets req->id when it could be read (so the
 * error reply can carry it), and writes a one-line reason to why.
 */
int kw_request_parse(const uint8_t *body, size_t len, struct kw_request *req,
    char *why, size_t why_len) KW_WUR KW_NONNULL(1, 3, 4);

/* Release what kw_request_parse filled.  Accepts a zeroed request. */
void kw_request_clear(struct kw_request *req);

/*
 * Build a request message.  args is borrowed (NULL: {}); session may be
 * NULL.  NULL on ENOMEM.
 */
json_t *kw_request_new(json_int_t id, const char *op, json_t *args, const char *session);

/* Build replies.  result is transferred; id < 0 becomes null.  NULL on ENOMEM. */
json_t *kw_reply_ok(json_int_t id, json_t *result);
json_t *kw_reply_error(json_int_t id, int err, const char *message);

/*
 * Serialise msg (borrowed) into a complete frame.  Returns 0,
 * KW_ERR_FRAME_TOO_LARGE or KW_ERR_NOMEM.  *ret_frame is the caller's.
 */
int kw_msg_encode(json_t *msg, uint8_t **ret_frame, size_t *ret_len) KW_WUR;

/*
 * Serialise msg (borrowed) as a frame appended to the buffer *buf (*len
 * bytes used of *cap; the caller's, grown here), with no copy in between.
 * Growing wipes the old block: a buffer of replies may hold keys.  0,
 * KW_ERR_FRAME_TOO_LARGE or KW_ERR_NOMEM, with *len unchanged on error.
 */
int kw_msg_append(json_t *msg, uint8_t **buf, size_t *len, size_t *cap) KW_WUR
	KW_NONNULL(2, 3, 4);

/*
 * Parse a reply body and check that its id is `id`.  On an ok reply
 * *ret_result gets a new reference to "result" and 0 is returned; on an
 * error reply the code is returned and *ret_message (if not NULL) gets a
 * malloc'd copy of the message.  KW_ERR_BAD_JSON/KW_ERR_BAD_REQUEST for
 * malformed replies.
 */
int kw_reply_parse(const uint8_t *body, size_t len, json_int_t id,
    json_t **ret_result, char **ret_message) KW_WUR KW_NONNULL(1);

#endif
