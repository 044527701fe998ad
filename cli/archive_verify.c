/*
 * archive_verify.c - checking an audit archive offline (see archive_verify.h).
 *
 * The file is read in chunks and split into lines here, so a line of any
 * length (a record with large details) is read whole, and a NUL byte inside
 * one is seen as the malformed input it is.
 */
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <jansson.h>

#include "cli/archive_verify.h"
#include "client/keywarden.h"

/* A line longer than this is not one the broker wrote. */
#define LINE_MAX_BYTES (256u << 20)

struct reader {
	gzFile gz;
	const char *path;
	char chunk[64 * 1024];
	size_t pos, end;
	bool eof;
	char *line;
	size_t len, cap;
	long long lineno;
};

struct chain {
	uint8_t prev[KW_AUDIT_HASH_LEN];
	long long next_seq;
	uint8_t first_prev[KW_AUDIT_HASH_LEN];	/* the header's prev_hash */
	crypto_hash_sha256_state digest;	/* every byte before the manifest */
	const uint8_t *pk;			/* the key the manifest must be signed with */
};

/* The format this checker reads: 2 is format 1 with a signed manifest at the end. */
#define ARCHIVE_FORMAT 2

static void KW_PRINTF(4, 5)
fail(struct kw_archive_report *rep, long long seq, long long line, const char *fmt, ...)
{
	va_list ap;

	rep->bad_seq = seq;
	rep->bad_line = line;
	va_start(ap, fmt);
	vsnprintf(rep->reason, sizeof(rep->reason), fmt, ap);
	va_end(ap);
}

static int
append(struct reader *rd, const char *p, size_t n)
{
	if (rd->len + n + 1 > rd->cap) {
		size_t cap = rd->cap ? rd->cap : 4096;
		while (cap < rd->len + n + 1)
			cap *= 2;
		if (cap > LINE_MAX_BYTES + 1)
			return KW_ERR_INVALID;
		char *nl = realloc(rd->line, cap);
		if (!nl)
			return KW_ERR_NOMEM;
		rd->line = nl;
		rd->cap = cap;
	}
	memcpy(rd->line + rd->len, p, n);
	rd->len += n;
	rd->line[rd->len] = '\0';
	return 0;
}

/* Refill the chunk; 0, or KW_ERR_INVALID with why on corrupt or truncated data. */
static int
refill(struct reader *rd, char *why, size_t whylen)
{
	int n = gzread(rd->gz, rd->chunk, sizeof(rd->chunk));
	int zerr = Z_OK;
	const char *msg;

	if (n > 0 && gzdirect(rd->gz)) {
		snprintf(why, whylen, "not gzip-compressed");
		return KW_ERR_INVALID;
	}
	if (n <= 0) {
		msg = gzerror(rd->gz, &zerr);
		/* Z_BUF_ERROR at the end: the input stopped in the middle of a gzip stream. */
		if (n < 0 || zerr != Z_OK) {
			/* zlib puts the path in front of its message; it is said already. */
			if (strncmp(msg, rd->path, strlen(rd->path)) == 0 &&
			    strncmp(msg + strlen(rd->path), ": ", 2) == 0)
				msg += strlen(rd->path) + 2;
			snprintf(why, whylen, "corrupt gzip data (%s)",
			    zerr == Z_BUF_ERROR ? "truncated" : zerr == Z_ERRNO ? strerror(errno) : msg);
			return KW_ERR_INVALID;
		}
		rd->eof = true;
		n = 0;
	}
	rd->pos = 0;
	rd->end = (size_t)n;
	return 0;
}

