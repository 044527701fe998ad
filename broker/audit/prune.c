/*
 * audit_prune.c - retention: cutting old records off the front of the chain
 * in small batches, archiving them first (see audit.h).
 *
 * Only a prefix of the chain is ever cut, and the cut leaves an anchor (the
 * seq of the first record kept and the hash it follows), so the rest still
 * verifies; the broker signs the anchor.  Each archive ends with a manifest
 * the broker signs.  The archive is written and synced before the records are
 * deleted; if the deletion does not commit, the next run writes the same
 * file again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "broker/audit/audit_internal.h"
#include "common/clock.h"
#include "common/fsutil.h"
#include "client/keywarden.h"
#include "common/log.h"
#include "broker/store/sql.h"

/* One line of the archive; the bytes before the manifest go into digest. */
static int
gz_line(gzFile gz, json_t *obj, crypto_hash_sha256_state *digest)
{
	char *s = json_dumps(obj, JSON_COMPACT);
	int ok = s && gzputs(gz, s) >= 0 && gzputc(gz, '\n') >= 0;

	if (ok && digest) {
		crypto_hash_sha256_update(digest, (const unsigned char *)s, strlen(s));
		crypto_hash_sha256_update(digest, (const unsigned char *)"\n", 1);
	}
	free(s);
	return ok ? 0 : KW_ERR_IO;
}

/*
 * The last line: what the archive holds, signed (common/audit_chain.h).  An
 * archive is checked offline against the broker's public key, so a file
 * re-chained by someone else, or cut short, is told from one of ours.
 */
static int
gz_manifest(struct kw_audit *a, gzFile gz, struct kw_audit_manifest *m)
{
	char prev[KW_AUDIT_HASH_HEX], last[KW_AUDIT_HASH_HEX], digest[KW_AUDIT_HASH_HEX];
	char pk[KW_AUDIT_PK_B64], sig_b64[KW_AUDIT_SIG_B64];
	uint8_t sig[KW_AUDIT_SIG_LEN];
	struct kw_audit_msg msg;
	json_t *o;
	int r;

	kw_audit_hash_hex(m->prev_hash, prev);
	kw_audit_hash_hex(m->last_hash, last);
	kw_audit_hash_hex(m->sha256, digest);
	o = json_pack("{s:i, s:I, s:I, s:I, s:s, s:s, s:s}", "keywarden_manifest", 1,
	    "first_seq", (json_int_t)m->first_seq, "last_seq", (json_int_t)m->last_seq,
	    "count", (json_int_t)m->count, "prev_hash", prev, "last_hash", last, "sha256", digest);
	if (o && a->sign_sk) {
		kw_audit_manifest_message(m, &msg);
		kw_audit_sign(a, &msg, sig);
		sodium_bin2base64(sig_b64, sizeof(sig_b64), sig, sizeof(sig),
		    sodium_base64_VARIANT_ORIGINAL);
		kw_audit_pk_b64(a->sign_pk, pk);
		json_object_set_new(o, "public_key", json_string(pk));
		json_object_set_new(o, "signature", json_string(sig_b64));
	}
	r = o ? gz_line(gz, o, NULL) : KW_ERR_NOMEM;
	json_decref(o);
	return r;
}

/*
 * dir/archive, made 0700 or the broker's own (fsutil.h: not a link, no one
 * else's, no one else may write it).  The fd, or a code (logged).
 */
static int
archive_dir(const char *dir)
{
	char why[384];
	const char *name;
	_cleanup_close_ int pfd = kw_open_dir_of(dir, &name);
	int fd;

	if (pfd < 0) {
		kw_log_error("audit archive: %s: %s", dir, strerror(errno));
		return KW_ERR_IO;
	}
	if ((fd = kw_open_dir_private(pfd, name, 0700, why, sizeof(why))) < 0)
		kw_log_error("audit archive: %s: %s", dir, why);
	return fd;
}

