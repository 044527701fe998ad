/*
 * names.c - the one name validator (see names.h).
 */
#include <string.h>

#include "common/names.h"

static const struct {
	size_t max;
	const char *extra;	/* punctuation allowed besides letters and digits */
	const char *no_lead;	/* characters a name may not start with */
	const char *rule;
} kinds[] = {
	[KW_NAME_USER] = { 64, "._-", "-", "user name: 1-64 letters, digits, '.', '_' or '-'" },
	[KW_NAME_ROLE] = { 64, "_-", "-", "role name: 1-64 letters, digits, '_' or '-'" },
	[KW_NAME_KEY] = { 64, "._-", "-.", "key name: 1-64 letters, digits, '.', '_' or '-', "
	    "not starting with '.' or '-'" },
	[KW_NAME_RESOURCE] = { 256, "._/@+=,:-", "-", "resource (TYPE/NAME)" },
};

static bool
alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool
kw_name_char(char c)
{
	return alnum(c) || c == '.' || c == '_' || c == '-';
}

bool
kw_name_ok(enum kw_name_kind kind, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if ((unsigned)kind >= sizeof(kinds) / sizeof(kinds[0]))
		return false;
	if (n == 0 || n > kinds[kind].max || strchr(kinds[kind].no_lead, s[0]))
		return false;
	for (; *s; s++)
		if (!alnum(*s) && !strchr(kinds[kind].extra, *s))
			return false;
	return true;
}

const char *
kw_name_rule(enum kw_name_kind kind)
{
	return (unsigned)kind < sizeof(kinds) / sizeof(kinds[0]) ? kinds[kind].rule : "name";
}
