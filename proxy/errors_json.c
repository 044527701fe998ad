/*
 * errors_json.c - refusals in the Messages API's own error shape, so Claude
 * Code shows keywarden's reason instead of a bare status (proxy/DESIGN.md,
 * "What Claude Code sees").
 */
#include <stdbool.h>
#include <string.h>

#include <jansson.h>

#include "common/errors.h"
#include "proxy/proxy.h"

char *
kw_proxy_error_body(const char *type, const char *message)
{
	json_t *doc = json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error",
	    "type", type, "message", message);
	char *text;

	if (!doc)
		return NULL;
	text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	return text;
}

/* Whether code is the one named name, for names this build may not know yet. */
static bool
is_named(int code, const char *name)
{
	int named = kw_error_from_name(name);

	return named != KW_ERR_INTERNAL && code == named;
}

unsigned
kw_proxy_refusal_status(int code, const char *message, const char **ret_type)
{
	const char *m = message ? message : "";

	/* "expired" and "budget" are the broker's names for the proxy's
	   refusals; a library that does not know them returns internal, and
	   then the message decides. */
	if (code == KW_ERR_SESSION || is_named(code, "expired") || strstr(m, "expired") ||
	    strstr(m, "revoked")) {
		*ret_type = "authentication_error";
		return 401;
	}
	if (is_named(code, "budget") || strstr(m, "budget")) {
		*ret_type = "rate_limit_error";
		return 429;
	}
	if (code == KW_ERR_DENIED || code == KW_ERR_LOCKED || code == KW_ERR_NOT_FOUND) {
		*ret_type = "permission_error";
		return 403;
	}
	*ret_type = "api_error";
	return 502;
}
