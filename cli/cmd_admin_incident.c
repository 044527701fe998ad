/*
 * cmd_admin_incident.c - keywarden admin incident list|report
 *
 * Incidents are opened by the broker's monitor (an alert that locked an
 * account, ended its sessions, mailed someone); these commands only read them.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/table.h"

/* --id ID or a lone ID, when id is not NULL; 0 or the exit status (said why). */
static int
parse(struct kw_cli *cli, int argc, char **argv, const char **id)
{
	static const struct option opts[] = {
		{ "id", required_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'i' || !id)
			return kw_cli_bad_option(cli, argc, argv, id ? opts : NULL);
		*id = optarg;
	}
	if (id && !*id && argc - optind == 1)
		*id = argv[optind++];
	if (id && !*id)
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
	int ex;

	if ((ex = parse(cli, argc, argv, NULL)) != 0)
		return ex;
	return kw_cli_call_print(cli, "admin incident list", "incident.list", json_object(),
	    cli->json, print_incidents);
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
	int ex;

	if ((ex = parse(cli, argc, argv, &id)) != 0)
		return ex;
	return kw_cli_call_print(cli, "admin incident report", "incident.report",
	    json_pack("{s:s}", "id", id), cli->json, print_report);
}

static const struct kw_cmd incident_commands[] = {
	{ .name = "list", .fn = incident_list, .help = "the incidents the monitor opened",
	  .usage = "[--json]",
	  .options = "  --json  {\"incidents\": [{\"id\", \"opened\", \"type\", \"user\", "
	    "\"status\", \"actions\", ...}]}\n" },
	{ .name = "report", .fn = incident_report,
	  .help = "one incident, with the user's records an hour either side",
	  .usage = "[--id] ID [--json]",
	  .options = "  --id ID  the incident (INC-000001); the word --id may be left out\n"
	    "  --json   {\"incident\": {...}, \"timeline\": [records]}\n" },
};

int
kw_cmd_admin_incident(struct kw_cli *cli, int argc, char **argv)
{
	return kw_cli_run_group(cli, incident_commands, KW_ELEMENTSOF(incident_commands), argc,
	    argv);
}
