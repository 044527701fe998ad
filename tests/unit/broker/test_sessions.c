/*
 * test_sessions.c - locks and failed logins (broker/locks.h), session tokens
 * (broker/sessions.h) and second-factor enrollment and checks (broker/mfa.h)
 * on a real state.db.
 *
 * Every test gets a fresh data directory (support/fixture.h) with its own
 * state.db and broker secret, and the users alice (2001), bob (2002) and carol
 * (2003).  Times are passed in as `now`, so nothing here waits for the clock.
 */
#include <liboath/oath.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "broker/store/state_sqlite.h"
#include "client/keywarden.h"
#include "broker/store/locks.h"
#include "broker/login/mfa.h"
#include "broker/login/secrets.h"
#include "broker/login/sessions.h"
#include "broker/store/state.h"
#include "broker/login/totp.h"
#include "broker/store/users.h"
#include "tests/unit/support/fixture.h"

#define ALICE 2001
#define BOB   2002
#define CAROL 2003

struct fx {
	struct kw_test_fx *t;		/* the data directory, owning what is below */
	struct kw_state *st;		/* t->state */
	sqlite3 *db;			/* st's database, for looking behind the store */
	struct kw_secrets *s;		/* t->secrets */
};

static int
group_setup(void **state)
{
	return sodium_init() < 0 || kw_totp_init() != 0 ? -1 : 0;
}

static int
group_teardown(void **state)
{
	oath_done();
	return 0;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f || kw_test_fx_new("sessions", &f->t) != 0 || kw_test_fx_state(f->t) != 0 ||
	    kw_test_fx_secrets(f->t) != 0)
		return -1;
	f->st = f->t->state;
	f->db = f->st->db;
	f->s = f->t->secrets;
	if (kw_user_insert(f->st, ALICE, "alice", "test") != 0 ||
	    kw_user_insert(f->st, BOB, "bob", "test") != 0 ||
	    kw_user_insert(f->st, CAROL, "carol", "test") != 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	int r = kw_test_fx_free(f->t);

	free(f);
	return r == 0 ? 0 : -1;
}

/* One integer from a query with one text parameter (or none); -999 for no row. */
static long long
query_int(sqlite3 *db, const char *sql, const char *arg)
{
	sqlite3_stmt *st = NULL;
	long long v = -999;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (arg)
		assert_int_equal(sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1000 : sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static long long
count_sessions(sqlite3 *db, long long uid)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM sessions%s%lld", uid < 0 ? " WHERE -1 = " :
	    " WHERE uid = ", uid);
	return query_int(db, sql, NULL);
}

static bool
session_row_exists(sqlite3 *db, const char *id)
{
	return query_int(db, "SELECT count(*) FROM sessions WHERE id = ?", id) == 1;
}

/* ---- locks: the arithmetic ----------------------------------------------- */

static void
test_lock_due_arithmetic(void **state)
{
	long long until = 12345;

	/* Below the threshold: no lock, and until is left alone. */
	assert_false(kw_lock_due(0, 3, 1000, 900, &until));
	assert_false(kw_lock_due(2, 3, 1000, 900, &until));
	assert_int_equal(until, 12345);
	/* At and beyond it: locked for `duration` from now. */
	assert_true(kw_lock_due(3, 3, 1000, 900, &until));
	assert_int_equal(until, 1900);
	until = 0;
	assert_true(kw_lock_due(7, 3, 1000, 900, &until));
	assert_int_equal(until, 1900);
	/* Duration 0: until an admin unlocks. */
	until = 0;
	assert_true(kw_lock_due(3, 3, 1000, 0, &until));
	assert_int_equal(until, -1);
	/* Threshold 1: the first failure locks. */
	assert_true(kw_lock_due(1, 1, 50, 10, &until));
	assert_int_equal(until, 60);
}

/* ---- locks: in state.db -------------------------------------------------- */

static void
test_lock_fail_counts_to_threshold(void **state)
{
	struct fx *f = *state;
	struct kw_lock l;
	bool locked = true;

	assert_int_equal(kw_lock_fail(f->st, ALICE, 1000, 900, 3, 600, &locked), 0);
	assert_false(locked);
	assert_int_equal(kw_lock_fail(f->st, ALICE, 1100, 900, 3, 600, &locked), 0);
	assert_false(locked);
	assert_int_equal(kw_lock_get(f->st, ALICE, 1150, &l), 0);
	assert_false(l.locked);
	/* The third within 900 s locks for 600 s from it. */
	assert_int_equal(kw_lock_fail(f->st, ALICE, 1200, 900, 3, 600, &locked), 0);
	assert_true(locked);
	assert_int_equal(kw_lock_get(f->st, ALICE, 1201, &l), 0);
	assert_true(l.locked);
	assert_int_equal(l.until, 1800);
	assert_string_equal(l.message, "too many failed logins");
	assert_string_equal(l.by, "keywarden");
	assert_int_equal(kw_lock_get(f->st, ALICE, 1799, &l), 0);
	assert_true(l.locked);
	/* Other users are not touched. */
	assert_int_equal(kw_lock_get(f->st, BOB, 1201, &l), 0);
	assert_false(l.locked);
}

