/*
 * monitor.c - alerts and incidents (see monitor.h).
 *
 * Refusals are counted in memory, per user, in a ring of time buckets
 * (TRACK_BUCKETS of them spanning the longest window): bounded memory
 * whatever the threshold, exact to within one bucket.  At most TRACK_MAX
 * users are tracked; the one seen least recently makes room.  Counts and
 * rate limits start afresh when the broker restarts.
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
#include "client/keywarden.h"
#include "broker/store/locks.h"
#include "common/log.h"
#include "broker/alerts/monitor.h"
#include "broker/alerts/delivery.h"
#include "broker/dispatch/dispatch.h"
#include "broker/login/sessions.h"
#include "broker/store/users.h"

#define TRACK_MAX	1024
#define TRACK_BUCKETS	32
#define NOTIFY_TIMEOUT_S 10
#define STOP_GRACE_MS	3000

enum alert_type { ALERT_SUSPICIOUS, ALERT_FAILED_AUTH, ALERT_TYPES };

/* When an alert of one kind last went out, and how many were held back since. */
struct rate {
	bool raised;
	long long last;
	long long suppressed;
};

struct bucket {
	long long slot;		/* time / width */
	unsigned count;
};

struct track {
	char name[65];		/* "" when free */
	long long seen;
	struct bucket b[TRACK_BUCKETS];
	struct rate rate[ALERT_TYPES];
};

struct kw_monitor {
	struct kw_notifier *notifier;
	struct track *tracks;		/* TRACK_MAX */
	long long width;		/* seconds per bucket */
	struct rate audit_rate;
	bool audit_alerted;		/* an audit_unavailable alert went out, no recovery yet */
	bool busy;			/* raising an alert (its own records must not count) */
};

/* One alert, as it is audited, mailed and posted. */
struct alert {
	const char *type, *action, *user;
	uid_t uid;
	long long count, threshold, suppressed;
	char incident[KW_INCIDENT_ID_SIZE];	/* "" when none opened */
	json_t *actions;			/* borrowed; NULL when none */
};

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

/* ---- counting ---------------------------------------------------------- */

static struct track *
track_get(struct kw_monitor *m, const char *user, long long now)
{
	struct track *t = NULL, *oldest = &m->tracks[0];

	for (size_t i = 0; i < TRACK_MAX && !t; i++) {
		struct track *c = &m->tracks[i];
		if (strcmp(c->name, user) == 0)
			t = c;
		else if (!c->name[0] || (oldest->name[0] && c->seen < oldest->seen))
			oldest = c;
	}
	if (!t) {
		t = oldest;
		memset(t, 0, sizeof(*t));
		snprintf(t->name, sizeof(t->name), "%s", user);
	}
	t->seen = now;
	return t;
}

static void
track_add(const struct kw_monitor *m, struct track *t, long long now)
{
	long long slot = now / m->width;
	struct bucket *bk = &t->b[slot % TRACK_BUCKETS];

	if (bk->slot != slot) {
		bk->slot = slot;
		bk->count = 0;
	}
	bk->count++;
}

/* Refusals within the last `window` seconds (to within one bucket). */
static long long
track_count(const struct kw_monitor *m, const struct track *t, long long now, long long window)
{
	long long slot = now / m->width, span = (window + m->width - 1) / m->width, n = 0;

	if (span > TRACK_BUCKETS)
		span = TRACK_BUCKETS;
	for (size_t i = 0; i < TRACK_BUCKETS; i++)
		if (t->b[i].count && t->b[i].slot <= slot && t->b[i].slot > slot - span)
			n += t->b[i].count;
	return n;
}

static void
track_reset(struct track *t)
{
	memset(t->b, 0, sizeof(t->b));
}

/* May an alert go out now?  If not it is counted; if so *ret_suppressed says how many were held. */
static bool
rate_allows(const struct kw_services *svc, struct rate *r, long long now, long long *ret_suppressed)
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
	r = audit(svc, al->user, al->uid, "alert", resource, meta);
	json_decref(meta);
	return r;
}

/* ---- suspicious activity ----------------------------------------------- */

static void
raise_notify(struct kw_services *svc, struct track *t, const char *user, uid_t uid, long long count,
    long long threshold, long long now)
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
raise_block(struct kw_services *svc, struct track *t, const char *user, uid_t uid, long long count)
{
	struct kw_user u;
	json_t *meta = json_object();

	/* Only a registered user has an account to lock; uid comes from the record. */
	if (kw_user_by_name(svc->state, user, &u) == 0)
		uid = u.uid;
	if (meta && kw_monitor_block(svc, user, uid, "suspicious_activity", count, meta) < 0)
		kw_log_error("blocking %.64s after suspicious activity failed", user);
	json_decref(meta);
	/* Counting starts afresh: the next block needs as many refusals again. */
	track_reset(t);
}

