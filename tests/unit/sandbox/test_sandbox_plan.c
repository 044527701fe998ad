/*
 * test_sandbox_plan.c - the sandbox's decisions that need no kernel: the
 * policy object, the grants (allowedPaths, readOnly, /etc when denied),
 * hides (denied paths and excludePatterns inside a grant, found by a walk
 * of a real tree), the cwd under a denied path, the network and exec
 * modes by policy and machine, the missing lines, the JSON view, and the
 * child's environment.  Capabilities are made up, so each fallback is
 * reached whatever this machine offers.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/errors.h"
#include "sandbox/sandbox_internal.h"
#include "tests/unit/support/fixture.h"

static const struct kw_sandbox_caps full = {
	.landlock_abi = 7, .userns = true, .seccomp = true, .seccomp_notify = true,
};

/* What the broker always sends, at its defaults; a test's JSON overrides members. */
static json_t *
base_policy(void)
{
	return json_pack("{s:b, s:b, s:b, s:b, s:b, s:[], s:[], s:[], s:[], s:[], s:[], s:s}",
	    "enabled", 0, "allowNetwork", 0, "allowExec", 1, "readOnly", 0, "whitelistMode", 0,
	    "allowedPaths", "deniedPaths", "excludePatterns", "whitelist", "allowedHosts",
	    "allowedDomains", "home", "/nonexistent");
}

/* The policy of json with the members it leaves out at the broker's defaults. */
static struct kw_sandbox_policy *
policy_of(const char *json)
{
	struct kw_sandbox_policy *p = NULL;
	json_error_t jerr;
	json_t *obj = json_loads(json, 0, &jerr), *base = base_policy();
	char err[256] = "";

	assert_non_null(obj);
	assert_int_equal(json_object_update_missing(obj, base), 0);
	json_decref(base);
	if (kw_sandbox_policy_from_json(obj, &p, err, sizeof(err)) != 0)
		fail_msg("policy: %s", err);
	json_decref(obj);
	return p;
}

/* Plan for policy (JSON with %s for the fixture's dir) run from cwd. */
static struct kw_sandbox_plan *
plan_of(const char *dir, const char *fmt, const struct kw_sandbox_caps *caps, const char *cwd,
    char *const *argv)
{
	static char *const sh[] = { "sh", "-c", "true", NULL };
	struct kw_sandbox_plan *plan = NULL;
	struct kw_sandbox_request req = { .argv = argv ? argv : sh, .cwd = cwd ? cwd : dir,
	    .env_path = "/usr/bin:/bin" };
	struct kw_sandbox_policy *p;
	char json[4096], err[512] = "";

	/* The tests' own literals, each with up to four %s. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	snprintf(json, sizeof(json), fmt, dir, dir, dir, dir);
#pragma GCC diagnostic pop
	p = policy_of(json);
	if (kw_sandbox_plan_build(p, caps, &req, &plan, err, sizeof(err)) != 0)
		fail_msg("plan: %s", err);
	kw_sandbox_policy_free(p);
	return plan;
}

static const struct kw_sandbox_grant *
grant(const struct kw_sandbox_plan *plan, const char *path)
{
	char real[PATH_MAX];

	if (!realpath(path, real))
		snprintf(real, sizeof(real), "%s", path);
	for (size_t i = 0; i < plan->n_grants; i++)
		if (strcmp(plan->grants[i].path, real) == 0)
			return &plan->grants[i];
	return NULL;
}

static bool
has(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

static bool
any_contains(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strstr(v[i], s))
			return true;
	return false;
}

static char *
mk(const struct kw_test_fx *fx, const char *name, bool dir)
{
	char *path = kw_test_path(fx, name);

	if (dir)
		assert_int_equal(mkdir(path, 0700), 0);
	else
		kw_test_write_text(path, "x", 0600);
	return path;
}

static void
test_policy_json(void **state)
{
	struct kw_sandbox_policy *p = policy_of("{}");
	json_t *bad = base_policy(), *rel = base_policy(), *none = base_policy();
	char err[256] = "";

	(void)state;
	json_object_set_new(bad, "allowNetwork", json_string("yes"));
	json_object_set_new(rel, "allowedPaths", json_pack("[s]", "relative/path"));
	assert_false(p->enabled);
	assert_false(p->allow_network);
	assert_string_equal(p->profile, "default");
	kw_sandbox_policy_free(p);
	p = NULL;
	/* A member the broker leaves out is refused, never given a default:
	   no deniedPaths is not "nothing denied". */
	json_object_del(none, "deniedPaths");
	assert_int_equal(kw_sandbox_policy_from_json(none, &p, err, sizeof(err)), KW_ERR_INVALID);
	assert_non_null(strstr(err, "deniedPaths"));
	assert_null(p);
	json_decref(none);
	assert_int_equal(kw_sandbox_policy_from_json(bad, &p, err, sizeof(err)), KW_ERR_INVALID);
	assert_non_null(strstr(err, "allowNetwork"));
	assert_null(p);
	assert_int_equal(kw_sandbox_policy_from_json(rel, &p, err, sizeof(err)), KW_ERR_INVALID);
	assert_non_null(strstr(err, "allowedPaths"));
	json_decref(bad);
	json_decref(rel);
}

