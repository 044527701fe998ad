/*
 * cache.h - what every request re-derives from state.db about its caller,
 * kept in memory between requests: the user row (by uid and by name, and
 * "no user has this uid"), the roles granted, their compiled permissions, and the
 * settings decisions read on every request (whether rights need a second
 * factor).
 *
 * DESIGN: invalidation in one place, which no writer can forget.  The cache
 * watches the tables it is made from -- users, grants, roles -- through
 * the store (broker/store/watch.h: SQLite reports every row written to
 * them, and every commit and rollback); whenever their generation moves
 * on, everything kept is dropped before the next answer.  Nothing read
 * while a change is uncommitted is kept, so a change undone by a rollback
 * leaves nothing behind.  The configured roles and settings come from the
 * configuration the cache was made over: a reload (SIGHUP) makes a new
 * cache over the new configuration (broker/reload.c).  Answers are copies
 * or references the caller owns: an entry dropped later does not pull
 * them away.
 *
 * The number of users kept is bounded (KW_KNOWN_MAX, the first filled goes
 * first).  A name no user holds is not kept at all: anyone can type one,
 * and it may be a mistyped secret (STYLE.md, 5).
 */
#ifndef KW_ACCOUNTS_CACHE_H
#define KW_ACCOUNTS_CACHE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "broker/store/users.h"
#include "common/config.h"
#include "common/macros.h"
#include "common/perm.h"

struct kw_state;
struct kw_roles;

#define KW_KNOWN_MAX 256	/* users (and uids no user holds) kept */

/*
 * A cache over cfg (borrowed: it must outlive the cache).  It watches the
 * first store it is asked about from then on.  0 or KW_ERR_NOMEM; free
 * with kw_roles_free (accepts NULL) before that store is closed.
 */
int kw_roles_new(const struct kw_config *cfg, struct kw_roles **ret_roles) KW_WUR KW_NONNULL(1, 2);
void kw_roles_free(struct kw_roles *rc);

/*
 * The union of the compiled permissions of the named roles (array of
 * strings, borrowed) into *ret_perms (malloc'd; free it) and *ret_n.  Names
 * of roles that no longer exist are skipped: a grant of a role removed from
 * the configuration grants nothing.  0, KW_ERR_NOMEM or KW_ERR_IO.
 */
int kw_roles_compiled(struct kw_roles *rc, struct kw_state *st, json_t *names,
    struct kw_perm **ret_perms, size_t *ret_n) KW_WUR KW_NONNULL(1, 2, 3, 4, 5);

/* What keywarden knows of a registered user. */
struct kw_known {
	struct kw_user user;
	json_t *roles;		/* KW_KNOWN_ROLES: the role names granted, sorted (a
				   reference of the caller's: do not change it) */
	struct kw_perm *perms;	/* KW_KNOWN_PERMS: their compiled union (malloc'd) */
	size_t n_perms;
};

#define KW_KNOWN_ROLES	0x1u
#define KW_KNOWN_PERMS	0x2u

/*
 * The user uid, or named name, as state.db holds it now, with what `what`
 * asks for; *ret_known is the caller's (kw_known_clear).  Drop-ins for
 * kw_user_by_uid and kw_user_by_name: 0, KW_ERR_NOT_FOUND (no such user;
 * *ret_known cleared), KW_ERR_NOMEM or KW_ERR_IO.
 */
int kw_known_by_uid(struct kw_roles *rc, struct kw_state *st, uid_t uid, unsigned what,
    struct kw_known *ret_known) KW_WUR KW_NONNULL(1, 2, 5);
int kw_known_by_name(struct kw_roles *rc, struct kw_state *st, const char *name,
    unsigned what, struct kw_known *ret_known) KW_WUR KW_NONNULL(1, 2, 3, 5);

/* Release what a kw_known holds and clear it.  Accepts one already cleared. */
void kw_known_clear(struct kw_known *k) KW_NONNULL(1);

/* Whether rights flow only from a second factor (security.authentication.mfa
   enabled and required), as the configuration of the cache says. */
bool kw_roles_mfa_required(const struct kw_roles *rc) KW_WUR KW_NONNULL(1);

/* What the cache did, for tests and measurements. */
struct kw_cache_stats {
	unsigned long long hits;	/* answered from memory */
	unsigned long long misses;	/* read from the store */
	unsigned long long drops;	/* everything dropped: the watched tables changed */
	size_t kept;			/* users (and uids no user holds) kept now */
};

void kw_roles_stats(const struct kw_roles *rc, struct kw_cache_stats *ret_stats)
	KW_NONNULL(1, 2);

#endif
