/*
 * decide.c - the authorization decision (see rbac.h).  Deny by default.
 */
#include <string.h>

#include "rbac.h"

bool
kw_rbac_decide(const struct kw_caller *caller, const char *perm,
    const char *resource, const char **ret_reason)
{
	const char *why;

	if (perm[0] == '\0')
		return true;
	/* uid 0 already owns the machine; it administers the broker (sshd, sudo). */
	if (caller->uid == 0)
		return true;
	why = strcmp(perm, "admin") == 0 ?
	    "administration is allowed to root only" :
	    "no role grants this permission";
	if (ret_reason)
		*ret_reason = why;
	return false;
}
