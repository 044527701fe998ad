/*
 * op_sandbox.c - "sandbox.begin" and "sandbox.report": the administrator's
 * policy for `keywarden run`, and the record of each run.
 *
 * The kernel sandbox (sandbox/) is applied by the CLI, in the user's own
 * process, so what it applies must come from here: the configuration the
 * broker holds (re-read on SIGHUP: svc->cfg is the one in force) and the
 * home the broker's password database gives the caller, never a file the
 * confined user could edit.  The caller's roles must grant
 * execute:command/ARGV0 for both requests, as for an agent's Bash call.
 *
 * begin answers {"policy": {...}} (kw_sandbox_policy_from_json reads it);
 * an allowed begin is an ordinary request (the report records the run), a
 * refusal is recorded as command_execute, deny.  report records the run as
 * command_execute: allow when the child was started under the plan, deny
 * when the CLI refused for a shortfall of the machine.  The command line is
 * masked (kw_policy_mask) and the environment is never sent.
 */
#include <stdio.h>
#include <string.h>

#include "broker/policy/ops.h"
#include "client/keywarden.h"
#include "policy/policy.h"

#define DETAIL_MAX	1024	/* the command line kept in the record */
#define NAME_MAX_LEN	255	/* argv0, a profile file's name */
#define MISSING_MAX	32	/* shortfalls kept in the record */

static int
bad(struct kw_call *call, const char *what)
{
	snprintf(call->msg, sizeof(call->msg), "%s", what);
	return KW_ERR_BAD_REQUEST;
}

/* A short printable name: no '/', no control characters. */
static bool
name_ok(const char *s, bool slash_ok)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > NAME_MAX_LEN)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || (*s == '/' && !slash_ok))
			return false;
	return true;
}

/* "default", "claude" or "file:NAME" (the user's tightening profile, by name). */
static bool
profile_ok(const char *p)
{
	if (!p)
		return false;
	if (strcmp(p, "default") == 0 || strcmp(p, "claude") == 0)
		return true;
	return strncmp(p, "file:", 5) == 0 && name_ok(p + 5, false);
}

/*
 * The arguments both requests share, checked, and what the record says of
 * them: the tool, the masked command line, the profile.
 */
static int
common_args(struct kw_call *call, const char **ret_argv0, const char **ret_profile)
{
	const char *argv0 = kw_arg_str(call->args, "argv0");
	const char *command = kw_arg_str(call->args, "command");
	const char *profile = kw_arg_str(call->args, "profile");
	char buf[DETAIL_MAX + 1];

	if (!name_ok(argv0, false))
		return bad(call, "\"argv0\" must be the command's name (1 to 255 characters, no '/')");
	if (!command)
		return bad(call, "\"command\" must be the command line");
	if (!profile_ok(profile))
		return bad(call, "\"profile\" must be \"default\", \"claude\" or \"file:NAME\"");
	snprintf(buf, sizeof(buf), "%s", command);
	kw_policy_mask(buf);
	json_object_set_new(call->meta, "tool", json_string("keywarden run"));
	json_object_set_new(call->meta, "command", json_string(buf));
	json_object_set_new(call->meta, "profile", json_string(profile));
	*ret_argv0 = argv0;
	*ret_profile = profile;
	return 0;
}

/* The roles' part: execute:command/ARGV0, as the hook asks for a Bash call. */
static int
authorize(struct kw_call *call, const char *argv0)
{
	struct kw_need need = { .verb = "execute", .resource = call->res_buf };
	char why[256];
	size_t bad_i = 0;
	int r;

	snprintf(call->res_buf, sizeof(call->res_buf), "command/%s", argv0);
	call->resource = call->res_buf;
	if ((r = kw_call_authorize(call, &need, 1, &bad_i, why, sizeof(why))) < 0) {
		snprintf(call->msg, sizeof(call->msg), "execute %.96s: %.120s", call->res_buf, why);
		json_object_set_new(call->meta, "rule", json_string("rbac"));
		json_object_set_new(call->meta, "decision", json_string("deny"));
	}
	return r;
}

