/*
 * ceiling.c - delegated administration stays within the administrator's
 * own rights (see dispatch_internal.h).
 *
 * A user allowed admin on every role or user could otherwise make a role
 * that grants "*", hand out the admin role, or lock out the administrator
 * above her.  The request table says what a request hands out or acts on;
 * rbac/ (kw_rbac_within) says whether that is within the subject's own
 * permissions.  root acting for itself is not limited.
 */
#include <stdio.h>
#include <stdlib.h>

#include "broker/accounts/cache.h"
#include "broker/accounts/roles.h"
#include "broker/dispatch/dispatch_internal.h"
#include "broker/store/users.h"
#include "client/keywarden.h"

static int
within(struct kw_call *call, const struct kw_subject *subject, const struct kw_perm *want,
    size_t n, const char *holder, char *why, size_t why_len)
{
	return kw_rbac_within(call->caller, subject, want, n, holder, why, why_len) ? 0 :
	    KW_ERR_DENIED;
}

/* The union of the roles named (a list of names) is within the subject's rights. */
static int
within_roles(struct kw_call *call, const struct kw_subject *subject, json_t *names,
    const char *holder, char *why, size_t why_len)
{
	struct kw_perm *perms = NULL;
	size_t n = 0;
	int r;

	if ((r = kw_roles_compiled(call->svc->roles, call->svc->state, names, &perms, &n)) == 0)
		r = within(call, subject, perms, n, holder, why, why_len);
	free(perms);
	return r;
}

/* A new role's permissions (what does not parse, the handler refuses). */
static int
within_listed(struct kw_call *call, const struct kw_subject *subject, char *why,
    size_t why_len)
{
	struct kw_perm *perms = NULL;
	size_t n = 0;
	int r;

	if ((r = kw_rbac_compile(json_object_get(call->args, call->op->perms), &perms, &n)) == 0)
		r = within(call, subject, perms, n, "the new role would grant", why, why_len);
	free(perms);
	return r;
}

/* Each role handed out or taken back (one name or a list), on its own so the
   refusal names it. */
static int
within_each_role(struct kw_call *call, const struct kw_subject *subject, char *why,
    size_t why_len)
{
	json_t *v = json_object_get(call->args, call->op->roles), *e, *one;
	json_t *list = json_is_string(v) ? json_pack("[O]", v) : json_incref(v);
	char holder[96];
	size_t i;
	int r = 0;

	if (json_is_string(v) && !list)
		return KW_ERR_NOMEM;
	json_array_foreach(list, i, e) {
		if (!(one = json_pack("[O]", e))) {
			r = KW_ERR_NOMEM;
			break;
		}
		snprintf(holder, sizeof(holder), "role %s grants", json_string_value(e));
		r = within_roles(call, subject, one, holder, why, why_len);
		json_decref(one);
		if (r != 0)
			break;
	}
	json_decref(list);
	return r;
}

/* The user acted on: no one to compare with is the handler's "not found". */
static int
within_target(struct kw_call *call, const struct kw_subject *subject, char *why,
    size_t why_len)
{
	const char *name = kw_arg_str(call->args, call->op->arg);
	json_t *roles = NULL;
	struct kw_user u;
	char holder[96];
	int r;

	if ((r = kw_user_by_name(call->svc->state, name, &u)) == KW_ERR_NOT_FOUND)
		return 0;
	if (r < 0 || (r = kw_user_roles(call->svc->state, u.uid, &roles)) < 0)
		return r;
	snprintf(holder, sizeof(holder), "user %s holds", u.name);
	r = within_roles(call, subject, roles, holder, why, why_len);
	json_decref(roles);
	return r;
}

int
kw_dispatch_ceiling(struct kw_call *call, const struct kw_subject *subject, char *why,
    size_t why_len)
{
	const struct kw_op *op = call->op;
	int r = 0;

	if (op->perms && (r = within_listed(call, subject, why, why_len)) != 0)
		return r;
	if (op->roles && (r = within_each_role(call, subject, why, why_len)) != 0)
		return r;
	if ((op->flags & KW_OP_TARGET_NOT_STRONGER) && op->arg)
		r = within_target(call, subject, why, why_len);
	return r;
}
