/*
 * sealed_cache.c - the file backend's memory of sealed key files (see
 * sealed_cache.h).  A handful of entries searched in order: a broker
 * serves a few keys, and the search is cheaper than any hash at this size.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "keystore/backends/sealed_cache.h"

#define ENTRIES 32

struct entry {
	char name[128];
	int version;		/* 0: the entry is empty */
	unsigned char *sealed;
	size_t len;
	unsigned long long used;	/* when last read (a counter), for eviction */
	struct stat st;		/* the file it was read from */
};

struct kw_sealed_cache {
	pthread_mutex_t lock;
	struct entry e[ENTRIES];
	unsigned long long clock;
};

struct kw_sealed_cache *
kw_sealed_cache_new(void)
{
	struct kw_sealed_cache *c = calloc(1, sizeof(*c));

	if (c)
		pthread_mutex_init(&c->lock, NULL);
	return c;
}

static void
clear(struct entry *e)
{
	free(e->sealed);
	memset(e, 0, sizeof(*e));
}

void
kw_sealed_cache_free(struct kw_sealed_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < ENTRIES; i++)
		clear(&c->e[i]);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static bool
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	    a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec &&
	    a->st_mode == b->st_mode && a->st_uid == b->st_uid && a->st_nlink == b->st_nlink;
}

/* The entry of (name, version), or NULL; lock held. */
static struct entry *
find(struct kw_sealed_cache *c, const char *name, int version)
{
	for (size_t i = 0; i < ENTRIES; i++)
		if (c->e[i].version == version && strcmp(c->e[i].name, name) == 0)
			return &c->e[i];
	return NULL;
}

int
kw_sealed_cache_get(struct kw_sealed_cache *c, const char *name, int version,
    const struct stat *now, unsigned char **ret, size_t *ret_len)
{
	struct entry *e;
	int r = KW_ERR_NOT_FOUND;

	pthread_mutex_lock(&c->lock);
	if ((e = find(c, name, version)) && !same_file(&e->st, now))
		clear(e);
	else if (e) {
		r = KW_ERR_NOMEM;
		if ((*ret = malloc(e->len))) {
			memcpy(*ret, e->sealed, e->len);
			*ret_len = e->len;
			e->used = ++c->clock;
			r = 0;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

void
kw_sealed_cache_put(struct kw_sealed_cache *c, const char *name, int version,
    const struct stat *was, const unsigned char *sealed, size_t len)
{
	struct entry *e, *oldest;
	unsigned char *copy;

	if (version < 1 || strlen(name) >= sizeof(e->name) || !(copy = malloc(len)))
		return;
	memcpy(copy, sealed, len);
	pthread_mutex_lock(&c->lock);
	if (!(e = find(c, name, version))) {
		oldest = &c->e[0];
		for (size_t i = 0; i < ENTRIES && oldest->version; i++)
			if (!c->e[i].version || c->e[i].used < oldest->used)
				oldest = &c->e[i];
		e = oldest;
	}
	clear(e);
	strcpy(e->name, name);
	e->version = version;
	e->sealed = copy;
	e->len = len;
	e->st = *was;
	e->used = ++c->clock;
	pthread_mutex_unlock(&c->lock);
}

void
kw_sealed_cache_drop(struct kw_sealed_cache *c, const char *name, int version)
{
	struct entry *e;

	pthread_mutex_lock(&c->lock);
	if ((e = find(c, name, version)))
		clear(e);
	pthread_mutex_unlock(&c->lock);
}
