/*
 * watch.c - SQLite's change hooks on state.db, counted (see watch.h).
 *
 * The hooks run inside sqlite3_step on the loop's thread (the only one
 * that uses state.db), so plain fields suffice.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/store/state_sqlite.h"
#include "broker/store/watch.h"
#include "common/errors.h"

struct kw_state_watch {
	sqlite3 *db;
	const char *const *tables;
	uint64_t gen;
	bool dirty;	/* a watched table changed since the last commit or rollback */
};

static void
on_update(void *data, int what, const char *db_name, const char *table, sqlite3_int64 rowid)
{
	struct kw_state_watch *w = data;

	(void)what;
	(void)db_name;
	(void)rowid;
	for (const char *const *t = w->tables; *t; t++)
		if (strcmp(*t, table) == 0) {
			w->gen++;
			w->dirty = true;
			return;
		}
}

/* About to commit: what a read returns from now on is what lands.  Should the
   commit fail after all, the rollback that follows moves the generation on. */
static int
on_commit(void *data)
{
	struct kw_state_watch *w = data;

	if (w->dirty) {
		w->dirty = false;
		w->gen++;
	}
	return 0;
}

/* Also after a failed commit (dirty was cleared): always a new generation. */
static void
on_rollback(void *data)
{
	struct kw_state_watch *w = data;

	w->dirty = false;
	w->gen++;
}

int
kw_state_watch_new(struct kw_state *st, const char *const *tables,
    struct kw_state_watch **ret_watch)
{
	struct kw_state_watch *w;
	void *prev;

	if (!(w = calloc(1, sizeof(*w))))
		return KW_ERR_NOMEM;
	w->db = st->db;
	w->tables = tables;
	w->gen = 1;
	if ((prev = sqlite3_update_hook(w->db, on_update, w))) {
		/* Someone watches already: theirs stays, ours is refused. */
		(void)sqlite3_update_hook(w->db, on_update, prev);
		free(w);
		return KW_ERR_BUSY;
	}
	(void)sqlite3_commit_hook(w->db, on_commit, w);
	(void)sqlite3_rollback_hook(w->db, on_rollback, w);
	*ret_watch = w;
	return 0;
}

void
kw_state_watch_free(struct kw_state_watch *w)
{
	if (!w)
		return;
	(void)sqlite3_update_hook(w->db, NULL, NULL);
	(void)sqlite3_commit_hook(w->db, NULL, NULL);
	(void)sqlite3_rollback_hook(w->db, NULL, NULL);
	free(w);
}

uint64_t
kw_state_watch_generation(const struct kw_state_watch *w, bool *ret_stable)
{
	*ret_stable = !w->dirty;
	return w->gen;
}
