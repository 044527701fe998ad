/*
 * space.c - watching the audit store's free space (see space.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "broker/audit/space.h"
#include "broker/dispatch/batch.h"
#include "client/keywarden.h"
#include "common/clock.h"
#include "common/log.h"

struct space {
	struct kw_services *svc;
	long long min_mb;	/* security.audit.minFreeSpace */
	int64_t next_ms;	/* when to look again (monotonic) */
	bool low;		/* below the watermark at the last look */
	bool failed;		/* statvfs failed at the last look (logged once) */
};

/* Megabytes free to the broker in dir, or -1 (logged once) when it cannot tell. */
static long long
free_mb(struct space *sp, const char *dir)
{
	struct statvfs vfs;

	if (statvfs(dir, &vfs) < 0) {
		if (!sp->failed)
			kw_log_warn("security.audit.minFreeSpace: %s: %s", dir, strerror(errno));
		sp->failed = true;
		return -1;
	}
	sp->failed = false;
	/* f_bavail, not f_bfree: what is left before the blocks reserved for root. */
	return (long long)(((unsigned long long)vfs.f_bavail * vfs.f_frsize) >> 20);
}

static void
tick(void *data)
{
	struct space *sp = data;
	struct kw_services *svc = sp->svc;
	int64_t now = kw_mono_ms();
	long long mb;

	if (now < sp->next_ms)
		return;
	sp->next_ms = now + KW_SPACE_CHECK_MS;
	if ((mb = free_mb(sp, svc->data_dir)) < 0 || (mb < sp->min_mb) == sp->low)
		return;
	sp->low = mb < sp->min_mb;
	if (sp->low)
		kw_log_warn("audit store: %lld MB free in %s, below security.audit.minFreeSpace "
		    "(%lld MB); still serving", mb, svc->data_dir, sp->min_mb);
	else
		kw_log_info("audit store: %lld MB free in %s again", mb, svc->data_dir);
	/* Told inside a turn: the alert's record lands with it, its mail after it. */
	kw_batch_enter(svc->batch);
	kw_batch_note_audit_space(svc->batch, &(struct kw_batch_space){ .low = sp->low,
	    .free_mb = mb, .min_mb = sp->min_mb, .dir = svc->data_dir });
}

static int
due_ms(void *data)
{
	const struct space *sp = data;
	int64_t left = sp->next_ms - kw_mono_ms();

	return left <= 0 ? 0 : (int)left;
}

int
kw_space_register(struct kw_dispatcher *d, struct kw_services *svc)
{
	long long min_mb = kw_config_int(svc->cfg, "security.audit.minFreeSpace");
	struct space *sp;
	int r;

	if (min_mb == 0)
		return 0;
	if (!(sp = calloc(1, sizeof(*sp))))
		return KW_ERR_NOMEM;
	*sp = (struct space){ .svc = svc, .min_mb = min_mb };
	const struct kw_timer t = {
		.name = "audit free space", .due_ms = due_ms, .run = tick, .data = sp, .free = free,
	};
	if ((r = kw_dispatch_add_timer(d, &t)) < 0)
		free(sp);
	return r;
}
