/*
 * cmd_hook.c - keywarden hook claude: Claude Code's hooks, decided by the
 * broker.
 *
 * Claude Code runs this with the hook's JSON on stdin.  For PreToolUse the
 * tool call goes to the broker (policy.check) and the answer goes back in
 * Claude Code's words: a deny is exit 2 with the reason on stderr (the one
 * answer every version honours; the model reads the reason), allow and ask
 * are JSON hookSpecificOutput with permissionDecision.  The other events
 * need no decision yet and pass (exit 0, nothing printed).
 *
 * Fail closed: Claude Code goes ahead after a hook that exits 1 or times
 * out, so every failure here -- no broker, no answer in time, input that
 * does not parse, any internal error -- is turned into exit 2 with a reason
 * that says what to do.  The deadline (KEYWARDEN_HOOK_TIMEOUT seconds,
 * default 20) is shorter than the timeout `setup claude` gives the hook.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/escape.h"

#define HOOK_INPUT_MAX	(4 * 1024 * 1024)	/* Claude Code's hook JSON (a Write's content) */
#define DEADLINE_DEFAULT 20

/* Exit 2, the reason on stderr: a denied tool call. */
static int
deny(const char *fmt, ...)
{
	char raw[1024], safe[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	fprintf(stderr, "keywarden: %s\n", kw_escape(raw, safe, sizeof(safe)));
	return 2;
}

static void
on_deadline(int sig)
{
	static const char msg[] = "keywarden: no answer from the broker in time; the tool call "
	    "is denied (is keywardend running? see KEYWARDEN_HOOK_TIMEOUT)\n";

	(void)sig;
	/* Only async-signal-safe calls here. */
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(2);
	_exit(2);
}

static void
arm_deadline(void)
{
	const char *env = getenv("KEYWARDEN_HOOK_TIMEOUT");
	long s = env ? strtol(env, NULL, 10) : DEADLINE_DEFAULT;
	struct sigaction sa = { .sa_handler = on_deadline };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	alarm((unsigned)(s > 0 && s <= 3600 ? s : DEADLINE_DEFAULT));
}

/* All of stdin, up to HOOK_INPUT_MAX.  NULL with *ret_why on failure. */
static char *
read_input(size_t *ret_len, const char **ret_why)
{
	size_t len = 0, cap = 65536;
	char *buf = malloc(cap + 1), *nb;
	ssize_t n;

	while (buf) {
		if (len == cap) {
			if (cap >= HOOK_INPUT_MAX) {
				*ret_why = "hook input larger than 4 MiB";
				break;
			}
			cap *= 2;
			if (!(nb = realloc(buf, cap + 1)))
				break;
			buf = nb;
		}
		n = read(STDIN_FILENO, buf + len, cap - len);
		if (n == 0) {
			buf[len] = '\0';
			*ret_len = len;
			return buf;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*ret_why = "cannot read the hook input";
			break;
		}
		len += (size_t)n;
	}
	if (!buf)
		*ret_why = "out of memory";
	free(buf);
	return NULL;
}

static int
answer(const char *decision, const char *reason)
{
	json_t *o = json_pack("{s:{s:s, s:s, s:s}}", "hookSpecificOutput", "hookEventName",
	    "PreToolUse", "permissionDecision", decision, "permissionDecisionReason", reason);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	if (!text)
		return deny("out of memory answering Claude Code; the tool call is denied");
	printf("%s\n", text);
	free(text);
	return fflush(stdout) == 0 ? 0 : deny("cannot write the answer; the tool call is denied");
}

/* What to tell the model (and the user) about a refusal, by its code. */
static int
refused(struct kw_cli *cli, int err, const char *msg)
{
	switch (err) {
	case KW_ERR_CONNECT:
		return deny("the broker is not reachable at %s; tool calls are denied until it "
		    "runs (start keywardend)", kw_cli_socket(cli));
	case KW_ERR_SESSION:
		/* The broker's reason already says to run keywarden login. */
		return deny("%s; tool calls are denied until then", msg ? msg :
		    "no session: run keywarden login");
	case KW_ERR_LOCKED:
		return deny("%s; tool calls are denied", msg ? msg : "the account is locked");
	case KW_ERR_DENIED:
		return deny("denied: %s", msg ? msg : "by policy");
	default:
		return deny("the broker could not decide (%s: %s); the tool call is denied",
		    kw_error_name(err), msg ? msg : kw_strerror(err));
	}
}

static int
pre_tool_use(struct kw_cli *cli, json_t *in)
{
	const char *tool = json_string_value(json_object_get(in, "tool_name"));
	const char *cwd = json_string_value(json_object_get(in, "cwd"));
	json_t *input = json_object_get(in, "tool_input"), *args, *res = NULL;
	kw_client *c = NULL;
	char *msg = NULL, here[4096];
	int r;

	if (!tool || !*tool)
		return deny("malformed PreToolUse input: no tool_name; the tool call is denied");
	if (input && !json_is_object(input))
		return deny("malformed PreToolUse input: tool_input is not an object; denied");
	if (!cwd || cwd[0] != '/')
		cwd = getcwd(here, sizeof(here)) ? here : "/";
	args = json_pack("{s:s, s:s, s:O?, s:O?}", "tool", tool, "cwd", cwd, "input", input,
	    "agent_session", json_object_get(in, "session_id"));
	if (!args)
		return deny("out of memory; the tool call is denied");
	if ((r = kw_cli_connect_quiet(cli, &c)) < 0) {
		json_decref(args);
		if (r == KW_ERR_DENIED)
			return deny("the socket %s is not a broker this user trusts (see broker.uid "
			    "in keywarden.conf(5)); tool calls are denied", kw_cli_socket(cli));
		return refused(cli, KW_ERR_CONNECT, NULL);
	}
	r = kw_client_call(c, "policy.check", args, &res, &msg);
	kw_client_free(c);
	json_decref(args);
	if (r < 0) {
		r = refused(cli, r, msg);
		free(msg);
		return r;
	}
	const char *decision = json_string_value(json_object_get(res, "decision"));
	const char *reason = json_string_value(json_object_get(res, "reason"));
	if (!decision || (strcmp(decision, "allow") != 0 && strcmp(decision, "ask") != 0))
		r = deny("the broker's answer names no decision; the tool call is denied");
	else
		r = answer(decision, reason ? reason : "");
	json_decref(res);
	return r;
}

static int
hook_claude(struct kw_cli *cli, int argc, char **argv)
{
	const char *why = NULL, *event;
	json_error_t jerr;
	size_t len = 0;
	char *text;
	json_t *in;
	int ex;

	if ((ex = kw_cli_no_options(cli, argc, argv)) != 0 ||
	    (ex = kw_cli_args(cli, argc, argv, 1, "")) != 0)
		return ex;
	arm_deadline();
	if (!(text = read_input(&len, &why)))
		return deny("%s; the tool call is denied", why);
	in = json_loadb(text, len, 0, &jerr);
	free(text);
	if (!json_is_object(in)) {
		json_decref(in);
		return deny("malformed hook input (line %d: %.80s); the tool call is denied",
		    jerr.line, jerr.text);
	}
	event = json_string_value(json_object_get(in, "hook_event_name"));
	if (!event)
		ex = deny("malformed hook input: no hook_event_name; denied");
	else if (strcmp(event, "PreToolUse") == 0)
		ex = pre_tool_use(cli, in);
	else
		ex = 0;	/* nothing to decide for this event (yet) */
	json_decref(in);
	return ex;
}

static const struct kw_cmd hook_commands[] = {
	{ .name = "claude", .fn = hook_claude,
	  .help = "answer a Claude Code hook (JSON on stdin) with the broker's decision",
	  .usage = "[--json]",
	  .options = "  --json  accepted: the answer is Claude Code's JSON either way\n"
	    "Reads the hook's JSON on stdin.  PreToolUse: exit 2 with the reason on\n"
	    "stderr when denied, else {\"hookSpecificOutput\": {\"permissionDecision\": \"allow\"\n"
	    "or \"ask\", ...}} on stdout.  Any failure (no broker, no session, bad input,\n"
	    "no answer within KEYWARDEN_HOOK_TIMEOUT seconds, default 20) is a deny.\n" },
};

int
kw_cmd_hook(struct kw_cli *cli, int argc, char **argv)
{
	return kw_cli_run_group(cli, hook_commands, KW_ELEMENTSOF(hook_commands), argc, argv);
}
