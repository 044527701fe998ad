/*
 * main.c - the keywarden command: global options and the subcommand table.
 */
#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/doctor.h"
#include "cli/lazylib.h"
#include "cli/sandbox_relay.h"
#include "common/config.h"
#include "common/log.h"
#include "common/wipe_alloc.h"

static const struct kw_cmd commands[] = {
	{ .name = "status", .fn = kw_cmd_status, .help = "is the broker there, and who am I to it",
	  .usage = "[--json]", .flags = KW_CMD_LEAN },
	{ .name = "check", .fn = kw_cmd_check, .help = "may I (or --user U) do ACTION on RESOURCE?",
	  .usage = "ACTION RESOURCE [--user USER] [--json]",
	  .options = "  ACTION           read, write, execute or admin\n"
	    "  RESOURCE         TYPE/NAME, such as key/anthropic or user/alice\n"
	    "  -u, --user USER  ask for USER (root, or an administrator of USER)\n"
	    "  --json           {\"allowed\", ...}; a denial prints {\"allowed\": false, ...,\n"
	    "                   \"error\": {...}} and exits 1\n", .flags = KW_CMD_LEAN },
	{ .name = "hook", .fn = kw_cmd_hook,
	  .help = "answer an agent's hook with the broker's decision (Claude Code: hook claude)",
	  .flags = KW_CMD_GROUP | KW_CMD_LEAN },
	{ .name = "policy", .fn = kw_cmd_policy,
	  .help = "explain or test the policy for commands, paths, URLs and tool calls",
	  .flags = KW_CMD_GROUP },
	{ .name = "config", .fn = kw_cmd_config, .help = "get, set or list configuration keys",
	  .flags = KW_CMD_GROUP },
	{ .name = "admin", .fn = kw_cmd_admin,
	  .help = "manage users, roles, sessions, the audit trail, incidents and API usage (root or the admin role)",
	  .flags = KW_CMD_GROUP },
	{ .name = "login", .fn = kw_cmd_login,
	  .help = "prove who you are with a TOTP code and start a session",
	  .usage = "[-u USER] [--pam-service NAME] [--json]",
	  .options = "  -u, --user USER          log in as USER (root: the token goes to USER's cache)\n"
	    "  --pam-service NAME       the PAM service to run (default keywarden, when its\n"
	    "                           file exists; without one the broker checks the code)\n"
	    "  --json                   {\"user\", \"session\", \"roles\"}\n"
	    "The code is read from stdin when it is not a terminal.\n" },
	{ .name = "logout", .fn = kw_cmd_logout, .help = "end the cached session and forget its token",
	  .usage = "[--json]",
	  .options = "  --json  {\"id\", \"revoked\"}\n" },
	{ .name = "totp", .fn = kw_cmd_totp, .help = "a new TOTP secret for yourself",
	  .flags = KW_CMD_GROUP },
	{ .name = "key", .fn = kw_cmd_key,
	  .help = "get, set, list, rotate, revoke, verify or import API keys",
	  .flags = KW_CMD_GROUP | KW_CMD_LEAN },
	{ .name = "exec", .fn = kw_cmd_exec, .help = "run CMD with keys in its environment, and only there",
	  .usage = "--key NAME=VAR [--key NAME=VAR]... | --proxy [--key NAME] [--sandbox "
	    "[--profile NAME|FILE] [--require landlock=N] [--without FEATURE[,...]] "
	    "[--relay|--no-relay] [--relay-key NAME]...] [--] CMD [ARG...]",
	  .options = "  --key NAME=VAR      put key NAME in CMD's environment as VAR (up to 16)\n"
	    "  --proxy             no key in CMD's environment: ANTHROPIC_BASE_URL is the API\n"
	    "                      proxy's and ANTHROPIC_AUTH_TOKEN a proxy token for the key\n"
	    "                      NAME (--key NAME; default anthropic) that lasts as long as\n"
	    "                      your session; ANTHROPIC_API_KEY is removed\n"
	    "  --sandbox           run CMD confined as keywarden run does, the keys handed\n"
	    "                      in past its environment scrub\n"
	    "  --profile, --require, --without, --relay, --no-relay, --relay-key\n"
	    "                      with --sandbox: as for keywarden run\n"
	    "The exit status is CMD's (128 + the signal when it was killed); exec prints\n"
	    "no data of its own, so it takes no --json.\n",
	  .flags = KW_CMD_RAW },
	{ .name = "run", .fn = kw_cmd_run,
	  .help = "run CMD confined by the kernel (Landlock, seccomp, namespaces) under the policy",
	  .usage = "[--profile NAME|FILE] [--check [--json]] [--require landlock=N] "
	    "[--without FEATURE[,...]] [--env NAME]... [--relay|--no-relay] "
	    "[--relay-key NAME]... [--] CMD [ARG...]",
	  .options = "  --profile NAME|FILE  default, or claude (chosen by itself for claude:\n"
	    "                       ~/.claude, ~/.claude.json, its install tree, a loopback\n"
	    "                       ANTHROPIC_BASE_URL); or a profile file (a path with '/'\n"
	    "                       or a name ending in .json, yours, not writable by others)\n"
	    "                       that may only tighten the policy: readOnly, allowNetwork,\n"
	    "                       allowExec, allowedPaths, readOnlyPaths\n"
	    "  --check              run nothing: print what this machine offers and the plan\n"
	    "                       (level, grants, hidden paths, what is missing)\n"
	    "  --json               with --check: {\"caps\": {...}, \"plan\": {...}}\n"
	    "  --require landlock=N refuse to run below Landlock ABI N\n"
	    "  --without FEATURE    do without userns, seccomp, landlock or landlock-net\n"
	    "                       (comma-separated), as if the machine lacked them\n"
	    "  --env NAME           hand $NAME to CMD although it looks secret (CMD's\n"
	    "                       environment is scrubbed of keys, tokens and sockets)\n"
	    "  --relay, --no-relay  serve CMD's keywarden hook and key get (the claude\n"
	    "                       profile's default): a loopback relay that passes only\n"
	    "                       policy checks to the broker; --no-relay: none\n"
	    "  --relay-key NAME     also pass key get NAME (Claude Code's apiKeyHelper)\n"
	    "The policy is the broker's (security.sandbox, allowedPaths, deniedPaths,\n"
	    "excludePatterns, readOnly, execution, network): without a broker CMD does not\n"
	    "run (exit 3).  When security.sandbox.enabled is true or --require asks, a\n"
	    "machine that cannot apply it all refuses (exit 2, saying what is missing);\n"
	    "otherwise what is missing is noted and CMD runs with the rest.  Each run is\n"
	    "recorded (command_execute, with the profile and the level).  The exit status\n"
	    "is CMD's (128 + the signal when it was killed).\n",
	  .flags = KW_CMD_RAW },
	{ .name = "doctor", .fn = kw_cmd_doctor,
	  .help = "check this machine against the security checklist",
	  .usage = "[--fix [--yes]] [--json]",
	  .options = "  --fix    make the safe fixes: file modes, and moving a plaintext key into\n"
	    "           keywarden (asked at a terminal)\n"
	    "  --yes    with --fix and stdin not a terminal: import without asking\n"
	    "  --json   [{\"check\", \"status\", \"detail\", \"fix\"}, ...]\n" },
	{ .name = "redact", .fn = kw_cmd_redact,
	  .help = "replace secrets and personal data in text (stdin, files, or files in place)",
	  .usage = "[FILE...] [--in-place] [--mode replace|partial|hmac] [--key-file FILE] [--json]",
	  .options = "  FILE               read FILE (\"-\": stdin; none: stdin), write to stdout\n"
	    "  --in-place         replace each FILE atomically, keeping its mode (a file\n"
	    "                     without findings is left alone)\n"
	    "  --mode MODE        replace (the filter's replacement or [REDACTED:RULE]),\n"
	    "                     partial (all but the last 4 characters as *), or hmac\n"
	    "                     ([RULE:16 hex of HMAC-SHA256]: the same value, the same token)\n"
	    "  --key-file FILE    the HMAC key (16 to 1024 bytes, a file only you may read)\n"
	    "  --json             {\"counts\": {RULE: N}, \"files\": [{\"file\", \"counts\"}]}: on\n"
	    "                     stdout with --in-place, else on stderr after the text\n" },
	{ .name = "scan", .fn = kw_cmd_scan,
	  .help = "find secrets in files, or in what git is about to commit",
	  .usage = "[PATH...] [--staged] [--sarif] [--baseline FILE [--update-baseline]] "
	    "[--respect-excludes] [--max-size BYTES] [--json]",
	  .options = "  PATH                a directory (walked: .git, binary files and what\n"
	    "                      .gitignore ignores are left out) or a file; default .\n"
	    "  --staged            scan what git diff --cached would commit (PATHs limit it)\n"
	    "  --sarif             a SARIF 2.1.0 log on stdout (code-scanning services)\n"
	    "  --baseline FILE     findings listed in FILE (hashes) do not fail the scan\n"
	    "  --update-baseline   write this run's findings to the baseline FILE\n"
	    "  --respect-excludes  leave out security.excludePatterns (.env, *.pem ...),\n"
	    "                      which are scanned by default: secrets live there\n"
	    "  --max-size BYTES    skip larger files, said so (default 10M; 0: no limit)\n"
	    "  --json              {\"findings\": [{\"file\", \"line\", \"column\", \"rule\",\n"
	    "                      \"preview\", \"hash\", \"level\", \"known\"}], \"new\", \"files\",\n"
	    "                      \"bytes\", \"skipped\", \"level\"}\n"
	    "Exit 1 when a finding not in the baseline is at security.codeReview.severity\n"
	    "error; warning and info report and exit 0.  Values are never printed: a\n"
	    "preview of at most 4 characters and the length.\n" },
	{ .name = "setup", .fn = kw_cmd_setup,
	  .help = "wire Claude Code (setup claude) or git (setup git) to keywarden",
	  .flags = KW_CMD_GROUP },
};

