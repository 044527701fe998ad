/*
 * doctor_apiproxy.c - the API proxy (proxy/DESIGN.md): is it on, does it
 * listen, and would it forward safely?
 *
 * With the proxy Claude Code never holds the key, so an apiKeyHelper that
 * asks for a proxy token (`key get NAME --proxy`) while the proxy is off is
 * a failure: Claude Code gets a token nothing accepts.  When it is on:
 *
 *   api-proxy.listen    something accepts at the address the broker reports
 *                       (status api_proxy.listen), else broker.apiProxy.listen;
 *   api-proxy.upstream  api.baseUrl is https (enforceHttps refuses http, and
 *                       the proxy would refuse to start) and its host is in
 *                       security.network.allowedHosts when that list is set;
 *   api-proxy.tls       certificates verified (verifyCertificates false is a
 *                       warning: anyone on the path could read the key),
 *                       TLS 1.3, a caFile that exists;
 *   api-proxy.corporate api.proxy.* sane: a host, and a password that is a
 *                       ${VAR} reference rather than a literal in the file.
 *
 * The configuration judged is the one doctor reads; the broker's own is
 * the one in force (keywarden status names it).
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/doctor.h"

/* "host:port" or "[v6]:port" split; false when it is neither. */
static bool
split_hostport(const char *s, char *host, size_t hlen, char *port, size_t plen)
{
	const char *colon = strrchr(s, ':');
	size_t n;

	if (!colon || !colon[1] || strlen(colon + 1) >= plen)
		return false;
	n = (size_t)(colon - s);
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	if (n == 0 || n >= hlen)
		return false;
	memcpy(host, s, n);
	host[n] = '\0';
	snprintf(port, plen, "%s", colon + 1);
	return true;
}

