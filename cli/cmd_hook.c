/*
 * cmd_hook.c - keywarden hook claude: Claude Code's hooks, decided by the
 * broker.
 *
 * Claude Code runs this with the hook's JSON on stdin.  For PreToolUse the
 * tool call goes to the broker (policy.check) and the answer goes back in
 * Claude Code's words: a deny is exit 2 with the reason on stderr (the one
 * answer every version honours; the model reads the reason), allow and ask
 * are JSON hookSpecificOutput with permissionDecision.
 *
 * PostToolUse and UserPromptSubmit run the detection engine here, in this
 * process, with the settings the broker hands out (policy.detector): a
 * tool's output can be megabytes, more than a wire frame holds and more
 * than the broker's event loop should scan (broker/policy/op_redact.c).
 * With security.autoRedact, a tool output holding secrets or filtered data
 * is replaced through hookSpecificOutput.updatedToolOutput, every string
 * of it redacted in place so the tool's own shape is kept (Claude Code
 * drops a replacement of another shape and uses the original); a prompt
 * holding a secret is refused whatever autoRedact says.  Either is recorded
 * by the broker (policy.redact) with counts per rule, never a value.  The
 * other events pass (exit 0, nothing printed).
 *
 * With security.sandbox.enabled the broker refuses a tool call that runs a
 * program unless this hook -- and so the Claude Code that runs it -- is
 * inside `keywarden run`'s sandbox, which the hook says ("sandboxed") only
 * when it sees the marks.  KEYWARDEN_SANDBOX alone is forgeable; what the kernel shows in
 * /proc/self/status is not: no_new_privs and a seccomp filter, once set,
 * cannot be unset by the process or anything it starts.  (They prove some
 * filter, not keywarden's: a container with no-new-privileges and a
 * seccomp profile shows the same marks, and there the variable decides.)
 *
 * Fail closed: Claude Code goes ahead after a hook that exits 1 or times
 * out, so every failure here -- no broker, no answer in time, input that
 * does not parse, any internal error -- is turned into exit 2 with a reason
 * that says what to do; for PostToolUse (the tool has run, exit 2 does not
 * hide its output) into a replacement that withholds the output.  The
 * deadline (KEYWARDEN_HOOK_TIMEOUT seconds, default 20) is shorter than the
 * timeout `setup claude` gives the hook.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/escape.h"
#include "policy/detect/detect.h"

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

/* Print o (taken) as one line of JSON for Claude Code: 0, or a deny. */
static int
emit(json_t *o)
{
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	if (!text)
		return deny("out of memory answering Claude Code; denied");
	printf("%s\n", text);
	free(text);
	return fflush(stdout) == 0 ? 0 : deny("cannot write the answer to Claude Code; denied");
}

static int
answer(const char *decision, const char *reason)
{
	return emit(json_pack("{s:{s:s, s:s, s:s}}", "hookSpecificOutput", "hookEventName",
	    "PreToolUse", "permissionDecision", decision, "permissionDecisionReason", reason));
}

/*
 * Call op on the broker, connecting on first use (*c is kept for a second
 * call).  0 with *ret_res, or a code with what went wrong, and what to do,
 * in why.
 */
static int
ask(struct kw_cli *cli, kw_client **c, const char *op, json_t *args, json_t **ret_res,
    char *why, size_t why_len)
{
	char *msg = NULL;
	int r;

	if (!*c && (r = kw_cli_connect_quiet(cli, c)) < 0) {
		*c = NULL;
		if (getenv("KEYWARDEN_RELAY") && *getenv("KEYWARDEN_RELAY"))
			snprintf(why, why_len, "the broker is not reachable through keywarden run's "
			    "relay (%s)", kw_strerror(r));
		else if (r == KW_ERR_DENIED)
			snprintf(why, why_len, "the socket %s is not a broker this user trusts (see "
			    "broker.uid in keywarden.conf(5))", kw_cli_socket(cli));
		else
			snprintf(why, why_len, "the broker is not reachable at %s (start keywardend)",
			    kw_cli_socket(cli));
		return r;
	}
	if ((r = kw_client_call(*c, op, args, ret_res, &msg)) == 0)
		return 0;
	switch (r) {
	case KW_ERR_SESSION:
		/* The broker's reason already says to run keywarden login. */
		snprintf(why, why_len, "%s", msg ? msg : "no session: run keywarden login");
		break;
	case KW_ERR_LOCKED:
		snprintf(why, why_len, "%s", msg ? msg : "the account is locked");
		break;
	case KW_ERR_DENIED:
		snprintf(why, why_len, "denied: %s", msg ? msg : "by policy");
		break;
	default:
		snprintf(why, why_len, "the broker could not answer (%s: %s)", kw_error_name(r),
		    msg ? msg : kw_strerror(r));
	}
	free(msg);
	return r;
}

