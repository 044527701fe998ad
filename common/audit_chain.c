/*
 * audit_chain.c - hashing audit records into a chain (see audit_chain.h).
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "common/audit_chain.h"

static const char domain[] = "keywarden-audit-v1";

static void
put_bytes(crypto_hash_sha256_state *st, const void *p, size_t n, bool absent)
{
	uint32_t len = absent ? 0xffffffffu : (uint32_t)n;
	unsigned char be[4] = { len >> 24, len >> 16, len >> 8, len };

	crypto_hash_sha256_update(st, be, sizeof(be));
	if (!absent && n > 0)
		crypto_hash_sha256_update(st, p, n);
}

static void
put_str(crypto_hash_sha256_state *st, const char *s)
{
	put_bytes(st, s, s ? strlen(s) : 0, s == NULL);
}

static void
put_int(crypto_hash_sha256_state *st, long long v, bool absent)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%lld", v);

	put_bytes(st, buf, (size_t)n, absent);
}

void
kw_audit_chain_hash(const uint8_t prev[KW_AUDIT_HASH_LEN], const struct kw_audit_fields *f,
    uint8_t out[KW_AUDIT_HASH_LEN])
{
	crypto_hash_sha256_state st;

	crypto_hash_sha256_init(&st);
	/* The NUL is part of the domain: it ends the tag unambiguously. */
	crypto_hash_sha256_update(&st, (const unsigned char *)domain, sizeof(domain));
	crypto_hash_sha256_update(&st, prev, KW_AUDIT_HASH_LEN);
	put_int(&st, f->seq, false);
	put_str(&st, f->ts ? f->ts : "");
	put_int(&st, f->ts_ms, false);
	put_str(&st, f->user ? f->user : "");
	put_int(&st, f->pid, false);
	put_str(&st, f->action ? f->action : "");
	put_str(&st, f->resource);
	put_str(&st, f->result ? f->result : "");
	put_str(&st, f->metadata ? f->metadata : "{}");
	put_int(&st, f->request_id, !f->has_request_id);
	crypto_hash_sha256_final(&st, out);
}

void
kw_audit_hash_hex(const uint8_t h[KW_AUDIT_HASH_LEN], char out[KW_AUDIT_HASH_HEX])
{
	sodium_bin2hex(out, KW_AUDIT_HASH_HEX, h, KW_AUDIT_HASH_LEN);
}

int
kw_audit_hash_parse(const char *hex, uint8_t out[KW_AUDIT_HASH_LEN])
{
	size_t n = 0;
	const char *end = NULL;

	if (strlen(hex) != 2 * KW_AUDIT_HASH_LEN ||
	    sodium_hex2bin(out, KW_AUDIT_HASH_LEN, hex, strlen(hex), NULL, &n, &end) != 0 ||
	    n != KW_AUDIT_HASH_LEN || *end != '\0')
		return -1;
	return 0;
}
