/*
 * state.h - the broker's state store: users, grants, roles made from the
 * CLI, sessions, locks, second factors, keys' metadata and incidents.
 *
 * DESIGN: struct kw_state is opaque.  Everything a feature keeps is read
 * and written through named functions declared in the headers of broker/store/; their
 * SQLite implementation is the only code that includes sqlite3.h for
 * state.db (the audit trail keeps its own database, broker/audit/).  A
 * second store (a database shared by several brokers) implements the same
 * functions.
 *
 * Transactions follow the event loop's group commit: one turn transaction
 * holds every request of a loop turn, and each request runs in a nested
 * one that is kept or undone on its own (kw_state_request_*).  Both begin
 * lazily, at the first statement that writes: a turn (or a request) that
 * only reads takes no write lock and commits nothing.
 */
#ifndef KW_STATE_H
#define KW_STATE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/macros.h"

struct kw_state;

/*
 * Open or create dir/state.db and bring its schema up to date.  *ret_state
 * is the caller's (kw_state_close).  0, or KW_ERR_IO with the reason in err.
 */
int kw_state_open(const char *dir, struct kw_state **ret_state, char *err, size_t err_len)
	KW_WUR KW_NONNULL(1, 2, 3);

/* Close (a turn still open is rolled back).  Accepts NULL. */
void kw_state_close(struct kw_state *st);

/*
 * Open a turn: its first write begins its transaction (BEGIN IMMEDIATE); a
 * write that cannot begin it fails (KW_ERR_IO, logged).  0.
 */
int kw_state_turn_begin(struct kw_state *st) KW_NONNULL(1);
/* Whether the open turn wrote (its transaction began). */
bool kw_state_turn_wrote(struct kw_state *st) KW_NONNULL(1);
/* Close the turn, committing if it wrote.  0, or KW_ERR_IO (logged; rolled back). */
int kw_state_turn_commit(struct kw_state *st) KW_NONNULL(1);
/* Undo the turn, if one is open. */
void kw_state_turn_rollback(struct kw_state *st) KW_NONNULL(1);
/* Whether a transaction is open (a turn, or a request outside any turn). */
bool kw_state_in_transaction(struct kw_state *st) KW_NONNULL(1);

/*
 * One request's changes: begin, then keep or undo.  Inside a turn they nest
 * and land with the turn's commit; outside one, keeping commits.  A
 * request that wrote nothing has nothing to keep or undo.  0 or KW_ERR_IO.
 */
int kw_state_request_begin(struct kw_state *st) KW_WUR KW_NONNULL(1);
int kw_state_request_keep(struct kw_state *st) KW_WUR KW_NONNULL(1);
void kw_state_request_undo(struct kw_state *st) KW_NONNULL(1);

/* Push deleted bytes out of the write-ahead log (after an erasure committed). */
void kw_state_scrub(struct kw_state *st) KW_NONNULL(1);

/*
 * Small named values the broker remembers between starts ("audit_head",
 * "config_sha256").  get: 0 with out filled, KW_ERR_NOT_FOUND, KW_ERR_IO.
 * set: 0 or KW_ERR_IO.
 */
int kw_state_meta_get(struct kw_state *st, const char *key, char *out, size_t out_len)
	KW_WUR KW_NONNULL(1, 2, 3);
int kw_state_meta_set(struct kw_state *st, const char *key, const char *value)
	KW_WUR KW_NONNULL(1, 2, 3);

#endif