/*
 * Whether this process runs under keywarden's sandbox: KEYWARDEN_SANDBOX
 * (the launcher's level string) and the kernel's own marks of it,
 * "NoNewPrivs: 1" and "Seccomp: 2" (a filter) in /proc/self/status.
 */
static bool
in_sandbox(void)
{
	const char *level = getenv("KEYWARDEN_SANDBOX");
	bool nnp = false, filter = false;
	char line[256];
	FILE *f;

	if (!level || !*level || !(f = fopen("/proc/self/status", "re")))
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (strcmp(line, "NoNewPrivs:\t1\n") == 0)
			nnp = true;
		else if (strcmp(line, "Seccomp:\t2\n") == 0)
			filter = true;
	}
	fclose(f);
	return nnp && filter;
}

static int
pre_tool_use(struct kw_cli *cli, json_t *in)
{
	const char *tool = json_string_value(json_object_get(in, "tool_name"));
	const char *cwd = json_string_value(json_object_get(in, "cwd"));
	json_t *input = json_object_get(in, "tool_input"), *args, *res = NULL;
	kw_client *c = NULL;
	char here[4096], why[600];
	int r;

	if (!tool || !*tool)
		return deny("malformed PreToolUse input: no tool_name; the tool call is denied");
	if (input && !json_is_object(input))
		return deny("malformed PreToolUse input: tool_input is not an object; denied");
	if (!cwd || cwd[0] != '/')
		cwd = getcwd(here, sizeof(here)) ? here : "/";
	/* "sandboxed": the broker refuses a program run outside the sandbox when
	   security.sandbox.enabled says so, and records it. */
	args = json_pack("{s:s, s:s, s:O?, s:O?, s:s?}", "tool", tool, "cwd", cwd, "input", input,
	    "agent_session", json_object_get(in, "session_id"),
	    "sandboxed", in_sandbox() ? getenv("KEYWARDEN_SANDBOX") : NULL);
	if (!args)
		return deny("out of memory; the tool call is denied");
	r = ask(cli, &c, "policy.check", args, &res, why, sizeof(why));
	kw_client_free(c);
	json_decref(args);
	if (r < 0)
		return deny("%s; the tool call is denied", why);
	const char *decision = json_string_value(json_object_get(res, "decision"));
	const char *reason = json_string_value(json_object_get(res, "reason"));
	if (!decision || (strcmp(decision, "allow") != 0 && strcmp(decision, "ask") != 0))
		r = deny("the broker's answer names no decision; the tool call is denied");
	else
		r = answer(decision, reason ? reason : "");
	json_decref(res);
	return r;
}

/*
 * The broker's detection settings compiled for which (KW_DETECT_*), and
 * security.autoRedact.  0, or a code with the reason in why.
 */
static int
broker_detector(struct kw_cli *cli, kw_client **c, unsigned which, bool *ret_auto_redact,
    struct kw_detector **ret_detector, char *why, size_t why_len)
{
	json_t *res = NULL, *settings, *on;
	struct kw_config *cfg = NULL;
	char *text = NULL, err[512];
	int r;

	if ((r = ask(cli, c, "policy.detector", NULL, &res, why, why_len)) < 0)
		return r;
	settings = json_object_get(res, "settings");
	on = json_object_get(res, "autoRedact");
	r = KW_ERR_INTERNAL;
	if (!json_is_object(settings) || !json_is_boolean(on)) {
		snprintf(why, why_len, "the broker's answer holds no detection settings");
		goto out;
	}
	if (!(text = json_dumps(settings, JSON_COMPACT))) {
		snprintf(why, why_len, "out of memory");
		r = KW_ERR_NOMEM;
		goto out;
	}
	if ((r = kw_config_parse(text, strlen(text), &cfg, err, sizeof(err))) < 0 ||
	    (r = kw_detector_compile(cfg, which, ret_detector, err, sizeof(err))) < 0) {
		snprintf(why, why_len, "the detection settings do not compile here (%.400s)", err);
		goto out;
	}
	*ret_auto_redact = json_is_true(on);
	r = 0;
 out:
	kw_config_free(cfg);
	free(text);
	json_decref(res);
	return r;
}

/* Add counts (a {"rule": n} object) into total. */
static void
add_counts(json_t *total, json_t *counts)
{
	const char *rule;
	json_t *n;

	json_object_foreach(counts, rule, n)
		json_object_set_new(total, rule, json_integer(json_integer_value(
		    json_object_get(total, rule)) + json_integer_value(n)));
}

