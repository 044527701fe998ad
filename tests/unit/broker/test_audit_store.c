/*
 * test_audit_store.c - unit tests for the audit trail's hash chain
 * (common/audit_chain.c) and store (broker/audit*.c) on a real SQLite file.
 *
 * The chain format is pinned by vectors computed outside this code (Python
 * hashlib over the encoding in audit_chain.h), so a change to the encoding
 * cannot go unnoticed by making both sides agree with each other; so are
 * the signed messages (Python's cryptography Ed25519 over a fixed seed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <sqlite3.h>

#include "broker/audit/audit.h"
#include "common/config.h"
#include "policy/detect/detect.h"
#include "common/audit_chain.h"
#include "client/keywarden.h"
#include "tests/unit/support/fixture.h"

static const struct kw_audit_fields sample = {
	.seq = 1, .ts = "2026-11-25T01:02:03.456Z", .ts_ms = 1795568523456LL,
	.user = "~0123456789abcdef0123", .pid = 4242, .action = "key.get",
	.resource = "key/anthropic", .result = "success", .metadata = "{\"version\":1}",
	.has_request_id = true, .request_id = 7,
};

static void
hex_of(const struct kw_audit_fields *f, char out[KW_AUDIT_HASH_HEX])
{
	uint8_t zero[KW_AUDIT_HASH_LEN] = { 0 }, h[KW_AUDIT_HASH_LEN];

	kw_audit_chain_hash(zero, f, h);
	kw_audit_hash_hex(h, out);
}

static void
test_vectors(void **state)
{
	struct kw_audit_fields f = {
		.seq = 1, .ts = "2026-11-25T01:02:03.456Z", .ts_ms = 1795568523456LL, .user = "",
		.pid = 4242, .action = "broker.start", .resource = NULL, .result = "success",
		.metadata = "{}", .has_request_id = false,
	};
	char hex[KW_AUDIT_HASH_HEX];

	(void)state;
	hex_of(&sample, hex);
	assert_string_equal(hex, "c240d7e0f2e83db06fafce2240d77881ea9a43089d5c0eb7c1ed435141f15257");
	hex_of(&f, hex);
	assert_string_equal(hex, "90b77b6e9ee5ece2e0c0aced0d35ee24c6fe8702134b42d9dcd5a69701ef8d50");
}

/* Every field is covered, and absent differs from empty. */
static void
test_every_field_counts(void **state)
{
	char base[KW_AUDIT_HASH_HEX], hex[KW_AUDIT_HASH_HEX];
	struct kw_audit_fields f;

	(void)state;
	hex_of(&sample, base);
#define CHANGED(stmt) do { f = sample; stmt; hex_of(&f, hex); \
	assert_string_not_equal(hex, base); } while (0)
	CHANGED(f.seq = 2);
	CHANGED(f.ts = "2026-11-25T01:02:03.457Z");
	CHANGED(f.ts_ms++);
	CHANGED(f.user = "~0123456789abcdef0124");
	CHANGED(f.pid++);
	CHANGED(f.action = "key.set");
	CHANGED(f.resource = NULL);
	CHANGED(f.resource = "");
	CHANGED(f.result = "denied");
	CHANGED(f.metadata = "{\"version\":2}");
	CHANGED(f.has_request_id = false);
	CHANGED(f.request_id = 8);
	/* Moving bytes between neighbouring fields changes the hash too (lengths). */
	CHANGED(f.action = "key.getkey/anthropic"; f.resource = "");
#undef CHANGED
	uint8_t prev[KW_AUDIT_HASH_LEN] = { 1 }, h1[KW_AUDIT_HASH_LEN], h2[KW_AUDIT_HASH_LEN];
	kw_audit_chain_hash(prev, &sample, h1);
	prev[31] = 1;
	kw_audit_chain_hash(prev, &sample, h2);
	assert_memory_not_equal(h1, h2, sizeof(h1));
}

static void
test_hex_parse(void **state)
{
	uint8_t h[KW_AUDIT_HASH_LEN], back[KW_AUDIT_HASH_LEN];
	char hex[KW_AUDIT_HASH_HEX];

	(void)state;
	for (size_t i = 0; i < sizeof(h); i++)
		h[i] = (uint8_t)(i * 37);
	kw_audit_hash_hex(h, hex);
	assert_int_equal(kw_audit_hash_parse(hex, back), 0);
	assert_memory_equal(h, back, sizeof(h));
	assert_int_equal(kw_audit_hash_parse("00", back), -1);
	hex[5] = 'x';
	assert_int_equal(kw_audit_hash_parse(hex, back), -1);
}

/* ---- signed messages ---------------------------------------------------- */

