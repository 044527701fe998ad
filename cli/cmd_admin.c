/*
 * cmd_admin.c - keywarden admin GROUP ...: the administration commands
 * (admin usage is one command, not a group).
 * The broker decides who may use them (uid 0, or a role granting admin).
 */
#include "cli/cli.h"

static const struct kw_cmd admin_commands[] = {
	{ .name = "user", .fn = kw_cmd_admin_user, .flags = KW_CMD_GROUP,
	  .help = "keywarden users: add, list, show, del, totp-reset, lock, unlock, export, erase" },
	{ .name = "role", .fn = kw_cmd_admin_role, .flags = KW_CMD_GROUP,
	  .help = "roles and grants: list, show, create, delete, grant, revoke" },
	{ .name = "session", .fn = kw_cmd_admin_session, .flags = KW_CMD_GROUP,
	  .help = "login sessions: list, revoke" },
	{ .name = "audit", .fn = kw_cmd_admin_audit, .flags = KW_CMD_GROUP,
	  .help = "the audit trail: query, export, verify, prune, pubkey, keygen" },
	{ .name = "incident", .fn = kw_cmd_admin_incident, .flags = KW_CMD_GROUP,
	  .help = "security incidents: list, report" },
	{ .name = "usage", .fn = kw_cmd_admin_usage,
	  .help = "API calls through the proxy per user and model: calls, tokens, errors",
	  .usage = "[--since WHEN] [--json]",
	  .options = "  --since WHEN  from WHEN: 2026-11-25T01:02:03Z, 2026-11-25, or an age\n"
	    "                (30m, 12h, 7d); default: the broker's (all recorded calls)\n"
	    "  --json        {\"rows\": [{\"user\", \"model\", \"calls\", \"input_tokens\",\n"
	    "                \"output_tokens\", \"errors\"}]}\n" },
};

int
kw_cmd_admin(struct kw_cli *cli, int argc, char **argv)
{
	return kw_cli_run_group(cli, admin_commands, KW_ELEMENTSOF(admin_commands), argc, argv);
}
