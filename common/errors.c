/*
 * errors.c - names and sentences for KW_ERR_* codes.  The names travel on
 * the wire, so they never change once released.
 */
#include <string.h>

#include "common/errors.h"

static const struct {
	int code;
	const char *name;
	const char *text;
} errors[] = {
	{ KW_OK,		  "ok",			"success" },
	{ KW_ERR_INTERNAL,	  "internal",		"internal error" },
	{ KW_ERR_NOMEM,		  "no_memory",		"out of memory" },
	{ KW_ERR_IO,		  "io",			"input/output error" },
	{ KW_ERR_CONNECT,	  "unreachable",	"broker unreachable" },
	{ KW_ERR_CLOSED,	  "closed",		"connection closed by peer" },
	{ KW_ERR_FRAME_TOO_LARGE, "frame_too_large",	"message too large" },
	{ KW_ERR_BAD_FRAME,	  "bad_frame",		"malformed frame" },
	{ KW_ERR_BAD_JSON,	  "bad_json",		"message is not valid JSON" },
	{ KW_ERR_BAD_REQUEST,	  "bad_request",	"malformed request" },
	{ KW_ERR_UNKNOWN_OP,	  "unknown_op",		"unknown operation" },
	{ KW_ERR_HANDSHAKE,	  "handshake_required",	"handshake required first" },
	{ KW_ERR_VERSION,	  "version_mismatch",	"protocol version mismatch" },
	{ KW_ERR_DENIED,	  "denied",		"permission denied" },
	{ KW_ERR_NOT_FOUND,	  "not_found",		"not found" },
	{ KW_ERR_AUDIT,		  "audit_unavailable",	"refused: audit store unavailable" },
	{ KW_ERR_TIMEOUT,	  "timeout",		"timed out" },
	{ KW_ERR_BUSY,		  "busy",		"broker busy" },
	{ KW_ERR_CONFIG,	  "config",		"configuration error" },
	{ KW_ERR_INVALID,	  "invalid_argument",	"invalid argument" },
	{ KW_ERR_SESSION,	  "session_required",	"a valid session is required; run keywarden login" },
	{ KW_ERR_LOCKED,	  "locked",		"the account is locked" },
	{ KW_ERR_EXPIRED,	  "expired",		"the session ended; run keywarden login" },
	{ KW_ERR_BUDGET,	  "budget",		"the daily API token budget is spent" },
};

const char *
kw_error_name(int err)
{
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
		if (errors[i].code == err)
			return errors[i].name;
	return "internal";
}

int
kw_error_from_name(const char *name)
{
	if (!name)
		return KW_ERR_INTERNAL;
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
		if (strcmp(errors[i].name, name) == 0)
			return errors[i].code;
	return KW_ERR_INTERNAL;
}

const char *
kw_strerror(int err)
{
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
		if (errors[i].code == err)
			return errors[i].text;
	return "unknown error";
}
