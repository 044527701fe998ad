/*
 * cmd_admin_incident.c - keywarden admin incident list|report|close
 *
 * Incidents are opened by the broker's monitor (an alert that locked an
 * account, ended its sessions, mailed someone); these commands read them,
 * and close one with a note saying what was done about it.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/table.h"

/* What a subcommand accepts; NULL fields refuse the option. */
struct incident_flags {
	const char **id;	/* --id ID or a lone ID (required) */
	const char **state;	/* --state open|closed */
	const char **note;	/* --note TEXT */
};

/* The options f allows; --id ID or a lone ID when f->id.  0 or the exit status (said why). */
static int
parse(struct kw_cli *cli, int argc, char **argv, const struct incident_flags *f)
{
	static const struct option opts[] = {
		{ "id", required_argument, NULL, 'i' },
		{ "state", required_argument, NULL, 's' },
		{ "note", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'i' && f->id)
			*f->id = optarg;
		else if (c == 's' && f->state)
			*f->state = optarg;
		else if (c == 'n' && f->note)
			*f->note = optarg;
		else
			return kw_cli_bad_option(cli, argc, argv, opts);
	}
	if (f->id && !*f->id && argc - optind == 1)
		*f->id = argv[optind++];
	if (f->id && !*f->id)
		return kw_cli_usage(cli, "missing ID (--id ID, or the id alone)");
	return kw_cli_args(cli, argc, argv, optind, "");
}

static const char *
str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static void
print_incidents(json_t *res)
{
	json_t *incidents = json_object_get(res, "incidents"), *inc;
	size_t n = json_array_size(incidents), i;
	const char **cells = calloc(n * 6 + 1, sizeof(*cells));
	char **actions = calloc(n + 1, sizeof(*actions));

	if (n == 0)
		printf("no incidents\n");
	else if (cells && actions) {
		json_array_foreach(incidents, i, inc) {
			actions[i] = kw_cli_join(json_object_get(inc, "actions"));
			cells[i * 6] = str(inc, "id");
			cells[i * 6 + 1] = str(inc, "opened");
			cells[i * 6 + 2] = str(inc, "type");
			cells[i * 6 + 3] = str(inc, "user");
			cells[i * 6 + 4] = str(inc, "status");
			cells[i * 6 + 5] = actions[i];
		}
		kw_table_print(stdout, 6, (const char *const[]){ "ID", "OPENED", "TYPE", "USER",
		    "STATUS", "ACTIONS" }, cells, n);
	}
	for (i = 0; actions && i < n; i++)
		free(actions[i]);
	free(actions);
	free(cells);
}

static int
incident_list(struct kw_cli *cli, int argc, char **argv)
{
	const char *state = NULL;
	struct incident_flags f = { .state = &state };
	int ex;

	if ((ex = parse(cli, argc, argv, &f)) != 0)
		return ex;
	if (state && strcmp(state, "open") != 0 && strcmp(state, "closed") != 0)
		return kw_cli_usage(cli, "--state is open or closed, not '%.32s'", kw_cli_safe(state));
	return kw_cli_call_print(cli, "admin incident list", "incident.list",
	    state ? json_pack("{s:s}", "state", state) : json_object(), cli->json, print_incidents);
}

static void
print_report(json_t *res)
{
	json_t *inc = json_object_get(res, "incident");
	json_t *timeline = json_object_get(res, "timeline");
	json_t *details = json_object_get(inc, "details");
	char *actions = kw_cli_join(json_object_get(inc, "actions"));
	char *d = details && json_object_size(details) > 0 ?
	    json_dumps(details, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;

	printf("incident    %s\n", kw_cli_safe(str(inc, "id") ? str(inc, "id") : "?"));
	printf("opened      %s\n", kw_cli_safe(str(inc, "opened") ? str(inc, "opened") : "-"));
	printf("type        %s\n", kw_cli_safe(str(inc, "type") ? str(inc, "type") : "-"));
	printf("user        %s\n", kw_cli_safe(str(inc, "user") ? str(inc, "user") : "-"));
	printf("status      %s\n", kw_cli_safe(str(inc, "status") ? str(inc, "status") : "-"));
	if (str(inc, "closed"))
		printf("closed      %s by %s: %s\n", kw_cli_safe(str(inc, "closed")),
		    kw_cli_safe(str(inc, "closed_by")), kw_cli_safe(str(inc, "note")));
	printf("actions     %s\n", kw_cli_safe(actions ? actions : "-"));
	printf("details     %s\n", kw_cli_safe(d ? d : "-"));
	printf("\ntimeline (%zu record(s), from an hour before to an hour after it opened):\n",
	    json_array_size(timeline));
	if (json_array_size(timeline) > 0)
		kw_cli_print_records(stdout, timeline);
	free(actions);
	free(d);
}

static int
incident_report(struct kw_cli *cli, int argc, char **argv)
{
	const char *id = NULL;
	struct incident_flags f = { .id = &id };
	int ex;

	if ((ex = parse(cli, argc, argv, &f)) != 0)
		return ex;
	return kw_cli_call_print(cli, "admin incident report", "incident.report",
	    json_pack("{s:s}", "id", id), cli->json, print_report);
}

static void
print_closed(json_t *res)
{
	json_t *inc = json_object_get(res, "incident");

	printf("closed %s: %s\n", kw_cli_safe(str(inc, "id")), kw_cli_safe(str(inc, "note")));
}

static int
incident_close(struct kw_cli *cli, int argc, char **argv)
{
	const char *id = NULL, *note = NULL;
	struct incident_flags f = { .id = &id, .note = &note };
	int ex;

	if ((ex = parse(cli, argc, argv, &f)) != 0)
		return ex;
	if (!note)
		return kw_cli_usage(cli, "missing --note TEXT");
	return kw_cli_call_print(cli, "admin incident close", "incident.close",
	    json_pack("{s:s, s:s}", "id", id, "note", note), cli->json, print_closed);
}

static const struct kw_cmd incident_commands[] = {
	{ .name = "list", .fn = incident_list, .help = "the incidents the monitor opened",
	  .usage = "[--state open|closed] [--json]",
	  .options = "  --state S  only the open or only the closed ones\n"
	    "  --json     {\"incidents\": [{\"id\", \"opened\", \"type\", \"user\", "
	    "\"status\", \"actions\", ...}]}\n" },
	{ .name = "report", .fn = incident_report,
	  .help = "one incident, with the user's records an hour either side",
	  .usage = "[--id] ID [--json]",
	  .options = "  --id ID  the incident (INC-000001); the word --id may be left out\n"
	    "  --json   {\"incident\": {...}, \"timeline\": [records]}\n" },
	{ .name = "close", .fn = incident_close, .help = "close an incident, with a note",
	  .usage = "[--id] ID --note TEXT [--json]",
	  .options = "  --id ID      the incident (INC-000001); the word --id may be left out\n"
	    "  --note TEXT  why it is closed (kept with it, and recorded)\n"
	    "  --json       the closed incident\n" },
};

int
kw_cmd_admin_incident(struct kw_cli *cli, int argc, char **argv)
{
	return kw_cli_run_group(cli, incident_commands, KW_ELEMENTSOF(incident_commands), argc,
	    argv);
}
