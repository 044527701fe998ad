/*
 * cmd_policy.c - keywarden policy explain | test: the policy of a
 * configuration file, decided here without a broker, so a security team
 * can see why a command is refused and keep a corpus of cases for its own
 * policy.  The broker decides with the same code (policy/) and the same
 * file; what it adds is the caller's roles and session, which these
 * commands leave out.
 *
 * "~" is $HOME (else the password database's home); relative paths start
 * at --cwd (else the current directory).
 */
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "policy/policy.h"

struct policy_env {
	struct kw_policy *policy;
	struct kw_policy_ctx ctx;
	char cwd[4096];
};

static int
load(struct kw_cli *cli, const char *cwd, struct policy_env *pe)
{
	struct kw_config *cfg = NULL;
	const char *home = getenv("HOME");
	struct passwd *pw;
	char err[1024];
	int r;

	if ((r = kw_config_load(cli->config, true, &cfg, err, sizeof(err))) < 0 ||
	    (r = kw_policy_compile(cfg, &pe->policy, err, sizeof(err))) < 0) {
		kw_config_free(cfg);
		return kw_cli_fail(r == KW_ERR_NOMEM ? KW_ERR_NOMEM : KW_ERR_CONFIG, cli->path,
		    "%s", err);
	}
	kw_config_free(cfg);
	if (!home || home[0] != '/')
		home = (pw = getpwuid(getuid())) && pw->pw_dir ? pw->pw_dir : "/";
	if (cwd)
		snprintf(pe->cwd, sizeof(pe->cwd), "%s", cwd);
	else if (!getcwd(pe->cwd, sizeof(pe->cwd)))
		snprintf(pe->cwd, sizeof(pe->cwd), "/");
	if (pe->cwd[0] != '/')
		return kw_cli_usage(cli, "--cwd must be an absolute path");
	pe->ctx = (struct kw_policy_ctx){ .cwd = pe->cwd, .home = home, .fs = true,
	    .uid = getuid(), .gid = getgid() };
	return 0;
}

static void
print_decision(const struct kw_decision *d)
{
	printf("decision: %s\n", kw_verdict_name(d->verdict));
	if (d->rule[0])
		printf("rule:     %s\n", kw_cli_safe(d->rule));
	printf("reason:   %s\n", kw_cli_safe(d->reason[0] ? d->reason : "nothing to decide"));
	for (size_t i = 0; i < d->n_leaves; i++)
		printf("%s %s\n", i ? "         " : "leaves:  ", kw_cli_safe(d->leaves[i]));
	for (size_t i = 0; i < d->n_effects; i++) {
		const struct kw_effect *e = &d->effects[i];
		printf("%s %-6s %-5s %s", i ? "         " : "effects: ", kw_effect_kind_name(e->kind),
		    kw_verdict_name(e->verdict), kw_cli_safe(e->name));
		printf("%s%s%s\n", e->rule[0] ? "  (" : "", kw_cli_safe(e->rule),
		    e->rule[0] ? ")" : "");
	}
}

