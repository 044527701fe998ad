/*
 * batch.h - group commit.  The requests answered in one turn of the event
 * loop share one audit.db transaction and one state.db transaction; their
 * replies wait here until both committed, then go out together.  If the
 * audit commit fails, every reply of the turn becomes audit_unavailable
 * and the state changes are rolled back: nothing is answered that is not
 * on disk, and nothing changes that was not recorded.
 */
#ifndef KW_BATCH_H
#define KW_BATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/macros.h"

struct kw_broker;
struct kw_conn;

typedef void (*kw_after_commit_fn)(struct kw_broker *b);

struct kw_batch_entry {
	struct kw_conn *conn;	/* NULL once the connection closed */
	json_t *reply;		/* owned */
	bool close;		/* close the connection after this reply */
	bool hello;		/* the reply completes a handshake */
	kw_after_commit_fn after;	/* work that may only follow the commit, or NULL */
};

/* A refusal the monitor looks at when the turn ends (see kw_batch_note_refusal). */
struct kw_batch_refusal {
	char user[65];
	uid_t uid;
	char action[48];
	char result[8];
};

struct kw_batch {
	struct kw_batch_entry *e;
	size_t n, cap;
	struct kw_batch_refusal *rf;
	size_t n_rf, cap_rf;
	bool open;		/* transactions begun */
	bool audit_failed;	/* the audit store refused to begin or dropped the batch */
	bool write_failed;	/* a record of this turn could not be written */
	bool failing;		/* the last commit failed (for the alert on recovery) */
	int last_result;	/* what the last kw_batch_commit returned */
	long long saved_head;	/* the audit head last written to state.db */
};

/* Begin the turn's transactions if they are not open.  Never fails: a store
   that cannot begin makes kw_batch_audit_ok false, so every answer is refused. */
void kw_batch_enter(struct kw_broker *b) KW_NONNULL(1);

/* A record of this turn could not be written (its request was refused). */
void kw_batch_note_write_failure(struct kw_broker *b) KW_NONNULL(1);

/* Whether records can still be written in this batch. */
bool kw_batch_audit_ok(const struct kw_broker *b) KW_NONNULL(1);

/*
 * Remember a recorded refusal for the monitor.  It runs at the end of the
 * turn, before the commit, so the locks and alert records it may write land
 * with the turn and are not undone with the refused request's savepoint.
 */
void kw_batch_note_refusal(struct kw_broker *b, const char *user, uid_t uid,
    const char *action, const char *result) KW_NONNULL(1, 2, 4, 5);

/* Hold reply (reference taken) for conn until the commit.  0 or KW_ERR_NOMEM. */
int kw_batch_push(struct kw_broker *b, struct kw_conn *conn, json_t *reply, bool close,
    bool hello, kw_after_commit_fn after) KW_NONNULL(1, 2, 3);

/*
 * Commit the audit transaction, then state.  0, KW_ERR_AUDIT (nothing
 * landed) or KW_ERR_IO (records landed, state did not).  Held replies are
 * rewritten to say so; kw_batch_take hands them over.
 */
int kw_batch_commit(struct kw_broker *b) KW_NONNULL(1);

/* The held entries (the caller delivers and frees them with kw_batch_clear). */
struct kw_batch_entry *kw_batch_entries(struct kw_broker *b, size_t *ret_n) KW_NONNULL(1, 2);
void kw_batch_clear(struct kw_broker *b) KW_NONNULL(1);

/* Release the batch's memory at exit (after a last commit).  */
void kw_batch_free(struct kw_broker *b) KW_NONNULL(1);

/* A connection closed: its held replies go nowhere. */
void kw_batch_forget_conn(struct kw_broker *b, const struct kw_conn *conn) KW_NONNULL(1, 2);

#endif
