/*
 * sandbox_run.c - run a command under the kernel sandbox, for `keywarden
 * run` and `keywarden exec --sandbox` (one path, so both confine alike).
 *
 * The order is the point: the policy comes from the broker first (no
 * broker, no policy: the command does not run unconfined); the user's
 * profile may only tighten it; the plan says what this machine can apply,
 * and a shortfall refuses when the policy (security.sandbox.enabled) or
 * --require asks for more; the broker records the run before the child
 * execs (the launcher's ready hook), and a run it cannot record is killed
 * (fail closed).  The child's environment is scrubbed of secrets except
 * what is handed in on purpose (exec's keys, run's --env).  With the
 * relay (run --relay; the claude profile's default) the child gets
 * KEYWARDEN_RELAY and the parent serves the hook's policy checks for it
 * (sandbox_relay.c) until the run ends.
 */
#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/sandbox_relay.h"
#include "cli/sandbox_run.h"
#include "common/errors.h"
#include "common/names.h"
#include "sandbox/sandbox.h"

#define COMMAND_MAX	4096	/* the command line sent to be recorded */
#define REQUIRE_MAX	1000	/* a Landlock ABI no kernel will offer soon */

extern char **environ;

/* One run's state: what the broker needs to hear about it. */
struct run {
	struct kw_cli *cli;
	const char *what;		/* "run" or "exec", for messages */
	kw_client *client;		/* the broker, until the run is recorded */
	json_t *ident;			/* {"argv0", "command", "profile"} */
	const struct kw_sandbox_plan *plan;
	int report_err;			/* the failed report's code, for the message */
	char report_msg[512];
};

bool
kw_cli_sandbox_option(struct kw_cli_sandbox *o, int c, char *arg)
{
	switch (c) {
	case KW_CLI_SB_PROFILE: o->profile = arg; return true;
	case KW_CLI_SB_WITHOUT: o->without = arg; return true;
	case KW_CLI_SB_REQUIRE: o->require = arg; return true;
	case KW_CLI_SB_RELAY: o->relay = 1; return true;
	case KW_CLI_SB_NO_RELAY: o->relay = -1; return true;
	case KW_CLI_SB_RELAY_KEY:
		if (o->n_relay_keys == KW_CLI_SB_MAX_RELAY_KEYS)
			o->bad = "at most 16 --relay-key options";
		else if (!kw_name_ok(KW_NAME_KEY, arg))
			o->bad = "--relay-key: not a key name (letters, digits, '.', '_', '-', "
			    "up to 64)";
		else
			o->relay_keys[o->n_relay_keys++] = arg;
		return true;
	default:
		return false;
	}
}

const char *
kw_cli_sandbox_options_done(struct kw_cli_sandbox *o)
{
	/* --relay-key means the relay; with --no-relay nothing could pass it. */
	if (o->n_relay_keys && o->relay < 0)
		return "--relay-key needs the relay: drop --no-relay";
	if (o->n_relay_keys)
		o->relay = 1;
	return NULL;
}

/* --require landlock=N: N, or -1 for anything else. */
static int
parse_require(const char *s)
{
	char *end;
	long n;

	if (!s)
		return 0;
	if (strncmp(s, "landlock=", 9) != 0)
		return -1;
	errno = 0;
	n = strtol(s + 9, &end, 10);
	if (errno || end == s + 9 || *end || n < 1 || n > REQUIRE_MAX)
		return -1;
	return (int)n;
}

/* A profile file: a path ("./p.json", "/etc/...") or a name ending in .json. */
static bool
is_profile_file(const char *p)
{
	size_t n = strlen(p);

	return strchr(p, '/') || (n > 5 && strcmp(p + n - 5, ".json") == 0);
}

/*
 * The profile's name as the broker records it: "default" or "claude" (the
 * latter chosen for claude itself), or "file:NAME".  -1 for an unknown name.
 */
