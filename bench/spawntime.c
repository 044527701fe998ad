/*
 * spawntime.c - whole-process wall times for make bench, several commands
 * started the same way and measured in alternation.
 *
 *   spawntime --runs N [--warmup N] [--stdin FILE] [--user UID:GID] \
 *       -- NAME CMD [ARG...] [-- NAME CMD [ARG...]]...
 *
 * Each round runs every command once (posix_spawn, stdout to /dev/null,
 * stdin from FILE or /dev/null, stderr inherited), timed on CLOCK_MONOTONIC
 * from before the spawn to after waitpid; the order rotates by one every
 * round so a drift in machine load hits all commands alike.  A command that
 * exits non-zero (or is killed) fails the whole run: a failure is not a
 * figure.  With --user, spawntime first becomes that user (no supplementary
 * groups) and everything runs as it, as a user's own shell would start it.
 * The output is one flat JSON line:
 *
 *   {"runs":N,"NAME_us":median,...,"NAME_runs_us":[...],...}
 *
 * bench/run.sh divides the medians and the per-round ratios itself.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"

#define MAX_CMDS	8
#define MAX_RUNS	100000

extern char **environ;

struct cmd {
	const char *name;
	char **argv;
	double *us;
};

static int
run_once(const struct cmd *c, const char *in, double *ret_us)
{
	posix_spawn_file_actions_t fa;
	uint64_t t0, t1;
	pid_t pid;
	int st, r;

	if (posix_spawn_file_actions_init(&fa) != 0 ||
	    posix_spawn_file_actions_addopen(&fa, 0, in, O_RDONLY, 0) != 0 ||
	    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0) != 0) {
		bench_log("posix_spawn_file_actions");
		return -1;
	}
	t0 = bench_now_ns();
	r = posix_spawn(&pid, c->argv[0], &fa, NULL, c->argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0) {
		errno = r;
		bench_log_errno("spawn %s", c->argv[0]);
		return -1;
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			bench_log_errno("waitpid");
			return -1;
		}
	t1 = bench_now_ns();
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		bench_log("%s (%s) failed: status 0x%x", c->name, c->argv[0], st);
		return -1;
	}
	*ret_us = (double)(t1 - t0) / 1e3;
	return 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(const double *v, size_t n)
{
	double *s = malloc(n * sizeof(*s)), m;

	if (!s)
		return -1;
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_double);
	m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	free(s);
	return m;
}

/* Become uid:gid for good (spec "UID:GID"); -1 (logged) on failure. */
static int
become(const char *spec)
{
	char *colon = strchr(spec, ':'), uid_s[16];
	long long uid, gid;

	if (!colon || (size_t)(colon - spec) >= sizeof(uid_s))
		return -1;
	memcpy(uid_s, spec, (size_t)(colon - spec));
	uid_s[colon - spec] = '\0';
	if ((uid = bench_parse_uint(uid_s, 1, 0xfffffffeLL)) < 0 ||
	    (gid = bench_parse_uint(colon + 1, 1, 0xfffffffeLL)) < 0)
		return -1;
	if (setgroups(0, NULL) != 0 || setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) != 0 ||
	    setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) != 0) {
		bench_log_errno("becoming %s", spec);
		return -1;
	}
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: spawntime --runs N [--warmup N] [--stdin FILE] [--user UID:GID] "
	    "-- NAME CMD [ARG...] [-- NAME CMD [ARG...]]...\n");
}

int
main(int argc, char **argv)
{
	struct cmd cmds[MAX_CMDS];
	const char *in = "/dev/null", *user = NULL;
	long long runs = 0, warmup = 1;
	size_t n = 0;
	int i = 1;

	bench_prog = "spawntime";
	for (; i < argc && strcmp(argv[i], "--") != 0; i += 2) {
		if (i + 1 >= argc)
			goto bad;
		if (strcmp(argv[i], "--runs") == 0)
			runs = bench_parse_uint(argv[i + 1], 1, MAX_RUNS);
		else if (strcmp(argv[i], "--warmup") == 0)
			warmup = bench_parse_uint(argv[i + 1], 0, MAX_RUNS);
		else if (strcmp(argv[i], "--stdin") == 0)
			in = argv[i + 1];
		else if (strcmp(argv[i], "--user") == 0)
			user = argv[i + 1];
		else
			goto bad;
	}
	if (runs <= 0 || warmup < 0)
		goto bad;
	/* Each "--" starts NAME CMD [ARG...]; it becomes the previous one's NULL. */
	while (i < argc) {
		int start = ++i;

		while (i < argc && strcmp(argv[i], "--") != 0)
			i++;
		if (i - start < 2 || n == MAX_CMDS)
			goto bad;
		cmds[n].name = argv[start];
		cmds[n].argv = argv + start + 1;
		if (!(cmds[n].us = calloc((size_t)runs, sizeof(double)))) {
			bench_log("out of memory");
			return 1;
		}
		n++;
		if (i < argc)
			argv[i] = NULL;
	}
	if (n == 0)
		goto bad;
	if (user && become(user) != 0) {
		bench_log("cannot become %s", user);
		return 1;
	}
	for (long long w = 0; w < warmup; w++)
		for (size_t k = 0; k < n; k++)
			if (run_once(&cmds[k], in, &cmds[k].us[0]) != 0)
				return 1;
	for (long long r = 0; r < runs; r++)
		for (size_t j = 0; j < n; j++) {
			size_t k = (j + (size_t)r) % n;

			if (run_once(&cmds[k], in, &cmds[k].us[r]) != 0)
				return 1;
		}
	printf("{\"runs\":%lld", runs);
	for (size_t k = 0; k < n; k++)
		printf(",\"%s_us\":%.1f", cmds[k].name, median(cmds[k].us, (size_t)runs));
	for (size_t k = 0; k < n; k++) {
		printf(",\"%s_runs_us\":[", cmds[k].name);
		for (long long r = 0; r < runs; r++)
			printf("%s%.1f", r ? "," : "", cmds[k].us[r]);
		printf("]");
	}
	printf("}\n");
	return 0;
 bad:
	usage();
	return 2;
}
