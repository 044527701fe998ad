/*
 * cmd_admin_usage.c - keywarden admin usage [--since WHEN] [--json]
 *
 * The API calls the proxy made, summed per user and model (admin.usage,
 * proxy/DESIGN.md): calls, input and output tokens, errors.  The rows come
 * from the audit trail's api_call records, so they are what was recorded,
 * never a request's body.  --since takes what the audit filters take
 * (cli/timespec.h) and is sent as an RFC 3339 time, so the broker and the
 * CLI cannot read "7d" differently.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/table.h"
#include "cli/timespec.h"

#define COLS 6

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Unix milliseconds as "2026-12-03T20:00:00Z" in buf. */
static const char *
rfc3339(long long ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return NULL;
	return buf;
}

static void
print_usage_table(json_t *res)
{
	json_t *rows = json_object_get(res, "rows"), *r;
	size_t i, n = json_array_size(rows);
	const char **cells = calloc(n * COLS + 1, sizeof(*cells));
	char (*num)[4][24] = calloc(n + 1, sizeof(*num));
	static const char *const nums[] = { "calls", "input_tokens", "output_tokens", "errors" };

	if (!cells || !num) {
		free(cells);
		free(num);
		return;
	}
	json_array_foreach(rows, i, r) {
		cells[i * COLS] = json_string_value(json_object_get(r, "user"));
		cells[i * COLS + 1] = json_string_value(json_object_get(r, "model"));
		for (size_t k = 0; k < 4; k++) {
			snprintf(num[i][k], sizeof(num[i][k]), "%lld",
			    (long long)json_integer_value(json_object_get(r, nums[k])));
			cells[i * COLS + 2 + k] = num[i][k];
		}
	}
	if (n == 0)
		printf("no API calls through the proxy\n");
	else
		kw_table_print(stdout, COLS, (const char *const[]){ "USER", "MODEL", "CALLS",
		    "INPUT-TOKENS", "OUTPUT-TOKENS", "ERRORS" }, cells, n);
	free(cells);
	free(num);
}

int
kw_cmd_admin_usage(struct kw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "since", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	const char *since = NULL;
	char when[32];
	long long ms;
	json_t *args;
	int c, ex;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 's')
			return kw_cli_bad_option(cli, argc, argv, opts);
		if (kw_cli_parse_time(optarg, now_ms(), &ms) < 0 ||
		    !(since = rfc3339(ms, when, sizeof(when))))
			return kw_cli_usage(cli, "--since: '%.64s' is not a time (2026-11-25T01:02:03Z, "
			    "2026-11-25, or an age: 30m, 12h, 7d)", kw_cli_safe(optarg));
	}
	if ((ex = kw_cli_args(cli, argc, argv, optind, "")) != 0)
		return ex;
	args = since ? json_pack("{s:s}", "since", since) : json_object();
	return kw_cli_call_print(cli, "admin usage", "admin.usage", args, cli->json,
	    print_usage_table);
}
