/*
 * query.c - reading the audit store: filtered pages of records with names
 * resolved, and verification of the hash chain and the broker's signatures
 * (see audit.h).
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "broker/audit/audit_internal.h"
#include "client/keywarden.h"
#include "common/log.h"
#include "broker/store/sql.h"

/* Room for records in one reply: the frame limit less the envelope and "subjects". */
#define KW_AUDIT_PAGE_BYTES (40 * 1024)

static const char *
col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

void
kw_audit_row_fields(sqlite3_stmt *st, struct kw_audit_fields *f)
{
	*f = (struct kw_audit_fields){
		.seq = sqlite3_column_int64(st, 0),
		.ts = col_text(st, 1),
		.ts_ms = sqlite3_column_int64(st, 2),
		.user = col_text(st, 3),
		.pid = sqlite3_column_int64(st, 4),
		.action = col_text(st, 5),
		.resource = col_text(st, 6),
		.result = col_text(st, 7),
		.metadata = col_text(st, 8),
		.has_request_id = sqlite3_column_type(st, 9) != SQLITE_NULL,
		.request_id = sqlite3_column_int64(st, 9),
	};
}

static json_t *
hex_of(sqlite3_stmt *st, int i)
{
	char hex[KW_AUDIT_HASH_HEX];

	if (sqlite3_column_bytes(st, i) != KW_AUDIT_HASH_LEN)
		return json_null();
	kw_audit_hash_hex(sqlite3_column_blob(st, i), hex);
	return json_string(hex);
}

json_t *
kw_audit_row_json(sqlite3_stmt *st)
{
	struct kw_audit_fields f;
	json_t *meta;

	kw_audit_row_fields(st, &f);
	/* A record whose metadata no longer parses was tampered with; show it as text. */
	if (!(meta = json_loads(f.metadata ? f.metadata : "{}", 0, NULL)))
		meta = json_pack("{s:s?}", "unparsable", f.metadata);
	return json_pack("{s:I, s:s?, s:I, s:s?, s:s?, s:s?, s:s?, s:o, s:I, s:o, s:o, s:o}",
	    "seq", (json_int_t)f.seq, "timestamp", f.ts, "ts_ms", (json_int_t)f.ts_ms,
	    "user", f.user, "action", f.action, "resource", f.resource, "result", f.result,
	    "metadata", meta ? meta : json_object(), "pid", (json_int_t)f.pid,
	    "request_id", f.has_request_id ? json_integer(f.request_id) : json_null(),
	    "prev_hash", hex_of(st, 10), "hash", hex_of(st, 11));
}

/* The name for pseudonym p, remembered in subjects; p itself once erased. */
static const char *
name_of(struct kw_audit *a, const char *p, json_t *subjects)
{
	char name[128];
	json_t *v = json_object_get(subjects, p);

	if (v)
		return json_string_value(v);
	if (kw_audit_subject_name(a, p, name, sizeof(name)) < 0)
		snprintf(name, sizeof(name), "%s", p);
	json_object_set_new(subjects, p, json_string(name));
	return json_string_value(json_object_get(subjects, p));
}

static bool
hex_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

char *
kw_audit_resolve_text(struct kw_audit *a, const char *s, json_t *subjects)
{
	size_t cap = strlen(s) + 1, len = 0;
	char *out = malloc(cap), *grown;

	for (const char *p = s; out && *p;) {
		size_t k = 0;
		if (*p == '~')
			while (k < KW_PSEUDONYM_SIZE - 2 && hex_char(p[1 + k]))
				k++;
		if (k == KW_PSEUDONYM_SIZE - 2 && !hex_char(p[1 + k])) {
			char pseud[KW_PSEUDONYM_SIZE];
			memcpy(pseud, p, KW_PSEUDONYM_SIZE - 1);
			pseud[KW_PSEUDONYM_SIZE - 1] = '\0';
			const char *name = name_of(a, pseud, subjects);
			size_t n = name ? strlen(name) : 0;
			if (!(grown = realloc(out, cap += n))) {
				free(out);
				return NULL;
			}
			out = grown;
			memcpy(out + len, name, n);
			len += n;
			p += KW_PSEUDONYM_SIZE - 1;
		} else {
			out[len++] = *p++;
		}
	}
	if (out)
		out[len] = '\0';
	return out;
}