/* The next line (without its newline) in rd->line: 1, 0 at the end, or a negative code. */
static int
next_line(struct reader *rd, char *why, size_t whylen)
{
	int r;

	rd->len = 0;
	rd->lineno++;
	for (;;) {
		if (rd->pos == rd->end) {
			if (rd->eof)
				return rd->len > 0;
			if ((r = refill(rd, why, whylen)) < 0)
				return r;
			continue;
		}
		char *start = rd->chunk + rd->pos;
		char *nl = memchr(start, '\n', rd->end - rd->pos);
		size_t n = nl ? (size_t)(nl - start) : rd->end - rd->pos;
		if ((r = append(rd, start, n)) < 0) {
			snprintf(why, whylen, r == KW_ERR_NOMEM ? "out of memory" : "line too long");
			return r;
		}
		rd->pos += n + (nl != NULL);
		if (nl)
			return 1;
	}
}

static json_t *
parse_line(struct reader *rd, struct kw_archive_report *rep)
{
	json_error_t err;
	json_t *v = json_loadb(rd->line, rd->len, JSON_REJECT_DUPLICATES, &err);

	if (!v)
		fail(rep, -1, rd->lineno, "malformed JSON at column %d: %s", err.column, err.text);
	else if (!json_is_object(v)) {
		fail(rep, -1, rd->lineno, "malformed line: not a JSON object");
		json_decref(v);
		v = NULL;
	}
	return v;
}

static int
check_header(json_t *h, struct chain *ch, struct kw_archive_report *rep)
{
	json_t *version = json_object_get(h, "keywarden_archive");
	json_t *first = json_object_get(h, "first_seq"), *last = json_object_get(h, "last_seq");
	const char *prev = json_string_value(json_object_get(h, "prev_hash"));

	if (!json_is_integer(version)) {
		fail(rep, -1, 1, "not a keywarden archive (no keywarden_archive header)");
		return KW_ERR_INVALID;
	}
	if (json_integer_value(version) == 1) {
		fail(rep, -1, 1, "archive format 1 has no signed manifest (it was written before "
		    "keywarden signed its archives): it cannot be checked against the broker's key");
		return KW_ERR_INVALID;
	}
	if (json_integer_value(version) != ARCHIVE_FORMAT) {
		fail(rep, -1, 1, "archive format %lld, this keywarden reads format %d",
		    (long long)json_integer_value(version), ARCHIVE_FORMAT);
		return KW_ERR_INVALID;
	}
	if (!json_is_integer(first) || !json_is_integer(last) || json_integer_value(first) < 1 ||
	    json_integer_value(last) < json_integer_value(first) || !prev ||
	    kw_audit_hash_parse(prev, ch->prev) < 0 ||
	    !json_is_string(json_object_get(h, "created"))) {
		fail(rep, -1, 1, "malformed header: needs first_seq <= last_seq, prev_hash "
		    "(64 hex digits) and created");
		return KW_ERR_INVALID;
	}
	rep->first_seq = ch->next_seq = json_integer_value(first);
	rep->last_seq = json_integer_value(last);
	memcpy(ch->first_prev, ch->prev, sizeof(ch->first_prev));
	return 0;
}

/* The record's fields as they were hashed; metadata is rendered into *ret_meta. */
static const char *
record_fields(json_t *rec, struct kw_audit_fields *f, char **ret_meta)
{
	json_t *seq = json_object_get(rec, "seq"), *ts_ms = json_object_get(rec, "ts_ms");
	json_t *pid = json_object_get(rec, "pid"), *res = json_object_get(rec, "resource");
	json_t *rid = json_object_get(rec, "request_id"), *meta = json_object_get(rec, "metadata");

	if (!json_is_integer(seq))
		return "seq";
	f->seq = json_integer_value(seq);
	if (!(f->ts = json_string_value(json_object_get(rec, "timestamp"))))
		return "timestamp";
	if (!json_is_integer(ts_ms))
		return "ts_ms";
	f->ts_ms = json_integer_value(ts_ms);
	if (!(f->user = json_string_value(json_object_get(rec, "user"))))
		return "user";
	if (!json_is_integer(pid))
		return "pid";
	f->pid = json_integer_value(pid);
	if (!(f->action = json_string_value(json_object_get(rec, "action"))))
		return "action";
	if (!json_is_null(res) && !json_is_string(res))
		return "resource";
	f->resource = json_string_value(res);
	if (!(f->result = json_string_value(json_object_get(rec, "result"))))
		return "result";
	if (!json_is_null(rid) && !json_is_integer(rid))
		return "request_id";
	f->has_request_id = json_is_integer(rid);
	f->request_id = json_integer_value(rid);
	if (!json_is_object(meta))
		return "metadata";
	/* As the broker stored it: compact, keys sorted. */
	if (!(*ret_meta = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS)))
		return "metadata";
	f->metadata = *ret_meta;
	return NULL;
}