/* Redact one JSON string in place; what was found is added to counts. */
static int
redact_string(const struct kw_detector *d, json_t *s, json_t *counts)
{
	json_t *found = NULL;
	char *out = NULL;
	size_t len = 0;
	int r;

	if ((r = kw_redact_buffer(d, KW_REDACT_REPLACE, NULL, 0, json_string_value(s),
	    json_string_length(s), &out, &len, &found)) < 0)
		return r;
	if (json_object_size(found) > 0) {
		/* Invalid UTF-8 (a match that cut a character) is an error: withheld. */
		r = json_string_setn(s, out, len) == 0 ? 0 : KW_ERR_INVALID;
		add_counts(counts, found);
	}
	free(out);
	json_decref(found);
	return r;
}

/* Every string in v (a tool's output) redacted in place: the shape is kept. */
static int
redact_strings(const struct kw_detector *d, json_t *v, json_t *counts)
{
	const char *key;
	json_t *e;
	size_t i;
	int r = 0;

	if (json_is_string(v))
		return redact_string(d, v, counts);
	if (json_is_object(v))
		json_object_foreach(v, key, e)
			if ((r = redact_strings(d, e, counts)) < 0)
				return r;
	if (json_is_array(v))
		json_array_foreach(v, i, e)
			if ((r = redact_strings(d, e, counts)) < 0)
				return r;
	return r;
}

/*
 * A short lower-case word ("text", "update", "files_with_matches"): an enum
 * of the tool's output schema, kept when the output is withheld so that the
 * replacement still has the tool's shape.  It cannot hold a secret.
 */
static bool
enum_word(const char *s)
{
	size_t n = strlen(s);

	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	return n <= 24;
}

static void
withhold_strings(json_t *v, const char *note)
{
	const char *key;
	json_t *e;
	size_t i;

	if (json_is_string(v) && !enum_word(json_string_value(v)))
		json_string_set(v, note);
	json_object_foreach(v, key, e)
		withhold_strings(e, note);
	json_array_foreach(v, i, e)
		withhold_strings(e, note);
}

/*
 * PostToolUse fails closed: the output is replaced by a note, in its own
 * shape, and the model is told why (decision block).  Exit 2 would not hide
 * the output, which is already in the conversation by then.
 */
static int
withhold(json_t *response, const char *fmt, ...)
{
	char raw[800], why[1000], note[1100];
	json_t *out = json_deep_copy(response);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	kw_escape(raw, why, sizeof(why));
	snprintf(note, sizeof(note), "[keywarden: this tool's output is withheld: %s]", why);
	if (!out)
		return deny("%s", note);
	withhold_strings(out, note);
	return emit(json_pack("{s:s, s:s, s:{s:s, s:o}}", "decision", "block", "reason", note,
	    "hookSpecificOutput", "hookEventName", "PostToolUse", "updatedToolOutput", out));
}

static int
post_tool_use(struct kw_cli *cli, json_t *in)
{
	const char *tool = json_string_value(json_object_get(in, "tool_name"));
	json_t *response = json_object_get(in, "tool_response"), *out = NULL, *counts = NULL;
	json_t *args = NULL, *res = NULL;
	struct kw_detector *det = NULL;
	kw_client *c = NULL;
	bool auto_redact = false;
	char why[600];
	int r, ex;

	if (!tool || !*tool || !response)
		return deny("malformed PostToolUse input: no %s; keywarden cannot check the "
		    "tool's output", !tool || !*tool ? "tool_name" : "tool_response");
	if ((r = broker_detector(cli, &c, KW_DETECT_SECRETS | KW_DETECT_FILTERS, &auto_redact,
	    &det, why, sizeof(why))) < 0) {
		ex = withhold(response, "%s", why);
		goto out;
	}
	ex = 0;
	if (!auto_redact)
		goto out;	/* security.autoRedact is off: the output passes as it is */
	if (!(out = json_deep_copy(response)) || !(counts = json_object())) {
		ex = withhold(response, "out of memory");
		goto out;
	}
	if ((r = redact_strings(det, out, counts)) < 0) {
		ex = withhold(response, "it cannot be redacted (%s)", kw_strerror(r));
		goto out;
	}
	if (json_object_size(counts) == 0)
		goto out;	/* nothing found: nothing to replace or record */
	if (!(args = json_pack("{s:s, s:s, s:O, s:s, s:O?}", "event", "PostToolUse", "tool", tool,
	    "counts", counts, "decision", "redact", "agent_session",
	    json_object_get(in, "session_id")))) {
		ex = withhold(response, "out of memory");
		goto out;
	}
	/* Recorded before it is answered, as every decision is. */
	if ((r = ask(cli, &c, "policy.redact", args, &res, why, sizeof(why))) < 0) {
		ex = withhold(response, "the redaction could not be recorded: %s", why);
		goto out;
	}
	ex = emit(json_pack("{s:{s:s, s:O}}", "hookSpecificOutput", "hookEventName",
	    "PostToolUse", "updatedToolOutput", out));
 out:
	json_decref(res);
	json_decref(args);
	json_decref(counts);
	json_decref(out);
	kw_detector_free(det);
	kw_client_free(c);
	return ex;
}

