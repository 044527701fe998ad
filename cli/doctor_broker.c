/*
 * doctor_broker.c - what the broker says about the caller: is it there, is
 * the caller a user with a second factor, a session and roles; is the
 * audit trail on and whole; is access control configured.
 *
 * Only requests the caller may make are sent: status and account (anyone,
 * for themselves), audit.verify and key.list only when the caller's roles
 * grant them (judged here from the configuration, kw_dr_may), so that
 * running doctor leaves no refusal in the audit trail.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/doctor.h"
#include "common/perm.h"
#include "rbac/rbac.h"

int
kw_dr_call(struct kw_dr *d, const char *op, json_t *args, json_t **ret_result, char *why,
    size_t why_len)
{
	char *msg = NULL;
	int r;

	if (!d->client && !d->broker_tried) {
		d->broker_tried = true;
		/* kw_cli_connect says on stderr why it could not connect. */
		if (kw_cli_connect(d->cli, &d->client) != 0)
			d->client = NULL;
	}
	if (!d->client) {
		snprintf(why, why_len, "no broker answers at %s", kw_cli_safe(kw_cli_socket(d->cli)));
		return KW_ERR_CONNECT;
	}
	if ((r = kw_client_call(d->client, op, args, ret_result, &msg)) < 0)
		snprintf(why, why_len, "%s", kw_cli_safe(msg ? msg : kw_strerror(r)));
	free(msg);
	return r;
}

const char *
kw_dr_user(const struct kw_dr *d)
{
	static char name[64];
	const char *s = json_string_value(json_object_get(json_object_get(d->status, "caller"),
	    "user"));
	struct passwd *pw;

	if (!s)
		s = (pw = getpwuid(geteuid())) ? pw->pw_name : NULL;
	if (s)
		snprintf(name, sizeof(name), "%s", s);
	else
		snprintf(name, sizeof(name), "%u", (unsigned)geteuid());
	return name;
}

/* Whether one of perms (a role's list from the configuration) grants verb on resource. */
static bool
role_grants(json_t *perms, const char *verb, const char *resource)
{
	struct kw_perm *p = NULL;
	size_t n = 0;
	bool yes = false;

	if (kw_rbac_compile(perms, &p, &n) < 0)
		return false;
	for (size_t i = 0; i < n && !yes; i++)
		yes = kw_perm_grants(&p[i], verb, resource);
	free(p);
	return yes;
}

int
kw_dr_may(struct kw_dr *d, const char *verb, const char *resource)
{
	json_t *roles = kw_config_get(d->cfg, "security.authorization.rbac.roles");
	json_t *held = json_object_get(d->status, "roles"), *r;
	bool unknown = false;
	size_t i;

	if (geteuid() == 0)
		return 1;
	json_array_foreach(held, i, r) {
		json_t *role = json_object_get(roles, json_string_value(r) ? json_string_value(r) : "");
		if (!role)
			unknown = true;
		else if (role_grants(json_object_get(role, "permissions"), verb, resource))
			return 1;
	}
	return unknown ? -1 : 0;
}

static bool
registered(const struct kw_dr *d)
{
	return json_is_string(json_object_get(d->status, "user"));
}

static bool
has_session(const struct kw_dr *d)
{
	return json_is_object(json_object_get(d->status, "session"));
}

/* Where the configuration came from, for details: "in FILE" or "by default". */
static const char *
cfg_where(const struct kw_dr *d)
{
	static char text[4200];

	if (d->cfg_err == 0 && access(d->cfg_path, F_OK) == 0)
		snprintf(text, sizeof(text), "in %s", kw_cli_safe(d->cfg_path));
	else
		snprintf(text, sizeof(text), "by default");
	return text;
}

static void
check_user(struct kw_dr *d)
{
	const char *user = kw_dr_user(d);
	char why[512];
	json_t *acct = NULL;

	if (geteuid() == 0) {
		kw_dr_add(d, "user", KW_DR_INFO, NULL, 0, NULL,
		    "root: the broker allows root everything, without registration");
		return;
	}
	if (!registered(d)) {
		_cleanup_free_ char *fix = kw_dr_fmt("ask an administrator: keywarden admin user add "
		    "%s --role developer", kw_cli_safe(user));
		kw_dr_add(d, "user", KW_DR_FAIL, NULL, 0, fix, "%s is not a keywarden user",
		    kw_cli_safe(user));
		return;
	}
	if (!d->account && kw_dr_call(d, "account", NULL, &acct, why, sizeof(why)) == 0)
		d->account = acct;
	if (json_is_true(json_object_get(d->account, "locked"))) {
		_cleanup_free_ char *fix = kw_dr_fmt("ask an administrator: keywarden admin user "
		    "unlock %s", kw_cli_safe(user));
		kw_dr_add(d, "user", KW_DR_FAIL, NULL, 0, fix, "%s is locked: %s", kw_cli_safe(user),
		    kw_cli_safe(json_string_value(json_object_get(d->account, "message"))));
		return;
	}
	kw_dr_add(d, "user", KW_DR_PASS, NULL, 0, NULL, "registered as %s",
	    kw_cli_safe(json_string_value(json_object_get(d->status, "user"))));
}