static int
check_record(json_t *rec, long long lineno, struct chain *ch, struct kw_archive_report *rep)
{
	struct kw_audit_fields f = { 0 };
	uint8_t prev[KW_AUDIT_HASH_LEN], hash[KW_AUDIT_HASH_LEN], want[KW_AUDIT_HASH_LEN];
	const char *prev_hex = json_string_value(json_object_get(rec, "prev_hash"));
	const char *hash_hex = json_string_value(json_object_get(rec, "hash"));
	char *meta = NULL;
	const char *bad = record_fields(rec, &f, &meta);
	int r = KW_ERR_INVALID;

	if (!bad && (!prev_hex || kw_audit_hash_parse(prev_hex, prev) < 0))
		bad = "prev_hash";
	if (!bad && (!hash_hex || kw_audit_hash_parse(hash_hex, hash) < 0))
		bad = "hash";
	if (bad)
		fail(rep, json_is_integer(json_object_get(rec, "seq")) ? f.seq : -1, lineno,
		    "malformed record: no valid \"%s\"", bad);
	else if (f.seq > rep->last_seq)
		fail(rep, f.seq, lineno, "past last_seq %lld in the header", rep->last_seq);
	else if (f.seq > ch->next_seq)
		fail(rep, f.seq, lineno, "gap: records missing from seq %lld", ch->next_seq);
	else if (f.seq != ch->next_seq)
		fail(rep, f.seq, lineno, "repeated or out of order: expected seq %lld", ch->next_seq);
	else if (memcmp(prev, ch->prev, sizeof(prev)) != 0)
		fail(rep, f.seq, lineno, "prev_hash does not match the %s",
		    f.seq == rep->first_seq ? "header's prev_hash" : "previous record's hash");
	else {
		kw_audit_chain_hash(prev, &f, want);
		if (memcmp(want, hash, sizeof(hash)) != 0)
			fail(rep, f.seq, lineno, "hash mismatch: the record was altered");
		else
			r = 0;
	}
	if (r == 0) {
		memcpy(ch->prev, hash, sizeof(hash));
		ch->next_seq++;
		rep->records++;
		kw_audit_hash_hex(hash, rep->head_hash);
	}
	free(meta);
	return r;
}

/* A hash field of the manifest; NULL when it is not 64 hex digits. */
static const uint8_t *
manifest_hash(json_t *m, const char *key, uint8_t out[KW_AUDIT_HASH_LEN])
{
	const char *hex = json_string_value(json_object_get(m, key));

	return hex && kw_audit_hash_parse(hex, out) == 0 ? out : NULL;
}

static bool
manifest_int(json_t *m, const char *key, long long *out)
{
	json_t *v = json_object_get(m, key);

	*out = json_integer_value(v);
	return json_is_integer(v);
}

