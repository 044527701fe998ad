/*
 * monitor.c - alerts and incidents (see monitor.h).
 *
 * Refusals are counted in memory, per uid (tracks.h: a ring of time
 * buckets spanning the longest window).  At most TRACK_MAX uids are
 * tracked; a track gives its place up only when idle, so one uid never
 * pushes another's count out.  Should every place hold a live count, a
 * further uid's refusals go uncounted and a monitor_full notice says so
 * (fail loud: nobody's count is lost silently).  Counts and rate limits
 * start afresh when the broker restarts.
 *
 * Times are the broker's wall clock (kw_now), which libfaketime moves in
 * tests.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/audit/audit.h"
#include "common/clock.h"
#include "common/fsutil.h"
#include "broker/alerts/incidents.h"
#include "broker/alerts/tracks.h"
#include "client/keywarden.h"
#include "broker/store/locks.h"
#include "common/log.h"
#include "broker/alerts/monitor.h"
#include "broker/alerts/delivery.h"
#include "broker/dispatch/dispatch.h"
#include "broker/login/sessions.h"
#include "broker/store/users.h"

#define TRACK_MAX	16384
#define NOTIFY_TIMEOUT_S 10
#define STOP_GRACE_MS	3000

enum alert_type { ALERT_SUSPICIOUS, ALERT_FAILED_AUTH, ALERT_TYPES };
_Static_assert(ALERT_TYPES <= KW_TRACK_RATES, "a rate limit per alert type and uid");

struct kw_monitor {
	struct kw_notifier *notifier;
	struct kw_tracks *tracks;	/* per uid, at most TRACK_MAX */
	long long width, keep;		/* their shape (tracks_new) */
	struct kw_tracks *next;		/* made for a reload, not yet in use */
	long long next_width, next_keep;
	struct kw_track_rate audit_rate;
	struct kw_track_rate full_rate;	/* monitor_full notices */
	bool audit_alerted;		/* an audit_unavailable alert went out, no recovery yet */
	struct kw_track_rate space_rate;
	bool space_alerted;		/* an audit_space_low alert went out, no recovery yet */
	bool busy;			/* raising an alert (its own records must not count) */
};

/* One alert, as it is audited, mailed and posted. */
struct alert {
	const char *type, *action, *user;
	uid_t uid;
	long long count, threshold, suppressed;
	char incident[KW_INCIDENT_ID_SIZE];	/* "" when none opened */
	json_t *actions;			/* borrowed; NULL when none */
	bool locked;				/* the block locked the account: */
	long long lock_duration;		/* for so long (0: until unlocked), */
	long long lock_repeat;			/* repeating that many locks before */
};

/* What a lock an alert made says in records: its duration (null: until
   unlocked) and which repeat it is (0: a first lock).  Nothing without one. */
static void
lock_details(const struct alert *al, json_t *meta)
{
	if (!al->locked)
		return;
	json_object_set_new(meta, "lock_duration", al->lock_duration > 0 ?
	    json_integer(al->lock_duration) : json_null());
	json_object_set_new(meta, "lock_repeat", json_integer(al->lock_repeat));
}

static enum alert_type
type_of(const char *name)
{
	return strcmp(name, "failed_authentication") == 0 ? ALERT_FAILED_AUTH : ALERT_SUSPICIOUS;
}

/* The window of an alert rule: its own "window", or security.monitoring.window. */
static long long
rule_window(const struct kw_config *cfg, json_t *rule)
{
	json_t *w = json_object_get(rule, "window");

	return json_is_integer(w) ? json_integer_value(w) :
	    kw_config_int(cfg, "security.monitoring.window");
}

/* The threshold of the first rule of type with action, or 0. */
static long long
rule_threshold(const struct kw_config *cfg, const char *type, const char *action)
{
	json_t *rule;
	size_t i;

	json_array_foreach(kw_config_get(cfg, "security.monitoring.alerts"), i, rule)
		if (strcmp(json_string_value(json_object_get(rule, "type")), type) == 0 &&
		    strcmp(json_string_value(json_object_get(rule, "action")), action) == 0)
			return json_integer_value(json_object_get(rule, "threshold"));
	return 0;
}