/* Whether a TCP connection to host:port is accepted (loopback: it answers at once). */
static bool
accepts(const char *host, const char *port, char *why, size_t why_len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL, *a;
	bool ok = false;
	int r;

	if ((r = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(why, why_len, "%s", gai_strerror(r));
		return false;
	}
	snprintf(why, why_len, "no address");
	for (a = res; a && !ok; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			ok = true;
		else
			snprintf(why, why_len, "%s", strerror(errno));
		close(fd);
	}
	freeaddrinfo(res);
	return ok;
}

/* The address the proxy listens at: the broker's word, else the configuration's. */
static const char *
listen_address(struct kw_dr *d, bool *from_broker)
{
	json_t *ap = json_object_get(d->status, "api_proxy");
	const char *l = json_string_value(json_object_get(ap, "listen"));

	*from_broker = l != NULL;
	return l ? l : kw_config_str(d->cfg, "broker.apiProxy.listen");
}

static void
check_listen(struct kw_dr *d)
{
	const char *check = "api-proxy.listen";
	char host[256], port[16], why[256];
	bool from_broker;
	const char *addr = listen_address(d, &from_broker);

	if (!split_hostport(addr, host, sizeof(host), port, sizeof(port))) {
		kw_dr_add(d, check, KW_DR_FAIL, NULL, 0, "keywarden config set "
		    "broker.apiProxy.listen 127.0.0.1:8788", "broker.apiProxy.listen is '%s', not "
		    "HOST:PORT", kw_cli_safe(addr));
		return;
	}
	if (accepts(host, port, why, sizeof(why))) {
		kw_dr_add(d, check, KW_DR_PASS, NULL, 0, NULL, "the API proxy accepts connections at "
		    "%s%s", kw_cli_safe(addr), from_broker ? " (as the broker reports)" : "");
		return;
	}
	kw_dr_add(d, check, KW_DR_FAIL, NULL, 0, "start the broker with broker.apiProxy.enabled "
	    "true (its log says why the proxy did not start); keywarden status shows the proxy",
	    "nothing accepts at %s (%s): Claude Code's calls through the proxy fail",
	    kw_cli_safe(addr), kw_cli_safe(why));
}

/* scheme and host of a URL "scheme://host[:port][/...]"; false when it is none. */
static bool
split_url(const char *url, char *scheme, size_t slen, char *host, size_t hlen)
{
	const char *sep = strstr(url, "://"), *h, *end;
	size_t n;

	if (!sep || (size_t)(sep - url) >= slen)
		return false;
	memcpy(scheme, url, (size_t)(sep - url));
	scheme[sep - url] = '\0';
	h = sep + 3;
	if (*h == '[') {
		h++;
		end = strchr(h, ']');
	} else {
		end = h + strcspn(h, ":/?#");
	}
	if (!end || end == h || (n = (size_t)(end - h)) >= hlen)
		return false;
	memcpy(host, h, n);
	host[n] = '\0';
	return true;
}

static bool
listed(json_t *list, const char *host)
{
	size_t i;
	json_t *v;

	json_array_foreach(list, i, v)
		if (json_is_string(v) && strcasecmp(json_string_value(v), host) == 0)
			return true;
	return false;
}

static void
check_upstream(struct kw_dr *d)
{
	const char *check = "api-proxy.upstream";
	const char *url = kw_config_str(d->cfg, "api.baseUrl");
	json_t *hosts = kw_config_get(d->cfg, "security.network.allowedHosts");
	char scheme[16], host[256];

	if (!split_url(url, scheme, sizeof(scheme), host, sizeof(host)) ||
	    (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0)) {
		kw_dr_add(d, check, KW_DR_FAIL, NULL, 0, "keywarden config set api.baseUrl "
		    "https://api.anthropic.com", "api.baseUrl '%s' is not an http(s) URL: the proxy "
		    "does not start", kw_cli_safe(url));
		return;
	}
	if (strcmp(scheme, "http") == 0 && kw_config_bool(d->cfg, "security.network.enforceHttps")) {
		kw_dr_add(d, check, KW_DR_FAIL, NULL, 0, "use an https:// api.baseUrl",
		    "api.baseUrl %s is plain HTTP and security.network.enforceHttps refuses it: "
		    "the proxy does not start", kw_cli_safe(url));
		return;
	}
	if (json_array_size(hosts) > 0 && !listed(hosts, host)) {
		_cleanup_free_ char *fix = kw_dr_fmt("add %s to security.network.allowedHosts, or "
		    "correct api.baseUrl", kw_cli_safe(host));
		kw_dr_add(d, check, KW_DR_FAIL, NULL, 0, fix, "api.baseUrl's host %s is not in "
		    "security.network.allowedHosts: every call is refused", kw_cli_safe(host));
		return;
	}
	if (strcmp(scheme, "http") == 0) {
		kw_dr_add(d, check, KW_DR_WARN, NULL, 0, "use an https:// api.baseUrl and set "
		    "security.network.enforceHttps true", "api.baseUrl %s is plain HTTP: the key "
		    "crosses the network unencrypted", kw_cli_safe(url));
		return;
	}
	kw_dr_add(d, check, KW_DR_PASS, NULL, 0, NULL, "the proxy forwards to %s%s",
	    kw_cli_safe(url), json_array_size(hosts) > 0 ? ", an allowed host" : "");
}

static void
check_tls(struct kw_dr *d)
{
	const char *check = "api-proxy.tls";
	const char *ca = kw_config_str(d->cfg, "security.network.caFile");
	const char *proto = kw_config_str(d->cfg, "security.encryption.inTransit.protocol");

	if (!kw_config_bool(d->cfg, "security.network.verifyCertificates")) {
		kw_dr_add(d, check, KW_DR_WARN, NULL, 0, "keywarden config set "
		    "security.network.verifyCertificates true", "security.network."
		    "verifyCertificates is false: the proxy sends the key to whoever answers for "
		    "%s, unverified", kw_cli_safe(kw_config_str(d->cfg, "api.baseUrl")));
		return;
	}
	if (*ca && access(ca, F_OK) < 0) {
		kw_dr_add(d, check, KW_DR_FAIL, ca, 0, "correct security.network.caFile, or set it "
		    "to \"\" for the system's CAs only", "security.network.caFile %s: %s: the "
		    "proxy does not start", kw_cli_safe(ca), strerror(errno));
		return;
	}
	if (strcmp(proto, "TLS1.3") != 0) {
		kw_dr_add(d, check, KW_DR_WARN, NULL, 0, "keywarden config set "
		    "security.encryption.inTransit.protocol TLS1.3", "the proxy accepts %s "
		    "upstream; the guide asks for TLS 1.3", kw_cli_safe(proto));
		return;
	}
	kw_dr_add(d, check, KW_DR_PASS, NULL, 0, NULL, "upstream TLS 1.3, certificates and "
	    "host names verified against the system's CAs%s%s", *ca ? " and " : "",
	    *ca ? kw_cli_safe(ca) : "");
}

static void
check_corporate(struct kw_dr *d)
{
	const char *check = "api-proxy.corporate";
	const char *host = kw_config_str(d->cfg, "api.proxy.host");
	const char *auth = kw_config_str(d->cfg, "api.proxy.auth.type");
	const char *pass = kw_config_str(d->cfg, "api.proxy.auth.password");

	if (!kw_config_bool(d->cfg, "api.proxy.enabled"))
		return;
	if (!*host) {
		kw_dr_add(d, check, KW_DR_FAIL, NULL, 0, "keywarden config set api.proxy.host HOST",
		    "api.proxy.enabled is true but api.proxy.host is empty");
		return;
	}
	if (strcmp(auth, "basic") == 0 && *pass && strncmp(pass, "${", 2) != 0) {
		kw_dr_add(d, check, KW_DR_WARN, NULL, 0, "keywarden config set "
		    "api.proxy.auth.password '${PROXY_PASS}' and give the broker PROXY_PASS in its "
		    "environment", "api.proxy.auth.password is a literal in the configuration file");
		return;
	}
	kw_dr_add(d, check, KW_DR_PASS, NULL, 0, NULL, "upstream traffic goes through %s:%lld%s",
	    kw_cli_safe(host), kw_config_int(d->cfg, "api.proxy.port"),
	    strcmp(auth, "basic") == 0 ? " with basic auth from the environment" : "");
}

void
kw_dr_check_apiproxy(struct kw_dr *d)
{
	if (!kw_config_bool(d->cfg, "broker.apiProxy.enabled")) {
		if (d->helper_proxy)
			kw_dr_add(d, "api-proxy", KW_DR_FAIL, d->helper_file, 0, "keywarden config set "
			    "broker.apiProxy.enabled true, then restart the broker",
			    "apiKeyHelper in %s asks for a proxy token (--proxy), but "
			    "broker.apiProxy.enabled is false: nothing accepts it",
			    kw_cli_safe(d->helper_file));
		else
			kw_dr_add(d, "api-proxy", KW_DR_INFO, NULL, 0, "keywarden config set "
			    "broker.apiProxy.enabled true; keywarden setup claude --proxy",
			    "the API proxy is off: Claude Code holds the key its apiKeyHelper prints "
			    "(with the proxy it holds a token that works only through the proxy)");
		return;
	}
	kw_dr_add(d, "api-proxy", KW_DR_PASS, NULL, 0, NULL, "the API proxy is on "
	    "(broker.apiProxy.enabled)%s", d->helper_proxy ? "; apiKeyHelper asks for proxy "
	    "tokens" : "");
	if (!d->helper_proxy && d->helper_key)
		kw_dr_add(d, "api-proxy.helper", KW_DR_WARN, d->helper_file, 0,
		    "keywarden setup claude --proxy", "apiKeyHelper in %s hands Claude Code the key "
		    "itself, not a proxy token", kw_cli_safe(d->helper_file));
	check_listen(d);
	check_upstream(d);
	check_tls(d);
	check_corporate(d);
}
