/*
 * fuzz_connect.c - libFuzzer target for what the sandbox's network filter
 * reads from the confined program: the CONNECT request head
 * (kw_sb_connect_parse, sandbox/connect_parse.c) and the host check.
 *
 * The input is the byte stream a client sends.  Beyond not crashing and
 * not reading past len (ASan), the parser must keep the promises
 * sandbox_internal.h makes:
 *   - it answers 1, 0, -400 or -405, and 0 only below 8 KB;
 *   - a head is whole: it ends with CRLFCRLF, head_len <= min(len, 8192),
 *     the same bytes alone give the same request, one byte fewer gives 0;
 *   - a shorter prefix of the stream (a split read) answers 0 or what the
 *     whole does: the answer never changes once given;
 *   - the host is lower case, non-empty, of [a-z0-9.-] (or an IPv6
 *     address's [0-9a-f:.]), the port 1..65535; written back as
 *     "CONNECT host:port" it parses to itself;
 *   - the host check admits only what the fixed lists below name.
 * A broken promise aborts, so the fuzzer reports it as a crash.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "sandbox/sandbox_internal.h"

#define HEAD_MAX	8192

static char *hosts[] = { "localhost", "10.0.0.1", "[::1]" };
static char *domains[] = { "anthropic.com" };
static const struct kw_sandbox_plan plan = {
	.net = KW_SB_NET_FILTERED,
	.allowed_hosts = hosts, .n_hosts = 3,
	.allowed_domains = domains, .n_domains = 1,
	.proxy_fd = -1,
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

static bool
ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);

	return n >= t && strcmp(s + n - t, tail) == 0;
}

static void
check_request(const char *buf, size_t size, const struct kw_sb_connect_req *r)
{
	struct kw_sb_connect_req again;
	size_t hl = strnlen(r->host, sizeof(r->host));
	bool v6 = strchr(r->host, ':') != NULL;
	unsigned char a6[16];
	char line[512];

	CHECK(r->head_len >= 4 && r->head_len <= size && r->head_len <= HEAD_MAX);
	CHECK(memcmp(buf + r->head_len - 4, "\r\n\r\n", 4) == 0);
	CHECK(hl >= 1 && hl < sizeof(r->host) && hl <= 253);
	CHECK(r->port >= 1);
	CHECK(strspn(r->host, v6 ? "0123456789abcdef:." : "abcdefghijklmnopqrstuvwxyz0123456789.-")
	    == hl);
	CHECK(r->host[hl - 1] != '.');

	/* The head alone is the same request; a byte short of it is not yet one. */
	CHECK(kw_sb_connect_parse(buf, r->head_len, &again) == 1);
	CHECK(again.head_len == r->head_len && again.port == r->port);
	CHECK(strcmp(again.host, r->host) == 0);
	CHECK(kw_sb_connect_parse(buf, r->head_len - 1, &again) == 0);

	/* Normalised once, the host reads back as itself. */
	snprintf(line, sizeof(line), "CONNECT %s%s%s:%u HTTP/1.1\r\n\r\n", v6 ? "[" : "", r->host,
	    v6 ? "]" : "", r->port);
	CHECK(kw_sb_connect_parse(line, strlen(line), &again) == 1);
	CHECK(strcmp(again.host, r->host) == 0 && again.port == r->port);

	/* Only what the lists name gets through. */
	if (kw_sb_host_allowed(&plan, r->host))
		CHECK(strcmp(r->host, "localhost") == 0 || strcmp(r->host, "10.0.0.1") == 0 ||
		    strcmp(r->host, "anthropic.com") == 0 || ends_with(r->host, ".anthropic.com") ||
		    (v6 && inet_pton(AF_INET6, r->host, a6) == 1 &&
		    memcmp(a6, &in6addr_loopback, 16) == 0));
	if (strcmp(r->host, "api.anthropic.com") == 0 || strcmp(r->host, "localhost") == 0)
		CHECK(kw_sb_host_allowed(&plan, r->host));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct kw_sb_connect_req r, p;
	uint64_t h = 0xcbf29ce484222325ULL;	/* FNV-1a: where to split */
	int k;

	memset(&r, 0, sizeof(r));
	k = kw_sb_connect_parse(buf, size, &r);
	CHECK(k == 1 || k == 0 || k == -400 || k == -405);
	if (k == 0)
		CHECK(size < HEAD_MAX);
	if (k == 1)
		check_request(buf, size, &r);
	if (size == 0)
		return 0;

	/* Split reads: a few prefixes answer 0 or the final answer. */
	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 0x100000001b3ULL;
	for (int j = 0; j < 4; j++, h = h * 6364136223846793005ULL + 1442695040888963407ULL) {
		size_t cut = (size_t)(h >> 17) % size;
		int kp = kw_sb_connect_parse(buf, cut, &p);

		if (k == 1)
			CHECK(kp == (cut >= r.head_len ? 1 : 0));
		else
			CHECK(kp == 0 || kp == k);
	}
	return 0;
}