/* May an alert go out now?  If not it is counted; if so *ret_suppressed says how many were held. */
static bool
rate_allows(const struct kw_services *svc, struct kw_track_rate *r, long long now,
    long long *ret_suppressed)
{
	long long period = kw_config_int(svc->cfg, "security.monitoring.rateLimit");

	if (r->raised && now - r->last < period) {
		r->suppressed++;
		return false;
	}
	*ret_suppressed = r->suppressed;
	r->suppressed = 0;
	r->raised = true;
	r->last = now;
	return true;
}

/* ---- delivery ---------------------------------------------------------- */

static json_t *
alert_object(const struct alert *al)
{
	char ts[KW_RFC3339_LEN];
	json_t *o;

	kw_now_rfc3339(ts);
	o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:I}", "event", "alert", "type", al->type,
	    "user", al->user, "count", (json_int_t)al->count, "threshold",
	    (json_int_t)al->threshold, "action", al->action, "suppressed",
	    (json_int_t)al->suppressed);
	if (o) {
		json_object_set_new(o, "timestamp", json_string(ts));
		if (al->incident[0])
			json_object_set_new(o, "incident", json_string(al->incident));
		if (al->actions)
			json_object_set(o, "actions", al->actions);
	}
	return o;
}

static char *
alert_body(const struct alert *al)
{
	_cleanup_free_ char *acts = al->actions ? json_dumps(al->actions, JSON_COMPACT) : NULL;
	char ts[KW_RFC3339_LEN], *body = NULL;

	kw_now_rfc3339(ts);
	if (asprintf(&body, "keywarden raised an alert.\n\n"
	    "Alert:      %s\nUser:       %s\nCount:      %lld (threshold %lld)\nAction:     %s\n"
	    "Incident:   %s\nActions:    %s\nSuppressed: %lld earlier alert(s) of this kind "
	    "within security.monitoring.rateLimit\nTime:       %s\n\n"
	    "Details are in the audit trail: %s %s\n",
	    al->type, al->user, al->count, al->threshold, al->action,
	    al->incident[0] ? al->incident : "none", acts ? acts : "none", al->suppressed, ts,
	    al->incident[0] ? "keywarden admin incident report" : "keywarden admin audit query --user",
	    al->incident[0] ? al->incident : al->user) < 0)
		return NULL;
	return body;
}

/*
 * Queue the alert by mail (when mail and an address are set) and to the
 * webhook (when webhook and a URL are set).  The array of what was queued
 * ("mail", "webhook"): new, or NULL on ENOMEM.
 */
static json_t *
deliver(struct kw_services *svc, const struct alert *al, bool mail, bool webhook)
{
	const char *to = kw_config_str(svc->cfg, "security.monitoring.notificationEmail");
	struct kw_notifier *n = svc->monitor ? svc->monitor->notifier : NULL;
	json_t *queued = json_array();
	char subject[256];

	if (!queued || !n)
		return queued;
	if (mail && to[0]) {
		_cleanup_free_ char *body = alert_body(al);
		snprintf(subject, sizeof(subject), "[keywarden] ALERT %s for %.64s", al->type, al->user);
		if (body && kw_notifier_mail(n, to, subject, body) == 0)
			json_array_append_new(queued, json_string("mail"));
	}
	if (webhook && kw_notifier_has_webhook(n)) {
		json_t *o = alert_object(al);
		if (o && kw_notifier_post(n, o) == 0)
			json_array_append_new(queued, json_string("webhook"));
		json_decref(o);
	}
	return queued;
}

/* Append one record written by the broker itself (pid: ours). */
static int
audit(struct kw_services *svc, const char *user, uid_t uid, const char *action,
    const char *resource, json_t *meta)
{
	struct kw_audit_record rec = {
		.user = user, .uid = uid, .pid = getpid(), .action = action, .resource = resource,
		.result = "success", .metadata = meta, .request_id = -1,
	};

	return kw_audit_write(svc->audit, &rec);
}

/* The "alert" record of al, saying what was queued (delivery, borrowed). */
static int
audit_alert(struct kw_services *svc, const struct alert *al, json_t *delivery)
{
	char resource[96];
	json_t *meta;
	int r;

	snprintf(resource, sizeof(resource), "user/%s", al->user);
	meta = json_pack("{s:s, s:I, s:I, s:s, s:I, s:O}", "type", al->type,
	    "count", (json_int_t)al->count, "threshold", (json_int_t)al->threshold,
	    "action", al->action, "suppressed", (json_int_t)al->suppressed,
	    "delivery", delivery ? delivery : json_array());
	if (!meta)
		return KW_ERR_NOMEM;
	if (al->incident[0])
		json_object_set_new(meta, "incident", json_string(al->incident));
	lock_details(al, meta);
	r = audit(svc, al->user, al->uid, "alert", resource, meta);
	json_decref(meta);
	return r;
}

