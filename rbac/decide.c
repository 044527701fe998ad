/*
 * decide.c - the authorization decision (see rbac.h).
 */
#include <stdio.h>
#include <string.h>

#include "common/perm.h"
#include "rbac/rbac.h"

static bool
granted(json_t *permissions, const char *verb, const char *resource)
{
	struct kw_perm perm;
	char why[256];
	size_t i;
	json_t *p;

	json_array_foreach(permissions, i, p) {
		/* Stored roles were checked when written; one that no longer parses grants nothing. */
		if (!json_is_string(p) ||
		    kw_perm_parse(json_string_value(p), &perm, why, sizeof(why)) < 0)
			continue;
		if (kw_perm_grants(&perm, verb, resource))
			return true;
	}
	return false;
}

bool
kw_rbac_decide(const struct kw_caller *caller, const struct kw_subject *subject,
    const char *verb, const char *resource, char *reason, size_t reason_len)
{
	bool self = strcmp(subject->user, caller->user) == 0;

	if (!self && caller->uid != 0) {
		snprintf(reason, reason_len, "acting for another user needs root");
		return false;
	}
	if (verb[0] == '\0')
		return true;
	/* uid 0 already owns the machine; it administers the broker (sshd, sudo). */
	if (self && caller->uid == 0)
		return true;
	if (!subject->registered) {
		snprintf(reason, reason_len, "%.64s is not a keywarden user", subject->user);
		return false;
	}
	if (granted(subject->permissions, verb, resource))
		return true;
	snprintf(reason, reason_len, "no role of %.64s grants %s on %.128s", subject->user, verb,
	    resource ? resource : "this operation");
	return false;
}
