/*
 * doctor_sandbox.c - can this machine confine the agent as the policy
 * asks?  What the kernel offers (kw_sandbox_detect: the Landlock ABI,
 * unprivileged user namespaces, seccomp and its user notification) set
 * against what security.sandbox and the path settings need of it:
 *
 *   always            Landlock ABI >= 3 (files) and seccomp;
 *   allowNetwork off  a network namespace (user namespaces) or Landlock
 *                     TCP rules (ABI >= 4);
 *   a host list       the same, to keep TCP to the filter's port;
 *   allowExec off     seccomp user notification (the first execve only);
 *   deniedPaths or    user namespaces: a denied path inside an allowed
 *   excludePatterns   tree is hidden by a mount in a private namespace.
 *
 * One item: pass when everything can be applied; fail when something
 * cannot and security.sandbox.enabled makes `keywarden run` refuse; warn
 * when something cannot and run would apply less with a warning.  The
 * configuration is the one doctor reads (the user's view of it); `keywarden
 * run --check` asks the broker's and plans the actual run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/doctor.h"
#include "sandbox/sandbox.h"

#define CHECK		"sandbox"
#define SHORT_MAX	5

struct shortfall {
	const char *what;	/* what the policy asks that cannot be applied */
	const char *fix;	/* what would make it possible */
};

static void
add_short(struct shortfall *s, size_t *n, const char *what, const char *fix)
{
	if (*n < SHORT_MAX)
		s[(*n)++] = (struct shortfall){ .what = what, .fix = fix };
}

/* What the policy in cfg needs that caps lacks. */
static size_t
shortfalls(const struct kw_config *cfg, const struct kw_sandbox_caps *caps,
    struct shortfall *s)
{
	bool net = kw_config_bool(cfg, "security.sandbox.allowNetwork") &&
	    kw_config_bool(cfg, "security.network.allowOutbound");
	bool hosts = json_array_size(kw_config_get(cfg, "security.network.allowedHosts")) +
	    json_array_size(kw_config_get(cfg, "security.network.allowedDomains")) > 0;
	bool hides = json_array_size(kw_config_get(cfg, "security.deniedPaths")) +
	    json_array_size(kw_config_get(cfg, "security.excludePatterns")) > 0;
	size_t n = 0;

	if (caps->landlock_abi < 3)
		add_short(s, &n, "files need Landlock ABI 3 or later",
		    "a kernel with Landlock ABI 3 or later (Linux 6.2+) and landlock in its lsm= list");
	if (!caps->seccomp)
		add_short(s, &n, "seccomp is always applied", "a kernel with seccomp filters "
		    "(CONFIG_SECCOMP_FILTER)");
	if ((!net || hosts) && !caps->userns && caps->landlock_abi < 4)
		add_short(s, &n, net ? "keeping TCP to the host filter needs user namespaces or "
		    "Landlock ABI 4" : "allowNetwork false needs user namespaces or Landlock ABI 4",
		    "allow unprivileged user namespaces, or a kernel with Landlock ABI 4 (Linux 6.7+)");
	if (!kw_config_bool(cfg, "security.sandbox.allowExec") && !caps->seccomp_notify)
		add_short(s, &n, "allowExec false needs seccomp user notification",
		    "a kernel 5.5 or later with seccomp user notification");
	if (hides && !caps->userns)
		add_short(s, &n, "hiding deniedPaths/excludePatterns inside allowed trees needs "
		    "user namespaces", "allow unprivileged user namespaces (sysctl "
		    "kernel.unprivileged_userns_clone=1; on Ubuntu also "
		    "kernel.apparmor_restrict_unprivileged_userns=0)");
	return n;
}

static char *
offers(const struct kw_sandbox_caps *caps)
{
	return kw_dr_fmt("this machine offers Landlock ABI %d, user namespaces %s, seccomp %s "
	    "(user notification %s)%s%s", caps->landlock_abi, caps->userns ? "yes" : "no",
	    caps->seccomp ? "yes" : "no", caps->seccomp_notify ? "yes" : "no",
	    caps->why_not[0] ? "; " : "", kw_cli_safe(caps->why_not));
}

void
kw_dr_check_sandbox(struct kw_dr *d)
{
	struct kw_sandbox_caps caps;
	struct shortfall s[SHORT_MAX];
	bool enabled = kw_config_bool(d->cfg, "security.sandbox.enabled");
	_cleanup_free_ char *have = NULL, *what = NULL, *fix = NULL;
	size_t n;

	kw_sandbox_detect(&caps, NULL);
	n = shortfalls(d->cfg, &caps, s);
	if (!(have = offers(&caps)) || !(what = strdup("")) || !(fix = strdup(""))) {
		d->oom = true;
		return;
	}
	if (n == 0) {
		kw_dr_add(d, CHECK, KW_DR_PASS, NULL, 0, NULL, "%s: enough for the policy's "
		    "sandbox; security.sandbox.enabled is %s%s", have, enabled ? "true" :
		    "false", enabled ? " (Claude Code must run under keywarden run)" :
		    " (keywarden run applies it when used; set it to require it)");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char *w = kw_dr_fmt("%s%s%s", what, i ? "; " : "", s[i].what);
		char *f = kw_dr_fmt("%s%s%s", fix, i ? "; " : "", s[i].fix);
		free(what);
		free(fix);
		what = w;
		fix = f;
		if (!what || !fix) {
			d->oom = true;
			return;
		}
	}
	if (enabled)
		kw_dr_add(d, CHECK, KW_DR_FAIL, NULL, 0, fix, "%s; security.sandbox.enabled is true "
		    "but %s: keywarden run refuses to start (exit 2)", have, what);
	else
		kw_dr_add(d, CHECK, KW_DR_WARN, NULL, 0, fix, "%s; %s: keywarden run would apply "
		    "less than the policy asks (security.sandbox.enabled is false, so it warns "
		    "and runs)", have, what);
}
