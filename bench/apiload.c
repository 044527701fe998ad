/*
 * apiload.c - closed-loop HTTP load client for make bench's apiproxy section.
 *
 *   apiload --url URL [--clients N] [--seconds S] [--warmup S] [--requests N]
 *           [--body-file FILE] [--header-file FILE] [--cacert PEM]
 *           [--expect TEXT] [--label NAME] [--timeout S]
 *   apiload --wait-url URL [--cacert PEM] [--timeout S]
 *
 * N transfers are kept in flight at once on one libcurl multi handle
 * (HTTP/1.1, keep-alive: connections are reused from the multi handle's
 * cache, so after the first round no call pays a TCP or TLS handshake).  Each
 * call POSTs the body file; its latency runs from handing it to libcurl to
 * the transfer's end, its time to first byte from the same start to the
 * first byte of the response body reaching the write callback (for a
 * server-sent event stream: the first event).  A call counts when its
 * status is 200 and, with --expect, its body contains TEXT (e.g. the
 * stream's last event); anything else is an error, and any error makes the
 * exit status 1.
 *
 * Headers come from --header-file, one "Name: value" a line, because the
 * proxy token they carry is a secret and must not appear in argv; the file
 * is read once and wiped from memory at exit.
 *
 * Calls ending during --warmup are not counted; the run then measures for
 * --seconds, or until --requests calls were counted (--seconds is then a
 * cap), and prints one flat JSON line:
 *
 *   {"label":"proxy","clients":8,"seconds":1.5,"requests":9000,"rps":6000.0,
 *    "p50_us":..,"p90_us":..,"p99_us":..,"max_us":..,
 *    "ttfb_p50_us":..,"ttfb_p99_us":..,"errors":0}
 *
 * --wait-url polls URL (any HTTP answer, whatever its status) every 10 ms
 * until it answers (exit 0) or --timeout passes (exit 1): a readiness check.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "bench_util.h"

#define MAX_CLIENTS	4096
#define MAX_SAMPLES	((size_t)1 << 24)
#define BODY_KEEP	65536	/* bytes of each response kept for --expect */

struct opts {
	const char *url;
	const char *wait_url;
	const char *body_file;
	const char *header_file;
	const char *cacert;
	const char *expect;
	const char *label;
	unsigned clients;
	double seconds;
	double warmup;
	double timeout;
	long long requests;
};

struct slot {
	CURL *easy;
	uint64_t start_ns;
	uint64_t first_ns;
	char *resp;
	size_t resp_len;
};

struct samples {
	uint32_t *v;
	size_t n, cap;
};

static struct opts opt = {
	.clients = 1,
	.seconds = 1.5,
	.warmup = 0.25,
	.timeout = 10,
	.requests = 0,
	.label = "run",
};

static char *body;
static size_t body_len;
static char *header_text;
static size_t header_len;
static struct curl_slist *headers;

static void
usage(void)
{
	fprintf(stderr,
	    "usage: apiload --url URL [--clients N] [--seconds S] [--warmup S] [--requests N]\n"
	    "               [--body-file FILE] [--header-file FILE] [--cacert PEM]\n"
	    "               [--expect TEXT] [--label NAME] [--timeout S]\n"
	    "       apiload --wait-url URL [--cacert PEM] [--timeout S]\n");
	exit(2);
}

static char *
slurp(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f) {
		bench_log_errno("%s", path);
		return NULL;
	}
	for (;;) {
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap + 65536);
			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	fclose(f);
	buf[len] = '\0';
	if (ret_len)
		*ret_len = len;
	return buf;
}

/* One header a line; blank lines skipped.  -1 when curl cannot take them. */
static int
load_headers(const char *path)
{
	char *line, *save = NULL;
	struct curl_slist *l;

	header_text = slurp(path, &header_len);
	if (!header_text)
		return -1;
	for (line = strtok_r(header_text, "\r\n", &save); line;
	    line = strtok_r(NULL, "\r\n", &save)) {
		if (!*line)
			continue;
		l = curl_slist_append(headers, line);
		if (!l)
			return -1;
		headers = l;
	}
	return 0;
}