/* The manifest as written, into *got and sig; 0, or KW_ERR_INVALID (said why). */
static int
read_manifest(json_t *m, long long lineno, struct kw_audit_manifest *got,
    uint8_t sig[KW_AUDIT_SIG_LEN], struct kw_archive_report *rep)
{
	const char *sig_b64 = json_string_value(json_object_get(m, "signature"));
	const char *signer = json_string_value(json_object_get(m, "public_key"));
	uint8_t pk[KW_AUDIT_PK_LEN];
	long long version;

	if (!manifest_int(m, "keywarden_manifest", &version) || version != 1) {
		fail(rep, -1, lineno, "manifest of an unknown version: this keywarden reads "
		    "keywarden_manifest 1");
		return KW_ERR_INVALID;
	}
	if (!manifest_int(m, "first_seq", &got->first_seq) ||
	    !manifest_int(m, "last_seq", &got->last_seq) || !manifest_int(m, "count", &got->count) ||
	    !manifest_hash(m, "prev_hash", got->prev_hash) ||
	    !manifest_hash(m, "last_hash", got->last_hash) ||
	    !manifest_hash(m, "sha256", got->sha256)) {
		fail(rep, -1, lineno, "malformed manifest: needs first_seq, last_seq, count, "
		    "prev_hash, last_hash and sha256");
		return KW_ERR_INVALID;
	}
	if (signer && kw_audit_b64_parse(signer, strlen(signer), pk, sizeof(pk)) == 0)
		kw_audit_pk_b64(pk, rep->signer);
	if (!sig_b64 || kw_audit_b64_parse(sig_b64, strlen(sig_b64), sig, KW_AUDIT_SIG_LEN) < 0) {
		fail(rep, -1, lineno, "manifest signature missing: the manifest carries no "
		    "signature (base64 of %d bytes)", KW_AUDIT_SIG_LEN);
		return KW_ERR_INVALID;
	}
	return 0;
}

/*
 * The last line: it must describe exactly what was read (records, the
 * hashes at both ends, the digest of every byte before it) and be signed
 * with ch->pk.  The key the manifest names is only quoted, never used.
 */
static int
check_manifest(json_t *m, long long lineno, struct chain *ch, struct kw_archive_report *rep)
{
	struct kw_audit_manifest got = { 0 }, want = {
		.first_seq = rep->first_seq, .last_seq = rep->last_seq, .count = rep->records,
	};
	uint8_t sig[KW_AUDIT_SIG_LEN];
	struct kw_audit_msg msg;
	const char *differs = NULL;
	int r;

	if (ch->next_seq <= rep->last_seq) {
		fail(rep, ch->next_seq, lineno, "missing: the archive ends %s, the header says "
		    "last_seq %lld", rep->records ? "early" : "after its header", rep->last_seq);
		return KW_ERR_INVALID;
	}
	if ((r = read_manifest(m, lineno, &got, sig, rep)) < 0)
		return r;
	memcpy(want.prev_hash, ch->first_prev, sizeof(want.prev_hash));
	memcpy(want.last_hash, ch->prev, sizeof(want.last_hash));
	crypto_hash_sha256_final(&ch->digest, want.sha256);
	if (got.first_seq != want.first_seq || got.last_seq != want.last_seq)
		differs = "first_seq or last_seq (the header's)";
	else if (got.count != want.count)
		differs = "count (the records in the file)";
	else if (memcmp(got.prev_hash, want.prev_hash, sizeof(got.prev_hash)) != 0)
		differs = "prev_hash (the header's)";
	else if (memcmp(got.last_hash, want.last_hash, sizeof(got.last_hash)) != 0)
		differs = "last_hash (the last record's hash)";
	else if (memcmp(got.sha256, want.sha256, sizeof(got.sha256)) != 0)
		differs = "sha256 (of the lines before it)";
	if (differs) {
		fail(rep, -1, lineno, "manifest does not match the archive: its %s differs", differs);
		return KW_ERR_INVALID;
	}
	kw_audit_manifest_message(&want, &msg);
	if (!kw_audit_sig_ok(&msg, sig, ch->pk)) {
		char given[KW_AUDIT_PK_B64];
		kw_audit_pk_b64(ch->pk, given);
		fail(rep, -1, lineno, "manifest signature does not verify with the public key %s: "
		    "the archive was changed after the broker wrote it, or not written by it%s%s",
		    given, rep->signer[0] && strcmp(rep->signer, given) != 0 ?
		    "; the manifest names the key " : "", rep->signer[0] &&
		    strcmp(rep->signer, given) != 0 ? rep->signer : "");
		return KW_ERR_INVALID;
	}
	rep->is_signed = true;
	return 0;
}