static int
profile_name(const char *given, const char *argv0, char *out, size_t len)
{
	if (!given) {
		snprintf(out, len, "%s", strcmp(argv0, "claude") == 0 ? "claude" : "default");
		return 0;
	}
	if (is_profile_file(given)) {
		const char *base = strrchr(given, '/');
		snprintf(out, len, "file:%.200s", base ? base + 1 : given);
		return 0;
	}
	if (strcmp(given, "default") != 0 && strcmp(given, "claude") != 0)
		return -1;
	snprintf(out, len, "%s", given);
	return 0;
}

/* The command line as text, for the record (the broker masks it). */
static void
command_text(char **cmd, char *out, size_t len)
{
	size_t n = 0;

	out[0] = '\0';
	for (int i = 0; cmd[i] && n + 1 < len; i++)
		n += (size_t)snprintf(out + n, len - n, "%s%s", i ? " " : "", cmd[i]);
}

/* Send sandbox.report; 0 or the error (its message kept in run). */
static int
report(struct run *run, const char *result, const char *reason)
{
	json_t *args = json_deep_copy(run->ident), *missing = json_array(), *res = NULL;
	char *msg = NULL;
	int r = KW_ERR_NOMEM;

	if (!args || !missing)
		goto out;
	for (size_t i = 0; run->plan && i < run->plan->n_missing; i++)
		json_array_append_new(missing, json_string(run->plan->missing[i]));
	json_object_set_new(args, "level", json_string(run->plan ?
	    kw_sandbox_plan_level(run->plan) : "none"));
	json_object_set_new(args, "result", json_string(result));
	json_object_set(args, "missing", missing);
	if (reason)
		json_object_set_new(args, "reason", json_string(reason));
	r = kw_client_call(run->client, "sandbox.report", args, &res, &msg);
	if (r < 0) {
		run->report_err = r;
		snprintf(run->report_msg, sizeof(run->report_msg), "%s",
		    msg ? msg : kw_strerror(r));
	}
 out:
	free(msg);
	json_decref(res);
	json_decref(missing);
	json_decref(args);
	return r;
}

/*
 * A launch that failed in the child (a layer the kernel refused, an exec
 * that failed) is recorded too, as refused with the child's reason: every
 * run is in the trail, the ones that never ran included.  The connection
 * may be gone already (the ready hook ends it), so a new one is made; a
 * broker that cannot take the record changes nothing here: the command did
 * not run.
 */
static void
record_failure(struct run *run, const char *why)
{
	if (!run->client && kw_cli_connect_quiet(run->cli, &run->client) != 0)
		return;
	(void)report(run, "refused", why);
}

/*
 * The launcher's hook: the child has applied the plan and waits to exec.
 * The run is recorded now, or the child is killed.  The broker connection
 * ends here either way: a long run must not hold one of its slots.
 */
static int
ready(void *arg)
{
	struct run *run = arg;
	int r = report(run, "started", NULL);

	kw_client_free(run->client);
	run->client = NULL;
	return r < 0 ? r : 0;
}

/* "rwxd" with '-' for what is not granted. */
static void
rights_text(unsigned rights, char out[5])
{
	out[0] = rights & KW_SB_READ ? 'r' : '-';
	out[1] = rights & KW_SB_WRITE ? 'w' : '-';
	out[2] = rights & KW_SB_EXEC ? 'x' : '-';
	out[3] = rights & KW_SB_DEV ? 'd' : '-';
	out[4] = '\0';
}

static const char *
yes(bool b)
{
	return b ? "yes" : "no";
}

static void
print_caps(const struct kw_sandbox_caps *caps)
{
	printf("machine: landlock ABI %d, user namespaces %s, seccomp %s, seccomp notify %s\n",
	    caps->landlock_abi, yes(caps->userns), yes(caps->seccomp), yes(caps->seccomp_notify));
	if (caps->why_not[0])
		printf("  not offered: %s\n", kw_cli_safe(caps->why_not));
}

