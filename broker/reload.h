/*
 * reload.h - SIGHUP: the broker reads its configuration file again.
 *
 * The new file is checked first, as at start (schema, monitoring URLs,
 * lockout bounds).  It is refused, and the configuration in force kept,
 * when it is not valid or when it changes a setting only a restart can
 * change (kw_reload_restart_keys: the socket, the data directory, where
 * keys and the master key live, maxClients, the audit store's options and
 * the alert delivery's endpoints); the refusal is logged and recorded
 * ("config.reload", result error).  Otherwise the change is recorded
 * ("config.change" with the previous and the new digest, as at start) and
 * only then swapped in, between two turns of the event loop, so no request
 * ever sees two configurations: svc->cfg, the roles cache, the monitor's
 * counting, the dispatcher's refusal windows, the daemon's timeouts and
 * per-user limit and the log level all move together.  Everything else
 * reads svc->cfg when it needs a value, so it follows.
 */
#ifndef KW_RELOAD_H
#define KW_RELOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "broker/core/daemon.h"
#include "broker/dispatch/services.h"
#include "common/macros.h"

/* What a reload works on (broker/main.c fills one; it outlives the loop). */
struct kw_reload {
	struct kw_services *svc;
	const char *path;	/* the configuration file as named at start (read
				   anew each time: a file renamed there counts) */
	bool debug;		/* --debug: the log level stays at debug */
};

/* The dotted keys (or sections) whose change takes a restart; *ret_n of them. */
const char *const *kw_reload_restart_keys(size_t *ret_n) KW_NONNULL(1);

/* Log at security.audit.logLevel of cfg. */
void kw_reload_log_level(const struct kw_config *cfg) KW_NONNULL(1);

/* The daemon's settings from cfg: limits per user and timeouts. */
void kw_reload_daemon_settings(struct kw_daemon *dm, const struct kw_config *cfg)
	KW_NONNULL(1, 2);

/*
 * Record, and say in the log, each grant of a role that exists no longer
 * ("role.orphaned_grant"), into the current turn.  0 or the store's error.
 */
int kw_reload_record_orphans(struct kw_services *svc) KW_WUR KW_NONNULL(1);

/* The daemon's on_reload (daemon.h): ctx is a struct kw_reload. */
void kw_reload_run(struct kw_daemon *dm, void *ctx) KW_NONNULL(1, 2);

#endif