static void
unhex(const char *hex, uint8_t *out, size_t len)
{
	size_t n = 0;

	assert_int_equal(sodium_hex2bin(out, len, hex, strlen(hex), NULL, &n, NULL), 0);
	assert_int_equal(n, len);
}

/* The seed of the vectors: bytes 0..31. */
static void
vector_key(uint8_t pk[KW_AUDIT_PK_LEN], uint8_t sk[crypto_sign_SECRETKEYBYTES])
{
	uint8_t seed[crypto_sign_SEEDBYTES];

	for (size_t i = 0; i < sizeof(seed); i++)
		seed[i] = (uint8_t)i;
	crypto_sign_seed_keypair(pk, sk, seed);
}

static void
assert_signs(const struct kw_audit_msg *m, const uint8_t *sk, const char *want_hex)
{
	uint8_t sig[KW_AUDIT_SIG_LEN], want[KW_AUDIT_SIG_LEN];

	unhex(want_hex, want, sizeof(want));
	crypto_sign_detached(sig, NULL, m->b, m->len, sk);
	assert_memory_equal(sig, want, sizeof(sig));
}

static void
test_signature_vectors(void **state)
{
	uint8_t pk[KW_AUDIT_PK_LEN], sk[crypto_sign_SECRETKEYBYTES], want_pk[KW_AUDIT_PK_LEN];
	struct kw_audit_manifest man = { .first_seq = 1, .last_seq = 1234, .count = 1234 };
	struct kw_audit_msg head, anchor, mmsg;
	uint8_t h[KW_AUDIT_HASH_LEN], sig[KW_AUDIT_SIG_LEN];

	(void)state;
	vector_key(pk, sk);
	unhex("03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8", want_pk,
	    sizeof(want_pk));
	assert_memory_equal(pk, want_pk, sizeof(pk));
	unhex("9f2e6d33a3717ee826353a404ba4618d1aeeb6879ad7936bce8ed5f46814924d", h, sizeof(h));
	unhex("84fd9bac333ad79154348296204fa7f8c537a96e08983e5f73b3f5aca8e8edf7", man.prev_hash,
	    sizeof(man.prev_hash));
	memcpy(man.last_hash, h, sizeof(h));
	unhex("0bf474896363505e5ea5e5d6ace8ebfb13a760a409b1fb467d428fc716f9f284", man.sha256,
	    sizeof(man.sha256));

	kw_audit_head_message(1234, h, &head);
	kw_audit_anchor_message(1235, h, &anchor);
	kw_audit_manifest_message(&man, &mmsg);
	assert_signs(&head, sk, "3bc8a3f7b2d102ecdfa1ba18665908f0433e81f00b31359ecff3f1ecebadd9ac"
	    "79e38615532b54463b896e9a5f8630fc3d9b529e54cf8571a1f3fee014de0705");
	assert_signs(&anchor, sk, "b9ef91cdf8a93c9724f8bf2d7d163932da6ced9607e9be8699887291603d16cf"
	    "fba3589cd5f9ddcad80fc2c2c19bd1087f391efa13f75ca25a4fea777532d60c");
	assert_signs(&mmsg, sk, "0c52e25a5b215c021ed89cc9884a7311a1ac0c2e3e7497050cb115f0256ee1a9"
	    "e929ea730dc2d0d9f02df347618f919fcc0c4f27e253ed95d836c0f30946eb06");

	/* A head signature is no anchor's, nor another head's; a flipped bit fails. */
	crypto_sign_detached(sig, NULL, head.b, head.len, sk);
	assert_true(kw_audit_sig_ok(&head, sig, pk));
	assert_false(kw_audit_sig_ok(&anchor, sig, pk));
	kw_audit_head_message(1235, h, &anchor);
	assert_false(kw_audit_sig_ok(&anchor, sig, pk));
	sig[10] ^= 1;
	assert_false(kw_audit_sig_ok(&head, sig, pk));
}

/* Keys as audit.pub holds them: base64, a newline; nothing else is taken. */
static void
test_key_text(void **state)
{
	uint8_t pk[KW_AUDIT_PK_LEN], sk[crypto_sign_SECRETKEYBYTES], back[KW_AUDIT_PK_LEN];
	char b64[KW_AUDIT_PK_B64], line[KW_AUDIT_PK_B64 + 4];

	(void)state;
	vector_key(pk, sk);
	kw_audit_pk_b64(pk, b64);
	assert_string_equal(b64, "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=");
	snprintf(line, sizeof(line), " %s\n", b64);
	assert_int_equal(kw_audit_b64_parse(line, strlen(line), back, sizeof(back)), 0);
	assert_memory_equal(pk, back, sizeof(pk));
	assert_int_equal(kw_audit_b64_parse(b64, strlen(b64) - 4, back, sizeof(back)), -1);
	assert_int_equal(kw_audit_b64_parse("", 0, back, sizeof(back)), -1);
	snprintf(line, sizeof(line), "%sxx", b64);
	assert_int_equal(kw_audit_b64_parse(line, strlen(line), back, sizeof(back)), -1);
	assert_int_equal(kw_audit_b64_parse("/etc/passwd", 11, back, sizeof(back)), -1);
}

