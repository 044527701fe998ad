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

#endif
