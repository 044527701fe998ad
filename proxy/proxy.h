/*
 * proxy.h - the contracts between the parts of keywarden-proxy
 * (proxy/DESIGN.md): its settings, its link to the broker, the HTTP server,
 * the upstream forwarder, the header filter, the usage parser, Landlock and
 * the Messages-API-shaped errors.
 *
 * Internal to the program: nothing here is part of libkeywarden.  Functions
 * return 0 or a negative KW_ERR_* unless stated otherwise; ret_* outputs are
 * set only on success.
 */
#ifndef KW_PROXY_H
#define KW_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <jansson.h>

#include "common/config.h"
#include "common/macros.h"

/* Largest request body forwarded (larger: 413). */
#define KW_PROXY_BODY_MAX	(32u * 1024 * 1024)
/* Memory MHD may use per connection: longer request headers get 431. */
#define KW_PROXY_CONN_MEMORY	(64u * 1024)

/* ---- settings (config.c) ------------------------------------------------ */

enum kw_proxy_tls { KW_PROXY_TLS12, KW_PROXY_TLS13 };

struct kw_proxy_settings {
	/* broker.apiProxy.* */
	struct sockaddr_storage listen_addr;	/* loopback only */
	socklen_t listen_len;
	unsigned max_connections;
	unsigned idle_timeout_s;
	/* api.baseUrl without a trailing "/" */
	char *base_url;
	char upstream_host[256];
	int upstream_port;
	/* security.network.* and security.encryption.inTransit.* */
	bool enforce_https;
	bool verify;
	char *ca_file;				/* NULL: the system's only */
	enum kw_proxy_tls tls_min;
	char *tls13_ciphers;			/* "A:B", NULL: OpenSSL's */
	/* api.proxy.*: the corporate proxy */
	bool proxy_enabled;
	char *proxy_url;			/* "http://host:port" */
	bool proxy_basic;
	char *proxy_user;			/* templates: ${VAR} still unexpanded */
	char *proxy_pass;
	bool proxy_verify;
	/*
	 * The trusted CAs (system bundle + caFile), read and parsed once before
	 * Landlock; every upstream TLS context shares this store (forward.c).
	 */
	struct x509_store_st *ca_store;		/* X509_STORE; NULL until loaded */
	unsigned ca_count;			/* certificates in it */
};

/*
 * Read and check the proxy's keys from cfg (borrowed) into *ret (filled;
 * release with kw_proxy_settings_clear, also after a failure).  Refuses
 * (KW_ERR_CONFIG, one line in err): a listen address that is not loopback,
 * an http:// api.baseUrl under enforceHttps, a base URL whose host is not in
 * a non-empty allowedHosts, an unusable corporate proxy.  Reads no file.
 */
int kw_proxy_settings_from_config(const struct kw_config *cfg, struct kw_proxy_settings *ret,
    char *err, size_t err_len) KW_WUR KW_NONNULL(1, 2, 3);

/*
 * Load the CA bundle: the system's (curl's default CA file) plus ca_file,
 * parsed into s->ca_store (s->ca_count certificates).  KW_ERR_IO with the
 * file named in err when caFile cannot be read or holds no certificate.
 */
int kw_proxy_settings_load_cas(struct kw_proxy_settings *s, char *err, size_t err_len)
	KW_WUR KW_NONNULL(1, 2);

/* Free what the settings hold.  Accepts a zeroed struct. */
void kw_proxy_settings_clear(struct kw_proxy_settings *s);

/*
 * Expand ${NAME} references in tmpl from the environment.  *ret is
 * malloc'd; the caller wipes (sodium_memzero) and frees it.  KW_ERR_CONFIG
 * with the variable's name (never a value) in err when one is unset or a
 * reference is unterminated.
 */
int kw_proxy_expand_env(const char *tmpl, char **ret, char *err, size_t err_len)
	KW_WUR KW_NONNULL(1, 2, 3);

/* ---- the broker (broker_link.c) ------------------------------------------ */

/* Connect over fd (owned from here on) and say hello.  0 or the handshake's error. */
int kw_proxy_broker_open(int fd) KW_WUR;

/* Answer of proxy.authorize. */
struct kw_proxy_grant {
	json_t *call;		/* the call's id as the broker gave it (a reference), for proxy.record */
	char *key;		/* the real key: wipe and free with kw_proxy_grant_clear */
};

