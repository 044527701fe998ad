/*
 * cache.c - users, grants and compiled roles kept between requests, dropped
 * whenever the store says their tables changed (see cache.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/accounts/cache.h"
#include "broker/accounts/roles.h"
#include "broker/store/watch.h"
#include "client/keywarden.h"
#include "common/log.h"
#include "rbac/rbac.h"

/* Every table what is kept here is read from. */
static const char *const watched[] = { "users", "grants", "roles", NULL };

struct cached_role {
	char name[65];
	struct kw_perm *perms;
	size_t n;
};

enum slot_kind { SLOT_FREE, SLOT_USER, SLOT_NO_UID, SLOT_NO_NAME };

/* One user, or a uid no user holds (the key in user.uid); SLOT_NO_NAME only
   answers the lookup that read it, and is never kept. */
struct slot {
	enum slot_kind kind;
	struct kw_user user;
	json_t *roles;
	struct kw_perm *perms;
	size_t n_perms;
};

struct kw_roles {
	const struct kw_config *cfg;
	bool mfa_required;
	struct kw_state *st;		/* the store watched */
	struct kw_state_watch *watch;	/* NULL: none yet, or none to be had */
	bool unwatched;			/* no watch to be had: nothing is kept */
	uint64_t gen;			/* what everything kept was read at */
	struct cached_role *v;
	size_t n, cap;
	struct slot slots[KW_KNOWN_MAX];
	size_t used, hand;
	struct kw_cache_stats stats;
};

int
kw_roles_new(const struct kw_config *cfg, struct kw_roles **ret_roles)
{
	struct kw_roles *rc = calloc(1, sizeof(*rc));

	if (!rc)
		return KW_ERR_NOMEM;
	rc->cfg = cfg;
	rc->mfa_required = kw_config_bool(cfg, "security.authentication.mfa.enabled") &&
	    kw_config_bool(cfg, "security.authentication.mfa.required");
	*ret_roles = rc;
	return 0;
}

static void
slot_clear(struct slot *s)
{
	json_decref(s->roles);
	free(s->perms);
	memset(s, 0, sizeof(*s));
}

static void
forget(struct kw_roles *rc)
{
	if (rc->n > 0 || rc->used > 0)
		rc->stats.drops++;
	for (size_t i = 0; i < rc->n; i++)
		free(rc->v[i].perms);
	rc->n = 0;
	for (size_t i = 0; i < rc->used; i++)
		slot_clear(&rc->slots[i]);
	rc->used = rc->hand = 0;
}

void
kw_roles_free(struct kw_roles *rc)
{
	if (!rc)
		return;
	forget(rc);
	kw_state_watch_free(rc->watch);
	free(rc->v);
	free(rc);
}

bool
kw_roles_mfa_required(const struct kw_roles *rc)
{
	return rc->mfa_required;
}

void
kw_roles_stats(const struct kw_roles *rc, struct kw_cache_stats *ret_stats)
{
	*ret_stats = rc->stats;
	ret_stats->kept = rc->used;
}

/*
 * The one place that decides whether what is kept still holds: drop it all
 * when the watched tables moved on.  True when what is read from st now
 * may be kept (no uncommitted change to them is pending).
 */
static bool
current(struct kw_roles *rc, struct kw_state *st)
{
	uint64_t gen;
	bool stable;
	int r;

	if (!rc->watch && !rc->unwatched) {
		if ((r = kw_state_watch_new(st, watched, &rc->watch)) < 0) {
			kw_log_warn("state store: cannot watch users and roles (%s); every "
			    "request reads them from the store", kw_strerror(r));
			rc->unwatched = true;
			return false;
		}
		rc->st = st;
	}
	if (!rc->watch || st != rc->st)
		return false;
	gen = kw_state_watch_generation(rc->watch, &stable);
	if (gen != rc->gen) {
		forget(rc);
		rc->gen = gen;
	}
	return stable;
}

static int
compile(struct kw_roles *rc, struct kw_state *st, const char *name, struct cached_role *out)
{
	json_t *perms = NULL;
	bool configured;
	int r;

	if (strlen(name) >= sizeof(out->name))
		return KW_ERR_NOT_FOUND;
	if ((r = kw_role_permissions(rc->cfg, st, name, &perms, &configured)) < 0)
		return r;
	snprintf(out->name, sizeof(out->name), "%s", name);
	r = kw_rbac_compile(perms, &out->perms, &out->n);
	json_decref(perms);
	return r;
}

/* The compiled role name: kept, or compiled now (and kept when keep is true;
   else into *tmp, the caller's to free). */
static int
compiled(struct kw_roles *rc, struct kw_state *st, const char *name, bool keep,
    struct cached_role *tmp, const struct cached_role **ret_role)
{
	int r;

	if (!keep) {
		if ((r = compile(rc, st, name, tmp)) < 0)
			return r;
		*ret_role = tmp;
		return 0;
	}
	for (size_t i = 0; i < rc->n; i++)
		if (strcmp(rc->v[i].name, name) == 0) {
			*ret_role = &rc->v[i];
			return 0;
		}
	if (rc->n == rc->cap) {
		size_t cap = rc->cap ? 2 * rc->cap : 16;
		struct cached_role *v = realloc(rc->v, cap * sizeof(*v));
		if (!v)
			return KW_ERR_NOMEM;
		rc->v = v;
		rc->cap = cap;
	}
	if ((r = compile(rc, st, name, &rc->v[rc->n])) < 0)
		return r;
	*ret_role = &rc->v[rc->n++];
	return 0;
}