/* ---- suspicious activity ----------------------------------------------- */

static void
raise_notify(struct kw_services *svc, struct kw_track *t, const char *user, uid_t uid,
    long long count, long long threshold, long long now)
{
	struct alert al = { .type = "suspicious_activity", .action = "notify", .user = user,
		.uid = uid, .count = count, .threshold = threshold };
	json_t *queued;

	if (!rate_allows(svc, &t->rate[ALERT_SUSPICIOUS], now, &al.suppressed))
		return;
	kw_log_warn("alert suspicious_activity for %.64s: %lld refusals (threshold %lld)", user,
	    count, threshold);
	queued = deliver(svc, &al, true, true);
	if (audit_alert(svc, &al, queued) < 0)
		kw_log_error("the alert for %.64s could not be audited", user);
	json_decref(queued);
}

static void
raise_block(struct kw_services *svc, struct kw_track *t, const char *user, uid_t uid,
    long long count)
{
	json_t *meta = json_object();

	/* Only a registered user has an account to lock (lock_account looks uid up). */
	if (meta && kw_monitor_block(svc, user, uid, "suspicious_activity", count, meta) < 0)
		kw_log_error("blocking %.64s after suspicious activity failed", user);
	json_decref(meta);
	/* Counting starts afresh: the next block needs as many refusals again. */
	kw_track_reset(t);
}

static void monitor_full(struct kw_services *svc, uid_t uid, long long now);

static void
recorded(struct kw_services *svc, const char *user, uid_t uid, const char *result)
{
	struct kw_monitor *m = svc->monitor;
	long long now = kw_now();
	struct kw_track *t;
	json_t *rule;
	size_t i;

	if (!m || m->busy || !user || !user[0] || strcmp(result, "denied") != 0 ||
	    !kw_config_bool(svc->cfg, "security.monitoring.enabled"))
		return;
	if (!(t = kw_tracks_get(m->tracks, uid, now))) {
		monitor_full(svc, uid, now);
		return;
	}
	m->busy = true;
	kw_track_add(m->tracks, t, now);
	json_array_foreach(kw_config_get(svc->cfg, "security.monitoring.alerts"), i, rule) {
		long long threshold = json_integer_value(json_object_get(rule, "threshold"));
		long long count;

		if (strcmp(json_string_value(json_object_get(rule, "type")), "suspicious_activity") != 0)
			continue;
		count = kw_track_count(m->tracks, t, now, rule_window(svc->cfg, rule));
		if (count < threshold)
			continue;
		if (strcmp(json_string_value(json_object_get(rule, "action")), "block") == 0)
			raise_block(svc, t, user, uid, count);
		else
			raise_notify(svc, t, user, uid, count, threshold, now);
	}
	m->busy = false;
}

/* ---- blocks and incidents ---------------------------------------------- */

/* The back-off of automatic locks (security.authentication.lockout.*). */
static struct kw_lock_backoff
lock_backoff(const struct kw_config *cfg)
{
	return (struct kw_lock_backoff){
		.duration = kw_config_int(cfg, "security.authentication.lockout.duration"),
		.factor = kw_config_int(cfg, "security.authentication.lockout.backoffFactor"),
		.max = kw_config_int(cfg, "security.authentication.lockout.maxDuration"),
		.window = kw_config_int(cfg, "security.authentication.lockout.backoffWindow"),
	};
}

/*
 * Lock al's uid (if registered), for longer when it repeats an earlier
 * automatic lock, and end its sessions; al->locked says whether it was.
 */
