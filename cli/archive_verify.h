/*
 * archive_verify.h - checking an audit archive (a gzip JSONL file written by
 * the broker before it prunes records) without a broker: the header, the
 * sequence numbers, the prev_hash links, every record's hash, and the
 * manifest on the last line, which must describe the file exactly and
 * carry the broker's signature (common/audit_chain.h).
 */
#ifndef KW_ARCHIVE_VERIFY_H
#define KW_ARCHIVE_VERIFY_H

#include "common/audit_chain.h"
#include "common/macros.h"

struct kw_archive_report {
	long long first_seq, last_seq;	/* from the header; -1 before it is read */
	long long records;		/* records read and found sound */
	char head_hash[KW_AUDIT_HASH_HEX];	/* the last sound record's hash, or "" */
	bool is_signed;			/* the manifest's signature holds under the key given */
	char signer[KW_AUDIT_PK_B64];	/* the key the manifest names (informative), or "" */
	/* Where it broke: a record's seq (-1 when the line has none) and its line. */
	long long bad_seq, bad_line;
	char reason[256];
};

/*
 * Check the archive at path against the broker's public key pk and describe
 * it in *ret_report.  0 when it is intact and signed by pk; KW_ERR_INVALID
 * when it is not (bad_line, bad_seq and reason say where and why: corrupt
 * gzip data, a malformed line, a broken link or hash, missing records, no
 * manifest, a manifest that does not match the file, a manifest signature
 * that does not verify); KW_ERR_IO when it cannot be opened (errno set);
 * KW_ERR_NOMEM.  The key the manifest names is never trusted: only pk.
 */
int kw_archive_verify(const char *path, const uint8_t pk[KW_AUDIT_PK_LEN],
    struct kw_archive_report *ret_report) KW_WUR KW_NONNULL(1, 2, 3);

#endif