static void
test_tighten(void **state)
{
	struct kw_test_fx *fx = *state;
	char *a = mk(fx, "a", true), *prof = kw_test_path(fx, "profile.json"), json[512];
	struct kw_sandbox_policy *p;
	char err[512] = "";

	snprintf(json, sizeof(json), "{\"allowedPaths\": [\"%s\"], \"allowNetwork\": true}", a);
	p = policy_of(json);
	kw_test_write_text(prof, "{\"allowNetwork\": false, \"readOnly\": true}", 0600);
	assert_int_equal(kw_sandbox_policy_tighten(p, prof, a, err, sizeof(err)), 0);
	assert_false(p->allow_network);
	assert_true(p->read_only);
	/* Loosening is refused, with the member named. */
	kw_test_write_text(prof, "{\"readOnly\": false}", 0600);
	assert_int_equal(kw_sandbox_policy_tighten(p, prof, a, err, sizeof(err)), KW_ERR_DENIED);
	assert_non_null(strstr(err, "readOnly"));
	kw_test_write_text(prof, "{\"allowedPaths\": [\"/usr\"]}", 0600);
	assert_int_equal(kw_sandbox_policy_tighten(p, prof, a, err, sizeof(err)), KW_ERR_DENIED);
	assert_non_null(strstr(err, "/usr"));
	kw_test_write_text(prof, "{\"network\": {}}", 0600);
	assert_int_equal(kw_sandbox_policy_tighten(p, prof, a, err, sizeof(err)), KW_ERR_INVALID);
	/* A profile others may write is not read at all. */
	kw_test_write_text(prof, "{}", 0622);
	assert_int_equal(chmod(prof, 0622), 0);
	assert_int_equal(kw_sandbox_policy_tighten(p, prof, a, err, sizeof(err)), KW_ERR_DENIED);
	kw_sandbox_policy_free(p);
	free(a);
	free(prof);
}

static void
test_grants_allowed_and_read_only(void **state)
{
	struct kw_test_fx *fx = *state;
	char *a = mk(fx, "a", true);
	struct kw_sandbox_plan *plan;
	const struct kw_sandbox_grant *g;

	plan = plan_of(a, "{\"allowedPaths\": [\"%s\"]}", &full, NULL, NULL);
	assert_non_null(g = grant(plan, a));
	assert_int_equal(g->rights, KW_SB_READ | KW_SB_WRITE | KW_SB_EXEC);
	assert_string_equal(g->why, "allowedPaths");
	assert_non_null(g = grant(plan, "/usr"));
	assert_int_equal(g->rights & KW_SB_WRITE, 0);
	assert_non_null(grant(plan, plan->tmpdir));
	assert_int_equal(strncmp(plan->tmpdir, "/tmp/keywarden-sandbox.", 23), 0);
	kw_sandbox_plan_free(plan);

	plan = plan_of(a, "{\"allowedPaths\": [\"%s\"], \"readOnly\": true}", &full, NULL, NULL);
	assert_non_null(g = grant(plan, a));
	assert_int_equal(g->rights & KW_SB_WRITE, 0);
	assert_true(g->rights & KW_SB_READ);
	kw_sandbox_plan_free(plan);

	/* No allowedPaths: the cwd. */
	plan = plan_of(a, "{}", &full, a, NULL);
	assert_non_null(g = grant(plan, a));
	assert_string_equal(g->why, "cwd");
	kw_sandbox_plan_free(plan);
	free(a);
}

