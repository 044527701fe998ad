/*
 * cmd_admin_user.c - keywarden admin user add|list|show|del
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "table.h"

static const struct option user_opts[] = {
	{ "role", required_argument, NULL, 'r' },
	{ "json", no_argument, NULL, 'j' },
	{ NULL, 0, NULL, 0 },
};

/*
 * Parse --json (and --role R, collected into roles when not NULL); leaves
 * the positional arguments in argv[optind..].  Returns -1 on a usage error.
 */
static int
parse(struct kw_cli *cli, int argc, char **argv, json_t *roles, bool *json)
{
	int c;

	*json = cli->json;
	optind = 0;
	while ((c = getopt_long(argc, argv, "", user_opts, NULL)) != -1) {
		if (c == 'j')
			*json = true;
		else if (c == 'r' && roles)
			json_array_append_new(roles, json_string(optarg));
		else
			return -1;
	}
	return 0;
}

static int
usage(const char *text)
{
	fprintf(stderr, "usage: keywarden admin user %s\n", text);
	return KW_EXIT_USAGE;
}

static void
print_user(json_t *u)
{
	char *roles = kw_cli_join(json_object_get(u, "roles"));

	printf("user        %s\n", json_string_value(json_object_get(u, "user")));
	printf("uid         %lld\n", (long long)json_integer_value(json_object_get(u, "uid")));
	printf("roles       %s\n", roles ? roles : "?");
	printf("created     %s by %s\n", json_string_value(json_object_get(u, "created")),
	    json_string_value(json_object_get(u, "created_by")));
	free(roles);
}

/* Print a user object as JSON or as lines; consumes res. */
static int
show(json_t *res, bool json)
{
	if (json)
		kw_cli_print_json(res);
	else
		print_user(res);
	json_decref(res);
	return KW_EXIT_OK;
}

static int
user_add(struct kw_cli *cli, int argc, char **argv)
{
	json_t *roles = json_array(), *args, *res = NULL;
	bool json;
	int ex;

	if (!roles || parse(cli, argc, argv, roles, &json) < 0 || argc - optind != 1) {
		json_decref(roles);
		return usage("add USER [--role ROLE]... [--json]");
	}
	args = json_pack("{s:s, s:o}", "user", argv[optind], "roles", roles);
	ex = args ? kw_cli_call(cli, "admin user add", "user.add", args, &res) : KW_EXIT_DENIED;
	json_decref(args);
	return ex ? ex : show(res, json);
}

static int
user_list(struct kw_cli *cli, int argc, char **argv)
{
	json_t *res = NULL, *users, *u;
	const char **cells;
	char **roles;
	bool json;
	size_t i, n;
	int ex;

	if (parse(cli, argc, argv, NULL, &json) < 0 || argc != optind)
		return usage("list [--json]");
	if ((ex = kw_cli_call(cli, "admin user list", "user.list", NULL, &res)) != 0)
		return ex;
	users = json_object_get(res, "users");
	if (json) {
		kw_cli_print_json(res);
		json_decref(res);
		return KW_EXIT_OK;
	}
	n = json_array_size(users);
	cells = calloc(n * 4 + 1, sizeof(*cells));
	roles = calloc(n + 1, sizeof(*roles));
	char (*uids)[24] = calloc(n + 1, sizeof(*uids));
	if (cells && roles && uids) {
		json_array_foreach(users, i, u) {
			snprintf(uids[i], sizeof(uids[i]), "%lld",
			    (long long)json_integer_value(json_object_get(u, "uid")));
			roles[i] = kw_cli_join(json_object_get(u, "roles"));
			cells[i * 4] = json_string_value(json_object_get(u, "user"));
			cells[i * 4 + 1] = uids[i];
			cells[i * 4 + 2] = roles[i];
			cells[i * 4 + 3] = json_string_value(json_object_get(u, "created"));
		}
		kw_table_print(stdout, 4, (const char *const[]){ "USER", "UID", "ROLES", "CREATED" },
		    cells, n);
	}
	for (i = 0; roles && i < n; i++)
		free(roles[i]);
	free(roles);
	free(uids);
	free(cells);
	json_decref(res);
	return KW_EXIT_OK;
}

static int
user_show(struct kw_cli *cli, int argc, char **argv)
{
	json_t *args, *res = NULL;
	bool json;
	int ex;

	if (parse(cli, argc, argv, NULL, &json) < 0 || argc - optind != 1)
		return usage("show USER [--json]");
	args = json_pack("{s:s}", "user", argv[optind]);
	ex = args ? kw_cli_call(cli, "admin user show", "user.show", args, &res) : KW_EXIT_DENIED;
	json_decref(args);
	return ex ? ex : show(res, json);
}

static int
user_del(struct kw_cli *cli, int argc, char **argv)
{
	json_t *args, *res = NULL;
	bool json;
	int ex;

	if (parse(cli, argc, argv, NULL, &json) < 0 || argc - optind != 1)
		return usage("del USER [--json]");
	args = json_pack("{s:s}", "user", argv[optind]);
	ex = args ? kw_cli_call(cli, "admin user del", "user.del", args, &res) : KW_EXIT_DENIED;
	json_decref(args);
	if (ex)
		return ex;
	if (json)
		kw_cli_print_json(res);
	else
		printf("deleted user %s (%lld grant(s) removed)\n",
		    json_string_value(json_object_get(res, "user")),
		    (long long)json_integer_value(json_object_get(res, "grants_removed")));
	json_decref(res);
	return KW_EXIT_OK;
}

static const struct kw_cmd user_commands[] = {
	{ "add", user_add, "add USER [--role ROLE]... [--json]" },
	{ "list", user_list, "list [--json]" },
	{ "show", user_show, "show USER [--json]" },
	{ "del", user_del, "del USER [--json]" },
};

int
kw_cmd_admin_user(struct kw_cli *cli, int argc, char **argv)
{
	return kw_cli_run_group(cli, "admin user", user_commands, KW_ELEMENTSOF(user_commands),
	    argc, argv);
}