/* Resolve pseudonyms in the string values of a record object, in place. */
static void
resolve_strings(struct kw_audit *a, json_t *obj, json_t *subjects)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		if (json_is_string(v) && strchr(json_string_value(v), '~')) {
			char *r = kw_audit_resolve_text(a, json_string_value(v), subjects);
			if (r)
				json_string_set(v, r);
			free(r);
		} else if (json_is_object(v) && !json_object_get(v, "sealed")) {
			resolve_strings(a, v, subjects);
		}
	}
}

/*
 * The search's statements: constant text (cached, sql.h), one per filter
 * that leads the search through an index, the other filters tested on the
 * rows it finds (a NULL or 0 parameter filters nothing).
 */
#define QUERY_HEAD "SELECT " KW_AUDIT_COLUMNS " FROM audit_log WHERE seq > ?1 AND "
#define QUERY_TAIL " AND (?3 IS NULL OR action GLOB ?3) AND (?4 IS NULL OR result = ?4)" \
	" AND (?5 = 0 OR ts_ms >= ?5) AND (?6 = 0 OR ts_ms <= ?6) ORDER BY seq LIMIT ?7"

enum query_lead { BY_USER, BY_ABOUT, BY_ACTION, BY_TIME, BY_SEQ };

static const char *const query_sql[] = {
	[BY_USER] = QUERY_HEAD "user = ?2" QUERY_TAIL,
	/* The GLOB repeats the resource index's condition (it holds only user/ rows). */
	[BY_ABOUT] = QUERY_HEAD "(user = ?2 OR (resource = 'user/' || ?2 AND "
	    "resource GLOB 'user/*'))" QUERY_TAIL,
	[BY_ACTION] = QUERY_HEAD "action GLOB ?3" QUERY_TAIL,
	[BY_TIME] = QUERY_HEAD "ts_ms >= ?5" QUERY_TAIL,
	[BY_SEQ] = QUERY_HEAD "1" QUERY_TAIL,
};

static enum query_lead
query_lead(const struct kw_audit_filter *f)
{
	return f->user ? BY_USER : f->about ? BY_ABOUT : f->action ? BY_ACTION :
	    f->since_ms || f->until_ms ? BY_TIME : BY_SEQ;
}

