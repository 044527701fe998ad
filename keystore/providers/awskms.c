/*
 * provider_awskms.c - AWS KMS as the master-key provider (keySource aws-kms).
 *
 * The KMS key never leaves AWS: GenerateDataKey hands back a fresh DEK and
 * the same DEK encrypted under the KMS key (CiphertextBlob, our blob);
 * Encrypt makes the blob of a key we already have (wrap); Decrypt turns a
 * blob back into the key.  Requests are JSON over HTTPS,
 * signed with SigV4 by libcurl (CURLOPT_AWS_SIGV4) using the credentials in
 * the broker's environment.  Plain http is accepted only for an endpoint on
 * this machine (a test server), since the reply carries the DEK in clear.
 *
 * The ops have no error text of their own, so a refused or failed request
 * is logged here (the KMS __type and message, never key material) and
 * returned as KW_ERR_IO.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/errors.h"
#include "common/log.h"
#include "keystore/providers/provider.h"

#define KEY_ID_PATH		"security.encryption.atRest.kmsKeyId"
#define ENDPOINT_PATH		"security.encryption.atRest.endpoint"
#define ARN_FORMS		"arn:aws:kms:REGION:ACCOUNT:key/ID or arn:aws:kms:REGION:ACCOUNT:alias/NAME"
#define REGION_MAX		32
#define CONNECT_TIMEOUT		5L	/* seconds */
#define TOTAL_TIMEOUT		15L	/* seconds, the whole request */
#define REPLY_MAX		16384	/* KMS replies are a few kB at most */
#define BLOB_MAX		6144	/* largest KMS CiphertextBlob */
#define KMS_TEXT_MAX		96	/* bytes of a KMS error string we repeat */

struct awskms {
	CURL *curl;
	char *key_id;		/* the ARN as configured */
	char *url;		/* the endpoint */
	char sigv4[REGION_MAX + 16];	/* "aws:amz:REGION:kms" */
	char *userpwd;		/* "AKID:SECRET", sodium_malloc'd */
	char *token_hdr;	/* "X-Amz-Security-Token: ...", sodium_malloc'd, or NULL */
};

/* A reply body; sodium_malloc'd because Plaintext (the DEK) travels in it. */
struct reply {
	char *buf;
	size_t len;
	bool too_long;
};

static char *
secret_strdup(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s = sodium_malloc(la + lb + 1);

	if (!s)
		return NULL;
	memcpy(s, a, la);
	memcpy(s + la, b, lb);
	s[la + lb] = '\0';
	return s;
}

static void
secret_strfree(char *s)
{
	/* sodium_free wipes the whole allocation before unmapping it. */
	sodium_free(s);
}

static bool
span_ok(const char *s, size_t len, const char *extra)
{
	size_t i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr(extra, s[i]))
			return false;
	return true;
}

/*
 * arn:aws:kms:REGION:ACCOUNT:key/ID or ...:alias/NAME.  The region goes to
 * region[REGION_MAX + 1].  0 or -1.
 */
static int
parse_arn(const char *arn, char *region)
{
	const char *p, *colon, *res;
	size_t i, n;

	if (strncmp(arn, "arn:aws:kms:", 12) != 0)
		return -1;
	p = arn + 12;
	if (!(colon = strchr(p, ':')) || (n = (size_t)(colon - p)) > REGION_MAX ||
	    !span_ok(p, n, "-"))
		return -1;
	for (i = 0; i < n; i++)
		if (isupper((unsigned char)p[i]))
			return -1;
	memcpy(region, p, n);
	region[n] = '\0';
	p = colon + 1;
	for (i = 0; i < 12; i++)
		if (!isdigit((unsigned char)p[i]))
			return -1;
	if (p[12] != ':')
		return -1;
	res = p + 13;
	if (strncmp(res, "key/", 4) == 0)
		return span_ok(res + 4, strlen(res + 4), "-") && strlen(res) <= 256 ? 0 : -1;
	if (strncmp(res, "alias/", 6) == 0)
		return span_ok(res + 6, strlen(res + 6), "/_-") && strlen(res) <= 256 ? 0 : -1;
	return -1;
}

