/*
 * uid_counts.c - connections per uid (see uid_counts.h).
 */
#include <stdlib.h>

#include "broker/core/uid_counts.h"
#include "common/errors.h"

#define BUCKETS 256

struct node {
	uid_t uid;
	size_t n;
	struct node *next;
};

struct kw_uid_counts {
	struct node *b[BUCKETS];
};

static size_t
bucket(uid_t uid)
{
	return (uid * 2654435761u) % BUCKETS;
}

static struct node **
slot(struct kw_uid_counts *t, uid_t uid)
{
	struct node **p = &t->b[bucket(uid)];

	while (*p && (*p)->uid != uid)
		p = &(*p)->next;
	return p;
}

int
kw_uid_counts_new(struct kw_uid_counts **ret)
{
	return (*ret = calloc(1, sizeof(**ret))) ? 0 : KW_ERR_NOMEM;
}

void
kw_uid_counts_free(struct kw_uid_counts *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < BUCKETS; i++)
		while (t->b[i]) {
			struct node *n = t->b[i];
			t->b[i] = n->next;
			free(n);
		}
	free(t);
}

size_t
kw_uid_count(const struct kw_uid_counts *t, uid_t uid)
{
	for (const struct node *n = t->b[bucket(uid)]; n; n = n->next)
		if (n->uid == uid)
			return n->n;
	return 0;
}

int
kw_uid_count_add(struct kw_uid_counts *t, uid_t uid)
{
	struct node **p = slot(t, uid);

	if (!*p) {
		if (!(*p = calloc(1, sizeof(**p))))
			return KW_ERR_NOMEM;
		(*p)->uid = uid;
	}
	(*p)->n++;
	return 0;
}

void
kw_uid_count_remove(struct kw_uid_counts *t, uid_t uid)
{
	struct node **p = slot(t, uid), *n = *p;

	if (!n)
		return;
	if (--n->n == 0) {
		*p = n->next;
		free(n);
	}
}