static void
print_plan(const struct kw_sandbox_plan *p)
{
	static const char *const net[] = { "open", "filtered", "none" };
	static const char *const exec[] = { "any", "list", "once" };
	const char *w;
	char rights[5];

	printf("level: %s\n", kw_cli_safe(kw_sandbox_plan_level(p)));
	printf("landlock: %s", p->landlock_abi ? "ABI " : "no");
	if (p->landlock_abi)
		printf("%d%s%s", p->landlock_abi, p->landlock_net ? ", tcp rules" : "",
		    p->scoped ? ", scoped" : "");
	printf("\nnamespaces: user %s, mount %s, network %s\n", yes(p->userns), yes(p->mountns),
	    yes(p->netns));
	printf("seccomp: %s\n", yes(p->seccomp));
	printf("network: %s", net[p->net]);
	for (size_t i = 0; i < p->n_hosts; i++)
		printf("%s%s", i ? ", " : " (", kw_cli_safe(p->allowed_hosts[i]));
	for (size_t i = 0; i < p->n_domains; i++)
		printf("%s*.%s", i || p->n_hosts ? ", " : " (", kw_cli_safe(p->allowed_domains[i]));
	printf("%s\n", p->n_hosts || p->n_domains ? ")" : "");
	for (size_t i = 0; i < p->n_forwards; i++)
		printf("forward: 127.0.0.1:%u as outside\n", (unsigned)p->forward_ports[i]);
	printf("exec: %s", exec[p->exec]);
	for (size_t i = 0; i < p->n_exec_paths; i++)
		printf("%s%s", i ? ", " : " (", kw_cli_safe(p->exec_paths[i]));
	printf("%s\n", p->n_exec_paths ? ")" : "");
	if (p->broker_socket)
		printf("broker socket: out of reach (%s)\n", kw_cli_safe(p->broker_socket));
	if (p->relay)
		printf("broker relay: 127.0.0.1:%u (policy checks, and --relay-key keys only)\n",
		    (unsigned)p->relay_port);
	for (size_t i = 0; i < p->n_grants; i++) {
		rights_text(p->grants[i].rights, rights);
		printf("grant %s %s (%s)\n", rights, kw_cli_safe(p->grants[i].path),
		    p->grants[i].why ? p->grants[i].why : "");
	}
	for (size_t i = 0; i < p->n_hides; i++)
		printf("hide %s\n", kw_cli_safe(p->hides[i]));
	for (size_t i = 0; i < p->n_missing; i++)
		printf("missing: %s\n", kw_cli_safe(p->missing[i]));
	for (w = p->warnings; w && *w; w += strlen(w) + 1)
		printf("note: %s\n", kw_cli_safe(w));
}

/* --check: the machine and the plan; 2 when a shortfall would refuse. */
static int
check(struct kw_cli *cli, const struct kw_cli_sandbox *o, const struct kw_sandbox_caps *caps,
    const struct kw_sandbox_plan *plan, bool refuse)
{
	if (o->json) {
		json_t *out = json_pack("{s:{s:i, s:b, s:b, s:b, s:s}, s:o?}",
		    "caps", "landlock_abi", caps->landlock_abi, "userns", caps->userns,
		    "seccomp", caps->seccomp, "seccomp_notify", caps->seccomp_notify,
		    "why_not", caps->why_not, "plan", kw_sandbox_plan_json(plan));
		if (!out)
			return kw_cli_fail(KW_ERR_NOMEM, "run", "out of memory");
		kw_cli_print_json(out);
		json_decref(out);
	} else {
		print_caps(caps);
		print_plan(plan);
	}
	if (refuse) {
		kw_cli_record_error("denied", "not confined enough: the policy requires "
		    "what this machine does not offer");
		return KW_EXIT_USAGE;
	}
	return KW_EXIT_OK;
}

/* Each shortfall (and warning) on stderr: refusing, or noting and going on. */
static void
say_missing(const char *what, const struct kw_sandbox_plan *plan, bool refuse)
{
	for (size_t i = 0; i < plan->n_missing; i++)
		fprintf(stderr, "keywarden: %s: %s: %s\n", what,
		    refuse ? "not confined enough" : "note: not applied",
		    kw_cli_safe(plan->missing[i]));
	for (const char *w = plan->warnings; w && *w; w += strlen(w) + 1)
		fprintf(stderr, "keywarden: %s: note: %s\n", what, kw_cli_safe(w));
	if (refuse)
		kw_cli_record_error("denied", plan->n_missing ? plan->missing[0] :
		    "not confined enough");
}

