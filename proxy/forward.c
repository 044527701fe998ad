/*
 * forward.c - one upstream call with libcurl, read as it arrives
 * (proxy/DESIGN.md, "Forwarding").
 *
 * Each call has its own easy and multi handle, driven in the thread of the
 * client's connection: kw_fwd_start runs it until the status and headers
 * are in, kw_fwd_read until the next bytes of the body are, so a server-sent
 * event goes out as soon as upstream wrote it and no body is ever held
 * whole.  Warm upstream connections stay in the multi handles, lent to one
 * call at a time (take_multi); a share handle keeps TLS sessions and DNS
 * answers between them (the cost of a call is then one request on a warm
 * connection).  The transport settings are the configuration's: TLS floor
 * and TLS 1.3 suites, the CA store parsed once before Landlock and shared
 * by every TLS context (on_ssl_ctx), HTTPS only under
 * enforceHttps, the corporate proxy with its ${VAR} credentials expanded
 * for the one call and wiped.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/ssl.h>
#include <sodium.h>

#include "common/errors.h"
#include "common/log.h"
#include "proxy/proxy.h"

/* Above this much unread body, upstream is paused until the client catches up. */
#define BUF_HIGH	(1u << 20)
#define POLL_MS		1000
/*
 * Multi handles kept for later calls, each with the connection its last
 * call left open: a burst of up to this many calls leaves as many warm
 * connections for the next.  A multi runs one call at a time, so it keeps
 * one connection.  Each kept multi holds 3 descriptors at most (curl's
 * wake-up socket pair and the connection): test_api_proxy_load.py counts
 * on IDLE_MULTIS.
 */
#define IDLE_MULTIS	8
#define MULTI_CONNS	1L
/*
 * Reaching upstream (TCP, a corporate proxy's CONNECT, TLS) gets this long
 * per attempt, and an attempt that runs out before the request was begun is
 * made once more on a new connection: nothing was sent, so a retry cannot
 * repeat a call, and a handshake that stalled (seen under load, with the
 * peer's side of it complete) costs 10 s instead of failing the call.
 */
#define CONNECT_MS	10000L
#define CONNECT_ATTEMPTS	2

struct kw_fwd {
	CURL *easy;
	CURLM *multi;
	struct curl_slist *req_headers;
	struct curl_slist *key_node;	/* the x-api-key line: wiped once sent */
	struct curl_slist *resp_headers;
	long status;
	bool headers_done, done, paused;
	CURLcode result;
	char *buf;
	size_t off, len, cap;
	struct timespec start;
	time_t last_activity;
	long ttfb_ms;
	char errbuf[CURL_ERROR_SIZE];
	char err[CURL_ERROR_SIZE + 128];
};

static const struct kw_proxy_settings *settings;
static CURLSH *share;
static pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
/* Idle multi handles, the most recently given back last. */
static CURLM *idle[IDLE_MULTIS];
static size_t n_idle;
static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;

static void
share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *unused)
{
	pthread_mutex_lock(&share_locks[data]);
}

static void
share_unlock(CURL *h, curl_lock_data data, void *unused)
{
	pthread_mutex_unlock(&share_locks[data]);
}

int
kw_proxy_forward_init(const struct kw_proxy_settings *s)
{
	settings = s;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(share = curl_share_init()))
		return KW_ERR_NOMEM;
	for (size_t i = 0; i < KW_ELEMENTSOF(share_locks); i++)
		pthread_mutex_init(&share_locks[i], NULL);
	curl_share_setopt(share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	/* Not CURL_LOCK_DATA_CONNECT: curl does not support a connection cache
	   shared by threads that run at once (CURLSHOPT_SHARE(3)), and every
	   call runs in its client's thread.  Connections are kept per multi. */
	curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	return 0;
}

/*
 * A multi handle for one call, with the connections it keeps: the one given
 * back last (its connection the likeliest still open), else a new one.
 * NULL when out of memory.  Given back with give_multi.
 */
static CURLM *
take_multi(void)
{
	CURLM *m = NULL;

	pthread_mutex_lock(&idle_lock);
	if (n_idle > 0)
		m = idle[--n_idle];
	pthread_mutex_unlock(&idle_lock);
	if (!m && (m = curl_multi_init()))
		curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, MULTI_CONNS);
	return m;
}