static int
lock_account(struct kw_services *svc, struct alert *al, long long now, int *ret_ended)
{
	struct kw_lock_backoff b = lock_backoff(svc->cfg);
	long long until;
	struct kw_user u;
	int r;

	*ret_ended = 0;
	if ((r = kw_user_by_uid(svc->state, al->uid, &u)) == KW_ERR_NOT_FOUND)
		return 0;
	if (r < 0)
		return r;
	if ((r = kw_lock_auto(svc->state, u.uid, now, &b, strcmp(al->type,
	    "failed_authentication") == 0 ? "too many failed logins" : "suspicious activity",
	    &until, &al->lock_repeat)) < 0 ||
	    (r = kw_session_revoke_uid(svc->state, u.uid, ret_ended)) < 0)
		return r;
	al->locked = true;
	al->lock_duration = until < 0 ? 0 : until - now;
	return 0;
}

/* incidentLogPath, inside broker.dataDir when relative. */
static void
log_path(const struct kw_services *svc, char *out, size_t len)
{
	const char *p = kw_config_str(svc->cfg, "security.incidentResponse.incidentLogPath");

	if (p[0] == '/')
		snprintf(out, len, "%s", p);
	else
		snprintf(out, len, "%s/%s", svc->data_dir, p);
}

/* Append one JSON line to the incident log (0600, synced).  0 or KW_ERR_IO (logged). */
static int
incident_log(const struct kw_services *svc, const char *id, const char *opened, const char *type,
    const char *pseudonym, const json_t *actions)
{
	_cleanup_free_ char *line = NULL;
	_cleanup_close_ int fd = -1;
	char path[4096], err[4600];
	json_t *o;
	size_t len;

	o = json_pack("{s:s, s:s, s:s, s:s, s:O}", "id", id, "opened", opened, "type", type,
	    "user", pseudonym, "actions", actions);
	line = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	if (!line)
		return KW_ERR_NOMEM;
	log_path(svc, path, sizeof(path));
	len = strlen(line);
	line[len++] = '\n';	/* over the NUL: the length says where it ends */
	/* Not through a link, and only a file of root's or ours (fsutil.h). */
	fd = kw_open_private_path(path, O_WRONLY | O_APPEND | O_CREAT, 0600, err, sizeof(err));
	if (fd < 0) {
		kw_log_error("incident log %s", err);
		return KW_ERR_IO;
	}
	if (kw_write_all(fd, line, len) < 0 || fsync(fd) < 0) {
		kw_log_error("incident log %s: %s", path, strerror(errno));
		return KW_ERR_IO;
	}
	return 0;
}

/*
 * Open the incident of al (actions so far in al->actions, which grows by
 * what is done here), queue its mail and post, log it, and audit it.
 */
static int
open_incident(struct kw_services *svc, struct alert *al, json_t **ret_delivery)
{
	char pseudonym[KW_PSEUDONYM_SIZE], opened[KW_RFC3339_LEN], resource[64];
	long long opened_ms = kw_now_rfc3339(opened), id;
	json_t *details, *delivery = NULL, *meta;
	size_t i;
	json_t *d;
	int r;

	if ((r = kw_audit_pseudonym(svc->audit, al->user, pseudonym)) < 0)
		return r;
	details = json_pack("{s:I, s:I, s:s}", "count", (json_int_t)al->count, "threshold",
	    (json_int_t)al->threshold, "alert", al->type);
	if (!details)
		return KW_ERR_NOMEM;
	r = kw_incident_insert(svc->state, opened, opened_ms, al->type, pseudonym, al->actions, details,
	    &id);
	json_decref(details);
	if (r < 0)
		return r;
	kw_incident_id_text(id, al->incident);
	kw_log_warn("incident %s opened: %s for %.64s", al->incident, al->type, al->user);

	delivery = deliver(svc, al, kw_config_bool(svc->cfg, "security.incidentResponse.notifyAdmin"),
	    true);
	json_array_foreach(delivery, i, d)
		json_array_append_new(al->actions, json_string(strcmp(json_string_value(d), "mail") == 0 ?
		    "mailed" : "webhook"));
	if (kw_config_bool(svc->cfg, "security.incidentResponse.logIncidents") &&
	    incident_log(svc, al->incident, opened, al->type, pseudonym, al->actions) == 0)
		json_array_append_new(al->actions, json_string("logged"));
	if ((r = kw_incident_set_actions(svc->state, id, al->actions)) < 0)
		goto out;

	snprintf(resource, sizeof(resource), "incident/%s", al->incident);
	meta = json_pack("{s:s, s:s, s:O, s:I, s:I}", "id", al->incident, "type", al->type,
	    "actions", al->actions, "count", (json_int_t)al->count, "threshold",
	    (json_int_t)al->threshold);
	if (!meta) {
		r = KW_ERR_NOMEM;
		goto out;
	}
	json_object_set_new(meta, "user", json_string(al->user));
	lock_details(al, meta);
	r = audit(svc, al->user, al->uid, "incident.open", resource, meta);
	json_decref(meta);
 out:
	if (r < 0)
		json_decref(delivery);
	else
		*ret_delivery = delivery;
	return r;
}