/* The broker's policy for this run (sandbox.begin).  0 or the exit status. */
static int
begin(struct run *run, const char *cwd, struct kw_sandbox_policy **ret_policy)
{
	json_t *args = json_deep_copy(run->ident), *res = NULL;
	char *msg = NULL, err[512];
	int r, ex;

	if (!args)
		return kw_cli_fail(KW_ERR_NOMEM, run->what, "out of memory");
	json_object_set_new(args, "cwd", json_string(cwd));
	r = kw_client_call(run->client, "sandbox.begin", args, &res, &msg);
	json_decref(args);
	if (r < 0) {
		kw_cli_error(run->what, r, msg);
		free(msg);
		return kw_cli_exit_for(r);
	}
	r = kw_sandbox_policy_from_json(json_object_get(res, "policy"), ret_policy, err,
	    sizeof(err));
	json_decref(res);
	ex = r < 0 ? kw_cli_fail(r, run->what, "the broker's policy: %s", err) : 0;
	return ex;
}

/*
 * The child's environment: keep plus, with the relay, KEYWARDEN_RELAY
 * (its token wiped here once copied).  NULL on failure.
 */
static char **
child_env(const struct kw_sandbox_plan *plan, struct kw_cli_relay *relay, char *const keep[],
    size_t n_keep)
{
	char relay_var[128], **all, **env;

	if (!relay)
		return kw_sandbox_env(plan, environ, keep, n_keep, NULL);
	if (kw_cli_relay_env(relay, plan->relay_port, relay_var, sizeof(relay_var)) < 0 ||
	    !(all = calloc(n_keep + 1, sizeof(char *))))
		return NULL;
	for (size_t i = 0; i < n_keep; i++)
		all[i] = keep[i];
	all[n_keep] = relay_var;
	env = kw_sandbox_env(plan, environ, all, n_keep + 1, NULL);
	sodium_memzero(relay_var, sizeof(relay_var));
	free(all);
	return env;
}

/* The child runs; its status is the answer. */
static int
launch(struct run *run, const struct kw_sandbox_plan *plan, const struct kw_cli_sandbox *o,
    char **cmd, char *const keep[], size_t n_keep)
{
	struct kw_cli_relay *relay = NULL;
	char **env, err[512];
	int status = 0, r;

	if (plan->relay && kw_cli_relay_new(run->cli, o->relay_keys, o->n_relay_keys,
	    kw_sandbox_plan_level(plan), &relay) < 0)
		return kw_cli_fail(KW_ERR_NOMEM, run->what, "cannot make the broker relay");
	if (!(env = child_env(plan, relay, keep, n_keep))) {
		kw_cli_relay_free(relay);
		return kw_cli_fail(KW_ERR_NOMEM, run->what, "out of memory");
	}
	/* Nothing of ours may be printed twice by a child that fails before exec. */
	fflush(stdout);
	fflush(stderr);
	r = kw_sandbox_launch(plan, cmd, env, ready, run, relay ? kw_cli_relay_serve : NULL,
	    relay, &status, err, sizeof(err));
	kw_sandbox_env_free(env);
	/* The run is over: the relay's threads end with it. */
	kw_cli_relay_free(relay);
	if (r == 0)
		return status;
	if (run->report_err)
		return kw_cli_fail(run->report_err, run->what, "the broker did not record the "
		    "run, so %s was stopped before it ran: %s", kw_cli_safe(cmd[0]),
		    kw_cli_safe(run->report_msg));
	record_failure(run, err);
	return kw_cli_fail(r, run->what, "%s not run: %s", kw_cli_safe(cmd[0]), kw_cli_safe(err));
}

