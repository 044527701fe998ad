/*
 * reload.c - SIGHUP: the configuration read again, checked, recorded and
 * swapped in between two turns (see reload.h).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "broker/accounts/cache.h"
#include "broker/accounts/roles.h"
#include "broker/alerts/monitor.h"
#include "broker/apiproxy/apiproxy.h"
#include "broker/audit/audit.h"
#include "broker/dispatch/dispatch.h"
#include "broker/reload.h"
#include "broker/store/state.h"
#include "client/keywarden.h"
#include "common/config.h"
#include "common/log.h"
#include "policy/detect/detect.h"
#include "policy/policy.h"

#define ROLES_KEY "security.authorization.rbac.roles"

/*
 * Read once, at start, into things a running broker cannot swap: the
 * socket and the data directory it holds open, the descriptor limit, the
 * keystore and the master-key provider (and the region they were checked
 * against), the audit store's options, and the alert notifier's endpoints
 * (its thread holds copies).
 */
static const char *const restart_keys[] = {
	"broker.socket",
	"broker.socketMode",
	"broker.dataDir",
	"broker.maxClients",
	"api.keySource",
	"api.keychainService",
	"security.encryption.atRest",
	"security.compliance.dataResidency",
	"security.audit.logFile",
	"security.audit.includeUser",
	"security.audit.includeContext",
	"security.audit.encrypt",
	"security.audit.encryptionKey",
	"security.monitoring.smtp",
	"security.monitoring.webhookUrl",
	"security.network.verifyCertificates",
};

const char *const *
kw_reload_restart_keys(size_t *ret_n)
{
	*ret_n = KW_ELEMENTSOF(restart_keys);
	return restart_keys;
}

void
kw_reload_log_level(const struct kw_config *cfg)
{
	const char *name = kw_config_str(cfg, "security.audit.logLevel");

	/* security.audit.logLevel names the least severe message the broker logs. */
	kw_log_init("keywardend", KW_LOG_STDERR, strcmp(name, "debug") == 0 ? LOG_DEBUG :
	    strcmp(name, "warn") == 0 ? LOG_WARNING :
	    strcmp(name, "error") == 0 ? LOG_ERR : LOG_INFO);
}

void
kw_reload_daemon_settings(struct kw_daemon *dm, const struct kw_config *cfg)
{
	dm->max_per_uid = (size_t)kw_config_int(cfg, "broker.maxClientsPerUser");
	/* Room one user's worth of connections for root (sshd, sudo), at most half. */
	dm->reserved = dm->max_per_uid < dm->max_conns / 2 ? dm->max_per_uid : dm->max_conns / 2;
	dm->client_timeout_ms = kw_config_int(cfg, "broker.clientTimeout") * 1000;
	dm->idle_timeout_ms = kw_config_int(cfg, "broker.idleTimeout") * 1000;
	dm->hello_timeout_ms = kw_config_int(cfg, "broker.helloTimeout") * 1000;
}

int
kw_reload_record_orphans(struct kw_services *svc)
{
	json_t *orphans = NULL, *o, *u, *meta;
	size_t i, j;
	int r;

	if ((r = kw_role_orphans(svc->cfg, svc->state, &orphans)) < 0) {
		kw_log_error("state store: cannot read the grants");
		return r;
	}
	json_array_foreach(orphans, i, o) {
		const char *role = json_string_value(json_object_get(o, "role"));
		json_t *users = json_object_get(o, "users");
		char res[96];

		kw_log_warn("role %s is granted to %zu user(s) but defined neither in the "
		    "configuration nor with the CLI: those grants grant nothing, and the name "
		    "cannot be used again until keywarden admin role delete %s --force removes them",
		    role, json_array_size(users), role);
		snprintf(res, sizeof(res), "role/%s", role);
		json_array_foreach(users, j, u) {
			struct kw_audit_record rec = {
				.user = NULL, .pid = getpid(), .action = "role.orphaned_grant",
				.resource = res, .result = "success", .request_id = -1,
			};
			rec.metadata = meta = json_pack("{s:O}", "user", u);
			r = meta ? kw_audit_write(svc->audit, &rec) : KW_ERR_NOMEM;
			json_decref(meta);
			if (r < 0)
				goto out;
		}
	}
	r = 0;
 out:
	json_decref(orphans);
	return r;
}