int
kw_monitor_block(struct kw_services *svc, const char *user, uid_t uid, const char *type,
    long long count, json_t *meta)
{
	struct kw_monitor *m = svc->monitor;
	bool incidents = kw_config_bool(svc->cfg, "security.incidentResponse.enabled");
	bool lock = !incidents || kw_config_bool(svc->cfg, "security.incidentResponse.autoBlock");
	struct alert al = { .type = type, .action = "block", .user = user, .uid = uid,
		.count = count, .threshold = rule_threshold(svc->cfg, type, "block") };
	long long now = kw_now();
	struct kw_track *t;
	json_t *delivery = NULL;
	bool announce = true, was_busy = m ? m->busy : false;
	int r, ended = 0;

	if (!(al.actions = json_array()))
		return KW_ERR_NOMEM;
	if (m)
		m->busy = true;
	if (lock && (r = lock_account(svc, &al, now, &ended)) < 0)
		goto out;
	json_object_set_new(meta, "locked", json_boolean(al.locked));
	lock_details(&al, meta);
	if (al.locked) {
		json_object_set_new(meta, "sessions_ended", json_integer(ended));
		json_array_append_new(al.actions, json_string("locked"));
		json_array_append_new(al.actions, json_string("sessions_revoked"));
	}
	/* An incident is never rate-limited: each one is news.  A bare block is an alert like any. */
	if (m && !incidents && (t = kw_tracks_get(m->tracks, uid, now)))
		announce = rate_allows(svc, &t->rate[type_of(type)], now, &al.suppressed);
	if (incidents) {
		if ((r = open_incident(svc, &al, &delivery)) < 0)
			goto out;
		json_object_set_new(meta, "incident", json_string(al.incident));
	} else if (announce && m) {
		delivery = deliver(svc, &al, true, true);
	}
	r = announce ? audit_alert(svc, &al, delivery) : 0;
	if (announce)
		kw_log_warn("alert %s for %.64s: %lld (threshold %lld), %s", type, user, count,
		    al.threshold, al.locked ? "account locked" : "not locked");
 out:
	if (m)
		m->busy = was_busy;
	json_decref(delivery);
	json_decref(al.actions);
	return r;
}

int
kw_monitor_notice(struct kw_services *svc, const char *user, uid_t uid, const char *type)
{
	struct alert al = { .type = type, .action = "notify", .user = user, .uid = uid,
		.count = 1, .threshold = 1 };
	json_t *delivery = kw_config_bool(svc->cfg, "security.monitoring.enabled") ?
	    deliver(svc, &al, true, true) : NULL;
	int r;

	kw_log_warn("alert %s for %.64s", type, user);
	r = audit_alert(svc, &al, delivery);
	json_decref(delivery);
	return r;
}


/* ---- the broker's own alerts -------------------------------------------- */

/* An alert about keywardend itself (type, why), then what it means (then). */
static void
notice(struct kw_services *svc, const char *type, const char *why, long long suppressed,
    const char *then)
{
	const char *to = kw_config_str(svc->cfg, "security.monitoring.notificationEmail");
	struct kw_notifier *n = svc->monitor->notifier;
	_cleanup_free_ char *body = NULL;
	char ts[KW_RFC3339_LEN], subject[128];
	json_t *o;

	kw_now_rfc3339(ts);
	if (to[0] && asprintf(&body, "keywarden: %s.\n\nReason:     %s\nSuppressed: %lld earlier "
	    "alert(s) within security.monitoring.rateLimit\nTime:       %s\n\n%s\n", type, why,
	    suppressed, ts, then) >= 0) {
		snprintf(subject, sizeof(subject), "[keywarden] ALERT %s for keywardend", type);
		(void)kw_notifier_mail(n, to, subject, body);
	}
	o = json_pack("{s:s, s:s, s:s, s:I, s:s}", "event", "alert", "type", type, "reason", why,
	    "suppressed", (json_int_t)suppressed, "timestamp", ts);
	if (o)
		(void)kw_notifier_post(n, o);
	json_decref(o);
}

