/*
 * op_key.c - API keys: set, rotate, get, list, revoke, verify.  The
 * dispatcher has decided (read or write on key/NAME); values never reach
 * the audit record, only names and versions.
 */
#include <stdio.h>
#include <string.h>

#include "broker/keys/keys.h"
#include "broker/keys/ops.h"
#include "client/keywarden.h"
#include "common/clock.h"
#include "common/log.h"
#include "broker/dispatch/dispatch.h"
#include "broker/keys/key_verify.h"

/*
 * After the change committed: remove the backend copies of destroyed
 * versions.  A failure leaves them for the next key operation's sweep.
 */
static void
sweep(struct kw_services *svc)
{
	if (kw_key_sweep(svc->state, svc->keystore) < 0)
		kw_log_warn("keystore: destroyed key versions not yet removed; will retry");
}

/* args.value: the key's text, 1..KW_KEY_VALUE_MAX bytes without NUL. */
static int
value_arg(struct kw_call *call, const char **ret, size_t *ret_len)
{
	json_t *v = json_object_get(call->args, "value");

	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > KW_KEY_VALUE_MAX) {
		snprintf(call->msg, sizeof(call->msg), "\"value\" must be 1 to %d bytes of text",
		    KW_KEY_VALUE_MAX);
		return KW_ERR_INVALID;
	}
	*ret = json_string_value(v);
	*ret_len = json_string_length(v);
	return 0;
}

/*
 * A new version of the key, current at once; the one before stays readable
 * for grace seconds -- unless the backend keeps one value per key (the
 * keychain), where the new value replaces it: then no grace is promised,
 * the old version is destroyed now, and the answer says so.
 */
static int
put(struct kw_call *call, long long grace, json_t **ret_result)
{
	const char *name = kw_arg_str(call->args, "name"), *value;
	const struct kw_keystore_ops *ops = call->svc->keystore->ops;
	bool no_grace = grace > 0 && ops->one_value;
	long long now = kw_now();
	size_t len;
	char until[32], why[160];
	int r, v = 0, prev = 0;

	if ((r = value_arg(call, &value, &len)) < 0 || (r = kw_key_expire(call->svc->state, now)) < 0)
		return r;
	if (no_grace)
		grace = 0;
	if ((r = kw_key_put(call->svc->state, call->svc->keystore, name,
	    (const unsigned char *)value, len, now, grace, &v, &prev)) < 0) {
		snprintf(call->msg, sizeof(call->msg), "the keystore could not store %.64s", name);
		return r;
	}
	json_object_set_new(call->meta, "version", json_integer(v));
	if (prev > 0)
		json_object_set_new(call->meta, "previous", json_integer(prev));
	/* With no grace (set) the previous version is destroyed as soon as this commits. */
	if (prev > 0 && grace == 0 && (r = kw_key_expire(call->svc->state, now)) < 0)
		return r;
	call->after_commit = sweep;
	*ret_result = json_pack("{s:s, s:i, s:o, s:o}", "name", name, "version", v,
	    "previous", prev > 0 ? json_integer(prev) : json_null(),
	    "grace_until", prev > 0 && grace > 0 ? json_string(kw_time_text(now + grace, until)) :
	    json_null());
	if (*ret_result && no_grace && prev > 0) {
		snprintf(why, sizeof(why), "the %s keeps one value per key: version %d was replaced "
		    "and is no longer readable (no grace period)", ops->name, prev);
		json_object_set_new(*ret_result, "grace_unavailable", json_string(why));
		json_object_set_new(call->meta, "grace_unavailable", json_true());
	}
	return *ret_result ? 0 : KW_ERR_NOMEM;
}

int
kw_op_key_set(struct kw_call *call, json_t **ret_result)
{
	/* A set replaces the value outright: the old version is destroyed once this commits. */
	return put(call, 0, ret_result);
}

int
kw_op_key_rotate(struct kw_call *call, json_t **ret_result)
{
	return put(call, kw_config_int(call->svc->cfg, "api.rotationGrace"), ret_result);
}

/* Say why a key could not be read; returns r. */
static int
read_failed(struct kw_call *call, const char *name, int version, int r)
{
	if (r == KW_ERR_NOT_FOUND && version)
		snprintf(call->msg, sizeof(call->msg), "key %.64s has no readable version %d", name,
		    version);
	else if (r == KW_ERR_NOT_FOUND)
		snprintf(call->msg, sizeof(call->msg), "no key named %.64s", name);
	else if (r == KW_ERR_IO)
		snprintf(call->msg, sizeof(call->msg), "key %.64s could not be read: it failed its "
		    "integrity check, or the keystore is unavailable (the broker's log says which)", name);
	return r;
}

