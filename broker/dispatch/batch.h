/*
 * batch.h - group commit.  The requests answered in one turn of the event
 * loop share one audit.db transaction and one state transaction; their
 * replies wait here until both committed, then go out together.  If the
 * audit commit fails, every reply of the turn becomes audit_unavailable
 * and the state changes are rolled back: nothing is answered that is not
 * on disk, and nothing changes that was not recorded.  The state store
 * begins its part at the turn's first write (broker/store/state.h): a turn
 * that changed nothing there commits nothing there.
 *
 * Features watch the turns through observers (alerts counts refusals and
 * holds its mail until the records it speaks of are on disk); the batch
 * knows none of them by name.
 */
#ifndef KW_BATCH_H
#define KW_BATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/macros.h"

struct kw_peer;
struct kw_services;

typedef void (*kw_after_commit_fn)(struct kw_services *svc);

struct kw_batch_entry {
	struct kw_peer *peer;	/* NULL once the connection closed */
	json_t *reply;		/* owned */
	bool close;		/* close the connection after this reply */
	bool hello;		/* the reply completes a handshake */
	kw_after_commit_fn after;	/* work that may only follow the commit, or NULL */
};

/* A recorded refusal, as observers see it when the turn ends. */
struct kw_batch_refusal {
	char user[65];		/* whom it counts against (a name, never "") */
	uid_t uid;		/* that user's uid: the caller's, or a registered user's */
	char action[48];
	char result[8];		/* "denied" or "error" */
};

/* The audit store's room, as its last check found it (broker/audit/space.c). */
struct kw_batch_space {
	bool low;		/* less free than security.audit.minFreeSpace */
	long long free_mb;	/* megabytes free for the data directory */
	long long min_mb;	/* security.audit.minFreeSpace */
	const char *dir;	/* the data directory */
};

/*
 * What an observer is told.  Every callback may be NULL; data is passed
 * back.  All run on the event loop thread.
 */
struct kw_batch_observer {
	/* A turn begins (records may follow). */
	void (*turn_begin)(void *data);
	/* Before the commit, once per refusal recorded in the turn: what the
	   observer writes now (records, locks) lands with the turn. */
	void (*refused)(void *data, const struct kw_batch_refusal *rf);
	/* After the commit: landed tells whether the turn's records are on disk. */
	void (*turn_end)(void *data, bool landed);
	/* The audit store started failing (why) or recovered (why NULL). */
	void (*audit_state)(void *data, const char *why);
	/* The audit store's free space fell below the watermark (sp->low) or rose
	   above it again; inside a turn, so records written now land with it. */
	void (*audit_space)(void *data, const struct kw_batch_space *sp);
	void *data;
};

struct kw_batch {
	struct kw_services *svc;	/* borrowed */
	struct kw_batch_entry *e;
	size_t n, cap;
	struct kw_batch_refusal *rf;
	size_t n_rf, cap_rf;
	struct kw_batch_observer obs[4];
	size_t n_obs;
	bool open;		/* transactions begun */
	bool audit_failed;	/* the audit store refused to begin or dropped the batch */
	bool write_failed;	/* a record of this turn could not be written */
	bool failing;		/* the last commit failed (for the alert on recovery) */
	long long saved_head;	/* the audit head last written to the state store */
};

/* Watch the turns (copied).  0, or KW_ERR_NOMEM when the observer slots are full. */
int kw_batch_observe(struct kw_batch *t, const struct kw_batch_observer *o) KW_WUR KW_NONNULL(1, 2);

/* Begin the turn's transactions if they are not open.  Never fails: a store
   that cannot begin makes kw_batch_audit_ok false, so every answer is refused. */
void kw_batch_enter(struct kw_batch *t) KW_NONNULL(1);

/* A record of this turn could not be written (its request was refused). */
void kw_batch_note_write_failure(struct kw_batch *t) KW_NONNULL(1);

/* Tell the observers the audit store's room changed (call inside a turn). */
void kw_batch_note_audit_space(struct kw_batch *t, const struct kw_batch_space *sp)
	KW_NONNULL(1, 2);

/* Whether records can still be written in this batch. */
bool kw_batch_audit_ok(const struct kw_batch *t) KW_NONNULL(1);

/*
 * Remember a recorded refusal for the observers.  They see it at the end of
 * the turn, before the commit, so the locks and alert records they may
 * write land with the turn and are not undone with the refused request's
 * savepoint.
 */
void kw_batch_note_refusal(struct kw_batch *t, const char *user, uid_t uid,
    const char *action, const char *result) KW_NONNULL(1, 2, 4, 5);

/* Hold reply (reference taken) for peer until the commit.  0 or KW_ERR_NOMEM. */
int kw_batch_push(struct kw_batch *t, struct kw_peer *peer, json_t *reply, bool close,
    bool hello, kw_after_commit_fn after) KW_NONNULL(1, 2, 3);

/*
 * Commit the audit transaction, then state.  0, KW_ERR_AUDIT (nothing
 * landed) or KW_ERR_IO (records landed, state did not).  Held replies are
 * rewritten to say so; kw_batch_entries hands them over.
 */
int kw_batch_commit(struct kw_batch *t) KW_NONNULL(1);

/* The held entries (the caller delivers them, then calls kw_batch_clear). */
struct kw_batch_entry *kw_batch_entries(struct kw_batch *t, size_t *ret_n) KW_NONNULL(1, 2);
void kw_batch_clear(struct kw_batch *t) KW_NONNULL(1);

/* Release the batch's memory at exit (after a last commit).  */
void kw_batch_free(struct kw_batch *t) KW_NONNULL(1);

/* A connection closed: its held replies go nowhere. */
void kw_batch_forget_peer(struct kw_batch *t, const struct kw_peer *peer) KW_NONNULL(1, 2);

#endif
