/*
 * net_serve.c - the parent's side of the sandbox's network: accept on the
 * listeners (the child's, made in its network namespace, or the plan's
 * proxy_fd in ours) and serve each connection: a port forward connects to
 * 127.0.0.1:PORT here and relays; the CONNECT filter reads one request
 * head, admits only the plan's hosts, connects, answers 200 and relays.
 *
 * The filter judges the host the program names, on any port: the lists
 * (security.network.allowedHosts/allowedDomains) name hosts, not ports,
 * and a name that resolves is what the administrator allowed.  The name
 * is resolved here, in the parent, so the confined program never learns
 * an address it could use without the filter (it has no route anyway).
 *
 * One detached thread per connection, not one poll loop: getaddrinfo(3)
 * blocks and has no descriptor to poll, and a connection's life (read a
 * head against a deadline, resolve, connect against a deadline, answer,
 * relay) reads straight as one function.  The cost is bounded: at most
 * MAX_CONNS connections (beyond that the proxy answers 503 and a forward
 * closes), small thread stacks, every wait bounded or ended by the quit
 * pipe.  kw_sb_net_serve returns only when every connection thread has
 * finished (it waits on a counter), so none outlives the plan it reads,
 * and every descriptor is closed by then.  The one wait quit cannot cut
 * short is a getaddrinfo already under way (the resolver's own timeout).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "sandbox/net_relay.h"
#include "sandbox/sandbox_internal.h"

#define MAX_CONNS		256
#define HEAD_MAX		8192	/* as connect_parse.c */
#define HEAD_TIMEOUT_MS		10000
#define CONNECT_TIMEOUT_MS	10000
#define REPLY_TIMEOUT_MS	2000	/* to write a refusal and see the client go */
#define DRAIN_MAX		65536	/* bytes read and dropped after a refusal */
#define ACCEPT_BACKOFF_MS	100	/* out of descriptors: let connections end */
#define THREAD_STACK		(256 * 1024)	/* getaddrinfo's NSS modules need some */

/* What every connection thread shares with the accept loop. */
struct serve {
	const struct kw_sandbox_plan *plan;
	int quit_rd;		/* readable once the filter stops: every wait ends */
	pthread_mutex_t lock;
	pthread_cond_t idle;	/* signalled when active drops to 0 */
	unsigned active;
};

struct conn {
	struct serve *sv;
	int client;
	unsigned short port;	/* a forward's port */
	bool is_proxy;
};

/*
 * A refusal: status line, a one-line text body, close.  The client's
 * unread bytes are drained for a moment first, since closing a socket
 * with unread input sends a reset that can destroy the answer before the
 * client reads it.
 */
static void
refuse(int fd, int status, const char *body, int quit_fd)
{
	static const struct {
		int status;
		const char *reason;
	} reasons[] = {
		{ 400, "Bad Request" }, { 403, "Forbidden" }, { 405, "Method Not Allowed" },
		{ 408, "Request Timeout" }, { 502, "Bad Gateway" },
		{ 503, "Service Unavailable" }, { 504, "Gateway Timeout" },
	};
	const char *reason = "Error";
	int64_t deadline = kw_mono_ms() + REPLY_TIMEOUT_MS;
	char msg[1024], sink[4096];
	size_t dropped = 0;
	int n;

	for (size_t i = 0; i < KW_ELEMENTSOF(reasons); i++)
		if (reasons[i].status == status)
			reason = reasons[i].reason;
	n = snprintf(msg, sizeof(msg), "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n%s\r\n%s\n", status, reason,
	    strlen(body) + 1, status == 405 ? "Allow: CONNECT\r\n" : "", body);
	if (n < 0 || (size_t)n >= sizeof(msg) ||
	    kw_sb_send_all(fd, msg, (size_t)n, deadline, quit_fd) < 0)
		return;
	shutdown(fd, SHUT_WR);
	while (dropped < DRAIN_MAX && kw_sb_wait(fd, POLLIN, deadline, quit_fd) > 0) {
		ssize_t r = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);

		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			break;
		if (r > 0)
			dropped += (size_t)r;
	}
}

/*
 * Read the request head before the deadline into buf: 1 with *req and
 * *ret_len (bytes read, the head and what followed it), 0 when the client
 * went away or the filter stops, or a negative HTTP status to answer.
 */