static void
test_lock_fail_forgets_failures_older_than_interval(void **state)
{
	struct fx *f = *state;
	struct kw_lock l;
	bool locked = true;

	/* 1000 and 1500, then 1900: the one at 1000 is 900 s old and no longer counts. */
	assert_int_equal(kw_lock_fail(f->st, ALICE, 1000, 900, 3, 600, &locked), 0);
	assert_int_equal(kw_lock_fail(f->st, ALICE, 1500, 900, 3, 600, &locked), 0);
	assert_int_equal(kw_lock_fail(f->st, ALICE, 1900, 900, 3, 600, &locked), 0);
	assert_false(locked);
	assert_int_equal(query_int(f->db, "SELECT count(*) FROM failures", NULL), 2);
	assert_int_equal(kw_lock_get(f->st, ALICE, 1900, &l), 0);
	assert_false(l.locked);
	/* 1500, 1900, 2000 are within 900 s of each other. */
	assert_int_equal(kw_lock_fail(f->st, ALICE, 2000, 900, 3, 600, &locked), 0);
	assert_true(locked);
	assert_int_equal(kw_lock_get(f->st, ALICE, 2000, &l), 0);
	assert_true(l.locked);
	assert_int_equal(l.until, 2600);

	/* Bob: 899 s apart still count together. */
	assert_int_equal(kw_lock_fail(f->st, BOB, 1000, 900, 3, 600, &locked), 0);
	assert_int_equal(kw_lock_fail(f->st, BOB, 1500, 900, 3, 600, &locked), 0);
	assert_int_equal(kw_lock_fail(f->st, BOB, 1899, 900, 3, 600, &locked), 0);
	assert_true(locked);

	/* Carol: failures spread out over hours never lock. */
	for (long long t = 0; t < 10; t++) {
		assert_int_equal(kw_lock_fail(f->st, CAROL, 10000 + t * 1000, 900, 3, 600, &locked), 0);
		assert_false(locked);
	}
}

static void
test_lock_get_lifts_an_expired_lock(void **state)
{
	struct fx *f = *state;
	struct kw_lock l;
	bool locked = false;

	for (int i = 0; i < 3; i++)
		assert_int_equal(kw_lock_fail(f->st, ALICE, 1000 + i, 900, 3, 600, &locked), 0);
	assert_true(locked);
	assert_int_equal(query_int(f->db, "SELECT until FROM locks WHERE uid = 2001", NULL), 1602);
	/* At `until` the lock is over: lifted, and the failures forgotten with it. */
	assert_int_equal(kw_lock_get(f->st, ALICE, 1602, &l), 0);
	assert_false(l.locked);
	assert_int_equal(query_int(f->db, "SELECT count(*) FROM locks", NULL), 0);
	assert_int_equal(query_int(f->db, "SELECT count(*) FROM failures", NULL), 0);
	/* One more failure right after does not lock again at once. */
	assert_int_equal(kw_lock_fail(f->st, ALICE, 1603, 900, 3, 600, &locked), 0);
	assert_false(locked);
}

static void
test_lock_duration_0_holds_until_cleared(void **state)
{
	struct fx *f = *state;
	struct kw_lock l;
	bool locked = false, was = false;

	for (int i = 0; i < 3; i++)
		assert_int_equal(kw_lock_fail(f->st, ALICE, 1000 + i, 900, 3, 0, &locked), 0);
	assert_true(locked);
	assert_int_equal(query_int(f->db, "SELECT until FROM locks WHERE uid = 2001", NULL), -1000);
	assert_int_equal(kw_lock_get(f->st, ALICE, 1000LL + 10 * 365 * 86400, &l), 0);
	assert_true(l.locked);
	assert_true(l.until < 0);
	assert_int_equal(kw_lock_clear(f->st, ALICE, &was), 0);
	assert_true(was);
	assert_int_equal(kw_lock_get(f->st, ALICE, 2000, &l), 0);
	assert_false(l.locked);
	/* Clearing an unlocked account says so. */
	was = true;
	assert_int_equal(kw_lock_clear(f->st, ALICE, &was), 0);
	assert_false(was);
	assert_int_equal(kw_lock_clear(f->st, ALICE, NULL), 0);
}

static void
test_lock_clear_forgets_failures(void **state)
{
	struct fx *f = *state;
	bool locked = true, was = true;

	assert_int_equal(kw_lock_fail(f->st, ALICE, 1000, 900, 3, 600, &locked), 0);
	assert_int_equal(kw_lock_fail(f->st, ALICE, 1001, 900, 3, 600, &locked), 0);
	assert_int_equal(kw_lock_clear(f->st, ALICE, &was), 0);
	assert_false(was);
	assert_int_equal(kw_lock_fail(f->st, ALICE, 1002, 900, 3, 600, &locked), 0);
	assert_false(locked);
	/* And so does a good login (kw_lock_forget_failures). */
	assert_int_equal(kw_lock_fail(f->st, ALICE, 1003, 900, 3, 600, &locked), 0);
	assert_int_equal(kw_lock_forget_failures(f->st, ALICE), 0);
	assert_int_equal(kw_lock_fail(f->st, ALICE, 1004, 900, 3, 600, &locked), 0);
	assert_false(locked);
}

static void
test_admin_lock_with_message(void **state)
{
	struct fx *f = *state;
	struct kw_lock l;
	bool was = false;

	assert_int_equal(kw_lock_set(f->st, BOB, 1000, -1, "talk to security", "root"), 0);
	assert_int_equal(kw_lock_get(f->st, BOB, 999999999, &l), 0);
	assert_true(l.locked);
	assert_true(l.until < 0);
	assert_string_equal(l.message, "talk to security");
	assert_string_equal(l.by, "root");
	/* Replaced by a timed lock without a message. */
	assert_int_equal(kw_lock_set(f->st, BOB, 1000, 4600, NULL, "admin1"), 0);
	assert_int_equal(kw_lock_get(f->st, BOB, 4599, &l), 0);
	assert_true(l.locked);
	assert_int_equal(l.until, 4600);
	assert_string_equal(l.message, "");
	assert_string_equal(l.by, "admin1");
	assert_int_equal(kw_lock_get(f->st, BOB, 4600, &l), 0);
	assert_false(l.locked);
	assert_int_equal(kw_lock_clear(f->st, BOB, &was), 0);
	assert_false(was);
}

