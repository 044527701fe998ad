/*
 * audit_chain.h - the audit trail's hash chain, shared by the broker (which
 * writes and verifies audit.db) and the CLI (which verifies archives).
 *
 * hash = SHA-256("keywarden-audit-v1\0" || prev_hash || F(seq) || F(ts) ||
 *        F(ts_ms) || F(user) || F(pid) || F(action) || F(resource) ||
 *        F(result) || F(metadata) || F(request_id))
 * F(x) is a 4-byte big-endian length and the bytes; integers are decimal
 * text; an absent value (NULL resource, no request id) is the length
 * 0xffffffff with no bytes.  Lengths make the encoding unambiguous, so no
 * two different records hash the same input.  The first record of a chain
 * follows 32 zero bytes (or the anchor left by pruning).
 */
#ifndef KW_AUDIT_CHAIN_H
#define KW_AUDIT_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/macros.h"

#define KW_AUDIT_HASH_LEN 32
#define KW_AUDIT_HASH_HEX (2 * KW_AUDIT_HASH_LEN + 1)

/* One record as stored: every string as it is in audit.db. */
struct kw_audit_fields {
	long long seq;
	const char *ts;
	long long ts_ms;
	const char *user;	/* pseudonym or "" */
	long long pid;
	const char *action;
	const char *resource;	/* NULL: absent */
	const char *result;
	const char *metadata;	/* the stored JSON text */
	bool has_request_id;
	long long request_id;
};

/* Compute the hash of f following prev into out.  Cannot fail. */
void kw_audit_chain_hash(const uint8_t prev[KW_AUDIT_HASH_LEN], const struct kw_audit_fields *f,
    uint8_t out[KW_AUDIT_HASH_LEN]) KW_NONNULL(1, 2, 3);

/* Lower-case hex of a hash into out (KW_AUDIT_HASH_HEX bytes with the NUL). */
void kw_audit_hash_hex(const uint8_t h[KW_AUDIT_HASH_LEN], char out[KW_AUDIT_HASH_HEX])
	KW_NONNULL(1, 2);

/* Parse 64 hex digits; 0, or -1 when hex is not exactly that. */
int kw_audit_hash_parse(const char *hex, uint8_t out[KW_AUDIT_HASH_LEN]) KW_NONNULL(1, 2);

#endif
