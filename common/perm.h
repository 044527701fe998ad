/*
 * perm.h - the permission grammar and its matching.
 *
 *	PERMISSION := VERB [ ":" PATTERN ]
 *	VERB       := "read" | "write" | "execute" | "admin" | "*"
 *	PATTERN    := 1..128 characters from [A-Za-z0-9._/@+=,-] and the glob
 *	              characters '*' (any run, '/' included) and '?' (one)
 *
 * A pattern narrows the permission to resources named TYPE/NAME
 * ("key/anthropic", "user/alice"); it is matched with fnmatch(3) against
 * the whole name.  The grammar is small on purpose: no character classes,
 * no negation, so what a role grants can be read at a glance.
 */
#ifndef KW_PERM_H
#define KW_PERM_H

#include <stdbool.h>
#include <stddef.h>

#include "common/macros.h"

#define KW_PERM_PATTERN_MAX 128

struct kw_perm {
	char verb[8];				/* "read", ..., "*" */
	char pattern[KW_PERM_PATTERN_MAX + 1];	/* "" when not narrowed */
};

/*
 * Parse text into *ret_perm.  0, or KW_ERR_INVALID with a message in err
 * that quotes the permission and says where it is wrong.
 */
int kw_perm_parse(const char *text, struct kw_perm *ret_perm, char *err, size_t err_len)
	KW_WUR KW_NONNULL(1, 2, 3);

/* True when verb is one of the grammar's verbs (not "*"): what a request may ask. */
bool kw_perm_verb_known(const char *verb) KW_NONNULL(1);

/*
 * True when perm grants `verb` on `resource` (NULL: a request about no
 * particular resource, which a narrowed permission never grants).
 */
bool kw_perm_grants(const struct kw_perm *perm, const char *verb, const char *resource)
	KW_WUR KW_NONNULL(1, 2);

/*
 * True when `have` grants everything `want` grants: every verb and resource
 * want grants, have grants too ("want is no stronger than have").  The check
 * is conservative -- it may answer false where have does cover want -- and
 * reads as follows:
 *   - the verb: have's is "*", or both are the same verb ("*" is covered by
 *     "*" only);
 *   - the pattern: have's is empty (any resource, and requests about none);
 *     or want's is not empty and
 *       - equals have's, or
 *       - has no glob character and have's pattern matches it, or
 *       - starts with X, where have's pattern is X followed by one final
 *         '*' and X has no glob character ("key/team-*" covers
 *         "key/team-a?" and "key/team-sub*"; "*" covers every pattern).
 * An unnarrowed want ("read") is covered only by an unnarrowed have.
 */
bool kw_perm_covers(const struct kw_perm *have, const struct kw_perm *want)
	KW_WUR KW_NONNULL(1, 2);

/*
 * The index of the first permission of want[] that no single permission of
 * have[] covers (kw_perm_covers), or n_want when have covers them all.
 * Several permissions together are not combined ("read" and "write" do not
 * cover "*").
 */
size_t kw_perm_first_uncovered(const struct kw_perm *have, size_t n_have,
    const struct kw_perm *want, size_t n_want) KW_WUR;

#endif
