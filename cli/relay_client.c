/*
 * relay_client.c - inside `keywarden run`'s sandbox, the CLI's way to the
 * broker: the run's relay on loopback TCP (KEYWARDEN_RELAY, set by the
 * run for its child), since the broker's socket is out of reach there.
 * The relay passes only what the hook and an apiKeyHelper need (see
 * sandbox_relay.h).  Only 127.0.0.1 is accepted: the relay never listens
 * anywhere else, and the token must not travel off the machine.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/sandbox_relay.h"
#include "client/client_fd.h"
#include "common/errors.h"

#define CONNECT_TIMEOUT_S	10

/* "127.0.0.1:PORT:TOKEN": the port and a pointer to the token.  0 or KW_ERR_INVALID. */
static int
parse_spec(const char *spec, unsigned short *port, const char **token)
{
	static const char host[] = "127.0.0.1:";
	char *end;
	long p;

	if (strncmp(spec, host, sizeof(host) - 1) != 0)
		return KW_ERR_INVALID;
	errno = 0;
	p = strtol(spec + sizeof(host) - 1, &end, 10);
	if (errno || end == spec + sizeof(host) - 1 || *end != ':' || p < 1 || p > 65535)
		return KW_ERR_INVALID;
	*token = end + 1;
	if (strlen(*token) != KW_RELAY_TOKEN_HEX ||
	    strspn(*token, "0123456789abcdef") != KW_RELAY_TOKEN_HEX)
		return KW_ERR_INVALID;
	*port = (unsigned short)p;
	return 0;
}

int
kw_cli_relay_connect(const char *spec, kw_client **ret, char *why, size_t why_len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = CONNECT_TIMEOUT_S };
	char line[sizeof("KWRELAY \n") + KW_RELAY_TOKEN_HEX];
	const char *token;
	unsigned short port;
	int fd, r, n;

	if (parse_spec(spec, &port, &token) < 0) {
		snprintf(why, why_len, "%s is not 127.0.0.1:PORT:TOKEN (it is set by keywarden "
		    "run for the command it runs)", KW_RELAY_ENV);
		return KW_ERR_INVALID;
	}
	sa.sin_port = htons(port);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		snprintf(why, why_len, "socket: %s", strerror(errno));
		return KW_ERR_CONNECT;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int saved = errno;

		snprintf(why, why_len, "keywarden run's relay at 127.0.0.1:%u: %s", port,
		    strerror(saved));
		close(fd);
		errno = saved;
		return KW_ERR_CONNECT;
	}
	n = snprintf(line, sizeof(line), "KWRELAY %s\n", token);
	r = send(fd, line, (size_t)n, MSG_NOSIGNAL) == n ? 0 : KW_ERR_CONNECT;
	sodium_memzero(line, sizeof(line));
	if (r < 0) {
		snprintf(why, why_len, "keywarden run's relay at 127.0.0.1:%u: %s", port,
		    strerror(errno));
		close(fd);
		return r;
	}
	/* fd is the client's now, closed on failure too. */
	if ((r = kw_client_connect_fd(fd, ret)) < 0)
		snprintf(why, why_len, "keywarden run's relay at 127.0.0.1:%u: %s (a wrong "
		    "token is answered by closing)", port, kw_strerror(r));
	return r;
}
