/*
 * rbac.h - the one place that decides whether a request may proceed.
 *
 * Every broker request names, in its feature's table (ops.c in each feature folder),
 * the verb it needs and how its resource is named; the dispatcher gathers
 * who the request is for and calls kw_rbac_decide.  Handlers never check
 * rights themselves.  Deny by default.
 */
#ifndef KW_RBAC_H
#define KW_RBAC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/macros.h"
#include "common/perm.h"

/* Who is on the other end of the socket, as the kernel says (SO_PEERCRED). */
struct kw_caller {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	const char *user;	/* name from the password database, or the uid */
	bool owner;		/* runs as the broker's own uid (set by the dispatcher):
				   owns a personal broker as root owns the system one */
};

/* Whom a request acts for, and what keywarden knows of them. */
struct kw_subject {
	const char *user;	/* the caller's own name unless root asks for another */
	bool registered;	/* a keywarden user (users table) */
	const struct kw_perm *perms;	/* union of the subject's roles' permissions (borrowed) */
	size_t n_perms;
};

/*
 * Compile a list of permission strings once, for many decisions: what does
 * not parse (or is not a string) is left out -- a stored role that no
 * longer parses grants nothing.  *ret_perms is malloc'd (NULL when
 * *ret_n is 0).  0 or KW_ERR_NOMEM.
 */
int kw_rbac_compile(json_t *permissions, struct kw_perm **ret_perms, size_t *ret_n)
	KW_WUR KW_NONNULL(2, 3);

/*
 * Whether caller may act for user at all (kw_rbac_decide's first rule):
 * for itself, and uid 0 (sshd, sudo) or the broker's owner for anyone.
 * Refusals of a request for user count against user only when this holds,
 * else against caller.
 */
bool kw_rbac_may_act_for(const struct kw_caller *caller, const char *user)
	KW_WUR KW_NONNULL(1, 2);

/*
 * Whether caller asks for `verb` for user as an owner of the broker, which
 * takes no session (and, for itself, no role): uid 0 always -- it owns the
 * machine, and sshd and sudo ask through it; the broker's owner (the uid it
 * runs as) to administer (verb "admin") or to act for another user.  For
 * its own keys and checks the owner is a user like any other: its roles
 * decide, and they take a session.
 */
bool kw_rbac_owner_asks(const struct kw_caller *caller, const char *verb, const char *user)
	KW_WUR KW_NONNULL(1, 2, 3);

/*
 * Decide whether caller may have `verb` done on `resource` (NULL: no
 * particular resource) for subject.  Rules, in order:
 *   - only uid 0 and the broker's owner may act for another user;
 *   - verb "" marks operations any caller may use (for itself);
 *   - an owner asking for itself (kw_rbac_owner_asks) may: uid 0
 *     everything, the broker's owner every "admin";
 *   - an unregistered subject may do nothing;
 *   - otherwise one of the subject's permissions must grant verb on resource.
 * Returns true to allow; on refusal writes the reason to `reason`.
 */
bool kw_rbac_decide(const struct kw_caller *caller, const struct kw_subject *subject,
    const char *verb, const char *resource, char *reason, size_t reason_len)
	KW_WUR KW_NONNULL(1, 2, 3, 5);

/*
 * The ceiling of delegated administration: whether what a request hands
 * out or acts on (want: a new role's permissions, a role granted or
 * revoked, the permissions of the user acted on) is within the subject's
 * own permissions -- each one covered by a single permission of the
 * subject (kw_perm_covers).  uid 0 and the broker's owner acting for
 * themselves are not limited.  On refusal writes to reason "<holder>
 * "<permission>", beyond what <subject> holds", holder naming what holds
 * want ("user bob holds", "the new role would grant").
 */
bool kw_rbac_within(const struct kw_caller *caller, const struct kw_subject *subject,
    const struct kw_perm *want, size_t n_want, const char *holder, char *reason,
    size_t reason_len) KW_WUR KW_NONNULL(1, 2, 5, 6);

#endif