static void
check_totp(struct kw_dr *d)
{
	const char *user = kw_dr_user(d);
	json_t *totp = json_object_get(d->account, "totp");
	long long left = json_integer_value(json_object_get(totp, "recovery_codes_left"));

	if (!kw_config_bool(d->cfg, "security.authentication.mfa.enabled") ||
	    !kw_config_bool(d->cfg, "security.authentication.mfa.required"))
		kw_dr_add(d, "totp", KW_DR_WARN, NULL, 0,
		    "keywarden config set security.authentication.mfa.enabled true (and .required), "
		    "then restart the broker",
		    "the second factor is turned off %s (security.authentication.mfa.%s is false)",
		    cfg_where(d), !kw_config_bool(d->cfg, "security.authentication.mfa.enabled") ?
		    "enabled" : "required");
	if (geteuid() == 0) {
		kw_dr_add(d, "totp", KW_DR_INFO, NULL, 0, NULL, "root needs no second factor");
	} else if (!registered(d)) {
		kw_dr_add(d, "totp", KW_DR_SKIP, NULL, 0, NULL, "%s is not a keywarden user",
		    kw_cli_safe(user));
	} else if (!json_is_object(totp)) {
		kw_dr_add(d, "totp", KW_DR_SKIP, NULL, 0, NULL,
		    "the broker does not say (a broker older than this command)");
	} else if (!json_is_true(json_object_get(totp, "enrolled"))) {
		_cleanup_free_ char *fix = kw_dr_fmt("ask an administrator: keywarden admin user "
		    "totp-reset %s", kw_cli_safe(user));
		kw_dr_add(d, "totp", KW_DR_FAIL, NULL, 0, fix,
		    "%s has no TOTP secret enrolled: keywarden login cannot succeed",
		    kw_cli_safe(user));
	} else if (left == 0) {
		kw_dr_add(d, "totp", KW_DR_WARN, NULL, 0,
		    "keywarden totp enroll makes a new secret and ten new codes",
		    "enrolled, but no recovery codes are left");
	} else {
		kw_dr_add(d, "totp", KW_DR_PASS, NULL, 0, NULL,
		    "enrolled (%lld recovery code%s left)", left, left == 1 ? "" : "s");
	}
}

static void
check_session(struct kw_dr *d)
{
	json_t *s = json_object_get(d->status, "session");
	const char *err = json_string_value(json_object_get(d->status, "session_error"));
	const char *expires = json_string_value(json_object_get(s, "expires"));

	if (geteuid() == 0)
		kw_dr_add(d, "session", KW_DR_INFO, NULL, 0, NULL, "root needs no session");
	else if (!registered(d))
		kw_dr_add(d, "session", KW_DR_SKIP, NULL, 0, NULL, "%s is not a keywarden user",
		    kw_cli_safe(kw_dr_user(d)));
	else if (json_is_object(s))
		kw_dr_add(d, "session", KW_DR_PASS, NULL, 0, NULL, "logged in: session %s, expires %s",
		    kw_cli_safe(json_string_value(json_object_get(s, "id"))),
		    expires ? kw_cli_safe(expires) : "with no absolute limit");
	else if (err)
		kw_dr_add(d, "session", KW_DR_WARN, NULL, 0, "keywarden login",
		    "the cached session is no longer valid: %s", kw_cli_safe(err));
	else
		kw_dr_add(d, "session", KW_DR_WARN, NULL, 0, "keywarden login",
		    "no session: keys (and so Claude Code's apiKeyHelper) are refused until you "
		    "log in");
}

