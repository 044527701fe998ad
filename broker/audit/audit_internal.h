/*
 * audit_internal.h - the audit store's insides, shared by audit.c (writing),
 * query.c (reading, verifying), prune.c (retention) and sign.c (the
 * broker's signatures).  Not for other parts of the broker: they use audit.h.
 */
#ifndef KW_AUDIT_INTERNAL_H
#define KW_AUDIT_INTERNAL_H

#include <sys/stat.h>

#include "broker/audit/audit.h"
#include "policy/detect/detect.h"

struct kw_audit {
	sqlite3 *db;			/* NULL while the store cannot be opened */
	char path[4096];
	dev_t dev;			/* the file we opened: a replaced one is noticed */
	ino_t ino;
	struct kw_audit_options opt;
	char owner[65];			/* the broker's own user: who writes its own records */
	long long last_seq;		/* committed head */
	uint8_t last_hash[KW_AUDIT_HASH_LEN];
	long long pending_seq;		/* head including the open batch */
	uint8_t pending_hash[KW_AUDIT_HASH_LEN];
	bool in_batch;
	bool batch_failed;		/* SQLite dropped the batch's transaction */
	bool broken;			/* reopen before the next batch */
	long long replaced_after;	/* > 0: the store was replaced after this seq (to record) */
	unsigned char *sign_sk;		/* Ed25519 secret key (sodium_malloc, read-only), or NULL */
	uint8_t sign_pk[KW_AUDIT_PK_LEN];
	bool signing_note;		/* record "audit.signing" (unsigned history through
					   signing_from) in the next batch */
	long long signing_from;
	long long unsigned_head_at;	/* > 0: record "audit.unsigned_head" for this seq */
	int log_fd;			/* security.audit.logFile, or -1 */
	char *log_buf;			/* the batch's lines, written after its commit */
	size_t log_len, log_cap;
	const struct kw_detector *secrets;	/* whose secret rules records go through
					   (borrowed: kw_audit_set_secrets), or NULL */
};

/*
 * In scrub.c.  in/len with each secret rule's match replaced by
 * "[REDACTED:<rule>]": *ret_out (malloc'd) or NULL when nothing matched.
 * 0 or KW_ERR_NOMEM.
 */
int kw_audit_scrub_text(const struct kw_detector *d, const char *in, size_t len, char **ret_out);
/* Every string of v (keys too, at any depth) scrubbed in place.  0 or KW_ERR_NOMEM. */
int kw_audit_scrub_json(const struct kw_detector *d, json_t *v);

/* The chain fields of the current row of st (columns as in KW_AUDIT_COLUMNS). */
#define KW_AUDIT_COLUMNS \
	"seq, ts, ts_ms, user, pid, action, resource, result, metadata, request_id, " \
	"prev_hash, hash"

void kw_audit_row_fields(sqlite3_stmt *st, struct kw_audit_fields *f) KW_NONNULL(1, 2);

/* The row of st as a stored record object (pseudonyms kept, hashes hex); NULL on ENOMEM. */
json_t *kw_audit_row_json(sqlite3_stmt *st) KW_NONNULL(1);

/* ---- sign.c ---- */

/* Sign msg with the broker's key into sig.  Only when a->sign_sk is set. */
void kw_audit_sign(const struct kw_audit *a, const struct kw_audit_msg *msg,
    uint8_t sig[KW_AUDIT_SIG_LEN]) KW_NONNULL(1, 2, 3);

/* Sign the open batch's head (pending_seq) and store it with the batch.  0 or KW_ERR_AUDIT. */
int kw_audit_sign_head(struct kw_audit *a) KW_WUR KW_NONNULL(1);

/*
 * Whether the committed head (last_seq, last_hash: the newest record, or
 * the anchor when every record was pruned) carries a valid signature of
 * this broker's key.  True too when the store holds nothing.
 */
bool kw_audit_head_signed(struct kw_audit *a) KW_NONNULL(1);

/* Insert (or replace) an anchor, signed when the broker signs.  0 or KW_ERR_AUDIT. */
int kw_audit_put_anchor(struct kw_audit *a, long long first_seq,
    const uint8_t prev[KW_AUDIT_HASH_LEN], const char *ts, const char *note) KW_WUR
	KW_NONNULL(1, 3, 4, 5);

/* Replace "~" pseudonyms inside s by the names they map to; new string or NULL. */
char *kw_audit_resolve_text(struct kw_audit *a, const char *s, json_t *subjects)
	KW_NONNULL(1, 2);

#endif
