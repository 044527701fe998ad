/*
 * audit_query.c - reading the audit store: filtered pages of records with
 * names resolved, and verification of the hash chain (see audit.h).
 */
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

int
kw_audit_query(struct kw_audit *a, const struct kw_audit_filter *f, json_t **ret_result)
{
	char p[KW_PSEUDONYM_SIZE] = "", sql[1024];
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
	snprintf(sql, sizeof(sql), "SELECT " KW_AUDIT_COLUMNS " FROM audit_log WHERE seq > ?1"
	    "%s%s%s%s%s ORDER BY seq LIMIT ?7",
	    f->user ? " AND user = ?2" :
	    f->about ? " AND (user = ?2 OR resource = 'user/' || ?2)" : "", f->action ? " AND action GLOB ?3" : "",
	    f->result ? " AND result = ?4" : "", f->since_ms ? " AND ts_ms >= ?5" : "",
	    f->until_ms ? " AND ts_ms <= ?6" : "");
	if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK) {
		kw_log_error("audit query: %s", sqlite3_errmsg(a->db));
		return KW_ERR_IO;
	}
	sqlite3_bind_int64(st, 1, f->after);
	if (f->user || f->about)
		sqlite3_bind_text(st, 2, p, -1, SQLITE_TRANSIENT);
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
		sqlite3_finalize(st);
		json_decref(records);
		json_decref(subjects);
		json_decref(next);
		return KW_ERR_IO;
	}
	sqlite3_finalize(st);
	/* "next" is the cursor to pass as "after": the last seq of this page. */
	if (json_is_integer(next)) {
		json_t *last = json_array_get(records, json_array_size(records) - 1);
		json_integer_set(next, json_integer_value(json_object_get(last, "seq")));
	}
	*ret_result = json_pack("{s:o, s:o, s:o}", "records", records, "next", next,
	    "subjects", subjects);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}

static json_t * KW_PRINTF(2, 3)
bad(long long seq, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return json_pack("{s:I, s:s}", "seq", (json_int_t)seq, "reason", why);
}

int
kw_audit_verify(struct kw_audit *a, json_t **ret_report)
{
	uint8_t prev[KW_AUDIT_HASH_LEN] = { 0 }, h[KW_AUDIT_HASH_LEN];
	char hex[KW_AUDIT_HASH_HEX] = "";
	long long expect = 1, first = 0, last = 0, anchor = 0, n = 0;
	sqlite3_stmt *st = NULL;
	json_t *broken = NULL;
	int rc;

	if (!a->db)
		return KW_ERR_IO;
	/* Where pruning (or a replaced file) left the chain's start. */
	if (kw_sql_prepare(a->db, &st, "SELECT first_seq, prev_hash FROM audit_anchor "
	    "ORDER BY first_seq DESC LIMIT 1", "") < 0)
		return KW_ERR_IO;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 1) == KW_AUDIT_HASH_LEN) {
		anchor = expect = sqlite3_column_int64(st, 0);
		memcpy(prev, sqlite3_column_blob(st, 1), sizeof(prev));
	}
	sqlite3_finalize(st);
	if (kw_sql_prepare(a->db, &st, "SELECT " KW_AUDIT_COLUMNS " FROM audit_log "
	    "WHERE seq >= ? ORDER BY seq", "i", anchor) < 0)
		return KW_ERR_IO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct kw_audit_fields f;

		kw_audit_row_fields(st, &f);
		if (!first)
			first = f.seq;
		if (f.seq != expect) {
			broken = f.seq > expect ?
			    bad(expect, "record missing: the chain jumps from %lld", expect - 1) :
			    bad(f.seq, "record out of order (expected seq %lld)", expect);
			break;
		}
		if (sqlite3_column_bytes(st, 10) != KW_AUDIT_HASH_LEN ||
		    memcmp(sqlite3_column_blob(st, 10), prev, sizeof(prev)) != 0) {
			broken = bad(f.seq, "does not follow the record before it (prev_hash differs "
			    "from the hash of record %lld): that record or this link was changed",
			    f.seq - 1);
			break;
		}
		kw_audit_chain_hash(prev, &f, h);
		if (sqlite3_column_bytes(st, 11) != KW_AUDIT_HASH_LEN ||
		    memcmp(sqlite3_column_blob(st, 11), h, sizeof(h)) != 0) {
			broken = bad(f.seq, "contents changed: the stored hash does not match "
			    "record %lld", f.seq);
			break;
		}
		memcpy(prev, h, sizeof(prev));
		last = f.seq;
		expect = f.seq + 1;
		n++;
		/* Sound itself, but it says records before it were lost. */
		if (strcmp(f.action, "audit.gap") == 0 || strcmp(f.action, "audit.store_replaced") == 0) {
			broken = bad(f.seq, "the trail is incomplete before this record (%s: records "
			    "were removed from the store)", f.action);
			break;
		}
	}
	if (!broken && rc != SQLITE_DONE) {
		kw_log_error("audit verify: %s", sqlite3_errmsg(a->db));
		sqlite3_finalize(st);
		return KW_ERR_IO;
	}
	sqlite3_finalize(st);
	/* Records cut from the end leave an intact but shorter chain: compare with our head. */
	if (!broken && last < a->last_seq && !(n == 0 && anchor == a->last_seq + 1))
		broken = bad(last + 1, "records missing at the end: the broker committed up to "
		    "%lld", a->last_seq);
	kw_audit_hash_hex(prev, hex);
	*ret_report = json_pack("{s:b, s:I, s:I, s:I, s:s, s:I, s:o}", "ok", broken == NULL,
	    "records", (json_int_t)n, "first_seq", (json_int_t)first, "last_seq", (json_int_t)last,
	    "head_hash", hex, "anchor_seq", (json_int_t)anchor, "bad", broken ? broken : json_null());
	return *ret_report ? 0 : KW_ERR_NOMEM;
}