static void
test_etc_denied(void **state)
{
	struct kw_test_fx *fx = *state;
	struct kw_sandbox_plan *plan;

	plan = plan_of(fx->dir, "{\"deniedPaths\": [\"/etc\", \"/etc/hosts\"]}", &full, NULL,
	    NULL);
	assert_null(grant(plan, "/etc"));
	assert_non_null(grant(plan, "/etc/passwd"));
	assert_null(grant(plan, "/etc/hosts"));
	assert_null(grant(plan, "/etc/shadow"));
	kw_sandbox_plan_free(plan);

	plan = plan_of(fx->dir, "{}", &full, NULL, NULL);
	assert_non_null(grant(plan, "/etc"));
	kw_sandbox_plan_free(plan);
}

static void
test_denied_inside_allowed(void **state)
{
	struct kw_test_fx *fx = *state;
	char *a = mk(fx, "a", true), *s = mk(fx, "a/secret", true), *in = mk(fx, "a/secret/in",
	    true);
	struct kw_sandbox_plan *plan;

	plan = plan_of(fx->dir, "{\"allowedPaths\": [\"%s/a\", \"%s/a/secret/in\"], "
	    "\"deniedPaths\": [\"%s/a/secret\"]}", &full, NULL, NULL);
	assert_true(has(plan->hides, plan->n_hides, s));
	/* A grant inside a denied path is dropped, with a warning. */
	assert_null(grant(plan, in));
	assert_non_null(plan->warnings);
	assert_non_null(strstr(plan->warnings, "dropped"));
	assert_int_equal(plan->n_missing, 0);
	kw_sandbox_plan_free(plan);

	/* Without user namespaces, each hide is a shortfall. */
	struct kw_sandbox_caps no_userns = full;

	no_userns.userns = false;
	plan = plan_of(fx->dir, "{\"allowedPaths\": [\"%s/a\"], \"deniedPaths\": "
	    "[\"%s/a/secret\"]}", &no_userns, NULL, NULL);
	assert_true(any_contains(plan->missing, plan->n_missing, "hide "));
	assert_true(any_contains(plan->missing, plan->n_missing, "user namespaces"));
	kw_sandbox_plan_free(plan);
	free(a);
	free(s);
	free(in);
}

static void
test_exclude_walk(void **state)
{
	struct kw_test_fx *fx = *state;
	char *t = mk(fx, "t", true), *e1 = mk(fx, "t/.env", false);
	char *b = mk(fx, "t/b", true), *c = mk(fx, "t/b/c", true), *e2 = mk(fx, "t/b/c/.env", false);
	char *pem = mk(fx, "t/b/key.pem", false), *ok = mk(fx, "t/b/ok", false);
	char *keys = mk(fx, "t/keys.pem", true), *inner = mk(fx, "t/keys.pem/x.pem", false);
	struct kw_sandbox_plan *plan;

	plan = plan_of(fx->dir, "{\"allowedPaths\": [\"%s/t\"], \"excludePatterns\": "
	    "[\".env\", \"*.pem\"]}", &full, NULL, NULL);
	assert_true(has(plan->hides, plan->n_hides, e1));
	assert_true(has(plan->hides, plan->n_hides, e2));
	assert_true(has(plan->hides, plan->n_hides, pem));
	assert_true(has(plan->hides, plan->n_hides, keys));
	assert_false(has(plan->hides, plan->n_hides, inner));	/* covered by keys.pem */
	assert_false(has(plan->hides, plan->n_hides, ok));
	assert_int_equal(plan->n_hides, 4);
	kw_sandbox_plan_free(plan);
	free(t); free(e1); free(b); free(c); free(e2); free(pem); free(ok); free(keys);
	free(inner);
}