/* ---- the store ---------------------------------------------------------- */

struct fixture {
	struct kw_test_fx *t;
	struct kw_audit *a;
};

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct kw_audit_options opt = { .include_user = true, .include_context = true };
	char err[256];

	assert_non_null(fx);
	assert_int_equal(kw_test_fx_new("audit", &fx->t), 0);
	assert_int_equal(kw_audit_open(fx->t->dir, &opt, &fx->a, err, sizeof(err)), 0);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	kw_audit_close(fx->a);
	assert_int_equal(kw_test_fx_free(fx->t), 0);
	free(fx);
	return 0;
}

static void
write_one(struct kw_audit *a, const char *user, const char *action, const char *resource,
    const char *meta_text)
{
	json_t *meta = meta_text ? json_loads(meta_text, 0, NULL) : NULL;
	struct kw_audit_record rec = {
		.user = user, .uid = 1000, .pid = 99, .action = action, .resource = resource,
		.result = "success", .metadata = meta, .request_id = 1,
	};

	assert_int_equal(kw_audit_write(a, &rec), 0);
	json_decref(meta);
}

static json_t *
verify(struct kw_audit *a)
{
	json_t *rep = NULL;

	assert_int_equal(kw_audit_verify(a, &rep), 0);
	return rep;
}

static void
sql(struct fixture *fx, const char *stmt)
{
	_cleanup_free_ char *path = kw_test_path(fx->t, "audit.db");
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 2000);
	assert_int_equal(sqlite3_exec(db, stmt, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void
test_chain_verifies_and_tampering_is_located(void **state)
{
	struct fixture *fx = *state;
	json_t *rep;

	for (int i = 0; i < 5; i++)
		write_one(fx->a, "alice", "key.get", "key/anthropic", "{\"version\":1}");
	rep = verify(fx->a);
	assert_true(json_is_true(json_object_get(rep, "ok")));
	assert_int_equal(json_integer_value(json_object_get(rep, "records")), 5);
	json_decref(rep);

	sql(fx, "UPDATE audit_log SET result = 'denied' WHERE seq = 3");
	rep = verify(fx->a);
	assert_false(json_is_true(json_object_get(rep, "ok")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(rep, "bad"), "seq")), 3);
	json_decref(rep);

	sql(fx, "UPDATE audit_log SET result = 'success' WHERE seq = 3");
	sql(fx, "DELETE FROM audit_log WHERE seq = 4");
	rep = verify(fx->a);
	assert_false(json_is_true(json_object_get(rep, "ok")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(rep, "bad"), "seq")), 4);
	json_decref(rep);
}

/* Every column of every row, as one string (for "is it anywhere"). */
static char *
all_rows(struct fixture *fx)
{
	_cleanup_free_ char *path = kw_test_path(fx->t, "audit.db");
	sqlite3_stmt *st;
	sqlite3 *db;
	size_t len = 0;
	char *out = calloc(1, 1), *n;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT COALESCE(resource, '') || ' ' || "
	    "metadata FROM audit_log ORDER BY seq", -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0);
		assert_non_null(n = realloc(out, len + strlen(t) + 2));
		out = n;
		len += (size_t)sprintf(out + len, "%s\n", t);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return out;
}

