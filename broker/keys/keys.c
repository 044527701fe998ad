/*
 * keys.c - API key versions: the values in the keystore, their bookkeeping
 * in the state store, kept in step (see keys.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/keys/keys.h"
#include "broker/store/keys.h"
#include "common/errors.h"
#include "common/log.h"

int
kw_key_put(struct kw_state *st, struct kw_keystore *ks, const char *name,
    const unsigned char *value, size_t len, long long now, long long grace, int *ret_version,
    int *ret_previous)
{
	int r, v, current;

	if ((r = kw_keymeta_next(st, name, &v, &current)) < 0)
		return r;
	/* The value is durable in the backend before any bookkeeping points at it. */
	if ((r = ks->ops->put(ks, name, v, value, len)) < 0 ||
	    (r = kw_keymeta_add(st, name, v, now, grace)) < 0)
		return r;
	*ret_version = v;
	*ret_previous = current;
	return 0;
}

int
kw_key_get(struct kw_state *st, struct kw_keystore *ks, const char *name, int version,
    long long now, unsigned char **ret_value, size_t *ret_len, int *ret_version)
{
	int r, v = 0;

	if ((r = kw_keymeta_usable(st, name, version, now, &v)) < 0 ||
	    (r = ks->ops->get(ks, name, v, ret_value, ret_len)) < 0)
		return r;
	/* When a key was last used is worth knowing; failing to note it is not worth a refusal. */
	if (kw_keymeta_used(st, name, now) < 0)
		kw_log_warn("key %.64s: last use not recorded", name);
	*ret_version = v;
	return 0;
}

int
kw_key_sweep(struct kw_state *st, struct kw_keystore *ks)
{
	json_t *todo = NULL, *e;
	size_t i;
	int r;

	if ((r = kw_keymeta_unwiped(st, &todo)) < 0)
		return r;
	json_array_foreach(todo, i, e) {
		const char *name = json_string_value(json_object_get(e, "name"));
		int v = (int)json_integer_value(json_object_get(e, "version"));
		r = ks->ops->destroy(ks, name, v);
		/* Already gone (a crash after the unlink): that is the goal. */
		if (r < 0 && r != KW_ERR_NOT_FOUND)
			break;
		if ((r = kw_keymeta_wiped(st, name, v)) < 0)
			break;
	}
	json_decref(todo);
	return r;
}
