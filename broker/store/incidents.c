/*
 * incidents.c - the incidents table (see incidents.h).
 */
#include "broker/store/incidents.h"
#include "broker/store/state_sqlite.h"
#include "common/errors.h"

int
kw_incident_insert(struct kw_state *st, const char *opened, long long opened_ms,
    const char *type, const char *subject, const json_t *actions, const json_t *details,
    long long *ret_id)
{
	_cleanup_free_ char *act = json_dumps(actions, JSON_COMPACT);
	_cleanup_free_ char *det = json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS);
	int r;

	if (!act || !det)
		return KW_ERR_NOMEM;
	if ((r = kw_sql_exec(st->db, NULL, "INSERT INTO incidents (opened_ts, opened_ms, type, "
	    "subject, status, actions, details) VALUES (?, ?, ?, ?, 'open', ?, ?)", "titttt",
	    opened, opened_ms, type, subject, act, det)) < 0)
		return r;
	*ret_id = sqlite3_last_insert_rowid(st->db);
	return 0;
}

int
kw_incident_set_actions(struct kw_state *st, long long id, const json_t *actions)
{
	_cleanup_free_ char *act = json_dumps(actions, JSON_COMPACT);
	int r, n = 0;

	if (!act)
		return KW_ERR_NOMEM;
	if ((r = kw_sql_exec(st->db, &n, "UPDATE incidents SET actions = ? WHERE id = ?", "ti",
	    act, id)) < 0)
		return r;
	return n > 0 ? 0 : KW_ERR_NOT_FOUND;
}

int
kw_incident_close(struct kw_state *st, long long id, const char *closed, const char *by,
    const char *note)
{
	sqlite3_stmt *q = NULL;
	int r, rc, n = 0;

	if ((r = kw_sql_exec(st->db, &n, "UPDATE incidents SET status = 'closed', closed_ts = ?, "
	    "closed_by = ?, close_note = ? WHERE id = ? AND status = 'open'", "ttti", closed, by,
	    note, id)) < 0)
		return r;
	if (n > 0)
		return 0;
	/* Not changed: closed already, or no such incident. */
	if ((r = kw_sql_prepare(st->db, &q, "SELECT 1 FROM incidents WHERE id = ?", "i", id)) < 0)
		return r;
	rc = sqlite3_step(q);
	kw_sql_done(q);
	return rc == SQLITE_ROW ? KW_ERR_INVALID : rc == SQLITE_DONE ? KW_ERR_NOT_FOUND : KW_ERR_IO;
}

/* A text column, or JSON null. */
static json_t *
text_or_null(sqlite3_stmt *q, int col)
{
	const char *text = (const char *)sqlite3_column_text(q, col);

	return text ? json_string(text) : json_null();
}

/* A JSON column, or def (new) when it does not parse. */
static json_t *
json_column(sqlite3_stmt *q, int col, json_t *(*def)(void))
{
	const char *text = (const char *)sqlite3_column_text(q, col);
	json_t *v = text ? json_loads(text, 0, NULL) : NULL;

	return v ? v : def();
}

static json_t *
row_object(sqlite3_stmt *q)
{
	const char *subject = (const char *)sqlite3_column_text(q, 3);

	return json_pack("{s:I, s:s, s:I, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o}",
	    "id", (json_int_t)sqlite3_column_int64(q, 0),
	    "opened", (const char *)sqlite3_column_text(q, 1),
	    "opened_ms", (json_int_t)sqlite3_column_int64(q, 7),
	    "type", (const char *)sqlite3_column_text(q, 2),
	    "subject", subject ? subject : "",
	    "status", (const char *)sqlite3_column_text(q, 4),
	    "actions", json_column(q, 5, json_array),
	    "details", json_column(q, 6, json_object),
	    "closed", text_or_null(q, 8),
	    "closed_by", text_or_null(q, 9),
	    "note", text_or_null(q, 10));
}

int
kw_incident_rows(struct kw_state *st, const char *subject, const char *status, long long id,
    json_t **ret_rows)
{
	sqlite3_stmt *q = NULL;
	json_t *arr = json_array(), *o;
	int r, rc;

	if (!arr)
		return KW_ERR_NOMEM;
	if ((r = kw_sql_prepare(st->db, &q, "SELECT id, opened_ts, type, subject, status, actions, "
	    "details, opened_ms, closed_ts, closed_by, close_note FROM incidents WHERE "
	    "(?1 IS NULL OR subject = ?1) AND (?2 <= 0 OR id = ?2) AND (?3 IS NULL OR status = ?3) "
	    "ORDER BY id", "tit", subject, id, status)) < 0) {
		json_decref(arr);
		return r;
	}
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (!(o = row_object(q)) || json_array_append_new(arr, o) < 0) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	kw_sql_done(q);
	if (rc != SQLITE_DONE) {
		json_decref(arr);
		return rc == SQLITE_NOMEM ? KW_ERR_NOMEM : KW_ERR_IO;
	}
	*ret_rows = arr;
	return 0;
}