/* Write records [first, last] to dir/audit-FIRST-LAST.jsonl.gz; path to ret_path. */
static int
write_archive(struct kw_audit *a, const char *dir, long long first, long long last,
    const uint8_t prev[KW_AUDIT_HASH_LEN], char *ret_path, size_t path_len)
{
	char file[96], tmp[104], hex[KW_AUDIT_HASH_HEX], ts[KW_RFC3339_LEN], why[384];
	struct kw_audit_manifest m = { .first_seq = first, .last_seq = last };
	crypto_hash_sha256_state digest;
	sqlite3_stmt *st = NULL;
	json_t *head, *rec;
	gzFile gz = NULL;
	_cleanup_close_ int dfd = -1;
	int fd = -1, r = KW_ERR_IO, rc;

	if ((dfd = archive_dir(dir)) < 0)
		return dfd == KW_ERR_CONFIG ? dfd : KW_ERR_IO;
	snprintf(file, sizeof(file), "audit-%lld-%lld.jsonl.gz", first, last);
	snprintf(tmp, sizeof(tmp), "%s.tmp", file);
	snprintf(ret_path, path_len, "%s/%s", dir, file);
	if ((fd = kw_open_private(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600, why,
	    sizeof(why))) < 0) {
		kw_log_error("audit archive: %s.tmp: %s", ret_path, why);
		return fd == KW_ERR_CONFIG ? fd : KW_ERR_IO;
	}
	if (!(gz = gzdopen(dup(fd), "wb9"))) {
		kw_log_error("audit archive: %s.tmp: %s", ret_path, strerror(errno));
		goto out;
	}
	kw_audit_hash_hex(prev, hex);
	memcpy(m.prev_hash, prev, sizeof(m.prev_hash));
	memcpy(m.last_hash, prev, sizeof(m.last_hash));
	crypto_hash_sha256_init(&digest);
	kw_now_rfc3339(ts);
	/* Format 2: format 1 plus the signed manifest at the end. */
	head = json_pack("{s:i, s:I, s:I, s:s, s:s}", "keywarden_archive", 2,
	    "first_seq", (json_int_t)first, "last_seq", (json_int_t)last, "prev_hash", hex,
	    "created", ts);
	rc = head ? gz_line(gz, head, &digest) : KW_ERR_NOMEM;
	json_decref(head);
	if (rc < 0 || kw_sql_prepare(a->db, &st, "SELECT " KW_AUDIT_COLUMNS " FROM audit_log "
	    "WHERE seq BETWEEN ? AND ? ORDER BY seq", "ii", first, last) < 0)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		/* Stored values, pseudonyms and all: what the hashes cover. */
		if (!(rec = kw_audit_row_json(st)) || gz_line(gz, rec, &digest) < 0) {
			json_decref(rec);
			goto out;
		}
		json_decref(rec);
		if (sqlite3_column_bytes(st, 11) == KW_AUDIT_HASH_LEN)
			memcpy(m.last_hash, sqlite3_column_blob(st, 11), sizeof(m.last_hash));
		m.count++;
	}
	if (rc != SQLITE_DONE)
		goto out;
	crypto_hash_sha256_final(&digest, m.sha256);
	if (gz_manifest(a, gz, &m) < 0)
		goto out;
	rc = gzclose(gz);
	gz = NULL;
	if (rc != Z_OK || fsync(fd) < 0 || renameat(dfd, tmp, dfd, file) < 0) {
		kw_log_error("audit archive: %s: %s", ret_path, strerror(errno));
		goto out;
	}
	/* The rename is durable only once the directory is. */
	(void)fsync(dfd);
	r = 0;
 out:
	kw_sql_done(st);
	if (gz)
		gzclose(gz);
	close(fd);
	if (r < 0)
		(void)unlinkat(dfd, tmp, 0);
	return r;
}

static long long
count_due(struct kw_audit *a, long long cutoff_ms)
{
	sqlite3_stmt *st = NULL;
	long long n = -1;

	if (kw_sql_prepare(a->db, &st, "SELECT count(*) FROM audit_log WHERE ts_ms < ?", "i",
	    cutoff_ms) == 0 && sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	kw_sql_done(st);
	return n;
}

int
kw_audit_prune(struct kw_audit *a, long long cutoff_ms, const char *archive_dir, int batch,
    json_t **ret_report)
{
	long long first = 0, last = 0, n = 0;
	uint8_t prev[KW_AUDIT_HASH_LEN], last_hash[KW_AUDIT_HASH_LEN];
	char path[4200] = "", ts[KW_RFC3339_LEN];
	sqlite3_stmt *st = NULL;
	int rc, r;

	if (!a->db || !a->in_batch)
		return KW_ERR_AUDIT;
	/* The oldest records, in chain order, as long as they are past retention. */
	if (kw_sql_prepare(a->db, &st, "SELECT seq, ts_ms, prev_hash, hash FROM audit_log "
	    "ORDER BY seq LIMIT ?", "i", (long long)batch) < 0)
		return KW_ERR_IO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && sqlite3_column_int64(st, 1) < cutoff_ms) {
		if (!first) {
			first = sqlite3_column_int64(st, 0);
			if (sqlite3_column_bytes(st, 2) == KW_AUDIT_HASH_LEN)
				memcpy(prev, sqlite3_column_blob(st, 2), sizeof(prev));
		}
		last = sqlite3_column_int64(st, 0);
		if (sqlite3_column_bytes(st, 3) == KW_AUDIT_HASH_LEN)
			memcpy(last_hash, sqlite3_column_blob(st, 3), sizeof(last_hash));
		n++;
	}
	kw_sql_done(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return KW_ERR_IO;
	if (n > 0) {
		if (archive_dir &&
		    (r = write_archive(a, archive_dir, first, last, prev, path, sizeof(path))) < 0)
			return r;
		kw_now_rfc3339(ts);
		/* The head signatures of what goes, go with it; the anchor is signed instead. */
		if (kw_sql_exec(a->db, NULL, "DELETE FROM audit_log WHERE seq BETWEEN ? AND ?",
		    "ii", first, last) < 0 ||
		    kw_sql_exec(a->db, NULL, "DELETE FROM audit_head_sig WHERE seq <= ?", "i",
		    last) < 0 ||
		    kw_audit_put_anchor(a, last + 1, last_hash, ts,
		    path[0] ? path : "pruned without archive") < 0)
			return KW_ERR_AUDIT;
		/* The cut is itself part of the chain. */
		char hex[KW_AUDIT_HASH_HEX];
		kw_audit_hash_hex(last_hash, hex);
		json_t *meta = json_pack("{s:I, s:I, s:I, s:s, s:s?}", "first_seq", (json_int_t)first,
		    "through_seq", (json_int_t)last, "count", (json_int_t)n, "anchor_hash", hex,
		    "archive", path[0] ? path : NULL);
		struct kw_audit_record rec = {
			.user = NULL, .pid = getpid(), .action = "audit.prune", .resource = "audit",
			.result = "success", .metadata = meta, .request_id = -1,
		};
		r = meta ? kw_audit_write(a, &rec) : KW_ERR_NOMEM;
		json_decref(meta);
		if (r < 0)
			return r;
	}
	long long due = count_due(a, cutoff_ms);
	*ret_report = json_pack("{s:I, s:I, s:s?, s:b}", "pruned", (json_int_t)n,
	    "remaining_due", (json_int_t)(due < 0 ? 0 : due), "archive", path[0] ? path : NULL,
	    "done", n == 0 || due <= 0 || n < batch);
	return *ret_report ? 0 : KW_ERR_NOMEM;
}