static int
read_head(int fd, char *buf, size_t *ret_len, struct kw_sb_connect_req *req, int quit_fd)
{
	int64_t deadline = kw_mono_ms() + HEAD_TIMEOUT_MS;
	size_t len = 0;

	for (;;) {
		int r = kw_sb_wait(fd, POLLIN, deadline, quit_fd);
		ssize_t n;

		if (r == 0)
			return -408;
		if (r < 0)
			return 0;
		n = recv(fd, buf + len, HEAD_MAX - len, MSG_DONTWAIT);
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				continue;
			return 0;
		}
		len += (size_t)n;
		r = kw_sb_connect_parse(buf, len, req);
		if (r != 0) {
			*ret_len = len;
			return r;
		}
	}
}

/*
 * Resolve and connect to host:port before the deadline: 0 with *ret_fd,
 * else the status to answer (502, 504) with why filled, or 0 with
 * *ret_fd -1 when the filter stops.
 */
static int
connect_upstream(const struct kw_sb_connect_req *req, int quit_fd, int *ret_fd, char *why,
    size_t why_len)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV,	/* not ADDRCONFIG: it hides 127.0.0.1 on a host with loopback only */
	}, *res = NULL;
	int64_t deadline = kw_mono_ms() + CONNECT_TIMEOUT_MS;
	char port[8];
	int g, r = -EHOSTUNREACH;

	*ret_fd = -1;
	snprintf(port, sizeof(port), "%u", req->port);
	g = getaddrinfo(req->host, port, &hints, &res);
	if (g != 0) {
		snprintf(why, why_len, "keywarden sandbox: cannot resolve %s: %s", req->host,
		    g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
		return 502;
	}
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		r = kw_sb_connect_within(ai->ai_addr, ai->ai_addrlen, deadline, quit_fd, ret_fd);
		if (r == 0 || r == -ECANCELED || r == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	if (r == 0 || r == -ECANCELED)
		return 0;
	if (r == -ETIMEDOUT) {
		snprintf(why, why_len, "keywarden sandbox: no answer from %s port %u within %d s",
		    req->host, req->port, CONNECT_TIMEOUT_MS / 1000);
		return 504;
	}
	snprintf(why, why_len, "keywarden sandbox: cannot connect to %s port %u: %s", req->host,
	    req->port, strerror(-r));
	return 502;
}

/* The CONNECT filter's conversation with one client. */
static void
serve_proxy(struct serve *sv, int client)
{
	static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
	struct kw_sb_connect_req req;
	char *buf = malloc(HEAD_MAX), why[512];
	size_t len = 0;
	int up = -1, r;

	if (!buf)
		return;
	r = read_head(client, buf, &len, &req, sv->quit_rd);
	if (r == 0)
		goto out;
	if (r == -408) {
		refuse(client, 408, "keywarden sandbox: no complete CONNECT request within 10 s",
		    sv->quit_rd);
		goto out;
	}
	if (r == -405) {
		refuse(client, 405, "keywarden sandbox: only CONNECT is served here (https:// "
		    "through the proxy); plain HTTP does not leave the sandbox", sv->quit_rd);
		goto out;
	}
	if (r < 0) {
		refuse(client, 400, "keywarden sandbox: malformed CONNECT request (expected "
		    "\"CONNECT host:port HTTP/1.1\", a DNS name or an IP address as host, "
		    "well-formed headers, at most 8 KB in all)", sv->quit_rd);
		goto out;
	}
	if (!kw_sb_host_allowed(sv->plan, req.host)) {
		snprintf(why, sizeof(why), "keywarden sandbox: %s is not in "
		    "security.network.allowedHosts/allowedDomains", req.host);
		refuse(client, 403, why, sv->quit_rd);
		goto out;
	}
	r = connect_upstream(&req, sv->quit_rd, &up, why, sizeof(why));
	if (r != 0) {
		refuse(client, r, why, sv->quit_rd);
		goto out;
	}
	if (up < 0 || kw_sb_send_all(client, ok, sizeof(ok) - 1,
	    kw_mono_ms() + REPLY_TIMEOUT_MS, sv->quit_rd) < 0)
		goto out;
	/* What the client sent after the head (a TLS ClientHello) goes on first. */
	kw_sb_relay(client, up, buf + req.head_len, len - req.head_len, sv->quit_rd);
 out:
	if (up >= 0)
		close(up);
	free(buf);
}

/* A forward: the same port on 127.0.0.1 of the parent's namespace. */
static void
serve_forward(struct serve *sv, int client, unsigned short port)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int up = -1;

	if (kw_sb_connect_within((struct sockaddr *)&sin, sizeof(sin),
	    kw_mono_ms() + CONNECT_TIMEOUT_MS, sv->quit_rd, &up) != 0)
		return;	/* the client sees its connection close */
	kw_sb_relay(client, up, NULL, 0, sv->quit_rd);
	close(up);
}

