/*
 * op_role.c - admin operations on roles: list, show, create, delete,
 * grant, revoke.  Authorization happened in the dispatcher.
 */
#include <stdio.h>
#include <string.h>

#include "broker/accounts/ops.h"
#include "client/keywarden.h"
#include "common/perm.h"
#include "broker/dispatch/dispatch.h"
#include "broker/accounts/roles.h"
#include "broker/store/users.h"

/* The role named by args.role with its holders, or NOT_FOUND with a message. */
static int
find_role(struct kw_call *call, json_t **ret_role)
{
	const char *name = kw_arg_str(call->args, "role");
	json_t *users = NULL;
	int r = kw_role_get(call->svc->cfg, call->svc->state, name, ret_role);

	if (r == KW_ERR_NOT_FOUND)
		snprintf(call->msg, sizeof(call->msg), "no role named %.64s", name);
	if (r < 0)
		return r;
	if ((r = kw_grant_holders(call->svc->state, name, &users)) < 0) {
		json_decref(*ret_role);
		return r;
	}
	json_object_set_new(*ret_role, "users", users);
	return 0;
}

int
kw_op_role_list(struct kw_call *call, json_t **ret_result)
{
	json_t *roles = NULL, *orphans = NULL;
	int r;

	if ((r = kw_role_list(call->svc->cfg, call->svc->state, &roles)) < 0)
		return r;
	if ((r = kw_role_orphans(call->svc->cfg, call->svc->state, &orphans)) < 0) {
		json_decref(roles);
		return r;
	}
	/* Grants of roles that are gone are listed apart: they are no role. */
	*ret_result = json_array_size(orphans) == 0 ? json_pack("{s:o}", "roles", roles) :
	    json_pack("{s:o, s:O}", "roles", roles, "orphaned", orphans);
	json_decref(orphans);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}

int
kw_op_role_show(struct kw_call *call, json_t **ret_result)
{
	return find_role(call, ret_result);
}

/* args.permissions: a non-empty list, every entry in the grammar. */
static int
check_permissions(struct kw_call *call, json_t *perms)
{
	struct kw_perm p;
	size_t i;
	json_t *v;

	if (!json_is_array(perms) || json_array_size(perms) == 0) {
		snprintf(call->msg, sizeof(call->msg), "a role needs at least one permission");
		return KW_ERR_INVALID;
	}
	json_array_foreach(perms, i, v) {
		if (!json_is_string(v)) {
			snprintf(call->msg, sizeof(call->msg), "permissions must be strings");
			return KW_ERR_INVALID;
		}
		if (kw_perm_parse(json_string_value(v), &p, call->msg, sizeof(call->msg)) < 0)
			return KW_ERR_INVALID;
		for (size_t j = 0; j < i; j++) {
			if (json_equal(json_array_get(perms, j), v)) {
				snprintf(call->msg, sizeof(call->msg), "permission \"%.140s\" is listed twice",
				    json_string_value(v));
				return KW_ERR_INVALID;
			}
		}
	}
	return 0;
}

int
kw_op_role_create(struct kw_call *call, json_t **ret_result)
{
	const char *name = kw_arg_str(call->args, "role");
	json_t *perms = json_object_get(call->args, "permissions"), *existing = NULL;
	json_t *holders = NULL;
	int r;

	if ((r = check_permissions(call, perms)) < 0)
		return r;
	if (kw_role_get(call->svc->cfg, call->svc->state, name, &existing) == 0) {
		snprintf(call->msg, sizeof(call->msg), "role %.64s already exists (%s)", name,
		    json_string_value(json_object_get(existing, "source")));
		json_decref(existing);
		return KW_ERR_INVALID;
	}
	/* Grants of a role that is gone must not come back to life with a new
	   definition, for whoever writes it, root too: they are cleared first. */
	if ((r = kw_grant_holders(call->svc->state, name, &holders)) < 0)
		return r;
	if (json_array_size(holders) > 0) {
		snprintf(call->msg, sizeof(call->msg), "role %.64s no longer exists but is still "
		    "granted to %zu user(s); remove those grants first: keywarden admin role "
		    "delete %.64s --force", name, json_array_size(holders), name);
		json_object_set_new(call->meta, "holders",
		    json_integer((json_int_t)json_array_size(holders)));
		json_decref(holders);
		return KW_ERR_INVALID;
	}
	json_decref(holders);
	/* Decisions see the new role from the next request on: the cache watches the
	   roles table (cache.h), also when this request is undone. */
	r = kw_role_create(call->svc->cfg, call->svc->state, name, perms, call->caller->user);
	if (r == KW_ERR_INVALID)
		snprintf(call->msg, sizeof(call->msg), "role %.64s already exists", name);
	if (r < 0)
		return r;
	json_object_set(call->meta, "permissions", perms);
	return find_role(call, ret_result);
}