int
kw_audit_query(struct kw_audit *a, const struct kw_audit_filter *f, json_t **ret_result)
{
	char p[KW_PSEUDONYM_SIZE] = "";
	sqlite3_stmt *st = NULL;
	json_t *records, *subjects, *next = json_null(), *rec;
	int limit = f->limit > 0 && f->limit <= 1000 ? f->limit : 200, rc = SQLITE_DONE, n = 0;
	size_t bytes = 0;

	if (!a->db)
		return KW_ERR_IO;
	const char *who = f->user ? f->user : f->about;
	if (who && who[0] == '~') {
		/* A pseudonym as such: records of an erased user stay reachable by it. */
		snprintf(p, sizeof(p), "%s", who);
	} else if (who) {
		int r = kw_audit_find_pseudonym(a, who, p);
		if (r == KW_ERR_IO)
			return r;
		/* Nobody by that name (or erased): nothing can match. */
		if (r == KW_ERR_NOT_FOUND)
			snprintf(p, sizeof(p), "-");
	}
	if (kw_sql_statement(a->db, &st, query_sql[query_lead(f)]) < 0)
		return KW_ERR_IO;
	sqlite3_bind_int64(st, 1, f->after);
	if (who)
		sqlite3_bind_text(st, 2, p, -1, SQLITE_STATIC);
	if (f->action)
		sqlite3_bind_text(st, 3, f->action, -1, SQLITE_STATIC);
	if (f->result)
		sqlite3_bind_text(st, 4, f->result, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, f->since_ms);
	sqlite3_bind_int64(st, 6, f->until_ms);
	sqlite3_bind_int(st, 7, limit + 1);
	records = json_array();
	subjects = json_object();
	while (records && subjects && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (++n > limit) {
			next = json_integer(sqlite3_column_int64(st, 0) - 1);
			break;
		}
		if (!(rec = kw_audit_row_json(st)))
			break;
		resolve_strings(a, rec, subjects);
		/* A page must fit in one reply frame; the cursor picks up the rest. */
		size_t size = json_dumpb(rec, NULL, 0, JSON_COMPACT) + 64;
		if (bytes + size > KW_AUDIT_PAGE_BYTES && json_array_size(records) > 0) {
			json_decref(rec);
			next = json_integer(0);
			break;
		}
		bytes += size;
		json_array_append_new(records, rec);
	}
	if (!json_is_integer(next) && rc != SQLITE_DONE) {
		kw_log_error("audit query: %s", sqlite3_errmsg(a->db));
		kw_sql_done(st);
		json_decref(records);
		json_decref(subjects);
		json_decref(next);
		return KW_ERR_IO;
	}
	kw_sql_done(st);
	/* "next" is the cursor to pass as "after": the last seq of this page. */
	if (json_is_integer(next)) {
		json_t *last = json_array_get(records, json_array_size(records) - 1);
		json_integer_set(next, json_integer_value(json_object_get(last, "seq")));
	}
	*ret_result = json_pack("{s:o, s:o, s:o}", "records", records, "next", next,
	    "subjects", subjects);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}

static json_t * KW_PRINTF(3, 4)
bad(long long seq, const char *what, const char *fmt, ...)
{
	char why[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return json_pack("{s:I, s:s, s:s}", "seq", (json_int_t)seq, "what", what, "reason", why);
}

/* What one walk over the chain found. */
struct walk {
	long long anchor;		/* the newest anchor's first_seq, or 0 */
	uint8_t start[KW_AUDIT_HASH_LEN];	/* the hash the chain starts from */
	long long bound;		/* the last seq to look at (the committed head in a batch) */
	long long first, last, n;
	uint8_t head[KW_AUDIT_HASH_LEN];	/* the last sound record's hash */
	json_t *broken;			/* the first fault of the chain itself */
	/* The newest head signature among the records found sound, with their hash. */
	long long sig_seq;
	uint8_t sig_hash[KW_AUDIT_HASH_LEN], sig[KW_AUDIT_SIG_LEN];
	long long unsigned_through;	/* from the audit.signing record, or 0 */
};

/* The newest anchor: where pruning (or a replaced file) left the chain's start;
   *ret_bad when its signature fails. */
static int
load_anchor(struct kw_audit *a, struct walk *w, json_t **ret_bad)
{
	struct kw_audit_msg msg;
	sqlite3_stmt *st = NULL;
	int rc;

	if (kw_sql_prepare(a->db, &st, "SELECT first_seq, prev_hash, sig FROM audit_anchor "
	    "ORDER BY first_seq DESC LIMIT 1", "") < 0)
		return KW_ERR_IO;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 1) == KW_AUDIT_HASH_LEN) {
		w->anchor = sqlite3_column_int64(st, 0);
		memcpy(w->start, sqlite3_column_blob(st, 1), sizeof(w->start));
		kw_audit_anchor_message(w->anchor, w->start, &msg);
		if (a->sign_sk && sqlite3_column_bytes(st, 2) != KW_AUDIT_SIG_LEN)
			*ret_bad = bad(w->anchor, "anchor", "anchor %lld (where the chain starts after "
			    "pruning or a replaced store) has no signature: the records before it may "
			    "have been cut behind the broker's back", w->anchor);
		else if (a->sign_sk && !kw_audit_sig_ok(&msg, sqlite3_column_blob(st, 2), a->sign_pk))
			*ret_bad = bad(w->anchor, "anchor", "anchor %lld (where the chain starts after "
			    "pruning or a replaced store): its signature does not verify: this broker "
			    "did not cut the trail there", w->anchor);
	}
	kw_sql_done(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : KW_ERR_IO;
}

