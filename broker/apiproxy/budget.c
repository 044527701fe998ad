/*
 * budget.c - daily API token budgets (see budget.h).
 */
#include <stdlib.h>
#include <string.h>

#include "broker/apiproxy/budget.h"
#include "common/errors.h"

#define MS_PER_DAY 86400000LL

struct spent_row {
	char user[65];
	long long day;
	long long tokens;
};

struct kw_spent {
	struct spent_row *rows;
	size_t n, cap;
};

long long
kw_budget_limit(json_t *budgets, json_t *roles, const char **ret_role)
{
	long long best = KW_BUDGET_UNLIMITED;
	const char *best_role = NULL;
	json_t *role, *n;
	size_t i;

	json_array_foreach(roles, i, role) {
		if (!json_is_string(role))
			continue;
		n = json_object_get(json_object_get(budgets, json_string_value(role)),
		    "dailyTokens");
		if (json_is_integer(n) && json_integer_value(n) > best) {
			best = json_integer_value(n);
			best_role = json_string_value(role);
		}
	}
	if (ret_role)
		*ret_role = best_role;
	return best;
}

long long
kw_budget_day(long long ms)
{
	/* Floor division: a time before the epoch belongs to the day before. */
	return ms >= 0 ? ms / MS_PER_DAY : -((-ms + MS_PER_DAY - 1) / MS_PER_DAY);
}

struct kw_spent *
kw_spent_new(void)
{
	return calloc(1, sizeof(struct kw_spent));
}

void
kw_spent_free(struct kw_spent *s)
{
	if (!s)
		return;
	free(s->rows);
	free(s);
}

static struct spent_row *
find(const struct kw_spent *s, const char *user)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->rows[i].user, user) == 0)
			return &s->rows[i];
	return NULL;
}

int
kw_spent_add(struct kw_spent *s, const char *user, long long day, long long tokens)
{
	struct spent_row *r = find(s, user);

	if (tokens < 0)
		tokens = 0;
	if (!r) {
		if (s->n == s->cap) {
			size_t cap = s->cap ? s->cap * 2 : 16;
			struct spent_row *grown = realloc(s->rows, cap * sizeof(*grown));
			if (!grown)
				return KW_ERR_NOMEM;
			s->rows = grown;
			s->cap = cap;
		}
		r = &s->rows[s->n++];
		memset(r, 0, sizeof(*r));
		strncpy(r->user, user, sizeof(r->user) - 1);
		r->day = day;
	}
	if (day > r->day) {
		r->day = day;
		r->tokens = 0;
	} else if (day < r->day) {
		return 0;	/* a call of a day already over counts against nothing */
	}
	r->tokens = tokens > __LONG_LONG_MAX__ - r->tokens ? __LONG_LONG_MAX__ : r->tokens + tokens;
	return 0;
}

long long
kw_spent_get(const struct kw_spent *s, const char *user, long long day)
{
	const struct spent_row *r = find(s, user);

	return r && r->day == day ? r->tokens : 0;
}
