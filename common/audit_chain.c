/*
 * audit_chain.c - hashing audit records into a chain (see audit_chain.h).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/audit_chain.h"

static const char domain[] = "keywarden-audit-v1";
static const char head_domain[] = "keywarden-audit-head-v1";
static const char anchor_domain[] = "keywarden-audit-anchor-v1";
static const char manifest_domain[] = "keywarden-audit-manifest-v1";

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

/* ---- signed messages ------------------------------------------------------ */

static void
msg_put(struct kw_audit_msg *m, const void *p, size_t n)
{
	/* The messages are of fixed shape and fit; a longer one is a bug here. */
	if (m->len + n > sizeof(m->b))
		abort();
	memcpy(m->b + m->len, p, n);
	m->len += n;
}

/* The domain with its NUL, as the chain's. */
static void
msg_start(struct kw_audit_msg *m, const char *tag)
{
	m->len = 0;
	msg_put(m, tag, strlen(tag) + 1);
}

/* F(v): 4-byte big-endian length, then v in decimal. */
static void
msg_int(struct kw_audit_msg *m, long long v)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%lld", v);
	unsigned char be[4] = { 0, 0, 0, (unsigned char)n };

	msg_put(m, be, sizeof(be));
	msg_put(m, buf, (size_t)n);
}

void
kw_audit_head_message(long long seq, const uint8_t hash[KW_AUDIT_HASH_LEN],
    struct kw_audit_msg *out)
{
	msg_start(out, head_domain);
	msg_int(out, seq);
	msg_put(out, hash, KW_AUDIT_HASH_LEN);
}

void
kw_audit_anchor_message(long long first_seq, const uint8_t prev[KW_AUDIT_HASH_LEN],
    struct kw_audit_msg *out)
{
	msg_start(out, anchor_domain);
	msg_int(out, first_seq);
	msg_put(out, prev, KW_AUDIT_HASH_LEN);
}

void
kw_audit_manifest_message(const struct kw_audit_manifest *m, struct kw_audit_msg *out)
{
	msg_start(out, manifest_domain);
	msg_int(out, m->first_seq);
	msg_int(out, m->last_seq);
	msg_int(out, m->count);
	msg_put(out, m->prev_hash, KW_AUDIT_HASH_LEN);
	msg_put(out, m->last_hash, KW_AUDIT_HASH_LEN);
	msg_put(out, m->sha256, KW_AUDIT_HASH_LEN);
}

bool
kw_audit_sig_ok(const struct kw_audit_msg *msg, const uint8_t *sig,
    const uint8_t pk[KW_AUDIT_PK_LEN])
{
	return crypto_sign_verify_detached(sig, msg->b, msg->len, pk) == 0;
}

void
kw_audit_pk_b64(const uint8_t pk[KW_AUDIT_PK_LEN], char out[KW_AUDIT_PK_B64])
{
	sodium_bin2base64(out, KW_AUDIT_PK_B64, pk, KW_AUDIT_PK_LEN, sodium_base64_VARIANT_ORIGINAL);
}

int
kw_audit_b64_parse(const char *text, size_t text_len, uint8_t *out, size_t len)
{
	size_t n = 0;
	const char *end = NULL;

	while (text_len > 0 && strchr(" \t\r\n", text[text_len - 1]))
		text_len--;
	while (text_len > 0 && strchr(" \t\r\n", *text)) {
		text++;
		text_len--;
	}
	if (text_len == 0 || memchr(text, '\0', text_len) ||
	    sodium_base642bin(out, len, text, text_len, NULL, &n, &end,
	    sodium_base64_VARIANT_ORIGINAL) != 0 || n != len || end != text + text_len)
		return -1;
	return 0;
}

_Static_assert(KW_AUDIT_PK_LEN == crypto_sign_PUBLICKEYBYTES, "Ed25519 public key size");
_Static_assert(KW_AUDIT_SIG_LEN == crypto_sign_BYTES, "Ed25519 signature size");
_Static_assert(KW_AUDIT_PK_B64 == sodium_base64_ENCODED_LEN(KW_AUDIT_PK_LEN,
    sodium_base64_VARIANT_ORIGINAL), "base64 of a public key");
_Static_assert(KW_AUDIT_SIG_B64 == sodium_base64_ENCODED_LEN(KW_AUDIT_SIG_LEN,
    sodium_base64_VARIANT_ORIGINAL), "base64 of a signature");