/* A record of the store about itself saying that what came before cannot be trusted whole. */
static json_t *
note_fault(const struct kw_audit_fields *f)
{
	json_t *meta;
	long long head;

	if (strcmp(f->action, "audit.unsigned_head") == 0) {
		meta = json_loads(f->metadata ? f->metadata : "{}", 0, NULL);
		head = json_integer_value(json_object_get(meta, "head_seq"));
		json_decref(meta);
		return bad(f->seq, "head_signature", "head signature missing or invalid at start: "
		    "the broker found its head (seq %lld) without a valid signature, so records up "
		    "to it may have been changed while it was down", head);
	}
	if (strcmp(f->action, "audit.gap") == 0 || strcmp(f->action, "audit.store_replaced") == 0)
		return bad(f->seq, "record", "the trail is incomplete before this record (%s: records "
		    "were removed from the store)", f->action);
	return NULL;
}

/* The last seq an "audit.signing" record says was written unsigned. */
static long long
unsigned_through(const struct kw_audit_fields *f)
{
	json_t *meta = json_loads(f->metadata ? f->metadata : "{}", 0, NULL);
	long long v = json_integer_value(json_object_get(meta, "unsigned_through"));

	json_decref(meta);
	return v;
}

/* The next row of the head signatures (seq in *at, LLONG_MAX past the end). */
static void
next_sig(sqlite3_stmt *sg, long long *at)
{
	*at = sqlite3_step(sg) == SQLITE_ROW ? sqlite3_column_int64(sg, 0) : LLONG_MAX;
}

static int
open_walk(struct kw_audit *a, const struct walk *w, long long upto, sqlite3_stmt **st,
    sqlite3_stmt **sg)
{
	if (kw_sql_prepare(a->db, st, "SELECT " KW_AUDIT_COLUMNS " FROM audit_log "
	    "WHERE seq >= ? AND seq <= ? ORDER BY seq", "ii", w->anchor, upto) < 0)
		return KW_ERR_IO;
	if (kw_sql_prepare(a->db, sg, "SELECT seq, sig FROM audit_head_sig "
	    "WHERE seq >= ? AND seq <= ? ORDER BY seq", "ii", w->anchor, upto) < 0) {
		kw_sql_done(*st);
		return KW_ERR_IO;
	}
	return 0;
}

/* The chain from the anchor: links, hashes, and which head signature to check. */
static int
walk(struct kw_audit *a, struct walk *w)
{
	uint8_t prev[KW_AUDIT_HASH_LEN], h[KW_AUDIT_HASH_LEN];
	long long expect = w->anchor ? w->anchor : 1, sig_at;
	sqlite3_stmt *st = NULL, *sg = NULL;
	int rc;

	memcpy(prev, w->start, sizeof(prev));
	if (open_walk(a, w, w->bound, &st, &sg) < 0)
		return KW_ERR_IO;
	next_sig(sg, &sig_at);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct kw_audit_fields f;

		kw_audit_row_fields(st, &f);
		if (!w->first)
			w->first = f.seq;
		if (f.seq != expect) {
			w->broken = f.seq > expect ?
			    bad(expect, "record", "record missing: the chain jumps from %lld",
			    expect - 1) :
			    bad(f.seq, "record", "record out of order (expected seq %lld)", expect);
			break;
		}
		if (sqlite3_column_bytes(st, 10) != KW_AUDIT_HASH_LEN ||
		    memcmp(sqlite3_column_blob(st, 10), prev, sizeof(prev)) != 0) {
			w->broken = bad(f.seq, "record", "does not follow the record before it "
			    "(prev_hash differs from the hash of record %lld): that record or this "
			    "link was changed", f.seq - 1);
			break;
		}
		kw_audit_chain_hash(prev, &f, h);
		if (sqlite3_column_bytes(st, 11) != KW_AUDIT_HASH_LEN ||
		    memcmp(sqlite3_column_blob(st, 11), h, sizeof(h)) != 0) {
			w->broken = bad(f.seq, "record", "contents changed: the stored hash does not "
			    "match record %lld", f.seq);
			break;
		}
		memcpy(prev, h, sizeof(prev));
		w->last = f.seq;
		expect = f.seq + 1;
		w->n++;
		/* Sound itself, but it says records before it were lost or unvouched for. */
		if ((w->broken = note_fault(&f)))
			break;
		if (strcmp(f.action, "audit.signing") == 0)
			w->unsigned_through = unsigned_through(&f);
		while (sig_at < f.seq)
			next_sig(sg, &sig_at);
		if (sig_at == f.seq && sqlite3_column_bytes(sg, 1) == KW_AUDIT_SIG_LEN) {
			w->sig_seq = f.seq;
			memcpy(w->sig_hash, h, sizeof(h));
			memcpy(w->sig, sqlite3_column_blob(sg, 1), sizeof(w->sig));
		}
	}
	memcpy(w->head, prev, sizeof(prev));
	kw_sql_done(sg);
	kw_sql_done(st);
	if (!w->broken && rc != SQLITE_DONE) {
		kw_log_error("audit verify: %s", sqlite3_errmsg(a->db));
		return KW_ERR_IO;
	}
	return 0;
}