/* The secret rules scrub what a handler did not mask, before the hash; the chain holds. */
static void
test_secrets_are_scrubbed(void **state)
{
	struct fixture *fx = *state;
	struct kw_config *cfg = kw_config_new_default();
	struct kw_detector *d = NULL;
	char key[96], meta[512], res[160], err[256], *rows;
	json_t *rep;

	assert_non_null(cfg);
	/* With the filters, as the broker's: they are not applied to the trail. */
	assert_int_equal(kw_detector_compile(cfg, KW_DETECT_SECRETS | KW_DETECT_FILTERS, &d, err,
	    sizeof(err)), 0);
	kw_config_free(cfg);
	kw_audit_set_secrets(fx->a, d);
	/* Made here: no key-shaped literal in the tree. */
	snprintf(key, sizeof(key), "sk-ant-%s-%s", "api03", "Zq8vR2mK4tW9xY1bC3dE5fG7hJ0kL6nP");
	snprintf(meta, sizeof(meta), "{\"tool\": \"mcp__%s\", \"deep\": [{\"x\": \"a %s b\"}], "
	    "\"%s\": 1, \"email\": \"dev@example.org\", \"version\": 2}", key, key, key);
	snprintf(res, sizeof(res), "file/%s", key);
	write_one(fx->a, "alice", "check", res, meta);
	write_one(fx->a, "alice", "key.get", "key/anthropic", "{\"version\":1}");
	rows = all_rows(fx);
	assert_null(strstr(rows, key + 10));
	assert_non_null(strstr(rows, "file/[REDACTED:anthropic-api-key]"));
	assert_non_null(strstr(rows, "\"a [REDACTED:anthropic-api-key] b\""));
	assert_non_null(strstr(rows, "\"[REDACTED:anthropic-api-key]\":1"));
	/* Personal data is the filters' business, not the trail's; the rest as written. */
	assert_non_null(strstr(rows, "dev@example.org"));
	assert_non_null(strstr(rows, "key/anthropic {\"version\":1}"));
	free(rows);
	rep = verify(fx->a);
	assert_true(json_is_true(json_object_get(rep, "ok")));
	json_decref(rep);
	kw_audit_set_secrets(fx->a, NULL);
	kw_detector_free(d);
}

/* Names live in one table only; records hold pseudonyms; erasure unlinks them. */
static void
test_pseudonyms_and_erasure(void **state)
{
	struct fixture *fx = *state;
	struct kw_audit_filter f = { .user = "mallory" };
	char p[KW_PSEUDONYM_SIZE], name[64];
	json_t *page = NULL, *rec, *rep;

	write_one(fx->a, "root", "user.lock", "user/mallory",
	    "{\"user\":\"mallory\",\"reason\":\"mallory was seen\"}");
	write_one(fx->a, "mallory", "key.get", "key/x", NULL);
	assert_int_equal(kw_audit_pseudonym(fx->a, "mallory", p), 0);
	assert_int_equal(p[0], '~');
	assert_int_equal(strlen(p), KW_PSEUDONYM_SIZE - 1);

	assert_int_equal(kw_audit_query(fx->a, &f, &page), 0);
	assert_int_equal(json_array_size(json_object_get(page, "records")), 1);
	rec = json_array_get(json_object_get(page, "records"), 0);
	assert_string_equal(json_string_value(json_object_get(rec, "user")), "mallory");
	json_decref(page);

	f.user = NULL;
	f.action = "user.lock";
	assert_int_equal(kw_audit_query(fx->a, &f, &page), 0);
	rec = json_array_get(json_object_get(page, "records"), 0);
	assert_string_equal(json_string_value(json_object_get(rec, "resource")), "user/mallory");
	assert_string_equal(json_string_value(json_object_get(json_object_get(rec, "metadata"),
	    "reason")), "mallory was seen");
	json_decref(page);

	assert_int_equal(kw_audit_forget_subject(fx->a, "mallory", NULL), 0);
	assert_int_equal(kw_audit_subject_name(fx->a, p, name, sizeof(name)), KW_ERR_NOT_FOUND);
	assert_int_equal(kw_audit_query(fx->a, &f, &page), 0);
	rec = json_array_get(json_object_get(page, "records"), 0);
	snprintf(name, sizeof(name), "user/%s", p);
	assert_string_equal(json_string_value(json_object_get(rec, "resource")), name);
	char *text = json_dumps(rec, 0);
	assert_null(strstr(text, "mallory"));
	free(text);
	json_decref(page);
	rep = verify(fx->a);
	assert_true(json_is_true(json_object_get(rep, "ok")));
	json_decref(rep);
}

/* A batch that is rolled back leaves neither records nor a moved head. */
static void
test_batch_rollback(void **state)
{
	struct fixture *fx = *state;
	json_t *rep;

	write_one(fx->a, "alice", "login", NULL, NULL);
	assert_int_equal(kw_audit_begin(fx->a), 0);
	write_one(fx->a, "alice", "key.get", "key/a", NULL);
	write_one(fx->a, "bob", "key.get", "key/b", NULL);
	kw_audit_rollback(fx->a);
	assert_int_equal(kw_audit_begin(fx->a), 0);
	write_one(fx->a, "carol", "key.get", "key/c", NULL);
	assert_int_equal(kw_audit_commit(fx->a), 0);
	rep = verify(fx->a);
	assert_true(json_is_true(json_object_get(rep, "ok")));
	assert_int_equal(json_integer_value(json_object_get(rep, "records")), 2);
	assert_int_equal(json_integer_value(json_object_get(rep, "last_seq")), 2);
	json_decref(rep);
}

