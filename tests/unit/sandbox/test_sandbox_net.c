/*
 * test_sandbox_net.c - the sandbox's network filter, parent side: the
 * CONNECT head parser (sandbox/connect_parse.c), the host check against
 * the plan's lists, and kw_sb_net_serve for real over loopback in this
 * process: a proxy listener and a forward listener served on a thread,
 * an echo server of the test's own behind them, real clients in front.
 *
 * Every socket the test reads from has a receive timeout (5 s), so a
 * filter that never answers fails the test instead of hanging it; no test
 * waits for time to pass.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sandbox/sandbox_internal.h"

/* ---- the parser ---------------------------------------------------------- */

static int
parse(const char *s, struct kw_sb_connect_req *req)
{
	return kw_sb_connect_parse(s, strlen(s), req);
}

static void
test_parse_good(void **state)
{
	struct kw_sb_connect_req r;
	const char *h = "CONNECT api.anthropic.com:443 HTTP/1.1\r\n"
	    "Host: api.anthropic.com:443\r\nUser-Agent: curl/7.88.1\r\n"
	    "Proxy-Connection: Keep-Alive\r\nX-Empty:\r\nX-Tab:\tv\xc3\xa9\r\n\r\n";

	assert_int_equal(parse(h, &r), 1);
	assert_string_equal(r.host, "api.anthropic.com");
	assert_int_equal(r.port, 443);
	assert_int_equal(r.head_len, strlen(h));

	assert_int_equal(parse("CONNECT Example.COM.:8443 HTTP/1.0\r\n\r\n", &r), 1);
	assert_string_equal(r.host, "example.com");
	assert_int_equal(r.port, 8443);

	assert_int_equal(parse("CONNECT 10.0.0.1:65535 HTTP/1.1\r\n\r\n", &r), 1);
	assert_string_equal(r.host, "10.0.0.1");
	assert_int_equal(r.port, 65535);

	assert_int_equal(parse("CONNECT x:1 HTTP/1.1\r\n\r\n", &r), 1);
	assert_string_equal(r.host, "x");
	assert_int_equal(r.port, 1);
}

static void
test_parse_ipv6(void **state)
{
	struct kw_sb_connect_req r;

	assert_int_equal(parse("CONNECT [::1]:8443 HTTP/1.1\r\n\r\n", &r), 1);
	assert_string_equal(r.host, "::1");
	assert_int_equal(r.port, 8443);
	assert_int_equal(parse("CONNECT [2001:DB8::A]:443 HTTP/1.1\r\n\r\n", &r), 1);
	assert_string_equal(r.host, "2001:db8::a");
	assert_int_equal(parse("CONNECT [::ffff:10.0.0.1]:443 HTTP/1.1\r\n\r\n", &r), 1);
	assert_string_equal(r.host, "::ffff:10.0.0.1");
}