/* The restart keys whose values differ between cur and next (a new array; NULL: ENOMEM). */
static json_t *
restart_changes(const struct kw_config *cur, const struct kw_config *next)
{
	json_t *changed = json_array();

	for (size_t i = 0; changed && i < KW_ELEMENTSOF(restart_keys); i++)
		if (!json_equal(kw_config_get(cur, restart_keys[i]),
		    kw_config_get(next, restart_keys[i])))
			json_array_append_new(changed, json_string(restart_keys[i]));
	return changed;
}

/* Write one record about the configuration, in a turn of its own.  0 or KW_ERR_AUDIT. */
static int
record(struct kw_services *svc, const char *action, const char *result, json_t *meta)
{
	struct kw_audit_record rec = {
		.user = NULL, .pid = getpid(), .action = action, .resource = "config",
		.result = result, .metadata = meta, .request_id = -1,
	};
	int r;

	kw_batch_enter(svc->batch);
	r = kw_batch_audit_ok(svc->batch) && meta ? kw_audit_write(svc->audit, &rec) :
	    KW_ERR_AUDIT;
	if (r < 0)
		kw_batch_note_write_failure(svc->batch);
	/* KW_ERR_IO would be the state store's: the record itself landed. */
	if (kw_batch_commit(svc->batch) == KW_ERR_AUDIT)
		r = KW_ERR_AUDIT;
	kw_batch_clear(svc->batch);
	return r;
}

/* A reload that is not done: said in the log and on the record. */
static void
refuse(struct kw_reload *rl, const char *why, const char *digest, json_t *restart)
{
	json_t *meta = json_pack("{s:s, s:s, s:s}", "config", rl->svc->config_path, "error",
	    kw_error_name(KW_ERR_CONFIG), "reason", why);

	kw_log_error("reload refused: %s; the configuration in force (sha256 %s) is kept",
	    why, kw_config_digest(rl->svc->cfg));
	if (meta && digest)
		json_object_set_new(meta, "sha256", json_string(digest));
	if (meta && restart)
		json_object_set(meta, "restart_required", restart);
	if (meta)
		json_object_set_new(meta, "running_sha256",
		    json_string(kw_config_digest(rl->svc->cfg)));
	if (record(rl->svc, "config.reload", "error", meta) < 0)
		kw_log_error("reload: the audit store cannot record the refusal");
	json_decref(meta);
}

/* Check next as a start would, and against what only a restart changes. */
static int
check(struct kw_reload *rl, const struct kw_config *next, json_t **ret_restart,
    char *why, size_t why_len)
{
	char err[512];
	json_t *changed;
	size_t i;
	int r;

	if ((r = kw_apiproxy_check_config(next, err, sizeof(err))) < 0 ||
	    (r = kw_monitor_reload_prepare(rl->svc->monitor, next, err, sizeof(err))) < 0) {
		snprintf(why, why_len, "config: %s", err);
		return r;
	}
	if (!(changed = restart_changes(rl->svc->cfg, next)))
		return KW_ERR_NOMEM;
	if (json_array_size(changed) > 0) {
		size_t n = (size_t)snprintf(why, why_len, "a restart is needed to change ");
		json_t *k;
		json_array_foreach(changed, i, k)
			if (n < why_len)
				n += (size_t)snprintf(why + n, why_len - n, "%s%s", i ? ", " : "",
				    json_string_value(k));
		*ret_restart = changed;
		return KW_ERR_CONFIG;
	}
	json_decref(changed);
	return 0;
}

/* Take next: everything that holds settings moves to it together. */
static void
swap_in(struct kw_daemon *dm, struct kw_reload *rl, struct kw_config *next,
    struct kw_roles *roles, struct kw_policy *policy, struct kw_detector *detector)
{
	struct kw_services *svc = rl->svc;
	struct kw_config *old = svc->cfg;
	bool roles_changed = !json_equal(kw_config_get(old, ROLES_KEY),
	    kw_config_get(next, ROLES_KEY));

	svc->cfg = next;
	/* Equal values (a change is refused), but they must not point into old. */
	svc->data_dir = kw_config_str(next, "broker.dataDir");
	svc->socket_path = dm->socket_path = kw_config_str(next, "broker.socket");
	kw_roles_free(svc->roles);
	svc->roles = roles;
	kw_policy_free(svc->policy);
	svc->policy = policy;
	/* The trail's scrub moves to the new rules before the old ones go. */
	kw_audit_set_secrets(svc->audit, detector);
	kw_detector_free(svc->detector);
	svc->detector = detector;
	kw_monitor_reload_finish(svc->monitor, true);
	kw_reload_daemon_settings(dm, next);
	if (!rl->debug)
		kw_reload_log_level(next);
	kw_config_free(old);

