/*
 * check.c - the configuration check of the proxy's settings (apiproxy.h).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/apiproxy/apiproxy.h"
#include "common/errors.h"

/* "127.0.0.1:8788", "[::1]:8788", "localhost:8788": a loopback host and a port. */
static bool
loopback_listen(const char *text)
{
	char host[128];
	const char *colon = strrchr(text, ':');
	struct in_addr a4;
	struct in6_addr a6;
	char *end;
	long port;

	if (!colon || (size_t)(colon - text) >= sizeof(host) || colon == text)
		return false;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535)
		return false;
	memcpy(host, text, (size_t)(colon - text));
	host[colon - text] = '\0';
	if (host[0] == '[') {
		size_t n = strlen(host);
		if (n < 3 || host[n - 1] != ']')
			return false;
		memmove(host, host + 1, n - 2);
		host[n - 2] = '\0';
		return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
	}
	if (strcmp(host, "localhost") == 0)
		return true;
	return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

int
kw_apiproxy_check_config(const struct kw_config *cfg, char *err, size_t err_len)
{
	const char *listen = kw_config_str(cfg, "broker.apiProxy.listen");

	if (!loopback_listen(listen)) {
		snprintf(err, err_len, "broker.apiProxy.listen: \"%.64s\" is not a loopback address "
		    "and port (such as 127.0.0.1:8788 or [::1]:8788): the proxy lends the use of "
		    "real API keys to whoever holds a token, and tokens must not cross a network",
		    listen);
		return KW_ERR_CONFIG;
	}
	return 0;
}