/*
 * Whether kw_cli_connect attached a cached token: then a session_required
 * answer means that session has ended, and the fix is a new login.
 */
static bool session_attached;

static void
usage(FILE *f)
{
	fprintf(f, "usage: keywarden [--socket PATH] [--config FILE] [--json] COMMAND [ARGS]\n\n"
	    "Commands:\n");
	for (size_t i = 0; i < KW_ELEMENTSOF(commands); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\nkeywarden COMMAND --help shows a command's usage and options.  --json,\n"
	    "before the command or among its arguments, prints one JSON value on stdout.\n"
	    "\nExit status: 0 ok, 1 denied or not found, 2 usage or configuration\n"
	    "error, 3 broker unreachable.  See keywarden(1).\n");
}

/*
 * What connecting takes from the config file: read once per run (the
 * socket and the broker's uid used to be two loads of the same file), and
 * a missing file is not made into a whole default config -- only these two
 * defaults are needed.  Unreadable or invalid means the defaults too.
 */
static struct {
	bool read;
	bool found;			/* the file was loaded */
	char socket[4096];		/* broker.socket */
	long long uid;			/* broker.uid, -1 by default */
} conf = { .uid = -1 };

static void
read_config(struct kw_cli *cli)
{
	struct kw_config *cfg = NULL;
	char err[512];

	if (conf.read)
		return;
	conf.read = true;
	if (kw_config_load(cli->config, false, &cfg, err, sizeof(err)) == 0) {
		conf.found = true;
		snprintf(conf.socket, sizeof(conf.socket), "%s", kw_config_str(cfg, "broker.socket"));
		conf.uid = kw_config_int(cfg, "broker.uid");
		kw_config_free(cfg);
	}
}

