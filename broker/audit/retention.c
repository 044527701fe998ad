/*
 * retention.c - pruning the audit trail on schedule (see retention.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "broker/audit/audit.h"
#include "broker/dispatch/batch.h"
#include "client/keywarden.h"
#include "common/clock.h"
#include "common/log.h"
#include "broker/audit/retention.h"
#include "broker/store/users.h"

#define DAY 86400LL

int
kw_retention_run_batch(struct kw_services *svc, json_t **ret_report)
{
	char dir[4200];
	long long now = kw_now();
	long long keep = kw_config_int(svc->cfg, "security.audit.retention") * DAY;

	snprintf(dir, sizeof(dir), "%s/archive", svc->data_dir);
	kw_batch_enter(svc->batch);
	if (!kw_batch_audit_ok(svc->batch))
		return KW_ERR_AUDIT;
	/* Wall-clock time: retention is about dates, not about how long we ran. */
	return kw_audit_prune(svc->audit, (now - keep) * 1000,
	    kw_config_bool(svc->cfg, "security.audit.autoArchive") ? dir : NULL,
	    KW_RETENTION_BATCH, ret_report);
}

/* Registered users keep their pseudonyms however quiet they are. */
static bool
registered(const char *name, void *ctx)
{
	struct kw_services *svc = ctx;
	struct kw_user u;

	return kw_user_by_name(svc->state, name, &u) != KW_ERR_NOT_FOUND;
}

/*
 * security.compliance.gdpr.dataRetention: names that are not (or no longer)
 * keywarden users and have done nothing for that many days lose their
 * pseudonym mapping, as if erased; the records stay, unlinkable.
 */
static void
forget_departed(struct kw_services *svc, long long now)
{
	long long days = kw_config_int(svc->cfg, "security.compliance.gdpr.dataRetention");
	int n = 0;

	if (!kw_config_bool(svc->cfg, "security.compliance.gdpr.enabled") || !kw_batch_audit_ok(svc->batch))
		return;
	if (kw_audit_forget_idle(svc->audit, (now - days * DAY) * 1000, registered, svc, &n) < 0) {
		kw_log_warn("gdpr dataRetention: pseudonyms not forgotten this time");
		return;
	}
	if (n == 0)
		return;
	json_t *meta = json_pack("{s:i, s:I}", "forgotten", n, "days", (json_int_t)days);
	struct kw_audit_record rec = {
		.pid = getpid(), .action = "gdpr.retention", .resource = "audit", .result = "success",
		.metadata = meta, .request_id = -1,
	};
	if (!meta || kw_audit_write(svc->audit, &rec) < 0)
		kw_batch_note_write_failure(svc->batch);
	json_decref(meta);
	kw_log_info("gdpr dataRetention: %d departed users' pseudonyms forgotten", n);
}

/* The timer's own state: when the next batch is due. */
struct retention {
	struct kw_services *svc;
	long long next_at;	/* Unix seconds */
};

static void
tick(void *data)
{
	struct retention *rt = data;
	struct kw_services *svc = rt->svc;
	long long now = kw_now();
	json_t *rep = NULL;
	int r;

	if (now < rt->next_at)
		return;
	if ((r = kw_retention_run_batch(svc, &rep)) < 0) {
		kw_log_warn("audit retention: pruning failed (%s); retrying in a minute",
		    kw_strerror(r));
		rt->next_at = now + 60;
		return;
	}
	if (json_integer_value(json_object_get(rep, "pruned")) > 0)
		kw_log_info("audit retention: pruned %lld records%s%s",
		    (long long)json_integer_value(json_object_get(rep, "pruned")),
		    json_is_string(json_object_get(rep, "archive")) ? ", archived to " : "",
		    json_is_string(json_object_get(rep, "archive")) ?
		    json_string_value(json_object_get(rep, "archive")) : "");
	/* More due: the next turn takes the next batch; else, once done, come back tomorrow. */
	if (json_is_true(json_object_get(rep, "done")))
		forget_departed(svc, now);
	rt->next_at = json_is_true(json_object_get(rep, "done")) ? now + DAY : now;
	json_decref(rep);
}

static int
due_ms(void *data)
{
	const struct retention *rt = data;
	long long left = rt->next_at - kw_now();

	if (left <= 0)
		return 0;
	/* Wake at least once a minute: the wall clock may jump (or be moved in tests). */
	return left > 60 ? 60000 : (int)(left * 1000);
}

int
kw_retention_register(struct kw_dispatcher *d, struct kw_services *svc)
{
	struct retention *rt = calloc(1, sizeof(*rt));
	const struct kw_timer t = {
		.name = "audit retention", .due_ms = due_ms, .run = tick, .data = rt, .free = free,
	};
	int r;

	if (!rt)
		return KW_ERR_NOMEM;
	rt->svc = svc;
	if ((r = kw_dispatch_add_timer(d, &t)) < 0)
		free(rt);
	return r;
}
