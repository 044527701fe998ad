/*
 * policy_decide.c - in-process decisions per second (make bench, section
 * policy): a 200-byte command line decided against a policy of 100 rules
 * (deniedCommands, allowedCommands, deniedPaths, excludePatterns), on one
 * core.  The baseline, in the same run, is parsing the same line alone
 * (policy/shell/): the ratio says what deciding costs beyond reading.
 *
 *   policy_decide SECONDS [fs]     prints one JSON object
 *
 * "fs" lets the policy ask the file system (symlinks, globs), as the broker
 * does; without it the decision is lexical.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/config.h"
#include "policy/policy.h"
#include "policy/shell/shell.h"

/* 200 bytes: a realistic agent line with a pipeline, a redirection and a substitution. */
static const char LINE[] =
    "git log --oneline -n 20 -- src/ tests/ && grep -rn 'TODO' src/ include/ | sort | uniq -c "
    "| head -n 50 > notes/todo-list.txt; make -j4 test 2>&1 | tail -v -n 30; echo \"done: "
    "$(date +%s)\" >> build/log.txt";

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 100 rules: 40 denied commands, 30 allowed, 20 denied paths, 10 exclusions. */
static char *
config_text(void)
{
	size_t cap = 16384, n = 0;
	char *s = malloc(cap);

#define ADD(...) (n += (size_t)snprintf(s + n, cap - n, __VA_ARGS__))
	ADD("{\"security\": {\"execution\": {\"deniedCommands\": [");
	for (int i = 0; i < 40; i++)
		ADD("%s\"tool%d --flag%d -x\"", i ? ", " : "", i, i);
	ADD("], \"allowedCommands\": [\"git\", \"grep\", \"sort\", \"uniq\", \"head\", \"make\", "
	    "\"tail\", \"echo\", \"date\"");
	for (int i = 0; i < 21; i++)
		ADD(", \"allowed%d\"", i);
	ADD("]}, \"deniedPaths\": [");
	for (int i = 0; i < 20; i++)
		ADD("%s\"/srv/secret%d\"", i ? ", " : "", i);
	ADD("], \"excludePatterns\": [");
	for (int i = 0; i < 10; i++)
		ADD("%s\"**/*.secret%d\"", i ? ", " : "", i);
	ADD("]}}");
	return s;
}

int
main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 1.0, t0, t;
	bool fs = argc > 2 && strcmp(argv[2], "fs") == 0;
	struct kw_config *cfg = NULL;
	struct kw_policy *p = NULL;
	char err[512], cwd[4096];
	char *text = config_text();
	long decisions = 0, parses = 0;
	int verdict = -1;

	if (kw_config_parse(text, strlen(text), &cfg, err, sizeof(err)) < 0 ||
	    kw_policy_compile(cfg, &p, err, sizeof(err)) < 0) {
		fprintf(stderr, "policy_decide: %s\n", err);
		return 1;
	}
	if (!getcwd(cwd, sizeof(cwd)))
		return 1;
	struct kw_policy_ctx ctx = { .cwd = cwd, .home = "/home/bench", .fs = fs,
	    .uid = getuid(), .gid = getgid() };
	for (t0 = now(); (t = now()) - t0 < secs; ) {
		for (int i = 0; i < 256; i++, parses++) {
			struct kw_sh_script *s = NULL;
			if (kw_sh_parse(LINE, sizeof(LINE) - 1, &s) < 0)
				return 1;
			kw_sh_free(s);
		}
	}
	double parse_rate = (double)parses / (t - t0);
	for (t0 = now(); (t = now()) - t0 < secs; ) {
		for (int i = 0; i < 256; i++, decisions++) {
			struct kw_decision *d = NULL;
			if (kw_policy_command(p, &ctx, LINE, &d) < 0)
				return 1;
			verdict = (int)d->verdict;
			kw_decision_free(d);
		}
	}
	double rate = (double)decisions / (t - t0);
	printf("{\"line_bytes\": %zu, \"rules\": 100, \"fs\": %s, \"decisions_per_s\": %.0f, "
	    "\"parses_per_s\": %.0f, \"ratio_to_parse\": %.4f, \"verdict\": \"%s\"}\n",
	    sizeof(LINE) - 1, fs ? "true" : "false", rate, parse_rate, rate / parse_rate,
	    kw_verdict_name((enum kw_verdict)verdict));
	kw_policy_free(p);
	kw_config_free(cfg);
	free(text);
	return 0;
}