const char *
kw_cli_socket(struct kw_cli *cli)
{
	const char *env = getenv("KEYWARDEN_SOCKET");

	if (cli->socket)
		return cli->socket;
	if (env && *env)
		return cli->socket = env;
	read_config(cli);
	return cli->socket = conf.found ? conf.socket : KW_SOCKET_DEFAULT;
}

int
kw_cli_exit_for(int err)
{
	switch (err) {
	case 0:
		return KW_EXIT_OK;
	case KW_ERR_CONNECT:
	case KW_ERR_CLOSED:
	case KW_ERR_TIMEOUT:
	case KW_ERR_BUSY:
		/* No broker able to answer: a script may retry later. */
		return KW_EXIT_UNREACHABLE;
	case KW_ERR_CONFIG:
	case KW_ERR_INVALID:
	case KW_ERR_BAD_REQUEST:
		return KW_EXIT_USAGE;
	default:
		return KW_EXIT_DENIED;
	}
}

bool
kw_cli_session_attached(void)
{
	return session_attached;
}

/* Attach the token `keywarden login` cached for this broker, if any.  Always 0. */
static int
attach_session(const char *path, kw_client *c)
{
	char *token = NULL;
	int r = kw_session_load(path, &token);

	if (r == 0) {
		if (kw_client_set_session(c, token) == 0)
			session_attached = true;
		sodium_memzero(token, strlen(token));
		free(token);
	} else if (r != KW_ERR_NOT_FOUND) {
		/* Without the token the broker will say what is missing; go on. */
		fprintf(stderr, "keywarden: session token cache: %s; continuing without a session\n",
		    r == KW_ERR_CONFIG ? "KEYWARDEN_TOKEN_CACHE must be keyring or file" :
		    r == KW_ERR_IO ? strerror(errno) : kw_strerror(r));
	}
	return 0;
}

