/*
 * op_incident.c - incident.list, incident.report and incident.close
 * (admin; the request table checks the rights).
 */
#include <stdio.h>
#include <string.h>

#include "broker/alerts/ops.h"
#include "broker/audit/audit.h"
#include "broker/alerts/incidents.h"
#include "client/keywarden.h"
#include "broker/dispatch/dispatch.h"
#include "common/clock.h"
#include "common/escape.h"

/* The report's timeline: the user's records from an hour before to an hour after. */
#define TIMELINE_SPAN_MS	(3600LL * 1000)
#define TIMELINE_MAX		10000

/* The most a closing note holds (it is shown in tables and stored in the trail). */
#define NOTE_MAX	500

int
kw_op_incident_list(struct kw_call *call, json_t **ret_result)
{
	const char *state = kw_arg_str(call->args, "state");
	json_t *list = NULL;
	int r;

	if (json_object_get(call->args, "state") &&
	    (!state || (strcmp(state, "open") != 0 && strcmp(state, "closed") != 0))) {
		snprintf(call->msg, sizeof(call->msg), "\"state\" must be open or closed");
		return KW_ERR_BAD_REQUEST;
	}
	if ((r = kw_incident_list(call->svc->state, call->svc->audit, NULL, state, &list)) < 0)
		return r;
	if (state)
		json_object_set_new(call->meta, "state", json_string(state));
	*ret_result = json_pack("{s:o}", "incidents", list);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}

/*
 * Close an incident with a note saying what was done about it: the note,
 * who closed it and when are kept with the incident and in its record.
 */
int
kw_op_incident_close(struct kw_call *call, json_t **ret_result)
{
	struct kw_services *svc = call->svc;
	const char *note = kw_arg_str(call->args, "note");
	char when[KW_RFC3339_LEN], idbuf[KW_INCIDENT_ID_SIZE];
	json_t *inc = NULL;
	long long id, opened_ms;
	int r;

	if (kw_incident_id_parse(json_object_get(call->args, "id"), &id) < 0) {
		snprintf(call->msg, sizeof(call->msg), "\"id\" must name an incident, such as "
		    "INC-000001");
		return KW_ERR_BAD_REQUEST;
	}
	/* The record names the incident, as incident.open did. */
	snprintf(call->res_buf, sizeof(call->res_buf), "incident/%s",
	    kw_incident_id_text(id, idbuf));
	call->resource = call->res_buf;
	/* One line of printable text: it reaches terminals and the trail as it is. */
	if (!note || !*note || strlen(note) > NOTE_MAX || kw_escaped_len(note) != strlen(note)) {
		snprintf(call->msg, sizeof(call->msg), "\"note\" must be one line of 1 to %d "
		    "characters without control characters", NOTE_MAX);
		return KW_ERR_INVALID;
	}
	kw_now_rfc3339(when);
	r = kw_incident_close(svc->state, id, when, call->caller->user, note);
	if (r == KW_ERR_NOT_FOUND)
		snprintf(call->msg, sizeof(call->msg), "no incident %s", idbuf);
	else if (r == KW_ERR_INVALID)
		snprintf(call->msg, sizeof(call->msg), "%s is closed already", idbuf);
	if (r < 0 || (r = kw_incident_get(svc->state, svc->audit, id, &inc, &opened_ms, NULL)) < 0)
		return r;
	json_object_set_new(call->meta, "note", json_string(note));
	*ret_result = json_pack("{s:o}", "incident", inc);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}

/* Room for the timeline in one reply frame (64 KiB with the incident and subjects). */
#define TIMELINE_BYTES		(40 * 1024)

/*
 * Keep the records nearest the opening that fit in a reply: start at the
 * first record at or after it and grow outwards, one each side in turn.
 */
