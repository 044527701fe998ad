/*
 * rbac.h - the one place that decides whether a caller may do something.
 *
 * Every broker operation names the permission it needs in the request table
 * (broker/requests.c); the dispatcher asks kw_rbac_decide and handlers never
 * check rights themselves.  A permission is a verb optionally narrowed to
 * resources ("read", "admin", "read:key/anthropic*"); the empty permission
 * marks operations any connected caller may use (hello, status).  Roles and
 * grants arrive with the identity work; until then only uid 0 holds rights.
 */
#ifndef KW_RBAC_H
#define KW_RBAC_H

#include <stdbool.h>
#include <sys/types.h>

#include "macros.h"

struct kw_caller {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	const char *user;	/* name from the password database, or the uid */
};

/*
 * Decide whether caller may use `perm` on `resource` (may be NULL).
 * Returns true to allow.  On refusal *ret_reason (if not NULL) points to a
 * static sentence saying why, for the audit record and the reply.
 */
bool kw_rbac_decide(const struct kw_caller *caller, const char *perm,
    const char *resource, const char **ret_reason) KW_WUR KW_NONNULL(1, 2);

#endif
