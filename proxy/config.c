/*
 * config.c - the proxy's settings, read from keywarden's configuration and
 * checked before anything listens (proxy/DESIGN.md, "Start and stop").
 *
 * Every refusal is one line naming the key, so the broker can pass it on as
 * the reason its own start failed.  The CA bundle is read and parsed here,
 * once, into one X509_STORE, before Landlock closes the file system; secrets of the corporate proxy stay as
 * ${VAR} templates until the moment a request needs them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <sodium.h>

#include "common/errors.h"
#include "common/fsutil.h"
#include "policy/match.h"
#include "proxy/proxy.h"

/* The system bundle plus one extra file; more than this is not a CA file. */
#define CA_FILE_MAX	(4u * 1024 * 1024)

static int KW_PRINTF(3, 4)
refuse(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
	return KW_ERR_CONFIG;
}

/* "127.0.0.1:8788", "[::1]:0", "localhost:8788": loopback only. */
static int
parse_listen(const char *text, struct kw_proxy_settings *s, char *err, size_t err_len)
{
	char host[64];
	const char *colon = strrchr(text, ':');
	char *end;
	long port;

	if (!colon || (size_t)(colon - text) >= sizeof(host) || colon == text)
		return refuse(err, err_len, "broker.apiProxy.listen: expected address:port, got \"%.64s\"",
		    text);
	memcpy(host, text, (size_t)(colon - text));
	host[colon - text] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || port < 0 || port > 65535)
		return refuse(err, err_len, "broker.apiProxy.listen: bad port in \"%.64s\"", text);
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host) - 2);
		host[strlen(host) - 2] = '\0';
	}
	memset(&s->listen_addr, 0, sizeof(s->listen_addr));
	if (strcasecmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	struct sockaddr_in *v4 = (struct sockaddr_in *)&s->listen_addr;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&s->listen_addr;
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		/* 127.0.0.0/8 is loopback. */
		if ((ntohl(v4->sin_addr.s_addr) >> 24) != 127)
			goto not_loopback;
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		s->listen_len = sizeof(*v4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		if (!IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr))
			goto not_loopback;
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		s->listen_len = sizeof(*v6);
		return 0;
	}
 not_loopback:
	return refuse(err, err_len, "broker.apiProxy.listen: \"%.64s\" is not a loopback address "
	    "(127.0.0.1, ::1 or localhost): the proxy serves this machine only", text);
}

static char *
dup_trimmed(const char *s)
{
	size_t n = strlen(s);

	while (n > 0 && s[n - 1] == '/')
		n--;
	return strndup(s, n);
}

static int
check_base_url(const struct kw_config *cfg, struct kw_proxy_settings *s, char *err,
    size_t err_len)
{
	const char *url = kw_config_str(cfg, "api.baseUrl");
	json_t *hosts = kw_config_get(cfg, "security.network.allowedHosts");
	struct kw_url u;
	size_t i;
	json_t *h;

	if (kw_url_parse(url, &u) < 0 || (strcmp(u.scheme, "https") && strcmp(u.scheme, "http")))
		return refuse(err, err_len, "api.baseUrl: expected https://host[:port], got \"%.128s\"",
		    url);
	if (strcmp(u.scheme, "http") == 0 && s->enforce_https)
		return refuse(err, err_len, "api.baseUrl: \"%.128s\" is plain HTTP and "
		    "security.network.enforceHttps is true; use https://", url);
	if (json_array_size(hosts) > 0) {
		bool ok = false;
		json_array_foreach(hosts, i, h)
			if (json_is_string(h) && kw_host_within(u.host, json_string_value(h)))
				ok = true;
		if (!ok)
			return refuse(err, err_len, "api.baseUrl: host %.128s is not in "
			    "security.network.allowedHosts", u.host);
	}
	snprintf(s->upstream_host, sizeof(s->upstream_host), "%s", u.host);
	s->upstream_port = u.port > 0 ? u.port : strcmp(u.scheme, "https") == 0 ? 443 : 80;
	return (s->base_url = dup_trimmed(url)) ? 0 : KW_ERR_NOMEM;
}

