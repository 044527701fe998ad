/*
 * roles.c - the role registry (see roles.h).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "client/keywarden.h"
#include "common/log.h"
#include "broker/accounts/roles.h"
#include "rbac/rbac.h"
#include "broker/store/roles.h"
#include "broker/store/users.h"

#define ROLES_KEY "security.authorization.rbac.roles"

/* A seed role the configuration leaves as shipped is "builtin". */
static const char *
config_source(const char *name, json_t *perms)
{
	const struct kw_config_key *key = kw_config_schema_lookup(ROLES_KEY);
	json_t *defaults = json_loads(key->def, 0, NULL);
	json_t *shipped = json_object_get(json_object_get(defaults, name), "permissions");
	const char *src = shipped && json_equal(shipped, perms) ? "builtin" : "config";

	json_decref(defaults);
	return src;
}

int
kw_role_permissions(const struct kw_config *cfg, struct kw_state *st, const char *name,
    json_t **ret_perms, bool *ret_configured)
{
	json_t *conf = json_object_get(kw_config_get(cfg, ROLES_KEY), name);

	*ret_configured = conf != NULL;
	if (conf) {
		*ret_perms = json_incref(json_object_get(conf, "permissions"));
		return 0;
	}
	return kw_stored_role_get(st, name, ret_perms);
}

int
kw_role_get(const struct kw_config *cfg, struct kw_state *st, const char *name, json_t **ret_role)
{
	json_t *perms = NULL;
	bool configured;
	int r;

	if ((r = kw_role_permissions(cfg, st, name, &perms, &configured)) < 0)
		return r;
	*ret_role = json_pack("{s:s, s:s, s:o}", "role", name,
	    "source", configured ? config_source(name, perms) : "cli", "permissions", perms);
	return *ret_role ? 0 : KW_ERR_NOMEM;
}

static int
append_with_users(struct kw_state *st, json_t *list, json_t *role)
{
	json_t *users = NULL;
	int r;

	if ((r = kw_grant_holders(st, json_string_value(json_object_get(role, "role")), &users)) < 0) {
		json_decref(role);
		return r;
	}
	json_object_set_new(role, "users", users);
	return json_array_append_new(list, role) < 0 ? KW_ERR_NOMEM : 0;
}

static int
by_string(const void *a, const void *b)
{
	return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

/* Names of every role, configured and stored, in one new array. */
static int
role_names(const struct kw_config *cfg, struct kw_state *st, json_t **ret_names)
{
	json_t *names = NULL, *v;
	const char *name;
	int r;

	if ((r = kw_stored_role_names(st, &names)) < 0)
		return r;
	/* A stored role shadowed by a configured one of the same name is listed once. */
	json_t *conf = kw_config_get(cfg, ROLES_KEY), *e;
	size_t i;
	for (i = 0; i < json_array_size(names);) {
		e = json_array_get(names, i);
		if (json_object_get(conf, json_string_value(e)))
			json_array_remove(names, i);
		else
			i++;
	}
	json_object_foreach(conf, name, v)
		json_array_append_new(names, json_string(name));
	*ret_names = names;
	return 0;
}

int
kw_role_list(const struct kw_config *cfg, struct kw_state *st, json_t **ret_array)
{
	json_t *names = NULL, *list = NULL, *role, **sorted = NULL;
	size_t n;
	int r;

	if ((r = role_names(cfg, st, &names)) < 0)
		return r;
	n = json_array_size(names);
	if (!(list = json_array()) || !(sorted = calloc(n + 1, sizeof(*sorted)))) {
		r = KW_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		sorted[i] = json_array_get(names, i);
	qsort(sorted, n, sizeof(*sorted), by_string);
	for (size_t i = 0; i < n; i++)
		if ((r = kw_role_get(cfg, st, json_string_value(sorted[i]), &role)) < 0 ||
		    (r = append_with_users(st, list, role)) < 0)
			goto out;
	*ret_array = TAKE_PTR(list);
	r = 0;
 out:
	free(sorted);
	json_decref(names);
	json_decref(list);
	return r;
}

int
kw_role_create(const struct kw_config *cfg, struct kw_state *st, const char *name,
    json_t *permissions, const char *by)
{
	if (json_object_get(kw_config_get(cfg, ROLES_KEY), name))
		return KW_ERR_INVALID;
	return kw_stored_role_insert(st, name, permissions, by);
}

int
kw_role_delete(struct kw_state *st, const char *name)
{
	return kw_stored_role_delete(st, name);
}

int
kw_role_orphans(const struct kw_config *cfg, struct kw_state *st, json_t **ret_array)
{
	json_t *granted = NULL, *list = json_array(), *perms = NULL, *users, *e;
	bool configured;
	size_t i;
	int r;

	if (!list)
		return KW_ERR_NOMEM;
	if ((r = kw_grant_roles(st, &granted)) < 0)
		goto out;
	json_array_foreach(granted, i, e) {
		const char *name = json_string_value(e);
		r = kw_role_permissions(cfg, st, name, &perms, &configured);
		json_decref(perms);
		perms = NULL;
		if (r == 0)
			continue;
		if (r != KW_ERR_NOT_FOUND || (r = kw_grant_holders(st, name, &users)) < 0)
			goto out;
		if (json_array_append_new(list, json_pack("{s:s, s:o}", "role", name,
		    "users", users)) < 0) {
			r = KW_ERR_NOMEM;
			goto out;
		}
	}
	*ret_array = TAKE_PTR(list);
	r = 0;
 out:
	json_decref(granted);
	json_decref(list);
	return r;
}

void
kw_role_warn_shadowed(const struct kw_config *cfg, struct kw_state *st)
{
	json_t *stored = NULL, *e;
	size_t i;

	if (kw_stored_role_names(st, &stored) < 0)
		return;
	json_array_foreach(stored, i, e)
		if (json_object_get(kw_config_get(cfg, ROLES_KEY), json_string_value(e)))
			kw_log_warn("role %s created with the CLI is shadowed by the role of that "
			    "name in the configuration; the configuration's definition applies",
			    json_string_value(e));
	json_decref(stored);
}