/*
 * proxy.authorize.  0 with *ret filled, or the broker's error code with a
 * malloc'd message in *ret_message (the caller frees; may be NULL).
 */
int kw_proxy_broker_authorize(const char *token, const char *method, const char *path,
    struct kw_proxy_grant *ret, char **ret_message) KW_WUR KW_NONNULL(1, 2, 3, 4, 5);
void kw_proxy_grant_clear(struct kw_proxy_grant *g);

/* proxy.ready {listen}, waited for. */
int kw_proxy_broker_ready(const char *listen) KW_WUR KW_NONNULL(1);

/* proxy.refuse and proxy.record: queued, sent by a worker (args transferred). */
void kw_proxy_broker_notify(const char *op, json_t *args) KW_NONNULL(1);

/*
 * Block until the broker's end of the connection closes (0) or sigfd (a
 * signalfd) is readable (1).
 */
int kw_proxy_broker_wait(int sigfd);

/*
 * Wait until every queued refusal and record has been sent and answered,
 * or ms passed.  0, or KW_ERR_TIMEOUT with some still unsent.
 */
int kw_proxy_broker_flush(int ms);

/* ---- the server (server.c) ----------------------------------------------- */

/*
 * Bind and listen on s->listen_addr (before Landlock, which forbids binds).
 * The listening fd, with "host:port" as bound (port 0 resolved) in
 * ret_listen; or KW_ERR_IO with the reason in err.
 */
int kw_proxy_server_listen(const struct kw_proxy_settings *s, char *ret_listen,
    size_t listen_len, char *err, size_t err_len) KW_WUR KW_NONNULL(1, 2, 4);

/*
 * Serve on fd (owned from here on) with libmicrohttpd, in its own threads
 * (started after Landlock, so they inherit it).  s is borrowed for the
 * process's life.  0, or KW_ERR_IO with the reason in err.
 */
int kw_proxy_server_start(const struct kw_proxy_settings *s, int fd, char *err,
    size_t err_len) KW_WUR KW_NONNULL(1, 3);

/*
 * Begin the stop: accept no new connections (the listening socket is
 * closed), answer a keep-alive connection's next request 503, and wait up
 * to ms for the calls in flight to end and queue their records.  Returns
 * how many calls were still running.
 */
unsigned kw_proxy_server_drain(int ms);

/* ---- upstream (forward.c) ------------------------------------------------ */

/* Once, before any thread: curl's global state and the share of TLS sessions and DNS answers. */
int kw_proxy_forward_init(const struct kw_proxy_settings *s) KW_WUR KW_NONNULL(1);

/* One upstream call in flight (opaque). */
struct kw_fwd;

/* What the client sent, borrowed for kw_fwd_start's duration. */
struct kw_fwd_request {
	const char *method;
	const char *uri;		/* raw path and query, starts with "/" */
	struct curl_slist *headers;	/* filtered client headers; transferred */
	const uint8_t *body;
	size_t body_len;
};

/*
 * Start the call with key added as x-api-key (the key is copied into curl's
 * header list and wiped there once the request is sent) and drive it until
 * the response's status and headers arrived.  0 with *ret (free with
 * kw_fwd_free), or KW_ERR_IO with "keywarden: upstream ..." in err (the
 * caller answers 502).
 */
int kw_fwd_start(const struct kw_fwd_request *req, const char *key, struct kw_fwd **ret,
    char *err, size_t err_len) KW_WUR KW_NONNULL(1, 2, 3, 4);

/* Status and headers of the response (headers borrowed, hop-by-hop already removed). */
long kw_fwd_status(const struct kw_fwd *f) KW_NONNULL(1);
const struct curl_slist *kw_fwd_headers(const struct kw_fwd *f) KW_NONNULL(1);

/*
 * Copy up to max bytes of the response body into buf, waiting for upstream
 * as needed.  > 0 bytes, 0 at the end, KW_ERR_IO when upstream failed or was
 * idle for longer than the idle timeout.
 */
ssize_t kw_fwd_read(struct kw_fwd *f, char *buf, size_t max) KW_NONNULL(1, 2);

/* The body's length as upstream announced it (Content-Length), -1 when it did not. */
long long kw_fwd_length(const struct kw_fwd *f) KW_NONNULL(1);