static int
read_ciphers(const struct kw_config *cfg, struct kw_proxy_settings *s)
{
	json_t *list = kw_config_get(cfg, "security.encryption.inTransit.cipherSuites");
	size_t i, len = 0;
	json_t *c;

	if (json_array_size(list) == 0)
		return 0;
	json_array_foreach(list, i, c)
		len += strlen(json_string_value(c)) + 1;
	if (!(s->tls13_ciphers = calloc(1, len + 1)))
		return KW_ERR_NOMEM;
	json_array_foreach(list, i, c) {
		if (i)
			strcat(s->tls13_ciphers, ":");
		strcat(s->tls13_ciphers, json_string_value(c));
	}
	return 0;
}

static int
read_corporate_proxy(const struct kw_config *cfg, struct kw_proxy_settings *s, char *err,
    size_t err_len)
{
	const char *host = kw_config_str(cfg, "api.proxy.host");
	const char *proto = kw_config_str(cfg, "api.proxy.protocol");
	long long port = kw_config_int(cfg, "api.proxy.port");
	bool v6 = strchr(host, ':') != NULL;
	char url[512];

	if (!(s->proxy_enabled = kw_config_bool(cfg, "api.proxy.enabled")))
		return 0;
	if (!*host || strpbrk(host, "/@ \t\r\n[]"))
		return refuse(err, err_len, "api.proxy.host: expected a host name, got \"%.64s\"",
		    host);
	snprintf(url, sizeof(url), "%s://%s%s%s:%lld", proto, v6 ? "[" : "", host, v6 ? "]" : "",
	    port);
	s->proxy_verify = kw_config_bool(cfg, "api.proxy.verifyCertificate");
	s->proxy_basic = strcmp(kw_config_str(cfg, "api.proxy.auth.type"), "basic") == 0;
	if (!(s->proxy_url = strdup(url)) ||
	    !(s->proxy_user = strdup(kw_config_str(cfg, "api.proxy.auth.username"))) ||
	    !(s->proxy_pass = strdup(kw_config_str(cfg, "api.proxy.auth.password"))))
		return KW_ERR_NOMEM;
	return 0;
}

int
kw_proxy_settings_from_config(const struct kw_config *cfg, struct kw_proxy_settings *s,
    char *err, size_t err_len)
{
	const char *ca = kw_config_str(cfg, "security.network.caFile");
	int r;

	memset(s, 0, sizeof(*s));
	s->max_connections = (unsigned)kw_config_int(cfg, "broker.apiProxy.maxConnections");
	s->idle_timeout_s = (unsigned)kw_config_int(cfg, "broker.apiProxy.idleTimeout");
	s->enforce_https = kw_config_bool(cfg, "security.network.enforceHttps");
	s->verify = kw_config_bool(cfg, "security.network.verifyCertificates");
	s->tls_min = strcmp(kw_config_str(cfg, "security.encryption.inTransit.protocol"),
	    "TLS1.3") == 0 ? KW_PROXY_TLS13 : KW_PROXY_TLS12;
	if ((r = parse_listen(kw_config_str(cfg, "broker.apiProxy.listen"), s, err, err_len)) < 0 ||
	    (r = check_base_url(cfg, s, err, err_len)) < 0 ||
	    (r = read_ciphers(cfg, s)) < 0 ||
	    (r = read_corporate_proxy(cfg, s, err, err_len)) < 0)
		return r;
	if (*ca && !(s->ca_file = strdup(ca)))
		return KW_ERR_NOMEM;
	return 0;
}

/* Add a PEM file's certificates to the store; how many it held, or < 0. */
static int
append_pem(struct kw_proxy_settings *s, const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	char *data = NULL;
	size_t len = 0;
	int n = 0, r;

	if (fd < 0)
		return KW_ERR_IO;
	if ((r = kw_read_fd(fd, CA_FILE_MAX, &data, &len)) < 0)
		return r;
	r = 0;
	BIO *bio = BIO_new_mem_buf(data, (int)len);
	STACK_OF(X509_INFO) *infos = bio ? PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL) : NULL;
	for (int i = 0; infos && i < sk_X509_INFO_num(infos) && r >= 0; i++) {
		X509 *x = sk_X509_INFO_value(infos, i)->x509;
		/* A certificate already there (caFile within the system bundle) is fine. */
		if (x && X509_STORE_add_cert(s->ca_store, x) == 1)
			n++;
		else if (x)
			r = KW_ERR_NOMEM;
	}
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	BIO_free(bio);
	free(data);
	return r < 0 ? r : n;
}

