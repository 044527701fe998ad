/*
 * cmd_key_import.c - keywarden key import NAME --from SOURCE
 *
 * Brings a key from where it lives today into the keystore:
 *	env:VAR			this process's environment
 *	dotenv:FILE[:VAR]	a .env file (VAR defaults to ANTHROPIC_API_KEY)
 *	command:CMD		the first line CMD prints (op read ..., aws ...)
 * and then says how to remove the old copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/key_import.h"
#include "cli/progress.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/fsutil.h"
#include "cli/prompt.h"

#define DEFAULT_VAR "ANTHROPIC_API_KEY"
#define VALUE_MAX 8192

static void
trim(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && strchr("\r\n \t", s[n - 1]))
		s[--n] = '\0';
}

static int
from_env(const char *var, char **ret, char *why, size_t len)
{
	const char *v = getenv(var);

	if (!v || !*v) {
		snprintf(why, len, "%s is not set in this environment", var);
		return -1;
	}
	if (!(*ret = strdup(v)))
		return -1;
	/* Our copy of the environment need not keep it (/proc/PID/environ shows it). */
	sodium_memzero((char *)v, strlen(v));
	return 0;
}

/* One KEY=VALUE line of a .env file: "export " allowed, quotes removed. */
static char *
dotenv_match(char *line, const char *var)
{
	size_t n = strlen(var);
	char *v;

	while (*line == ' ' || *line == '\t')
		line++;
	if (strncmp(line, "export ", 7) == 0)
		line += 7;
	if (strncmp(line, var, n) != 0 || line[n] != '=')
		return NULL;
	v = line + n + 1;
	trim(v);
	n = strlen(v);
	if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
		v[n - 1] = '\0';
		v++;
	}
	return v;
}