	/* What follows writes records of its own: one more turn. */
	kw_dispatch_reload(dm->d, kw_config_int(next, "broker.clientTimeout"));
	if (roles_changed) {
		kw_batch_enter(svc->batch);
		kw_role_warn_shadowed(svc->cfg, svc->state);
		if (kw_reload_record_orphans(svc) < 0)
			kw_batch_note_write_failure(svc->batch);
	}
	if (svc->batch->open) {
		if (kw_batch_commit(svc->batch) < 0)
			kw_log_warn("reload: records that follow the change could not be written");
		kw_batch_clear(svc->batch);
	}
}

void
kw_reload_run(struct kw_daemon *dm, void *ctx)
{
	struct kw_reload *rl = ctx;
	struct kw_services *svc = rl->svc;
	struct kw_config *next = NULL;
	struct kw_roles *roles = NULL;
	struct kw_policy *policy = NULL;
	struct kw_detector *detector = NULL;
	json_t *restart = NULL, *meta;
	char err[1024], why[1200];
	char prev[KW_CONFIG_DIGEST_LEN];
	int r;

	kw_log_info("reload: reading %s", rl->path);
	if ((r = kw_config_load(rl->path, true, &next, err, sizeof(err))) < 0) {
		snprintf(why, sizeof(why), "config: %s", err);
		refuse(rl, why, NULL, NULL);
		return;
	}
	if (strcmp(kw_config_digest(next), kw_config_digest(svc->cfg)) == 0) {
		kw_log_info("reload: %s is unchanged (sha256 %s)", rl->path, kw_config_digest(next));
		kw_config_free(next);
		/* The proxy reads files of its own (CA files): it starts again all the same. */
		kw_apiproxy_reload(svc->apiproxy);
		return;
	}
	err[0] = '\0';
	if ((r = check(rl, next, &restart, why, sizeof(why))) < 0 ||
	    (r = kw_policy_compile(next, &policy, err, sizeof(err))) < 0 ||
	    (r = kw_detector_compile(next, KW_DETECT_SECRETS | KW_DETECT_FILTERS, &detector,
	    err, sizeof(err))) < 0 ||
	    (r = kw_roles_new(next, &roles)) < 0) {
		if (r == KW_ERR_CONFIG && (policy == NULL || detector == NULL) && err[0])
			snprintf(why, sizeof(why), "config: %s", err);
		if (r == KW_ERR_NOMEM)
			snprintf(why, sizeof(why), "out of memory");
		refuse(rl, why, kw_config_digest(next), restart);
		goto out;
	}
	/* On the record first: a change the trail cannot hold is not made. */
	snprintf(prev, sizeof(prev), "%s", kw_config_digest(svc->cfg));
	meta = json_pack("{s:s, s:s, s:s, s:s}", "config", svc->config_path, "previous_sha256", prev,
	    "sha256", kw_config_digest(next), "how", "reload");
	r = record(svc, "config.change", "success", meta);
	json_decref(meta);
	if (r < 0) {
		kw_log_error("reload refused: the audit store cannot record the change; the "
		    "configuration in force (sha256 %s) is kept", prev);
		goto out;
	}
	swap_in(dm, rl, next, roles, policy, detector);
	next = NULL;
	roles = NULL;
	policy = NULL;
	detector = NULL;
	/* Like a start's: the next start records a change only against this one. */
	if (kw_state_meta_set(svc->state, "config_sha256", kw_config_digest(svc->cfg)) < 0)
		kw_log_warn("state store: cannot remember the configuration's digest");
	kw_log_info("reload: configuration %s applied (sha256 %s, was %s)", rl->path,
	    kw_config_digest(svc->cfg), prev);
	kw_apiproxy_reload(svc->apiproxy);
 out:
	kw_monitor_reload_finish(svc->monitor, false);
	kw_roles_free(roles);
	kw_policy_free(policy);
	kw_detector_free(detector);
	kw_config_free(next);
	json_decref(restart);
}
