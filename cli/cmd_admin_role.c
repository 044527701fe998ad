/*
 * cmd_admin_role.c - keywarden admin role list|show|create|delete|grant|revoke
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/table.h"

struct role_opts {
	bool force;		/* --force, when allowed */
	bool force_ok;
	json_t *permissions;	/* --permission values, when wanted */
};

/* Options o allows, then the positional arguments names lists; 0 or the exit status. */
static int
parse(struct kw_cli *cli, int argc, char **argv, struct role_opts *o, const char *names)
{
	static const struct option opts[] = {
		{ "permission", required_argument, NULL, 'p' },
		{ "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	int c, i = -1;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, &i)) != -1) {
		if (c == '?')
			return kw_cli_bad_option(cli, argc, argv, opts);
		if (c == 'f' && o->force_ok)
			o->force = true;
		else if (c == 'p' && o->permissions)
			json_array_append_new(o->permissions, json_string(optarg));
		else
			return kw_cli_usage(cli, "unknown option '--%s'", opts[i].name);
	}
	return kw_cli_args(cli, argc, argv, optind, names);
}

static void
print_role(json_t *r)
{
	char *perms = kw_cli_join(json_object_get(r, "permissions"));
	char *users = kw_cli_join(json_object_get(r, "users"));

	printf("role         %s\n", kw_cli_safe(json_string_value(json_object_get(r, "role"))));
	printf("source       %s\n", kw_cli_safe(json_string_value(json_object_get(r, "source"))));
	printf("permissions  %s\n", kw_cli_safe(perms ? perms : "?"));
	printf("users        %s\n", kw_cli_safe(users ? users : "?"));
	free(perms);
	free(users);
}

static void
print_role_table(json_t *res)
{
	json_t *roles = json_object_get(res, "roles"), *r;
	size_t i, n = json_array_size(roles);
	const char **cells = calloc(n * 4 + 1, sizeof(*cells));
	char **perms = calloc(n + 1, sizeof(*perms));
	char (*counts)[16] = calloc(n + 1, sizeof(*counts));

	if (cells && perms && counts) {
		json_array_foreach(roles, i, r) {
			snprintf(counts[i], sizeof(counts[i]), "%zu",
			    json_array_size(json_object_get(r, "users")));
			perms[i] = kw_cli_join(json_object_get(r, "permissions"));
			cells[i * 4] = json_string_value(json_object_get(r, "role"));
			cells[i * 4 + 1] = json_string_value(json_object_get(r, "source"));
			cells[i * 4 + 2] = counts[i];
			cells[i * 4 + 3] = perms[i];
		}
		kw_table_print(stdout, 4,
		    (const char *const[]){ "ROLE", "SOURCE", "USERS", "PERMISSIONS" }, cells, n);
	}
	json_array_foreach(json_object_get(res, "orphaned"), i, r) {
		char *users = kw_cli_join(json_object_get(r, "users"));
		printf("%sgrants of role %s, which no longer exists, held by %s: they grant "
		    "nothing; remove them with keywarden admin role delete %s --force\n",
		    i == 0 ? "\n" : "", json_string_value(json_object_get(r, "role")),
		    users ? users : "?", json_string_value(json_object_get(r, "role")));
		free(users);
	}
	for (i = 0; perms && i < n; i++)
		free(perms[i]);
	free(perms);
	free(counts);
	free(cells);
}

static int
role_list(struct kw_cli *cli, int argc, char **argv)
{
	struct role_opts o = { 0 };
	int ex;

	if ((ex = parse(cli, argc, argv, &o, "")) != 0)
		return ex;
	return kw_cli_call_print(cli, "admin role list", "role.list", json_object(), cli->json,
	    print_role_table);
}

static int
role_show(struct kw_cli *cli, int argc, char **argv)
{
	struct role_opts o = { 0 };
	int ex;

	if ((ex = parse(cli, argc, argv, &o, "NAME")) != 0)
		return ex;
	return kw_cli_call_print(cli, "admin role show", "role.show",
	    json_pack("{s:s}", "role", argv[optind]), cli->json, print_role);
}

static int
role_create(struct kw_cli *cli, int argc, char **argv)
{
	struct role_opts o = { .permissions = json_array() };
	int ex = KW_EXIT_DENIED;

	if (!o.permissions || (ex = parse(cli, argc, argv, &o, "NAME")) != 0 ||
	    (json_array_size(o.permissions) == 0 &&
	    (ex = kw_cli_usage(cli, "missing --permission PERMISSION")) != 0)) {
		json_decref(o.permissions);
		return ex;
	}
	return kw_cli_call_print(cli, "admin role create", "role.create",
	    json_pack("{s:s, s:o}", "role", argv[optind], "permissions", o.permissions), cli->json,
	    print_role);
}

static void
print_deleted(json_t *res)
{
	if (json_is_true(json_object_get(res, "orphaned"))) {
		printf("removed %lld grant(s) of role %s, which no longer exists\n",
		    (long long)json_integer_value(json_object_get(res, "grants_removed")),
		    json_string_value(json_object_get(res, "role")));
		return;
	}
	printf("deleted role %s (%lld grant(s) removed)\n",
	    kw_cli_safe(json_string_value(json_object_get(res, "role"))),
	    (long long)json_integer_value(json_object_get(res, "grants_removed")));
}

static int
role_delete(struct kw_cli *cli, int argc, char **argv)
{
	struct role_opts o = { .force_ok = true };
	int ex;

	if ((ex = parse(cli, argc, argv, &o, "NAME")) != 0)
		return ex;
	return kw_cli_call_print(cli, "admin role delete", "role.delete",
	    json_pack("{s:s, s:b}", "role", argv[optind], "force", o.force), cli->json,
	    print_deleted);
}

static void
print_user_roles(json_t *u)
{
	char *roles = kw_cli_join(json_object_get(u, "roles"));

	printf("%s now has roles: %s\n", kw_cli_safe(json_string_value(json_object_get(u, "user"))),
	    kw_cli_safe(roles ? roles : "?"));
	free(roles);
}

static int
grant_or_revoke(struct kw_cli *cli, int argc, char **argv, const char *verb, const char *op)
{
	struct role_opts o = { 0 };
	char what[32];
	int ex;

	snprintf(what, sizeof(what), "admin role %s", verb);
	if ((ex = parse(cli, argc, argv, &o, "USER ROLE")) != 0)
		return ex;
	return kw_cli_call_print(cli, what, op,
	    json_pack("{s:s, s:s}", "user", argv[optind], "role", argv[optind + 1]), cli->json,
	    print_user_roles);
}

static int
role_grant(struct kw_cli *cli, int argc, char **argv)
{
	return grant_or_revoke(cli, argc, argv, "grant", "role.grant");
}

static int
role_revoke(struct kw_cli *cli, int argc, char **argv)
{
	return grant_or_revoke(cli, argc, argv, "revoke", "role.revoke");
}

static const struct kw_cmd role_commands[] = {
	{ .name = "list", .fn = role_list, .help = "every role: where it comes from, users, permissions",
	  .usage = "[--json]",
	  .options = "  --json  {\"roles\": [{\"role\", \"source\", \"permissions\", \"users\"}], "
	    "\"orphaned\": [...]}\n" },
	{ .name = "show", .fn = role_show, .help = "one role", .usage = "NAME [--json]" },
	{ .name = "create", .fn = role_create, .help = "a new role with its permissions",
	  .usage = "NAME --permission PERMISSION... [--json]",
	  .options = "  --permission P  VERB[:PATTERN], VERB read, write, execute, admin or *\n"
	    "                  (again for more; keywarden.conf(5) has the grammar)\n" },
	{ .name = "delete", .fn = role_delete, .help = "delete a role created here, and its grants",
	  .usage = "NAME [--force] [--json]",
	  .options = "  --force  also when users hold it; removes grants of a role that no longer "
	    "exists\n" },
	{ .name = "grant", .fn = role_grant, .help = "give USER the role ROLE",
	  .usage = "USER ROLE [--json]" },
	{ .name = "revoke", .fn = role_revoke, .help = "take the role ROLE from USER",
	  .usage = "USER ROLE [--json]" },
};

int
kw_cmd_admin_role(struct kw_cli *cli, int argc, char **argv)
{
	return kw_cli_run_group(cli, role_commands, KW_ELEMENTSOF(role_commands), argc, argv);
}
