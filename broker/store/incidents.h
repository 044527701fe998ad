/*
 * incidents.h - incidents as the state store keeps them (table incidents).
 * An incident names its user only by the audit pseudonym; turning rows into
 * what an administrator reads is broker/alerts/incidents.c.
 */
#ifndef KW_STORE_INCIDENTS_H
#define KW_STORE_INCIDENTS_H

#include <jansson.h>

#include "common/macros.h"

struct kw_state;

/*
 * Insert an open incident (actions: an array, details: an object; both
 * borrowed) opened at opened/opened_ms about subject (a pseudonym).
 * *ret_id is its id.  0, KW_ERR_NOMEM or KW_ERR_IO.
 */
int kw_incident_insert(struct kw_state *st, const char *opened, long long opened_ms,
    const char *type, const char *subject, const json_t *actions, const json_t *details,
    long long *ret_id) KW_WUR KW_NONNULL(1, 2, 4, 5, 6, 7, 8);

/* Replace the actions of incident id (borrowed array).  0, KW_ERR_NOT_FOUND, KW_ERR_IO. */
int kw_incident_set_actions(struct kw_state *st, long long id, const json_t *actions)
	KW_WUR KW_NONNULL(1, 3);

/*
 * Close open incident id at closed (RFC 3339) by the user named by, with
 * note.  0; KW_ERR_INVALID when it is closed already; KW_ERR_NOT_FOUND;
 * KW_ERR_IO.
 */
int kw_incident_close(struct kw_state *st, long long id, const char *closed, const char *by,
    const char *note) KW_WUR KW_NONNULL(1, 3, 4, 5);

/*
 * Incidents in id order as objects {"id" (integer), "opened", "opened_ms",
 * "type", "subject", "status", "actions", "details", "closed", "closed_by",
 * "note"} (the last three null while open): all of them, those about
 * subject (not NULL), those with status ("open", "closed"; not NULL), or
 * the one with id (id > 0).  *ret_rows is new.  0, KW_ERR_NOMEM or KW_ERR_IO.
 */
int kw_incident_rows(struct kw_state *st, const char *subject, const char *status,
    long long id, json_t **ret_rows) KW_WUR KW_NONNULL(1, 5);

#endif
