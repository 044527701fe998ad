/*
 * audit.h - the audit store (audit.db): one hash-chained record per
 * answered request.
 *
 * Records are appended inside a batch (kw_audit_begin ... kw_audit_commit):
 * the event loop opens one per turn, so the records of concurrent requests
 * share one transaction and one fsync (group commit), and no reply leaves
 * before its record's commit has returned.  Outside a batch a write commits
 * on its own.
 *
 * Users are named in records through pseudonyms ("~" and 20 hex digits)
 * kept in one table, audit_subjects; destroying a row there makes the
 * records about that person unlinkable while every hash still holds.
 * Pseudonyms are made for callers and registered users only: a name a
 * caller merely typed (made up, or a mistyped password) leaves no row.
 * With sealing on, metadata is stored as {"sealed": BASE64}: a libsodium
 * sealed box to the auditor's public key, which the broker cannot open.
 */
#ifndef KW_AUDIT_H
#define KW_AUDIT_H

#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <sys/types.h>

#include "common/audit_chain.h"
#include "common/macros.h"

#define KW_PSEUDONYM_SIZE 22	/* "~" + 20 hex digits + NUL */

struct kw_audit;

struct kw_audit_record {
	const char *user;	/* the user's name (pseudonymised on the way in); NULL: none */
	uid_t uid;
	pid_t pid;
	const char *action;	/* operation, or "malformed" / "unknown_op" */
	const char *resource;	/* may be NULL */
	const char *result;	/* "success", "denied" or "error" */
	json_t *metadata;	/* borrowed; NULL means {} */
	long long request_id;	/* < 0 when the request had none */
};

struct kw_audit_options {
	bool include_user;	/* security.audit.includeUser */
	bool include_context;	/* security.audit.includeContext */
	bool seal;		/* security.audit.encrypt */
	unsigned char seal_pk[crypto_box_PUBLICKEYBYTES];
	const char *log_file;	/* security.audit.logFile as a path, or NULL: committed
				   records are appended there as JSON lines (stored form) */
	/* Whether a name a record is about (not its caller) is a registered user:
	   a name that is neither gets no pseudonym, and is recorded as
	   KW_UNKNOWN_SUBJECT.  NULL: every name is. */
	bool (*registered)(const char *name, void *ctx);
	void *registered_ctx;
};

/* What records say in place of a name that is neither a caller nor a registered user. */
#define KW_UNKNOWN_SUBJECT "~unknown"

/* Filter of kw_audit_query; zero/NULL fields do not filter. */
struct kw_audit_filter {
	const char *user;	/* a name (or a "~" pseudonym): records of what the user did */
	const char *about;	/* likewise: what the user did or what was done to the user */
	const char *action;	/* a glob */
	const char *result;
	long long since_ms, until_ms;	/* 0: open */
	long long after;	/* seq cursor */
	int limit;		/* 1..1000; 0: 200 */
};

/*
 * Open or create dir/audit.db (kw_store_open: never through a link, only
 * files of root's or the broker's user's), and the log file when one is
 * set (the same rule).  *ret_audit is the caller's (kw_audit_close).  0;
 * KW_ERR_CONFIG (a file not trusted, the log file unusable) or another
 * code, with the reason in err.
 */
int kw_audit_open(const char *dir, const struct kw_audit_options *opt,
    struct kw_audit **ret_audit, char *err, size_t err_len) KW_WUR KW_NONNULL(1, 2, 3, 4);

#define KW_AUDIT_SEED_LEN 32	/* crypto_sign_SEEDBYTES */

/*
 * Sign the trail from now on with the Ed25519 key made from seed (the
 * broker derives it from its master secret): the head at every commit, each
 * anchor, each archive's manifest.  The secret key is kept in sodium_malloc
 * memory; the public key is written to dir/audit.pub (0644).  0, or
 * KW_ERR_IO / KW_ERR_NOMEM with the reason in err; KW_ERR_CONFIG when an
 * audit.pub is there that is not the broker's (a link, another user's).
 */
int kw_audit_set_signing_key(struct kw_audit *a, const unsigned char seed[KW_AUDIT_SEED_LEN],
    char *err, size_t err_len) KW_WUR KW_NONNULL(1, 2, 3);

/* The public key in base64 into out (KW_AUDIT_PK_B64), or "" when the store does not sign. */
void kw_audit_public_key(const struct kw_audit *a, char out[KW_AUDIT_PK_B64]) KW_NONNULL(1, 2);

/*
 * At start, before anything is appended: check that the head carries this
 * broker's signature.  A store in which nothing was ever signed (and
 * !signed_before: state.db does not remember signing) is taken as written
 * before keywarden signed: its newest anchor is signed and the next batch
 * begins with an "audit.signing" record naming the public key and the last
 * unsigned seq.  Otherwise an unsigned head begins the next batch with an
 * "audit.unsigned_head" record, at which verify reports the trail broken.
 * 0 or KW_ERR_AUDIT.
 */
int kw_audit_signing_start(struct kw_audit *a, bool signed_before) KW_WUR KW_NONNULL(1);

/* The committed head: the last record's seq and hash (hex). */
void kw_audit_head(const struct kw_audit *a, long long *ret_seq, char hex[KW_AUDIT_HASH_HEX])
	KW_NONNULL(1, 2, 3);

/*
 * Compare the store with the head state.db remembers (seq, hash hex) at
 * start.  A store that is missing or empty continues the chain after that
 * head (an anchor and an "audit.store_replaced" record); a store that ends
 * earlier gets an "audit.gap" record.  Verify reports the trail incomplete
 * at such a record for as long as it is kept.  0 or KW_ERR_AUDIT.
 */