/* The secrets found in a prompt: counts per rule. */
static int
on_secret(const struct kw_finding *f, const char *value, size_t len, void *ctx)
{
	json_t *counts = ctx;

	(void)value;
	(void)len;
	if (!f->secret)
		return 0;
	return json_object_set_new(counts, f->rule, json_integer(json_integer_value(
	    json_object_get(counts, f->rule)) + 1)) == 0 ? 0 : KW_ERR_NOMEM;
}

/* "anthropic-api-key, github-token" */
static void
rule_list(json_t *counts, char *buf, size_t len)
{
	const char *rule;
	size_t n = 0;
	json_t *v;

	buf[0] = '\0';
	json_object_foreach(counts, rule, v)
		if (n < len)
			n += (size_t)snprintf(buf + n, len - n, "%s%.64s", n ? ", " : "", rule);
}

/* A prompt holding a secret (a secret rule, not a personal-data filter) is refused. */
static int
user_prompt_submit(struct kw_cli *cli, json_t *in)
{
	json_t *prompt = json_object_get(in, "prompt"), *counts = json_object();
	json_t *args = NULL, *res = NULL;
	struct kw_detector *det = NULL;
	kw_client *c = NULL;
	bool auto_redact;
	char why[600], rules[256];
	int r, ex = 0;

	if (!json_is_string(prompt)) {
		ex = deny("malformed UserPromptSubmit input: no prompt; the prompt is held back");
		goto out;
	}
	if ((r = broker_detector(cli, &c, KW_DETECT_SECRETS, &auto_redact, &det, why,
	    sizeof(why))) < 0) {
		ex = deny("%s; the prompt is held back (keywarden cannot check it for secrets)", why);
		goto out;
	}
	if (!counts || (r = kw_detect_buffer(det, json_string_value(prompt),
	    json_string_length(prompt), on_secret, counts)) < 0) {
		ex = deny("the prompt cannot be checked for secrets (out of memory); it is held back");
		goto out;
	}
	if (json_object_size(counts) == 0)
		goto out;
	rule_list(counts, rules, sizeof(rules));
	args = json_pack("{s:s, s:O, s:s, s:O?}", "event", "UserPromptSubmit", "counts", counts,
	    "decision", "block", "agent_session", json_object_get(in, "session_id"));
	if (!args || (r = ask(cli, &c, "policy.redact", args, &res, why, sizeof(why))) < 0) {
		ex = deny("the prompt holds a secret (%s) and was not sent; the refusal could not "
		    "be recorded: %s", rules, args ? why : "out of memory");
		goto out;
	}
	ex = deny("the prompt holds a secret (%s) and was not sent to the model: remove it "
	    "(keep keys in keywarden: keywarden key set NAME)", rules);
 out:
	json_decref(res);
	json_decref(args);
	json_decref(counts);
	kw_detector_free(det);
	kw_client_free(c);
	return ex;
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
	else if (strcmp(event, "PostToolUse") == 0)
		ex = post_tool_use(cli, in);
	else if (strcmp(event, "UserPromptSubmit") == 0)
		ex = user_prompt_submit(cli, in);
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
	    "or \"ask\", ...}} on stdout.  PostToolUse: with security.autoRedact, an output\n"
	    "holding secrets or filtered data is replaced (updatedToolOutput), else it\n"
	    "passes.  UserPromptSubmit: a prompt holding a secret is refused (exit 2).\n"
	    "With security.sandbox.enabled, a call that runs a program (Bash) is denied\n"
	    "unless Claude Code runs under `keywarden run` (KEYWARDEN_SANDBOX and the\n"
	    "kernel's no_new_privs and seccomp marks).\n"
	    "Any failure (no broker, no session, bad input, no answer within\n"
	    "KEYWARDEN_HOOK_TIMEOUT seconds, default 20) is a deny, or withholds the output.\n" },
};

int
kw_cmd_hook(struct kw_cli *cli, int argc, char **argv)
{
	return kw_cli_run_group(cli, hook_commands, KW_ELEMENTSOF(hook_commands), argc, argv);
}
