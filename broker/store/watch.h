/*
 * watch.h - whether chosen tables of state.db changed, for caches kept
 * outside the store (broker/accounts/cache.h keeps users, grants and roles).
 *
 * DESIGN: a cache is only as good as its invalidation, and an invalidation
 * call in each writing function is one a new function forgets.  So the
 * store itself reports: SQLite tells the watch of every row this
 * connection inserts, updates or deletes in a watched table
 * (sqlite3_update_hook), and of every commit and rollback -- whichever
 * function wrote, today's or tomorrow's.  A cache keeps what it read
 * together with the generation it read at, and drops it when the
 * generation moves on.
 *
 * Limits, from SQLite: a DELETE without a WHERE clause on a watched table
 * may be done by truncation, which bypasses the hook (no store function
 * empties users, grants or roles that way), and WITHOUT ROWID tables are
 * not reported (none is watched).  state.db has one writer, this broker.
 * Nothing else may set SQLite's update, commit or rollback hook on
 * state.db's connection: the watch would stop hearing of changes.
 */
#ifndef KW_STORE_WATCH_H
#define KW_STORE_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "common/macros.h"

struct kw_state;
struct kw_state_watch;

/*
 * Watch the tables named in tables (NULL-terminated; borrowed: it must
 * outlive the watch) of st.  One watch per store at a time: a second one
 * is refused with KW_ERR_BUSY (SQLite has one hook of each kind per
 * connection).  0, KW_ERR_BUSY or KW_ERR_NOMEM; free with
 * kw_state_watch_free (accepts NULL).
 */
int kw_state_watch_new(struct kw_state *st, const char *const *tables,
    struct kw_state_watch **ret_watch) KW_WUR KW_NONNULL(1, 2, 3);
void kw_state_watch_free(struct kw_state_watch *w);

/*
 * The generation of the watched tables: it moves on whenever one of them
 * may hold other rows than before -- at every row written, and at every
 * commit or rollback that follows such a write.  *ret_stable is false
 * while this connection holds uncommitted changes to a watched table:
 * what is read then may yet be rolled back, and must not be kept.
 */
uint64_t kw_state_watch_generation(const struct kw_state_watch *w, bool *ret_stable)
	KW_NONNULL(1, 2);

#endif