/* Pruning cuts a prefix, leaves an anchor and its own record; the rest verifies. */
static void
test_prune_anchors(void **state)
{
	struct fixture *fx = *state;
	json_t *rep = NULL;

	for (int i = 0; i < 7; i++)
		write_one(fx->a, "alice", "key.get", "key/a", NULL);
	sql(fx, "UPDATE audit_log SET ts_ms = 1000 WHERE seq <= 4");
	assert_int_equal(kw_audit_begin(fx->a), 0);
	assert_int_equal(kw_audit_prune(fx->a, 2000, NULL, 3, &rep), 0);
	assert_int_equal(kw_audit_commit(fx->a), 0);
	assert_int_equal(json_integer_value(json_object_get(rep, "pruned")), 3);
	assert_false(json_is_true(json_object_get(rep, "done")));
	json_decref(rep);
	/* The tampered timestamps broke those hashes, but they are gone: what stays verifies
	   from the anchor except record 4, still tampered. */
	rep = verify(fx->a);
	assert_int_equal(json_integer_value(json_object_get(rep, "anchor_seq")), 4);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(rep, "bad"), "seq")), 4);
	json_decref(rep);
	assert_int_equal(kw_audit_begin(fx->a), 0);
	assert_int_equal(kw_audit_prune(fx->a, 2000, NULL, 3, &rep), 0);
	assert_int_equal(kw_audit_commit(fx->a), 0);
	assert_int_equal(json_integer_value(json_object_get(rep, "pruned")), 1);
	assert_true(json_is_true(json_object_get(rep, "done")));
	json_decref(rep);
	rep = verify(fx->a);
	assert_true(json_is_true(json_object_get(rep, "ok")));
	assert_int_equal(json_integer_value(json_object_get(rep, "anchor_seq")), 5);
	/* 3 left of the 7, plus the two prune records. */
	assert_int_equal(json_integer_value(json_object_get(rep, "records")), 5);
	json_decref(rep);
}

/* ---- signatures ----------------------------------------------------------- */

static void
set_key(struct kw_audit *a, char c)
{
	unsigned char seed[KW_AUDIT_SEED_LEN];
	char err[256];

	memset(seed, c, sizeof(seed));
	assert_int_equal(kw_audit_set_signing_key(a, seed, err, sizeof(err)), 0);
}

static int
setup_signed(void **state)
{
	setup(state);
	set_key(((struct fixture *)*state)->a, 'a');
	return 0;
}

static long long
sql_int(struct fixture *fx, const char *query)
{
	_cleanup_free_ char *path = kw_test_path(fx->t, "audit.db");
	sqlite3_stmt *st;
	sqlite3 *db;
	long long v;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, query, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static long long
bad_seq(json_t *rep)
{
	return json_integer_value(json_object_get(json_object_get(rep, "bad"), "seq"));
}

/* The fault's kind ("record", "anchor", "head_signature") and that its reason says text. */
static void
assert_bad(json_t *rep, long long seq, const char *what, const char *text)
{
	json_t *b = json_object_get(rep, "bad");

	assert_false(json_is_true(json_object_get(rep, "ok")));
	assert_int_equal(bad_seq(rep), seq);
	assert_string_equal(json_string_value(json_object_get(b, "what")), what);
	assert_non_null(strstr(json_string_value(json_object_get(b, "reason")), text));
}

static void
assert_verifies(struct kw_audit *a)
{
	json_t *rep = verify(a);

	assert_true(json_is_true(json_object_get(rep, "ok")));
	assert_true(json_is_true(json_object_get(rep, "signed")));
	json_decref(rep);
}

/* One signature per commit, over its head; audit.pub holds the public key. */
static void
test_signed_heads(void **state)
{
	struct fixture *fx = *state;
	_cleanup_free_ char *pub_path = kw_test_path(fx->t, "audit.pub");
	_cleanup_free_ unsigned char *pub = NULL;
	char pk[KW_AUDIT_PK_B64], line[KW_AUDIT_PK_B64 + 1];
	size_t len;
	json_t *rep;

	for (int i = 0; i < 5; i++)
		write_one(fx->a, "alice", "key.get", "key/a", NULL);
	assert_int_equal(kw_audit_begin(fx->a), 0);
	write_one(fx->a, "alice", "key.get", "key/b", NULL);
	write_one(fx->a, "bob", "key.get", "key/b", NULL);
	assert_int_equal(kw_audit_commit(fx->a), 0);
	/* Records 1..5 committed alone; 6 and 7 together: one signature, for 7. */
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM audit_head_sig"), 6);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM audit_head_sig WHERE seq = 6"), 0);
	rep = verify(fx->a);
	assert_true(json_is_true(json_object_get(rep, "ok")));
	assert_true(json_is_true(json_object_get(rep, "signed")));
	kw_audit_public_key(fx->a, pk);
	assert_string_equal(json_string_value(json_object_get(rep, "public_key")), pk);
	assert_true(json_is_null(json_object_get(rep, "unsigned_through")));
	json_decref(rep);
	pub = kw_test_read(pub_path, &len);
	snprintf(line, sizeof(line), "%s\n", pk);
	assert_string_equal((char *)pub, line);
	assert_int_equal(kw_test_mode(pub_path), 0644);

	/* The head's signature vouches for all before it: an older one is not needed. */
	sql(fx, "CREATE TABLE keep AS SELECT * FROM audit_head_sig WHERE seq IN (3, 7);"
	    "UPDATE audit_head_sig SET sig = randomblob(64) WHERE seq = 3");
	assert_verifies(fx->a);
	/* The head's own, changed: named, and the first that fails is found. */
	sql(fx, "UPDATE audit_head_sig SET sig = randomblob(64) WHERE seq = 7");
	rep = verify(fx->a);
	assert_bad(rep, 3, "head_signature", "head signature at seq 3 does not verify");
	json_decref(rep);
	sql(fx, "UPDATE audit_head_sig SET sig = (SELECT sig FROM keep WHERE seq = 3) WHERE seq = 3");
	rep = verify(fx->a);
	assert_bad(rep, 7, "head_signature", "head signature at seq 7 does not verify");
	json_decref(rep);
	/* Gone: the newest record is unsigned. */
	sql(fx, "DELETE FROM audit_head_sig WHERE seq = 7");
	rep = verify(fx->a);
	assert_bad(rep, 7, "head_signature", "head signature missing");
	json_decref(rep);
	sql(fx, "INSERT INTO audit_head_sig SELECT * FROM keep WHERE seq = 7");
	assert_verifies(fx->a);
}