static int
explain(struct kw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "path", required_argument, NULL, 'p' }, { "url", required_argument, NULL, 'u' },
		{ "tool", required_argument, NULL, 't' }, { "input", required_argument, NULL, 'i' },
		{ "write", no_argument, NULL, 'w' }, { "delete", no_argument, NULL, 'd' },
		{ "cwd", required_argument, NULL, 'C' }, { NULL, 0, NULL, 0 },
	};
	const char *path = NULL, *url = NULL, *tool = NULL, *input = NULL, *cwd = NULL;
	enum kw_effect_kind access = KW_EFFECT_READ;
	struct policy_env pe = { 0 };
	struct kw_decision *d = NULL;
	json_t *in = NULL;
	int c, ex, r, given;

	optind = 0;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'p': path = optarg; break;
		case 'u': url = optarg; break;
		case 't': tool = optarg; break;
		case 'i': input = optarg; break;
		case 'w': access = KW_EFFECT_WRITE; break;
		case 'd': access = KW_EFFECT_DELETE; break;
		case 'C': cwd = optarg; break;
		default: return kw_cli_bad_option(cli, argc, argv, opts);
		}
	}
	given = !!path + !!url + !!tool + (optind < argc);
	if (given == 0)
		return kw_cli_usage(cli, "missing LINE (or --path, --url or --tool)");
	if (given > 1)
		return kw_cli_usage(cli, "give one of LINE, --path, --url or --tool");
	if (optind < argc && (ex = kw_cli_args(cli, argc, argv, optind, "LINE")) != 0)
		return ex;
	if (tool && (!input || !json_is_object(in = json_loads(input, 0, NULL)))) {
		json_decref(in);
		return kw_cli_usage(cli, "--tool takes --input with the tool_input JSON object");
	}
	if ((ex = load(cli, cwd, &pe)) != 0) {
		json_decref(in);
		return ex;
	}
	r = tool ? kw_policy_tool(pe.policy, &pe.ctx, tool, in, &d) :
	    path ? kw_policy_path(pe.policy, &pe.ctx, path, access, &d) :
	    url ? kw_policy_url(pe.policy, &pe.ctx, url, &d) :
	    kw_policy_command(pe.policy, &pe.ctx, argv[optind], &d);
	json_decref(in);
	kw_policy_free(pe.policy);
	if (r < 0)
		return kw_cli_fail(r, cli->path, "%s", kw_strerror(r));
	if (cli->json) {
		json_t *o = kw_decision_json(d);
		if (o)
			kw_cli_print_json(o);
		json_decref(o);
	} else {
		print_decision(d);
	}
	kw_decision_free(d);
	return KW_EXIT_OK;
}

/* One case: {"tool", "input", "expect", "cwd"?, "name"?}.  1 for a mismatch. */
static int
one_case(struct policy_env *pe, const char *file, size_t line_no, json_t *c, json_t *report,
    bool json)
{
	const char *tool = json_string_value(json_object_get(c, "tool"));
	const char *expect = json_string_value(json_object_get(c, "expect"));
	const char *cwd = json_string_value(json_object_get(c, "cwd"));
	json_t *input = json_object_get(c, "input");
	struct kw_policy_ctx ctx = pe->ctx;
	struct kw_decision *d = NULL;
	char where[4200];
	int mismatch;

	if (!tool || !expect || kw_verdict_from_name(expect) < 0 || !json_is_object(input)) {
		fprintf(stderr, "%s:%zu: a case needs \"tool\", an \"input\" object and \"expect\" "
		    "(allow, ask or deny)\n", kw_cli_safe(file), line_no);
		return -1;
	}
	if (cwd && cwd[0] == '/')
		ctx.cwd = cwd;
	if (kw_policy_tool(pe->policy, &ctx, tool, input, &d) < 0)
		return -1;
	mismatch = kw_verdict_from_name(expect) != (int)d->verdict;
	if (mismatch && json) {
		json_t *o = kw_decision_json(d);
		json_array_append_new(report, json_pack("{s:s, s:I, s:s, s:o}", "file", file,
		    "line", (json_int_t)line_no, "expect", expect, "got", o ? o : json_null()));
	} else if (mismatch) {
		snprintf(where, sizeof(where), "%s:%zu", file, line_no);
		printf("%s: expected %s, got %s (%s%s%s)\n", kw_cli_safe(where), expect,
		    kw_verdict_name(d->verdict), kw_cli_safe(d->rule), d->rule[0] ? ": " : "",
		    kw_cli_safe(d->reason));
	}
	kw_decision_free(d);
	return mismatch;
}

static int
test(struct kw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cwd", required_argument, NULL, 'C' }, { NULL, 0, NULL, 0 },
	};
	const char *cwd = NULL;
	struct policy_env pe = { 0 };
	json_t *report = NULL;
	size_t cases = 0, bad = 0, line_no = 0, cap = 0;
	char *line = NULL;
	FILE *f = NULL;
	int c, ex;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'C')
			return kw_cli_bad_option(cli, argc, argv, opts);
		cwd = optarg;
	}
	if ((ex = kw_cli_args(cli, argc, argv, optind, "FILE")) != 0 ||
	    (ex = load(cli, cwd, &pe)) != 0)
		goto out;
	if (!(report = json_array())) {
		ex = kw_cli_fail(KW_ERR_NOMEM, cli->path, "out of memory");
		goto out;
	}
	if (!(f = strcmp(argv[optind], "-") == 0 ? stdin : fopen(argv[optind], "re"))) {
		ex = kw_cli_fail(KW_ERR_IO, cli->path, "cannot open %s", kw_cli_safe(argv[optind]));
		goto out;
	}
	while (getline(&line, &cap, f) > 0) {
		json_error_t jerr;
		json_t *cs;
		int r;
		line_no++;
		if (line[strspn(line, " \t\r\n")] == '\0' || line[strspn(line, " \t")] == '#')
			continue;
		if (!(cs = json_loads(line, 0, &jerr))) {
			fprintf(stderr, "%s:%zu: not JSON: %s\n", kw_cli_safe(argv[optind]), line_no,
			    kw_cli_safe(jerr.text));
			ex = KW_EXIT_USAGE;
			goto out;
		}
		r = one_case(&pe, argv[optind], line_no, cs, report, cli->json);
		json_decref(cs);
		if (r < 0) {
			ex = KW_EXIT_USAGE;
			goto out;
		}
		cases++;
		bad += (size_t)r;
	}
	if (cli->json) {
		json_t *o = json_pack("{s:I, s:I, s:O}", "cases", (json_int_t)cases,
		    "mismatches", (json_int_t)bad, "failed", report);
		if (o)
			kw_cli_print_json(o);
		json_decref(o);
	} else {
		printf("%zu case%s, %zu mismatch%s\n", cases, cases == 1 ? "" : "s", bad,
		    bad == 1 ? "" : "es");
	}
	ex = bad ? KW_EXIT_DENIED : KW_EXIT_OK;
 out:
	if (f && f != stdin)
		fclose(f);
	free(line);
	json_decref(report);
	kw_policy_free(pe.policy);
	return ex;
}

static const struct kw_cmd policy_commands[] = {
	{ .name = "explain", .fn = explain,
	  .help = "show how the policy decides a command, path, URL or tool call, and why",
	  .usage = "LINE [--cwd DIR] [--json]",
	  .options = "  LINE              a bash command line, as Claude Code's Bash tool runs it;\n"
	    "                    or instead of it, one of:\n"
	    "  --path PATH       a file read (--write: written, --delete: deleted)\n"
	    "  --url URL         a URL fetched\n"
	    "  --tool NAME --input JSON  a Claude Code tool call (tool_input as JSON)\n"
	    "  --cwd DIR         where relative paths start (default: the current directory)\n"
	    "  --json            {\"decision\", \"rule\", \"reason\", \"action\", \"effects\", \"leaves\"}\n"
	    "The policy of the configuration file (--config) is used here, without the broker:\n"
	    "roles and sessions, which the broker adds, are left out.\n" },
	{ .name = "test", .fn = test,
	  .help = "run a file of cases against the policy and report mismatches",
	  .usage = "FILE [--cwd DIR] [--json]",
	  .options = "  FILE        one case per line: {\"tool\": \"Bash\", \"input\": {\"command\": \"...\"},\n"
	    "              \"expect\": \"deny\"} (optional \"cwd\"); blank lines and # comments skipped;\n"
	    "              - reads stdin\n"
	    "  --cwd DIR   where relative paths start for cases without \"cwd\"\n"
	    "  --json      {\"cases\", \"mismatches\", \"failed\": [...]}\n"
	    "Exit 0 when every case matches, 1 when some do not, 2 for a bad file.\n" },
};

int
kw_cmd_policy(struct kw_cli *cli, int argc, char **argv)
{
	return kw_cli_run_group(cli, policy_commands, KW_ELEMENTSOF(policy_commands), argc, argv);
}