int kw_audit_reconcile(struct kw_audit *a, long long seq, const char *hex) KW_WUR KW_NONNULL(1, 3);

struct kw_detector;

/*
 * The detector (borrowed: it must outlive the store, or the next call;
 * NULL: none) whose secret rules every record goes through before it is
 * hashed and written: a value they match in the metadata or the resource
 * is stored as "[REDACTED:<rule>]".  Its personal-data filters are not
 * applied.  Set at start and on each reload (svc->detector), so the rules
 * a configuration adds apply too.
 */
void kw_audit_set_secrets(struct kw_audit *a, const struct kw_detector *d) KW_NONNULL(1);

/* Close the store (a batch still open is rolled back).  Accepts NULL. */
void kw_audit_close(struct kw_audit *a);

/*
 * Start a batch.  A store that failed before is reopened first (it may be
 * writable again, or have been removed: a new file continues the chain from
 * the last head this process knows).  0 or KW_ERR_AUDIT.
 */
int kw_audit_begin(struct kw_audit *a) KW_WUR KW_NONNULL(1);

/*
 * Append one record: to the open batch, or committed on its own when none
 * is open.  0, or KW_ERR_AUDIT (reason logged; records hold no secrets).
 */
int kw_audit_write(struct kw_audit *a, const struct kw_audit_record *rec)
	KW_WUR KW_NONNULL(1, 2);

/* Commit the batch: 0 when every record in it is durable, else KW_ERR_AUDIT (rolled back). */
int kw_audit_commit(struct kw_audit *a) KW_WUR KW_NONNULL(1);

/* Abandon the batch.  No-op without one. */
void kw_audit_rollback(struct kw_audit *a) KW_NONNULL(1);

bool kw_audit_in_batch(const struct kw_audit *a) KW_NONNULL(1);

/* The pseudonym of name, made (inside the batch) when it has none.  0 or KW_ERR_AUDIT. */
int kw_audit_pseudonym(struct kw_audit *a, const char *name, char out[KW_PSEUDONYM_SIZE])
	KW_WUR KW_NONNULL(1, 2, 3);

/* The pseudonym of name if it has one (never makes one).  0, KW_ERR_NOT_FOUND, KW_ERR_IO. */
int kw_audit_find_pseudonym(struct kw_audit *a, const char *name, char out[KW_PSEUDONYM_SIZE])
	KW_WUR KW_NONNULL(1, 2, 3);

/* The name behind a pseudonym: 0, KW_ERR_NOT_FOUND (erased or unknown), KW_ERR_IO. */
int kw_audit_subject_name(struct kw_audit *a, const char *pseudonym, char *out, size_t out_len)
	KW_WUR KW_NONNULL(1, 2, 3);

/*
 * Destroy name's pseudonym mapping (GDPR erasure; inside the batch).  The
 * pseudonym goes to out (may be NULL).  0, KW_ERR_NOT_FOUND, KW_ERR_AUDIT.
 */
int kw_audit_forget_subject(struct kw_audit *a, const char *name, char out[KW_PSEUDONYM_SIZE])
	KW_WUR KW_NONNULL(1, 2);

/*
 * GDPR storage limitation: destroy the pseudonym mapping of every name for
 * which keep(name, ctx) is false and whose last record (by or about it) is
 * older than cutoff_ms, inside the open batch.  *ret_n gets how many.
 * 0 or KW_ERR_AUDIT.
 */
int kw_audit_forget_idle(struct kw_audit *a, long long cutoff_ms,
    bool (*keep)(const char *name, void *ctx), void *ctx, int *ret_n) KW_WUR KW_NONNULL(1, 3, 5);

/* Push erased bytes out of the file and its WAL (after the batch committed). */
void kw_audit_scrub(struct kw_audit *a) KW_NONNULL(1);

/*
 * Records matching f, oldest first, names resolved: *ret_records gets
 * {"records": [...], "next": seq|null, "subjects": {...}} (new reference).
 * 0, KW_ERR_NOMEM or KW_ERR_IO.
 */
int kw_audit_query(struct kw_audit *a, const struct kw_audit_filter *f, json_t **ret_result)
	KW_WUR KW_NONNULL(1, 2, 3);

/*
 * Check the whole chain from its anchor, and the broker's signatures: the
 * newest anchor's and the head's (when the head's fails, every head
 * signature is checked to find the first that does).  *ret_report (new
 * reference) is {"ok", "records", "first_seq", "last_seq", "head_hash",
 * "anchor_seq", "signed" (signatures were checked), "public_key",
 * "unsigned_through" (null, or the last seq written before the broker
 * signed), "bad": null | {"seq", "what", "reason"}} where what is
 * "record", "anchor" or "head_signature".  0 or KW_ERR_IO/KW_ERR_NOMEM.
 */
int kw_audit_verify(struct kw_audit *a, json_t **ret_report) KW_WUR KW_NONNULL(1, 2);

/*
 * Prune one batch (at most `batch` records) of records older than cutoff_ms,
 * archiving them first to archive_dir when it is not NULL; inside the open
 * batch, which also gets an "audit.prune" record.  *ret_report:
 * {"pruned", "remaining_due", "archive", "done"}.  0, KW_ERR_IO, KW_ERR_AUDIT.
 */
int kw_audit_prune(struct kw_audit *a, long long cutoff_ms, const char *archive_dir,
    int batch, json_t **ret_report) KW_WUR KW_NONNULL(1, 5);

#endif
