/*
 * headers.c - which headers cross the proxy, and where the client's
 * credential is (proxy/DESIGN.md, "Forwarding").
 *
 * Everything end to end passes unchanged, the anthropic-* headers included.
 * What belongs to one hop (RFC 9110 7.6.1: Connection, Keep-Alive, TE,
 * Trailer, Transfer-Encoding, Upgrade, Proxy-*) stays on its hop; Host and
 * Content-Length are curl's to write for the upstream request; Expect is
 * answered by the proxy itself; and the client's credential never leaves:
 * the real key replaces it.
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "proxy/proxy.h"

static const char *const hop_by_hop[] = {
	"connection", "keep-alive", "te", "trailer", "trailers", "transfer-encoding", "upgrade",
};

static bool
is_hop_by_hop(const char *name)
{
	if (strncasecmp(name, "proxy-", 6) == 0)
		return true;
	for (size_t i = 0; i < KW_ELEMENTSOF(hop_by_hop); i++)
		if (strcasecmp(name, hop_by_hop[i]) == 0)
			return true;
	return false;
}

bool
kw_proxy_header_forwarded(const char *name)
{
	static const char *const own[] = {
		"host", "content-length", "expect", "x-api-key", "authorization",
	};

	if (!*name || is_hop_by_hop(name))
		return false;
	for (size_t i = 0; i < KW_ELEMENTSOF(own); i++)
		if (strcasecmp(name, own[i]) == 0)
			return false;
	return true;
}

bool
kw_proxy_header_returned(const char *name)
{
	/* MHD writes its own framing (chunked or a length) for the client. */
	return *name && !is_hop_by_hop(name) && strcasecmp(name, "content-length") != 0;
}

const char *
kw_proxy_credential(const char *x_api_key, const char *authorization)
{
	if (x_api_key && *x_api_key)
		return x_api_key;
	if (!authorization || strncasecmp(authorization, "bearer ", 7) != 0)
		return NULL;
	authorization += 7;
	while (*authorization == ' ')
		authorization++;
	return *authorization ? authorization : NULL;
}