static void
audit_failed(struct kw_services *svc, const char *why)
{
	struct kw_monitor *m = svc->monitor;
	long long suppressed = 0;

	if (!m || !kw_config_bool(svc->cfg, "security.monitoring.enabled") ||
	    !rate_allows(svc, &m->audit_rate, kw_now(), &suppressed))
		return;
	kw_log_error("alert audit_unavailable: %s (requests are refused)", why);
	m->audit_alerted = true;
	notice(svc, "audit_unavailable", why, suppressed,
	    "Requests are refused until the audit store accepts records again (fail closed).");
}

static void
audit_recovered(struct kw_services *svc)
{
	struct kw_monitor *m = svc->monitor;

	if (!m || !m->audit_alerted)
		return;
	m->audit_alerted = false;
	kw_log_warn("the audit store accepts records again");
	notice(svc, "audit_recovered", "the audit store accepts records again", 0,
	    "The audit store accepts records again.");
}

/*
 * Every place of the table holds a live count, so uid's refusal goes
 * uncounted: pushing another uid's count out instead would let one caller
 * wipe another's slate.  Said at most once per rateLimit: the log, an
 * "alert" record of the broker's own, mail and webhook.
 */
static void
monitor_full(struct kw_services *svc, uid_t uid, long long now)
{
	struct kw_monitor *m = svc->monitor;
	long long suppressed = 0;
	char why[160];
	json_t *meta;

	if (!rate_allows(svc, &m->full_rate, now, &suppressed))
		return;
	snprintf(why, sizeof(why), "%zu uids with recent refusals are tracked already; "
	    "refusals of uid %u are not counted", kw_tracks_used(m->tracks), (unsigned)uid);
	kw_log_error("alert monitor_full: %s", why);
	meta = json_pack("{s:s, s:I, s:I, s:I}", "type", "monitor_full", "uid", (json_int_t)uid,
	    "tracked", (json_int_t)kw_tracks_used(m->tracks), "suppressed", (json_int_t)suppressed);
	if (!meta || audit(svc, NULL, 0, "alert", "monitor", meta) < 0)
		kw_log_error("the monitor_full alert could not be audited");
	json_decref(meta);
	notice(svc, "monitor_full", why, suppressed, "Refusals of further uids are not counted "
	    "until tracked ones have had none for security.monitoring.window.");
}

/*
 * The audit store's free space crossed security.audit.minFreeSpace: say so
 * by mail, webhook and an "alert" record (the store still takes records).
 */
static void
space_notice(struct kw_services *svc, const char *type, const struct kw_batch_space *sp,
    long long suppressed)
{
	const char *to = kw_config_str(svc->cfg, "security.monitoring.notificationEmail");
	struct kw_notifier *n = svc->monitor->notifier;
	_cleanup_free_ char *body = NULL;
	char ts[KW_RFC3339_LEN], subject[128];
	json_t *queued = json_array(), *o, *meta;

	kw_now_rfc3339(ts);
	if (to[0] && asprintf(&body, "keywarden: %s.\n\nFree:       %lld MB in %s\nWatermark:  "
	    "%lld MB (security.audit.minFreeSpace)\nSuppressed: %lld earlier alert(s) within "
	    "security.monitoring.rateLimit\nTime:       %s\n\n%s\n", type, sp->free_mb, sp->dir,
	    sp->min_mb, suppressed, ts, sp->low ?
	    "Requests are still served.  Make room before the disk is full: then nothing can be "
	    "answered until the audit store accepts records again (fail closed)." :
	    "The audit store has room again.") >= 0) {
		snprintf(subject, sizeof(subject), "[keywarden] ALERT %s for keywardend", type);
		if (kw_notifier_mail(n, to, subject, body) == 0 && queued)
			json_array_append_new(queued, json_string("mail"));
	}
	o = json_pack("{s:s, s:s, s:I, s:I, s:s, s:I, s:s}", "event", "alert", "type", type,
	    "free_mb", (json_int_t)sp->free_mb, "min_free_mb", (json_int_t)sp->min_mb,
	    "dir", sp->dir, "suppressed", (json_int_t)suppressed, "timestamp", ts);
	if (o && kw_notifier_has_webhook(n) && kw_notifier_post(n, o) == 0 && queued)
		json_array_append_new(queued, json_string("webhook"));
	json_decref(o);
	meta = json_pack("{s:s, s:I, s:I, s:I, s:O}", "type", type, "free_mb",
	    (json_int_t)sp->free_mb, "min_free_mb", (json_int_t)sp->min_mb, "suppressed",
	    (json_int_t)suppressed, "delivery", queued ? queued : json_array());
	if (!meta || audit(svc, NULL, 0, "alert", "audit", meta) < 0)
		kw_log_error("the %s alert could not be audited", type);
	json_decref(meta);
	json_decref(queued);
}