/* Records cut from the end leave their head signatures behind: found after a reopen too. */
static void
test_cut_from_the_end(void **state)
{
	struct fixture *fx = *state;
	struct kw_audit_options opt = { .include_user = true, .include_context = true };
	char err[256];
	json_t *rep;

	for (int i = 0; i < 5; i++)
		write_one(fx->a, "alice", "key.get", "key/a", NULL);
	sql(fx, "DELETE FROM audit_log WHERE seq >= 4");
	/* A store opened afresh knows no head of its own to compare with. */
	kw_audit_close(fx->a);
	assert_int_equal(kw_audit_open(fx->t->dir, &opt, &fx->a, err, sizeof(err)), 0);
	set_key(fx->a, 'a');
	rep = verify(fx->a);
	assert_bad(rep, 4, "record", "a head signature exists for seq 5");
	json_decref(rep);
}

/* Signatures of another key do not verify, and the start says so in the trail. */
static void
test_wrong_key(void **state)
{
	struct fixture *fx = *state;
	struct kw_audit_filter f = { .action = "audit.unsigned_head" };
	json_t *rep, *page = NULL;

	for (int i = 0; i < 3; i++)
		write_one(fx->a, "alice", "key.get", "key/a", NULL);
	assert_verifies(fx->a);
	set_key(fx->a, 'b');
	rep = verify(fx->a);
	assert_bad(rep, 1, "head_signature", "does not verify");
	json_decref(rep);
	/* At start: a head this broker did not sign is on the record, however it got there. */
	assert_int_equal(kw_audit_signing_start(fx->a, false), 0);
	write_one(fx->a, "alice", "key.get", "key/a", NULL);
	assert_int_equal(kw_audit_query(fx->a, &f, &page), 0);
	assert_int_equal(json_array_size(json_object_get(page, "records")), 1);
	json_decref(page);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM audit_log WHERE action = "
	    "'audit.signing'"), 0);
	/* Back with the right key: the start's record still says the head was not vouched for. */
	set_key(fx->a, 'a');
	rep = verify(fx->a);
	assert_bad(rep, 4, "head_signature", "head signature missing or invalid at start");
	json_decref(rep);
}

