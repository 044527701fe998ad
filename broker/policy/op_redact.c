/*
 * op_redact.c - "policy.detector" and "policy.redact": the broker's part in
 * keeping secrets and personal data out of what an agent's model reads.
 *
 * Where the redaction runs: in the hook process (keywarden hook claude),
 * not here.  A tool's output can be megabytes, a wire frame holds at most
 * KW_FRAME_MAX (64 KiB), and scanning megabytes would stall the event loop
 * every other caller waits on (nothing on the loop blocks).  So the broker
 * is the authority on the settings -- the configuration file is the
 * broker's, 0600, and the hook cannot read it -- and on the record:
 *
 *   policy.detector {} -> {"autoRedact": bool, "settings": {"security":
 *	{"filters": ..., "secrets": ...}}}: the detection settings in force,
 *	for the hook to compile the same engine (kw_detector_compile); keys
 *	the schema marks secret are left out.
 *   policy.redact {"event": "PostToolUse"|"UserPromptSubmit", "tool",
 *	"counts": {"rule-id": n, ...}, "decision": "redact"|"block",
 *	"agent_session"} -> {}: what the hook replaced or refused, recorded
 *	with counts per rule, never a value (the values never leave the hook).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "broker/policy/ops.h"
#include "client/keywarden.h"
#include "common/config.h"
#include "policy/detect/detect.h"

#define COUNTS_MAX	64	/* rules named in one record */
#define RULE_ID_MAX	64

static int
bad(struct kw_call *call, const char *what)
{
	snprintf(call->msg, sizeof(call->msg), "%s", what);
	return KW_ERR_BAD_REQUEST;
}

/* Set value (a new reference, taken) at dotted path in tree, making objects on the way. */
static int
tree_set(json_t *tree, const char *path, json_t *value)
{
	char part[128];
	const char *dot;
	json_t *next;

	while ((dot = strchr(path, '.'))) {
		if ((size_t)(dot - path) >= sizeof(part))
			goto fail;
		snprintf(part, sizeof(part), "%.*s", (int)(dot - path), path);
		if (!(next = json_object_get(tree, part))) {
			if (json_object_set_new(tree, part, next = json_object()) < 0)
				goto fail;
		} else if (!json_is_object(next)) {
			goto fail;
		}
		tree = next;
		path = dot + 1;
	}
	return json_object_set_new(tree, path, value) == 0 ? 0 : KW_ERR_NOMEM;
 fail:
	json_decref(value);
	return KW_ERR_NOMEM;
}

static bool
detection_key(const struct kw_config_key *k)
{
	static const char *const prefixes[] = { "security.filters.", "security.secrets." };

	for (size_t i = 0; i < KW_ELEMENTSOF(prefixes); i++)
		if (strncmp(k->path, prefixes[i], strlen(prefixes[i])) == 0)
			return !k->secret;
	return false;
}

int
kw_op_policy_detector(struct kw_call *call, json_t **ret_result)
{
	const struct kw_config_key *schema;
	json_t *settings = json_object(), *v;
	size_t n;
	int r = KW_ERR_NOMEM;

	schema = kw_config_schema(&n);
	for (size_t i = 0; settings && i < n; i++) {
		if (!detection_key(&schema[i]) || !(v = kw_config_get(call->svc->cfg, schema[i].path)))
			continue;
		if ((r = tree_set(settings, schema[i].path, json_deep_copy(v))) < 0)
			goto out;
	}
	if (settings && (*ret_result = json_pack("{s:b, s:O}", "autoRedact",
	    kw_config_bool(call->svc->cfg, "security.autoRedact"), "settings", settings)))
		r = 0;
 out:
	json_decref(settings);
	return r;
}

/* A rule id as the engine names rules: "anthropic-api-key", a filter's "credit_card". */
static bool
rule_id_ok(const char *id)
{
	size_t len = strlen(id);

	if (len == 0 || len > RULE_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)id[i]) && !strchr("-_.", id[i]))
			return false;
	return true;
}

static int
check_counts(struct kw_call *call, json_t *counts)
{
	const struct kw_detector *det = call->svc->detector;
	const char *rule;
	json_t *n;

	if (!json_is_object(counts) || json_object_size(counts) == 0 ||
	    json_object_size(counts) > COUNTS_MAX)
		return bad(call, "\"counts\" must be an object of 1 to 64 {\"rule-id\": count}");
	json_object_foreach(counts, rule, n) {
		/* The hook compiled the same settings as the broker's detector. */
		if (!rule_id_ok(rule) || (det && !kw_detector_has_rule(det, rule))) {
			snprintf(call->msg, sizeof(call->msg), "\"counts\": \"%.64s\" is not a rule "
			    "of the detection settings in force", rule_id_ok(rule) ? rule : "?");
			return KW_ERR_BAD_REQUEST;
		}
		if (!json_is_integer(n) || json_integer_value(n) < 1 ||
		    json_integer_value(n) > 1000000000)
			return bad(call, "\"counts\": each rule maps to a count from 1");
	}
	return 0;
}

int
kw_op_policy_redact(struct kw_call *call, json_t **ret_result)
{
	const char *event = kw_arg_str(call->args, "event"), *tool = kw_arg_str(call->args, "tool");
	const char *decision = kw_arg_str(call->args, "decision");
	const char *agent = kw_arg_str(call->args, "agent_session");
	json_t *counts = json_object_get(call->args, "counts");
	int r;

	if (!event || (strcmp(event, "PostToolUse") != 0 && strcmp(event, "UserPromptSubmit") != 0))
		return bad(call, "\"event\" must be PostToolUse or UserPromptSubmit");
	if (strcmp(event, "PostToolUse") == 0 && (!tool || !tool[0] || strlen(tool) > 128))
		return bad(call, "\"tool\" must name the tool (1 to 128 characters)");
	if (!decision || (strcmp(decision, "redact") != 0 && strcmp(decision, "block") != 0))
		return bad(call, "\"decision\" must be redact or block");
	if ((r = check_counts(call, counts)) < 0)
		return r;
	json_object_set_new(call->meta, "event", json_string(event));
	if (tool && strcmp(event, "PostToolUse") == 0)
		json_object_set_new(call->meta, "tool", json_string(tool));
	json_object_set_new(call->meta, "decision", json_string(decision));
	json_object_set(call->meta, "counts", counts);
	if (agent && strlen(agent) <= 128)
		json_object_set_new(call->meta, "agent_session", json_string(agent));
	snprintf(call->res_buf, sizeof(call->res_buf), "%s/%.64s",
	    strcmp(event, "PostToolUse") == 0 ? "tool" : "prompt",
	    strcmp(event, "PostToolUse") == 0 ? tool : "user");
	call->resource = call->res_buf;
	return (*ret_result = json_object()) ? 0 : KW_ERR_NOMEM;
}