/*
 * role.delete of a role that is gone but still granted (removed from the
 * configuration file): with force its grants go, else the refusal says so.
 */
static int
delete_orphaned(struct kw_call *call, const char *name, bool force, json_t **ret_result)
{
	json_t *holders = NULL;
	size_t n;
	int r, removed = 0;

	if ((r = kw_grant_holders(call->svc->state, name, &holders)) < 0)
		return r;
	n = json_array_size(holders);
	json_decref(holders);
	if (n == 0)
		return KW_ERR_NOT_FOUND;	/* call->msg says "no role named" */
	if (!force) {
		snprintf(call->msg, sizeof(call->msg), "role %.64s no longer exists but is still "
		    "granted to %zu user(s); use --force to remove those grants", name, n);
		return KW_ERR_INVALID;
	}
	if ((r = kw_grant_delete_role(call->svc->state, name, &removed)) < 0)
		return r;
	json_object_set_new(call->meta, "force", json_true());
	json_object_set_new(call->meta, "orphaned", json_true());
	json_object_set_new(call->meta, "grants_removed", json_integer(removed));
	*ret_result = json_pack("{s:s, s:i, s:b}", "role", name, "grants_removed", removed,
	    "orphaned", 1);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}

int
kw_op_role_delete(struct kw_call *call, json_t **ret_result)
{
	const char *name = kw_arg_str(call->args, "role");
	bool force = json_is_true(json_object_get(call->args, "force"));
	json_t *role = NULL;
	size_t holders;
	int r, removed = 0;

	if ((r = find_role(call, &role)) == KW_ERR_NOT_FOUND)
		return delete_orphaned(call, name, force, ret_result);
	if (r < 0)
		return r;
	holders = json_array_size(json_object_get(role, "users"));
	if (strcmp(json_string_value(json_object_get(role, "source")), "cli") != 0) {
		snprintf(call->msg, sizeof(call->msg), "role %.64s is defined in the configuration "
		    "(security.authorization.rbac.roles); remove it there", name);
		r = KW_ERR_INVALID;
	} else if (holders > 0 && !force) {
		snprintf(call->msg, sizeof(call->msg), "role %.64s is granted to %zu user(s); "
		    "revoke it first or use --force", name, holders);
		r = KW_ERR_INVALID;
	} else if ((r = kw_grant_delete_role(call->svc->state, name, &removed)) == 0) {
		r = kw_role_delete(call->svc->state, name);
	}
	json_decref(role);
	if (r < 0)
		return r;
	json_object_set_new(call->meta, "force", json_boolean(force));
	json_object_set_new(call->meta, "grants_removed", json_integer(removed));
	*ret_result = json_pack("{s:s, s:i}", "role", name, "grants_removed", removed);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}

/* The user and role of a grant or revocation, both checked to exist. */
static int
grant_parties(struct kw_call *call, struct kw_user *u, const char **ret_role)
{
	const char *role = kw_arg_str(call->args, "role");
	json_t *def = NULL;
	int r;

	if ((r = kw_op_find_user(call, u)) < 0)
		return r;
	if (!role) {
		snprintf(call->msg, sizeof(call->msg), "\"role\" must be a role name");
		return KW_ERR_BAD_REQUEST;
	}
	json_object_set_new(call->meta, "role", json_string(role));
	*ret_role = role;
	if ((r = kw_role_get(call->svc->cfg, call->svc->state, role, &def)) == KW_ERR_NOT_FOUND)
		snprintf(call->msg, sizeof(call->msg), "no role named %.64s", role);
	json_decref(def);
	return r;
}

int
kw_op_role_grant(struct kw_call *call, json_t **ret_result)
{
	struct kw_user u;
	const char *role;
	int r;

	if ((r = grant_parties(call, &u, &role)) < 0)
		return r;
	r = kw_grant_insert(call->svc->state, u.uid, role, call->caller->user);
	if (r == KW_ERR_INVALID)
		snprintf(call->msg, sizeof(call->msg), "%.64s already has role %.64s", u.name, role);
	return r < 0 ? r : kw_user_json(call->svc->state, u.uid, ret_result);
}

int
kw_op_role_revoke(struct kw_call *call, json_t **ret_result)
{
	struct kw_user u;
	const char *role = NULL;
	int r;

	/* A role removed from the configuration can still be revoked: skip its lookup. */
	r = grant_parties(call, &u, &role);
	if (r < 0 && !(r == KW_ERR_NOT_FOUND && role))
		return r;
	r = kw_grant_delete(call->svc->state, u.uid, role);
	if (r == KW_ERR_NOT_FOUND)
		snprintf(call->msg, sizeof(call->msg), "%.64s does not have role %.64s", u.name, role);
	return r < 0 ? r : kw_user_json(call->svc->state, u.uid, ret_result);
}