static void *
conn_main(void *arg)
{
	struct conn *c = arg;
	struct serve *sv = c->sv;

	if (c->is_proxy)
		serve_proxy(sv, c->client);
	else
		serve_forward(sv, c->client, c->port);
	close(c->client);
	free(c);
	/* The last touch of sv: kw_sb_net_serve may return once this unlocks. */
	pthread_mutex_lock(&sv->lock);
	if (--sv->active == 0)
		pthread_cond_signal(&sv->idle);
	pthread_mutex_unlock(&sv->lock);
	return NULL;
}

/* Hand a new connection to a thread of its own, or turn it away. */
static void
start_conn(struct serve *sv, const struct kw_sb_listener *l, int client)
{
	struct conn *c = NULL;
	pthread_attr_t attr;
	pthread_t t;
	bool full;

	pthread_mutex_lock(&sv->lock);
	full = sv->active >= MAX_CONNS;
	if (!full)
		sv->active++;
	pthread_mutex_unlock(&sv->lock);
	if (full) {
		if (l->is_proxy) {
			static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
			    "Content-Length: 0\r\nConnection: close\r\n\r\n";
			/* Best effort, never waiting: the accept loop must not block. */
			(void)!send(client, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		}
		close(client);
		return;
	}
	c = malloc(sizeof(*c));
	if (c && pthread_attr_init(&attr) == 0) {
		*c = (struct conn){ .sv = sv, .client = client, .port = l->port,
		    .is_proxy = l->is_proxy };
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, THREAD_STACK);
		int r = pthread_create(&t, &attr, conn_main, c);
		pthread_attr_destroy(&attr);
		if (r == 0)
			return;	/* c and client transferred */
	}
	free(c);
	close(client);
	pthread_mutex_lock(&sv->lock);
	if (--sv->active == 0)
		pthread_cond_signal(&sv->idle);
	pthread_mutex_unlock(&sv->lock);
}

/* The accept loop, until stop_fd is readable. */
static void
accept_loop(struct serve *sv, struct kw_sb_listener *listeners, size_t n, int stop_fd)
{
	struct pollfd *p = calloc(n + 1, sizeof(*p));
	int backoff = -1;

	if (!p)
		return;
	p[n] = (struct pollfd){ .fd = stop_fd, .events = POLLIN };
	for (;;) {
		for (size_t i = 0; i < n; i++)
			p[i] = (struct pollfd){ .fd = backoff < 0 ? listeners[i].fd : -1,
			    .events = POLLIN };
		int k = poll(p, n + 1, backoff);

		backoff = -1;
		if (k < 0 && errno != EINTR)
			break;
		if (k <= 0)
			continue;
		if (p[n].revents)
			break;
		for (size_t i = 0; i < n; i++) {
			int c;

			if (!p[i].revents)
				continue;
			c = accept4(listeners[i].fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
			if (c >= 0)
				start_conn(sv, &listeners[i], c);
			else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				backoff = ACCEPT_BACKOFF_MS;	/* else it would spin */
		}
	}
	free(p);
}

void
kw_sb_net_serve(const struct kw_sandbox_plan *plan, struct kw_sb_listener *listeners, size_t n,
    int stop_fd)
{
	struct serve sv = { .plan = plan, .quit_rd = -1 };
	int quit[2];

	/* Non-blocking: a connection that vanishes between poll and accept must not hang us. */
	for (size_t i = 0; i < n; i++) {
		int fl = fcntl(listeners[i].fd, F_GETFL);

		if (fl >= 0)
			(void)fcntl(listeners[i].fd, F_SETFL, fl | O_NONBLOCK);
	}
	/* Without the quit pipe nothing could end a connection: serve none (fail closed). */
	if (pipe2(quit, O_CLOEXEC) == 0) {
		sv.quit_rd = quit[0];
		pthread_mutex_init(&sv.lock, NULL);
		pthread_cond_init(&sv.idle, NULL);
		accept_loop(&sv, listeners, n, stop_fd);
		/* Listeners first: no new connection while the old ones end. */
		for (size_t i = 0; i < n; i++) {
			close(listeners[i].fd);
			listeners[i].fd = -1;
		}
		(void)!write(quit[1], "q", 1);
		pthread_mutex_lock(&sv.lock);
		while (sv.active > 0)
			pthread_cond_wait(&sv.idle, &sv.lock);
		pthread_mutex_unlock(&sv.lock);
		pthread_cond_destroy(&sv.idle);
		pthread_mutex_destroy(&sv.lock);
		close(quit[0]);
		close(quit[1]);
	}
	for (size_t i = 0; i < n; i++) {
		if (listeners[i].fd >= 0)
			close(listeners[i].fd);
		listeners[i].fd = -1;
	}
}