static void
test_parse_malformed(void **state)
{
	static const char *const bad[] = {
		/* the target */
		"CONNECT a.com HTTP/1.1\r\n\r\n",
		"CONNECT a.com: HTTP/1.1\r\n\r\n",
		"CONNECT a.com:0 HTTP/1.1\r\n\r\n",
		"CONNECT a.com:65536 HTTP/1.1\r\n\r\n",
		"CONNECT a.com:-1 HTTP/1.1\r\n\r\n",
		"CONNECT a.com:+443 HTTP/1.1\r\n\r\n",
		"CONNECT a.com:0443 HTTP/1.1\r\n\r\n",
		"CONNECT a.com:443x HTTP/1.1\r\n\r\n",
		"CONNECT a.com:4431234 HTTP/1.1\r\n\r\n",
		"CONNECT :443 HTTP/1.1\r\n\r\n",
		"CONNECT http://a.com:443/ HTTP/1.1\r\n\r\n",
		"CONNECT /a.com:443 HTTP/1.1\r\n\r\n",
		"CONNECT user@a.com:443 HTTP/1.1\r\n\r\n",
		"CONNECT a..com:443 HTTP/1.1\r\n\r\n",
		"CONNECT .a.com:443 HTTP/1.1\r\n\r\n",
		"CONNECT a.com..:443 HTTP/1.1\r\n\r\n",
		"CONNECT .:443 HTTP/1.1\r\n\r\n",
		"CONNECT -a.com:443 HTTP/1.1\r\n\r\n",
		"CONNECT a_b.com:443 HTTP/1.1\r\n\r\n",
		"CONNECT a%2ecom:443 HTTP/1.1\r\n\r\n",
		"CONNECT a.com:443:443 HTTP/1.1\r\n\r\n",
		"CONNECT \xc3\xa9.com:443 HTTP/1.1\r\n\r\n",
		/* numbers getaddrinfo would read as an address */
		"CONNECT 2130706433:443 HTTP/1.1\r\n\r\n",
		"CONNECT 0x7f.1:443 HTTP/1.1\r\n\r\n",
		"CONNECT 127.1:443 HTTP/1.1\r\n\r\n",
		"CONNECT 256.0.0.1:443 HTTP/1.1\r\n\r\n",
		"CONNECT 010.0.0.1:443 HTTP/1.1\r\n\r\n",
		"CONNECT 1.2.3.4.5:443 HTTP/1.1\r\n\r\n",
		/* IPv6 */
		"CONNECT [::1:443 HTTP/1.1\r\n\r\n",
		"CONNECT [::1]443 HTTP/1.1\r\n\r\n",
		"CONNECT [::1]: HTTP/1.1\r\n\r\n",
		"CONNECT [zz::1]:443 HTTP/1.1\r\n\r\n",
		"CONNECT [fe80::1%eth0]:443 HTTP/1.1\r\n\r\n",
		"CONNECT [1.2.3.4]:443 HTTP/1.1\r\n\r\n",
		"CONNECT []:443 HTTP/1.1\r\n\r\n",
		"CONNECT ::1:443 HTTP/1.1\r\n\r\n",
		/* the request line */
		"CONNECT a.com:443 HTTP/2.0\r\n\r\n",
		"CONNECT a.com:443 HTTP/1.1 \r\n\r\n",
		"CONNECT a.com:443 http/1.1\r\n\r\n",
		"CONNECT a.com:443\r\n\r\n",
		"CONNECT  a.com:443 HTTP/1.1\r\n\r\n",
		"CONNECT\ta.com:443 HTTP/1.1\r\n\r\n",
		" CONNECT a.com:443 HTTP/1.1\r\n\r\n",
		"\r\nCONNECT a.com:443 HTTP/1.1\r\n\r\n",
		"CONNECT a.com:443 HTTP/1.1\n\n",
		"CONNECT a.com:443 HTTP/1.1\r\r\n\r\n",
		/* headers */
		"CONNECT a.com:443 HTTP/1.1\r\nHost: a\rb\r\n\r\n",
		"CONNECT a.com:443 HTTP/1.1\r\nHost: a\nb\r\n\r\n",
		"CONNECT a.com:443 HTTP/1.1\r\nHost: a.com\r\n continued\r\n\r\n",
		"CONNECT a.com:443 HTTP/1.1\r\nHost: a.com\r\n\tcontinued\r\n\r\n",
		"CONNECT a.com:443 HTTP/1.1\r\nHost : a.com\r\n\r\n",
		"CONNECT a.com:443 HTTP/1.1\r\n: a.com\r\n\r\n",
		"CONNECT a.com:443 HTTP/1.1\r\nno colon here\r\n\r\n",
		"CONNECT a.com:443 HTTP/1.1\r\nX(y): 1\r\n\r\n",
		"CONNECT a.com:443 HTTP/1.1\r\nX: a\x7f\r\n\r\n",
		"CONNECT a.com:443 HTTP/1.1\r\nX: a\x01\r\n\r\n",
		"CONNECT a.com:443 HTTP/1.1\r\n\n",
		/* not HTTP at all: a TLS ClientHello, refused at its first byte */
		"\x16\x03\x01\x02",
		"hello\r\n\r\n",
	};
	struct kw_sb_connect_req r;

	for (size_t i = 0; i < KW_ELEMENTSOF(bad); i++) {
		memset(&r, 0x5a, sizeof(r));
		int k = parse(bad[i], &r);
		if (k != -400)
			fail_msg("case %zu (%s): %d, not -400", i, bad[i], k);
		assert_int_equal(r.port, 0x5a5a);	/* untouched on failure */
	}
	/* A NUL inside the head (strlen would stop there). */
	assert_int_equal(kw_sb_connect_parse("CONNECT a.com:443 HTTP/1.1\r\nX: \0\r\n\r\n", 36, &r),
	    -400);

	/* Too long: a name of 254 characters, a label of 64. */
	char line[600], name[300];
	memset(name, 'a', 254);
	for (int i = 63; i < 254; i += 64)
		name[i] = '.';
	name[254] = '\0';
	snprintf(line, sizeof(line), "CONNECT %s:443 HTTP/1.1\r\n\r\n", name);
	assert_int_equal(parse(line, &r), -400);
	name[253] = '\0';	/* 253: fits */
	snprintf(line, sizeof(line), "CONNECT %s:443 HTTP/1.1\r\n\r\n", name);
	assert_int_equal(parse(line, &r), 1);
	assert_int_equal(strlen(r.host), 253);
	memset(name, 'b', 64);
	strcpy(name + 64, ".com");
	snprintf(line, sizeof(line), "CONNECT %s:443 HTTP/1.1\r\n\r\n", name);
	assert_int_equal(parse(line, &r), -400);
}

static void
test_parse_method(void **state)
{
	struct kw_sb_connect_req r;

	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a.com\r\n\r\n", &r), -405);
	assert_int_equal(parse("GET http://a.com/ HTTP/1.1\r\n\r\n", &r), -405);
	assert_int_equal(parse("POST http://a.com/x HTTP/1.0\r\n\r\n", &r), -405);
	assert_int_equal(parse("connect a.com:443 HTTP/1.1\r\n\r\n", &r), -405);
	/* Judged once the request line is whole, before the headers end. */
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a", &r), -405);
	/* Not before: the line could still turn out malformed. */
	assert_int_equal(parse("GET / HTTP/1.", &r), 0);
}

