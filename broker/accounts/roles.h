/*
 * roles.h - the roles a grant can name: built-in and configured ones from
 * security.authorization.rbac.roles, and those created from the CLI
 * (state.db).  Creating a role with a configured name is refused; should the
 * configuration later define a name that was created from the CLI, the
 * configured definition applies and the broker warns at start.  Roles
 * compiled for decisions are kept with the rest of what requests re-derive
 * (cache.h: kw_roles_*).
 */
#ifndef KW_ROLES_H
#define KW_ROLES_H

#include <jansson.h>

#include <stdbool.h>

#include "common/config.h"
#include "common/macros.h"
#include "common/perm.h"

struct kw_state;

/*
 * The role object {"role", "source", "permissions"} for name, as a new
 * reference.  source is "builtin" (a seed role as shipped), "config" or
 * "cli".  KW_ERR_NOT_FOUND if there is no such role.
 */
int kw_role_get(const struct kw_config *cfg, struct kw_state *st, const char *name, json_t **ret_role)
	KW_WUR KW_NONNULL(1, 2, 3, 4);

/* A role's permissions (new reference): the configuration's, else the store's; and
   whether the configuration defines it.  0, KW_ERR_NOT_FOUND or KW_ERR_IO. */
int kw_role_permissions(const struct kw_config *cfg, struct kw_state *st, const char *name,
    json_t **ret_perms, bool *ret_configured) KW_WUR KW_NONNULL(1, 2, 3, 4, 5);

/* Every role object, with "users" holding it, sorted by name (new array). */
int kw_role_list(const struct kw_config *cfg, struct kw_state *st, json_t **ret_array)
	KW_WUR KW_NONNULL(1, 2, 3);

/*
 * Store a CLI role.  permissions (borrowed) must already be valid.
 * KW_ERR_INVALID when the name is taken by any role.
 */
int kw_role_create(const struct kw_config *cfg, struct kw_state *st, const char *name,
    json_t *permissions, const char *by) KW_WUR KW_NONNULL(1, 2, 3, 4, 5);

/* Remove a CLI role (its grants are the caller's business).  KW_ERR_NOT_FOUND. */
int kw_role_delete(struct kw_state *st, const char *name) KW_WUR KW_NONNULL(1, 2);

/*
 * Grants of roles that exist no longer -- neither in the configuration nor
 * in the store (a role removed from the configuration file) -- as a new
 * array of {"role", "users"}, sorted by role.  They grant nothing; role
 * creation refuses their names until they are cleared.  0 or an error.
 */
int kw_role_orphans(const struct kw_config *cfg, struct kw_state *st, json_t **ret_array)
	KW_WUR KW_NONNULL(1, 2, 3);

/* Log a warning for each stored role that a configured role shadows. */
void kw_role_warn_shadowed(const struct kw_config *cfg, struct kw_state *st) KW_NONNULL(1, 2);

#endif
