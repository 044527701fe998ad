/*
 * users.h - registered users and their role grants (state.db).
 *
 * A user is a Unix account the broker knows, keyed by uid: the kernel names
 * callers by uid (SO_PEERCRED), names are for people.  All functions take
 * the state database and return 0 or a negative KW_ERR_* code.
 */
#ifndef KW_USERS_H
#define KW_USERS_H

#include <jansson.h>
#include <sys/types.h>

#include "common/macros.h"

struct kw_state;

struct kw_user {
	uid_t uid;
	char name[65];
};

/* Look a registered user up by uid or by name.  KW_ERR_NOT_FOUND if absent. */
int kw_user_by_uid(struct kw_state *st, uid_t uid, struct kw_user *ret_user) KW_WUR KW_NONNULL(1, 3);
int kw_user_by_name(struct kw_state *st, const char *name, struct kw_user *ret_user)
	KW_WUR KW_NONNULL(1, 2, 3);

/* Register a user.  KW_ERR_INVALID when the uid or the name is registered already. */
int kw_user_insert(struct kw_state *st, uid_t uid, const char *name, const char *by)
	KW_WUR KW_NONNULL(1, 3, 4);

/* Remove a user and its grants; *ret_grants (may be NULL) counts the grants removed. */
int kw_user_delete(struct kw_state *st, uid_t uid, int *ret_grants) KW_WUR KW_NONNULL(1);

/*
 * The user object {"user", "uid", "roles", "created", "created_by"} as a new
 * reference in *ret_obj.  KW_ERR_NOT_FOUND if the uid is not registered.
 */
int kw_user_json(struct kw_state *st, uid_t uid, json_t **ret_obj) KW_WUR KW_NONNULL(1, 3);

/* All user objects, ordered by name, as a new array in *ret_array. */
int kw_user_list_json(struct kw_state *st, json_t **ret_array) KW_WUR KW_NONNULL(1, 2);

/* Names of the roles granted to uid, sorted, as a new array in *ret_array. */
int kw_user_roles(struct kw_state *st, uid_t uid, json_t **ret_array) KW_WUR KW_NONNULL(1, 3);

/* Grant role to uid.  KW_ERR_INVALID if it is granted already. */
int kw_grant_insert(struct kw_state *st, uid_t uid, const char *role, const char *by)
	KW_WUR KW_NONNULL(1, 3, 4);

/* Revoke role from uid.  KW_ERR_NOT_FOUND if it was not granted. */
int kw_grant_delete(struct kw_state *st, uid_t uid, const char *role) KW_WUR KW_NONNULL(1, 3);

/* Names of the users holding role, sorted, as a new array in *ret_array. */
int kw_grant_holders(struct kw_state *st, const char *role, json_t **ret_array)
	KW_WUR KW_NONNULL(1, 2, 3);

/* Names of the roles granted to anyone, sorted, each once, as a new array in *ret_array. */
int kw_grant_roles(struct kw_state *st, json_t **ret_array) KW_WUR KW_NONNULL(1, 2);

/* Revoke role from everyone; *ret_n (may be NULL) counts the grants removed. */
int kw_grant_delete_role(struct kw_state *st, const char *role, int *ret_n) KW_WUR KW_NONNULL(1, 2);

/* Replace name where it is recorded as the author of a user, role, grant or
   lock, or as who closed an incident, by "(erased)" (GDPR erasure).  0 or KW_ERR_IO. */
int kw_user_forget_author(struct kw_state *st, const char *name) KW_WUR KW_NONNULL(1, 2);

#endif
