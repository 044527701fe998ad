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
 *
 * The broker signs with Ed25519 (its key is derived from its master secret;
 * the public key is dataDir/audit.pub), each message domain-separated:
 *   head     = "keywarden-audit-head-v1\0" || F(seq) || hash
 *              (at every commit: the newest record's seq and hash)
 *   anchor   = "keywarden-audit-anchor-v1\0" || F(first_seq) || prev_hash
 *              (where the chain goes on after a cut, and the hash it follows)
 *   manifest = "keywarden-audit-manifest-v1\0" || F(first_seq) || F(last_seq) ||
 *              F(count) || prev_hash || last_hash || sha256
 *              (an archive: its first and last seq, the hash before its first
 *              record and its last record's hash, how many records it holds,
 *              and the SHA-256 of every byte of the file before the manifest)
 * Hashes are the 32 raw bytes.  A head signature cannot stand for an anchor:
 * the domains differ, so a cut is never "signed" by a commit that ended there.
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

#define KW_AUDIT_PK_LEN 32	/* crypto_sign_PUBLICKEYBYTES */
#define KW_AUDIT_SIG_LEN 64	/* crypto_sign_BYTES */
/* Base64 (with padding) of a public key or a signature, with the NUL. */
#define KW_AUDIT_PK_B64 45
#define KW_AUDIT_SIG_B64 89

/* A message to sign or check; build it with one of the kw_audit_*_message functions. */
struct kw_audit_msg {
	uint8_t b[160];
	size_t len;
};

/* What an archive's manifest vouches for. */
struct kw_audit_manifest {
	long long first_seq, last_seq, count;
	uint8_t prev_hash[KW_AUDIT_HASH_LEN];	/* the hash the first record follows */
	uint8_t last_hash[KW_AUDIT_HASH_LEN];	/* the last record's hash */
	uint8_t sha256[KW_AUDIT_HASH_LEN];	/* of every byte of the file before the manifest */
};

/* The messages above.  Cannot fail. */
void kw_audit_head_message(long long seq, const uint8_t hash[KW_AUDIT_HASH_LEN],
    struct kw_audit_msg *out) KW_NONNULL(2, 3);
void kw_audit_anchor_message(long long first_seq, const uint8_t prev[KW_AUDIT_HASH_LEN],
    struct kw_audit_msg *out) KW_NONNULL(2, 3);
void kw_audit_manifest_message(const struct kw_audit_manifest *m, struct kw_audit_msg *out)
	KW_NONNULL(1, 2);

/* True when sig (KW_AUDIT_SIG_LEN bytes) is pk's signature of msg. */
bool kw_audit_sig_ok(const struct kw_audit_msg *msg, const uint8_t *sig,
    const uint8_t pk[KW_AUDIT_PK_LEN]) KW_NONNULL(1, 2, 3);

/* Base64 of a public key into out (KW_AUDIT_PK_B64 bytes with the NUL). */
void kw_audit_pk_b64(const uint8_t pk[KW_AUDIT_PK_LEN], char out[KW_AUDIT_PK_B64])
	KW_NONNULL(1, 2);

/*
 * Parse base64 text of exactly len bytes (surrounding white space and a
 * trailing newline allowed, as in audit.pub) into out.  0, or -1.
 */
int kw_audit_b64_parse(const char *text, size_t text_len, uint8_t *out, size_t len)
	KW_NONNULL(1, 3);

#endif
