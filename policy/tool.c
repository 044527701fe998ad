/*
 * tool.c - Claude Code's tools as effects.
 *
 * Each tool Claude Code offers is one row: the audit action it is recorded
 * as and how its tool_input becomes effects (a command line, a file read or
 * written, a URL, a search root).  Claude Code's own bookkeeping tools
 * (TodoWrite, Task, ...) touch nothing outside the conversation and are
 * allowed; any other tool, MCP tools included, is decided by
 * security.hooks.unknownTools.
 */
#include <stdio.h>
#include <string.h>

#include "common/errors.h"
#include "policy/match.h"
#include "policy/policy_internal.h"

enum how {
	HOW_COMMAND,	/* input.command: a bash command line */
	HOW_READ,	/* input.file_path or notebook_path: a file read */
	HOW_WRITE,	/* the same, written */
	HOW_SEARCH,	/* input.path (default cwd): a tree searched */
	HOW_FETCH,	/* input.url: a URL fetched */
	HOW_SEARCH_WEB,	/* a web search: outbound, host unknown */
	HOW_NOTHING,	/* touches nothing outside the conversation */
};

static const struct {
	const char *tool;
	const char *action;
	enum how how;
} tools[] = {
	{ "Bash", "command_execute", HOW_COMMAND },
	{ "Read", "file_read", HOW_READ },
	{ "NotebookRead", "file_read", HOW_READ },
	{ "Write", "file_write", HOW_WRITE },
	{ "Edit", "file_write", HOW_WRITE },
	{ "MultiEdit", "file_write", HOW_WRITE },
	{ "NotebookEdit", "file_write", HOW_WRITE },
	{ "Glob", "file_read", HOW_SEARCH },
	{ "Grep", "file_read", HOW_SEARCH },
	{ "LS", "file_read", HOW_SEARCH },
	{ "WebFetch", "api_call", HOW_FETCH },
	{ "WebSearch", "api_call", HOW_SEARCH_WEB },
	{ "TodoWrite", "tool_use", HOW_NOTHING },
	{ "Task", "tool_use", HOW_NOTHING },
	{ "Agent", "tool_use", HOW_NOTHING },
	{ "ExitPlanMode", "tool_use", HOW_NOTHING },
	{ "BashOutput", "tool_use", HOW_NOTHING },
	{ "KillShell", "tool_use", HOW_NOTHING },
	{ "KillBash", "tool_use", HOW_NOTHING },
	{ "SlashCommand", "tool_use", HOW_NOTHING },
	{ "ListMcpResourcesTool", "tool_use", HOW_NOTHING },
};

static const char *
str_arg(json_t *input, const char *a, const char *b)
{
	const char *v = json_string_value(json_object_get(input, a));

	return v ? v : b ? json_string_value(json_object_get(input, b)) : NULL;
}

static int
wrong_shape(struct kw_decision *d, const char *tool, const char *what)
{
	return kw_decision_add(d, KW_EFFECT_OPAQUE, tool, KW_VERDICT_DENY, "hook",
	    "%s: tool_input has no %s", tool, what);
}

/* A search reads its root, and the tree under it. */
static int
search(const struct kw_policy *p, const struct kw_policy_ctx *ctx, struct kw_decision *d,
    json_t *input)
{
	const char *root = str_arg(input, "path", NULL);
	int r;

	if (!root || !*root)
		root = ctx->cwd;
	if ((r = kw_decide_path(p, ctx, d, root, KW_EFFECT_READ)) < 0)
		return r;
	return kw_decide_tree(p, ctx, d, root, KW_EFFECT_READ);
}

static int
by_how(const struct kw_policy *p, const struct kw_policy_ctx *ctx, struct kw_decision *d,
    const char *tool, enum how how, json_t *input)
{
	const char *v;

	switch (how) {
	case HOW_COMMAND:
		if (!(v = str_arg(input, "command", NULL)))
			return wrong_shape(d, tool, "\"command\" string");
		return kw_decide_line(p, ctx, d, v, 0);
	case HOW_READ:
	case HOW_WRITE:
		if (!(v = str_arg(input, "file_path", "notebook_path")) || !*v)
			return wrong_shape(d, tool, "\"file_path\" string");
		return kw_decide_path(p, ctx, d, v, how == HOW_READ ? KW_EFFECT_READ :
		    KW_EFFECT_WRITE);
	case HOW_SEARCH:
		return search(p, ctx, d, input);
	case HOW_FETCH:
		if (!(v = str_arg(input, "url", NULL)) || !*v)
			return wrong_shape(d, tool, "\"url\" string");
		return kw_decide_net(p, d, v, tool);
	case HOW_SEARCH_WEB:
		return kw_decide_net(p, d, NULL, tool);
	case HOW_NOTHING:
	default:
		return 0;
	}
}

int
kw_policy_tool(const struct kw_policy *p, const struct kw_policy_ctx *ctx, const char *tool,
    json_t *input, struct kw_decision **ret)
{
	struct kw_decision *d;
	int r;

	for (size_t i = 0; i < KW_ELEMENTSOF(tools); i++) {
		if (strcmp(tools[i].tool, tool) != 0)
			continue;
		if (!(d = kw_decision_new(tools[i].action)))
			return KW_ERR_NOMEM;
		r = json_is_object(input) ? by_how(p, ctx, d, tool, tools[i].how, input) :
		    wrong_shape(d, tool, "object");
		goto out;
	}
	if (!(d = kw_decision_new("tool_use")))
		return KW_ERR_NOMEM;
	r = kw_decision_add(d, KW_EFFECT_OPAQUE, tool, p->unknown_tools,
	    "security.hooks.unknownTools", "%.64s is a tool this policy does not know "
	    "(security.hooks.unknownTools is %s)", tool, kw_verdict_name(p->unknown_tools));
 out:
	if (r < 0) {
		kw_decision_free(d);
		return r;
	}
	*ret = d;
	return 0;
}

/* The single-question entry points: a decision of one kind. */
static int
single(const char *action, struct kw_decision **ret, struct kw_decision **ret_d)
{
	if (!(*ret_d = kw_decision_new(action)))
		return KW_ERR_NOMEM;
	*ret = NULL;
	return 0;
}

static int
finish(int r, struct kw_decision *d, struct kw_decision **ret)
{
	if (r < 0) {
		kw_decision_free(d);
		return r;
	}
	*ret = d;
	return 0;
}

int
kw_policy_command(const struct kw_policy *p, const struct kw_policy_ctx *ctx, const char *line,
    struct kw_decision **ret)
{
	struct kw_decision *d;
	int r = single("command_execute", ret, &d);

	return r < 0 ? r : finish(kw_decide_line(p, ctx, d, line, 0), d, ret);
}

int
kw_policy_path(const struct kw_policy *p, const struct kw_policy_ctx *ctx, const char *path,
    enum kw_effect_kind access, struct kw_decision **ret)
{
	struct kw_decision *d;
	int r = single(access == KW_EFFECT_READ ? "file_read" : access == KW_EFFECT_DELETE ?
	    "file_delete" : "file_write", ret, &d);

	return r < 0 ? r : finish(kw_decide_path(p, ctx, d, path, access), d, ret);
}

int
kw_policy_url(const struct kw_policy *p, const struct kw_policy_ctx *ctx, const char *url,
    struct kw_decision **ret)
{
	struct kw_decision *d;
	int r = single("api_call", ret, &d);

	(void)ctx;
	return r < 0 ? r : finish(kw_decide_net(p, d, url, "the request"), d, ret);
}