static bool
loopback_host(const char *host)
{
	return strcmp(host, "127.0.0.1") == 0 || strcmp(host, "localhost") == 0 ||
	    strcmp(host, "[::1]") == 0;
}

/* The configured endpoint (https, or http to this machine) or the region's. */
static int
endpoint_url(const struct kw_config *cfg, const char *region, char **ret_url, char *err,
    size_t err_len)
{
	const char *ep = kw_config_str(cfg, ENDPOINT_PATH);
	CURLU *u = NULL;
	char *scheme = NULL, *host = NULL, *url = NULL;
	int r = KW_ERR_CONFIG;

	if (!*ep) {
		if (asprintf(&url, "https://kms.%s.amazonaws.com/", region) < 0)
			return KW_ERR_NOMEM;
		*ret_url = url;
		return 0;
	}
	if (!(u = curl_url()))
		return KW_ERR_NOMEM;
	if (curl_url_set(u, CURLUPART_URL, ep, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		snprintf(err, err_len, "%s: expected an https:// URL", ENDPOINT_PATH);
		goto out;
	}
	if (strcmp(scheme, "https") != 0 &&
	    (strcmp(scheme, "http") != 0 || !loopback_host(host))) {
		snprintf(err, err_len, "%s: expected an https:// URL (plain http only to "
		    "127.0.0.1, localhost or [::1]: the reply carries the data key)", ENDPOINT_PATH);
		goto out;
	}
	if (!(url = strdup(ep))) {
		r = KW_ERR_NOMEM;
		goto out;
	}
	*ret_url = url;
	r = 0;
 out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return r;
}

/* Credentials from the broker's environment, as the AWS SDKs read them. */
static int
load_credentials(struct awskms *k, char *err, size_t err_len)
{
	const char *akid = getenv("AWS_ACCESS_KEY_ID");
	const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
	const char *token = getenv("AWS_SESSION_TOKEN");
	const char *missing = NULL;
	char *tmp;

	if (!akid || !*akid)
		missing = "AWS_ACCESS_KEY_ID";
	else if (!secret || !*secret)
		missing = "AWS_SECRET_ACCESS_KEY";
	if (missing) {
		snprintf(err, err_len, "aws-kms: %s is not set in the broker's environment "
		    "(needed for the key in %s)", missing, KEY_ID_PATH);
		return KW_ERR_CONFIG;
	}
	if (strchr(akid, ':') || strpbrk(akid, "\r\n") || strpbrk(secret, "\r\n")) {
		snprintf(err, err_len, "aws-kms: AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY "
		    "is malformed");
		return KW_ERR_CONFIG;
	}
	if (token && strpbrk(token, "\r\n")) {
		snprintf(err, err_len, "aws-kms: AWS_SESSION_TOKEN is malformed");
		return KW_ERR_CONFIG;
	}
	if (!(tmp = secret_strdup(akid, ":")))
		return KW_ERR_NOMEM;
	k->userpwd = secret_strdup(tmp, secret);
	secret_strfree(tmp);
	if (!k->userpwd)
		return KW_ERR_NOMEM;
	if (token && *token &&
	    !(k->token_hdr = secret_strdup("X-Amz-Security-Token: ", token)))
		return KW_ERR_NOMEM;
	return 0;
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct reply *rep = userdata;
	size_t n = size * nmemb;

	if (n > REPLY_MAX - rep->len) {
		rep->too_long = true;
		return 0;	/* aborts the transfer */
	}
	memcpy(rep->buf + rep->len, data, n);
	rep->len += n;
	return n;
}

/* Wipe what curl copied out of a header list, then free it. */
static void
free_headers(struct curl_slist *h)
{
	struct curl_slist *i;

	for (i = h; i; i = i->next)
		sodium_memzero(i->data, strlen(i->data));
	curl_slist_free_all(h);
}

/* A string from a remote reply, fit for a log line: printable, bounded. */
static void
tame(char *dst, size_t dst_len, const char *src)
{
	size_t i;

	for (i = 0; src && src[i] && i + 1 < dst_len; i++)
		dst[i] = isprint((unsigned char)src[i]) ? src[i] : '?';
	dst[i] = '\0';
}

/* Log a refusal by KMS: its error __type (after '#') and message. */
static void
log_kms_error(const char *op, long status, const struct reply *rep)
{
	char type[KMS_TEXT_MAX + 1] = "", msg[KMS_TEXT_MAX + 1] = "";
	const char *t = NULL, *m = NULL, *hash;
	json_t *doc = json_loadb(rep->buf, rep->len, 0, NULL);

	if (json_is_object(doc)) {
		t = json_string_value(json_object_get(doc, "__type"));
		m = json_string_value(json_object_get(doc, "message"));
		if (!m)
			m = json_string_value(json_object_get(doc, "Message"));
	}
	if (t && (hash = strrchr(t, '#')))
		t = hash + 1;
	tame(type, sizeof(type), t ? t : "unknown error");
	tame(msg, sizeof(msg), m ? m : "");
	kw_log_error("aws-kms: %s refused (HTTP %ld): %s%s%s", op, status, type,
	    *msg ? ": " : "", msg);
	json_decref(doc);
}

/*
 * POST a TrentService operation; *ret_doc is the reply's JSON object.
 * KW_ERR_IO (logged) for transport errors, HTTP errors and bad replies.
 */
static int
kms_call(struct awskms *k, const char *op, json_t *req, json_t **ret_doc)
{
	struct reply rep = { 0 };
	struct curl_slist *hdrs = NULL, *tmp;
	char errbuf[CURL_ERROR_SIZE] = "", target[64];
	char *body = NULL;
	json_t *doc = NULL;
	long status = 0;
	CURLcode cc;
	int r = KW_ERR_NOMEM;

	snprintf(target, sizeof(target), "X-Amz-Target: TrentService.%s", op);
	if (!(rep.buf = sodium_malloc(REPLY_MAX)) ||
	    !(body = json_dumps(req, JSON_COMPACT)) ||
	    !(hdrs = curl_slist_append(NULL, "Content-Type: application/x-amz-json-1.1")) ||
	    !(tmp = curl_slist_append(hdrs, target)))
		goto out;
	if (k->token_hdr) {
		if (!(tmp = curl_slist_append(hdrs, k->token_hdr)))
			goto out;
		hdrs = tmp;
	}

	curl_easy_reset(k->curl);
	curl_easy_setopt(k->curl, CURLOPT_URL, k->url);
	curl_easy_setopt(k->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(k->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(k->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(k->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(k->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(k->curl, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT);
	curl_easy_setopt(k->curl, CURLOPT_TIMEOUT, TOTAL_TIMEOUT);
	curl_easy_setopt(k->curl, CURLOPT_USERAGENT, "keywarden/" KW_VERSION);
	curl_easy_setopt(k->curl, CURLOPT_AWS_SIGV4, k->sigv4);
	curl_easy_setopt(k->curl, CURLOPT_USERPWD, k->userpwd);
	curl_easy_setopt(k->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(k->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(k->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(k->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(k->curl, CURLOPT_WRITEDATA, &rep);
	curl_easy_setopt(k->curl, CURLOPT_ERRORBUFFER, errbuf);

	r = KW_ERR_IO;
	cc = curl_easy_perform(k->curl);
	/* The handle keeps pointers to these until the next reset. */
	curl_easy_setopt(k->curl, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(k->curl, CURLOPT_HTTPHEADER, NULL);
	if (rep.too_long) {
		kw_log_error("aws-kms: %s: reply longer than %d bytes", op, REPLY_MAX);
		goto out;
	}
	if (cc != CURLE_OK) {
		kw_log_error("aws-kms: %s: %s: %s", op, k->url,
		    *errbuf ? errbuf : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		log_kms_error(op, status, &rep);
		goto out;
	}
	/* json_is_object() evaluates its argument twice: parse first. */
	doc = json_loadb(rep.buf, rep.len, 0, NULL);
	if (!json_is_object(doc)) {
		kw_log_error("aws-kms: %s: the reply is not a JSON object", op);
		goto out;
	}
	*ret_doc = TAKE_PTR(doc);
	r = 0;
 out:
	json_decref(doc);
	free_headers(hdrs);
	if (body)	/* an Encrypt request carries a key */
		sodium_memzero(body, strlen(body));
	free(body);
	if (rep.buf)
		sodium_free(rep.buf);
	return r;
}

/* Base64 member `field` of doc into buf[max]; the decoded length in *ret_len. */
static int
get_b64(json_t *doc, const char *op, const char *field, unsigned char *buf, size_t max,
    size_t *ret_len)
{
	json_t *v = json_object_get(doc, field);
	const char *s = json_string_value(v);

	if (!s || sodium_base642bin(buf, max, s, json_string_length(v), NULL, ret_len, NULL,
	    sodium_base64_VARIANT_ORIGINAL) != 0) {
		sodium_memzero(buf, max);
		kw_log_error("aws-kms: %s: the reply has no valid %s", op, field);
		return KW_ERR_IO;
	}
	return 0;
}

static int
awskms_new_dek(struct kw_provider *p, unsigned char *dek, unsigned char **ret_blob,
    size_t *ret_len)
{
	struct awskms *k = p->priv;
	unsigned char *blob = NULL;
	json_t *req = NULL, *doc = NULL;
	size_t n = 0, blob_len = 0;
	int r = KW_ERR_NOMEM;

	if (!(req = json_pack("{s:s, s:s}", "KeyId", k->key_id, "KeySpec", "AES_256")) ||
	    !(blob = malloc(BLOB_MAX)))
		goto out;
	if ((r = kms_call(k, "GenerateDataKey", req, &doc)) < 0 ||
	    (r = get_b64(doc, "GenerateDataKey", "Plaintext", dek, KW_DEK_LEN, &n)) < 0 ||
	    (r = get_b64(doc, "GenerateDataKey", "CiphertextBlob", blob, BLOB_MAX,
	    &blob_len)) < 0)
		goto out;
	r = KW_ERR_IO;
	if (n != KW_DEK_LEN || blob_len == 0) {
		kw_log_error("aws-kms: GenerateDataKey: the reply holds a %zu-byte key and a "
		    "%zu-byte blob", n, blob_len);
		goto out;
	}
	*ret_blob = TAKE_PTR(blob);
	*ret_len = blob_len;
	r = 0;
 out:
	if (r < 0)
		sodium_memzero(dek, KW_DEK_LEN);
	json_decref(req);
	json_decref(doc);	/* the wiping allocator clears Plaintext's copy */
	free(blob);
	return r;
}

/* KMS Encrypt: the caller's key under the KMS key; the CiphertextBlob is the blob. */
static int
awskms_wrap(struct kw_provider *p, const unsigned char *dek, unsigned char **ret_blob,
    size_t *ret_len)
{
	struct awskms *k = p->priv;
	size_t b64_len = sodium_base64_encoded_len(KW_DEK_LEN, sodium_base64_VARIANT_ORIGINAL);
	unsigned char *blob = NULL;
	json_t *req = NULL, *doc = NULL;
	size_t blob_len = 0;
	char *b64 = sodium_malloc(b64_len);
	int r = KW_ERR_NOMEM;

	if (!b64 || !(blob = malloc(BLOB_MAX)))
		goto out;
	sodium_bin2base64(b64, b64_len, dek, KW_DEK_LEN, sodium_base64_VARIANT_ORIGINAL);
	if (!(req = json_pack("{s:s, s:s}", "KeyId", k->key_id, "Plaintext", b64)))
		goto out;
	if ((r = kms_call(k, "Encrypt", req, &doc)) < 0 ||
	    (r = get_b64(doc, "Encrypt", "CiphertextBlob", blob, BLOB_MAX, &blob_len)) < 0)
		goto out;
	r = KW_ERR_IO;
	if (blob_len == 0) {
		kw_log_error("aws-kms: Encrypt: the reply holds an empty CiphertextBlob");
		goto out;
	}
	*ret_blob = TAKE_PTR(blob);
	*ret_len = blob_len;
	r = 0;
 out:
	json_decref(req);	/* the wiping allocator clears Plaintext's copy */
	json_decref(doc);
	if (b64)
		sodium_free(b64);
	free(blob);
	return r;
}

static int
awskms_unwrap(struct kw_provider *p, const unsigned char *blob, size_t len, unsigned char *dek)
{
	struct awskms *k = p->priv;
	json_t *req = NULL, *doc = NULL;
	size_t b64_len, n = 0;
	char *b64 = NULL;
	int r = KW_ERR_IO;

	if (len == 0 || len > BLOB_MAX) {
		kw_log_error("aws-kms: Decrypt: a wrapped data key of %zu bytes is not KMS's", len);
		return KW_ERR_IO;
	}
	r = KW_ERR_NOMEM;
	b64_len = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
	if (!(b64 = malloc(b64_len)))
		goto out;
	sodium_bin2base64(b64, b64_len, blob, len, sodium_base64_VARIANT_ORIGINAL);
	if (!(req = json_pack("{s:s, s:s}", "CiphertextBlob", b64, "KeyId", k->key_id)))
		goto out;
	if ((r = kms_call(k, "Decrypt", req, &doc)) < 0 ||
	    (r = get_b64(doc, "Decrypt", "Plaintext", dek, KW_DEK_LEN, &n)) < 0)
		goto out;
	r = KW_ERR_IO;
	if (n != KW_DEK_LEN) {
		kw_log_error("aws-kms: Decrypt: the reply holds a %zu-byte key, not %d", n,
		    KW_DEK_LEN);
		goto out;
	}
	r = 0;
 out:
	if (r < 0)
		sodium_memzero(dek, KW_DEK_LEN);
	json_decref(req);
	json_decref(doc);
	free(b64);
	return r;
}

static void
awskms_free(struct awskms *k)
{
	if (!k)
		return;
	if (k->curl)
		curl_easy_cleanup(k->curl);
	if (k->userpwd)
		secret_strfree(k->userpwd);
	if (k->token_hdr)
		secret_strfree(k->token_hdr);
	free(k->key_id);
	free(k->url);
	free(k);
	curl_global_cleanup();
}

static void
awskms_close(struct kw_provider *p)
{
	if (!p)
		return;
	awskms_free(p->priv);
	free(p);
}

static const struct kw_provider_ops awskms_ops = {
	.name = "aws-kms",
	.new_dek = awskms_new_dek,
	.wrap = awskms_wrap,
	.unwrap = awskms_unwrap,
	.close = awskms_close,
};

int
kw_provider_awskms_open(const struct kw_config *cfg, const char *dir,
    struct kw_provider **ret, char *err, size_t err_len)
{
	const char *arn = kw_config_str(cfg, KEY_ID_PATH);
	const char *want = kw_config_str(cfg, "security.compliance.dataResidency.region");
	struct kw_provider *p = NULL;
	struct awskms *k = NULL;
	char region[REGION_MAX + 1];
	int r = KW_ERR_CONFIG;

	if (parse_arn(arn, region) < 0) {
		snprintf(err, err_len, "%s: aws-kms needs a key ARN (%s)", KEY_ID_PATH, ARN_FORMS);
		return KW_ERR_CONFIG;
	}
	if (kw_config_bool(cfg, "security.compliance.dataResidency.enforceRegion") && *want &&
	    strcmp(region, want) != 0) {
		snprintf(err, err_len, "%s: key is in %s, but "
		    "security.compliance.dataResidency.region is %.64s", KEY_ID_PATH, region, want);
		return KW_ERR_CONFIG;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, err_len, "aws-kms: libcurl failed to initialise");
		return KW_ERR_IO;
	}
	r = KW_ERR_NOMEM;
	if (!(k = calloc(1, sizeof(*k)))) {
		curl_global_cleanup();
		goto out;
	}
	if (!(p = calloc(1, sizeof(*p))) || !(k->key_id = strdup(arn)) ||
	    !(k->curl = curl_easy_init()))
		goto out;
	snprintf(k->sigv4, sizeof(k->sigv4), "aws:amz:%s:kms", region);
	if ((r = endpoint_url(cfg, region, &k->url, err, err_len)) < 0 ||
	    (r = load_credentials(k, err, err_len)) < 0)
		goto out;
	p->ops = &awskms_ops;
	p->priv = TAKE_PTR(k);
	*ret = TAKE_PTR(p);
	r = 0;
 out:
	if (r == KW_ERR_NOMEM)
		snprintf(err, err_len, "aws-kms: out of memory");
	awskms_free(k);
	free(p);
	return r;
}
