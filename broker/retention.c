/*
 * retention.c - pruning the audit trail on schedule (see retention.h).
 */
#include <stdio.h>
#include <time.h>

#include "batch.h"
#include "broker.h"
#include "keywarden.h"
#include "log.h"
#include "retention.h"

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
	/* More due: the next turn takes the next batch; else come back tomorrow. */
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
