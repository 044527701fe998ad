/*
 * op_check.c - "policy.check": may the caller's agent make this tool call?
 *
 * Arguments: {"tool": "Bash", "input": {...tool_input...}, "cwd": "/abs",
 * "agent_session": "..." (Claude Code's session id, recorded), "sandboxed":
 * LEVEL (the hook runs inside `keywarden run`: see sandbox_required)}.  The policy
 * decides each effect of the call; the caller's roles must grant what each
 * effect needs.  A "deny" is a refusal (KW_ERR_DENIED, the reason as its
 * message, always recorded); "ask" and "allow" are answers:
 * {"decision", "rule", "reason", "action", "effects", "leaves"}.  An "ask" is always
 * recorded, an "allow" when logActions lists its action.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/policy/ops.h"
#include "client/keywarden.h"
#include "policy/policy.h"

#define DETAIL_MAX	1024	/* the command line or path kept in the record */
#define NEEDS_MAX	64	/* permissions decided per call (more: refused) */

static int
bad(struct kw_call *call, const char *what)
{
	snprintf(call->msg, sizeof(call->msg), "%s", what);
	return KW_ERR_BAD_REQUEST;
}

int
kw_policy_home_of(uid_t uid, char *home, size_t len)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || !res || !pw.pw_dir ||
	    pw.pw_dir[0] != '/')
		return KW_ERR_NOT_FOUND;
	snprintf(home, len, "%s", pw.pw_dir);
	return 0;
}

/* What the record keeps of the call: the command, path or URL, secrets masked. */
static void
note_detail(json_t *meta, const char *tool, json_t *input)
{
	static const char *const keys[] = { "command", "file_path", "notebook_path", "url",
		"path", "pattern", "query" };
	char buf[DETAIL_MAX + 1];
	const char *v;

	json_object_set_new(meta, "tool", json_string(tool));
	for (size_t i = 0; i < KW_ELEMENTSOF(keys); i++) {
		if (!(v = json_string_value(json_object_get(input, keys[i]))))
			continue;
		snprintf(buf, sizeof(buf), "%s", v);
		kw_policy_mask(buf);
		json_object_set_new(meta, keys[i], json_string(buf));
	}
}

/* The roles' part: each effect's permission.  A refusal turns the decision to deny. */
static int
authorize(struct kw_call *call, struct kw_decision *d)
{
	struct kw_need needs[NEEDS_MAX];
	char (*res)[300] = calloc(NEEDS_MAX, sizeof(*res)), why[256];
	size_t n = 0, bad_i = 0;
	int r = 0;

	if (!res)
		return KW_ERR_NOMEM;
	for (size_t i = 0; i < d->n_effects && n < NEEDS_MAX; i++)
		if (kw_effect_permission(&d->effects[i], &needs[n].verb, res[n], sizeof(res[n]))) {
			needs[n].resource = res[n][0] ? res[n] : NULL;
			n++;
		}
	if (n == NEEDS_MAX) {
		snprintf(call->msg, sizeof(call->msg), "the tool call touches too much to decide "
		    "(more than %d things)", NEEDS_MAX);
		r = KW_ERR_DENIED;
	} else if ((r = kw_call_authorize(call, needs, n, &bad_i, why, sizeof(why))) < 0) {
		snprintf(call->msg, sizeof(call->msg), "%s %.96s: %.120s", needs[bad_i].verb,
		    needs[bad_i].resource ? needs[bad_i].resource : "(unnamed)", why);
		json_object_set_new(call->meta, "rule", json_string("rbac"));
	}
	free(res);
	return r;
}

/* The resource the record is filed under: the first effect's, "tool/NAME" for none. */
static void
name_resource(struct kw_call *call, const char *tool, const struct kw_decision *d)
{
	const char *verb;
	char res[300];

	if (d->n_effects == 0 || !kw_effect_permission(&d->effects[0], &verb, res, sizeof(res)) ||
	    !res[0])
		snprintf(res, sizeof(res), "tool/%.64s", tool);
	json_object_set_new(call->meta, "resource", json_string(res));
	call->resource = json_string_value(json_object_get(call->meta, "resource"));
}

