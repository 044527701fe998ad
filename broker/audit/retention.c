/*
 * retention.c - pruning the audit trail on schedule (see retention.h).
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "broker/dispatch/batch.h"
#include "broker/core/daemon.h"
#include "client/keywarden.h"
#include "common/log.h"
#include "broker/audit/retention.h"
#include "broker/store/users.h"

#define DAY 86400LL

int
kw_retention_run_batch(struct kw_broker *b, json_t **ret_report)
{
	char dir[4200];
	long long now = (long long)time(NULL);
	long long keep = kw_config_int(b->cfg, "security.audit.retention") * DAY;

	snprintf(dir, sizeof(dir), "%s/archive", b->data_dir);
	kw_batch_enter(b);
	if (!kw_batch_audit_ok(b))
		return KW_ERR_AUDIT;
	/* Wall-clock time: retention is about dates, not about how long we ran. */
	return kw_audit_prune(b->audit, (now - keep) * 1000,
	    kw_config_bool(b->cfg, "security.audit.autoArchive") ? dir : NULL,
	    KW_RETENTION_BATCH, ret_report);
}

/* Registered users keep their pseudonyms however quiet they are. */
static bool
registered(const char *name, void *ctx)
{
	struct kw_broker *b = ctx;
	struct kw_user u;

	return kw_user_by_name(b->state, name, &u) != KW_ERR_NOT_FOUND;
}

/*
 * security.compliance.gdpr.dataRetention: names that are not (or no longer)
 * keywarden users and have done nothing for that many days lose their
 * pseudonym mapping, as if erased; the records stay, unlinkable.
 */
static void
forget_departed(struct kw_broker *b, long long now)
{
	long long days = kw_config_int(b->cfg, "security.compliance.gdpr.dataRetention");
	int n = 0;

	if (!kw_config_bool(b->cfg, "security.compliance.gdpr.enabled") || !kw_batch_audit_ok(b))
		return;
	if (kw_audit_forget_idle(b->audit, (now - days * DAY) * 1000, registered, b, &n) < 0) {
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
	if (!meta || kw_audit_write(b->audit, &rec) < 0)
		kw_batch_note_write_failure(b);
	json_decref(meta);
	kw_log_info("gdpr dataRetention: %d departed users' pseudonyms forgotten", n);
}

void
kw_retention_tick(struct kw_broker *b)
{
	long long now = (long long)time(NULL);
	json_t *rep = NULL;
	int r;

	if (now < b->next_prune_at)
		return;
	if ((r = kw_retention_run_batch(b, &rep)) < 0) {
		kw_log_warn("audit retention: pruning failed (%s); retrying in a minute",
		    kw_strerror(r));
		b->next_prune_at = now + 60;
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
		forget_departed(b, now);
	b->next_prune_at = json_is_true(json_object_get(rep, "done")) ? now + DAY : now;
	json_decref(rep);
}

int
kw_retention_timeout_ms(const struct kw_broker *b)
{
	long long left = b->next_prune_at - (long long)time(NULL);

	if (left <= 0)
		return 0;
	/* Wake at least once a minute: the wall clock may jump (or be moved in tests). */
	return left > 60 ? 60000 : (int)(left * 1000);
}
