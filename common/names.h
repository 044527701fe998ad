/*
 * names.h - the one validator for the names that reach SQL, the audit
 * trail, file names and terminals: users, roles, keys and resources.
 * Each kind is plain ASCII of a bounded length that never starts with '-'
 * (it would read as an option on a command line).
 */
#ifndef KW_NAMES_H
#define KW_NAMES_H

#include <stdbool.h>

#include "common/macros.h"

enum kw_name_kind {
	KW_NAME_USER,		/* Unix user names as used in practice: [A-Za-z0-9._-], 1-64 */
	KW_NAME_ROLE,		/* [A-Za-z0-9_-], 1-64 */
	KW_NAME_KEY,		/* [A-Za-z0-9._-], 1-64, not starting with '.' either */
	KW_NAME_RESOURCE,	/* TYPE/NAME words: [A-Za-z0-9._/@+=,:-], 1-256 */
};

/* True when s (may be NULL) is a valid name of that kind. */
bool kw_name_ok(enum kw_name_kind kind, const char *s);

/* True when c may appear in a user or key name (for finding whole words). */
bool kw_name_char(char c);

/* What a valid name of that kind looks like, for error messages (static). */
const char *kw_name_rule(enum kw_name_kind kind);

#endif