static int
from_dotenv(char *spec, char **ret, char *why, size_t len)
{
	char *colon = strrchr(spec, ':'), *data = NULL, *line, *save = NULL, *v;
	const char *var = DEFAULT_VAR;
	size_t dlen;
	int fd, r = -1;

	/* FILE:VAR, unless what follows the colon cannot be a variable name. */
	if (colon && colon[1] && strspn(colon + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") ==
	    strlen(colon + 1)) {
		*colon = '\0';
		var = colon + 1;
	}
	if ((fd = open(spec, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(why, len, "%s: %s", spec, strerror(errno));
		return -1;
	}
	if (kw_read_fd(fd, 1 << 20, &data, &dlen) < 0) {
		close(fd);
		snprintf(why, len, "%s: cannot be read", spec);
		return -1;
	}
	close(fd);
	for (line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if ((v = dotenv_match(line, var)) && *v) {
			r = (*ret = strdup(v)) ? 0 : -1;
			break;
		}
	if (r < 0)
		snprintf(why, len, "%s has no %s=... line", spec, var);
	sodium_memzero(data, dlen);
	free(data);
	return r;
}

/* Run cmd through /bin/sh with a time limit; its first line of output is the key. */
static int
from_command(const char *cmd, int timeout_s, char **ret, char *why, size_t len)
{
	char buf[VALUE_MAX + 2];
	size_t got = 0;
	int out[2], status = 0, r = -1;
	pid_t pid;
	int64_t start = kw_mono_ms(), end = start + (int64_t)timeout_s * 1000;
	struct kw_progress progress;

	if (pipe2(out, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
		snprintf(why, len, "cannot run the command: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		/* A group of its own, so a timeout ends everything the command started. */
		setpgid(0, 0);
		dup2(out[1], STDOUT_FILENO);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	kw_progress_init(&progress, true);
	for (;;) {
		struct pollfd p = { .fd = out[0], .events = POLLIN };
		int64_t left = end - kw_mono_ms();
		int n_ready;

		if (left <= 0) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			snprintf(why, len, "the command did not finish within %d s "
			    "(api.commandTimeout)", timeout_s);
			goto out;
		}
		/* Wake up to redraw "waiting for ... Ns" while the command runs. */
		n_ready = poll(&p, 1, (int)(left < KW_PROGRESS_EVERY_MS ? left : KW_PROGRESS_EVERY_MS));
		if (n_ready == 0 || (n_ready < 0 && errno == EINTR)) {
			kw_progress_show(&progress, "waiting for %.48s... %llds", kw_cli_safe(cmd),
			    (long long)((kw_mono_ms() - start) / 1000));
			continue;
		}
		ssize_t n = read(out[0], buf + got, sizeof(buf) - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == sizeof(buf) - 1)
			break;
	}
	buf[got] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	trim(buf);
	r = 0;
 out:
	kw_progress_end(&progress, false);
	close(out[0]);
	waitpid(pid, &status, 0);
	if (r == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
		snprintf(why, len, "the command failed (%s %d); nothing imported",
		    WIFEXITED(status) ? "exit status" : "signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		r = -1;
	} else if (r == 0 && !buf[0]) {
		snprintf(why, len, "the command printed nothing; nothing imported");
		r = -1;
	}
	if (r == 0 && !(*ret = strdup(buf)))
		r = -1;
	sodium_memzero(buf, sizeof(buf));
	return r;
}

static void
advise(const char *source)
{
	if (strncmp(source, "env:", 4) == 0)
		fprintf(stderr, "now remove the old copy: unset %s, and delete it from your shell "
		    "profile (~/.bashrc, ~/.zshrc)\n", kw_cli_safe(source + 4));
	else if (strncmp(source, "dotenv:", 7) == 0)
		fprintf(stderr, "now remove the old copy from %s\n", kw_cli_safe(source + 7));
	else
		fprintf(stderr, "the source stays where it was; the key is now also in keywarden\n");
}

static int
command_timeout(struct kw_cli *cli)
{
	struct kw_config *cfg = NULL;
	char err[256];
	int t = 30;

	if (kw_config_load(cli->config, true, &cfg, err, sizeof(err)) == 0) {
		t = (int)kw_config_int(cfg, "api.commandTimeout");
		kw_config_free(cfg);
	}
	return t;
}

int
kw_cli_key_store(struct kw_cli *cli, const char *what, const char *name, char *value,
    json_t **ret_result)
{
	json_t *args = json_pack("{s:s, s:s}", "name", name, "value", value);
	int ex;

	kw_secret_free(value);
	ex = args ? kw_cli_call(cli, what, "key.set", args, ret_result) : KW_EXIT_DENIED;
	json_decref(args);
	return ex;
}

int
kw_cmd_key_import(struct kw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	char *source = NULL, *value = NULL, why[512] = "";
	json_t *res = NULL;
	int c, r, ex;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'f')
			return kw_cli_bad_option(cli, argc, argv, opts);
		source = optarg;
	}
	if ((ex = kw_cli_args(cli, argc, argv, optind, "NAME")) != 0)
		return ex;
	if (!source)
		return kw_cli_usage(cli, "missing --from SOURCE");
	if (strncmp(source, "env:", 4) == 0 && source[4])
		r = from_env(source + 4, &value, why, sizeof(why));
	else if (strncmp(source, "dotenv:", 7) == 0 && source[7])
		r = from_dotenv(source + 7, &value, why, sizeof(why));
	else if (strncmp(source, "command:", 8) == 0 && source[8])
		r = from_command(source + 8, command_timeout(cli), &value, why, sizeof(why));
	else
		return kw_cli_usage(cli, "--from: '%.64s' is not env:VAR, dotenv:FILE[:VAR] or "
		    "command:CMD", kw_cli_safe(source));
	if (r < 0)
		return kw_cli_fail(KW_ERR_NOT_FOUND, "key import", "%s",
		    kw_cli_safe(why[0] ? why : "out of memory"));
	if ((ex = kw_cli_key_store(cli, "key import", argv[optind], value, &res)) != 0)
		return ex;
	if (cli->json)
		kw_cli_print_json(res);
	else
		printf("imported %s (version %lld) from %.64s%s\n", kw_cli_safe(argv[optind]),
		    (long long)json_integer_value(json_object_get(res, "version")),
		    kw_cli_safe(source),
		    strlen(source) > 64 ? "..." : "");
	advise(source);
	json_decref(res);
	return KW_EXIT_OK;
}
