/*
 * roles.c - stored roles in state.db (see roles.h).
 */
#include <stdlib.h>

#include "broker/store/roles.h"
#include "broker/store/state_sqlite.h"
#include "common/clock.h"
#include "common/errors.h"

int
kw_stored_role_get(struct kw_state *st, const char *name, json_t **ret_perms)
{
	sqlite3_stmt *q = NULL;
	int r, rc;

	if ((r = kw_sql_prepare(st->db, &q, "SELECT permissions FROM roles WHERE name = ?", "t",
	    name)) < 0)
		return r;
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		json_t *perms = json_loads((const char *)sqlite3_column_text(q, 0), 0, NULL);
		r = json_is_array(perms) ? 0 : KW_ERR_IO;
		if (r == 0)
			*ret_perms = perms;
		else
			json_decref(perms);
	} else {
		r = rc == SQLITE_DONE ? KW_ERR_NOT_FOUND : KW_ERR_IO;
	}
	kw_sql_done(q);
	return r;
}

int
kw_stored_role_names(struct kw_state *st, json_t **ret_names)
{
	sqlite3_stmt *q = NULL;
	int r;

	if ((r = kw_sql_prepare(st->db, &q, "SELECT name FROM roles", "")) < 0)
		return r;
	r = kw_sql_column_strings(q, ret_names);
	kw_sql_done(q);
	return r;
}

int
kw_stored_role_insert(struct kw_state *st, const char *name, json_t *permissions,
    const char *by)
{
	char now[KW_RFC3339_LEN];
	char *text;
	int r;

	if (!(text = json_dumps(permissions, JSON_COMPACT)))
		return KW_ERR_NOMEM;
	kw_now_rfc3339(now);
	r = kw_sql_exec(st->db, NULL, "INSERT INTO roles (name, permissions, created, created_by) "
	    "VALUES (?, ?, ?, ?)", "tttt", name, text, now, by);
	free(text);
	return r;
}

int
kw_stored_role_delete(struct kw_state *st, const char *name)
{
	int r, n = 0;

	if ((r = kw_sql_exec(st->db, &n, "DELETE FROM roles WHERE name = ?", "t", name)) < 0)
		return r;
	return n == 0 ? KW_ERR_NOT_FOUND : 0;
}
