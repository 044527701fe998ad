/*
 * test_proxy_config.c - the API proxy's settings and what it refuses to
 * start with (proxy/config.c): a listen address off loopback, plain HTTP
 * under enforceHttps, an upstream outside allowedHosts, a CA file it cannot
 * use; and ${VAR} expansion for the corporate proxy's credentials.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "proxy/config.c"

static int
settings(const char *json, struct kw_proxy_settings *s, char *err, size_t len)
{
	struct kw_config *cfg = NULL;
	char perr[256];
	int r;

	assert_int_equal(kw_config_parse(json, strlen(json), &cfg, perr, sizeof(perr)), 0);
	r = kw_proxy_settings_from_config(cfg, s, err, len);
	kw_config_free(cfg);
	return r;
}

static void
refused(const char *json, const char *needle)
{
	struct kw_proxy_settings s;
	char err[512] = "";

	assert_int_equal(settings(json, &s, err, sizeof(err)), KW_ERR_CONFIG);
	if (!strstr(err, needle))
		fail_msg("%s: \"%s\" does not say \"%s\"", json, err, needle);
	kw_proxy_settings_clear(&s);
}

static void
accepted(const char *json, struct kw_proxy_settings *s)
{
	char err[512] = "";

	if (settings(json, s, err, sizeof(err)) != 0)
		fail_msg("%s: refused: %s", json, err);
}

static void
test_defaults(void **state)
{
	struct kw_proxy_settings s;
	struct sockaddr_in *v4 = (struct sockaddr_in *)&s.listen_addr;

	accepted("{}", &s);
	assert_int_equal(v4->sin_family, AF_INET);
	assert_int_equal(ntohs(v4->sin_port), 8788);
	assert_string_equal(s.base_url, "https://api.anthropic.com");
	assert_string_equal(s.upstream_host, "api.anthropic.com");
	assert_int_equal(s.upstream_port, 443);
	assert_true(s.enforce_https && s.verify);
	assert_int_equal(s.tls_min, KW_PROXY_TLS13);
	assert_string_equal(s.tls13_ciphers, "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
	assert_false(s.proxy_enabled);
	assert_null(s.ca_file);
	kw_proxy_settings_clear(&s);
}

static void
test_listen_loopback_only(void **state)
{
	static const char *ok[] = { "127.0.0.1:0", "localhost:8788", "[::1]:0", "127.9.8.7:1" };
	static const char *bad[] = { "0.0.0.0:8788", "192.168.1.10:8788", "[::]:8788",
		"10.0.0.1:80", "example.com:80" };
	char json[256];

	for (size_t i = 0; i < KW_ELEMENTSOF(ok); i++) {
		struct kw_proxy_settings s;
		snprintf(json, sizeof(json), "{\"broker\":{\"apiProxy\":{\"listen\":\"%s\"}}}", ok[i]);
		accepted(json, &s);
		kw_proxy_settings_clear(&s);
	}
	for (size_t i = 0; i < KW_ELEMENTSOF(bad); i++) {
		snprintf(json, sizeof(json), "{\"broker\":{\"apiProxy\":{\"listen\":\"%s\"}}}", bad[i]);
		refused(json, "not a loopback address");
	}
	refused("{\"broker\":{\"apiProxy\":{\"listen\":\"127.0.0.1\"}}}", "broker.apiProxy.listen");
	refused("{\"broker\":{\"apiProxy\":{\"listen\":\"127.0.0.1:65536\"}}}", "bad port");
	refused("{\"broker\":{\"apiProxy\":{\"listen\":\"127.0.0.1:x\"}}}", "bad port");
}

static void
test_plain_http_needs_enforce_https_off(void **state)
{
	struct kw_proxy_settings s;

	refused("{\"api\":{\"baseUrl\":\"http://127.0.0.1:9\"},"
	    "\"security\":{\"network\":{\"allowedHosts\":[]}}}", "enforceHttps");
	accepted("{\"api\":{\"baseUrl\":\"http://127.0.0.1:9/\"},"
	    "\"security\":{\"network\":{\"enforceHttps\":false,\"allowedHosts\":[]}}}", &s);
	assert_string_equal(s.base_url, "http://127.0.0.1:9");
	assert_int_equal(s.upstream_port, 9);
	kw_proxy_settings_clear(&s);
	refused("{\"api\":{\"baseUrl\":\"ftp://api.anthropic.com\"}}", "api.baseUrl");
	refused("{\"api\":{\"baseUrl\":\"not a url\"}}", "api.baseUrl");
}

static void
test_allowed_hosts(void **state)
{
	struct kw_proxy_settings s;

	refused("{\"api\":{\"baseUrl\":\"https://evil.example.com\"}}", "allowedHosts");
	refused("{\"api\":{\"baseUrl\":\"https://api.anthropic.com.evil.net\"}}", "allowedHosts");
	refused("{\"api\":{\"baseUrl\":\"https://evilapi.anthropic.com@evil.net\"}}", "allowedHosts");
	accepted("{\"api\":{\"baseUrl\":\"https://gw.corp.example:8443\"},"
	    "\"security\":{\"network\":{\"allowedHosts\":[\"corp.example\"]}}}", &s);
	assert_int_equal(s.upstream_port, 8443);
	kw_proxy_settings_clear(&s);
	/* An empty list allows any host. */
	accepted("{\"api\":{\"baseUrl\":\"https://gw.corp.example\"},"
	    "\"security\":{\"network\":{\"allowedHosts\":[]}}}", &s);
	kw_proxy_settings_clear(&s);
}

