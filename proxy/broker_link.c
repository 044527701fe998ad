/*
 * broker_link.c - the proxy's one connection to the broker: the fd the
 * broker passed (proxy/DESIGN.md, "The protocol between the proxy and the
 * broker").
 *
 * Calls are serialized with a mutex (one request, one reply at a time on
 * the stream); authorize is on the request's path, so it is sent at once.
 * refuse and record are not the client's business: they go to a queue a
 * worker drains, so a keep-alive client's next request never waits for the
 * broker to file the last one.  The worker also steps aside for authorize:
 * a record's reply comes only after its audit row is on disk (an fsync),
 * and a client's next call must not wait behind the last one's record.
 * Records that finished meanwhile go together in one proxy.record
 * {records: [...]}, so they share one commit.  When the broker's end closes, the proxy has
 * no reason to live: kw_proxy_broker_wait returns and main exits.  When the
 * broker asks it to stop (SIGTERM), main drains the server and then
 * kw_proxy_broker_flush waits until every queued record has its answer, so
 * a restart loses no record of a call that was served.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "client/client_fd.h"
#include "common/clock.h"
#include "common/errors.h"
#include "proxy/proxy.h"

/* Notifications waiting for the worker; past this new ones are dropped (logged). */
#define QUEUE_MAX	4096
/* Records sent in one proxy.record (the broker takes up to KW_AP_RECORDS_MAX). */
#define BATCH_MAX	128
/* How long the worker lets records gather, and defers to waiting authorizes. */
#define GATHER_MS	2
#define DEFER_MS	5

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
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER;	/* nothing queued or sending */
static bool sending;		/* the worker holds a batch taken from the queue */
static struct note *head, *tail;
static unsigned queued;
static unsigned authorizing;	/* authorize calls waiting for or holding call_lock */

static int
call(const char *op, json_t *args, json_t **ret, char **ret_message)
{
	int r;

	pthread_mutex_lock(&call_lock);
	r = kw_client_call(client, op, args, ret, ret_message);
	pthread_mutex_unlock(&call_lock);
	return r;
}

static void
free_note(struct note *n)
{
	json_decref(n->args);
	free(n->op);
	free(n);
}

/* Wait on queue_cond (queue_lock held) until ms from now at the latest. */
static void
wait_ms(int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)ms * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	(void)pthread_cond_timedwait(&queue_cond, &queue_lock, &ts);
}

/*
 * Take the next thing to send (queue_lock held): a refusal alone, or the
 * records at the head of the queue (up to BATCH_MAX) as one array.
 */
static struct note *
take_batch(json_t **ret_records)
{
	struct note *n = head;

	*ret_records = NULL;
	if (strcmp(n->op, "proxy.record") != 0) {
		if (!(head = n->next))
			tail = NULL;
		queued--;
		return n;
	}
	json_t *records = json_array();
	while (records && head && strcmp(head->op, "proxy.record") == 0 &&
	    json_array_size(records) < BATCH_MAX) {
		n = head;
		if (!(head = n->next))
			tail = NULL;
		queued--;
		json_array_append(records, n->args);
		free_note(n);
	}
	*ret_records = records;
	return NULL;
}

static void *
notifier(void *unused)
{
	for (;;) {
		pthread_mutex_lock(&queue_lock);
		while (!head)
			pthread_cond_wait(&queue_cond, &queue_lock);
		/* Let the records of calls finishing now join this one... */
		if (queued < BATCH_MAX)
			wait_ms(GATHER_MS);
		/* ... and let a client's waiting authorize go first (not for ever). */
		if (authorizing)
			wait_ms(DEFER_MS);
		json_t *records;
		struct note *n = take_batch(&records);
		sending = true;
		pthread_mutex_unlock(&queue_lock);

		json_t *res = NULL, *args = n ? n->args : json_pack("{s:O}", "records", records);
		const char *op = n ? n->op : "proxy.record";
		char *msg = NULL;
		int r = args ? call(op, args, &res, &msg) : KW_ERR_NOMEM;
		if (r < 0)
			fprintf(stderr, "keywarden-proxy: %s: %s%s%.200s\n", op, kw_strerror(r),
			    msg ? ": " : "", msg ? msg : "");
		json_decref(res);
		free(msg);
		if (n)
			free_note(n);
		else
			json_decref(args);
		json_decref(records);
		pthread_mutex_lock(&queue_lock);
		sending = false;
		if (!head)
			pthread_cond_broadcast(&idle_cond);
		pthread_mutex_unlock(&queue_lock);
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
	pthread_mutex_lock(&queue_lock);
	authorizing++;
	pthread_mutex_unlock(&queue_lock);
	r = call("proxy.authorize", args, &res, ret_message);
	pthread_mutex_lock(&queue_lock);
	authorizing--;
	pthread_cond_signal(&queue_cond);
	pthread_mutex_unlock(&queue_lock);
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

int
kw_proxy_broker_wait(int sigfd)
{
	/* POLLRDHUP without POLLIN: replies in flight are left for call(). */
	struct pollfd p[2] = {
		{ .fd = broker_fd, .events = POLLRDHUP },
		{ .fd = sigfd, .events = POLLIN },
	};

	for (;;) {
		int n = poll(p, 2, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (p[0].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)))
			return 0;
		if (p[1].revents & POLLIN)
			return 1;
	}
}

int
kw_proxy_broker_flush(int ms)
{
	struct timespec until;
	int r = 0;

	kw_deadline_after_ms(ms, &until);
	pthread_mutex_lock(&queue_lock);
	/* The worker need not gather or defer now: wake it. */
	pthread_cond_signal(&queue_cond);
	while ((head || sending) && r != ETIMEDOUT)
		r = pthread_cond_timedwait(&idle_cond, &queue_lock, &until);
	r = head || sending ? KW_ERR_TIMEOUT : 0;
	pthread_mutex_unlock(&queue_lock);
	return r;
}
