/*
 * budget.h - daily API token budgets (security.api.budgets): the arithmetic,
 * free of stores and of the dispatcher so it can be tested alone.
 *
 * A role may carry {"dailyTokens": N}; a user's budget is the largest of
 * their roles' (a user none of whose roles has an entry is unlimited).  A day
 * is a UTC day.  What a user spent is the input plus output tokens of their
 * recorded API calls that day; the broker keeps it in memory (kw_spent),
 * seeded from the audit trail at start.
 */
#ifndef KW_APIPROXY_BUDGET_H
#define KW_APIPROXY_BUDGET_H

#include <jansson.h>

#include "common/macros.h"

#define KW_BUDGET_UNLIMITED	(-1LL)

/*
 * The daily budget of a user holding roles (an array of role names) under
 * budgets (the security.api.budgets object): the largest dailyTokens of the
 * roles that have one, with *ret_role (may be NULL) naming it (borrowed from
 * roles); KW_BUDGET_UNLIMITED when none has one.
 */
long long kw_budget_limit(json_t *budgets, json_t *roles, const char **ret_role);

/* The UTC day (days since 1970-01-01) of a time in milliseconds since the epoch. */
long long kw_budget_day(long long ms);

/* Tokens each user spent on the current day. */
struct kw_spent;

/* A new, empty counter.  NULL on ENOMEM.  Free with kw_spent_free (accepts NULL). */
struct kw_spent *kw_spent_new(void);
void kw_spent_free(struct kw_spent *s);

/* Add tokens to user's count for day (a later day starts from 0).  0 or KW_ERR_NOMEM. */
int kw_spent_add(struct kw_spent *s, const char *user, long long day, long long tokens)
	KW_WUR KW_NONNULL(1, 2);

/* What user spent on day (0 when nothing was counted for that day). */
long long kw_spent_get(const struct kw_spent *s, const char *user, long long day)
	KW_NONNULL(1, 2);

#endif