int
kw_proxy_settings_load_cas(struct kw_proxy_settings *s, char *err, size_t err_len)
{
	CURL *h = curl_easy_init();
	char *sys = NULL;
	int r;

	if (!h || !(s->ca_store = X509_STORE_new())) {
		curl_easy_cleanup(h);
		snprintf(err, err_len, "out of memory");
		return KW_ERR_NOMEM;
	}
	/* What curl would do by default with its own store: an intermediate
	   in the bundle may anchor a chain (X509_V_FLAG_PARTIAL_CHAIN). */
	X509_STORE_set_flags(s->ca_store, X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_TRUSTED_FIRST);
	/* curl's own default (Debian: /etc/ssl/certs/ca-certificates.crt). */
	if (curl_easy_getinfo(h, CURLINFO_CAINFO, &sys) == CURLE_OK && sys &&
	    (r = append_pem(s, sys)) > 0)
		s->ca_count += (unsigned)r;
	curl_easy_cleanup(h);
	if (!s->ca_file)
		return 0;
	r = append_pem(s, s->ca_file);
	if (r > 0)
		s->ca_count += (unsigned)r;
	if (r == KW_ERR_IO || r == KW_ERR_INVALID) {
		snprintf(err, err_len, "security.network.caFile: cannot read %.200s: %s", s->ca_file,
		    r == KW_ERR_IO ? strerror(errno) : "too large");
		return KW_ERR_IO;
	}
	if (r == 0) {
		snprintf(err, err_len, "security.network.caFile: %.200s holds no PEM certificate",
		    s->ca_file);
		return KW_ERR_IO;
	}
	return r < 0 ? r : 0;
}

void
kw_proxy_settings_clear(struct kw_proxy_settings *s)
{
	free(s->base_url);
	free(s->ca_file);
	free(s->tls13_ciphers);
	free(s->proxy_url);
	if (s->proxy_pass)
		sodium_memzero(s->proxy_pass, strlen(s->proxy_pass));
	free(s->proxy_user);
	free(s->proxy_pass);
	X509_STORE_free(s->ca_store);
	memset(s, 0, sizeof(*s));
}

int
kw_proxy_expand_env(const char *tmpl, char **ret, char *err, size_t err_len)
{
	size_t cap = strlen(tmpl) + 1, len = 0;
	char *out = malloc(cap);
	const char *p = tmpl;

	if (!out)
		return KW_ERR_NOMEM;
	while (*p) {
		const char *val = NULL;
		size_t vlen = 1;

		if (p[0] == '$' && p[1] == '{') {
			const char *close = strchr(p + 2, '}');
			char name[128];
			size_t nlen = close ? (size_t)(close - p - 2) : 0;

			if (!close || nlen == 0 || nlen >= sizeof(name)) {
				snprintf(err, err_len, "unterminated or empty ${...} reference");
				goto fail;
			}
			memcpy(name, p + 2, nlen);
			name[nlen] = '\0';
			if (!(val = getenv(name))) {
				snprintf(err, err_len, "environment variable %.64s is not set", name);
				goto fail;
			}
			vlen = strlen(val);
			p = close + 1;
		} else {
			val = p++;
		}
		if (len + vlen + 1 > cap) {
			size_t ncap = (len + vlen + 1) * 2;
			char *grown = malloc(ncap);
			if (!grown)
				goto nomem;
			memcpy(grown, out, len);
			sodium_memzero(out, cap);
			free(out);
			out = grown;
			cap = ncap;
		}
		memcpy(out + len, val, vlen);
		len += vlen;
	}
	out[len] = '\0';
	*ret = out;
	return 0;
 nomem:
	snprintf(err, err_len, "out of memory");
 fail:
	sodium_memzero(out, cap);
	free(out);
	return KW_ERR_CONFIG;
}