static void
test_tls_and_ciphers(void **state)
{
	struct kw_proxy_settings s;

	accepted("{\"security\":{\"encryption\":{\"inTransit\":{\"protocol\":\"TLS1.2\","
	    "\"cipherSuites\":[\"TLS_AES_128_GCM_SHA256\"]}}}}", &s);
	assert_int_equal(s.tls_min, KW_PROXY_TLS12);
	assert_string_equal(s.tls13_ciphers, "TLS_AES_128_GCM_SHA256");
	kw_proxy_settings_clear(&s);
}

static void
test_corporate_proxy(void **state)
{
	struct kw_proxy_settings s;

	refused("{\"api\":{\"proxy\":{\"enabled\":true}}}", "api.proxy.host");
	refused("{\"api\":{\"proxy\":{\"enabled\":true,\"host\":\"a@b\"}}}", "api.proxy.host");
	accepted("{\"api\":{\"proxy\":{\"enabled\":true,\"host\":\"proxy.corp\",\"port\":3128,"
	    "\"protocol\":\"http\",\"auth\":{\"type\":\"basic\",\"username\":\"${PROXY_USER}\","
	    "\"password\":\"${PROXY_PASS}\"}}}}", &s);
	assert_string_equal(s.proxy_url, "http://proxy.corp:3128");
	assert_true(s.proxy_basic);
	/* Kept as templates: read from the environment per call, never stored expanded. */
	assert_string_equal(s.proxy_user, "${PROXY_USER}");
	assert_string_equal(s.proxy_pass, "${PROXY_PASS}");
	kw_proxy_settings_clear(&s);
}

static void
test_ca_file(void **state)
{
	struct kw_proxy_settings s;
	char err[512] = "", path[] = "/tmp/kw-test-ca.XXXXXX";
	int fd;

	accepted("{\"security\":{\"network\":{\"caFile\":\"/nonexistent/ca.pem\"}}}", &s);
	assert_int_equal(kw_proxy_settings_load_cas(&s, err, sizeof(err)), KW_ERR_IO);
	assert_non_null(strstr(err, "security.network.caFile: cannot read /nonexistent/ca.pem"));
	kw_proxy_settings_clear(&s);

	assert_true((fd = mkstemp(path)) >= 0);
	assert_int_equal(write(fd, "not a certificate\n", 18), 18);
	close(fd);
	char json[256];
	snprintf(json, sizeof(json), "{\"security\":{\"network\":{\"caFile\":\"%s\"}}}", path);
	accepted(json, &s);
	assert_int_equal(kw_proxy_settings_load_cas(&s, err, sizeof(err)), KW_ERR_IO);
	assert_non_null(strstr(err, "holds no PEM certificate"));
	kw_proxy_settings_clear(&s);
	unlink(path);

	/* A real bundle: added to the system's, parsed once into the shared store. */
	accepted("{\"security\":{\"network\":{\"caFile\":\"/etc/ssl/certs/ca-certificates.crt\"}}}",
	    &s);
	assert_int_equal(kw_proxy_settings_load_cas(&s, err, sizeof(err)), 0);
	assert_non_null(s.ca_store);
	assert_true(s.ca_count > 2 * 10);
	kw_proxy_settings_clear(&s);
}

static void
test_expand_env(void **state)
{
	char err[256] = "", *out = NULL;

	setenv("KW_T_USER", "alice", 1);
	setenv("KW_T_PASS", "p@ss:w}rd", 1);
	unsetenv("KW_T_UNSET");
	assert_int_equal(kw_proxy_expand_env("${KW_T_USER}", &out, err, sizeof(err)), 0);
	assert_string_equal(out, "alice");
	free(out);
	assert_int_equal(kw_proxy_expand_env("a${KW_T_USER}-${KW_T_PASS}z", &out, err,
	    sizeof(err)), 0);
	assert_string_equal(out, "aalice-p@ss:w}rdz");
	free(out);
	assert_int_equal(kw_proxy_expand_env("literal $HOME $", &out, err, sizeof(err)), 0);
	assert_string_equal(out, "literal $HOME $");
	free(out);
	assert_int_equal(kw_proxy_expand_env("", &out, err, sizeof(err)), 0);
	assert_string_equal(out, "");
	free(out);
	out = NULL;
	assert_int_equal(kw_proxy_expand_env("x${KW_T_UNSET}", &out, err, sizeof(err)),
	    KW_ERR_CONFIG);
	assert_null(out);
	assert_non_null(strstr(err, "KW_T_UNSET is not set"));
	assert_int_equal(kw_proxy_expand_env("${KW_T_USER", &out, err, sizeof(err)), KW_ERR_CONFIG);
	assert_int_equal(kw_proxy_expand_env("${}", &out, err, sizeof(err)), KW_ERR_CONFIG);
	/* An error never carries a value. */
	assert_null(strstr(err, "alice"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_listen_loopback_only),
		cmocka_unit_test(test_plain_http_needs_enforce_https_off),
		cmocka_unit_test(test_allowed_hosts),
		cmocka_unit_test(test_tls_and_ciphers),
		cmocka_unit_test(test_corporate_proxy),
		cmocka_unit_test(test_ca_file),
		cmocka_unit_test(test_expand_env),
	};

	return cmocka_run_group_tests_name("proxy config", tests, NULL, NULL);
}