static void
test_parse_split(void **state)
{
	const char *h = "CONNECT localhost:8443 HTTP/1.1\r\nHost: localhost:8443\r\n\r\n";
	size_t n = strlen(h);
	struct kw_sb_connect_req r;

	/* Every prefix wants more; the whole head is one request. */
	for (size_t i = 0; i < n; i++) {
		int k = kw_sb_connect_parse(h, i, &r);
		if (k != 0)
			fail_msg("prefix of %zu bytes: %d, not 0", i, k);
	}
	assert_int_equal(kw_sb_connect_parse(h, n, &r), 1);
	assert_int_equal(r.head_len, n);
	assert_string_equal(r.host, "localhost");

	/* Pipelined bytes (a TLS ClientHello) after the head are not the head's. */
	char buf[256];
	memcpy(buf, h, n);
	memcpy(buf + n, "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11);
	assert_int_equal(kw_sb_connect_parse(buf, n + 11, &r), 1);
	assert_int_equal(r.head_len, n);
	assert_int_equal(r.port, 8443);
}

static void
test_parse_limit(void **state)
{
	const char *line = "CONNECT a.com:443 HTTP/1.1\r\nX: ";
	size_t ll = strlen(line);
	char *buf = malloc(9000);
	struct kw_sb_connect_req r;

	assert_non_null(buf);
	/* A head of exactly 8192 bytes is read. */
	memcpy(buf, line, ll);
	memset(buf + ll, 'v', 8192 - ll - 4);
	memcpy(buf + 8192 - 4, "\r\n\r\n", 4);
	assert_int_equal(kw_sb_connect_parse(buf, 8192, &r), 1);
	assert_int_equal(r.head_len, 8192);
	/* ...also with bytes after it. */
	memset(buf + 8192, 'z', 100);
	assert_int_equal(kw_sb_connect_parse(buf, 8292, &r), 1);
	assert_int_equal(r.head_len, 8192);

	/* One byte more is refused, however much is there. */
	memcpy(buf, line, ll);
	memset(buf + ll, 'v', 8193 - ll - 4);
	memcpy(buf + 8193 - 4, "\r\n\r\n", 4);
	assert_int_equal(kw_sb_connect_parse(buf, 8192, &r), -400);
	assert_int_equal(kw_sb_connect_parse(buf, 8193, &r), -400);
	/* Short of 8 KB and no end yet: more is wanted. */
	assert_int_equal(kw_sb_connect_parse(buf, 8191, &r), 0);
	/* The head's end right at the limit's edge, CR in, LF out. */
	memcpy(buf + 8192 - 4, "\r\n\r", 3);
	assert_int_equal(kw_sb_connect_parse(buf, 8191, &r), 0);
	assert_int_equal(kw_sb_connect_parse(buf, 8192, &r), -400);
	free(buf);
}

/* ---- the host check ------------------------------------------------------ */

static void
test_host_allowed(void **state)
{
	char *hosts[] = { "localhost", "Example.ORG", "10.1.2.3", "[2001:db8::1]", "dot.net." };
	char *domains[] = { "anthropic.com", ".github.com", "*.example.net", "0.1", "1.2.3.4" };
	struct kw_sandbox_plan plan = {
		.net = KW_SB_NET_FILTERED,
		.allowed_hosts = hosts, .n_hosts = KW_ELEMENTSOF(hosts),
		.allowed_domains = domains, .n_domains = KW_ELEMENTSOF(domains),
		.proxy_fd = -1,
	};

	/* exact names, case and a trailing dot */
	assert_true(kw_sb_host_allowed(&plan, "localhost"));
	assert_true(kw_sb_host_allowed(&plan, "LocalHost."));
	assert_true(kw_sb_host_allowed(&plan, "example.org"));
	assert_true(kw_sb_host_allowed(&plan, "dot.net"));
	assert_false(kw_sb_host_allowed(&plan, "www.example.org"));	/* a host is exact */
	assert_false(kw_sb_host_allowed(&plan, "localhost.evil.com"));
	assert_false(kw_sb_host_allowed(&plan, "ocalhost"));
	/* domains: the name itself and what lies under it */
	assert_true(kw_sb_host_allowed(&plan, "anthropic.com"));
	assert_true(kw_sb_host_allowed(&plan, "api.anthropic.com"));
	assert_true(kw_sb_host_allowed(&plan, "API.Anthropic.COM."));
	assert_true(kw_sb_host_allowed(&plan, "a.b.github.com"));
	assert_true(kw_sb_host_allowed(&plan, "x.example.net"));
	/* lookalikes */
	assert_false(kw_sb_host_allowed(&plan, "evilanthropic.com"));
	assert_false(kw_sb_host_allowed(&plan, "anthropic.com.evil.net"));
	assert_false(kw_sb_host_allowed(&plan, "anthropic.co"));
	assert_false(kw_sb_host_allowed(&plan, "notgithub.com"));
	/* addresses: listed ones only, never through a domain */
	assert_true(kw_sb_host_allowed(&plan, "10.1.2.3"));
	assert_false(kw_sb_host_allowed(&plan, "10.1.2.4"));
	assert_true(kw_sb_host_allowed(&plan, "2001:db8::1"));
	assert_true(kw_sb_host_allowed(&plan, "2001:0db8:0::1"));	/* the same address */
	assert_true(kw_sb_host_allowed(&plan, "[2001:db8::1]"));
	assert_false(kw_sb_host_allowed(&plan, "::1"));
	assert_false(kw_sb_host_allowed(&plan, "127.0.0.1"));
	assert_false(kw_sb_host_allowed(&plan, "10.0.0.1"));	/* "0.1" is no domain of it */
	assert_false(kw_sb_host_allowed(&plan, "1.2.3.4"));	/* an address in the domains */
	assert_false(kw_sb_host_allowed(&plan, ""));
	assert_false(kw_sb_host_allowed(&plan, "."));

	/* Empty lists admit nothing. */
	struct kw_sandbox_plan none = { .net = KW_SB_NET_FILTERED, .proxy_fd = -1 };
	assert_false(kw_sb_host_allowed(&none, "localhost"));
}

/* ---- the child's listeners ----------------------------------------------- */

static void
test_child_listen(void **state)
{
	/* Here, not in a namespace: forward ports that are free on this host. */
	unsigned short ports[2];
	for (int i = 0; i < 2; i++) {
		struct sockaddr_in sin = { .sin_family = AF_INET,
		    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t sl = sizeof(sin);
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
		assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
		ports[i] = ntohs(sin.sin_port);
		close(fd);
	}
	struct kw_sandbox_plan plan = { .net = KW_SB_NET_NONE, .forward_ports = ports,
	    .n_forwards = 2, .proxy_fd = -1 };
	struct kw_sb_listener l[3];
	size_t n = 99;
	char err[256];

	assert_int_equal(kw_sb_net_child_listen(&plan, l, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		struct sockaddr_in sin;
		socklen_t sl = sizeof(sin);
		int acc = 0;
		socklen_t al = sizeof(acc);

		assert_false(l[i].is_proxy);
		assert_int_equal(l[i].port, ports[i]);
		assert_int_equal(getsockname(l[i].fd, (struct sockaddr *)&sin, &sl), 0);
		assert_int_equal(ntohs(sin.sin_port), ports[i]);
		assert_int_equal(ntohl(sin.sin_addr.s_addr), INADDR_LOOPBACK);
		assert_true(fcntl(l[i].fd, F_GETFD) & FD_CLOEXEC);
		assert_int_equal(getsockopt(l[i].fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al), 0);
		assert_int_equal(acc, 1);
	}
	/* A port taken twice: the error names it, nothing stays open. */
	int first = l[0].fd;
	ports[1] = ports[0];
	close(l[1].fd);
	assert_int_not_equal(kw_sb_net_child_listen(&plan, l, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	char want[16];
	snprintf(want, sizeof(want), ":%u", ports[0]);
	assert_non_null(strstr(err, want));
	close(first);
}

/* ---- the serve loop, over loopback --------------------------------------- */

#define MAX_ECHO 32

/* An echo server of the test's own: echoes, passes EOF on, then closes. */
struct echo {
	int lfd, stop[2];
	unsigned short port;
	pthread_t accept_thread, conns[MAX_ECHO];
	int n_conns;
};

static void *
echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[4096];
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
			break;
	shutdown(fd, SHUT_WR);
	close(fd);
	return NULL;
}

static void *
echo_accept(void *arg)
{
	struct echo *e = arg;

	for (;;) {
		struct pollfd p[2] = { { .fd = e->lfd, .events = POLLIN },
		    { .fd = e->stop[0], .events = POLLIN } };
		if (poll(p, 2, -1) < 0 || p[1].revents)
			break;
		int c = accept4(e->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0 || e->n_conns == MAX_ECHO) {
			if (c >= 0)
				close(c);
			continue;
		}
		pthread_create(&e->conns[e->n_conns++], NULL, echo_conn, (void *)(intptr_t)c);
	}
	return NULL;
}

/* A TCP listener on 127.0.0.1 with a port of the kernel's choice. */
static int
listen_any(unsigned short *ret_port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 512), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	*ret_port = ntohs(sin.sin_port);
	return fd;
}

static int
dial(unsigned short port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	return fd;
}

static void
put(int fd, const void *s, size_t n)
{
	assert_int_equal(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Exactly n bytes (the receive timeout fails the test). */
static void
get_exact(int fd, char *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = recv(fd, buf + got, n - got, 0);
		if (k <= 0)
			fail_msg("wanted %zu bytes, got %zu, then %zd (%s)", n, got, k,
			    k < 0 ? strerror(errno) : "EOF");
		got += (size_t)k;
	}
	buf[n] = '\0';
}

/*
 * Everything up to EOF, NUL-terminated; with reset_ok, up to a reset too
 * (the busy answer is written without waiting, and a close with the
 * client's bytes unread resets the connection).
 */
static void
get_until(int fd, char *buf, size_t cap, bool reset_ok)
{
	size_t got = 0;

	for (;;) {
		ssize_t k = recv(fd, buf + got, cap - 1 - got, 0);
		if (k < 0 && reset_ok && errno == ECONNRESET)
			break;
		if (k < 0)
			fail_msg("no EOF: %s (after \"%.*s\")", strerror(errno), (int)got, buf);
		if (k == 0)
			break;
		got += (size_t)k;
		assert_true(got < cap - 1);
	}
	buf[got] = '\0';
}

static void
get_all(int fd, char *buf, size_t cap)
{
	get_until(fd, buf, cap, false);
}

/* The peer closed: EOF, or a reset when it had unread bytes; not the timeout. */
static void
closed_by_peer(int fd)
{
	char buf[256];
	ssize_t k;

	while ((k = recv(fd, buf, sizeof(buf), 0)) > 0)
		;
	if (k < 0 && errno != ECONNRESET)
		fail_msg("still open: %s", strerror(errno));
}

/*
 * total bytes through fd, written while the echo comes back, compared:
 * far more than the sockets hold, so the relay's buffers fill, wait for
 * the other side and resume many times (the 5 s poll fails a stall).
 */
static void
bulk_echo(int fd, size_t total)
{
	char *out = malloc(total), *in = malloc(total);
	size_t sent = 0, got = 0;

	assert_non_null(out);
	assert_non_null(in);
	for (size_t i = 0; i < total; i++)
		out[i] = (char)(i * 131 + (i >> 11));
	while (got < total) {
		struct pollfd p = { .fd = fd, .events = POLLIN | (sent < total ? POLLOUT : 0) };
		ssize_t k;

		assert_int_equal(poll(&p, 1, 5000), 1);
		if ((p.revents & POLLOUT) && sent < total) {
			size_t chunk = total - sent < 65536 ? total - sent : 65536;
			k = send(fd, out + sent, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
			assert_true(k > 0 || errno == EAGAIN);
			if (k > 0)
				sent += (size_t)k;
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			k = recv(fd, in + got, total - got, MSG_DONTWAIT);
			assert_true(k > 0 || (k < 0 && errno == EAGAIN));
			if (k > 0)
				got += (size_t)k;
		}
	}
	assert_memory_equal(in, out, total);
	free(in);
	free(out);
}

static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* the directory's own */
}

struct serve_args {
	const struct kw_sandbox_plan *plan;
	struct kw_sb_listener *l;
	size_t n;
	int stop_fd;
};

static void *
serve_main(void *arg)
{
	struct serve_args *a = arg;

	kw_sb_net_serve(a->plan, a->l, a->n, a->stop_fd);
	return NULL;
}

static const char ESTABLISHED[] = "HTTP/1.1 200 Connection established\r\n\r\n";

/* The whole answer to one request head on a new connection to the proxy. */
static void
ask(unsigned short proxy, const char *head, char *buf, size_t cap)
{
	int fd = dial(proxy);

	put(fd, head, strlen(head));
	get_all(fd, buf, cap);
	close(fd);
}

static void
test_serve(void **state)
{
	char *hosts[] = { "localhost" };
	struct kw_sandbox_plan plan = {
		.net = KW_SB_NET_FILTERED, .allowed_hosts = hosts, .n_hosts = 1, .proxy_fd = -1,
	};
	struct echo e = { 0 };
	struct kw_sb_listener l[2];
	unsigned short proxy, fwd;
	int stop[2], fds_before = count_fds();
	pthread_t server;
	char buf[2048], head[256];

	/* The echo server, then the filter with a proxy and a forward to it. */
	assert_int_equal(pipe2(e.stop, O_CLOEXEC), 0);
	e.lfd = listen_any(&e.port);
	assert_int_equal(pthread_create(&e.accept_thread, NULL, echo_accept, &e), 0);
	l[0] = (struct kw_sb_listener){ .fd = listen_any(&proxy), .port = 3128, .is_proxy = true };
	l[1] = (struct kw_sb_listener){ .fd = listen_any(&fwd), .port = e.port };
	assert_int_equal(pipe2(stop, O_CLOEXEC), 0);
	struct serve_args sa = { .plan = &plan, .l = l, .n = 2, .stop_fd = stop[0] };
	int proxy_lfd = l[0].fd, fwd_lfd = l[1].fd;
	assert_int_equal(pthread_create(&server, NULL, serve_main, &sa), 0);

	/* An allowed host: 200, then bytes sent with the head come back first. */
	int t = dial(proxy);
	snprintf(head, sizeof(head), "CONNECT localhost:%u HTTP/1.1\r\nHost: localhost:%u\r\n\r\n"
	    "early bytes", e.port, e.port);
	put(t, head, strlen(head));
	get_exact(t, buf, strlen(ESTABLISHED) + strlen("early bytes"));
	assert_memory_equal(buf, ESTABLISHED, strlen(ESTABLISHED));
	assert_string_equal(buf + strlen(ESTABLISHED), "early bytes");
	put(t, "round trip", 10);
	get_exact(t, buf, 10);
	assert_string_equal(buf, "round trip");
	/* Half-close: our EOF reaches the echo server, whose EOF comes back. */
	put(t, "last", 4);
	shutdown(t, SHUT_WR);
	get_all(t, buf, sizeof(buf));
	assert_string_equal(buf, "last");
	close(t);

	/* Megabytes both ways at once through a tunnel. */
	t = dial(proxy);
	snprintf(head, sizeof(head), "CONNECT localhost:%u HTTP/1.1\r\n\r\n", e.port);
	put(t, head, strlen(head));
	get_exact(t, buf, strlen(ESTABLISHED));
	assert_string_equal(buf, ESTABLISHED);
	bulk_echo(t, 8u << 20);
	close(t);

	/* An IP literal that is not listed, even for the same server. */
	snprintf(head, sizeof(head), "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\n", e.port);
	ask(proxy, head, buf, sizeof(buf));
	assert_true(strncmp(buf, "HTTP/1.1 403 ", 13) == 0);

	/* A host that is not listed: 403 naming it and the keys. */
	ask(proxy, "CONNECT notallowed.example:443 HTTP/1.1\r\n\r\n", buf, sizeof(buf));
	assert_true(strncmp(buf, "HTTP/1.1 403 Forbidden\r\n", 24) == 0);
	assert_non_null(strstr(buf, "\r\n\r\nkeywarden sandbox: notallowed.example is not in "
	    "security.network.allowedHosts/allowedDomains\n"));

	/* Another method, and bytes that are no HTTP. */
	ask(proxy, "GET http://localhost/ HTTP/1.1\r\nHost: localhost\r\n\r\n", buf, sizeof(buf));
	assert_true(strncmp(buf, "HTTP/1.1 405 ", 13) == 0);
	assert_non_null(strstr(buf, "only CONNECT"));
	ask(proxy, "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03 garbage\r\n\r\n", buf, sizeof(buf));
	assert_true(strncmp(buf, "HTTP/1.1 400 ", 13) == 0);

	/* An allowed host where nothing listens: 502 saying why. */
	unsigned short closed;
	close(listen_any(&closed));
	snprintf(head, sizeof(head), "CONNECT localhost:%u HTTP/1.1\r\n\r\n", closed);
	ask(proxy, head, buf, sizeof(buf));
	assert_true(strncmp(buf, "HTTP/1.1 502 ", 13) == 0);
	assert_non_null(strstr(buf, "Connection refused"));

	/* A client that sends half a head and stalls holds no one up. */
	int slow = dial(proxy);
	put(slow, "CONNECT local", 13);
	int fast = dial(proxy);
	snprintf(head, sizeof(head), "CONNECT localhost:%u HTTP/1.1\r\n\r\n", e.port);
	put(fast, head, strlen(head));
	get_exact(fast, buf, strlen(ESTABLISHED));
	assert_string_equal(buf, ESTABLISHED);
	put(fast, "ping", 4);
	get_exact(fast, buf, 4);
	assert_string_equal(buf, "ping");

	/* The forward relays to the port it stands for. */
	int f = dial(fwd);
	put(f, "forwarded", 9);
	get_exact(f, buf, 9);
	assert_string_equal(buf, "forwarded");

	/*
	 * Stop with connections still open (the slow one, a tunnel, a
	 * forward): the thread returns, each of them is closed, and so are
	 * the listeners.
	 */
	assert_int_equal(write(stop[1], "x", 1), 1);
	assert_int_equal(pthread_join(server, NULL), 0);
	errno = 0;
	assert_int_equal(fcntl(proxy_lfd, F_GETFD), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(fcntl(fwd_lfd, F_GETFD), -1);
	assert_int_equal(l[0].fd, -1);
	closed_by_peer(slow);
	closed_by_peer(fast);
	closed_by_peer(f);
	close(slow);
	close(fast);
	close(f);

	/* The echo server's connections end once the filter's side closed. */
	assert_int_equal(write(e.stop[1], "x", 1), 1);
	assert_int_equal(pthread_join(e.accept_thread, NULL), 0);
	for (int i = 0; i < e.n_conns; i++)
		assert_int_equal(pthread_join(e.conns[i], NULL), 0);
	close(e.lfd);
	close(e.stop[0]);
	close(e.stop[1]);
	close(stop[0]);
	close(stop[1]);
	assert_int_equal(count_fds(), fds_before);
}

/* Beyond 256 connections at once the proxy answers 503 and goes on. */
static void
test_serve_limit(void **state)
{
	struct kw_sandbox_plan plan = { .net = KW_SB_NET_FILTERED, .proxy_fd = -1 };
	struct kw_sb_listener l[1];
	unsigned short proxy;
	int stop[2], held[256], fds_before = count_fds();
	pthread_t server;
	char buf[512];

	l[0] = (struct kw_sb_listener){ .fd = listen_any(&proxy), .port = 3128, .is_proxy = true };
	assert_int_equal(pipe2(stop, O_CLOEXEC), 0);
	struct serve_args sa = { .plan = &plan, .l = l, .n = 1, .stop_fd = stop[0] };
	assert_int_equal(pthread_create(&server, NULL, serve_main, &sa), 0);

	/* 256 silent clients; each is answered only once it sends something. */
	for (int i = 0; i < 256; i++)
		held[i] = dial(proxy);
	int over = dial(proxy);
	get_all(over, buf, sizeof(buf));
	assert_true(strncmp(buf, "HTTP/1.1 503 ", 13) == 0);
	close(over);

	/* One of them goes: room for one more, which is served. */
	put(held[0], "GET / HTTP/1.1\r\n\r\n", 18);
	get_all(held[0], buf, sizeof(buf));
	assert_true(strncmp(buf, "HTTP/1.1 405 ", 13) == 0);
	close(held[0]);
	/* (Its thread may still be ending: retry until a slot is free.) */
	for (int tries = 0;; tries++) {
		assert_true(tries < 10000);
		held[0] = dial(proxy);
		put(held[0], "CONNECT nope.example:443 HTTP/1.1\r\n\r\n", 37);
		get_until(held[0], buf, sizeof(buf), true);
		close(held[0]);
		if (buf[0] != '\0' && strncmp(buf, "HTTP/1.1 503 ", 13) != 0)
			break;
	}
	assert_true(strncmp(buf, "HTTP/1.1 403 ", 13) == 0);

	assert_int_equal(write(stop[1], "x", 1), 1);
	assert_int_equal(pthread_join(server, NULL), 0);
	for (int i = 1; i < 256; i++) {
		closed_by_peer(held[i]);
		close(held[i]);
	}
	close(stop[0]);
	close(stop[1]);
	assert_int_equal(count_fds(), fds_before);
}

/*
 * As the launcher does it: a child in a fresh user + network namespace
 * makes the listeners (kw_sb_net_child_listen) and hands them over
 * (SCM_RIGHTS); this process serves them from its own namespace; the
 * child, whose only network is its loopback, reaches the echo server of
 * this namespace through the proxy and through the forward.
 */
#define CHILD_SKIP 77

static int
child_fail(int code, const char *what)
{
	dprintf(2, "netns child: %s: %s\n", what, strerror(errno));
	_exit(code);
}

/* In the child: a connection to 127.0.0.1:port of its namespace. */
static int
child_dial(unsigned short port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		child_fail(10, "connect");
	return fd;
}

/* In the child: exactly n bytes equal to want. */
static void
child_expect(int fd, const char *want, int code)
{
	size_t n = strlen(want), got = 0;
	char buf[256];

	while (got < n) {
		ssize_t k = recv(fd, buf + got, n - got, 0);
		if (k <= 0)
			child_fail(code, "recv");
		got += (size_t)k;
	}
	if (memcmp(buf, want, n) != 0) {
		dprintf(2, "netns child: got \"%.*s\", wanted \"%s\"\n", (int)n, buf, want);
		_exit(code);
	}
}

static void
netns_child(int sock, unsigned short echo_port)
{
	unsigned short fwd[1] = { echo_port };
	struct kw_sandbox_plan plan = { .net = KW_SB_NET_FILTERED, .netns = true,
	    .forward_ports = fwd, .n_forwards = 1, .proxy_fd = -1 };
	struct kw_sb_listener l[2];
	struct ifreq ifr = { .ifr_name = "lo" };
	char err[256], head[128], go;
	size_t n = 0;
	int s, fds[2];

	if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0)
		child_fail(CHILD_SKIP, "unshare");
	if ((s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 ||
	    ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		child_fail(2, "SIOCGIFFLAGS");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		child_fail(3, "SIOCSIFFLAGS");
	close(s);
	if (kw_sb_net_child_listen(&plan, l, &n, err, sizeof(err)) != 0 || n != 2 ||
	    !l[0].is_proxy || l[0].port != KW_SB_PROXY_PORT_NETNS || l[1].port != echo_port) {
		dprintf(2, "netns child: listen: %s\n", err);
		_exit(4);
	}
	fds[0] = l[0].fd;
	fds[1] = l[1].fd;
	char cbuf[CMSG_SPACE(sizeof(fds))] = { 0 };
	struct iovec iov = { .iov_base = "L", .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
	    .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	if (sendmsg(sock, &mh, 0) != 1)
		child_fail(5, "sendmsg");
	close(fds[0]);
	close(fds[1]);
	if (read(sock, &go, 1) != 1)
		child_fail(6, "waiting for the parent");

	/* Through the proxy, with bytes in the same write as the head. */
	int t = child_dial(KW_SB_PROXY_PORT_NETNS);
	snprintf(head, sizeof(head), "CONNECT localhost:%u HTTP/1.1\r\n\r\nfrom the netns",
	    echo_port);
	if (send(t, head, strlen(head), MSG_NOSIGNAL) != (ssize_t)strlen(head))
		child_fail(7, "send");
	child_expect(t, "HTTP/1.1 200 Connection established\r\n\r\nfrom the netns", 8);
	close(t);
	/* Through the forward: the same port number, as if it were here. */
	int f = child_dial(echo_port);
	if (send(f, "forwarded", 9, MSG_NOSIGNAL) != 9)
		child_fail(9, "send");
	child_expect(f, "forwarded", 11);
	close(f);
	_exit(0);
}

/*
 * The relay's listener, made in a fresh namespace as the child makes it:
 * 127.0.0.1:KW_SB_RELAY_PORT_NETNS, marked is_relay (the launcher hands it
 * to the caller, never to the network filter), beside the proxy's.
 */
static void
test_child_listen_relay(void **state)
{
	pid_t pid = fork();
	int status;

	(void)state;
	assert_true(pid >= 0);
	if (pid == 0) {
		struct kw_sandbox_plan plan = { .net = KW_SB_NET_FILTERED, .netns = true,
		    .relay = true, .relay_port = KW_SB_RELAY_PORT_NETNS, .proxy_fd = -1,
		    .relay_fd = -1 };
		struct kw_sb_listener l[2];
		struct ifreq ifr = { .ifr_name = "lo" };
		struct sockaddr_in sin;
		socklen_t sl = sizeof(sin);
		char err[256];
		size_t n = 0;
		int s;

		if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0)
			child_fail(CHILD_SKIP, "unshare");
		if ((s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 ||
		    ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
			child_fail(2, "SIOCGIFFLAGS");
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			child_fail(3, "SIOCSIFFLAGS");
		if (kw_sb_net_child_listen(&plan, l, &n, err, sizeof(err)) != 0 || n != 2)
			child_fail(4, err);
		if (!l[0].is_proxy || l[0].is_relay || l[1].is_proxy || !l[1].is_relay ||
		    l[1].port != KW_SB_RELAY_PORT_NETNS)
			_exit(5);
		if (getsockname(l[1].fd, (struct sockaddr *)&sin, &sl) != 0 ||
		    ntohs(sin.sin_port) != KW_SB_RELAY_PORT_NETNS ||
		    ntohl(sin.sin_addr.s_addr) != INADDR_LOOPBACK)
			_exit(6);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == CHILD_SKIP)
		skip();
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
test_netns(void **state)
{
	char *hosts[] = { "localhost" };
	struct kw_sandbox_plan plan = {
		.net = KW_SB_NET_FILTERED, .netns = true, .allowed_hosts = hosts, .n_hosts = 1,
		.proxy_fd = -1,
	};
	struct echo e = { 0 };
	struct kw_sb_listener l[2];
	int sp[2], stop[2], status, fds[2];
	pthread_t server;
	pid_t pid;

	assert_int_equal(pipe2(e.stop, O_CLOEXEC), 0);
	e.lfd = listen_any(&e.port);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sp[0]);
		netns_child(sp[1], e.port);
	}
	close(sp[1]);

	char cbuf[CMSG_SPACE(sizeof(fds))], byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
	    .msg_controllen = sizeof(cbuf) };
	if (recvmsg(sp[0], &mh, MSG_CMSG_CLOEXEC) != 1) {
		assert_int_equal(waitpid(pid, &status, 0), pid);
		close(sp[0]);
		close(e.lfd);
		close(e.stop[0]);
		close(e.stop[1]);
		if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_SKIP)
			skip();
		fail_msg("the child sent no listeners (status %d)", status);
	}
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	assert_non_null(cm);
	assert_int_equal(cm->cmsg_type, SCM_RIGHTS);
	memcpy(fds, CMSG_DATA(cm), sizeof(fds));
	l[0] = (struct kw_sb_listener){ .fd = fds[0], .port = KW_SB_PROXY_PORT_NETNS,
	    .is_proxy = true };
	l[1] = (struct kw_sb_listener){ .fd = fds[1], .port = e.port };

	assert_int_equal(pthread_create(&e.accept_thread, NULL, echo_accept, &e), 0);
	assert_int_equal(pipe2(stop, O_CLOEXEC), 0);
	struct serve_args sa = { .plan = &plan, .l = l, .n = 2, .stop_fd = stop[0] };
	assert_int_equal(pthread_create(&server, NULL, serve_main, &sa), 0);
	assert_int_equal(write(sp[0], "g", 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	assert_int_equal(write(stop[1], "x", 1), 1);
	assert_int_equal(pthread_join(server, NULL), 0);
	assert_int_equal(write(e.stop[1], "x", 1), 1);
	assert_int_equal(pthread_join(e.accept_thread, NULL), 0);
	for (int i = 0; i < e.n_conns; i++)
		assert_int_equal(pthread_join(e.conns[i], NULL), 0);
	close(e.lfd);
	close(e.stop[0]);
	close(e.stop[1]);
	close(stop[0]);
	close(stop[1]);
	close(sp[0]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_ipv6),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_parse_method),
		cmocka_unit_test(test_parse_split),
		cmocka_unit_test(test_parse_limit),
		cmocka_unit_test(test_host_allowed),
		cmocka_unit_test(test_child_listen),
		cmocka_unit_test(test_child_listen_relay),
		cmocka_unit_test(test_netns),
		cmocka_unit_test(test_serve),
		cmocka_unit_test(test_serve_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