/*
 * security.sandbox.enabled: a call that runs a program is refused unless
 * the hook says it runs inside `keywarden run` ("sandboxed": the level).
 * The hook sends that only when the kernel's marks are there (a seccomp
 * filter and no_new_privs, which a process cannot drop), and checks them
 * again itself; deciding here puts the refusal in the trail.
 */
static bool
sandbox_required(struct kw_call *call, const char *tool, const struct kw_decision *d)
{
	const char *level = kw_arg_str(call->args, "sandboxed");
	bool runs = strcmp(tool, "Bash") == 0;

	if (!kw_config_bool(call->svc->cfg, "security.sandbox.enabled"))
		return false;
	for (size_t i = 0; i < d->n_effects && !runs; i++)
		runs = d->effects[i].kind == KW_EFFECT_EXEC;
	if (!runs)
		return false;
	if (level && level[0] && strlen(level) <= 128) {
		json_object_set_new(call->meta, "sandbox", json_string(level));
		return false;
	}
	return true;
}

int
kw_op_policy_check(struct kw_call *call, json_t **ret_result)
{
	const char *tool = kw_arg_str(call->args, "tool"), *cwd = kw_arg_str(call->args, "cwd");
	const char *agent = kw_arg_str(call->args, "agent_session");
	json_t *input = json_object_get(call->args, "input");
	struct kw_decision *d = NULL;
	char home[4096];
	int r;

	if (!tool || !tool[0] || strlen(tool) > 128)
		return bad(call, "\"tool\" must name the tool (1 to 128 characters)");
	if (!cwd || cwd[0] != '/' || strlen(cwd) >= 4096)
		return bad(call, "\"cwd\" must be an absolute path");
	if (input && !json_is_object(input))
		return bad(call, "\"input\" must be an object");
	if (kw_policy_home_of(call->caller->uid, home, sizeof(home)) < 0) {
		snprintf(call->msg, sizeof(call->msg), "uid %u has no home directory in the "
		    "password database: ~ cannot be read", (unsigned)call->caller->uid);
		return KW_ERR_DENIED;
	}
	struct kw_policy_ctx ctx = { .cwd = cwd, .home = home, .fs = true,
	    .uid = call->caller->uid, .gid = call->caller->gid };
	json_t *empty = json_object();
	r = kw_policy_tool(call->svc->policy, &ctx, tool, input ? input : empty, &d);
	json_decref(empty);
	if (r < 0)
		return r;
	call->action = d->action;
	note_detail(call->meta, tool, input);
	if (agent && strlen(agent) <= 128)
		json_object_set_new(call->meta, "agent_session", json_string(agent));
	name_resource(call, tool, d);
	json_object_set_new(call->meta, "decision", json_string(kw_verdict_name(d->verdict)));
	json_object_set_new(call->meta, "rule", json_string(d->rule));
	if (d->verdict == KW_VERDICT_DENY) {
		snprintf(call->msg, sizeof(call->msg), "%s", d->reason);
		r = KW_ERR_DENIED;
		goto out;
	}
	if (sandbox_required(call, tool, d)) {
		snprintf(call->msg, sizeof(call->msg), "security.sandbox.enabled: start Claude Code "
		    "with `keywarden run -- claude` (this one runs outside keywarden's sandbox, so "
		    "the %.64s call is denied)", tool);
		json_object_set_new(call->meta, "decision", json_string("deny"));
		json_object_set_new(call->meta, "rule", json_string("security.sandbox.enabled"));
		r = KW_ERR_DENIED;
		goto out;
	}
	if ((r = authorize(call, d)) < 0) {
		json_object_set_new(call->meta, "decision", json_string("deny"));
		goto out;
	}
	call->always_record = d->verdict == KW_VERDICT_ASK;
	json_object_set_new(call->meta, "reason", json_string(d->reason));
	r = (*ret_result = kw_decision_json(d)) ? 0 : KW_ERR_NOMEM;
 out:
	kw_decision_free(d);
	return r;
}
