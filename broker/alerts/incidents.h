/*
 * incidents.h - incidents (security.incidentResponse) as administrators
 * read them; the rows are kept by broker/store/incidents.h.
 *
 * An incident names its user only by the audit pseudonym, so erasing the
 * user (which destroys the pseudonym's mapping) leaves incidents that can
 * no longer be tied to a person.  Ids are shown as "INC-000001".
 */
#ifndef KW_INCIDENTS_H
#define KW_INCIDENTS_H

#include <jansson.h>

#include "broker/store/incidents.h"
#include "common/macros.h"

struct kw_state;

struct kw_audit;

/* Room for "INC-" and a decimal id. */
#define KW_INCIDENT_ID_SIZE 32

/* "INC-000001" for id 1, into buf. */
const char *kw_incident_id_text(long long id, char buf[KW_INCIDENT_ID_SIZE]) KW_NONNULL(2);

/* The id of "INC-000001", "1" or the integer 1; KW_ERR_INVALID for anything else. */
int kw_incident_id_parse(const json_t *v, long long *ret_id) KW_WUR KW_NONNULL(2);

/*
 * Incidents as INC objects ({"id", "opened", "type", "user", "status",
 * "actions", "details", "closed", "closed_by", "note"}), oldest first;
 * "user" is the name behind the pseudonym, or the pseudonym once erased.
 * subject (a pseudonym) limits the list to one user, status ("open",
 * "closed") to one state, when not NULL.  *ret_array is new.  0,
 * KW_ERR_IO, KW_ERR_NOMEM.
 */
int kw_incident_list(struct kw_state *st, struct kw_audit *a, const char *subject,
    const char *status, json_t **ret_array) KW_WUR KW_NONNULL(1, 2, 5);

/*
 * One incident as an INC object (*ret_incident, new), and its opening time
 * in Unix ms and its subject's pseudonym (ret_subject: KW_PSEUDONYM_SIZE
 * bytes; may be NULL).  0, KW_ERR_NOT_FOUND, KW_ERR_IO, KW_ERR_NOMEM.
 */
int kw_incident_get(struct kw_state *st, struct kw_audit *a, long long id, json_t **ret_incident,
    long long *ret_opened_ms, char *ret_subject) KW_WUR KW_NONNULL(1, 2, 4, 5);

#endif