/* A list setting with "~" and "~/..." made the caller's home. */
static json_t *
expanded(const struct kw_call *call, const char *key, const char *home)
{
	json_t *list = kw_config_get(call->svc->cfg, key), *out = json_array(), *v;
	char path[8192];
	size_t i;

	if (!out)
		return NULL;
	json_array_foreach(list, i, v) {
		const char *s = json_string_value(v);
		if (!s)
			continue;
		if (strcmp(s, "~") == 0 || strncmp(s, "~/", 2) == 0)
			snprintf(path, sizeof(path), "%s%s", home, s + 1);
		else
			snprintf(path, sizeof(path), "%s", s);
		if (json_array_append_new(out, json_string(path)) < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

/* A list setting as it is (names, globs). */
static json_t *
copied(const struct kw_call *call, const char *key)
{
	return json_deep_copy(kw_config_get(call->svc->cfg, key));
}

/* The members kw_sandbox_policy_from_json reads, from the configuration in force. */
static json_t *
policy_json(const struct kw_call *call, const char *home, const char *profile)
{
	const struct kw_config *cfg = call->svc->cfg;

	return json_pack("{s:b, s:b, s:b, s:b, s:o?, s:o?, s:o?, s:b, s:o?, s:o?, s:o?, s:s, s:s}",
	    "enabled", kw_config_bool(cfg, "security.sandbox.enabled"),
	    "allowNetwork", kw_config_bool(cfg, "security.sandbox.allowNetwork") &&
		kw_config_bool(cfg, "security.network.allowOutbound"),
	    "allowExec", kw_config_bool(cfg, "security.sandbox.allowExec"),
	    "readOnly", kw_config_bool(cfg, "security.readOnly"),
	    "allowedPaths", expanded(call, "security.allowedPaths", home),
	    "deniedPaths", expanded(call, "security.deniedPaths", home),
	    "excludePatterns", copied(call, "security.excludePatterns"),
	    "whitelistMode", kw_config_bool(cfg, "security.execution.whitelistMode"),
	    "whitelist", copied(call, "security.execution.whitelist"),
	    "allowedHosts", copied(call, "security.network.allowedHosts"),
	    "allowedDomains", copied(call, "security.network.allowedDomains"),
	    "home", home,
	    "profile", profile);
}

int
kw_op_sandbox_begin(struct kw_call *call, json_t **ret_result)
{
	const char *cwd = kw_arg_str(call->args, "cwd"), *argv0, *profile;
	json_t *policy;
	char home[4096];
	int r;

	if ((r = common_args(call, &argv0, &profile)) < 0)
		return r;
	if (!cwd || cwd[0] != '/' || strlen(cwd) >= 4096)
		return bad(call, "\"cwd\" must be an absolute path");
	/* A refusal is a command that did not run: filed as the run would be. */
	call->action = "command_execute";
	json_object_set_new(call->meta, "cwd", json_string(cwd));
	if ((r = authorize(call, argv0)) < 0)
		return r;
	if (kw_policy_home_of(call->caller->uid, home, sizeof(home)) < 0) {
		snprintf(call->msg, sizeof(call->msg), "uid %u has no home directory in the "
		    "password database: ~ in the policy cannot be expanded",
		    (unsigned)call->caller->uid);
		json_object_set_new(call->meta, "decision", json_string("deny"));
		return KW_ERR_DENIED;
	}
	/* Allowed: an ordinary request under its own name; sandbox.report records the run. */
	call->action = NULL;
	if (!(policy = policy_json(call, home, profile)))
		return KW_ERR_NOMEM;
	return (*ret_result = json_pack("{s:o}", "policy", policy)) ? 0 : KW_ERR_NOMEM;
}

/* The shortfalls the CLI names: strings, at most MISSING_MAX, masked as text is. */
static int
note_missing(struct kw_call *call, json_t *missing)
{
	json_t *out, *v;
	char buf[512];
	size_t i;

	if (!missing)
		return 0;
	if (!json_is_array(missing) || json_array_size(missing) > MISSING_MAX)
		return bad(call, "\"missing\" must be a list of at most 32 strings");
	if (!(out = json_array()))
		return KW_ERR_NOMEM;
	json_array_foreach(missing, i, v) {
		if (!json_is_string(v)) {
			json_decref(out);
			return bad(call, "\"missing\" must be a list of strings");
		}
		snprintf(buf, sizeof(buf), "%s", json_string_value(v));
		kw_policy_mask(buf);
		json_array_append_new(out, json_string(buf));
	}
	json_object_set_new(call->meta, "missing", out);
	return 0;
}

int
kw_op_sandbox_report(struct kw_call *call, json_t **ret_result)
{
	const char *level = kw_arg_str(call->args, "level");
	const char *result = kw_arg_str(call->args, "result");
	const char *reason = kw_arg_str(call->args, "reason"), *argv0, *profile;
	bool started;
	char buf[256];
	int r;

	if ((r = common_args(call, &argv0, &profile)) < 0)
		return r;
	if (!level || strlen(level) > 200)
		return bad(call, "\"level\" must be the level applied (at most 200 characters)");
	if (!result || (strcmp(result, "started") != 0 && strcmp(result, "refused") != 0))
		return bad(call, "\"result\" must be \"started\" or \"refused\"");
	started = strcmp(result, "started") == 0;
	if (!started && !reason)
		return bad(call, "\"reason\" must say why the run was refused");
	call->action = "command_execute";
	if ((r = note_missing(call, json_object_get(call->args, "missing"))) < 0 ||
	    (r = authorize(call, argv0)) < 0)
		return r;
	json_object_set_new(call->meta, "level", json_string(level));
	json_object_set_new(call->meta, "result", json_string(result));
	json_object_set_new(call->meta, "decision", json_string(started ? "allow" : "deny"));
	if (!started) {
		snprintf(buf, sizeof(buf), "%s", reason);
		kw_policy_mask(buf);
		json_object_set_new(call->meta, "reason", json_string(buf));
	}
	return (*ret_result = json_object()) ? 0 : KW_ERR_NOMEM;
}
