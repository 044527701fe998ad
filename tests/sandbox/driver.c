/*
 * driver.c - a test tool for the kernel sandbox (sandbox/): read a policy
 * object from a JSON file, detect, plan, and either print the plan
 * (--check) or run the command under it.  The real entry point is
 * `keywarden run`; this exists so the integration tests can reach the
 * layer without the broker.
 *
 *   sandbox_driver [--without X] [--require-abi N] [--check] POLICY.json -- CMD ARGS...
 *
 * Exit: the command's status; 2 when policy.enabled and the machine falls
 * short (each missing line on stderr); 125 for the driver's own errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandbox/sandbox.h"

extern char **environ;

static int
usage(void)
{
	fprintf(stderr, "usage: sandbox_driver [--without X] [--require-abi N] [--check] "
	    "POLICY.json -- CMD ARGS...\n");
	return 125;
}

static int
run(struct kw_sandbox_plan *plan, char *const *argv)
{
	char err[512] = "", **env = kw_sandbox_env(plan, environ, NULL, 0, NULL);
	int status = 125, r;

	if (!env)
		return 125;
	r = kw_sandbox_launch(plan, argv, env, NULL, NULL, NULL, NULL, &status, err, sizeof(err));
	kw_sandbox_env_free(env);
	if (r != 0) {
		fprintf(stderr, "sandbox_driver: %s\n", err);
		return 125;
	}
	return status;
}

int
main(int argc, char **argv)
{
	const char *without = NULL, *policy_file = NULL;
	struct kw_sandbox_request req = { 0 };
	struct kw_sandbox_policy *policy = NULL;
	struct kw_sandbox_plan *plan = NULL;
	struct kw_sandbox_caps caps;
	json_error_t jerr;
	json_t *obj;
	char cwd[4096], err[512] = "";
	bool check = false;
	int i, rc = 125;

	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--without") == 0 && i + 1 < argc)
			without = argv[++i];
		else if (strcmp(argv[i], "--require-abi") == 0 && i + 1 < argc)
			req.require_landlock_abi = atoi(argv[++i]);
		else if (strcmp(argv[i], "--check") == 0)
			check = true;
		else if (!policy_file)
			policy_file = argv[i];
		else
			return usage();
	}
	if (!policy_file || i + 1 >= argc || !getcwd(cwd, sizeof(cwd)))
		return usage();
	if (!(obj = json_load_file(policy_file, 0, &jerr))) {
		fprintf(stderr, "sandbox_driver: %s: %s\n", policy_file, jerr.text);
		return 125;
	}
	if (kw_sandbox_policy_from_json(obj, &policy, err, sizeof(err)) != 0) {
		fprintf(stderr, "sandbox_driver: %s\n", err);
		goto out;
	}
	kw_sandbox_detect(&caps, without);
	req.argv = argv + i + 1;
	req.cwd = cwd;
	req.env_path = getenv("PATH");
	req.broker_socket = getenv("KEYWARDEN_SOCKET");
	req.api_base_url = getenv("ANTHROPIC_BASE_URL");
	req.claude_config_dir = getenv("CLAUDE_CONFIG_DIR");
	if (kw_sandbox_plan_build(policy, &caps, &req, &plan, err, sizeof(err)) != 0) {
		fprintf(stderr, "sandbox_driver: %s\n", err);
		goto out;
	}
	for (const char *w = plan->warnings; w && *w; w += strlen(w) + 1)
		fprintf(stderr, "sandbox_driver: warning: %s\n", w);
	for (size_t k = 0; k < plan->n_missing; k++)
		fprintf(stderr, "sandbox_driver: missing: %s\n", plan->missing[k]);
	if (check) {
		json_t *j = kw_sandbox_plan_json(plan);

		rc = j && json_dumpf(j, stdout, JSON_INDENT(1)) == 0 ? 0 : 125;
		printf("\n");
		json_decref(j);
		goto out;
	}
	if (policy->enabled && plan->n_missing > 0) {
		fprintf(stderr, "sandbox_driver: refusing to run: the sandbox is enabled and this "
		    "machine falls short (see above)\n");
		rc = 2;
		goto out;
	}
	rc = run(plan, req.argv);
 out:
	kw_sandbox_plan_free(plan);
	kw_sandbox_policy_free(policy);
	json_decref(obj);
	return rc;
}
