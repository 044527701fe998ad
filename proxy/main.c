/*
 * main.c - keywarden-proxy: the API proxy's process (proxy/DESIGN.md).
 *
 * Placeholder until the proxy lands: it refuses to start, so a broker with
 * broker.apiProxy.enabled fails its start with this reason instead of
 * pretending to serve.
 */
#include <stdio.h>

int
main(void)
{
	fprintf(stderr, "keywarden-proxy: not built yet\n");
	return 2;
}
