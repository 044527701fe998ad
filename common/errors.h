/*
 * errors.h - the error codes every part of keywarden returns, and their
 * stable names.  Library code returns 0 or a negative KW_ERR_*; the names
 * travel on the wire in error replies, so they never change once released.
 * Part of the public API: client/keywarden.h includes it, and `make
 * install` puts it beside keywarden.h as keywarden/errors.h.
 */
#ifndef KW_ERRORS_H
#define KW_ERRORS_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Error codes.  Each has a stable name that travels on the wire in
 * error replies ("code": "denied"); kw_error_name() and
 * kw_error_from_name() convert.
 */
enum kw_error {
	KW_OK			= 0,
	KW_ERR_INTERNAL		= -1,	/* "internal" */
	KW_ERR_NOMEM		= -2,	/* "no_memory" */
	KW_ERR_IO		= -3,	/* "io" */
	KW_ERR_CONNECT		= -4,	/* "unreachable": no broker at the socket */
	KW_ERR_CLOSED		= -5,	/* "closed": peer closed mid-conversation */
	KW_ERR_FRAME_TOO_LARGE	= -6,	/* "frame_too_large" */
	KW_ERR_BAD_FRAME	= -7,	/* "bad_frame": zero length, truncated */
	KW_ERR_BAD_JSON		= -8,	/* "bad_json" */
	KW_ERR_BAD_REQUEST	= -9,	/* "bad_request": valid JSON, wrong shape */
	KW_ERR_UNKNOWN_OP	= -10,	/* "unknown_op" */
	KW_ERR_HANDSHAKE	= -11,	/* "handshake_required" */
	KW_ERR_VERSION		= -12,	/* "version_mismatch" */
	KW_ERR_DENIED		= -13,	/* "denied" */
	KW_ERR_NOT_FOUND	= -14,	/* "not_found" */
	KW_ERR_AUDIT		= -15,	/* "audit_unavailable": refused, fail closed */
	KW_ERR_TIMEOUT		= -16,	/* "timeout" */
	KW_ERR_BUSY		= -17,	/* "busy": too many clients */
	KW_ERR_CONFIG		= -18,	/* "config" */
	KW_ERR_INVALID		= -19,	/* "invalid_argument" */
	KW_ERR_SESSION		= -20,	/* "session_required": none, expired, revoked, foreign */
	KW_ERR_LOCKED		= -21,	/* "locked": the account is locked */
	KW_ERR_EXPIRED		= -22,	/* "expired": a proxy token's session ended */
	KW_ERR_BUDGET		= -23,	/* "budget": the daily API token budget is spent */
};

/* Stable wire name of an error code; never NULL ("internal" if unknown). */
const char *kw_error_name(int err);
/* Error code for a wire name; KW_ERR_INTERNAL for names it does not know. */
int kw_error_from_name(const char *name);
/* Human sentence for an error code; static storage, never NULL. */
const char *kw_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif
