/*
 * key_verify.c - key format and live checks (see key_verify.h).
 */
#include <curl/curl.h>
#include <regex.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/keywarden.h"
#include "broker/keys/key_verify.h"

/* Anthropic API keys: "sk-ant-", a kind such as "api03-", then base64url. */
static bool
anthropic_shape(const char *value)
{
	regex_t re;
	bool ok;

	if (regcomp(&re, "^sk-ant-[A-Za-z0-9_-]{20,}$", REG_EXTENDED | REG_NOSUB) != 0)
		return false;
	ok = regexec(&re, value, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

static size_t
discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

struct kw_key_check {
	char *value;		/* sodium_malloc'd copy, wiped when freed */
	char url[1024];
	bool enforce_https, verify_certificates;
	bool is_anthropic, ok, live_wanted;
	int live;		/* 1 accepted, 0 refused, -1 no answer, -2 not asked */
	char detail[256];
};

/* The provider's answer to the key: 1 accepted, 0 refused, -1 no answer. */
static int
live_check(const struct kw_key_check *k, char *detail, size_t len)
{
	const char *url = k->url, *value = k->value;
	struct curl_slist *hdrs = NULL;
	char header[8300];	/* "x-api-key: " and a value of up to KW_KEY_VALUE_MAX */
	long status = 0;
	CURLcode rc;
	CURL *c;

	if (k->enforce_https && strncmp(url, "https://", 8) != 0) {
		snprintf(detail, len, "api.verifyUrl must be https:// while "
		    "security.network.enforceHttps is true");
		return -1;
	}
	if (!(c = curl_easy_init()))
		return -1;
	snprintf(header, sizeof(header), "x-api-key: %s", value);
	struct curl_slist *h1 = curl_slist_append(NULL, header);
	hdrs = h1 ? curl_slist_append(h1, "anthropic-version: 2023-06-01") : NULL;
	if (!hdrs) {
		if (h1) {
			sodium_memzero(h1->data, strlen(h1->data));
			curl_slist_free_all(h1);
		}
		sodium_memzero(header, sizeof(header));
		curl_easy_cleanup(c);
		snprintf(detail, len, "out of memory");
		return -1;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 15L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
	if (!k->verify_certificates)
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	/* The header list held the key. */
	for (struct curl_slist *h = hdrs; h; h = h->next)
		sodium_memzero(h->data, strlen(h->data));
	curl_slist_free_all(hdrs);
	sodium_memzero(header, sizeof(header));
	if (rc != CURLE_OK) {
		snprintf(detail, len, "no answer from api.verifyUrl: %s", curl_easy_strerror(rc));
		return -1;
	}
	snprintf(detail, len, "api.verifyUrl answered HTTP %ld", status);
	return status >= 200 && status < 300 ? 1 : (status == 401 || status == 403) ? 0 : -1;
}

int
kw_key_check_new(const struct kw_config *cfg, const char *name, const char *value,
    struct kw_key_check **ret_check)
{
	const char *url = kw_config_str(cfg, "api.verifyUrl");
	struct kw_key_check *k = calloc(1, sizeof(*k));
	size_t n = strlen(value);
	bool shape;

	if (!k || !(k->value = sodium_malloc(n + 1))) {
		free(k);
		return KW_ERR_NOMEM;
	}
	memcpy(k->value, value, n + 1);
	k->is_anthropic = strncmp(value, "sk-ant-", 7) == 0;
	shape = k->is_anthropic && anthropic_shape(value);
	k->ok = k->is_anthropic ? shape : strcmp(name, "anthropic") != 0;
	k->live = -2;
	snprintf(k->detail, sizeof(k->detail), "%s", k->is_anthropic ? (shape ?
	    "looks like an Anthropic key" : "starts like an Anthropic key but is malformed") :
	    strcmp(name, "anthropic") == 0 ? "does not look like an Anthropic key (sk-ant-...)" :
	    "format not known; not checked");
	/* api.verifyUrl is an Anthropic endpoint: only Anthropic keys are sent to it. */
	k->live_wanted = k->ok && k->is_anthropic && url[0];
	snprintf(k->url, sizeof(k->url), "%s", url);
	k->enforce_https = kw_config_bool(cfg, "security.network.enforceHttps");
	k->verify_certificates = kw_config_bool(cfg, "security.network.verifyCertificates");
	*ret_check = k;
	return 0;
}

bool
kw_key_check_wants_live(const struct kw_key_check *k)
{
	return k->live_wanted;
}

void
kw_key_check_live(void *ctx)
{
	struct kw_key_check *k = ctx;

	k->live = live_check(k, k->detail, sizeof(k->detail));
	k->ok = k->live == 1;
}

int
kw_key_check_result(const struct kw_key_check *k, json_t **ret_result)
{
	json_t *live = k->live < 0 ? json_null() : json_boolean(k->live == 1);

	*ret_result = json_pack("{s:s, s:b, s:o, s:s}", "format",
	    k->is_anthropic ? "anthropic" : "unknown", "ok", k->ok, "live", live,
	    "detail", k->detail);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}

void
kw_key_check_free(void *ctx)
{
	struct kw_key_check *k = ctx;

	if (!k)
		return;
	sodium_free(k->value);	/* wipes */
	free(k);
}