static void
audit_space(struct kw_services *svc, const struct kw_batch_space *sp)
{
	struct kw_monitor *m = svc->monitor;
	long long suppressed = 0;

	if (!m || !kw_config_bool(svc->cfg, "security.monitoring.enabled"))
		return;
	if (sp->low) {
		if (!rate_allows(svc, &m->space_rate, kw_now(), &suppressed))
			return;
		m->space_alerted = true;
		kw_log_warn("alert audit_space_low: %lld MB free in %s (security.audit.minFreeSpace "
		    "is %lld MB; requests are still served)", sp->free_mb, sp->dir, sp->min_mb);
		space_notice(svc, "audit_space_low", sp, suppressed);
	} else if (m->space_alerted) {
		m->space_alerted = false;
		space_notice(svc, "audit_space_recovered", sp, 0);
	}
}

/* ---- life ---------------------------------------------------------------- */

/* The longest window a suspicious_activity count looks back over. */
static long long
longest_window(const struct kw_config *cfg)
{
	long long longest = kw_config_int(cfg, "security.monitoring.window");
	json_t *rule;
	size_t i;

	json_array_foreach(kw_config_get(cfg, "security.monitoring.alerts"), i, rule)
		if (rule_window(cfg, rule) > longest)
			longest = rule_window(cfg, rule);
	return longest;
}

/*
 * The tracks: buckets wide enough for the longest window to fit the ring; a
 * track is idle (its place free) once nothing was counted within that window
 * and no alert about it is still rate-limited.
 */
static void
tracks_shape(const struct kw_config *cfg, long long *ret_width, long long *ret_keep)
{
	long long longest = longest_window(cfg);
	long long rate = kw_config_int(cfg, "security.monitoring.rateLimit");

	*ret_width = longest / KW_TRACK_BUCKETS + 1;
	*ret_keep = rate > longest ? rate : longest;
}

static int
tracks_new(const struct kw_config *cfg, struct kw_tracks **ret_tracks, long long *ret_width,
    long long *ret_keep)
{
	tracks_shape(cfg, ret_width, ret_keep);
	return kw_tracks_new(TRACK_MAX, *ret_width, *ret_keep, ret_tracks);
}

static int check_urls(const struct kw_config *cfg, char *err, size_t err_len);

int
kw_monitor_check_config(const struct kw_config *cfg, char *err, size_t err_len)
{
	long long duration = kw_config_int(cfg, "security.authentication.lockout.duration");
	long long max = kw_config_int(cfg, "security.authentication.lockout.maxDuration");
	int r;

	if ((r = check_urls(cfg, err, err_len)) < 0)
		return r;
	/* A cap below the first lock could not be honoured: say so rather than ignore it. */
	if (duration > 0 && max < duration) {
		snprintf(err, err_len, "security.authentication.lockout.maxDuration (%lld) must not "
		    "be shorter than security.authentication.lockout.duration (%lld)", max, duration);
		return KW_ERR_CONFIG;
	}
	return 0;
}

static int
check_urls(const struct kw_config *cfg, char *err, size_t err_len)
{
	const char *smtp = kw_config_str(cfg, "security.monitoring.smtp.url");
	const char *hook = kw_config_str(cfg, "security.monitoring.webhookUrl");

	if (strncmp(smtp, "smtp://", 7) != 0 && strncmp(smtp, "smtps://", 8) != 0) {
		snprintf(err, err_len, "security.monitoring.smtp.url: expected smtp:// or smtps://");
		return KW_ERR_CONFIG;
	}
	if (hook[0] && strncmp(hook, "https://", 8) != 0 &&
	    (strncmp(hook, "http://", 7) != 0 ||
	    kw_config_bool(cfg, "security.network.enforceHttps"))) {
		snprintf(err, err_len, "security.monitoring.webhookUrl: expected https://%s",
		    strncmp(hook, "http://", 7) == 0 ? " (security.network.enforceHttps is true)" : "");
		return KW_ERR_CONFIG;
	}
	return 0;
}

