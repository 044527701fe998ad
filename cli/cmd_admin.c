/*
 * cmd_admin.c - keywarden admin GROUP ...: the administration commands.
 * The broker decides who may use them (uid 0, or a role granting admin).
 */
#include "cli/cli.h"

static const struct kw_cmd admin_commands[] = {
	{ "user", kw_cmd_admin_user,
	    "user add|list|show|del|totp-reset|lock|unlock|export|erase ...   keywarden users" },
	{ "role", kw_cmd_admin_role, "role list|show|create|delete|grant|revoke ...   roles and grants" },
	{ "session", kw_cmd_admin_session, "session list|revoke ...   login sessions" },
	{ "audit", kw_cmd_admin_audit, "audit query|export|verify|prune|pubkey|keygen ...   the audit trail" },
	{ "incident", kw_cmd_admin_incident, "incident list|report ...   security incidents" },
};

int
kw_cmd_admin(struct kw_cli *cli, int argc, char **argv)
{
	return kw_cli_run_group(cli, "admin", admin_commands, KW_ELEMENTSOF(admin_commands),
	    argc, argv);
}
