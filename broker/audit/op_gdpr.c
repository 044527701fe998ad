/*
 * op_gdpr.c - security.compliance.gdpr: everything keywarden holds about a
 * user (user.export), and erasure (user.erase).
 *
 * The export holds the user's state; the CLI adds the audit records by
 * paging audit.query (a reply frame is 64 KiB at most).
 *
 * Erasure removes the user like user.del, clears the name where it stands
 * as the author of other rows, and destroys the pseudonym mapping the
 * audit trail names the user by: the records stay (the chain still
 * verifies) but no longer lead to a person.  Deleted bytes are overwritten
 * (secure_delete) and the WALs truncated after the commit.
 */
#include <stdio.h>
#include <string.h>

#include "broker/alerts/incidents.h"
#include "broker/audit/audit.h"
#include "broker/audit/ops.h"
#include "broker/store/state.h"
#include "client/keywarden.h"
#include "broker/store/locks.h"
#include "common/log.h"
#include "broker/login/mfa.h"
#include "broker/dispatch/dispatch.h"
#include "broker/login/sessions.h"
#include "broker/store/users.h"

int
kw_op_user_export(struct kw_call *call, json_t **ret_result)
{
	struct kw_services *svc = call->svc;
	char pseud[KW_PSEUDONYM_SIZE] = "";
	json_t *user = NULL, *sessions = NULL, *incidents = NULL, *lock;
	struct kw_lock l;
	struct kw_user u;
	int r;

	if (!kw_config_bool(svc->cfg, "security.compliance.gdpr.dataPortability")) {
		snprintf(call->msg, sizeof(call->msg), "exports are off "
		    "(security.compliance.gdpr.dataPortability is false)");
		return KW_ERR_DENIED;
	}
	if ((r = kw_op_find_user(call, &u)) < 0)
		return r;
	long long idle = kw_config_int(svc->cfg, "security.session.timeout");
	if ((r = kw_user_json(svc->state, u.uid, &user)) < 0 ||
	    (r = kw_session_list(svc->state, u.uid, idle, &sessions)) < 0 ||
	    (r = kw_lock_get(svc->state, u.uid, kw_now(), &l)) < 0) {
		json_decref(user);
		json_decref(sessions);
		snprintf(call->msg, sizeof(call->msg), "the stores cannot be read");
		return r;
	}
	lock = l.locked ? json_pack("{s:b, s:o, s:s, s:s}", "locked", 1,
	    "until", l.until < 0 ? json_null() : json_integer(l.until), "message", l.message,
	    "by", l.by) : json_null();
	if (kw_audit_find_pseudonym(svc->audit, u.name, pseud) < 0)
		snprintf(pseud, sizeof(pseud), "~none");
	if (kw_incident_list(svc->state, svc->audit, pseud, NULL, &incidents) < 0)
		incidents = json_array();
	/* The audit records do not fit one reply: the client pages audit.query for them. */
	*ret_result = json_pack("{s:s, s:o, s:O, s:o, s:o, s:o, s:o}",
	    "exported_by", "keywarden", "user", user, "roles", json_object_get(user, "roles"),
	    "sessions", sessions, "lock", lock, "totp", kw_mfa_status_json(svc->state, u.uid),
	    "incidents", incidents);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}

/* Push erased bytes out of both stores once the erasure committed. */
static void
scrub(struct kw_services *svc)
{
	kw_audit_scrub(svc->audit);
	kw_state_scrub(svc->state);
}

int
kw_op_user_erase(struct kw_call *call, json_t **ret_result)
{
	struct kw_services *svc = call->svc;
	char pseud[KW_PSEUDONYM_SIZE] = "";
	struct kw_user u;
	int r, grants = 0;

	if (!kw_config_bool(svc->cfg, "security.compliance.gdpr.rightToErasure")) {
		snprintf(call->msg, sizeof(call->msg), "erasure is off "
		    "(security.compliance.gdpr.rightToErasure is false)");
		return KW_ERR_DENIED;
	}
	if ((r = kw_op_find_user(call, &u)) < 0)
		return r;
	if ((r = kw_user_delete(svc->state, u.uid, &grants)) < 0 ||
	    (r = kw_user_forget_author(svc->state, u.name)) < 0)
		return r;
	r = kw_audit_forget_subject(svc->audit, u.name, pseud);
	if (r < 0 && r != KW_ERR_NOT_FOUND) {
		snprintf(call->msg, sizeof(call->msg), "the audit store cannot be changed");
		return r;
	}
	/* The erasure's own record names the pseudonym, or nobody: never the name again. */
	snprintf(call->res_buf, sizeof(call->res_buf), "user/%s", pseud[0] ? pseud : "~erased");
	call->resource = call->res_buf;
	json_object_set_new(call->meta, "grants_removed", json_integer(grants));
	json_object_set_new(call->meta, "pseudonym_destroyed", json_boolean(pseud[0] != '\0'));
	call->after_commit = scrub;
	*ret_result = json_pack("{s:s, s:b, s:s?}", "user", u.name, "erased", 1,
	    "pseudonym", pseud[0] ? pseud : NULL);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}
