/*
 * op_audit.c - the audit trail for administrators: query pages, verify the
 * chain and its signatures, prune by retention, the broker's public key.
 * All need admin on "audit"; all are recorded.
 */
#include <stdio.h>
#include <string.h>

#include "broker/audit/audit.h"
#include "broker/audit/ops.h"
#include "client/keywarden.h"
#include "broker/dispatch/dispatch.h"
#include "broker/audit/retention.h"

static int
int_arg(struct kw_call *call, const char *key, long long min, long long *ret)
{
	json_t *v = json_object_get(call->args, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min) {
		snprintf(call->msg, sizeof(call->msg), "\"%s\" must be an integer >= %lld", key, min);
		return KW_ERR_INVALID;
	}
	*ret = json_integer_value(v);
	return 0;
}

static int
str_arg(struct kw_call *call, const char *key, size_t max, const char **ret)
{
	json_t *v = json_object_get(call->args, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max) {
		snprintf(call->msg, sizeof(call->msg), "\"%s\" must be a string of 1 to %zu bytes",
		    key, max);
		return KW_ERR_INVALID;
	}
	*ret = json_string_value(v);
	return 0;
}

int
kw_op_audit_query(struct kw_call *call, json_t **ret_result)
{
	struct kw_audit_filter f = { 0 };
	long long limit = 0;
	int r;

	if ((r = str_arg(call, "user", 64, &f.user)) < 0 ||
	    (r = str_arg(call, "about", 64, &f.about)) < 0 ||
	    (r = str_arg(call, "action", 128, &f.action)) < 0 ||
	    (r = str_arg(call, "result", 16, &f.result)) < 0 ||
	    (r = int_arg(call, "since", 0, &f.since_ms)) < 0 ||
	    (r = int_arg(call, "until", 0, &f.until_ms)) < 0 ||
	    (r = int_arg(call, "after", 0, &f.after)) < 0 ||
	    (r = int_arg(call, "limit", 1, &limit)) < 0)
		return r;
	if (f.result && strcmp(f.result, "success") != 0 && strcmp(f.result, "denied") != 0 &&
	    strcmp(f.result, "error") != 0) {
		snprintf(call->msg, sizeof(call->msg), "\"result\" must be success, denied or error");
		return KW_ERR_INVALID;
	}
	if (limit > 1000) {
		snprintf(call->msg, sizeof(call->msg), "\"limit\" must be 1 to 1000");
		return KW_ERR_INVALID;
	}
	f.limit = (int)limit;
	/* The record of a query says what was asked for, not what was shown. */
	json_object_update(call->meta, call->args);
	if ((r = kw_audit_query(call->svc->audit, &f, ret_result)) < 0)
		snprintf(call->msg, sizeof(call->msg), "the audit store cannot be read");
	return r;
}

int
kw_op_audit_verify(struct kw_call *call, json_t **ret_result)
{
	int r = kw_audit_verify(call->svc->audit, ret_result);

	if (r < 0) {
		snprintf(call->msg, sizeof(call->msg), "the audit store cannot be read");
		return r;
	}
	json_object_set(call->meta, "ok", json_object_get(*ret_result, "ok"));
	json_object_set(call->meta, "records", json_object_get(*ret_result, "records"));
	json_object_set(call->meta, "bad", json_object_get(*ret_result, "bad"));
	return 0;
}

int
kw_op_audit_prune(struct kw_call *call, json_t **ret_result)
{
	int r = kw_retention_run_batch(call->svc, ret_result);

	if (r < 0) {
		snprintf(call->msg, sizeof(call->msg), "pruning failed: %s%s", kw_strerror(r),
		    r == KW_ERR_IO ? " (see the broker's log)" : "");
		return r;
	}
	json_object_set(call->meta, "pruned", json_object_get(*ret_result, "pruned"));
	json_object_set(call->meta, "archive", json_object_get(*ret_result, "archive"));
	return 0;
}

int
kw_op_audit_pubkey(struct kw_call *call, json_t **ret_result)
{
	char pk[KW_AUDIT_PK_B64], path[4200];

	kw_audit_public_key(call->svc->audit, pk);
	if (!pk[0]) {
		snprintf(call->msg, sizeof(call->msg), "the audit trail is not signed");
		return KW_ERR_INTERNAL;
	}
	snprintf(path, sizeof(path), "%s/audit.pub", call->svc->data_dir);
	*ret_result = json_pack("{s:s, s:s, s:s}", "public_key", pk, "algorithm", "ed25519",
	    "file", path);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}
