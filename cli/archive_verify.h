/*
 * archive_verify.h - checking an audit archive (a gzip JSONL file written by
 * the broker before it prunes records) without a broker: the header, the
 * sequence numbers, the prev_hash links and every record's hash.
 */
#ifndef KW_ARCHIVE_VERIFY_H
#define KW_ARCHIVE_VERIFY_H

#include "common/audit_chain.h"
#include "common/macros.h"

struct kw_archive_report {
	long long first_seq, last_seq;	/* from the header; -1 before it is read */
	long long records;		/* records read and found sound */
	char head_hash[KW_AUDIT_HASH_HEX];	/* the last sound record's hash, or "" */
	/* Where it broke: a record's seq (-1 when the line has none) and its line. */
	long long bad_seq, bad_line;
	char reason[256];
};

/*
 * Check the archive at path and describe it in *ret_report.  0 when it is
 * intact; KW_ERR_INVALID when it is not (bad_line, bad_seq and reason say
 * where and why: corrupt gzip data, a malformed line, a broken link or hash,
 * missing records); KW_ERR_IO when it cannot be opened (errno set);
 * KW_ERR_NOMEM.
 */
int kw_archive_verify(const char *path, struct kw_archive_report *ret_report)
	KW_WUR KW_NONNULL(1, 2);

#endif