int
kw_cli_sandbox_run(struct kw_cli *cli, const struct kw_cli_sandbox *o, char **cmd,
    char *const keep[], size_t n_keep)
{
	static char *check_cmd[] = { "true", NULL };
	struct run run = { .cli = cli, .what = cli->cmd ? cli->cmd->name : "run" };
	struct kw_sandbox_policy *policy = NULL;
	struct kw_sandbox_plan *plan = NULL;
	struct kw_sandbox_caps caps;
	char cwd[PATH_MAX], profile[256], text[COMMAND_MAX], err[512];
	const char *argv0;
	int require = parse_require(o->require), ex, r;
	bool refuse;

	if (!cmd || !cmd[0])
		cmd = check_cmd;
	argv0 = strrchr(cmd[0], '/') ? strrchr(cmd[0], '/') + 1 : cmd[0];
	if (require < 0)
		return kw_cli_usage(cli, "--require: '%.64s' is not landlock=N (N from 1 to %d)",
		    kw_cli_safe(o->require), REQUIRE_MAX);
	if (profile_name(o->profile, argv0, profile, sizeof(profile)) < 0)
		return kw_cli_usage(cli, "--profile: unknown profile '%.64s' (choices: default, "
		    "claude, or a profile file: a path with '/' or a name ending in .json)",
		    kw_cli_safe(o->profile));
	if (!*argv0)
		return kw_cli_usage(cli, "CMD '%.64s' names no program", kw_cli_safe(cmd[0]));
	if (!getcwd(cwd, sizeof(cwd)))
		return kw_cli_fail(KW_ERR_IO, run.what, "the working directory: %s",
		    strerror(errno));
	command_text(cmd, text, sizeof(text));
	if (!(run.ident = json_pack("{s:s, s:s, s:s}", "argv0", argv0, "command", text,
	    "profile", profile)))
		return kw_cli_fail(KW_ERR_NOMEM, run.what, "out of memory");
	/* No broker, no policy: the command does not run at all. */
	if ((ex = kw_cli_connect(cli, &run.client)) != 0) {
		if (o->check)
			fprintf(stderr, "keywarden: %s: --check needs the broker's policy\n",
			    run.what);
		else
			fprintf(stderr, "keywarden: %s: refusing to run %s unconfined\n", run.what,
			    kw_cli_safe(cmd[0]));
		goto out;
	}
	if ((ex = begin(&run, cwd, &policy)) != 0)
		goto out;
	if (o->profile && is_profile_file(o->profile) &&
	    (r = kw_sandbox_policy_tighten(policy, o->profile, cwd, err, sizeof(err))) < 0) {
		ex = kw_cli_fail(r, run.what, "--profile: %s", kw_cli_safe(err));
		goto out;
	}
	kw_sandbox_detect(&caps, o->without);
	struct kw_sandbox_request req = {
		.argv = cmd,
		.cwd = cwd,
		.env_path = getenv("PATH"),
		.broker_socket = kw_cli_socket(cli),
		.api_base_url = getenv("ANTHROPIC_BASE_URL"),
		.claude_config_dir = getenv("CLAUDE_CONFIG_DIR"),
		.require_landlock_abi = require,
		.relay = o->relay > 0 || (o->relay == 0 && strcmp(profile, "claude") == 0),
		.dry_run = o->check,
	};
	if ((r = kw_sandbox_plan_build(policy, &caps, &req, &plan, err, sizeof(err))) < 0) {
		if (!o->check)
			(void)report(&run, "refused", err);
		ex = kw_cli_fail(r, run.what, "%s", kw_cli_safe(err));
		goto out;
	}
	run.plan = plan;
	refuse = plan->n_missing > 0 && (policy->enabled || require > 0);
	if (o->check) {
		ex = check(cli, o, &caps, plan, refuse);
		goto out;
	}
	say_missing(run.what, plan, refuse);
	if (refuse) {
		/* Refused either way; the record is the administrator's to see. */
		(void)report(&run, "refused", "not confined enough for the policy");
		ex = KW_EXIT_USAGE;
		goto out;
	}
	ex = launch(&run, plan, o, cmd, keep, n_keep);
 out:
	kw_client_free(run.client);
	kw_sandbox_plan_free(plan);
	kw_sandbox_policy_free(policy);
	json_decref(run.ident);
	return ex;
}