/* The anchor a prune leaves is signed; one without a valid signature is named. */
static void
test_anchor_signature(void **state)
{
	struct fixture *fx = *state;
	json_t *rep = NULL;

	for (int i = 0; i < 6; i++)
		write_one(fx->a, "alice", "key.get", "key/a", NULL);
	/* Due by date (a changed ts_ms breaks those hashes: they are cut off here). */
	sql(fx, "UPDATE audit_log SET ts_ms = 1000 WHERE seq <= 3");
	assert_int_equal(kw_audit_begin(fx->a), 0);
	assert_int_equal(kw_audit_prune(fx->a, 2000, NULL, 10, &rep), 0);
	assert_int_equal(kw_audit_commit(fx->a), 0);
	json_decref(rep);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM audit_head_sig WHERE seq <= 3"), 0);
	rep = verify(fx->a);
	assert_true(json_is_true(json_object_get(rep, "ok")));
	assert_int_equal(json_integer_value(json_object_get(rep, "anchor_seq")), 4);
	json_decref(rep);

	sql(fx, "CREATE TABLE keep AS SELECT sig FROM audit_anchor;"
	    "UPDATE audit_anchor SET sig = NULL");
	rep = verify(fx->a);
	assert_bad(rep, 4, "anchor", "has no signature");
	json_decref(rep);
	/* The head signature of seq 4 says "after record 4 comes hash X" too, but for a head:
	   planted at an anchor of 5 that follows record 4, it does not verify. */
	sql(fx, "DELETE FROM audit_log WHERE seq = 4;"
	    "INSERT INTO audit_anchor (first_seq, prev_hash, made_ts, sig) SELECT 5, prev_hash, "
	    "'x', (SELECT sig FROM audit_head_sig WHERE seq = 4) FROM audit_log WHERE seq = 5");
	rep = verify(fx->a);
	assert_bad(rep, 5, "anchor", "does not verify");
	json_decref(rep);
}

/* A store written before signatures: its head is signed at the next start, and said so. */
static void
test_migration(void **state)
{
	struct fixture *fx = *state;
	json_t *rep = NULL;

	for (int i = 0; i < 4; i++)
		write_one(fx->a, "alice", "key.get", "key/a", NULL);
	/* Pruned before signatures: an unsigned anchor at 2. */
	sql(fx, "UPDATE audit_log SET ts_ms = 1000 WHERE seq = 1");
	assert_int_equal(kw_audit_begin(fx->a), 0);
	assert_int_equal(kw_audit_prune(fx->a, 2000, NULL, 10, &rep), 0);
	assert_int_equal(kw_audit_commit(fx->a), 0);
	json_decref(rep);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM audit_head_sig"), 0);

	set_key(fx->a, 'a');
	rep = verify(fx->a);
	assert_bad(rep, 2, "anchor", "has no signature");
	json_decref(rep);
	assert_int_equal(kw_audit_signing_start(fx->a, false), 0);
	write_one(fx->a, "alice", "key.get", "key/a", NULL);
	rep = verify(fx->a);
	assert_true(json_is_true(json_object_get(rep, "ok")));
	/* 1..4 written, 5 the prune's record: unsigned; 6 audit.signing, 7 the new one. */
	assert_int_equal(json_integer_value(json_object_get(rep, "unsigned_through")), 5);
	json_decref(rep);
	assert_int_equal(sql_int(fx, "SELECT seq FROM audit_log WHERE action = 'audit.signing'"), 6);
	/* Once only: a signed store is not migrated again. */
	assert_int_equal(kw_audit_signing_start(fx->a, false), 0);
	write_one(fx->a, "alice", "key.get", "key/a", NULL);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM audit_log WHERE action IN "
	    "('audit.signing', 'audit.unsigned_head')"), 1);
	assert_verifies(fx->a);
}

/*
 * Schema 4: audit_user without the seq every index entry ends with anyway, and
 * audit_resource holding only user/ rows.  A store of schema 3 is migrated,
 * and what leans on those indexes (a search about a user, by what the user
 * did and what was done to the user; GDPR idleness) finds the same records.
 */
static bool keep_none(const char *name, void *ctx);

