/*
 * broker_link.c - the proxy's one connection to the broker: the fd the
 * broker passed (proxy/DESIGN.md, "The protocol between the proxy and the
 * broker").
 *
 * Calls are serialized with a mutex (one request, one reply at a time on
 * the stream); authorize is on the request's path, so it is sent at once.
 * refuse and record are not the client's business: they go to a queue a
 * worker drains, so a keep-alive client's next request never waits for the
 * broker to file the last one.  When the broker's end closes, the proxy has
 * no reason to live: kw_proxy_broker_wait_closed returns and main exits.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client/client_fd.h"
#include "common/errors.h"
#include "proxy/proxy.h"

/* Notifications waiting for the worker; past this the oldest are dropped. */
#define QUEUE_MAX	4096

struct note {
	struct note *next;
	char *op;
	json_t *args;
};

static kw_client *client;
static int broker_fd = -1;
static pthread_mutex_t call_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_cond = PTHREAD_COND_INITIALIZER;
static struct note *head, *tail;
static unsigned queued;

static int
call(const char *op, json_t *args, json_t **ret, char **ret_message)
{
	int r;

	pthread_mutex_lock(&call_lock);
	r = kw_client_call(client, op, args, ret, ret_message);
	pthread_mutex_unlock(&call_lock);
	return r;
}

static void *
notifier(void *unused)
{
	for (;;) {
		pthread_mutex_lock(&queue_lock);
		while (!head)
			pthread_cond_wait(&queue_cond, &queue_lock);
		struct note *n = head;
		if (!(head = n->next))
			tail = NULL;
		queued--;
		pthread_mutex_unlock(&queue_lock);

		json_t *res = NULL;
		char *msg = NULL;
		int r = call(n->op, n->args, &res, &msg);
		if (r < 0)
			fprintf(stderr, "keywarden-proxy: %s: %s%s%.200s\n", n->op, kw_strerror(r),
			    msg ? ": " : "", msg ? msg : "");
		json_decref(res);
		free(msg);
		json_decref(n->args);
		free(n->op);
		free(n);
	}
	return NULL;
}

int
kw_proxy_broker_open(int fd)
{
	pthread_t t;
	int r;

	broker_fd = fd;
	if ((r = kw_client_connect_fd(fd, &client)) < 0)
		return r;
	if (pthread_create(&t, NULL, notifier, NULL) != 0)
		return KW_ERR_NOMEM;
	pthread_detach(t);
	return 0;
}

int
kw_proxy_broker_ready(const char *listen)
{
	json_t *args = json_pack("{s:s}", "listen", listen), *res = NULL;
	char *msg = NULL;
	int r;

	if (!args)
		return KW_ERR_NOMEM;
	r = call("proxy.ready", args, &res, &msg);
	if (r < 0)
		fprintf(stderr, "keywarden-proxy: proxy.ready: %s%s%.200s\n", kw_strerror(r),
		    msg ? ": " : "", msg ? msg : "");
	json_decref(args);
	json_decref(res);
	free(msg);
	return r;
}

/* The key of the reply, copied; the reply's copy wiped. */
static char *
take_key(json_t *res)
{
	const char *s = json_string_value(json_object_get(res, "value"));
	char *copy;

	if (!s)
		return NULL;
	copy = strdup(s);
	sodium_memzero((char *)s, strlen(s));
	return copy;
}

int
kw_proxy_broker_authorize(const char *token, const char *method, const char *path,
    struct kw_proxy_grant *ret, char **ret_message)
{
	json_t *args = json_pack("{s:s, s:s, s:s}", "token", token, "method", method, "path", path);
	json_t *res = NULL;
	int r;

	*ret_message = NULL;
	if (!args)
		return KW_ERR_NOMEM;
	r = call("proxy.authorize", args, &res, ret_message);
	/* The token is a credential: wipe the request's copy. */
	const char *t = json_string_value(json_object_get(args, "token"));
	if (t)
		sodium_memzero((char *)t, strlen(t));
	json_decref(args);
	if (r < 0)
		return r;
	/* The id goes back in proxy.record exactly as it came (the broker's is a number). */
	ret->call = json_incref(json_object_get(res, "call"));
	ret->key = take_key(res);
	json_decref(res);
	if (!ret->call || !ret->key || !*ret->key) {
		kw_proxy_grant_clear(ret);
		return KW_ERR_BAD_REQUEST;
	}
	return 0;
}

void
kw_proxy_grant_clear(struct kw_proxy_grant *g)
{
	if (g->key) {
		sodium_memzero(g->key, strlen(g->key));
		free(g->key);
	}
	json_decref(g->call);
	g->key = NULL;
	g->call = NULL;
}

void
kw_proxy_broker_notify(const char *op, json_t *args)
{
	struct note *n = calloc(1, sizeof(*n));

	if (!n || !(n->op = strdup(op)) || !args) {
		if (n)
			free(n->op);
		free(n);
		json_decref(args);
		return;
	}
	n->args = args;
	pthread_mutex_lock(&queue_lock);
	if (queued >= QUEUE_MAX) {
		pthread_mutex_unlock(&queue_lock);
		fprintf(stderr, "keywarden-proxy: broker not keeping up, %s dropped\n", op);
		json_decref(args);
		free(n->op);
		free(n);
		return;
	}
	if (tail)
		tail->next = n;
	else
		head = n;
	tail = n;
	queued++;
	pthread_cond_signal(&queue_cond);
	pthread_mutex_unlock(&queue_lock);
}

void
kw_proxy_broker_wait_closed(void)
{
	/* POLLRDHUP without POLLIN: replies in flight are left for call(). */
	struct pollfd p = { .fd = broker_fd, .events = POLLRDHUP };

	for (;;) {
		int n = poll(&p, 1, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)))
			return;
	}
}
