/*
 * roles.h - roles made from the CLI, as the state store keeps them.  What
 * a role means (configured roles first, then these) is broker/accounts/.
 */
#ifndef KW_STORE_ROLES_H
#define KW_STORE_ROLES_H

#include <jansson.h>

#include "common/macros.h"

struct kw_state;

/* The stored role's permissions (new array).  0, KW_ERR_NOT_FOUND or KW_ERR_IO. */
int kw_stored_role_get(struct kw_state *st, const char *name, json_t **ret_perms)
	KW_WUR KW_NONNULL(1, 2, 3);

/* Names of every stored role (new array).  0, KW_ERR_NOMEM or KW_ERR_IO. */
int kw_stored_role_names(struct kw_state *st, json_t **ret_names) KW_WUR KW_NONNULL(1, 2);

/* Store a role.  0, KW_ERR_INVALID (the name is taken), KW_ERR_NOMEM or KW_ERR_IO. */
int kw_stored_role_insert(struct kw_state *st, const char *name, json_t *permissions,
    const char *by) KW_WUR KW_NONNULL(1, 2, 3, 4);

/* Delete a stored role.  0, KW_ERR_NOT_FOUND or KW_ERR_IO. */
int kw_stored_role_delete(struct kw_state *st, const char *name) KW_WUR KW_NONNULL(1, 2);

#endif