static void
check_audit(struct kw_dr *d, bool reachable)
{
	const char *what;
	json_t *bad;
	int may = kw_dr_may(d, "admin", "audit");

	if (!kw_config_bool(d->cfg, "security.audit.enabled"))
		kw_dr_add(d, "audit", KW_DR_WARN, NULL, 0,
		    "keywarden config set security.audit.enabled true",
		    "security.audit.enabled is false %s (the broker keeps its trail regardless)",
		    cfg_where(d));
	else
		kw_dr_add(d, "audit", KW_DR_PASS, NULL, 0, NULL,
		    "enabled: every request is recorded in a hash-chained, signed trail, kept %lld "
		    "days", kw_config_int(d->cfg, "security.audit.retention"));
	if (!reachable) {
		kw_dr_add(d, "audit.chain", KW_DR_SKIP, NULL, 0, NULL, "the broker is unreachable");
		return;
	}
	if (may != 1) {
		kw_dr_add(d, "audit.chain", KW_DR_SKIP, NULL, 0, NULL,
		    "only administrators verify the chain (keywarden admin audit verify)%s",
		    may < 0 ? "; your roles are not all in the configuration, so doctor does "
		    "not try" : "");
		return;
	}
	if (geteuid() != 0 && !has_session(d)) {
		kw_dr_add(d, "audit.chain", KW_DR_SKIP, NULL, 0, "keywarden login",
		    "log in to verify the chain");
		return;
	}
	if (!d->verify && kw_dr_call(d, "audit.verify", NULL, &d->verify, d->verify_err,
	    sizeof(d->verify_err)) < 0)
		d->verify = NULL;
	if (!d->verify) {
		kw_dr_add(d, "audit.chain", KW_DR_WARN, NULL, 0, "keywarden admin audit verify",
		    "could not verify: %s", d->verify_err);
		return;
	}
	bad = json_object_get(d->verify, "bad");
	what = json_string_value(json_object_get(bad, "what"));
	if (json_is_true(json_object_get(d->verify, "ok")))
		kw_dr_add(d, "audit.chain", KW_DR_PASS, NULL, 0, NULL, "intact: %lld records%s",
		    (long long)json_integer_value(json_object_get(d->verify, "records")),
		    json_is_true(json_object_get(d->verify, "signed")) ? ", signed by the broker" :
		    ", not signed");
	else
		kw_dr_add(d, "audit.chain", KW_DR_FAIL, NULL, 0,
		    "keywarden admin audit verify names it; see keywardend(8), AUDIT TRAIL",
		    "broken at %s %lld: %s", what && strcmp(what, "anchor") == 0 ? "anchor" : "record",
		    (long long)json_integer_value(json_object_get(bad, "seq")),
		    kw_cli_safe(json_string_value(json_object_get(bad, "reason"))));
}

static void
check_access(struct kw_dr *d, bool reachable)
{
	json_t *roles = kw_config_get(d->cfg, "security.authorization.rbac.roles");
	json_t *held = json_object_get(d->status, "roles");
	const char *user = kw_dr_user(d);
	_cleanup_free_ char *names = NULL, *mine = NULL;
	json_t *list = json_array(), *v;
	const char *name;

	json_object_foreach(roles, name, v)
		json_array_append_new(list, json_string(name));
	names = kw_cli_join(list);
	json_decref(list);
	if (!kw_config_bool(d->cfg, "security.authorization.rbac.enabled"))
		kw_dr_add(d, "access-control", KW_DR_WARN, NULL, 0,
		    "keywarden config set security.authorization.rbac.enabled true",
		    "security.authorization.rbac.enabled is false %s (the broker decides by roles "
		    "regardless)", cfg_where(d));
	else
		kw_dr_add(d, "access-control", KW_DR_PASS, NULL, 0, NULL,
		    "role-based access control, deny by default; roles %s: %s", cfg_where(d),
		    kw_cli_safe(names ? names : "?"));
	if (geteuid() == 0) {
		kw_dr_add(d, "roles", KW_DR_INFO, NULL, 0, NULL, "root holds every right");
		return;
	}
	if (!reachable || !registered(d)) {
		kw_dr_add(d, "roles", KW_DR_SKIP, NULL, 0, NULL, "%s",
		    !reachable ? "the broker is unreachable" : "not a keywarden user");
		return;
	}
	if (json_array_size(held) == 0) {
		_cleanup_free_ char *fix = kw_dr_fmt("ask an administrator: keywarden admin role "
		    "grant %s developer", kw_cli_safe(user));
		kw_dr_add(d, "roles", KW_DR_FAIL, NULL, 0, fix,
		    "%s holds no role: every request but status is refused", kw_cli_safe(user));
		return;
	}
	mine = kw_cli_join(held);
	kw_dr_add(d, "roles", KW_DR_PASS, NULL, 0, NULL, "%s holds %s", kw_cli_safe(user),
	    kw_cli_safe(mine ? mine : "?"));
}

void
kw_dr_check_broker(struct kw_dr *d)
{
	char why[512];
	bool reachable;

	if (!d->status && kw_dr_call(d, "status", NULL, &d->status, why, sizeof(why)) < 0) {
		d->status = NULL;
		kw_dr_add(d, "broker", KW_DR_FAIL, NULL, 0, "start it (systemctl start keywarden), "
		    "or name its socket with --socket or KEYWARDEN_SOCKET", "%s", why);
	}
	reachable = d->status != NULL;
	if (reachable)
		kw_dr_add(d, "broker", KW_DR_PASS, NULL, 0, NULL, "reachable at %s (keywarden %s)",
		    kw_cli_safe(kw_cli_socket(d->cli)),
		    kw_cli_safe(json_string_value(json_object_get(d->status, "version"))));
	if (reachable) {
		check_user(d);
		check_totp(d);
		check_session(d);
	} else {
		static const char *const need[] = { "user", "totp", "session" };
		for (size_t i = 0; i < KW_ELEMENTSOF(need); i++)
			kw_dr_add(d, need[i], KW_DR_SKIP, NULL, 0, NULL, "the broker is unreachable");
	}
	check_audit(d, reachable);
	check_access(d, reachable);
}