/*
 * The first head signature up to seq upto that does not verify (its seq in
 * *ret_bad), and the last one before it that did (*ret_good, 0: none).  The
 * chain up to upto is sound (walk said so): only the signatures are new here.
 */
static int
locate(struct kw_audit *a, const struct walk *w, long long upto, long long *ret_bad,
    long long *ret_good)
{
	uint8_t prev[KW_AUDIT_HASH_LEN], h[KW_AUDIT_HASH_LEN];
	sqlite3_stmt *st = NULL, *sg = NULL;
	struct kw_audit_msg msg;
	long long sig_at;
	int rc;

	*ret_bad = upto;
	*ret_good = 0;
	memcpy(prev, w->start, sizeof(prev));
	if (open_walk(a, w, upto, &st, &sg) < 0)
		return KW_ERR_IO;
	next_sig(sg, &sig_at);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct kw_audit_fields f;

		kw_audit_row_fields(st, &f);
		kw_audit_chain_hash(prev, &f, h);
		memcpy(prev, h, sizeof(prev));
		while (sig_at < f.seq)
			next_sig(sg, &sig_at);
		if (sig_at != f.seq)
			continue;
		kw_audit_head_message(f.seq, h, &msg);
		if (sqlite3_column_bytes(sg, 1) != KW_AUDIT_SIG_LEN ||
		    !kw_audit_sig_ok(&msg, sqlite3_column_blob(sg, 1), a->sign_pk)) {
			*ret_bad = f.seq;
			break;
		}
		*ret_good = f.seq;
	}
	kw_sql_done(sg);
	kw_sql_done(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : KW_ERR_IO;
}

/* The newest head signature in the store, past the records when some were cut off the end. */
static long long
newest_signature(struct kw_audit *a)
{
	sqlite3_stmt *st = NULL;
	long long seq = 0;

	if (kw_sql_prepare(a->db, &st, "SELECT max(seq) FROM audit_head_sig", "") == 0 &&
	    sqlite3_step(st) == SQLITE_ROW)
		seq = sqlite3_column_int64(st, 0);
	kw_sql_done(st);
	return seq;
}

/*
 * The head's signature covers the whole chain before it, so one check
 * suffices when it holds; when it does not, each head signature is checked
 * to name the first that fails.  *ret_bad: the fault, if any.
 */