static void
wipe_headers(void)
{
	struct curl_slist *l;

	for (l = headers; l; l = l->next)
		explicit_bzero(l->data, strlen(l->data));
	curl_slist_free_all(headers);
	headers = NULL;
	if (header_text) {
		explicit_bzero(header_text, header_len);
		free(header_text);
		header_text = NULL;
	}
}

static int
samples_add(struct samples *s, uint64_t us)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 65536;
		uint32_t *nv;

		if (cap > MAX_SAMPLES)
			return -1;
		nv = realloc(s->v, cap * sizeof(*nv));
		if (!nv)
			return -1;
		s->v = nv;
		s->cap = cap;
	}
	s->v[s->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
	return 0;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* The q-th quantile (nearest rank) of a sorted sample; 0 when empty. */
static uint32_t
quantile(const struct samples *s, double q)
{
	size_t i;

	if (s->n == 0)
		return 0;
	i = (size_t)(q * (double)s->n);
	if (i >= s->n)
		i = s->n - 1;
	return s->v[i];
}

static size_t
on_write(char *data, size_t size, size_t nmemb, void *userp)
{
	struct slot *sl = userp;
	size_t n = size * nmemb, keep;

	if (n && !sl->first_ns)
		sl->first_ns = bench_now_ns();
	if (opt.expect) {
		/* Keep the tail: the text looked for is near the end. */
		if (sl->resp_len + n > BODY_KEEP) {
			size_t drop = sl->resp_len + n - BODY_KEEP;

			if (drop > sl->resp_len)
				drop = sl->resp_len;
			memmove(sl->resp, sl->resp + drop, sl->resp_len - drop);
			sl->resp_len -= drop;
		}
		keep = n < BODY_KEEP ? n : BODY_KEEP;
		memcpy(sl->resp + sl->resp_len, data + (n - keep), keep);
		sl->resp_len += keep;
		sl->resp[sl->resp_len] = '\0';
	}
	return n;
}

static void
common_opts(CURL *e)
{
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(opt.timeout * 1000));
	curl_easy_setopt(e, CURLOPT_PROXY, "");	/* never an environment proxy */
	if (opt.cacert)
		curl_easy_setopt(e, CURLOPT_CAINFO, opt.cacert);
}