/* ---- sessions ------------------------------------------------------------ */

/* "kw1_" + 32 lowercase hex + "_" + 43 base64url characters (SPEC4). */
static void
assert_token_shape(const char *token, const char *id)
{
	const char *hex = "0123456789abcdef";
	const char *b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

	assert_int_equal(strlen(token), 4 + 32 + 1 + 43);
	assert_memory_equal(token, "kw1_", 4);
	for (int i = 4; i < 36; i++)
		assert_non_null(strchr(hex, token[i]));
	assert_int_equal(token[36], '_');
	for (int i = 37; i < 80; i++)
		assert_non_null(strchr(b64, token[i]));
	assert_memory_equal(token + 4, id, 32);
	assert_int_equal(strlen(id), 32);
}

static void
create(struct fx *f, uid_t uid, long long now, long long lifetime, long long max,
    struct kw_session *ses, char token[KW_TOKEN_MAX], json_t **evicted)
{
	json_t *ev = NULL;

	assert_int_equal(kw_session_create(f->st, f->s, uid, now, lifetime, max, ses, token, &ev), 0);
	assert_non_null(ev);
	assert_true(json_is_array(ev));
	if (evicted)
		*evicted = ev;
	else
		json_decref(ev);
}

/* The uid a token was issued to (its owner presents it), or alice's for unknown ones. */
static uid_t
owner_of(struct fx *f, const char *token)
{
	sqlite3_stmt *st = NULL;
	char id[33] = "";
	uid_t uid = 2001;

	if (strncmp(token, "kw1_", 4) == 0 && strlen(token) > 36)
		memcpy(id, token + 4, 32);
	assert_int_equal(sqlite3_prepare_v2(f->db, "SELECT uid FROM sessions WHERE id = ?", -1, &st,
	    NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		uid = (uid_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return uid;
}

static int
check(struct fx *f, const char *token, long long now, long long idle, struct kw_session *ses,
    char why[256])
{
	why[0] = '\0';
	return kw_session_check(f->st, f->s, token, owner_of(f, token), now, idle, ses, why, 256);
}

static void
test_session_create_gives_a_token(void **state)
{
	struct fx *f = *state;
	struct kw_session ses, ses2;
	char token[KW_TOKEN_MAX], token2[KW_TOKEN_MAX];
	json_t *ev = NULL;

	create(f, ALICE, 1000, 86400, 5, &ses, token, &ev);
	assert_int_equal(json_array_size(ev), 0);
	json_decref(ev);
	assert_token_shape(token, ses.id);
	assert_int_equal(ses.uid, ALICE);
	assert_int_equal(ses.created, 1000);
	assert_int_equal(ses.last_used, 1000);
	assert_int_equal(ses.expires, 1000 + 86400);
	/* The secret is not stored, only a hash of it. */
	assert_true(session_row_exists(f->db, ses.id));
	assert_int_equal(query_int(f->db, "SELECT count(*) FROM sessions WHERE "
	    "instr(CAST(secret_hash AS TEXT), ?) > 0", token + 37), 0);
	assert_int_equal(query_int(f->db, "SELECT length(secret_hash) FROM sessions WHERE id = ?",
	    ses.id), 32);
	/* Lifetime 0: no absolute limit. */
	create(f, ALICE, 1000, 0, 5, &ses2, token2, NULL);
	assert_int_equal(ses2.expires, -1);
	assert_int_equal(query_int(f->db, "SELECT expires FROM sessions WHERE id = ?", ses2.id), -1000);
	/* Two sessions never share id or secret. */
	assert_string_not_equal(ses.id, ses2.id);
	assert_string_not_equal(token + 37, token2 + 37);
}

static void
test_session_check_succeeds_and_marks_use(void **state)
{
	struct fx *f = *state;
	struct kw_session ses, got;
	char token[KW_TOKEN_MAX], why[256];

	create(f, ALICE, 1000, 86400, 5, &ses, token, NULL);
	memset(&got, 0, sizeof(got));
	assert_int_equal(check(f, token, 1010, 3600, &got, why), 0);
	assert_string_equal(got.id, ses.id);
	assert_int_equal(got.uid, ALICE);
	assert_int_equal(got.created, 1000);
	assert_int_equal(got.last_used, 1010);
	assert_int_equal(got.expires, 1000 + 86400);
	assert_int_equal(query_int(f->db, "SELECT last_used FROM sessions WHERE id = ?", ses.id), 1010);
	assert_int_equal(check(f, token, 2000, 3600, &got, why), 0);
	assert_int_equal(got.last_used, 2000);
	assert_int_equal(query_int(f->db, "SELECT last_used FROM sessions WHERE id = ?", ses.id), 2000);
}

static void
test_session_foreign_uid_refused_and_not_marked(void **state)
{
	struct fx *f = *state;
	struct kw_session ses, got;
	char token[KW_TOKEN_MAX], why[256] = "";

	create(f, ALICE, 1000, 86400, 5, &ses, token, NULL);
	assert_int_equal(kw_session_check(f->st, f->s, token, BOB, 1500, 3600, &got, why, 256),
	    KW_ERR_DENIED);
	assert_non_null(strstr(why, "belongs to another user"));
	/* A stranger's attempt does not keep the session alive. */
	assert_int_equal(query_int(f->db, "SELECT last_used FROM sessions WHERE id = ?", ses.id), 1000);
	assert_int_equal(check(f, token, 1600, 3600, &got, why), 0);
}

static void
test_session_purge(void **state)
{
	struct fx *f = *state;
	struct kw_session a, b;
	char ta[KW_TOKEN_MAX], tb[KW_TOKEN_MAX], why[256];
	int n = -1;

	create(f, ALICE, 1000, 0, 5, &a, ta, NULL);
	create(f, BOB, 1500, 0, 5, &b, tb, NULL);
	/* At 2100 with idle 1000, only alice's (last used 1000) has gone idle. */
	assert_int_equal(kw_session_purge(f->st, 2100, 1000, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(check(f, ta, 2100, 1000, &a, why), KW_ERR_SESSION);
	assert_int_equal(check(f, tb, 2100, 1000, &b, why), 0);
}

static void
test_session_check_refuses_bad_tokens(void **state)
{
	struct fx *f = *state;
	struct kw_session ses, got;
	char token[KW_TOKEN_MAX], bad[KW_TOKEN_MAX + 8], why[256];

	create(f, ALICE, 1000, 86400, 5, &ses, token, NULL);
	/* Wrong secret. */
	snprintf(bad, sizeof(bad), "%s", token);
	bad[40] = bad[40] == 'A' ? 'B' : 'A';
	assert_int_equal(check(f, bad, 1001, 3600, &got, why), KW_ERR_SESSION);
	assert_non_null(strstr(why, ses.id));
	/* Secret cut short, or longer. */
	snprintf(bad, sizeof(bad), "%.*s", 79, token);
	assert_int_equal(check(f, bad, 1001, 3600, &got, why), KW_ERR_SESSION);
	snprintf(bad, sizeof(bad), "%sA", token);
	assert_int_equal(check(f, bad, 1001, 3600, &got, why), KW_ERR_SESSION);
	/* Unknown id with the right secret. */
	snprintf(bad, sizeof(bad), "%s", token);
	bad[4] = bad[4] == 'a' ? 'b' : 'a';
	assert_int_equal(check(f, bad, 1001, 3600, &got, why), KW_ERR_SESSION);
	assert_null(strstr(why, ses.id));
	/* Another user's token with this one's secret. */
	{
		struct kw_session bs;
		char btok[KW_TOKEN_MAX];

		create(f, BOB, 1000, 86400, 5, &bs, btok, NULL);
		snprintf(bad, sizeof(bad), "kw1_%s_%s", bs.id, token + 37);
		assert_int_equal(check(f, bad, 1001, 3600, &got, why), KW_ERR_SESSION);
		assert_int_equal(check(f, btok, 1001, 3600, &got, why), 0);
		assert_int_equal(got.uid, BOB);
	}
	/* Malformed. */
	{
		char upper[KW_TOKEN_MAX], nosep[KW_TOKEN_MAX], kw2[KW_TOKEN_MAX], shortid[KW_TOKEN_MAX];
		const char *malformed[] = { "", "kw1_", "kw1", "kw1__", "garbage", upper, nosep, kw2,
		    shortid, NULL };

		snprintf(upper, sizeof(upper), "kw1_%s", token + 4);
		for (int i = 4; i < 36; i++)
			if (upper[i] >= 'a' && upper[i] <= 'f')
				upper[i] = (char)(upper[i] - 'a' + 'A');
		if (strcmp(upper, token) == 0)	/* all digits: make one a letter anyway */
			upper[4] = 'G';
		snprintf(nosep, sizeof(nosep), "%s", token);
		nosep[36] = '-';
		snprintf(kw2, sizeof(kw2), "kw2_%s", token + 4);
		snprintf(shortid, sizeof(shortid), "kw1_%.31s_%s", ses.id, token + 37);
		for (int i = 0; malformed[i]; i++) {
			if (check(f, malformed[i], 1001, 3600, &got, why) != KW_ERR_SESSION)
				fail_msg("token \"%s\" accepted", malformed[i]);
			assert_non_null(strstr(why, "malformed"));
		}
		/* Only the id, no secret. */
		snprintf(bad, sizeof(bad), "kw1_%s_", ses.id);
		assert_int_equal(check(f, bad, 1001, 3600, &got, why), KW_ERR_SESSION);
		snprintf(bad, sizeof(bad), "kw1_%s", ses.id);
		assert_int_equal(check(f, bad, 1001, 3600, &got, why), KW_ERR_SESSION);
	}
	/* None of that hurt the real session, nor touched last_used. */
	assert_true(session_row_exists(f->db, ses.id));
	assert_int_equal(query_int(f->db, "SELECT last_used FROM sessions WHERE id = ?", ses.id), 1000);
	assert_int_equal(check(f, token, 1002, 3600, &got, why), 0);
	assert_string_equal(got.id, ses.id);
}

static void
test_session_idle_expiry(void **state)
{
	struct fx *f = *state;
	struct kw_session ses, got;
	char token[KW_TOKEN_MAX], why[256];

	create(f, ALICE, 1000, 0, 5, &ses, token, NULL);
	/* Used just before the idle limit: the clock starts again from there. */
	assert_int_equal(check(f, token, 1000 + 599, 600, &got, why), 0);
	assert_int_equal(check(f, token, 1599 + 599, 600, &got, why), 0);
	/* Idle for 600 s: gone. */
	assert_int_equal(check(f, token, 2198 + 600, 600, &got, why), KW_ERR_SESSION);
	assert_non_null(strstr(why, "idle"));
	assert_false(session_row_exists(f->db, ses.id));
	/* And stays gone, even at a time it would have been fine. */
	assert_int_equal(check(f, token, 2199, 600, &got, why), KW_ERR_SESSION);
	assert_non_null(strstr(why, "not valid"));
}

static void
test_session_absolute_expiry(void **state)
{
	struct fx *f = *state;
	struct kw_session ses, other, got;
	char token[KW_TOKEN_MAX], otok[KW_TOKEN_MAX], why[256];

	create(f, ALICE, 1000, 100, 5, &ses, token, NULL);
	create(f, ALICE, 1000, 0, 5, &other, otok, NULL);
	/* Kept busy, it still ends at created + lifetime. */
	for (long long t = 1010; t < 1100; t += 10)
		assert_int_equal(check(f, token, t, 3600, &got, why), 0);
	assert_int_equal(check(f, token, 1099, 3600, &got, why), 0);
	assert_int_equal(check(f, token, 1100, 3600, &got, why), KW_ERR_SESSION);
	assert_non_null(strstr(why, "expired"));
	assert_false(session_row_exists(f->db, ses.id));
	assert_int_equal(check(f, token, 1100, 3600, &got, why), KW_ERR_SESSION);
	/* Without a lifetime only idleness ends it. */
	for (long long t = 1000; t < 1000 + 30 * 86400; t += 3000)
		assert_int_equal(check(f, otok, t, 3600, &got, why), 0);
	assert_true(session_row_exists(f->db, other.id));
}

static bool
json_has_string(json_t *a, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return true;
	return false;
}

static void
test_session_max_evicts_oldest(void **state)
{
	struct fx *f = *state;
	struct kw_session a, b, c, d, e, bob, got;
	char ta[KW_TOKEN_MAX], tb[KW_TOKEN_MAX], tc[KW_TOKEN_MAX], td[KW_TOKEN_MAX],
	    te[KW_TOKEN_MAX], tbob[KW_TOKEN_MAX], why[256];
	json_t *ev = NULL;

	create(f, BOB, 900, 0, 2, &bob, tbob, NULL);
	create(f, ALICE, 1000, 0, 2, &a, ta, &ev);
	assert_int_equal(json_array_size(ev), 0);
	json_decref(ev);
	create(f, ALICE, 1001, 0, 2, &b, tb, &ev);
	assert_int_equal(json_array_size(ev), 0);
	json_decref(ev);
	/* The third evicts the oldest, a, and says so. */
	create(f, ALICE, 1002, 0, 2, &c, tc, &ev);
	assert_int_equal(json_array_size(ev), 1);
	assert_string_equal(json_string_value(json_array_get(ev, 0)), a.id);
	json_decref(ev);
	assert_int_equal(check(f, ta, 1003, 3600, &got, why), KW_ERR_SESSION);
	assert_int_equal(check(f, tb, 1003, 3600, &got, why), 0);
	assert_int_equal(check(f, tc, 1003, 3600, &got, why), 0);
	/* The oldest by creation, not by use: b was used last, and still goes first. */
	create(f, ALICE, 1002, 0, 2, &d, td, &ev);
	assert_int_equal(json_array_size(ev), 1);
	assert_string_equal(json_string_value(json_array_get(ev, 0)), b.id);
	json_decref(ev);
	/* Within one second, the earlier created goes (c before d). */
	create(f, ALICE, 1002, 0, 2, &e, te, &ev);
	assert_int_equal(json_array_size(ev), 1);
	assert_string_equal(json_string_value(json_array_get(ev, 0)), c.id);
	json_decref(ev);
	assert_int_equal(count_sessions(f->db, ALICE), 2);
	assert_true(session_row_exists(f->db, d.id));
	assert_true(session_row_exists(f->db, e.id));
	/* Bob's session was never at stake. */
	assert_int_equal(check(f, tbob, 1003, 3600, &got, why), 0);
	/* A lower maximum evicts several at once, keeping the newest. */
	{
		struct kw_session g;
		char tg[KW_TOKEN_MAX];

		create(f, ALICE, 1005, 0, 1, &g, tg, &ev);
		assert_int_equal(json_array_size(ev), 2);
		assert_true(json_has_string(ev, d.id));
		assert_true(json_has_string(ev, e.id));
		json_decref(ev);
		assert_int_equal(count_sessions(f->db, ALICE), 1);
		assert_int_equal(check(f, tg, 1006, 3600, &got, why), 0);
	}
	/* maxSessions 1 over and over: each login ends the one before. */
	{
		struct kw_session prev, cur;
		char tprev[KW_TOKEN_MAX], tcur[KW_TOKEN_MAX];

		create(f, CAROL, 2000, 0, 1, &prev, tprev, NULL);
		for (int i = 1; i <= 5; i++) {
			create(f, CAROL, 2000 + i / 2, 0, 1, &cur, tcur, &ev);
			assert_int_equal(json_array_size(ev), 1);
			assert_string_equal(json_string_value(json_array_get(ev, 0)), prev.id);
			json_decref(ev);
			assert_int_equal(check(f, tcur, 2010, 3600, &got, why), 0);
			assert_int_equal(check(f, tprev, 2010, 3600, &got, why), KW_ERR_SESSION);
			prev = cur;
			memcpy(tprev, tcur, sizeof(tprev));
		}
	}
}

static void
test_session_revoke(void **state)
{
	struct fx *f = *state;
	struct kw_session a1, a2, b1, c1, got;
	char t1[KW_TOKEN_MAX], t2[KW_TOKEN_MAX], tb[KW_TOKEN_MAX], tc[KW_TOKEN_MAX], why[256];
	int n = -1;

	create(f, ALICE, 1000, 0, 5, &a1, t1, NULL);
	create(f, ALICE, 1001, 0, 5, &a2, t2, NULL);
	create(f, BOB, 1002, 0, 5, &b1, tb, NULL);
	create(f, CAROL, 1003, 0, 5, &c1, tc, NULL);
	/* By id. */
	assert_int_equal(kw_session_revoke(f->st, a1.id), 0);
	assert_int_equal(kw_session_revoke(f->st, a1.id), KW_ERR_NOT_FOUND);
	assert_int_equal(kw_session_revoke(f->st, "0123456789abcdef0123456789abcdef"),
	    KW_ERR_NOT_FOUND);
	assert_int_equal(check(f, t1, 1010, 3600, &got, why), KW_ERR_SESSION);
	assert_int_equal(check(f, t2, 1010, 3600, &got, why), 0);
	/* By user. */
	create(f, ALICE, 1011, 0, 5, &a1, t1, NULL);
	assert_int_equal(kw_session_revoke_uid(f->st, ALICE, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(check(f, t1, 1012, 3600, &got, why), KW_ERR_SESSION);
	assert_int_equal(check(f, t2, 1012, 3600, &got, why), KW_ERR_SESSION);
	assert_int_equal(check(f, tb, 1012, 3600, &got, why), 0);
	n = -1;
	assert_int_equal(kw_session_revoke_uid(f->st, ALICE, &n), 0);
	assert_int_equal(n, 0);
	/* All. */
	n = -1;
	assert_int_equal(kw_session_revoke_uid(f->st, -1, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(check(f, tb, 1013, 3600, &got, why), KW_ERR_SESSION);
	assert_int_equal(check(f, tc, 1013, 3600, &got, why), KW_ERR_SESSION);
	assert_int_equal(count_sessions(f->db, -1), 0);
	assert_int_equal(kw_session_revoke_uid(f->st, -1, NULL), 0);
}

static void
test_session_list(void **state)
{
	struct fx *f = *state;
	struct kw_session a, b, c;
	char ta[KW_TOKEN_MAX], tb[KW_TOKEN_MAX], tc[KW_TOKEN_MAX];
	json_t *l = NULL, *o;

	create(f, ALICE, 1700000000, 3600, 5, &a, ta, NULL);
	create(f, BOB, 1700000001, 0, 5, &b, tb, NULL);
	create(f, ALICE, 1700000002, 0, 5, &c, tc, NULL);
	assert_int_equal(kw_session_list(f->st, -1, 600, &l), 0);
	assert_int_equal(json_array_size(l), 3);
	json_decref(l);
	assert_int_equal(kw_session_list(f->st, ALICE, 600, &l), 0);
	assert_int_equal(json_array_size(l), 2);
	o = json_array_get(l, 0);
	assert_string_equal(json_string_value(json_object_get(o, "id")), a.id);
	assert_string_equal(json_string_value(json_object_get(o, "user")), "alice");
	assert_string_equal(json_string_value(json_object_get(o, "created")), "2023-11-14T22:13:20Z");
	assert_string_equal(json_string_value(json_object_get(o, "last_used")), "2023-11-14T22:13:20Z");
	assert_string_equal(json_string_value(json_object_get(o, "expires")), "2023-11-14T23:13:20Z");
	assert_string_equal(json_string_value(json_object_get(o, "idle_expires")),
	    "2023-11-14T22:23:20Z");
	assert_true(json_is_null(json_object_get(json_array_get(l, 1), "expires")));
	/* The token's secret appears nowhere in a list. */
	{
		char *text = json_dumps(l, 0);

		assert_non_null(text);
		assert_null(strstr(text, ta + 37));
		assert_null(strstr(text, tc + 37));
		free(text);
	}
	json_decref(l);
}

static void
test_sessions_go_with_their_user(void **state)
{
	struct fx *f = *state;
	struct kw_session a, got;
	char ta[KW_TOKEN_MAX], why[256];

	create(f, ALICE, 1000, 0, 5, &a, ta, NULL);
	assert_int_equal(kw_user_delete(f->st, ALICE, NULL), 0);
	assert_int_equal(count_sessions(f->db, ALICE), 0);
	assert_int_equal(check(f, ta, 1001, 3600, &got, why), KW_ERR_SESSION);
	/* And a session for no registered user cannot be made (foreign key). */
	{
		json_t *ev = NULL;
		char t[KW_TOKEN_MAX];

		assert_true(kw_session_create(f->st, f->s, 4242, 1000, 0, 5, &got, t, &ev) < 0);
	}
}

/* ---- second factors ------------------------------------------------------ */

/* The seed an authenticator app gets from the enrollment object. */
static void
seed_of(json_t *obj, unsigned char seed[KW_TOTP_SEED_LEN])
{
	const char *b32 = json_string_value(json_object_get(obj, "secret"));
	char *raw = NULL;
	size_t n = 0;

	assert_non_null(b32);
	assert_int_equal(oath_base32_decode(b32, strlen(b32), &raw, &n), OATH_OK);
	assert_int_equal(n, KW_TOTP_SEED_LEN);
	memcpy(seed, raw, KW_TOTP_SEED_LEN);
	free(raw);
}

static void
code_at(const unsigned char *seed, long long t, char out[16])
{
	assert_int_equal(oath_totp_generate((const char *)seed, KW_TOTP_SEED_LEN, (time_t)t, 30, 0, 6,
	    out), OATH_OK);
}

static json_t *
enroll(struct fx *f, uid_t uid, const char *user)
{
	json_t *obj = NULL;

	assert_int_equal(kw_mfa_enroll(f->st, f->s, uid, user, &obj), 0);
	assert_non_null(obj);
	return obj;
}

static const char *
rcode(json_t *obj, size_t i)
{
	return json_string_value(json_array_get(json_object_get(obj, "recovery_codes"), i));
}

static void
test_mfa_enroll_object(void **state)
{
	struct fx *f = *state;
	json_t *obj = enroll(f, ALICE, "alice"), *codes;
	const char *b32;
	char *uri;

	assert_string_equal(json_string_value(json_object_get(obj, "user")), "alice");
	b32 = json_string_value(json_object_get(obj, "secret"));
	assert_non_null(b32);
	assert_int_equal(strlen(b32), 32);
	uri = kw_totp_uri("alice", b32);
	assert_non_null(uri);
	assert_string_equal(json_string_value(json_object_get(obj, "otpauth_uri")), uri);
	free(uri);
	codes = json_object_get(obj, "recovery_codes");
	assert_true(json_is_array(codes));
	assert_int_equal(json_array_size(codes), 10);
	for (size_t i = 0; i < 10; i++) {
		assert_true(kw_recovery_code_shape(rcode(obj, i)));
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(rcode(obj, i), rcode(obj, j));
	}
	/* At rest: a sealed seed and ten hashes, nothing in the clear. */
	{
		unsigned char seed[KW_TOTP_SEED_LEN];

		seed_of(obj, seed);
		assert_int_equal(query_int(f->db, "SELECT count(*) FROM totp WHERE uid = 2001 AND "
		    "last_step = -1 AND length(seed) = 20 + 24 + 16", NULL), 1);
		{
			sqlite3_stmt *st = NULL;

			assert_int_equal(sqlite3_prepare_v2(f->db, "SELECT count(*) FROM totp WHERE "
			    "instr(seed, ?) > 0", -1, &st, NULL), SQLITE_OK);
			assert_int_equal(sqlite3_bind_blob(st, 1, seed, KW_TOTP_SEED_LEN,
			    SQLITE_TRANSIENT), SQLITE_OK);
			assert_int_equal(sqlite3_step(st), SQLITE_ROW);
			assert_int_equal(sqlite3_column_int(st, 0), 0);
			sqlite3_finalize(st);
		}
		assert_int_equal(query_int(f->db, "SELECT count(*) FROM recovery_codes WHERE uid = 2001 "
		    "AND used IS NULL AND length(hash) = 32", NULL), 10);
		assert_int_equal(query_int(f->db, "SELECT count(*) FROM recovery_codes WHERE "
		    "instr(hash, CAST(? AS BLOB)) > 0", rcode(obj, 0)), 0);
	}
	json_decref(obj);
}

static void
test_mfa_totp_once(void **state)
{
	struct fx *f = *state;
	json_t *obj = enroll(f, ALICE, "alice");
	unsigned char seed[KW_TOTP_SEED_LEN];
	const long long t = 1700000000;	/* step 56666666, 20 s in */
	const char *method = NULL;
	char code[16], prev[16], next[16], wrong[16], at60[16];

	seed_of(obj, seed);
	code_at(seed, t, code);
	code_at(seed, t - 30, prev);
	code_at(seed, t + 30, next);
	assert_int_equal(kw_mfa_check(f->st, f->s, ALICE, code, t, 1, &method), 0);
	assert_string_equal(method, "totp");
	assert_int_equal(query_int(f->db, "SELECT last_step FROM totp WHERE uid = 2001", NULL), t / 30);
	/* Replay, at once or later within the window. */
	method = NULL;
	assert_int_equal(kw_mfa_check(f->st, f->s, ALICE, code, t, 1, &method), KW_ERR_DENIED);
	assert_string_equal(method, "totp");
	assert_int_equal(kw_mfa_check(f->st, f->s, ALICE, code, t + 25, 1, &method), KW_ERR_DENIED);
	/* An older step's code, though still inside the window. */
	if (strcmp(prev, code) != 0)
		assert_int_equal(kw_mfa_check(f->st, f->s, ALICE, prev, t, 1, &method), KW_ERR_DENIED);
	/* The next step's code is fresh. */
	assert_int_equal(kw_mfa_check(f->st, f->s, ALICE, next, t + 30, 1, &method), 0);
	assert_int_equal(query_int(f->db, "SELECT last_step FROM totp WHERE uid = 2001", NULL),
	    t / 30 + 1);
	/* A wrong code. */
	code_at(seed, t + 300, wrong);
	code_at(seed, t + 60, at60);
	if (strcmp(wrong, at60) != 0)
		assert_int_equal(kw_mfa_check(f->st, f->s, ALICE, wrong, t + 60, 0, &method),
		    KW_ERR_DENIED);
	/* Alice's code is no good for bob (enrolled with his own seed) ... */
	{
		json_t *bobj = enroll(f, BOB, "bob");
		char later[16];

		code_at(seed, t + 90, later);
		assert_int_equal(kw_mfa_check(f->st, f->s, BOB, later, t + 90, 1, &method),
		    KW_ERR_DENIED);
		json_decref(bobj);
	}
	/* ... and carol has no second factor at all. */
	assert_int_equal(kw_mfa_check(f->st, f->s, CAROL, code, t, 1, &method), KW_ERR_NOT_FOUND);
	json_decref(obj);
}

static void
test_mfa_recovery_code_once(void **state)
{
	struct fx *f = *state;
	json_t *obj = enroll(f, ALICE, "alice"), *bobj = enroll(f, BOB, "bob");
	const char *method = NULL;
	char upper[16];

	assert_int_equal(kw_mfa_check(f->st, f->s, ALICE, rcode(obj, 0), 1000, 1, &method), 0);
	assert_string_equal(method, "recovery");
	assert_int_equal(query_int(f->db, "SELECT count(*) FROM recovery_codes WHERE uid = 2001 "
	    "AND used = 1000", NULL), 1);
	method = NULL;
	assert_int_equal(kw_mfa_check(f->st, f->s, ALICE, rcode(obj, 0), 1001, 1, &method),
	    KW_ERR_DENIED);
	assert_string_equal(method, "recovery");
	/* Typed in capitals, still the code. */
	snprintf(upper, sizeof(upper), "%s", rcode(obj, 1));
	for (char *p = upper; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	assert_int_equal(kw_mfa_check(f->st, f->s, ALICE, upper, 1002, 1, &method), 0);
	assert_int_equal(kw_mfa_check(f->st, f->s, ALICE, rcode(obj, 1), 1003, 1, &method),
	    KW_ERR_DENIED);
	/* Bob's codes are not alice's, and an invented one is nothing. */
	assert_int_equal(kw_mfa_check(f->st, f->s, ALICE, rcode(bobj, 2), 1004, 1, &method),
	    KW_ERR_DENIED);
	assert_int_equal(kw_mfa_check(f->st, f->s, ALICE, "aaaaa-aaaaa", 1005, 1, &method),
	    KW_ERR_DENIED);
	assert_int_equal(kw_mfa_check(f->st, f->s, BOB, rcode(bobj, 2), 1006, 1, &method), 0);
	/* All ten work once each. */
	for (size_t i = 2; i < 10; i++)
		assert_int_equal(kw_mfa_check(f->st, f->s, ALICE, rcode(obj, i), 1010, 1, &method), 0);
	for (size_t i = 0; i < 10; i++)
		assert_int_equal(kw_mfa_check(f->st, f->s, ALICE, rcode(obj, i), 1011, 1, &method),
		    KW_ERR_DENIED);
	json_decref(obj);
	json_decref(bobj);
}

static void
test_mfa_reenroll_replaces_everything(void **state)
{
	struct fx *f = *state;
	json_t *old = enroll(f, ALICE, "alice"), *cur;
	unsigned char oseed[KW_TOTP_SEED_LEN], nseed[KW_TOTP_SEED_LEN];
	const long long t = 1700000100;
	const char *method;
	char ocode[16], ncode[16];

	seed_of(old, oseed);
	code_at(oseed, t, ocode);
	assert_int_equal(kw_mfa_check(f->st, f->s, ALICE, ocode, t, 1, &method), 0);
	cur = enroll(f, ALICE, "alice");
	seed_of(cur, nseed);
	assert_memory_not_equal(oseed, nseed, sizeof(oseed));
	assert_int_equal(query_int(f->db, "SELECT count(*) FROM recovery_codes WHERE uid = 2001",
	    NULL), 10);
	code_at(oseed, t + 30, ocode);
	code_at(nseed, t + 30, ncode);
	if (strcmp(ocode, ncode) != 0)
		assert_int_equal(kw_mfa_check(f->st, f->s, ALICE, ocode, t + 30, 1, &method),
		    KW_ERR_DENIED);
	assert_int_equal(kw_mfa_check(f->st, f->s, ALICE, rcode(old, 3), t, 1, &method),
	    KW_ERR_DENIED);
	assert_int_equal(kw_mfa_check(f->st, f->s, ALICE, ncode, t + 30, 1, &method), 0);
	assert_int_equal(kw_mfa_check(f->st, f->s, ALICE, rcode(cur, 3), t, 1, &method), 0);
	json_decref(old);
	json_decref(cur);
}

static void
test_mfa_seed_sealed_for_its_user(void **state)
{
	struct fx *f = *state;
	json_t *obj = enroll(f, ALICE, "alice"), *bobj = enroll(f, BOB, "bob");
	unsigned char seed[KW_TOTP_SEED_LEN];
	const long long t = 1700000200;
	const char *method;
	char code[16];

	/* Alice's sealed seed copied into bob's row does not open for bob. */
	assert_int_equal(sqlite3_exec(f->db, "UPDATE totp SET seed = (SELECT seed FROM totp WHERE "
	    "uid = 2001) WHERE uid = 2002", NULL, NULL, NULL), SQLITE_OK);
	seed_of(obj, seed);
	code_at(seed, t, code);
	assert_true(kw_mfa_check(f->st, f->s, BOB, code, t, 1, &method) < 0);
	assert_int_equal(query_int(f->db, "SELECT last_step FROM totp WHERE uid = 2002", NULL), -1);
	assert_int_equal(kw_mfa_check(f->st, f->s, ALICE, code, t, 1, &method), 0);
	json_decref(obj);
	json_decref(bobj);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lock_due_arithmetic),
		T(test_lock_fail_counts_to_threshold),
		T(test_lock_fail_forgets_failures_older_than_interval),
		T(test_lock_get_lifts_an_expired_lock),
		T(test_lock_duration_0_holds_until_cleared),
		T(test_lock_clear_forgets_failures),
		T(test_admin_lock_with_message),
		T(test_session_create_gives_a_token),
		T(test_session_check_succeeds_and_marks_use),
		T(test_session_foreign_uid_refused_and_not_marked),
		T(test_session_purge),
		T(test_session_check_refuses_bad_tokens),
		T(test_session_idle_expiry),
		T(test_session_absolute_expiry),
		T(test_session_max_evicts_oldest),
		T(test_session_revoke),
		T(test_session_list),
		T(test_sessions_go_with_their_user),
		T(test_mfa_enroll_object),
		T(test_mfa_totp_once),
		T(test_mfa_recovery_code_once),
		T(test_mfa_reenroll_replaces_everything),
		T(test_mfa_seed_sealed_for_its_user),
	};
#undef T

	return cmocka_run_group_tests_name("sessions", tests, group_setup, group_teardown);
}
