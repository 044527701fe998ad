/*
 * incidents.c - the incident store (see incidents.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/audit/audit.h"
#include "broker/alerts/incidents.h"
#include "client/keywarden.h"
#include "broker/store/sql.h"

const char *
kw_incident_id_text(long long id, char buf[KW_INCIDENT_ID_SIZE])
{
	snprintf(buf, KW_INCIDENT_ID_SIZE, "INC-%06lld", id);
	return buf;
}

static int
parse_digits(const char *s, long long *ret_id)
{
	char *end;
	long long v;

	if (*s < '0' || *s > '9' || strlen(s) > 12)
		return KW_ERR_INVALID;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < 1)
		return KW_ERR_INVALID;
	*ret_id = v;
	return 0;
}

int
kw_incident_id_parse(const json_t *v, long long *ret_id)
{
	const char *s;

	if (json_is_integer(v)) {
		if (json_integer_value(v) < 1)
			return KW_ERR_INVALID;
		*ret_id = json_integer_value(v);
		return 0;
	}
	if (!(s = json_string_value(v)))
		return KW_ERR_INVALID;
	if (strncmp(s, "INC-", 4) == 0)
		s += 4;
	return parse_digits(s, ret_id);
}

int
kw_incident_open(sqlite3 *db, const char *opened, long long opened_ms, const char *type,
    const char *subject, const json_t *actions, const json_t *details, long long *ret_id)
{
	_cleanup_free_ char *act = json_dumps(actions, JSON_COMPACT);
	_cleanup_free_ char *det = json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS);
	int r;

	if (!act || !det)
		return KW_ERR_NOMEM;
	if ((r = kw_sql_exec(db, NULL, "INSERT INTO incidents (opened_ts, opened_ms, type, subject, "
	    "status, actions, details) VALUES (?, ?, ?, ?, 'open', ?, ?)", "titttt", opened,
	    opened_ms, type, subject, act, det)) < 0)
		return r;
	*ret_id = sqlite3_last_insert_rowid(db);
	return 0;
}

int
kw_incident_set_actions(sqlite3 *db, long long id, const json_t *actions)
{
	_cleanup_free_ char *act = json_dumps(actions, JSON_COMPACT);
	int r, n = 0;

	if (!act)
		return KW_ERR_NOMEM;
	if ((r = kw_sql_exec(db, &n, "UPDATE incidents SET actions = ? WHERE id = ?", "ti", act,
	    id)) < 0)
		return r;
	return n > 0 ? 0 : KW_ERR_NOT_FOUND;
}

/* A JSON column, or def (new) when it does not parse. */
static json_t *
json_column(sqlite3_stmt *st, int col, json_t *(*def)(void))
{
	const char *text = (const char *)sqlite3_column_text(st, col);
	json_t *v = text ? json_loads(text, 0, NULL) : NULL;

	return v ? v : def();
}

/* The INC object of the current row (id, opened_ts, type, subject, status, actions, details). */
static json_t *
row_object(sqlite3_stmt *st, struct kw_audit *a)
{
	const char *subject = (const char *)sqlite3_column_text(st, 3);
	char idbuf[KW_INCIDENT_ID_SIZE], name[256];

	/* The name, while the pseudonym still maps to one (not erased). */
	if (!subject || kw_audit_subject_name(a, subject, name, sizeof(name)) < 0)
		snprintf(name, sizeof(name), "%s", subject ? subject : "");
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o}",
	    "id", kw_incident_id_text(sqlite3_column_int64(st, 0), idbuf),
	    "opened", (const char *)sqlite3_column_text(st, 1),
	    "type", (const char *)sqlite3_column_text(st, 2),
	    "user", name,
	    "status", (const char *)sqlite3_column_text(st, 4),
	    "actions", json_column(st, 5, json_array),
	    "details", json_column(st, 6, json_object));
}

#define INCIDENT_COLUMNS "id, opened_ts, type, subject, status, actions, details, opened_ms"

int
kw_incident_list(sqlite3 *db, struct kw_audit *a, const char *subject, json_t **ret_array)
{
	sqlite3_stmt *st = NULL;
	json_t *arr = json_array(), *o;
	int r, rc;

	if (!arr)
		return KW_ERR_NOMEM;
	if ((r = kw_sql_prepare(db, &st, "SELECT " INCIDENT_COLUMNS " FROM incidents WHERE "
	    "?1 IS NULL OR subject = ?1 ORDER BY id", "t", subject)) < 0) {
		json_decref(arr);
		return r;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (!(o = row_object(st, a)) || json_array_append_new(arr, o) < 0) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		json_decref(arr);
		return rc == SQLITE_NOMEM ? KW_ERR_NOMEM : KW_ERR_IO;
	}
	*ret_array = arr;
	return 0;
}

int
kw_incident_get(sqlite3 *db, struct kw_audit *a, long long id, json_t **ret_incident,
    long long *ret_opened_ms, char *ret_subject)
{
	sqlite3_stmt *st = NULL;
	json_t *o = NULL;
	int r, rc;

	if ((r = kw_sql_prepare(db, &st, "SELECT " INCIDENT_COLUMNS " FROM incidents WHERE id = ?",
	    "i", id)) < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		o = row_object(st, a);
		*ret_opened_ms = sqlite3_column_int64(st, 7);
		if (ret_subject)
			snprintf(ret_subject, KW_PSEUDONYM_SIZE, "%s",
			    (const char *)sqlite3_column_text(st, 3));
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return KW_ERR_NOT_FOUND;
	if (rc != SQLITE_ROW)
		return KW_ERR_IO;
	if (!o)
		return KW_ERR_NOMEM;
	*ret_incident = o;
	return 0;
}