static int
slot_init(struct slot *sl)
{
	sl->easy = curl_easy_init();
	sl->resp = malloc(BODY_KEEP + 1);
	if (!sl->easy || !sl->resp)
		return -1;
	common_opts(sl->easy);
	curl_easy_setopt(sl->easy, CURLOPT_URL, opt.url);
	curl_easy_setopt(sl->easy, CURLOPT_POST, 1L);
	curl_easy_setopt(sl->easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(sl->easy, CURLOPT_POSTFIELDSIZE, (long)body_len);
	curl_easy_setopt(sl->easy, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(sl->easy, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(sl->easy, CURLOPT_WRITEDATA, sl);
	curl_easy_setopt(sl->easy, CURLOPT_PRIVATE, sl);
	return 0;
}

static int
slot_start(CURLM *m, struct slot *sl)
{
	sl->first_ns = 0;
	sl->resp_len = 0;
	sl->resp[0] = '\0';
	sl->start_ns = bench_now_ns();
	return curl_multi_add_handle(m, sl->easy) == CURLM_OK ? 0 : -1;
}

static int
run_load(void)
{
	CURLM *m = curl_multi_init();
	struct slot *slots = calloc(opt.clients, sizeof(*slots));
	struct samples lat = { 0 }, ttfb = { 0 };
	uint64_t t0, measure_start, measure_end, stop_at, now;
	unsigned long long errors = 0;
	unsigned i;
	int running = 0, rc = 1;
	bool stopping = false;
	char first_err[256] = "";

	if (!m || !slots) {
		bench_log("out of memory");
		return 1;
	}
	curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)opt.clients + 4);
	curl_multi_setopt(m, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
	t0 = bench_now_ns();
	measure_start = t0 + (uint64_t)(opt.warmup * 1e9);
	stop_at = measure_start + (uint64_t)(opt.seconds * 1e9);
	for (i = 0; i < opt.clients; i++) {
		if (slot_init(&slots[i]) < 0 || slot_start(m, &slots[i]) < 0) {
			bench_log("cannot set up transfer %u", i);
			goto out;
		}
	}
	measure_end = 0;
	for (;;) {
		CURLMsg *msg;
		int left;

		if (curl_multi_perform(m, &running) != CURLM_OK) {
			bench_log("curl_multi_perform failed");
			goto out;
		}
		while ((msg = curl_multi_info_read(m, &left))) {
			struct slot *sl;
			long status = 0;
			bool ok;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&sl);
			now = bench_now_ns();
			curl_easy_getinfo(sl->easy, CURLINFO_RESPONSE_CODE, &status);
			ok = msg->data.result == CURLE_OK && status == 200 &&
			    (!opt.expect || strstr(sl->resp, opt.expect));
			curl_multi_remove_handle(m, sl->easy);
			if (!ok) {
				errors++;
				if (!first_err[0])
					snprintf(first_err, sizeof(first_err), "%s, HTTP %ld: %.120s",
					    curl_easy_strerror(msg->data.result), status, sl->resp);
			} else if (now >= measure_start && !stopping) {
				if (samples_add(&lat, (now - sl->start_ns) / 1000) < 0 ||
				    samples_add(&ttfb, ((sl->first_ns ? sl->first_ns : now) -
				    sl->start_ns) / 1000) < 0) {
					stopping = true;
					measure_end = now;
				}
			}
			if (!stopping && (now >= stop_at ||
			    (opt.requests && (long long)lat.n >= opt.requests))) {
				stopping = true;
				measure_end = now;
			}
			if (!stopping && slot_start(m, sl) < 0) {
				bench_log("cannot restart a transfer");
				goto out;
			}
		}
		if (stopping && running == 0)
			break;
		if (curl_multi_poll(m, NULL, 0, 100, NULL) != CURLM_OK) {
			bench_log("curl_multi_poll failed");
			goto out;
		}
	}
	if (errors)
		bench_log("%s: %llu calls failed; the first: %s", opt.label, errors, first_err);
	{
		double secs = (double)(measure_end - measure_start) / 1e9;

		if (measure_end < measure_start)
			secs = 0;
		qsort(lat.v, lat.n, sizeof(*lat.v), cmp_u32);
		qsort(ttfb.v, ttfb.n, sizeof(*ttfb.v), cmp_u32);
		printf("{\"label\":\"%s\",\"clients\":%u,\"seconds\":%.3f,\"requests\":%zu,"
		    "\"rps\":%.1f,\"p50_us\":%" PRIu32 ",\"p90_us\":%" PRIu32 ",\"p99_us\":%" PRIu32
		    ",\"max_us\":%" PRIu32 ",\"ttfb_p50_us\":%" PRIu32 ",\"ttfb_p99_us\":%" PRIu32
		    ",\"errors\":%llu}\n", opt.label, opt.clients, secs, lat.n,
		    secs > 0 ? (double)lat.n / secs : 0.0, quantile(&lat, 0.5),
		    quantile(&lat, 0.9), quantile(&lat, 0.99),
		    lat.n ? lat.v[lat.n - 1] : 0, quantile(&ttfb, 0.5), quantile(&ttfb, 0.99),
		    errors);
	}
	rc = errors || lat.n == 0 ? 1 : 0;
out:
	for (i = 0; i < opt.clients; i++) {
		if (slots[i].easy) {
			curl_multi_remove_handle(m, slots[i].easy);
			curl_easy_cleanup(slots[i].easy);
		}
		free(slots[i].resp);
	}
	free(slots);
	free(lat.v);
	free(ttfb.v);
	curl_multi_cleanup(m);
	return rc;
}

static size_t
discard(char *data, size_t size, size_t nmemb, void *userp)
{
	(void)data;
	(void)userp;
	return size * nmemb;
}

static int
wait_url(void)
{
	uint64_t deadline = bench_now_ns() + (uint64_t)(opt.timeout * 1e9);
	CURL *e = curl_easy_init();
	CURLcode r = CURLE_OK;

	if (!e)
		return 1;
	common_opts(e);
	curl_easy_setopt(e, CURLOPT_URL, opt.wait_url);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 1000L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	do {
		r = curl_easy_perform(e);
		if (r == CURLE_OK) {
			curl_easy_cleanup(e);
			return 0;
		}
		usleep(10000);
	} while (bench_now_ns() < deadline);
	bench_log("%s did not answer in %.1f s: %s", opt.wait_url, opt.timeout,
	    curl_easy_strerror(r));
	curl_easy_cleanup(e);
	return 1;
}

static void
parse_args(int argc, char **argv)
{
	int i;
	long long v;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!val)
			usage();
		if (!strcmp(a, "--url")) {
			opt.url = val;
		} else if (!strcmp(a, "--wait-url")) {
			opt.wait_url = val;
		} else if (!strcmp(a, "--body-file")) {
			opt.body_file = val;
		} else if (!strcmp(a, "--header-file")) {
			opt.header_file = val;
		} else if (!strcmp(a, "--cacert")) {
			opt.cacert = val;
		} else if (!strcmp(a, "--expect")) {
			opt.expect = val;
		} else if (!strcmp(a, "--label")) {
			opt.label = val;
		} else if (!strcmp(a, "--clients")) {
			if ((v = bench_parse_uint(val, 1, MAX_CLIENTS)) < 0)
				usage();
			opt.clients = (unsigned)v;
		} else if (!strcmp(a, "--requests")) {
			if ((v = bench_parse_uint(val, 1, (long long)MAX_SAMPLES)) < 0)
				usage();
			opt.requests = v;
		} else if (!strcmp(a, "--seconds")) {
			if ((opt.seconds = bench_parse_seconds(val)) <= 0)
				usage();
		} else if (!strcmp(a, "--warmup")) {
			if ((opt.warmup = bench_parse_seconds(val)) < 0)
				usage();
		} else if (!strcmp(a, "--timeout")) {
			if ((opt.timeout = bench_parse_seconds(val)) <= 0)
				usage();
		} else {
			usage();
		}
		i++;
	}
	if (!opt.url == !opt.wait_url)
		usage();
	if (opt.requests && opt.seconds == 1.5)
		opt.seconds = 600;	/* --requests given: --seconds is only a cap */
	if (strpbrk(opt.label, "\"\\"))
		usage();
}

int
main(int argc, char **argv)
{
	int rc;

	bench_prog = "apiload";
	parse_args(argc, argv);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		bench_log("curl_global_init failed");
		return 1;
	}
	if (opt.wait_url) {
		rc = wait_url();
	} else {
		body = opt.body_file ? slurp(opt.body_file, &body_len) : strdup("{}");
		if (!body) {
			rc = 1;
		} else if (!body_len && !opt.body_file) {
			body_len = 2;
		}
		/* No "Expect: 100-continue" round trip before a body. */
		headers = curl_slist_append(NULL, "Expect:");
		if (!body || !headers ||
		    (opt.header_file && load_headers(opt.header_file) < 0)) {
			bench_log("cannot read the body or the headers");
			rc = 1;
		} else {
			rc = run_load();
		}
		wipe_headers();
		free(body);
	}
	curl_global_cleanup();
	return rc;
}
