/*
 * audit.h - the audit store (audit.db): one record per answered request.
 *
 * A record is committed before kw_audit_write returns, so the broker can
 * answer only what is on disk; when writing fails the caller refuses the
 * request (fail closed).  The schema leaves room for later work: records are
 * ordered by seq, which is never reused (hash chain), carry ts_ms for
 * retention, and keep details in a JSON metadata column (export, sealing).
 */
#ifndef KW_AUDIT_H
#define KW_AUDIT_H

#include <jansson.h>
#include <sys/types.h>

#include "macros.h"

struct kw_audit;

struct kw_audit_record {
	const char *user;	/* caller's user name */
	uid_t uid;
	pid_t pid;
	const char *action;	/* operation, or "malformed" / "unknown_op" */
	const char *resource;	/* may be NULL */
	const char *result;	/* "success", "denied" or "error" */
	json_t *metadata;	/* borrowed; NULL means {} */
	long long request_id;	/* < 0 when the request had none */
};

/* Open or create dir/audit.db.  *ret_audit is the caller's (kw_audit_close). */
int kw_audit_open(const char *dir, struct kw_audit **ret_audit, char *err, size_t err_len)
	KW_WUR KW_NONNULL(1, 2, 3);

/* Close the store.  Accepts NULL. */
void kw_audit_close(struct kw_audit *a);

/*
 * Append one record and commit it.  0 when it is durable, KW_ERR_AUDIT
 * otherwise; the reason is logged (never a secret: records hold none).
 */
int kw_audit_write(struct kw_audit *a, const struct kw_audit_record *rec)
	KW_WUR KW_NONNULL(1, 2);

#endif