static void
test_index_migration(void **state)
{
	struct fixture *fx = *state;
	struct kw_audit_options opt = { .include_user = true, .include_context = true };
	struct kw_audit_filter f = { .about = "mallory" };
	json_t *page = NULL, *recs;
	char err[256];
	int n = -1;

	write_one(fx->a, "root", "user.lock", "user/mallory", NULL);
	write_one(fx->a, "mallory", "key.get", "key/x", NULL);
	write_one(fx->a, "alice", "key.get", "key/a", NULL);
	write_one(fx->a, "root", "user.unlock", "user/alice", NULL);
	kw_audit_close(fx->a);
	fx->a = NULL;
	sql(fx, "DROP INDEX audit_user; CREATE INDEX audit_user ON audit_log (user, seq);"
	    "DROP INDEX audit_resource; CREATE INDEX audit_resource ON audit_log (resource, seq);"
	    "PRAGMA user_version = 3;");
	assert_int_equal(kw_audit_open(fx->t->dir, &opt, &fx->a, err, sizeof(err)), 0);
	assert_int_equal(sql_int(fx, "PRAGMA user_version"), 4);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM sqlite_master WHERE name = "
	    "'audit_resource' AND sql LIKE '%WHERE resource GLOB ''user/*''%'"), 1);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM pragma_index_info('audit_user')"), 1);

	assert_int_equal(kw_audit_query(fx->a, &f, &page), 0);
	recs = json_object_get(page, "records");
	assert_int_equal(json_array_size(recs), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(recs, 0),
	    "action")), "user.lock");
	assert_string_equal(json_string_value(json_object_get(json_array_get(recs, 1),
	    "action")), "key.get");
	json_decref(page);

	/* Idle since before 1970 + 1 s: nobody; idle since the end of time: everyone. */
	assert_int_equal(kw_audit_begin(fx->a), 0);
	assert_int_equal(kw_audit_forget_idle(fx->a, 1000, keep_none, NULL, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(kw_audit_forget_idle(fx->a, 1LL << 62, keep_none, NULL, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(kw_audit_commit(fx->a), 0);
	page = verify(fx->a);
	assert_true(json_is_true(json_object_get(page, "ok")));
	json_decref(page);
}

static bool
keep_none(const char *name, void *ctx)
{
	(void)name;
	(void)ctx;
	return false;
}

/* An unsigned store whose state says signing began is not taken for an old one. */
static void
test_no_second_migration(void **state)
{
	struct fixture *fx = *state;
	json_t *rep;

	for (int i = 0; i < 3; i++)
		write_one(fx->a, "alice", "key.get", "key/a", NULL);
	set_key(fx->a, 'a');
	assert_int_equal(kw_audit_signing_start(fx->a, true), 0);
	write_one(fx->a, "alice", "key.get", "key/a", NULL);
	assert_int_equal(sql_int(fx, "SELECT count(*) FROM audit_log WHERE action = "
	    "'audit.signing'"), 0);
	rep = verify(fx->a);
	assert_bad(rep, 4, "head_signature", "head signature missing or invalid at start");
	json_decref(rep);
}

/* Sealed metadata opens only with the auditor's secret key. */
static void
test_sealed(void **state)
{
	struct kw_audit_options opt = { .include_user = true, .include_context = true,
	    .seal = true };
	unsigned char sk[crypto_box_SECRETKEYBYTES], out[256], *c;
	struct kw_test_fx *t = NULL;
	char err[256];
	struct kw_audit *a;
	struct kw_audit_filter f = { 0 };
	json_t *page = NULL, *meta;
	size_t clen;

	(void)state;
	crypto_box_keypair(opt.seal_pk, sk);
	assert_int_equal(kw_test_fx_new("seal", &t), 0);
	assert_int_equal(kw_audit_open(t->dir, &opt, &a, err, sizeof(err)), 0);
	write_one(a, "alice", "role.create", "role/ops", "{\"role\":\"zebracorn\"}");
	assert_int_equal(kw_audit_query(a, &f, &page), 0);
	meta = json_object_get(json_array_get(json_object_get(page, "records"), 0), "metadata");
	const char *b64 = json_string_value(json_object_get(meta, "sealed"));
	assert_non_null(b64);
	assert_null(strstr(b64, "zebracorn"));
	c = malloc(strlen(b64));
	assert_int_equal(sodium_base642bin(c, strlen(b64), b64, strlen(b64), NULL, &clen, NULL,
	    sodium_base64_VARIANT_ORIGINAL), 0);
	assert_true(clen > crypto_box_SEALBYTES && clen - crypto_box_SEALBYTES < sizeof(out));
	assert_int_equal(crypto_box_seal_open(out, c, clen, opt.seal_pk, sk), 0);
	out[clen - crypto_box_SEALBYTES] = '\0';
	assert_string_equal((char *)out, "{\"role\":\"zebracorn\"}");
	free(c);
	json_decref(page);
	kw_audit_close(a);
	assert_int_equal(kw_test_fx_free(t), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_every_field_counts),
		cmocka_unit_test(test_hex_parse),
		cmocka_unit_test(test_signature_vectors),
		cmocka_unit_test(test_key_text),
		cmocka_unit_test_setup_teardown(test_chain_verifies_and_tampering_is_located, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pseudonyms_and_erasure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune_anchors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signed_heads, setup_signed, teardown),
		cmocka_unit_test_setup_teardown(test_cut_from_the_end, setup_signed, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_key, setup_signed, teardown),
		cmocka_unit_test_setup_teardown(test_anchor_signature, setup_signed, teardown),
		cmocka_unit_test_setup_teardown(test_migration, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_second_migration, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_migration, setup, teardown),
		cmocka_unit_test(test_sealed),
		cmocka_unit_test_setup_teardown(test_secrets_are_scrubbed, setup, teardown),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
