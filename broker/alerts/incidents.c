/*
 * incidents.c - incidents as administrators read them (see incidents.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/audit/audit.h"
#include "broker/alerts/incidents.h"
#include "broker/store/incidents.h"
#include "client/keywarden.h"

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

/* An incident row as an administrator reads it: its INC id, and its user by
   name while the pseudonym still maps to one (not erased). */
static int
present(struct kw_audit *a, json_t *row)
{
	const char *subject = json_string_value(json_object_get(row, "subject"));
	char idbuf[KW_INCIDENT_ID_SIZE], name[256];

	if (!subject || kw_audit_subject_name(a, subject, name, sizeof(name)) < 0)
		snprintf(name, sizeof(name), "%s", subject ? subject : "");
	kw_incident_id_text(json_integer_value(json_object_get(row, "id")), idbuf);
	if (json_object_set_new(row, "id", json_string(idbuf)) < 0 ||
	    json_object_set_new(row, "user", json_string(name)) < 0)
		return KW_ERR_NOMEM;
	json_object_del(row, "subject");
	json_object_del(row, "opened_ms");
	return 0;
}

int
kw_incident_list(struct kw_state *st, struct kw_audit *a, const char *subject,
    const char *status, json_t **ret_array)
{
	json_t *rows = NULL, *row;
	size_t i;
	int r;

	if ((r = kw_incident_rows(st, subject, status, 0, &rows)) < 0)
		return r;
	json_array_foreach(rows, i, row)
		if ((r = present(a, row)) < 0) {
			json_decref(rows);
			return r;
		}
	*ret_array = rows;
	return 0;
}

int
kw_incident_get(struct kw_state *st, struct kw_audit *a, long long id, json_t **ret_incident,
    long long *ret_opened_ms, char *ret_subject)
{
	json_t *rows = NULL, *row;
	int r;

	if ((r = kw_incident_rows(st, NULL, NULL, id, &rows)) < 0)
		return r;
	if (!(row = json_incref(json_array_get(rows, 0)))) {
		json_decref(rows);
		return KW_ERR_NOT_FOUND;
	}
	json_decref(rows);
	*ret_opened_ms = json_integer_value(json_object_get(row, "opened_ms"));
	if (ret_subject)
		snprintf(ret_subject, KW_PSEUDONYM_SIZE, "%s",
		    json_string_value(json_object_get(row, "subject")));
	if ((r = present(a, row)) < 0) {
		json_decref(row);
		return r;
	}
	*ret_incident = row;
	return 0;
}