/* A multi with no call in it, kept for the next call or, past IDLE_MULTIS, closed. */
static void
give_multi(CURLM *m)
{
	pthread_mutex_lock(&idle_lock);
	if (n_idle < IDLE_MULTIS) {
		idle[n_idle++] = m;
		m = NULL;
	}
	pthread_mutex_unlock(&idle_lock);
	if (m)
		curl_multi_cleanup(m);
}

static time_t
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void
wipe_key(struct kw_fwd *f)
{
	if (f->key_node) {
		sodium_memzero(f->key_node->data, strlen(f->key_node->data));
		f->key_node = NULL;
	}
}

static size_t
on_header(char *b, size_t size, size_t n, void *ud)
{
	struct kw_fwd *f = ud;
	size_t len = n;
	char line[8192];

	/* The request went out whole before any answer came: the key is spent. */
	wipe_key(f);
	f->last_activity = now_s();
	while (len > 0 && (b[len - 1] == '\n' || b[len - 1] == '\r'))
		len--;
	if (len >= 5 && strncmp(b, "HTTP/", 5) == 0) {
		/* A new response (after 100 Continue): start over. */
		curl_slist_free_all(f->resp_headers);
		f->resp_headers = NULL;
		const char *sp = memchr(b, ' ', len);
		f->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		return n;
	}
	if (len == 0) {
		if (f->status >= 200) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			f->headers_done = true;
			f->ttfb_ms = (ts.tv_sec - f->start.tv_sec) * 1000 +
			    (ts.tv_nsec - f->start.tv_nsec) / 1000000;
		}
		return n;
	}
	const char *colon = memchr(b, ':', len);
	if (!colon || len >= sizeof(line))
		return n;
	memcpy(line, b, len);
	line[len] = '\0';
	line[colon - b] = '\0';
	if (!kw_proxy_header_returned(line))
		return n;
	line[colon - b] = ':';
	struct curl_slist *l = curl_slist_append(f->resp_headers, line);
	if (!l)
		return 0;
	f->resp_headers = l;
	return n;
}

static size_t
on_body(char *p, size_t size, size_t n, void *ud)
{
	struct kw_fwd *f = ud;

	f->last_activity = now_s();
	if (f->len - f->off > BUF_HIGH) {
		f->paused = true;
		return CURL_WRITEFUNC_PAUSE;
	}
	/* Keep the unread bytes at the front, so the buffer never creeps. */
	if (f->off > 0) {
		memmove(f->buf, f->buf + f->off, f->len - f->off);
		f->len -= f->off;
		f->off = 0;
	}
	if (f->len + n > f->cap) {
		size_t cap = (f->len + n) * 2;
		char *b = realloc(f->buf, cap);
		if (!b)
			return 0;
		f->buf = b;
		f->cap = cap;
	}
	memcpy(f->buf + f->len, p, n);
	f->len += n;
	return n;
}

static void
describe(struct kw_fwd *f)
{
	const char *what;

	switch (f->result) {
	case CURLE_SSL_CONNECT_ERROR:
		what = "upstream TLS handshake failed";
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
		what = "upstream certificate verify failed";
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
		what = "upstream unreachable";
		break;
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_PROXY:
		what = "corporate proxy failed";
		break;
	case CURLE_UNSUPPORTED_PROTOCOL:
		what = "upstream scheme not allowed (security.network.enforceHttps)";
		break;
	case CURLE_OPERATION_TIMEDOUT:
		what = "upstream timed out";
		break;
	default:
		what = "upstream failed";
	}
	snprintf(f->err, sizeof(f->err), "keywarden: %s: %s", what,
	    f->errbuf[0] ? f->errbuf : curl_easy_strerror(f->result));
}

/*
 * One round of curl's work, waiting at most POLL_MS for the network unless
 * what the caller waits for (the headers, else body bytes) is already in.
 */