static int
version_arg(struct kw_call *call, int *ret)
{
	json_t *v = json_object_get(call->args, "version");

	*ret = 0;
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000000000) {
		snprintf(call->msg, sizeof(call->msg), "\"version\" must be a version number");
		return KW_ERR_INVALID;
	}
	*ret = (int)json_integer_value(v);
	return 0;
}

int
kw_op_key_get(struct kw_call *call, json_t **ret_result)
{
	const char *name = kw_arg_str(call->args, "name");
	unsigned char *value = NULL;
	long long now = kw_now();
	size_t len = 0;
	int r, want, v = 0;

	if ((r = version_arg(call, &want)) < 0 || (r = kw_key_expire(call->svc->state, now)) < 0)
		return r;
	call->after_commit = sweep;
	r = kw_key_get(call->svc->state, call->svc->keystore, name, want, now, &value, &len, &v);
	if (r < 0)
		return read_failed(call, name, want, r);
	json_object_set_new(call->meta, "version", json_integer(v));
	*ret_result = json_pack("{s:s, s:i, s:s%}", "name", name, "version", v, "value",
	    (const char *)value, len);
	kw_keystore_free_value(value, len);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}

/*
 * A backend that keeps one value per key can give only the current
 * version: versions still in grace from before are not listed.
 */
static void
readable_only(json_t *keys)
{
	json_t *k, *list, *ver;
	size_t i, j;

	json_array_foreach(keys, i, k) {
		list = json_object_get(k, "versions");
		for (j = json_array_size(list); j-- > 0;) {
			ver = json_array_get(list, j);
			if (strcmp(json_string_value(json_object_get(ver, "state")), "current") != 0)
				json_array_remove(list, j);
		}
	}
}

int
kw_op_key_list(struct kw_call *call, json_t **ret_result)
{
	json_t *keys = NULL;
	int r;

	if ((r = kw_key_expire(call->svc->state, kw_now())) < 0 ||
	    (r = kw_key_list(call->svc->state, &keys)) < 0)
		return r;
	if (call->svc->keystore->ops->one_value)
		readable_only(keys);
	call->after_commit = sweep;
	*ret_result = json_pack("{s:o}", "keys", keys);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}

int
kw_op_key_revoke(struct kw_call *call, json_t **ret_result)
{
	const char *name = kw_arg_str(call->args, "name");
	json_t *destroyed = NULL;
	int r, version;

	if ((r = version_arg(call, &version)) < 0)
		return r;
	r = kw_key_revoke(call->svc->state, name, version, &destroyed);
	if (r == KW_ERR_NOT_FOUND)
		snprintf(call->msg, sizeof(call->msg), version ? "key %.64s has no version %d" :
		    "no key named %.64s", name, version);
	if (r < 0)
		return r;
	json_object_set(call->meta, "destroyed", destroyed);
	if (version > 0)
		json_object_set_new(call->meta, "version", json_integer(version));
	call->after_commit = sweep;
	*ret_result = json_pack("{s:s, s:o}", "name", name, "destroyed", destroyed);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}

/* Back on the loop after the live check: the answer, as the format check's. */
static int
verified(struct kw_call *call, void *ctx, json_t **ret_result)
{
	const struct kw_key_check *k = ctx;
	int r = kw_key_check_result(k, ret_result);

	if (r == 0) {
		json_object_set_new(*ret_result, "name", json_string(kw_arg_str(call->args, "name")));
		json_object_set(*ret_result, "version", json_object_get(call->meta, "version"));
		json_object_set(call->meta, "ok", json_object_get(*ret_result, "ok"));
	}
	return r;
}

int
kw_op_key_verify(struct kw_call *call, json_t **ret_result)
{
	const char *name = kw_arg_str(call->args, "name");
	struct kw_key_check *k = NULL;
	unsigned char *value = NULL;
	size_t len = 0;
	int r, v = 0;

	r = kw_key_get(call->svc->state, call->svc->keystore, name, 0, kw_now(), &value, &len, &v);
	if (r < 0)
		return read_failed(call, name, 0, r);
	json_object_set_new(call->meta, "version", json_integer(v));
	r = kw_key_check_new(call->svc->cfg, name, (const char *)value, &k);
	kw_keystore_free_value(value, len);
	if (r < 0)
		return r;
	/* Asking the provider takes the network: a worker does it, the loop goes on. */
	if (kw_key_check_wants_live(k))
		return kw_call_defer(call, kw_key_check_live, verified, kw_key_check_free, k);
	r = verified(call, k, ret_result);
	kw_key_check_free(k);
	return r;
}