/* Every line after the header; 0 when all are sound, none is missing, and the manifest holds. */
static int
check_records(struct reader *rd, struct chain *ch, struct kw_archive_report *rep)
{
	bool manifest = false;
	int got, r;

	while ((got = next_line(rd, rep->reason, sizeof(rep->reason))) > 0) {
		json_t *line = parse_line(rd, rep);
		if (!line)
			return KW_ERR_INVALID;
		if (manifest) {
			fail(rep, -1, rd->lineno, "data after the manifest, which must be the last line");
			r = KW_ERR_INVALID;
		} else if (json_object_get(line, "keywarden_manifest")) {
			manifest = true;
			r = check_manifest(line, rd->lineno, ch, rep);
		} else {
			crypto_hash_sha256_update(&ch->digest, (const unsigned char *)rd->line, rd->len);
			crypto_hash_sha256_update(&ch->digest, (const unsigned char *)"\n", 1);
			r = check_record(line, rd->lineno, ch, rep);
		}
		json_decref(line);
		if (r < 0)
			return r;
	}
	if (got < 0) {
		rep->bad_line = rd->lineno;
		return got == KW_ERR_NOMEM ? KW_ERR_NOMEM : KW_ERR_INVALID;
	}
	if (ch->next_seq <= rep->last_seq) {
		fail(rep, ch->next_seq, rd->lineno, "missing: the archive ends %s, the header says "
		    "last_seq %lld", rep->records ? "early" : "after its header", rep->last_seq);
		return KW_ERR_INVALID;
	}
	if (!manifest) {
		fail(rep, -1, rd->lineno, "no manifest: the archive does not end with the broker's "
		    "signed manifest (it was cut short)");
		return KW_ERR_INVALID;
	}
	return 0;
}

int
kw_archive_verify(const char *path, const uint8_t pk[KW_AUDIT_PK_LEN],
    struct kw_archive_report *rep)
{
	struct reader *rd = calloc(1, sizeof(*rd));
	struct chain ch = { .next_seq = 0, .pk = pk };
	json_t *header = NULL;
	int r = KW_ERR_NOMEM;

	*rep = (struct kw_archive_report){ .first_seq = -1, .last_seq = -1, .bad_seq = -1 };
	if (!rd)
		return KW_ERR_NOMEM;
	if (!(rd->gz = gzopen(path, "rb"))) {
		if (errno == 0)
			errno = ENOMEM;
		r = KW_ERR_IO;
		goto out;
	}
	rd->path = path;
	gzbuffer(rd->gz, 128 * 1024);
	r = next_line(rd, rep->reason, sizeof(rep->reason));
	if (r <= 0) {
		if (r == 0)
			snprintf(rep->reason, sizeof(rep->reason), "empty: no archive header");
		rep->bad_line = 1;
		r = r == KW_ERR_NOMEM ? r : KW_ERR_INVALID;
		goto out;
	}
	if (!(header = parse_line(rd, rep))) {
		r = KW_ERR_INVALID;
		goto out;
	}
	crypto_hash_sha256_init(&ch.digest);
	crypto_hash_sha256_update(&ch.digest, (const unsigned char *)rd->line, rd->len);
	crypto_hash_sha256_update(&ch.digest, (const unsigned char *)"\n", 1);
	if ((r = check_header(header, &ch, rep)) == 0)
		r = check_records(rd, &ch, rep);
 out:
	json_decref(header);
	if (rd->gz)
		gzclose(rd->gz);
	free(rd->line);
	free(rd);
	return r;
}
