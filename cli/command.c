/*
 * command.c - running a row of a command table: the one place where --help
 * and --json are taken from a command's arguments, and where usage errors
 * are said, in one format:
 *
 *	keywarden key get: missing NAME
 *	usage: keywarden key get NAME [--version N] [--json]
 *
 * Each command's usage line and options live in its table row (cli.h,
 * struct kw_cmd), so --help, the usage after an error and the list of a
 * group's commands all come from the same text.
 */
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static bool
is_help(const char *s)
{
	return strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0;
}

/* --help or -h among the options, before "--". */
static bool
wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (is_help(argv[i]))
			return true;
	return false;
}

/* "usage: keywarden key get NAME ..." for the running command. */
static void
usage_line(struct kw_cli *cli, FILE *f)
{
	const struct kw_cmd *cmd = cli->cmd;

	if (!cmd)
		fprintf(f, "usage: keywarden [--socket PATH] [--config FILE] [--json] COMMAND [ARGS]\n"
		    "keywarden --help lists the commands\n");
	else if (cmd->flags & KW_CMD_GROUP)
		fprintf(f, "usage: %s COMMAND [ARGS]\n", cli->path);
	else
		fprintf(f, "usage: %s%s%s\n", cli->path, cmd->usage ? " " : "",
		    cmd->usage ? cmd->usage : " [ARGS]");
}

/* A group's commands, one line each: synopsis, then what it does. */
static void
list_commands(FILE *f, const struct kw_cmd *table, size_t n)
{
	fprintf(f, "\nCommands:\n");
	for (size_t i = 0; i < n; i++) {
		const char *use = table[i].flags & KW_CMD_GROUP ? "COMMAND ..." : table[i].usage;
		fprintf(f, "  %s %s\n      %s\n", table[i].name, use ? use : "[ARGS]",
		    table[i].help);
	}
}

/* --help: usage, what it does, its options (a group: its commands), the exit statuses. */
static void
help(struct kw_cli *cli, const struct kw_cmd *table, size_t n)
{
	const struct kw_cmd *cmd = cli->cmd;

	usage_line(cli, stdout);
	printf("\n%s\n", cmd->help);
	if (cmd->options)
		printf("\n%s", cmd->options);
	if (!(cmd->flags & (KW_CMD_RAW | KW_CMD_GROUP)) && (!cmd->options ||
	    !strstr(cmd->options, "--json")))
		printf("\n  --json  print the result as JSON (keywarden(1), JSON OUTPUT)\n");
	if (table) {
		list_commands(stdout, table, n);
		printf("\n%s COMMAND --help shows the options of one.\n", cli->path);
	}
	printf("\nExit status: 0 ok, 1 denied or not found, 2 usage or configuration error,\n"
	    "3 broker unreachable.  See keywarden(1).\n");
}

void
kw_cli_help(struct kw_cli *cli)
{
	help(cli, NULL, 0);
}

int
kw_cli_usage(struct kw_cli *cli, const char *fmt, ...)
{
	char reason[512];
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(reason, sizeof(reason), fmt, ap);
		va_end(ap);
		fprintf(stderr, "%s: %s\n", cli->path, reason);
		kw_cli_record_error("usage", reason);
	}
	usage_line(cli, stderr);
	return KW_EXIT_USAGE;
}

int
kw_cli_bad_option(struct kw_cli *cli, int argc, char **argv, const struct option *opts)
{
	const char *word = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
	size_t len = strcspn(word, "=");

	/* An option this command knows, so its value is what is missing. */
	for (const struct option *o = opts; o && o->name; o++) {
		bool named = strncmp(word, "--", 2) == 0 && len > 2 &&
		    strncmp(o->name, word + 2, len - 2) == 0;
		bool letter = word[0] == '-' && word[1] == o->val && word[2] == '\0';
		if ((named || letter) && o->has_arg == required_argument)
			return kw_cli_usage(cli, "option '%.64s' needs a value",
			    kw_cli_safe(word));
	}
	return kw_cli_usage(cli, "unknown option '%.64s'", kw_cli_safe(word));
}