static void
recorded(struct kw_services *svc, const char *user, uid_t uid, const char *result)
{
	struct kw_monitor *m = svc->monitor;
	long long now = kw_now();
	struct track *t;
	json_t *rule;
	size_t i;

	if (!m || m->busy || !user || !user[0] || strcmp(result, "denied") != 0 ||
	    !kw_config_bool(svc->cfg, "security.monitoring.enabled"))
		return;
	m->busy = true;
	t = track_get(m, user, now);
	track_add(m, t, now);
	json_array_foreach(kw_config_get(svc->cfg, "security.monitoring.alerts"), i, rule) {
		long long threshold = json_integer_value(json_object_get(rule, "threshold"));
		long long count;

		if (strcmp(json_string_value(json_object_get(rule, "type")), "suspicious_activity") != 0)
			continue;
		count = track_count(m, t, now, rule_window(svc->cfg, rule));
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

/* Lock uid (if registered) and end its sessions; *ret_locked says whether it was. */
static int
lock_account(struct kw_services *svc, uid_t uid, const char *type, long long count,
    long long threshold, long long now, bool *ret_locked, int *ret_ended)
{
	long long until = -1;
	struct kw_user u;
	int r;

	*ret_locked = false;
	*ret_ended = 0;
	if ((r = kw_user_by_uid(svc->state, uid, &u)) == KW_ERR_NOT_FOUND)
		return 0;
	if (r < 0)
		return r;
	(void)kw_lock_due(count, threshold, now,
	    kw_config_int(svc->cfg, "security.authentication.lockout.duration"), &until);
	if ((r = kw_lock_set(svc->state, uid, now, until, strcmp(type, "failed_authentication") == 0 ?
	    "too many failed logins" : "suspicious activity", "keywarden")) < 0 ||
	    (r = kw_session_revoke_uid(svc->state, uid, ret_ended)) < 0)
		return r;
	*ret_locked = true;
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
	char path[4096];
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
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	if (fd < 0 || kw_write_all(fd, line, len) < 0 || fsync(fd) < 0) {
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
	json_t *delivery = NULL;
	bool locked = false, announce = true, was_busy = m ? m->busy : false;
	int r, ended = 0;

	if (!(al.actions = json_array()))
		return KW_ERR_NOMEM;
	if (m)
		m->busy = true;
	if (lock && (r = lock_account(svc, uid, type, count, al.threshold, now, &locked, &ended)) < 0)
		goto out;
	json_object_set_new(meta, "locked", json_boolean(locked));
	if (locked) {
		json_object_set_new(meta, "sessions_ended", json_integer(ended));
		json_array_append_new(al.actions, json_string("locked"));
		json_array_append_new(al.actions, json_string("sessions_revoked"));
	}
	/* An incident is never rate-limited: each one is news.  A bare block is an alert like any. */
	if (m && !incidents)
		announce = rate_allows(svc, &track_get(m, user, now)->rate[type_of(type)], now,
		    &al.suppressed);
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
		    al.threshold, locked ? "account locked" : "not locked");
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

/* ---- the audit store --------------------------------------------------- */

static void
audit_notice(struct kw_services *svc, const char *type, const char *why, long long suppressed)
{
	const char *to = kw_config_str(svc->cfg, "security.monitoring.notificationEmail");
	struct kw_notifier *n = svc->monitor->notifier;
	_cleanup_free_ char *body = NULL;
	char ts[KW_RFC3339_LEN], subject[128];
	json_t *o;

	kw_now_rfc3339(ts);
	if (to[0] && asprintf(&body, "keywarden: %s.\n\nReason:     %s\nSuppressed: %lld earlier "
	    "alert(s) within security.monitoring.rateLimit\nTime:       %s\n\n%s\n", type, why,
	    suppressed, ts, strcmp(type, "audit_unavailable") == 0 ?
	    "Requests are refused until the audit store accepts records again (fail closed)." :
	    "The audit store accepts records again.") >= 0) {
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
	audit_notice(svc, "audit_unavailable", why, suppressed);
}

static void
audit_recovered(struct kw_services *svc)
{
	struct kw_monitor *m = svc->monitor;

	if (!m || !m->audit_alerted)
		return;
	m->audit_alerted = false;
	kw_log_warn("the audit store accepts records again");
	audit_notice(svc, "audit_recovered", "the audit store accepts records again", 0);
}

/* ---- life ---------------------------------------------------------------- */

/* The bucket width that lets the longest suspicious_activity window fit the ring. */
static long long
bucket_width(const struct kw_config *cfg)
{
	long long longest = kw_config_int(cfg, "security.monitoring.window");
	json_t *rule;
	size_t i;

	json_array_foreach(kw_config_get(cfg, "security.monitoring.alerts"), i, rule)
		if (rule_window(cfg, rule) > longest)
			longest = rule_window(cfg, rule);
	return longest / TRACK_BUCKETS + 1;
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

	if ((r = check_urls(svc->cfg, err, err_len)) < 0)
		return r;
	if (!(m = calloc(1, sizeof(*m))) || !(m->tracks = calloc(TRACK_MAX, sizeof(*m->tracks)))) {
		free(m);
		snprintf(err, err_len, "out of memory");
		return KW_ERR_NOMEM;
	}
	m->width = bucket_width(svc->cfg);
	if ((r = kw_notifier_start(&opt, &m->notifier, err, err_len)) < 0) {
		free(m->tracks);
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
	free(m->tracks);
	free(m);
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

int
kw_monitor_observe(struct kw_services *svc)
{
	const struct kw_batch_observer o = {
		.turn_begin = on_turn_begin,
		.refused = on_refused,
		.turn_end = on_turn_end,
		.audit_state = on_audit_state,
		.data = svc,
	};

	return kw_batch_observe(svc->batch, &o);
}