int
kw_monitor_open(struct kw_services *svc, struct kw_monitor **ret_monitor, char *err, size_t err_len)
{
	struct kw_notifier_options opt = {
		.smtp_url = kw_config_str(svc->cfg, "security.monitoring.smtp.url"),
		.mail_from = kw_config_str(svc->cfg, "security.monitoring.smtp.from"),
		.webhook_url = kw_config_str(svc->cfg, "security.monitoring.webhookUrl"),
		.verify_certificates = kw_config_bool(svc->cfg, "security.network.verifyCertificates"),
		.timeout_s = NOTIFY_TIMEOUT_S,
	};
	struct kw_monitor *m;
	int r;

	if ((r = kw_monitor_check_config(svc->cfg, err, err_len)) < 0)
		return r;
	if (!(m = calloc(1, sizeof(*m))) ||
	    tracks_new(svc->cfg, &m->tracks, &m->width, &m->keep) < 0) {
		free(m);
		snprintf(err, err_len, "out of memory");
		return KW_ERR_NOMEM;
	}
	if ((r = kw_notifier_start(&opt, &m->notifier, err, err_len)) < 0) {
		kw_tracks_free(m->tracks);
		free(m);
		return r;
	}
	*ret_monitor = m;
	return 0;
}

void
kw_monitor_close(struct kw_monitor *m)
{
	if (!m)
		return;
	kw_notifier_stop(m->notifier, STOP_GRACE_MS);
	kw_tracks_free(m->tracks);
	kw_tracks_free(m->next);
	free(m);
}

int
kw_monitor_reload_prepare(struct kw_monitor *m, const struct kw_config *cfg, char *err,
    size_t err_len)
{
	long long width, keep;
	int r;

	if ((r = kw_monitor_check_config(cfg, err, err_len)) < 0 || !m)
		return r;
	kw_tracks_free(m->next);
	m->next = NULL;
	tracks_shape(cfg, &width, &keep);
	if (width == m->width && keep == m->keep)
		return 0;
	/* Buckets of another width cannot hold the old counts: they start afresh. */
	if (tracks_new(cfg, &m->next, &m->next_width, &m->next_keep) < 0) {
		snprintf(err, err_len, "out of memory");
		return KW_ERR_NOMEM;
	}
	return 0;
}

void
kw_monitor_reload_finish(struct kw_monitor *m, bool commit)
{
	if (!m || !m->next)
		return;
	if (commit) {
		kw_log_info("monitoring: the windows changed; refusals are counted afresh");
		kw_tracks_free(m->tracks);
		m->tracks = m->next;
		m->width = m->next_width;
		m->keep = m->next_keep;
	} else {
		kw_tracks_free(m->next);
	}
	m->next = NULL;
}

/* ---- watching the turns (dispatch/batch.h) --------------------------------- */

static void
on_turn_begin(void *data)
{
	struct kw_services *svc = data;

	/* Alerts raised in the turn wait for its records. */
	if (svc->monitor && svc->monitor->notifier)
		kw_notifier_hold(svc->monitor->notifier);
}

static void
on_refused(void *data, const struct kw_batch_refusal *rf)
{
	recorded(data, rf->user, rf->uid, rf->result);
}

static void
on_turn_end(void *data, bool landed)
{
	struct kw_services *svc = data;

	if (svc->monitor && svc->monitor->notifier)
		kw_notifier_release(svc->monitor->notifier, landed);
}

static void
on_audit_state(void *data, const char *why)
{
	if (why)
		audit_failed(data, why);
	else
		audit_recovered(data);
}

static void
on_audit_space(void *data, const struct kw_batch_space *sp)
{
	audit_space(data, sp);
}

int
kw_monitor_observe(struct kw_services *svc)
{
	const struct kw_batch_observer o = {
		.turn_begin = on_turn_begin,
		.refused = on_refused,
		.turn_end = on_turn_end,
		.audit_state = on_audit_state,
		.audit_space = on_audit_space,
		.data = svc,
	};

	return kw_batch_observe(svc->batch, &o);
}
