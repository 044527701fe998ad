/*
 * sign.c - the broker's signatures over its audit trail (see audit.h and
 * common/audit_chain.h for what is signed).
 *
 * The hash chain alone is unkeyed: whoever can write audit.db can edit a
 * record and recompute every hash after it, or cut the front off and plant
 * an anchor.  So the broker signs with a key derived from its master secret:
 * the head at every commit (one signature per group commit, in
 * audit_head_sig), each anchor (audit_anchor.sig) and each archive's
 * manifest (prune.c).  The public key is dataDir/audit.pub.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "broker/audit/audit_internal.h"
#include "broker/store/sql.h"
#include "client/keywarden.h"
#include "common/fsutil.h"
#include "common/log.h"

void
kw_audit_sign(const struct kw_audit *a, const struct kw_audit_msg *msg,
    uint8_t sig[KW_AUDIT_SIG_LEN])
{
	crypto_sign_detached(sig, NULL, msg->b, msg->len, a->sign_sk);
}

/*
 * dir/audit.pub: the public key in base64 and a newline, for verify
 * --archive offline.  A file there that is not the broker's (fsutil.h) is
 * refused, not replaced: someone else wrote into the data directory.
 */
static int
publish(struct kw_audit *a, char *err, size_t err_len)
{
	char path[sizeof(a->path) + 16], line[KW_AUDIT_PK_B64 + 1], why[384];
	_cleanup_free_ char *old = NULL;
	_cleanup_close_ int dfd = -1, fd = -1;
	const char *name;
	size_t old_len = 0;

	snprintf(path, sizeof(path), "%s", a->path);
	if (strrchr(path, '/'))
		*strrchr(path, '/') = '\0';
	snprintf(path + strlen(path), sizeof(path) - strlen(path), "/audit.pub");
	if ((dfd = kw_open_dir_of(path, &name)) < 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return KW_ERR_IO;
	}
	kw_audit_pk_b64(a->sign_pk, line);
	strcat(line, "\n");
	fd = kw_open_private(dfd, name, O_RDONLY, 0, why, sizeof(why));
	if (fd == KW_ERR_CONFIG) {
		snprintf(err, err_len, "%s: %s", path, why);
		return fd;
	}
	/* Rewritten only when it differs: a file that is right keeps its date. */
	if (fd >= 0 && kw_read_fd(fd, 4096, &old, &old_len) == 0 && old_len == strlen(line) &&
	    memcmp(old, line, old_len) == 0)
		return 0;
	/* Public: readable by auditors who are not the broker's user. */
	if (kw_write_atomic_at(dfd, name, line, strlen(line), 0644) < 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return KW_ERR_IO;
	}
	return 0;
}

int
kw_audit_set_signing_key(struct kw_audit *a, const unsigned char seed[KW_AUDIT_SEED_LEN],
    char *err, size_t err_len)
{
	unsigned char *sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);

	if (!sk) {
		snprintf(err, err_len, "out of memory");
		return KW_ERR_NOMEM;
	}
	crypto_sign_seed_keypair(a->sign_pk, sk, seed);
	sodium_mprotect_readonly(sk);
	if (a->sign_sk)
		sodium_free(a->sign_sk);
	a->sign_sk = sk;
	return publish(a, err, err_len);
}

void
kw_audit_public_key(const struct kw_audit *a, char out[KW_AUDIT_PK_B64])
{
	if (a->sign_sk)
		kw_audit_pk_b64(a->sign_pk, out);
	else
		out[0] = '\0';
}

int
kw_audit_sign_head(struct kw_audit *a)
{
	struct kw_audit_msg msg;
	uint8_t sig[KW_AUDIT_SIG_LEN];
	sqlite3_stmt *ins = NULL;
	int rc;

	if (!a->sign_sk)
		return 0;
	kw_audit_head_message(a->pending_seq, a->pending_hash, &msg);
	kw_audit_sign(a, &msg, sig);
	/* Replace: a signature left past the end by records cut off goes. */
	if (kw_sql_statement(a->db, &ins, "INSERT OR REPLACE INTO audit_head_sig (seq, sig) "
	    "VALUES (?, ?)") < 0)
		return KW_ERR_AUDIT;
	sqlite3_bind_int64(ins, 1, a->pending_seq);
	sqlite3_bind_blob(ins, 2, sig, sizeof(sig), SQLITE_STATIC);
	rc = sqlite3_step(ins);
	kw_sql_done(ins);
	return rc == SQLITE_DONE ? 0 : KW_ERR_AUDIT;
}

int
kw_audit_put_anchor(struct kw_audit *a, long long first_seq, const uint8_t prev[KW_AUDIT_HASH_LEN],
    const char *ts, const char *note)
{
	struct kw_audit_msg msg;
	uint8_t sig[KW_AUDIT_SIG_LEN];

	if (!a->sign_sk)
		return kw_sql_exec(a->db, NULL, "INSERT OR REPLACE INTO audit_anchor (first_seq, "
		    "prev_hash, made_ts, note, sig) VALUES (?, ?, ?, ?, NULL)", "ibtt", first_seq,
		    prev, (size_t)KW_AUDIT_HASH_LEN, ts, note) < 0 ? KW_ERR_AUDIT : 0;
	kw_audit_anchor_message(first_seq, prev, &msg);
	kw_audit_sign(a, &msg, sig);
	return kw_sql_exec(a->db, NULL, "INSERT OR REPLACE INTO audit_anchor (first_seq, prev_hash, "
	    "made_ts, note, sig) VALUES (?, ?, ?, ?, ?)", "ibttb", first_seq, prev,
	    (size_t)KW_AUDIT_HASH_LEN, ts, note, sig, sizeof(sig)) < 0 ? KW_ERR_AUDIT : 0;
}

