/*
 * monitor.h - alerts (security.monitoring) and incidents
 * (security.incidentResponse): turning what the audit trail records into
 * locks, mail and webhook posts.
 *
 * Everything here runs on the event loop thread inside the current group
 * commit (records it writes join the batch through kw_audit_write); only
 * delivery (SMTP, webhook) happens on the notifier thread, from copies.
 */
#ifndef KW_MONITOR_H
#define KW_MONITOR_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "common/macros.h"

struct kw_config;
struct kw_services;
struct kw_monitor;

/*
 * The settings the monitor needs beyond each key's own check (mail and
 * webhook URLs; a lockout.maxDuration not below lockout.duration).  0, or
 * KW_ERR_CONFIG with err set.  kw_monitor_open checks them too.
 */
int kw_monitor_check_config(const struct kw_config *cfg, char *err, size_t err_len)
	KW_WUR KW_NONNULL(1, 2);

/* Start the monitor and its notifier thread.  0, or an error with err set. */
int kw_monitor_open(struct kw_services *svc, struct kw_monitor **ret_monitor, char *err,
    size_t err_len) KW_WUR KW_NONNULL(1, 2, 3);

/*
 * A reload (SIGHUP): check cfg as kw_monitor_open does, and make the
 * counting it needs when its windows (security.monitoring.window, a rule's
 * own, rateLimit) give counts another shape -- those then start afresh.
 * Nothing changes until kw_monitor_reload_finish.  m may be NULL (only the
 * check).  0, or an error with err set.  The notifier's settings (SMTP and
 * webhook URLs, the sender, verifyCertificates) are not reloaded: they take
 * a restart.
 */
int kw_monitor_reload_prepare(struct kw_monitor *m, const struct kw_config *cfg, char *err,
    size_t err_len) KW_WUR KW_NONNULL(2, 3);

/* commit: svc->cfg is now the prepared configuration: use what was made
   for it; else drop it.  Accepts NULL. */
void kw_monitor_reload_finish(struct kw_monitor *m, bool commit);

/* Stop the notifier (queued messages get a short grace to go out).  Accepts NULL. */
void kw_monitor_close(struct kw_monitor *m);

/*
 * Watch the turns of svc->batch (set by the dispatcher): each recorded
 * refusal of a user counts towards suspicious_activity and may raise that
 * alert (an "alert" record, mail, webhook) or, for a rule with action
 * block, call kw_monitor_block -- before the turn commits, so what it
 * writes lands with the turn.  Alerts raised in a turn are sent only if its
 * records landed; a failing audit store raises audit_unavailable, and its
 * recovery says so.  0 or KW_ERR_NOMEM.
 */
int kw_monitor_observe(struct kw_services *svc) KW_WUR KW_NONNULL(1);

/*
 * The threshold of an alert with action block (type failed_authentication
 * or suspicious_activity) was reached for user (uid): the one place an
 * account is locked automatically.  With security.incidentResponse.enabled
 * an incident opens and is acted on as that section says (autoBlock: lock
 * and end sessions; notifyAdmin: mail; logIncidents: the incident log);
 * without it the account is locked and sessions end.  meta gets "locked",
 * "sessions_ended" and "incident" (its id) as they apply.  The alert and
 * the incident are audited ("alert", "incident.open").
 * 0, or an error from a store (the request then fails, nothing lands).
 */
int kw_monitor_block(struct kw_services *svc, const char *user, uid_t uid, const char *type,
    long long count, json_t *meta) KW_WUR KW_NONNULL(1, 2, 4, 6);

/*
 * An event that is an alert by itself, with no threshold (a user replaced
 * their own second factor): the "alert" record of type for user (action
 * notify), and, with security.monitoring.enabled, mail and the webhook
 * post, sent once the turn's records landed.  Not rate-limited: each one
 * is news.  0, or an error from the audit store.
 */
int kw_monitor_notice(struct kw_services *svc, const char *user, uid_t uid, const char *type)
	KW_WUR KW_NONNULL(1, 2, 4);

#endif