int
kw_roles_compiled(struct kw_roles *rc, struct kw_state *st, json_t *names,
    struct kw_perm **ret_perms, size_t *ret_n)
{
	bool keep = current(rc, st);
	const struct cached_role *role;
	struct cached_role tmp;
	struct kw_perm *all = NULL;
	size_t i, n = 0;
	json_t *name;
	int r;

	/* On every permissioned request: copies of parsed permissions, nothing parsed. */
	json_array_foreach(names, i, name) {
		memset(&tmp, 0, sizeof(tmp));
		r = compiled(rc, st, json_string_value(name), keep, &tmp, &role);
		if (r == KW_ERR_NOT_FOUND)
			continue;
		if (r < 0)
			goto fail;
		if (role->n > 0) {
			struct kw_perm *grown = realloc(all, (n + role->n) * sizeof(*grown));
			if (!grown) {
				free(tmp.perms);
				r = KW_ERR_NOMEM;
				goto fail;
			}
			all = grown;
			memcpy(all + n, role->perms, role->n * sizeof(*all));
			n += role->n;
		}
		free(tmp.perms);
	}
	*ret_perms = all;
	*ret_n = n;
	return 0;
 fail:
	free(all);
	return r;
}

/* The slot that answers for uid (name NULL) or for name. */
static struct slot *
find(struct kw_roles *rc, uid_t uid, const char *name)
{
	for (size_t i = 0; i < rc->used; i++) {
		struct slot *s = &rc->slots[i];
		if (name ? s->kind == SLOT_USER && strcmp(s->user.name, name) == 0 :
		    (s->kind == SLOT_USER || s->kind == SLOT_NO_UID) && s->user.uid == uid)
			return s;
	}
	return NULL;
}

/* Read the user from the store into *s (the caller's, cleared). */
static int
fill(struct kw_roles *rc, struct kw_state *st, uid_t uid, const char *name, struct slot *s)
{
	int r = name ? kw_user_by_name(st, name, &s->user) : kw_user_by_uid(st, uid, &s->user);

	if (r == KW_ERR_NOT_FOUND) {
		s->kind = name ? SLOT_NO_NAME : SLOT_NO_UID;
		if (name)
			snprintf(s->user.name, sizeof(s->user.name), "%s", name);
		else
			s->user.uid = uid;
		return 0;
	}
	if (r < 0 || (r = kw_user_roles(st, s->user.uid, &s->roles)) < 0 ||
	    (r = kw_roles_compiled(rc, st, s->roles, &s->perms, &s->n_perms)) < 0) {
		slot_clear(s);
		return r;
	}
	s->kind = SLOT_USER;
	return 0;
}

/* Keep *fresh (moved in); the oldest filled slot makes room. */
static struct slot *
store(struct kw_roles *rc, struct slot *fresh)
{
	struct slot *s;

	if (rc->used < KW_KNOWN_MAX) {
		s = &rc->slots[rc->used++];
	} else {
		s = &rc->slots[rc->hand];
		rc->hand = (rc->hand + 1) % KW_KNOWN_MAX;
		slot_clear(s);
	}
	*s = *fresh;
	memset(fresh, 0, sizeof(*fresh));
	return s;
}

static int
answer(const struct slot *s, unsigned what, struct kw_known *ret_known)
{
	memset(ret_known, 0, sizeof(*ret_known));
	if (s->kind != SLOT_USER)
		return KW_ERR_NOT_FOUND;
	ret_known->user = s->user;
	if ((what & KW_KNOWN_PERMS) && s->n_perms > 0) {
		if (!(ret_known->perms = malloc(s->n_perms * sizeof(*s->perms))))
			return KW_ERR_NOMEM;
		memcpy(ret_known->perms, s->perms, s->n_perms * sizeof(*s->perms));
		ret_known->n_perms = s->n_perms;
	}
	if (what & KW_KNOWN_ROLES)
		ret_known->roles = json_incref(s->roles);
	return 0;
}

static int
lookup(struct kw_roles *rc, struct kw_state *st, uid_t uid, const char *name, unsigned what,
    struct kw_known *ret_known)
{
	bool keep = current(rc, st);
	struct slot fresh = { 0 }, *s = keep ? find(rc, uid, name) : NULL;
	int r;

	if (s) {
		rc->stats.hits++;
	} else {
		rc->stats.misses++;
		if ((r = fill(rc, st, uid, name, &fresh)) < 0)
			return r;
		/* A name no one holds is not kept: anyone can type one (it may be a
		   mistyped secret), and it is asked about only on the way to a refusal. */
		s = keep && fresh.kind != SLOT_NO_NAME ? store(rc, &fresh) : &fresh;
	}
	r = answer(s, what, ret_known);
	slot_clear(&fresh);
	return r;
}

int
kw_known_by_uid(struct kw_roles *rc, struct kw_state *st, uid_t uid, unsigned what,
    struct kw_known *ret_known)
{
	return lookup(rc, st, uid, NULL, what, ret_known);
}

int
kw_known_by_name(struct kw_roles *rc, struct kw_state *st, const char *name, unsigned what,
    struct kw_known *ret_known)
{
	return lookup(rc, st, 0, name, what, ret_known);
}

void
kw_known_clear(struct kw_known *k)
{
	json_decref(k->roles);
	free(k->perms);
	memset(k, 0, sizeof(*k));
}