/*
 * Whom to trust besides root: broker.uid from the config (which
 * kw_config_load accepts only from root or ourselves), else ourselves.
 */
static uid_t
trusted_uid(struct kw_cli *cli)
{
	/* Once per run: a command may connect many times (audit pages). */
	read_config(cli);
	return conf.uid < 0 ? geteuid() : (uid_t)conf.uid;
}

/*
 * Inside `keywarden run`, KEYWARDEN_RELAY names the run's relay, the one
 * way out to the broker there (the socket is out of reach); the session
 * cache is not read: the relay attaches the user's session itself.
 */
static const char *
relay_spec(void)
{
	const char *s = getenv(KW_RELAY_ENV);

	return s && *s ? s : NULL;
}

int
kw_cli_connect_quiet(struct kw_cli *cli, kw_client **ret_client)
{
	const char *path;
	char why[512];
	int r;

	if (relay_spec())
		return kw_cli_relay_connect(relay_spec(), ret_client, why, sizeof(why));
	path = kw_cli_socket(cli);
	r = kw_client_connect_trusted(path, trusted_uid(cli), ret_client, why, sizeof(why));

	return r < 0 ? r : attach_session(path, *ret_client);
}

int
kw_cli_connect(struct kw_cli *cli, kw_client **ret_client)
{
	const char *path;
	char why[512], msg[1024];
	int r;

	if (relay_spec()) {
		if ((r = kw_cli_relay_connect(relay_spec(), ret_client, why, sizeof(why))) == 0)
			return 0;
		snprintf(msg, sizeof(msg), "broker unreachable from inside keywarden run: %s",
		    kw_cli_safe(why));
		fprintf(stderr, "keywarden: %s\n", msg);
		kw_cli_record_error(kw_error_name(r), msg);
		return kw_cli_exit_for(r == KW_ERR_INVALID ? KW_ERR_CONNECT : r);
	}
	path = kw_cli_socket(cli);
	r = kw_client_connect_trusted(path, trusted_uid(cli), ret_client, why, sizeof(why));
	if (r == 0)
		return attach_session(path, *ret_client);
	if (r == KW_ERR_CONNECT)
		snprintf(msg, sizeof(msg), "broker unreachable at %s: %s", kw_cli_safe(path),
		    strerror(errno));
	else if (r == KW_ERR_DENIED)
		snprintf(msg, sizeof(msg), "broker at %s not trusted, nothing sent: %s (see "
		    "broker.uid in keywarden.conf(5))", kw_cli_safe(path), kw_cli_safe(why));
	else
		snprintf(msg, sizeof(msg), "broker at %s: %s", kw_cli_safe(path), kw_cli_safe(why));
	fprintf(stderr, "keywarden: %s\n", msg);
	kw_cli_record_error(kw_error_name(r), msg);
	return kw_cli_exit_for(r);
}

int
kw_cli_call(struct kw_cli *cli, const char *what, const char *op, json_t *args,
    json_t **ret_result)
{
	kw_client *c = NULL;
	char *msg = NULL;
	int ex, r;

	if ((ex = kw_cli_connect(cli, &c)) != 0)
		return ex;
	r = kw_client_call(c, op, args, ret_result, &msg);
	kw_client_free(c);
	if (r < 0) {
		kw_cli_error(what, r, msg);
		free(msg);
		return kw_cli_exit_for(r);
	}
	return KW_EXIT_OK;
}