static void
test_hard_link_hidden(void **state)
{
	struct kw_test_fx *fx = *state;
	char *t = mk(fx, "t", true), *e = mk(fx, "t/.env", false), *d = mk(fx, "t/d", true);
	char *s = mk(fx, "t/d/s", false), *l1 = kw_test_path(fx, "t/innocent"),
	    *l2 = kw_test_path(fx, "t/other");
	struct kw_sandbox_plan *plan;

	assert_int_equal(link(e, l1), 0);
	assert_int_equal(link(s, l2), 0);
	plan = plan_of(fx->dir, "{\"allowedPaths\": [\"%s/t\"], \"excludePatterns\": [\".env\"], "
	    "\"deniedPaths\": [\"%s/t/d\"]}", &full, NULL, NULL);
	assert_true(has(plan->hides, plan->n_hides, e));
	assert_true(has(plan->hides, plan->n_hides, l1));	/* .env's other name */
	assert_true(has(plan->hides, plan->n_hides, d));
	assert_true(has(plan->hides, plan->n_hides, l2));	/* a file in the denied dir */
	assert_int_equal(plan->n_hides, 4);
	kw_sandbox_plan_free(plan);
	free(t); free(e); free(d); free(s); free(l1); free(l2);
}

static void
test_claude_profile(void **state)
{
	struct kw_test_fx *fx = *state;
	char *home = mk(fx, "home", true), *pkg = mk(fx, "nm", true), path[PATH_MAX], *bin;
	char *w = mk(fx, "w", true), dest[PATH_MAX + 16];
	char *const argv[] = { "claude", NULL };
	struct kw_sandbox_request req = { .argv = argv, .cwd = w, .env_path = NULL,
	    .api_base_url = "http://127.0.0.1:8089/v1" };
	struct kw_sandbox_plan *plan = NULL;
	struct kw_sandbox_policy *p;
	const struct kw_sandbox_grant *g;
	char json[1024], err[512] = "";
	struct stat st;

	free(mk(fx, "nm/node_modules", true));
	free(mk(fx, "nm/node_modules/@anthropic-ai", true));
	free(mk(fx, "nm/node_modules/@anthropic-ai/claude-code", true));
	bin = kw_test_path(fx, "nm/node_modules/@anthropic-ai/claude-code/cli.js");
	kw_test_write_text(bin, "#!/bin/sh\n", 0700);
	req.env_path = path;
	snprintf(path, sizeof(path), "%s/nm/node_modules/@anthropic-ai/claude-code", fx->dir);
	snprintf(json, sizeof(json), "{\"profile\": \"claude\", \"home\": \"%s\"}", home);
	snprintf(dest, sizeof(dest), "%s/claude", path);
	assert_int_equal(rename(bin, dest), 0);
	p = policy_of(json);
	if (kw_sandbox_plan_build(p, &full, &req, &plan, err, sizeof(err)) != 0)
		fail_msg("plan: %s", err);
	snprintf(json, sizeof(json), "%s/.claude", home);
	assert_non_null(g = grant(plan, json));
	assert_true(g->rights & KW_SB_WRITE);
	assert_int_equal(stat(json, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	snprintf(json, sizeof(json), "%s/.claude.json", home);
	assert_non_null(grant(plan, json));
	assert_int_equal(stat(json, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_non_null(g = grant(plan, path));	/* the package root */
	assert_true(g->rights & KW_SB_EXEC);
	assert_int_equal(plan->n_forwards, 1);
	assert_int_equal(plan->forward_ports[0], 8089);
	kw_sandbox_plan_free(plan);
	kw_sandbox_policy_free(p);
	free(home); free(pkg); free(bin); free(w);
}

static void
test_cwd_under_denied(void **state)
{
	struct kw_test_fx *fx = *state;
	char *d = mk(fx, "d", true), json[512], err[512] = "";
	char *const argv[] = { "sh", NULL };
	struct kw_sandbox_request req = { .argv = argv, .cwd = d, .env_path = "/usr/bin:/bin" };
	struct kw_sandbox_plan *plan = NULL;
	struct kw_sandbox_policy *p;

	snprintf(json, sizeof(json), "{\"deniedPaths\": [\"%s\"]}", fx->dir);
	p = policy_of(json);
	assert_int_equal(kw_sandbox_plan_build(p, &full, &req, &plan, err, sizeof(err)),
	    KW_ERR_INVALID);
	assert_null(plan);
	assert_non_null(strstr(err, "deniedPaths"));
	kw_sandbox_policy_free(p);
	free(d);
}

static void
test_net_modes(void **state)
{
	struct kw_test_fx *fx = *state;
	struct kw_sandbox_caps no_userns = full, old = full;
	struct kw_sandbox_plan *plan;

	no_userns.userns = false;
	old.userns = false;
	old.landlock_abi = 3;
	plan = plan_of(fx->dir, "{\"allowNetwork\": false}", &full, NULL, NULL);
	assert_int_equal(plan->net, KW_SB_NET_NONE);
	assert_true(plan->netns);
	kw_sandbox_plan_free(plan);
	plan = plan_of(fx->dir, "{\"allowNetwork\": true, \"allowedHosts\": [\"a.example\"]}",
	    &full, NULL, NULL);
	assert_int_equal(plan->net, KW_SB_NET_FILTERED);
	assert_int_equal(plan->proxy_port, KW_SB_PROXY_PORT_NETNS);
	assert_true(has(plan->allowed_hosts, plan->n_hosts, "a.example"));
	assert_int_equal(plan->proxy_fd, -1);
	kw_sandbox_plan_free(plan);
	plan = plan_of(fx->dir, "{\"allowNetwork\": true}", &full, NULL, NULL);
	assert_int_equal(plan->net, KW_SB_NET_OPEN);
	assert_false(plan->netns);
	kw_sandbox_plan_free(plan);
	/* No user namespaces: Landlock's TCP rules, the filter bound in the parent. */
	plan = plan_of(fx->dir, "{\"allowNetwork\": true, \"allowedDomains\": [\"example\"]}",
	    &no_userns, NULL, NULL);
	assert_true(plan->landlock_net);
	assert_false(plan->netns);
	assert_true(plan->proxy_fd >= 0);
	assert_int_not_equal(plan->proxy_port, 0);
	kw_sandbox_plan_free(plan);
	plan = plan_of(fx->dir, "{\"allowNetwork\": false}", &old, NULL, NULL);
	assert_true(any_contains(plan->missing, plan->n_missing, "network"));
	kw_sandbox_plan_free(plan);
}

/* The relay: a fixed port inside a network namespace, else one bound here; keywarden readable. */
static struct kw_sandbox_plan *
relay_plan(const char *dir, const char *json, const struct kw_sandbox_caps *caps, bool relay)
{
	static char *const sh[] = { "sh", "-c", "true", NULL };
	struct kw_sandbox_request req = { .argv = sh, .cwd = dir, .env_path = "/usr/bin:/bin",
	    .relay = relay };
	struct kw_sandbox_policy *p = policy_of(json);
	struct kw_sandbox_plan *plan = NULL;
	char err[512] = "";

	if (kw_sandbox_plan_build(p, caps, &req, &plan, err, sizeof(err)) != 0)
		fail_msg("plan: %s", err);
	kw_sandbox_policy_free(p);
	return plan;
}

static void
test_relay(void **state)
{
	struct kw_test_fx *fx = *state;
	struct kw_sandbox_caps no_userns = full;
	struct kw_sandbox_plan *plan;
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	char self[PATH_MAX];
	const struct kw_sandbox_grant *g;

	assert_non_null(realpath("/proc/self/exe", self));
	no_userns.userns = false;
	plan = relay_plan(fx->dir, "{\"allowNetwork\": false}", &full, false);
	assert_false(plan->relay);
	assert_int_equal(plan->relay_fd, -1);
	assert_null(grant(plan, self));
	kw_sandbox_plan_free(plan);

	plan = relay_plan(fx->dir, "{\"allowNetwork\": false}", &full, true);
	assert_true(plan->relay && plan->netns);
	assert_int_equal(plan->relay_port, KW_SB_RELAY_PORT_NETNS);
	assert_int_equal(plan->relay_fd, -1);
	assert_non_null(g = grant(plan, self));
	assert_true(g->rights & KW_SB_READ);
	assert_false(g->rights & KW_SB_WRITE);
	kw_sandbox_plan_free(plan);

	/* No network namespace: a port on this loopback, in Landlock's connect rules. */
	plan = relay_plan(fx->dir, "{\"allowNetwork\": false}", &no_userns, true);
	assert_true(plan->relay && plan->landlock_net && !plan->netns);
	assert_true(plan->relay_fd >= 0);
	assert_int_equal(getsockname(plan->relay_fd, (struct sockaddr *)&sa, &len), 0);
	assert_int_equal(ntohl(sa.sin_addr.s_addr), INADDR_LOOPBACK);
	assert_int_equal(ntohs(sa.sin_port), plan->relay_port);
	assert_true(fcntl(plan->relay_fd, F_GETFD) & FD_CLOEXEC);
	kw_sandbox_plan_free(plan);

	/* An open network has no namespace either. */
	plan = relay_plan(fx->dir, "{\"allowNetwork\": true}", &full, true);
	assert_true(plan->relay && !plan->netns && plan->relay_fd >= 0);
	kw_sandbox_plan_free(plan);
}

static void
test_exec_modes(void **state)
{
	struct kw_test_fx *fx = *state;
	struct kw_sandbox_caps no_notify = full;
	struct kw_sandbox_plan *plan;
	char real[PATH_MAX];
	const struct kw_sandbox_grant *g;

	no_notify.seccomp_notify = false;
	plan = plan_of(fx->dir, "{\"allowExec\": false}", &full, NULL, NULL);
	assert_int_equal(plan->exec, KW_SB_EXEC_ONCE);
	assert_non_null(realpath("/bin/sh", real));
	assert_true(has(plan->exec_paths, plan->n_exec_paths, real));
	assert_true(plan->n_exec_paths >= 2);	/* and its ELF interpreter */
	assert_non_null(g = grant(plan, "/usr"));
	assert_int_equal(g->rights & KW_SB_EXEC, 0);
	assert_non_null(strstr(kw_sandbox_plan_level(plan), "exec-once"));
	kw_sandbox_plan_free(plan);
	plan = plan_of(fx->dir, "{\"allowExec\": false}", &no_notify, NULL, NULL);
	assert_true(any_contains(plan->missing, plan->n_missing, "exec-once"));
	kw_sandbox_plan_free(plan);
	plan = plan_of(fx->dir, "{\"whitelistMode\": true, \"whitelist\": [\"env\"]}", &full,
	    NULL, NULL);
	assert_int_equal(plan->exec, KW_SB_EXEC_LIST);
	assert_non_null(realpath("/usr/bin/env", real));
	assert_true(has(plan->exec_paths, plan->n_exec_paths, real));
	kw_sandbox_plan_free(plan);
	plan = plan_of(fx->dir, "{}", &full, NULL, NULL);
	assert_int_equal(plan->exec, KW_SB_EXEC_ANY);
	assert_non_null(g = grant(plan, "/usr"));
	assert_true(g->rights & KW_SB_EXEC);
	/* The command is listed in every mode: it may lie outside the grants. */
	assert_non_null(realpath("/bin/sh", real));
	assert_true(has(plan->exec_paths, plan->n_exec_paths, real));
	kw_sandbox_plan_free(plan);
}

static void
test_missing_abi(void **state)
{
	struct kw_test_fx *fx = *state;
	struct kw_sandbox_caps old = full, none = full;
	struct kw_sandbox_plan *plan;
	json_t *j;

	old.landlock_abi = 2;
	none.seccomp = none.seccomp_notify = false;
	plan = plan_of(fx->dir, "{}", &old, NULL, NULL);
	assert_true(any_contains(plan->missing, plan->n_missing,
	    "Landlock ABI 3 required, this kernel offers 2"));
	assert_int_equal(plan->landlock_abi, 0);
	kw_sandbox_plan_free(plan);
	plan = plan_of(fx->dir, "{}", &none, NULL, NULL);
	assert_true(any_contains(plan->missing, plan->n_missing, "seccomp"));
	assert_non_null(j = kw_sandbox_plan_json(plan));
	assert_int_equal(json_array_size(json_object_get(j, "missing")), plan->n_missing);
	json_decref(j);
	kw_sandbox_plan_free(plan);
	plan = plan_of(fx->dir, "{}", &full, NULL, NULL);
	assert_int_equal(plan->n_missing, 0);
	assert_string_equal(kw_sandbox_plan_level(plan), "landlock-7+userns+mountns+netns+seccomp");
	assert_non_null(j = kw_sandbox_plan_json(plan));
	assert_string_equal(json_string_value(json_object_get(j, "net")), "none");
	assert_true(json_array_size(json_object_get(j, "grants")) > 3);
	json_decref(j);
	kw_sandbox_plan_free(plan);
}

static void
test_env(void **state)
{
	struct kw_test_fx *fx = *state;
	char *const in[] = { "PATH=/usr/bin", "ANTHROPIC_API_KEY=sk-ant-x", "my_Token=t",
	    "SSH_AUTH_SOCK=/s", "FOO=old", "TMPDIR=/elsewhere", "HOME=/h", NULL };
	char *const keep[] = { "FOO=new" };
	struct kw_sandbox_plan *plan = plan_of(fx->dir, "{\"allowNetwork\": true, "
	    "\"allowedHosts\": [\"a.example\"]}", &full, NULL, NULL);
	char **removed = NULL, **env = kw_sandbox_env(plan, in, keep, 1, &removed), tmp[512];
	size_t n = 0;

	assert_non_null(env);
	for (n = 0; env[n]; n++)
		;
	assert_true(has(env, n, "PATH=/usr/bin"));
	assert_true(has(env, n, "HOME=/h"));
	assert_true(has(env, n, "FOO=new"));
	assert_false(has(env, n, "FOO=old"));
	assert_false(any_contains(env, n, "sk-ant"));
	assert_false(any_contains(env, n, "my_Token"));
	assert_false(any_contains(env, n, "SSH_AUTH_SOCK"));
	assert_true(has(env, n, "HTTPS_PROXY=http://127.0.0.1:3128"));
	snprintf(tmp, sizeof(tmp), "TMPDIR=%s", plan->tmpdir);
	assert_true(has(env, n, tmp));
	assert_true(any_contains(env, n, "KEYWARDEN_SANDBOX=landlock-7"));
	for (n = 0; removed[n]; n++)
		;
	assert_true(has(removed, n, "ANTHROPIC_API_KEY"));
	assert_true(has(removed, n, "my_Token"));
	assert_true(has(removed, n, "SSH_AUTH_SOCK"));
	assert_false(has(removed, n, "TMPDIR"));	/* replaced, not removed */
	kw_sandbox_env_free(env);
	kw_sandbox_env_free(removed);
	kw_sandbox_plan_free(plan);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_json),
		cmocka_unit_test_setup_teardown(test_tighten, kw_test_setup, kw_test_teardown),
		cmocka_unit_test_setup_teardown(test_grants_allowed_and_read_only, kw_test_setup,
		    kw_test_teardown),
		cmocka_unit_test_setup_teardown(test_etc_denied, kw_test_setup, kw_test_teardown),
		cmocka_unit_test_setup_teardown(test_denied_inside_allowed, kw_test_setup,
		    kw_test_teardown),
		cmocka_unit_test_setup_teardown(test_exclude_walk, kw_test_setup, kw_test_teardown),
		cmocka_unit_test_setup_teardown(test_hard_link_hidden, kw_test_setup,
		    kw_test_teardown),
		cmocka_unit_test_setup_teardown(test_claude_profile, kw_test_setup,
		    kw_test_teardown),
		cmocka_unit_test_setup_teardown(test_cwd_under_denied, kw_test_setup,
		    kw_test_teardown),
		cmocka_unit_test_setup_teardown(test_net_modes, kw_test_setup, kw_test_teardown),
		cmocka_unit_test_setup_teardown(test_relay, kw_test_setup, kw_test_teardown),
		cmocka_unit_test_setup_teardown(test_exec_modes, kw_test_setup, kw_test_teardown),
		cmocka_unit_test_setup_teardown(test_missing_abi, kw_test_setup, kw_test_teardown),
		cmocka_unit_test_setup_teardown(test_env, kw_test_setup, kw_test_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