int
kw_cli_no_options(struct kw_cli *cli, int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		const char *w = argv[i];
		/* "-5" is a value (config set KEY -5), "-x" and "--x" are options. */
		if (w[0] == '-' && (w[1] == '-' || (w[1] >= 'a' && w[1] <= 'z') ||
		    (w[1] >= 'A' && w[1] <= 'Z')))
			return kw_cli_usage(cli, "unknown option '%.64s'", kw_cli_safe(w));
	}
	return 0;
}

int
kw_cli_args(struct kw_cli *cli, int argc, char **argv, int first, const char *names)
{
	char buf[128], *save = NULL, *missing = NULL;
	int need = 0, max = 0, have = argc - first;

	snprintf(buf, sizeof(buf), "%s", names);
	for (char *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		if (w[0] != '[' && need++ == have)
			missing = w;
		/* "ARG..." takes any number: the command judges them itself. */
		max = strstr(w, "...") ? INT_MAX : max + 1;
		if (max == INT_MAX)
			break;
	}
	if (missing)
		return kw_cli_usage(cli, "missing %s", missing);
	if (have > max)
		return kw_cli_usage(cli, "unexpected argument '%.64s'",
		    kw_cli_safe(argv[first + max]));
	return 0;
}

int
kw_cli_run(struct kw_cli *cli, const struct kw_cmd *cmd, int argc, char **argv)
{
	size_t len = strlen(cli->path);

	snprintf(cli->path + len, sizeof(cli->path) - len, "%s%s", len ? " " : "", cmd->name);
	cli->cmd = cmd;
	/* getopt names the program by argv[0]: the command, in the usage format. */
	argv[0] = cli->path;
	opterr = 0;
	if (cmd->flags & KW_CMD_GROUP)
		return cmd->fn(cli, argc, argv);
	if (cmd->flags & KW_CMD_RAW) {
		/* Its stdout is another program's: no JSON of ours goes there, not even an error. */
		cli->json = false;
		/* What follows belongs to another program: only a first --help is ours. */
		if (argc > 1 && is_help(argv[1])) {
			kw_cli_help(cli);
			return KW_EXIT_OK;
		}
		return cmd->fn(cli, argc, argv);
	}
	if (kw_cli_take_flag(&argc, argv, "--json"))
		cli->json = true;
	if (wants_help(argc, argv)) {
		kw_cli_help(cli);
		return KW_EXIT_OK;
	}
	return cmd->fn(cli, argc, argv);
}

int
kw_cli_run_group(struct kw_cli *cli, const struct kw_cmd *table, size_t n, int argc,
    char **argv)
{
	if (argc >= 2) {
		for (size_t i = 0; i < n; i++)
			if (strcmp(argv[1], table[i].name) == 0)
				return kw_cli_run(cli, &table[i], argc - 1, argv + 1);
		if (is_help(argv[1])) {
			help(cli, table, n);
			return KW_EXIT_OK;
		}
	}
	/* --json given to the group itself is the commands' (config --json list). */
	if (argc >= 2 && strcmp(argv[1], "--json") == 0) {
		cli->json = true;
		argv[1] = argv[0];
		return kw_cli_run_group(cli, table, n, argc - 1, argv + 1);
	}
	if (argc < 2)
		kw_cli_usage(cli, "missing COMMAND");
	else
		kw_cli_usage(cli, "unknown command '%.64s'", kw_cli_safe(argv[1]));
	list_commands(stderr, table, n);
	return KW_EXIT_USAGE;
}

bool
kw_cli_take_flag(int *argc, char **argv, const char *flag)
{
	bool found = false;
	int j = 0;

	for (int i = 0; i < *argc; i++) {
		/* "--" ends options; keep it and everything after it. */
		if (strcmp(argv[i], "--") == 0) {
			while (i < *argc)
				argv[j++] = argv[i++];
			break;
		}
		if (i > 0 && strcmp(argv[i], flag) == 0)
			found = true;
		else
			argv[j++] = argv[i];
	}
	*argc = j;
	argv[j] = NULL;
	return found;
}
