/*
 * users.c - users and grants in state.db (see users.h).
 */
#include <stdio.h>
#include <string.h>

#include "broker/store/state_sqlite.h"
#include "common/clock.h"
#include "client/keywarden.h"
#include "broker/store/sql.h"
#include "broker/store/users.h"

static int
find(sqlite3 *db, const char *sql, const char *types, long long id, const char *name,
    struct kw_user *ret_user)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	r = types[0] == 'i' ? kw_sql_prepare(db, &st, sql, "i", id) :
	    kw_sql_prepare(db, &st, sql, "t", name);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		ret_user->uid = (uid_t)sqlite3_column_int64(st, 0);
		snprintf(ret_user->name, sizeof(ret_user->name), "%s",
		    (const char *)sqlite3_column_text(st, 1));
		r = 0;
	} else {
		r = rc == SQLITE_DONE ? KW_ERR_NOT_FOUND : KW_ERR_IO;
	}
	kw_sql_done(st);
	return r;
}

int
kw_user_by_uid(struct kw_state *state, uid_t uid, struct kw_user *ret_user)
{
	sqlite3 *db = state->db;
	return find(db, "SELECT uid, name FROM users WHERE uid = ?", "i", (long long)uid, NULL,
	    ret_user);
}

int
kw_user_by_name(struct kw_state *state, const char *name, struct kw_user *ret_user)
{
	sqlite3 *db = state->db;
	return find(db, "SELECT uid, name FROM users WHERE name = ?", "t", 0, name, ret_user);
}

int
kw_user_insert(struct kw_state *state, uid_t uid, const char *name, const char *by)
{
	sqlite3 *db = state->db;
	char now[KW_RFC3339_LEN];

	kw_now_rfc3339(now);
	return kw_sql_exec(db, NULL, "INSERT INTO users (uid, name, created, created_by) "
	    "VALUES (?, ?, ?, ?)", "ittt", (long long)uid, name, now, by);
}

int
kw_user_delete(struct kw_state *state, uid_t uid, int *ret_grants)
{
	sqlite3 *db = state->db;
	int r, n = 0, gone = 0;

	if ((r = kw_sql_exec(db, &n, "DELETE FROM grants WHERE uid = ?", "i", (long long)uid)) < 0 ||
	    (r = kw_sql_exec(db, &gone, "DELETE FROM users WHERE uid = ?", "i", (long long)uid)) < 0)
		return r;
	if (gone == 0)
		return KW_ERR_NOT_FOUND;
	if (ret_grants)
		*ret_grants = n;
	return 0;
}

int
kw_user_roles(struct kw_state *state, uid_t uid, json_t **ret_array)
{
	sqlite3 *db = state->db;
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = kw_sql_prepare(db, &st, "SELECT role FROM grants WHERE uid = ? ORDER BY role",
	    "i", (long long)uid)) < 0)
		return r;
	r = kw_sql_column_strings(st, ret_array);
	kw_sql_done(st);
	return r;
}

static int
user_row_json(struct kw_state *state, sqlite3_stmt *st, json_t **ret_obj)
{
	uid_t uid = (uid_t)sqlite3_column_int64(st, 0);
	json_t *roles = NULL;
	int r;

	if ((r = kw_user_roles(state, uid, &roles)) < 0)
		return r;
	*ret_obj = json_pack("{s:s, s:I, s:o, s:s, s:s}",
	    "user", (const char *)sqlite3_column_text(st, 1),
	    "uid", (json_int_t)uid,
	    "roles", roles,
	    "created", (const char *)sqlite3_column_text(st, 2),
	    "created_by", (const char *)sqlite3_column_text(st, 3));
	return *ret_obj ? 0 : KW_ERR_NOMEM;
}

#define USER_COLUMNS "SELECT uid, name, created, created_by FROM users"

