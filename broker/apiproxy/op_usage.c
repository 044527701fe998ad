/*
 * op_usage.c - admin.usage: API calls per user and model since a time, as
 * the audit trail has them (one api_call record per call), and the budget
 * counters' seed at start (today's calls, UTC).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/apiproxy/apiproxy_internal.h"
#include "broker/apiproxy/ops.h"
#include "broker/apiproxy/since.h"
#include "broker/audit/audit.h"
#include "common/clock.h"
#include "common/errors.h"

/* Call fn(rec, ctx) for each api_call record since since_ms, page by page. */
static int
each_call(struct kw_audit *a, long long since_ms, void (*fn)(json_t *rec, void *ctx), void *ctx)
{
	struct kw_audit_filter f = { .action = "api_call", .since_ms = since_ms, .limit = 1000 };
	json_t *page = NULL, *rec;
	size_t i;
	int r;

	for (;;) {
		if ((r = kw_audit_query(a, &f, &page)) < 0)
			return r;
		json_array_foreach(json_object_get(page, "records"), i, rec)
			fn(rec, ctx);
		json_t *next = json_object_get(page, "next");
		f.after = json_is_integer(next) ? json_integer_value(next) : 0;
		json_decref(page);
		if (f.after == 0)
			return 0;
	}
}

static long long
meta_int(json_t *rec, const char *key)
{
	json_t *v = json_object_get(json_object_get(rec, "metadata"), key);

	return json_is_integer(v) && json_integer_value(v) > 0 ? json_integer_value(v) : 0;
}

/* One call's numbers into the row of (user, model). */
static void
add_row(json_t *rec, void *ctx)
{
	json_t *rows = ctx, *row;
	const char *user = json_string_value(json_object_get(rec, "user"));
	const char *result = json_string_value(json_object_get(rec, "result"));
	const char *model = json_string_value(json_object_get(json_object_get(rec, "metadata"),
	    "model"));
	char k[400];

	/* A refusal is not a call that reached the API. */
	if (!user || !result || strcmp(result, "denied") == 0)
		return;
	if (!model || !*model)
		model = "(unknown)";
	snprintf(k, sizeof(k), "%s\x1f%s", user, model);
	if (!(row = json_object_get(rows, k))) {
		row = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "user", user, "model", model,
		    "calls", (json_int_t)0, "input_tokens", (json_int_t)0, "output_tokens",
		    (json_int_t)0, "errors", (json_int_t)0);
		if (!row || json_object_set_new(rows, k, row) < 0)
			return;
	}
#define BUMP(f, n) json_object_set_new(row, f, \
	json_integer(json_integer_value(json_object_get(row, f)) + (n)))
	BUMP("calls", 1);
	BUMP("input_tokens", meta_int(rec, "input_tokens"));
	BUMP("output_tokens", meta_int(rec, "output_tokens"));
	BUMP("errors", strcmp(result, "success") != 0);
#undef BUMP
}

static int
by_user_model(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int c = strcmp(json_string_value(json_object_get(x, "user")),
	    json_string_value(json_object_get(y, "user")));

	return c ? c : strcmp(json_string_value(json_object_get(x, "model")),
	    json_string_value(json_object_get(y, "model")));
}

int
kw_op_admin_usage(struct kw_call *call, json_t **ret_result)
{
	json_t *since_arg = json_object_get(call->args, "since"), *rows, *list, *row, **v;
	long long now_ms = kw_now() * 1000, since_ms;
	const char *k;
	char when[32];
	size_t n = 0;
	int r;

	if ((since_arg && !json_is_string(since_arg)) ||
	    kw_usage_since(json_string_value(since_arg), now_ms, &since_ms) < 0) {
		snprintf(call->msg, sizeof(call->msg), "\"since\" must be an ISO 8601 time "
		    "(2026-12-01 or 2026-12-01T08:00:00Z) or a duration back from now "
		    "(30m, 24h, 7d)");
		return KW_ERR_INVALID;
	}
	if (!(rows = json_object()))
		return KW_ERR_NOMEM;
	if ((r = each_call(call->svc->audit, since_ms > 0 ? since_ms : 1, add_row, rows)) < 0) {
		json_decref(rows);
		snprintf(call->msg, sizeof(call->msg), "the audit trail cannot be read");
		return r;
	}
	v = calloc(json_object_size(rows) + 1, sizeof(*v));
	list = json_array();
	if (!v || !list) {
		free(v);
		json_decref(list);
		json_decref(rows);
		return KW_ERR_NOMEM;
	}
	json_object_foreach(rows, k, row)
		v[n++] = row;
	qsort(v, n, sizeof(*v), by_user_model);
	for (size_t i = 0; i < n; i++)
		json_array_append(list, v[i]);
	free(v);
	json_decref(rows);
	json_object_set_new(call->meta, "since_ms", json_integer(since_ms));
	*ret_result = json_pack("{s:s, s:o}", "since", kw_time_text(since_ms / 1000, when),
	    "rows", list);
	return *ret_result ? 0 : KW_ERR_NOMEM;
}

/* One recorded call's tokens into its user's count for today. */
static void
add_spent(json_t *rec, void *ctx)
{
	struct kw_apiproxy *ap = ctx;
	const char *user = json_string_value(json_object_get(rec, "user"));
	const char *result = json_string_value(json_object_get(rec, "result"));
	json_t *ts = json_object_get(rec, "ts_ms");

	if (!user || !result || strcmp(result, "denied") == 0 || !json_is_integer(ts))
		return;
	if (kw_spent_add(ap->spent, user, kw_budget_day(json_integer_value(ts)),
	    meta_int(rec, "input_tokens") + meta_int(rec, "output_tokens")) < 0)
		ap->seed_failed = true;
}

int
kw_ap_seed_spent(struct kw_apiproxy *ap)
{
	long long today = kw_budget_day(kw_now() * 1000);
	int r = each_call(ap->svc->audit, today * 86400000LL, add_spent, ap);

	return r < 0 ? r : ap->seed_failed ? KW_ERR_NOMEM : 0;
}