/* The signature stored for the head at seq (or the anchor at seq); 0, or -1 when none. */
static int
stored_sig(struct kw_audit *a, const char *sql, long long seq, uint8_t sig[KW_AUDIT_SIG_LEN])
{
	sqlite3_stmt *st = NULL;
	int r = -1;

	if (kw_sql_prepare(a->db, &st, sql, "i", seq) < 0)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == KW_AUDIT_SIG_LEN) {
		memcpy(sig, sqlite3_column_blob(st, 0), KW_AUDIT_SIG_LEN);
		r = 0;
	}
	kw_sql_done(st);
	return r;
}

/* True when a record exists at seq. */
static bool
has_record(struct kw_audit *a, long long seq)
{
	sqlite3_stmt *st = NULL;
	bool yes;

	if (kw_sql_prepare(a->db, &st, "SELECT 1 FROM audit_log WHERE seq = ?", "i", seq) < 0)
		return false;
	yes = sqlite3_step(st) == SQLITE_ROW;
	kw_sql_done(st);
	return yes;
}

bool
kw_audit_head_signed(struct kw_audit *a)
{
	uint8_t sig[KW_AUDIT_SIG_LEN];
	struct kw_audit_msg msg;

	if (!a->sign_sk || !a->db || a->last_seq == 0)
		return true;
	if (has_record(a, a->last_seq)) {
		kw_audit_head_message(a->last_seq, a->last_hash, &msg);
		return stored_sig(a, "SELECT sig FROM audit_head_sig WHERE seq = ?", a->last_seq,
		    sig) == 0 && kw_audit_sig_ok(&msg, sig, a->sign_pk);
	}
	/* Every record was pruned: the anchor is the head. */
	kw_audit_anchor_message(a->last_seq + 1, a->last_hash, &msg);
	return stored_sig(a, "SELECT sig FROM audit_anchor WHERE first_seq = ?", a->last_seq + 1,
	    sig) == 0 && kw_audit_sig_ok(&msg, sig, a->sign_pk);
}

/* A store in which nothing was ever signed, and no record says signing began. */
static bool
never_signed(struct kw_audit *a)
{
	sqlite3_stmt *st = NULL;
	bool none = false;

	if (kw_sql_prepare(a->db, &st, "SELECT NOT EXISTS (SELECT 1 FROM audit_head_sig) AND "
	    "NOT EXISTS (SELECT 1 FROM audit_anchor WHERE sig IS NOT NULL) AND "
	    "NOT EXISTS (SELECT 1 FROM audit_log WHERE action = 'audit.signing')", "") < 0)
		return false;
	if (sqlite3_step(st) == SQLITE_ROW)
		none = sqlite3_column_int(st, 0) != 0;
	kw_sql_done(st);
	return none;
}

/* Sign the newest anchor of a store written before signatures (it is where verify starts). */
static int
sign_old_anchor(struct kw_audit *a)
{
	struct kw_audit_msg msg;
	uint8_t sig[KW_AUDIT_SIG_LEN];
	sqlite3_stmt *st = NULL;
	long long first = 0;
	int rc;

	if (kw_sql_prepare(a->db, &st, "SELECT first_seq, prev_hash FROM audit_anchor "
	    "ORDER BY first_seq DESC LIMIT 1", "") < 0)
		return KW_ERR_AUDIT;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW &&
	    sqlite3_column_bytes(st, 1) == KW_AUDIT_HASH_LEN) {
		first = sqlite3_column_int64(st, 0);
		kw_audit_anchor_message(first, sqlite3_column_blob(st, 1), &msg);
	}
	kw_sql_done(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return KW_ERR_AUDIT;
	if (first == 0)
		return 0;
	kw_audit_sign(a, &msg, sig);
	return kw_sql_exec(a->db, NULL, "UPDATE audit_anchor SET sig = ? WHERE first_seq = ?",
	    "bi", sig, sizeof(sig), first) < 0 ? KW_ERR_AUDIT : 0;
}

int
kw_audit_signing_start(struct kw_audit *a, bool signed_before)
{
	if (!a->sign_sk || !a->db || kw_audit_head_signed(a))
		return 0;
	if (!signed_before && never_signed(a)) {
		/* Written before keywarden signed: sign it as it stands, and say so. */
		if (sign_old_anchor(a) < 0)
			return KW_ERR_AUDIT;
		a->signing_note = true;
		a->signing_from = a->last_seq;
		kw_log_info("audit store: signing its head from now on; records up to %lld were "
		    "written unsigned", a->last_seq);
		return 0;
	}
	kw_log_error("audit store: the head (record %lld) has no valid signature of this broker: "
	    "records may have been changed while it was down; verify will report it",
	    a->last_seq);
	a->unsigned_head_at = a->last_seq;
	return 0;
}

_Static_assert(KW_AUDIT_SEED_LEN == crypto_sign_SEEDBYTES, "Ed25519 seed size");