static int
fit_reply(json_t *records, long long opened_ms, bool *ret_truncated)
{
	size_t n = json_array_size(records), lo, hi, at = 0, bytes = 0;
	json_t *kept;

	for (at = 0; at < n; at++)
		if (json_integer_value(json_object_get(json_array_get(records, at), "ts_ms")) >=
		    opened_ms)
			break;
	lo = hi = at;	/* kept: [lo, hi) */
	for (bool grew = true; grew;) {
		grew = false;
		if (hi < n) {
			size_t s = json_dumpb(json_array_get(records, hi), NULL, 0, JSON_COMPACT) + 8;
			if (bytes + s <= TIMELINE_BYTES) {
				bytes += s;
				hi++;
				grew = true;
			}
		}
		if (lo > 0) {
			size_t s = json_dumpb(json_array_get(records, lo - 1), NULL, 0, JSON_COMPACT) + 8;
			if (bytes + s <= TIMELINE_BYTES) {
				bytes += s;
				lo--;
				grew = true;
			}
		}
	}
	if (lo == 0 && hi == n)
		return 0;
	if (!(kept = json_array()))
		return KW_ERR_NOMEM;
	for (size_t i = lo; i < hi; i++)
		json_array_append(kept, json_array_get(records, i));
	json_array_clear(records);
	json_array_extend(records, kept);
	json_decref(kept);
	*ret_truncated = true;
	return 0;
}

/*
 * Page through the audit records of user (a name, or the pseudonym once
 * erased) around opened_ms into timeline; subjects collects the pages'
 * pseudonym map.  At most TIMELINE_MAX records; *ret_truncated says more were left.
 */
static int
timeline(struct kw_audit *a, const char *user, long long opened_ms, json_t *records,
    json_t *subjects, bool *ret_truncated)
{
	struct kw_audit_filter f = {
		/* What the user did and what was done to the user (the lock, say). */
		.about = user, .since_ms = opened_ms - TIMELINE_SPAN_MS,
		.until_ms = opened_ms + TIMELINE_SPAN_MS, .limit = 1000,
	};
	json_t *page = NULL, *next;
	int r;

	*ret_truncated = false;
	for (;;) {
		if ((r = kw_audit_query(a, &f, &page)) < 0)
			return r;
		json_array_extend(records, json_object_get(page, "records"));
		json_object_update(subjects, json_object_get(page, "subjects"));
		next = json_object_get(page, "next");
		f.after = json_is_integer(next) ? json_integer_value(next) : 0;
		json_decref(page);
		if (!f.after)
			break;
		if (json_array_size(records) >= TIMELINE_MAX) {
			*ret_truncated = true;
			break;
		}
	}
	return fit_reply(records, opened_ms, ret_truncated);
}

int
kw_op_incident_report(struct kw_call *call, json_t **ret_result)
{
	struct kw_services *svc = call->svc;
	char subject[KW_PSEUDONYM_SIZE];
	json_t *inc = NULL, *records = json_array(), *subjects = json_object();
	long long id, opened_ms;
	bool truncated;
	int r;

	if (!records || !subjects) {
		r = KW_ERR_NOMEM;
		goto out;
	}
	if (kw_incident_id_parse(json_object_get(call->args, "id"), &id) < 0) {
		snprintf(call->msg, sizeof(call->msg), "\"id\" must name an incident, such as "
		    "INC-000001");
		r = KW_ERR_BAD_REQUEST;
		goto out;
	}
	if ((r = kw_incident_get(svc->state, svc->audit, id, &inc, &opened_ms, subject)) < 0) {
		if (r == KW_ERR_NOT_FOUND)
			snprintf(call->msg, sizeof(call->msg), "no incident INC-%06lld", id);
		goto out;
	}
	/* INC.user is the name while the pseudonym maps to one, else the pseudonym itself. */
	if ((r = timeline(svc->audit, json_string_value(json_object_get(inc, "user")), opened_ms,
	    records, subjects, &truncated)) < 0)
		goto out;
	json_object_set_new(call->meta, "incident", json_string(json_string_value(
	    json_object_get(inc, "id"))));
	*ret_result = json_pack("{s:O, s:O, s:O, s:b}", "incident", inc, "timeline", records,
	    "subjects", subjects, "timeline_truncated", truncated);
	r = *ret_result ? 0 : KW_ERR_NOMEM;
 out:
	json_decref(inc);
	json_decref(records);
	json_decref(subjects);
	return r;
}