int
kw_cli_call_print(struct kw_cli *cli, const char *what, const char *op, json_t *args, bool json,
    void (*human)(json_t *result))
{
	json_t *res = NULL;
	int ex = args ? kw_cli_call(cli, what, op, args, &res) : KW_EXIT_DENIED;

	json_decref(args);
	if (ex)
		return ex;
	if (json)
		kw_cli_print_json(res);
	else
		human(res);
	json_decref(res);
	return KW_EXIT_OK;
}

char *
kw_cli_join(json_t *array)
{
	size_t i, len = 2;
	json_t *v;
	char *out;

	json_array_foreach(array, i, v)
		len += strlen(json_string_value(v) ? json_string_value(v) : "") + 2;
	if (!(out = calloc(1, len)))
		return NULL;
	json_array_foreach(array, i, v) {
		if (i > 0)
			strcat(out, ", ");
		strcat(out, json_string_value(v) ? json_string_value(v) : "");
	}
	if (json_array_size(array) == 0)
		strcpy(out, "-");
	return out;
}

/*
 * Keys, tokens and TOTP seeds pass through this process: no core file of it
 * (RLIMIT_CORE 0, inherited by what exec starts, whose environment holds
 * keys too), and not dumpable, so no other process of the user may ptrace
 * it or read its memory and environment under /proc.
 */
static int
no_core_dumps(void)
{
	const struct rlimit none = { 0, 0 };

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 || setrlimit(RLIMIT_CORE, &none) < 0)
		return -1;
	return 0;
}

/*
 * stdout's buffer holds keys and seeds on their way out (key get, an
 * enrollment): it is ours, and wiped once flushed at exit.
 */
static char stdout_buf[BUFSIZ];

static void
wipe_stdout(void)
{
	(void)fflush(stdout);
	sodium_memzero(stdout_buf, sizeof(stdout_buf));
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct kw_cli cli = { .path = "keywarden" };
	int c, ex;

	/* Before anything else: nothing secret has been read yet. */
	if (no_core_dumps() < 0) {
		fprintf(stderr, "keywarden: cannot turn core dumps off: %s\n", strerror(errno));
		return KW_EXIT_USAGE;
	}
	cli.config = getenv("KEYWARDEN_CONFIG");
	if (setvbuf(stdout, stdout_buf, isatty(STDOUT_FILENO) ? _IOLBF : _IOFBF,
	    sizeof(stdout_buf)) != 0 || atexit(wipe_stdout) != 0) {
		fprintf(stderr, "keywarden: cannot set up stdout\n");
		return KW_EXIT_USAGE;
	}
	kw_log_init("keywarden", KW_LOG_STDERR, LOG_WARNING);
	kw_json_wipe_on_free();
	/* '+': options end at the command; the command parses the rest. */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+s:c:jhV", opts, NULL)) != -1) {
		switch (c) {
		case 's': cli.socket = optarg; break;
		case 'c': cli.config = optarg; break;
		case 'j': cli.json = true; break;
		case 'h': usage(stdout); return KW_EXIT_OK;
		case 'V': printf("keywarden %s\n", KW_VERSION); return KW_EXIT_OK;
		default:
			ex = kw_cli_bad_option(&cli, argc, argv, opts);
			goto out;
		}
	}
	if (!cli.config || !*cli.config)
		cli.config = KW_CONFIG_PATH_DEFAULT;
	ex = KW_EXIT_USAGE;
	if (optind >= argc) {
		ex = kw_cli_usage(&cli, "missing COMMAND");
		goto out;
	}
	for (size_t i = 0; i < KW_ELEMENTSOF(commands); i++)
		if (strcmp(argv[optind], commands[i].name) == 0) {
			/* Before anything forks or starts a thread (lazylib.h). */
			if (!(commands[i].flags & KW_CMD_LEAN))
				kw_lazy_load_all();
			ex = kw_cli_run(&cli, &commands[i], argc - optind, argv + optind);
			goto out;
		}
	ex = kw_cli_usage(&cli, "unknown command '%.64s'", kw_cli_safe(argv[optind]));
 out:
	kw_cli_finish(&cli, ex);
	return ex;
}