static int
check_signatures(struct kw_audit *a, const struct walk *w, json_t **ret_bad)
{
	struct kw_audit_msg msg;
	long long bad_seq, good, end, last_signed;

	if (w->sig_seq > 0) {
		kw_audit_head_message(w->sig_seq, w->sig_hash, &msg);
		if (!kw_audit_sig_ok(&msg, w->sig, a->sign_pk)) {
			if (locate(a, w, w->sig_seq, &bad_seq, &good) < 0)
				return KW_ERR_IO;
			long long from = good ? good + 1 : w->first;
			*ret_bad = from == bad_seq ?
			    bad(bad_seq, "head_signature", "head signature at seq %lld does not verify: "
			    "record %lld was changed after it was signed (and the chain recomputed)",
			    bad_seq, bad_seq) :
			    bad(bad_seq, "head_signature", "head signature at seq %lld does not verify: "
			    "a record from seq %lld to %lld was changed after it was signed (and the "
			    "chain recomputed), or another key signed it", bad_seq, from, bad_seq);
			return 0;
		}
	}
	/* A fault of the chain itself says more than a missing signature after it. */
	if (w->broken)
		return 0;
	if (w->n > 0 && w->sig_seq != w->last) {
		*ret_bad = w->sig_seq > 0 ?
		    bad(w->last, "head_signature", "head signature missing: the newest record "
		    "(seq %lld) is not signed, the last signed head is seq %lld: records after it "
		    "were added or changed behind the broker's back", w->last, w->sig_seq) :
		    bad(w->last, "head_signature", "head signature missing: no record from seq "
		    "%lld to %lld is signed: they were written or changed behind the broker's back",
		    w->first, w->last);
		return 0;
	}
	/* Signatures are stored at commit: none is past the committed head but a stale one. */
	end = w->n > 0 ? w->last : w->anchor > 0 ? w->anchor - 1 : 0;
	if ((last_signed = newest_signature(a)) > end)
		*ret_bad = bad(end + 1, "record", "records missing at the end: a head signature "
		    "exists for seq %lld, past the newest record", last_signed);
	return 0;
}

int
kw_audit_verify(struct kw_audit *a, json_t **ret_report)
{
	struct walk w = { .bound = a->in_batch ? a->last_seq : LLONG_MAX };
	char hex[KW_AUDIT_HASH_HEX], pk[KW_AUDIT_PK_B64];
	json_t *anchor_bad = NULL, *sig_bad = NULL, *broken;
	int r;

	if (!a->db)
		return KW_ERR_IO;
	/* Pending records of the open batch are not signed yet: the committed head is. */
	if ((r = load_anchor(a, &w, &anchor_bad)) < 0 || (r = walk(a, &w)) < 0 ||
	    (a->sign_sk && (r = check_signatures(a, &w, &sig_bad)) < 0)) {
		json_decref(anchor_bad);
		json_decref(w.broken);
		return r;
	}
	/* The earliest fault first: the anchor, then a signature that no longer holds. */
	broken = anchor_bad ? anchor_bad : sig_bad ? sig_bad : w.broken;
	if (broken != w.broken)
		json_decref(w.broken);
	if (broken != sig_bad)
		json_decref(sig_bad);
	/* Records cut from the end leave an intact but shorter chain: compare with our head. */
	if (!broken && w.last < a->last_seq && !(w.n == 0 && w.anchor == a->last_seq + 1))
		broken = bad(w.last + 1, "record", "records missing at the end: the broker committed "
		    "up to %lld", a->last_seq);
	kw_audit_hash_hex(w.head, hex);
	kw_audit_public_key(a, pk);
	*ret_report = json_pack("{s:b, s:I, s:I, s:I, s:s, s:I, s:b, s:s?, s:o, s:o}",
	    "ok", broken == NULL, "records", (json_int_t)w.n, "first_seq", (json_int_t)w.first,
	    "last_seq", (json_int_t)w.last, "head_hash", hex, "anchor_seq", (json_int_t)w.anchor,
	    "signed", a->sign_sk != NULL, "public_key", pk[0] ? pk : NULL,
	    "unsigned_through", w.unsigned_through > 0 ? json_integer(w.unsigned_through) :
	    json_null(), "bad", broken ? broken : json_null());
	return *ret_report ? 0 : KW_ERR_NOMEM;
}