static int
drive(struct kw_fwd *f, bool want_headers)
{
	int running = 0, left;
	CURLMsg *m;

	if (curl_multi_perform(f->multi, &running) != CURLM_OK)
		return KW_ERR_IO;
	while ((m = curl_multi_info_read(f->multi, &left)))
		if (m->msg == CURLMSG_DONE) {
			f->done = true;
			f->result = m->data.result;
			if (f->result != CURLE_OK)
				describe(f);
		}
	if (f->done || (want_headers ? f->headers_done : f->len > f->off))
		return 0;
	if (now_s() - f->last_activity > (time_t)settings->idle_timeout_s) {
		snprintf(f->err, sizeof(f->err), "keywarden: upstream idle for %us",
		    settings->idle_timeout_s);
		return KW_ERR_TIMEOUT;
	}
	return curl_multi_poll(f->multi, NULL, 0, POLL_MS, NULL) == CURLM_OK ? 0 : KW_ERR_IO;
}

/*
 * Whether the call failed on the way to upstream with not a byte of the
 * request begun: curl timed out connecting, never reached the transfer
 * (pretransfer time 0), and the key line is still unspent.
 */
static bool
never_began(struct kw_fwd *f)
{
	curl_off_t pretransfer = 0;

	if (!f->done || f->result != CURLE_OPERATION_TIMEDOUT || f->headers_done || !f->key_node)
		return false;
	curl_easy_getinfo(f->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
	return pretransfer == 0;
}

/* The same call again from its start, on a connection of its own. */
static int
restart(struct kw_fwd *f)
{
	curl_multi_remove_handle(f->multi, f->easy);
	f->done = false;
	f->result = CURLE_OK;
	f->err[0] = f->errbuf[0] = '\0';
	f->last_activity = now_s();
	curl_easy_setopt(f->easy, CURLOPT_FRESH_CONNECT, 1L);
	return curl_multi_add_handle(f->multi, f->easy) == CURLM_OK ? 0 : KW_ERR_NOMEM;
}

static int
set_corporate_proxy(struct kw_fwd *f, char *err, size_t err_len)
{
	const struct kw_proxy_settings *s = settings;
	char *user = NULL, *pass = NULL, why[160];
	int r = 0;

	curl_easy_setopt(f->easy, CURLOPT_PROXY, s->proxy_url);
	/* The request's headers (the key among them) are for upstream only,
	   never for the CONNECT the corporate proxy sees (curl's default since
	   7.42.1, stated because the key depends on it). */
	curl_easy_setopt(f->easy, CURLOPT_HEADEROPT, (long)CURLHEADER_SEPARATE);
	curl_easy_setopt(f->easy, CURLOPT_HTTPPROXYTUNNEL, 1L);
	curl_easy_setopt(f->easy, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
	curl_easy_setopt(f->easy, CURLOPT_PROXY_SSL_VERIFYPEER, s->proxy_verify ? 1L : 0L);
	curl_easy_setopt(f->easy, CURLOPT_PROXY_SSL_VERIFYHOST, s->proxy_verify ? 2L : 0L);
	/* No CA file of curl's for the proxy either (an https:// one would be
	   verified against the shared store, set by on_ssl_ctx). */
	curl_easy_setopt(f->easy, CURLOPT_PROXY_CAINFO, NULL);
	curl_easy_setopt(f->easy, CURLOPT_PROXY_CAPATH, NULL);
	if (!s->proxy_basic)
		return 0;
	/* Read from the environment now, for this call only (curl keeps its copy). */
	if (kw_proxy_expand_env(s->proxy_user, &user, why, sizeof(why)) < 0 ||
	    kw_proxy_expand_env(s->proxy_pass, &pass, why, sizeof(why)) < 0) {
		snprintf(err, err_len, "keywarden: corporate proxy credentials (api.proxy.auth): %s",
		    why);
		r = KW_ERR_CONFIG;
	} else {
		curl_easy_setopt(f->easy, CURLOPT_PROXYAUTH, CURLAUTH_BASIC);
		curl_easy_setopt(f->easy, CURLOPT_PROXYUSERNAME, user);
		curl_easy_setopt(f->easy, CURLOPT_PROXYPASSWORD, pass);
	}
	if (user) {
		sodium_memzero(user, strlen(user));
		free(user);
	}
	if (pass) {
		sodium_memzero(pass, strlen(pass));
		free(pass);
	}
	return r;
}

/*
 * A new upstream TLS context (curl makes one per new connection): it gets
 * the CA store parsed at start, shared and reference-counted, instead of a
 * copy of the bundle decoded anew.  Under OpenSSL 3 that decoding takes a
 * process-wide lock and about a megabyte per connection; sharing the store
 * makes a new connection cost its handshake only.  Verification is curl's
 * as before (SSL_VERIFY_PEER, then its host name check).  Called after
 * curl populated the context's own store, which the settings leave empty.
 */
static CURLcode
on_ssl_ctx(CURL *h, void *ssl_ctx, void *store)
{
	if (!store)
		return CURLE_SSL_CACERT_BADFILE;
	SSL_CTX_set1_cert_store(ssl_ctx, store);
	return CURLE_OK;
}

static void
set_transport(struct kw_fwd *f)
{
	const struct kw_proxy_settings *s = settings;
	const char *protocols = s->enforce_https ? "https" : "http,https";

	curl_easy_setopt(f->easy, CURLOPT_PROTOCOLS_STR, protocols);
	curl_easy_setopt(f->easy, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
	curl_easy_setopt(f->easy, CURLOPT_SSLVERSION, s->tls_min == KW_PROXY_TLS13 ?
	    CURL_SSLVERSION_TLSv1_3 : CURL_SSLVERSION_TLSv1_2);
	if (s->tls13_ciphers)
		curl_easy_setopt(f->easy, CURLOPT_TLS13_CIPHERS, s->tls13_ciphers);
	curl_easy_setopt(f->easy, CURLOPT_SSL_VERIFYPEER, s->verify ? 1L : 0L);
	curl_easy_setopt(f->easy, CURLOPT_SSL_VERIFYHOST, s->verify ? 2L : 0L);
	/* curl reads and parses no CA file of its own per connection: the
	   store parsed at start is handed to each new TLS context instead. */
	curl_easy_setopt(f->easy, CURLOPT_CAINFO, NULL);
	curl_easy_setopt(f->easy, CURLOPT_CAPATH, NULL);
	curl_easy_setopt(f->easy, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
	curl_easy_setopt(f->easy, CURLOPT_SSL_CTX_DATA, s->ca_store);
	/* HTTP/1.1: one request per connection at a time, as the client sent it. */
	curl_easy_setopt(f->easy, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(f->easy, CURLOPT_SHARE, share);
	curl_easy_setopt(f->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(f->easy, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_MS);
	curl_easy_setopt(f->easy, CURLOPT_FOLLOWLOCATION, 0L);
}

static void
set_method(struct kw_fwd *f, const struct kw_fwd_request *req)
{
	if (strcmp(req->method, "HEAD") == 0) {
		curl_easy_setopt(f->easy, CURLOPT_NOBODY, 1L);
		return;
	}
	if (strcmp(req->method, "GET") == 0 && req->body_len == 0)
		return;
	if (req->body_len > 0 || strcmp(req->method, "POST") == 0 ||
	    strcmp(req->method, "PUT") == 0 || strcmp(req->method, "PATCH") == 0) {
		curl_easy_setopt(f->easy, CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : "");
		curl_easy_setopt(f->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	}
	curl_easy_setopt(f->easy, CURLOPT_CUSTOMREQUEST, req->method);
}

static int
add_key(struct kw_fwd *f, const char *key)
{
	size_t n = strlen("x-api-key: ") + strlen(key) + 1;
	char *line = malloc(n);
	struct curl_slist *l;

	if (!line)
		return KW_ERR_NOMEM;
	snprintf(line, n, "x-api-key: %s", key);
	l = curl_slist_append(f->req_headers, line);
	sodium_memzero(line, n);
	free(line);
	if (!l)
		return KW_ERR_NOMEM;
	f->req_headers = l;
	while (l->next)
		l = l->next;
	f->key_node = l;
	return 0;
}

int
kw_fwd_start(const struct kw_fwd_request *req, const char *key, struct kw_fwd **ret,
    char *err, size_t err_len)
{
	struct kw_fwd *f = calloc(1, sizeof(*f));
	char *url = NULL;
	int r = KW_ERR_NOMEM;

	if (!f) {
		curl_slist_free_all(req->headers);
		snprintf(err, err_len, "keywarden: out of memory");
		return KW_ERR_IO;
	}
	f->req_headers = req->headers;
	clock_gettime(CLOCK_MONOTONIC, &f->start);
	f->last_activity = now_s();
	if (!(f->easy = curl_easy_init()) || !(f->multi = take_multi()) ||
	    asprintf(&url, "%s%s", settings->base_url, req->uri) < 0 ||
	    (r = add_key(f, key)) < 0) {
		snprintf(err, err_len, "keywarden: out of memory");
		goto fail;
	}
	curl_easy_setopt(f->easy, CURLOPT_URL, url);
	curl_easy_setopt(f->easy, CURLOPT_ERRORBUFFER, f->errbuf);
	curl_easy_setopt(f->easy, CURLOPT_HTTPHEADER, f->req_headers);
	curl_easy_setopt(f->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(f->easy, CURLOPT_HEADERDATA, f);
	curl_easy_setopt(f->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(f->easy, CURLOPT_WRITEDATA, f);
	set_transport(f);
	set_method(f, req);
	if (settings->proxy_enabled && (r = set_corporate_proxy(f, err, err_len)) < 0)
		goto fail;
	if (curl_multi_add_handle(f->multi, f->easy) != CURLM_OK) {
		snprintf(err, err_len, "keywarden: out of memory");
		goto fail;
	}
	for (int attempt = 1;; attempt++) {
		while (!f->headers_done && !f->done)
			if ((r = drive(f, true)) < 0) {
				snprintf(err, err_len, "%s", f->err[0] ? f->err :
				    "keywarden: upstream failed");
				goto fail;
			}
		if (attempt >= CONNECT_ATTEMPTS || !never_began(f))
			break;
		kw_log_warn("upstream not reached within %ldms (%s): trying once more on a "
		    "new connection", CONNECT_MS, f->errbuf[0] ? f->errbuf : "timeout");
		if ((r = restart(f)) < 0) {
			snprintf(err, err_len, "keywarden: out of memory");
			goto fail;
		}
	}
	if (!f->headers_done) {
		snprintf(err, err_len, "%s", f->err[0] ? f->err :
		    "keywarden: upstream closed before answering");
		goto fail;
	}
	free(url);
	*ret = f;
	return 0;
 fail:
	free(url);
	kw_fwd_free(f);
	return KW_ERR_IO;
}

ssize_t
kw_fwd_read(struct kw_fwd *f, char *buf, size_t max)
{
	for (;;) {
		if (f->len > f->off) {
			size_t n = f->len - f->off < max ? f->len - f->off : max;
			memcpy(buf, f->buf + f->off, n);
			f->off += n;
			if (f->paused && f->len - f->off <= BUF_HIGH / 2) {
				f->paused = false;
				curl_easy_pause(f->easy, CURLPAUSE_CONT);
			}
			return (ssize_t)n;
		}
		if (f->done)
			return f->result == CURLE_OK ? 0 : KW_ERR_IO;
		int r = drive(f, false);
		if (r < 0)
			return r;
	}
}

long
kw_fwd_status(const struct kw_fwd *f)
{
	return f->status;
}

const struct curl_slist *
kw_fwd_headers(const struct kw_fwd *f)
{
	return f->resp_headers;
}

long long
kw_fwd_length(const struct kw_fwd *f)
{
	curl_off_t len = -1;

	if (curl_easy_getinfo(f->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len) != CURLE_OK)
		return -1;
	return len;
}

long
kw_fwd_ttfb_ms(const struct kw_fwd *f)
{
	return f->ttfb_ms;
}

const char *
kw_fwd_error(const struct kw_fwd *f)
{
	return f->err[0] ? f->err : NULL;
}

void
kw_fwd_free(struct kw_fwd *f)
{
	if (!f)
		return;
	wipe_key(f);
	/* Removed first: the connection goes back to the multi's cache, whole
	   if the call ended, closed if it was cut off. */
	if (f->multi && f->easy)
		curl_multi_remove_handle(f->multi, f->easy);
	curl_easy_cleanup(f->easy);
	if (f->multi)
		give_multi(f->multi);
	curl_slist_free_all(f->req_headers);
	curl_slist_free_all(f->resp_headers);
	free(f->buf);
	free(f);
}