int
kw_user_json(struct kw_state *state, uid_t uid, json_t **ret_obj)
{
	sqlite3 *db = state->db;
	sqlite3_stmt *st = NULL;
	int r, rc;

	if ((r = kw_sql_prepare(db, &st, USER_COLUMNS " WHERE uid = ?", "i", (long long)uid)) < 0)
		return r;
	rc = sqlite3_step(st);
	r = rc == SQLITE_ROW ? user_row_json(state, st, ret_obj) :
	    rc == SQLITE_DONE ? KW_ERR_NOT_FOUND : KW_ERR_IO;
	kw_sql_done(st);
	return r;
}

int
kw_user_list_json(struct kw_state *state, json_t **ret_array)
{
	sqlite3 *db = state->db;
	sqlite3_stmt *st = NULL;
	json_t *a = json_array(), *u;
	int r = 0, rc;

	if (!a)
		return KW_ERR_NOMEM;
	if ((r = kw_sql_prepare(db, &st, USER_COLUMNS " ORDER BY name", "")) < 0) {
		json_decref(a);
		return r;
	}
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((r = user_row_json(state, st, &u)) == 0 && json_array_append_new(a, u) < 0)
			r = KW_ERR_NOMEM;
	if (r == 0 && rc != SQLITE_DONE)
		r = KW_ERR_IO;
	kw_sql_done(st);
	if (r < 0) {
		json_decref(a);
		return r;
	}
	*ret_array = a;
	return 0;
}

int
kw_grant_insert(struct kw_state *state, uid_t uid, const char *role, const char *by)
{
	sqlite3 *db = state->db;
	char now[KW_RFC3339_LEN];

	kw_now_rfc3339(now);
	return kw_sql_exec(db, NULL, "INSERT INTO grants (uid, role, granted, granted_by) "
	    "VALUES (?, ?, ?, ?)", "ittt", (long long)uid, role, now, by);
}

int
kw_grant_delete(struct kw_state *state, uid_t uid, const char *role)
{
	sqlite3 *db = state->db;
	int r, n = 0;

	if ((r = kw_sql_exec(db, &n, "DELETE FROM grants WHERE uid = ? AND role = ?", "it",
	    (long long)uid, role)) < 0)
		return r;
	return n == 0 ? KW_ERR_NOT_FOUND : 0;
}

int
kw_grant_holders(struct kw_state *state, const char *role, json_t **ret_array)
{
	sqlite3 *db = state->db;
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = kw_sql_prepare(db, &st, "SELECT users.name FROM grants JOIN users USING (uid) "
	    "WHERE grants.role = ? ORDER BY users.name", "t", role)) < 0)
		return r;
	r = kw_sql_column_strings(st, ret_array);
	kw_sql_done(st);
	return r;
}

int
kw_grant_roles(struct kw_state *state, json_t **ret_array)
{
	sqlite3 *db = state->db;
	sqlite3_stmt *st = NULL;
	int r;

	if ((r = kw_sql_prepare(db, &st, "SELECT DISTINCT role FROM grants ORDER BY role", "")) < 0)
		return r;
	r = kw_sql_column_strings(st, ret_array);
	kw_sql_done(st);
	return r;
}

int
kw_grant_delete_role(struct kw_state *state, const char *role, int *ret_n)
{
	sqlite3 *db = state->db;
	return kw_sql_exec(db, ret_n, "DELETE FROM grants WHERE role = ?", "t", role);
}

int
kw_user_forget_author(struct kw_state *state, const char *name)
{
	/* Who made a user, role, grant or lock, or closed an incident, is personal data too. */
	static const char *const authored[] = {
		"UPDATE users SET created_by = '(erased)' WHERE created_by = ?",
		"UPDATE roles SET created_by = '(erased)' WHERE created_by = ?",
		"UPDATE grants SET granted_by = '(erased)' WHERE granted_by = ?",
		"UPDATE locks SET locked_by = '(erased)' WHERE locked_by = ?",
		"UPDATE incidents SET closed_by = '(erased)' WHERE closed_by = ?",
	};
	int r;

	for (size_t i = 0; i < KW_ELEMENTSOF(authored); i++)
		if ((r = kw_sql_exec(state->db, NULL, authored[i], "t", name)) < 0)
			return r;
	return 0;
}
