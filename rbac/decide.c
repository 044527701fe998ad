/*
 * decide.c - the authorization decision (see rbac.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/perm.h"
#include "rbac/rbac.h"

int
kw_rbac_compile(json_t *permissions, struct kw_perm **ret_perms, size_t *ret_n)
{
	struct kw_perm *v = NULL;
	char why[256];
	size_t i, n = 0;
	json_t *p;

	if (json_array_size(permissions) > 0 &&
	    !(v = calloc(json_array_size(permissions), sizeof(*v))))
		return KW_ERR_NOMEM;
	json_array_foreach(permissions, i, p)
		if (json_is_string(p) &&
		    kw_perm_parse(json_string_value(p), &v[n], why, sizeof(why)) == 0)
			n++;
	*ret_perms = v;
	*ret_n = n;
	return 0;
}

static bool
granted(const struct kw_subject *s, const char *verb, const char *resource)
{
	for (size_t i = 0; i < s->n_perms; i++)
		if (kw_perm_grants(&s->perms[i], verb, resource))
			return true;
	return false;
}

/* uid 0, and the uid the broker runs as: each owns the broker (rbac.h). */
static bool
owns_broker(const struct kw_caller *caller)
{
	return caller->uid == 0 || caller->owner;
}

static bool
is_self(const struct kw_caller *caller, const char *user)
{
	return caller->user && strcmp(user, caller->user) == 0;
}

bool
kw_rbac_may_act_for(const struct kw_caller *caller, const char *user)
{
	return owns_broker(caller) || is_self(caller, user);
}

bool
kw_rbac_owner_asks(const struct kw_caller *caller, const char *verb, const char *user)
{
	if (caller->uid == 0)
		return true;
	return caller->owner && (strcmp(verb, "admin") == 0 || !is_self(caller, user));
}

bool
kw_rbac_decide(const struct kw_caller *caller, const struct kw_subject *subject,
    const char *verb, const char *resource, char *reason, size_t reason_len)
{
	bool self = is_self(caller, subject->user);

	if (!kw_rbac_may_act_for(caller, subject->user)) {
		snprintf(reason, reason_len, "acting for another user needs root");
		return false;
	}
	if (verb[0] == '\0')
		return true;
	/*
	 * uid 0 already owns the machine; it administers the broker (sshd,
	 * sudo).  The broker's own uid could read its stores and its keychain
	 * anyway: it administers its broker the same way.
	 */
	if (self && kw_rbac_owner_asks(caller, verb, subject->user))
		return true;
	if (!subject->registered) {
		snprintf(reason, reason_len, "%.64s is not a keywarden user", subject->user);
		return false;
	}
	if (granted(subject, verb, resource))
		return true;
	snprintf(reason, reason_len, "no role of %.64s grants %s on %.128s", subject->user, verb,
	    resource ? resource : "this operation");
	return false;
}

bool
kw_rbac_within(const struct kw_caller *caller, const struct kw_subject *subject,
    const struct kw_perm *want, size_t n_want, const char *holder, char *reason,
    size_t reason_len)
{
	size_t i;

	if (owns_broker(caller) && is_self(caller, subject->user))
		return true;
	if ((i = kw_perm_first_uncovered(subject->perms, subject->n_perms, want, n_want)) == n_want)
		return true;
	snprintf(reason, reason_len, "%.96s \"%s%s%s\", beyond what %.64s holds", holder,
	    want[i].verb, want[i].pattern[0] ? ":" : "", want[i].pattern, subject->user);
	return false;
}