/* Time to the response's headers, in ms; the error text if it failed (else NULL). */
long kw_fwd_ttfb_ms(const struct kw_fwd *f) KW_NONNULL(1);
const char *kw_fwd_error(const struct kw_fwd *f) KW_NONNULL(1);

void kw_fwd_free(struct kw_fwd *f);

/* ---- headers (headers.c) ------------------------------------------------- */

/*
 * Whether a client request header is passed upstream: not hop-by-hop
 * (Connection, Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade,
 * Proxy-*), not Host, Content-Length or Expect, not a credential
 * (x-api-key, Authorization).  Case-insensitive.
 */
bool kw_proxy_header_forwarded(const char *name) KW_NONNULL(1);

/* Whether a response header goes back to the client (not hop-by-hop, not Content-Length). */
bool kw_proxy_header_returned(const char *name) KW_NONNULL(1);

/*
 * The client's credential: x-api-key, else the token of "Authorization:
 * Bearer TOKEN".  Borrowed from the arguments; NULL when neither.
 */
const char *kw_proxy_credential(const char *x_api_key, const char *authorization);

/*
 * The request's framing and header syntax, checked before anything is
 * forwarded (RFC 9112 6.3, 11.2: request smuggling).  Fed every header of
 * a request in turn, then finished; "problem" is NULL while the request is
 * acceptable, else a static one-line reason for the 400.  Refused: a name
 * that is not an RFC 9110 token (a space before the colon among them), a
 * value with a control character, a Content-Length that is not digits or
 * differs from an earlier one, a Transfer-Encoding other than "chunked",
 * and both Transfer-Encoding and Content-Length.
 */
struct kw_proxy_framing {
	const char *problem;
	bool has_length, has_te;
	unsigned long long length;
};
void kw_proxy_framing_header(struct kw_proxy_framing *f, const char *name, const char *value)
	KW_NONNULL(1, 2);
/* The verdict once every header was fed: NULL (acceptable) or the reason. */
const char *kw_proxy_framing_finish(struct kw_proxy_framing *f) KW_NONNULL(1);

/* ---- usage (usage.c) ------------------------------------------------------ */

struct kw_usage;

/* A parser for a response of this content type (NULL: JSON is assumed).  NULL on ENOMEM. */
struct kw_usage *kw_usage_new(const char *content_type);
/* Feed the next bytes of the body, in any split.  Memory stays bounded. */
void kw_usage_feed(struct kw_usage *u, const char *p, size_t n) KW_NONNULL(1);
/* Finish; then the values read (-1 / NULL when absent).  Model borrowed. */
void kw_usage_finish(struct kw_usage *u) KW_NONNULL(1);
long long kw_usage_input(const struct kw_usage *u) KW_NONNULL(1);
long long kw_usage_output(const struct kw_usage *u) KW_NONNULL(1);
const char *kw_usage_model(const struct kw_usage *u) KW_NONNULL(1);
void kw_usage_free(struct kw_usage *u);

/* ---- heap (heap.c) -------------------------------------------------------- */

/*
 * Once, before any thread: two glibc arenas, glibc's allocator set up, and
 * the key that counts connection threads.  0 or KW_ERR_NOMEM.
 */
int kw_proxy_heap_setup(void) KW_WUR;

/*
 * In a connection thread, at each request: the first time counts the
 * thread, and its exit is counted too; as the threads alive halve, freed
 * memory goes back to the kernel.
 */
void kw_proxy_heap_thread_seen(void);

/* ---- Landlock (landlock.c) ------------------------------------------------ */

/*
 * Restrict the process: read-only /etc, /usr, /lib*, no other file, no new
 * TCP bind; TCP connect only to the ports given (0 ends the list).  0, 1
 * when the kernel has no Landlock (nothing done), or KW_ERR_IO.
 */
int kw_proxy_landlock(const int *connect_ports) KW_WUR;

/* ---- errors (errors_json.c) ---------------------------------------------- */

/* The Messages API's error body {"type":"error","error":{type,message}}; malloc'd text or NULL. */
char *kw_proxy_error_body(const char *type, const char *message) KW_NONNULL(1, 2);

/*
 * The HTTP status and error type for a broker's refusal code:
 * session/expired → 401 authentication_error, denied/locked → 403
 * permission_error, budget → 429 rate_limit_error, anything else → 502
 * api_error.
 */
unsigned kw_proxy_refusal_status(int code, const char *message, const char **ret_type)
	KW_NONNULL(3);

#endif
