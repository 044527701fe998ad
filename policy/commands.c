/*
 * commands.c - the command knowledge tables behind commands.h.
 *
 * A wrapper is described by the options that take a value (so the value is
 * not mistaken for the command it runs), the operands it takes before the
 * command (timeout's duration, chroot's directory), and whether it reads
 * NAME=VALUE words (env).  Unknown options are taken as flags: a wrapper
 * option we do not know that takes a value makes the value look like the
 * command, which is then decided -- a mistake towards "ask", not "allow".
 */
#include <stdio.h>
#include <string.h>

#include "policy/commands.h"

struct wrapper {
	const char *name;
	const char *short_val;		/* short options taking a value */
	const char *const *long_val;	/* long options taking a value (without "=") */
	unsigned positional;		/* operands before the command */
	bool assigns;			/* skips NAME=VALUE words (env) */
	char line_opt;			/* -X STRING runs STRING as a command line */
	const char *line_long;		/* --opt STRING / --opt=STRING likewise */
	char stop_opt;			/* -X means no command is run (command -v) */
	bool joins;			/* runs its operands joined into one command line,
					   which a shell parses again (watch, eval) */
};

static const char *const sudo_long[] = { "--user", "--group", "--host", "--prompt", "--chdir",
	"--chroot", "--role", "--type", "--command-timeout", "--other-user", "--close-from", NULL };
static const char *const env_long[] = { "--unset", "--chdir", "--split-string",
	"--default-signal", "--ignore-signal", "--block-signal", NULL };
static const char *const nice_long[] = { "--adjustment", NULL };
static const char *const timeout_long[] = { "--signal", "--kill-after", NULL };
static const char *const xargs_long[] = { "--arg-file", "--delimiter", "--eof", "--replace",
	"--max-lines", "--max-args", "--max-procs", "--max-chars", "--process-slot-var", NULL };
static const char *const chroot_long[] = { "--userspec", "--groups", NULL };
static const char *const watch_long[] = { "--interval", "--differences", NULL };
static const char *const su_long[] = { "--command", "--shell", "--group", "--supp-group",
	"--whitelist-environment", NULL };
static const char *const flock_long[] = { "--timeout", "--conflict-exit-code", "--command", NULL };
static const char *const strace_long[] = { "--output", "--trace", "--signal", "--attach",
	"--user", "--string-limit", NULL };
static const char *const none[] = { NULL };

static const struct wrapper wrappers[] = {
	{ "sudo", "CDghpRrtTUu", sudo_long, 0, false, 0, NULL, 0, false },
	{ "doas", "Cu", none, 0, false, 0, NULL, 0, false },
	{ "pkexec", "", (const char *const[]){ "--user", NULL }, 0, false, 0, NULL, 0, false },
	{ "env", "uCS", env_long, 0, true, 'S', "--split-string", 0, false },
	{ "nice", "n", nice_long, 0, false, 0, NULL, 0, false },
	{ "ionice", "cnpPut", none, 0, false, 0, NULL, 0, false },
	{ "timeout", "sk", timeout_long, 1, false, 0, NULL, 0, false },
	{ "nohup", "", none, 0, false, 0, NULL, 0, false },
	{ "stdbuf", "ioe", (const char *const[]){ "--input", "--output", "--error", NULL },
	    0, false, 0, NULL, 0, false },
	{ "command", "", none, 0, false, 0, NULL, 'v', false },
	{ "builtin", "", none, 0, false, 0, NULL, 0, false },
	{ "exec", "a", none, 0, false, 0, NULL, 0, false },
	{ "time", "fo", (const char *const[]){ "--format", "--output", NULL }, 0, false, 0,
	    NULL, 0, false },
	{ "xargs", "adEIiLlnPs", xargs_long, 0, false, 0, NULL, 0, false },
	{ "setsid", "", none, 0, false, 0, NULL, 0, false },
	{ "chroot", "", chroot_long, 1, false, 0, NULL, 0, false },
	{ "watch", "n", watch_long, 0, false, 0, NULL, 0, true },
	{ "eval", "", none, 0, false, 0, NULL, 0, true },
	/* busybox APPLET ARGS runs the applet: busybox rm is rm, busybox sh is sh. */
	{ "busybox", "", none, 0, false, 0, NULL, 0, false },
	{ "su", "sgG", su_long, 0, false, 'c', "--command", 0, false },
	{ "flock", "wE", flock_long, 1, false, 'c', "--command", 0, false },
	{ "strace", "abeEIoOpPsSuX", strace_long, 0, false, 0, NULL, 0, false },
	{ "ltrace", "aAeEnopsSuX", none, 0, false, 0, NULL, 0, false },
	{ "unbuffer", "", none, 0, false, 0, NULL, 0, false },
	{ "caffeinate", "t", none, 0, false, 0, NULL, 0, false },
	{ "taskset", "", none, 1, false, 0, NULL, 0, false },
	{ "chrt", "", none, 1, false, 0, NULL, 0, false },
	{ "proxychains", "f", none, 0, false, 0, NULL, 0, false },
	{ "proxychains4", "f", none, 0, false, 0, NULL, 0, false },
	{ "firejail", "", none, 0, false, 0, NULL, 0, false },
};

static const char *const shells[] = { "sh", "bash", "zsh", "dash", "ksh", "mksh", "ash",
	"fish", "csh", "tcsh", NULL };
static const char *const evals[] = { "source", ".", "trap", "alias", NULL };
static const char *const interpreters[] = { "python", "python2", "python3", "node", "nodejs",
	"perl", "ruby", "php", "lua", "luajit", "deno", "bun", "Rscript", "osascript", "tclsh",
	"awk", "gawk", "mawk", "nawk", "jq", NULL };
static const char *const net_tools[] = { "curl", "wget", "http", "https", "nc", "ncat",
	"netcat", "telnet", "socat", "ssh", "sftp", "scp", "rsync", "ftp", "git", NULL };

static bool
in(const char *const *list, const char *name)
{
	for (; *list; list++)
		if ((*list)[0] == name[0] && strcmp(*list, name) == 0)
			return true;
	return false;
}

/* python3.11 is python, pip3 is pip: the version suffix does not change the kind. */
static bool
in_versioned(const char *const *list, const char *name)
{
	char base[64];
	size_t n = strlen(name);

	if (in(list, name))
		return true;
	if (n >= sizeof(base))
		return false;
	memcpy(base, name, n + 1);
	while (n > 0 && (base[n - 1] == '.' || (base[n - 1] >= '0' && base[n - 1] <= '9')))
		base[--n] = '\0';
	return n > 0 && in(list, base);
}

static const struct wrapper *
wrapper_of(const char *name)
{
	for (size_t i = 0; i < KW_ELEMENTSOF(wrappers); i++)
		if (wrappers[i].name[0] == name[0] && strcmp(wrappers[i].name, name) == 0)
			return &wrappers[i];
	return NULL;
}

enum kw_cmd_kind
kw_cmd_kind(const char *name)
{
	if (wrapper_of(name))
		return KW_CMD_WRAPPER;
	if (in(shells, name))
		return KW_CMD_SHELL;
	if (in(evals, name))
		return KW_CMD_EVAL;
	if (in_versioned(interpreters, name))
		return KW_CMD_INTERPRETER;
	if (strcmp(name, "find") == 0)
		return KW_CMD_FIND;
	if (in(net_tools, name))
		return KW_CMD_NET;
	return KW_CMD_PLAIN;
}

/*
 * Join w[from..n) with spaces into line (watch's and eval's command is their
 * words).  A word expanded when the outer shell runs is parsed a second time
 * by the inner one: "$X" may hold "; rm -rf /", so such a line is opaque.
 */
static size_t
join(const struct kw_sh_word *w, size_t from, size_t n, char *line, size_t len)
{
	size_t used = 0;

	line[0] = '\0';
	for (size_t i = from; i < n; i++) {
		if (w[i].flags & KW_SH_DYNAMIC)
			return KW_CMD_OPAQUE;
		int k = snprintf(line + used, len - used, "%s%s", i > from ? " " : "", w[i].text);
		if (k < 0 || (size_t)k >= len - used)
			return KW_CMD_OPAQUE;
		used += (size_t)k;
	}
	return KW_CMD_LINE;
}

static size_t
line_from(const char *text, char *line, size_t len)
{
	if (snprintf(line, len, "%s", text) >= (int)len)
		return KW_CMD_OPAQUE;
	return KW_CMD_LINE;
}

/* One long option: --opt=VALUE, --opt VALUE, or a flag.  Returns words used. */
static size_t
long_option(const struct wrapper *wr, const struct kw_sh_word *w, size_t n, size_t i,
    size_t *ret_line, char *line, size_t len)
{
	const char *a = w[i].text, *eq = strchr(a, '=');
	size_t name_len = eq ? (size_t)(eq - a) : strlen(a);

	if (wr->line_long && strlen(wr->line_long) == name_len &&
	    strncmp(a, wr->line_long, name_len) == 0) {
		*ret_line = eq ? line_from(eq + 1, line, len) :
		    i + 1 < n ? line_from(w[i + 1].text, line, len) : KW_CMD_OPAQUE;
		return 1;
	}
	for (const char *const *l = wr->long_val; *l; l++)
		if (strlen(*l) == name_len && strncmp(a, *l, name_len) == 0)
			return eq ? 1 : 2;
	return 1;
}

size_t
kw_cmd_wrapped(const char *name, const struct kw_sh_word *w, size_t n, char *line,
    size_t line_len)
{
	const struct wrapper *wr = wrapper_of(name);
	size_t i = 1, pos = 0, found = 0;

	if (!wr)
		return n;
	while (i < n) {
		const char *a = w[i].text;
		if (w[i].flags & KW_SH_DYNAMIC && a[0] == '$')
			return KW_CMD_OPAQUE;
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] == '-' && a[1] == '-') {
			i += long_option(wr, w, n, i, &found, line, line_len);
			if (found)
				return found;
			continue;
		}
		/* Options may follow the operands before the command: flock FILE -c CMD. */
		if (a[0] == '-' && a[1]) {
			size_t k;
			for (k = 1; a[k]; k++) {
				if (wr->stop_opt && a[k] == wr->stop_opt)
					return n;
				if (wr->line_opt && a[k] == wr->line_opt)
					return a[k + 1] ? line_from(a + k + 1, line, line_len) :
					    i + 1 < n ? line_from(w[i + 1].text, line, line_len) :
					    KW_CMD_OPAQUE;
				if (strchr(wr->short_val, a[k])) {
					if (!a[k + 1])
						i++;	/* the value is the next word */
					break;
				}
			}
			i++;
			continue;
		}
		if (wr->assigns && strchr(a, '=') && a[0] != '=') {
			i++;
			continue;
		}
		if (pos < wr->positional) {
			pos++;
			i++;
			continue;
		}
		break;
	}
	if (wr->joins && i < n)
		return join(w, i, n, line, line_len);
	return i < n ? i : n;
}

static const char *const deleters[] = { "rm", "rmdir", "unlink", "shred", "srm", "wipe", NULL };
static const char *const writers[] = { "touch", "mkdir", "tee", "truncate", "chmod", "chown",
	"chgrp", "chattr", "setfacl", "mkfifo", "mknod", "install", "patch", NULL };
static const char *const movers[] = { "mv", NULL };
static const char *const copiers[] = { "cp", "ln", "link", "rsync", NULL };
static const char *const editors[] = { "sed", "perl", NULL };

enum kw_cmd_files
kw_cmd_files_of(const char *name)
{
	if (in(deleters, name))
		return KW_FILES_DELETE;
	if (in(writers, name))
		return KW_FILES_WRITE;
	if (in(movers, name))
		return KW_FILES_MOVE;
	if (in(copiers, name))
		return KW_FILES_COPY;
	if (in(editors, name))
		return KW_FILES_EDIT;
	if (strcmp(name, "dd") == 0)
		return KW_FILES_DD;
	return KW_FILES_READ;
}

static bool
has_option(const struct kw_sh_word *w, size_t n, const char *const *opts)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(w[i].text, "--") == 0)
			return false;
		for (const char *const *o = opts; *o; o++) {
			size_t len = strlen(*o);
			if (strncmp(w[i].text, *o, len) == 0 &&
			    ((*o)[1] == '-' ? (w[i].text[len] == '\0' || w[i].text[len] == '=') :
			    true))
				return true;
		}
	}
	return false;
}

size_t
kw_cmd_script_operands(const char *name, const struct kw_sh_word *w, size_t n)
{
	static const char *const script_opts[] = { "-e", "-f", "--expression", "--file",
		"--regexp", NULL };
	static const char *const first_not_file[] = { "chmod", "chown", "chgrp", "chattr",
		"setfacl", "sed", "grep", "egrep", "fgrep", "rg", "ag", "awk", "gawk", "perl", "jq",
		"truncate", NULL };

	if (!in(first_not_file, name))
		return 0;
	if (strcmp(name, "truncate") == 0)
		return 0;
	return has_option(w, n, script_opts) ? 0 : 1;
}

bool
kw_cmd_edits_in_place(const char *name, const struct kw_sh_word *w, size_t n)
{
	static const char *const in_place[] = { "-i", "--in-place", NULL };
	static const char *const perl_in_place[] = { "-i", "-pi", "-ni", NULL };

	return has_option(w, n, strcmp(name, "perl") == 0 ? perl_in_place : in_place);
}

bool
kw_cmd_one_liner(const char *name, const struct kw_sh_word *w, size_t n)
{
	static const char *const opts[] = { "-c", "-e", "-E", "-r", "-p", "--eval", "--print",
		"--command", "-x", NULL };

	/* awk's and jq's programs are their first operand: small languages that run no
	   commands except through system()/getline, which a one-liner can hide. */
	if (strcmp(name, "awk") == 0 || strcmp(name, "gawk") == 0 || strcmp(name, "mawk") == 0 ||
	    strcmp(name, "nawk") == 0) {
		for (size_t i = 0; i < n; i++)
			if (strstr(w[i].text, "system") || strstr(w[i].text, "| getline") ||
			    strstr(w[i].text, "|getline") || strstr(w[i].text, "print >") ||
			    strstr(w[i].text, "printf >") || strstr(w[i].text, "print>"))
				return true;
		return false;
	}
	if (strcmp(name, "jq") == 0)
		return false;
	if (strcmp(name, "deno") == 0 || strcmp(name, "bun") == 0)
		return has_option(w, n, opts) || (n > 0 && strcmp(w[0].text, "eval") == 0);
	return has_option(w, n, opts);
}

bool
kw_cmd_program_from_stdin(const struct kw_sh_word *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (w[i].text[0] != '-' || strcmp(w[i].text, "-") == 0)
			return strcmp(w[i].text, "-") == 0;
	return true;
}

bool
kw_cmd_find_exec(const char *word)
{
	return strcmp(word, "-exec") == 0 || strcmp(word, "-execdir") == 0 ||
	    strcmp(word, "-ok") == 0 || strcmp(word, "-okdir") == 0;
}

bool
kw_cmd_find_writes(const char *word)
{
	return strcmp(word, "-fprint") == 0 || strcmp(word, "-fprint0") == 0 ||
	    strcmp(word, "-fls") == 0;
}

bool
kw_cmd_dangerous_assign(const char *a)
{
	static const char *const vars[] = { "PATH", "BASH_ENV", "ENV", "IFS", "PROMPT_COMMAND",
		"GIT_SSH_COMMAND", "GIT_SSH", "GIT_EXEC_PATH", "GIT_EDITOR", "GIT_PAGER",
		"GIT_ASKPASS", "SSH_ASKPASS", "NODE_OPTIONS", "PYTHONSTARTUP", "PYTHONPATH",
		"PERL5OPT", "PERL5LIB", "RUBYOPT", "SHELLOPTS", "BASHOPTS", "PS4", "EDITOR", "VISUAL",
		"PAGER", "BROWSER", "LESSOPEN", NULL };
	size_t len = strcspn(a, "=");

	if (strncmp(a, "LD_", 3) == 0 || strncmp(a, "GIT_CONFIG", 10) == 0 ||
	    strncmp(a, "BASH_FUNC_", 10) == 0)
		return true;
	for (const char *const *v = vars; *v; v++)
		if (strlen(*v) == len && strncmp(a, *v, len) == 0)
			return true;
	return false;
}

/* Flags that are the same flag under another spelling, per command. */
static const struct {
	const char *cmd, *given, *rule;
} long_aliases[] = {
	{ "rm", "--recursive", "r" }, { "rm", "--force", "f" }, { "rm", "--dir", "d" },
	{ "cp", "--recursive", "r" }, { "cp", "--force", "f" },
	{ "chmod", "--recursive", "R" }, { "chown", "--recursive", "R" },
	{ "git", "--force", "f" }, { "git", "--force-with-lease", "f" }, { "git", "-f", "--force" },
	{ "git", "--force", "--force-with-lease" }, { "git", "--force-with-lease", "--force" },
	{ "git", "--hard", "--hard" },
	{ "shred", "--remove", "u" }, { "shred", "--zero", "z" },
};

static const struct {
	const char *cmd;
	char given, rule;
} short_aliases[] = {
	{ "rm", 'R', 'r' }, { "cp", 'R', 'r' }, { "cp", 'a', 'r' },
};

bool
kw_cmd_flag_alias(const char *name, const char *given_long, const char *rule_flag)
{
	size_t len = strcspn(given_long, "=");

	for (size_t i = 0; i < KW_ELEMENTSOF(long_aliases); i++)
		if (strcmp(long_aliases[i].cmd, name) == 0 &&
		    strlen(long_aliases[i].given) == len &&
		    strncmp(long_aliases[i].given, given_long, len) == 0 &&
		    strcmp(long_aliases[i].rule, rule_flag) == 0)
			return true;
	return false;
}

bool
kw_cmd_short_alias(const char *name, char given, char rule_flag)
{
	for (size_t i = 0; i < KW_ELEMENTSOF(short_aliases); i++)
		if (strcmp(short_aliases[i].cmd, name) == 0 && short_aliases[i].given == given &&
		    short_aliases[i].rule == rule_flag)
			return true;
	return false;
}

/* A short flag letter anywhere in a cluster ("-rn", "-nR"), or a long option. */
static bool
has_flag(const struct kw_sh_word *w, size_t n, const char *letters, const char *const *longs)
{
	for (size_t i = 0; i < n; i++) {
		const char *a = w[i].text;
		if (strcmp(a, "--") == 0)
			return false;
		if (a[0] != '-' || a[1] == '\0')
			continue;
		if (a[1] == '-') {
			for (const char *const *l = longs; *l; l++)
				if (strncmp(a, *l, strlen(*l)) == 0 &&
				    (a[strlen(*l)] == '\0' || a[strlen(*l)] == '='))
					return true;
		} else if (strpbrk(a + 1, letters)) {
			return true;
		}
	}
	return false;
}

/* Commands that walk the trees their operands name, and the flags that make them. */
static const struct {
	const char *cmd;
	const char *letters;		/* NULL: always walks */
	const char *const *longs;
} walkers[] = {
	{ "rg", NULL, NULL }, { "ag", NULL, NULL }, { "tar", NULL, NULL },
	{ "grep", "rR", (const char *const[]){ "--recursive", "--dereference-recursive", NULL } },
	{ "egrep", "rR", (const char *const[]){ "--recursive", "--dereference-recursive", NULL } },
	{ "fgrep", "rR", (const char *const[]){ "--recursive", "--dereference-recursive", NULL } },
	{ "cp", "rRa", (const char *const[]){ "--recursive", "--archive", NULL } },
	{ "ls", "R", (const char *const[]){ "--recursive", NULL } },
	{ "zip", "r", (const char *const[]){ "--recurse-paths", NULL } },
	{ "chmod", "R", (const char *const[]){ "--recursive", NULL } },
	{ "chown", "R", (const char *const[]){ "--recursive", NULL } },
	{ "chgrp", "R", (const char *const[]){ "--recursive", NULL } },
};

bool
kw_cmd_walks_tree(const char *name, const struct kw_sh_word *w, size_t n)
{
	for (size_t i = 0; i < KW_ELEMENTSOF(walkers); i++)
		if (strcmp(walkers[i].cmd, name) == 0)
			return !walkers[i].letters ||
			    has_flag(w, n, walkers[i].letters, walkers[i].longs);
	return false;
}

/* Options of ordinary commands whose value is a program they run. */
static const struct {
	const char *cmd, *opt;
} runs_opts[] = {
	{ "tar", "--to-command" }, { "tar", "--checkpoint-action" }, { "tar", "-I" },
	{ "tar", "--use-compress-program" }, { "tar", "--rsh-command" },
	{ "tar", "--info-script" }, { "tar", "--new-volume-script" }, { "tar", "-F" },
	{ "zip", "-TT" }, { "zip", "--unzip-command" }, { "sort", "--compress-program" },
	{ "split", "--filter" }, { "less", "+!" },
};

bool
kw_cmd_runs_option(const char *name, const char *word)
{
	for (size_t i = 0; i < KW_ELEMENTSOF(runs_opts); i++) {
		size_t len = strlen(runs_opts[i].opt);
		if (strcmp(runs_opts[i].cmd, name) == 0 &&
		    strncmp(word, runs_opts[i].opt, len) == 0 &&
		    (word[len] == '\0' || word[len] == '=' || runs_opts[i].opt[1] != '-'))
			return true;
	}
	return false;
}

/* git push REMOTE +REF forces that ref: the rules' --force, spelled as a refspec. */
bool
kw_cmd_implied_flag(const char *name, char *const *args, size_t n, const char *flag)
{
	bool push = false;

	if (strcmp(name, "git") != 0 || (strcmp(flag, "--force") != 0 && strcmp(flag, "f") != 0))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!push && strcmp(args[i], "push") == 0)
			push = true;
		else if (push && args[i][0] == '+' && args[i][1])
			return true;
	}
	return false;
}

/* chmod's mode 777, 0777, a+rwx, ugo=rwx: one mode, however written. */
static bool
mode_of(const char *s, unsigned *ret)
{
	static const char *const all_rwx[] = { "a+rwx", "a=rwx", "ugo+rwx", "ugo=rwx", NULL };
	unsigned v = 0;

	for (const char *const *m = all_rwx; *m; m++)
		if (strcmp(s, *m) == 0) {
			*ret = 0777;
			return true;
		}
	if (!*s || strlen(s) > 5)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '7')
			return false;
		v = v * 8 + (unsigned)(*s - '0');
	}
	*ret = v;
	return true;
}

bool
kw_cmd_same_operand(const char *name, const char *given, const char *rule_word)
{
	unsigned a, b;

	if (strcmp(given, rule_word) == 0)
		return true;
	return strcmp(name, "chmod") == 0 && mode_of(given, &a) && mode_of(rule_word, &b) &&
	    a == b;
}

/* The end of one sed s/// or y/// field at p (delimiter delim), past it. */
static const char *
sed_field(const char *p, char delim)
{
	for (; *p && *p != delim; p++)
		if (*p == '\\' && p[1])
			p++;
	return *p ? p + 1 : p;
}

/* One sed script: e runs a command, r/R/w/W open files, s///e and s///w likewise. */
static bool
sed_script_opens(const char *p)
{
	while (*p) {
		while (*p && strchr(" \t\n;{}!", *p))
			p++;
		/* An address: line numbers, $, first~step, /regex/, \cREGEXc, ranges. */
		while (*p && (strchr("0123456789$~,+ \t!", *p) || *p == '/' || *p == '\\')) {
			if (*p == '/')
				p = sed_field(p + 1, '/');
			else if (*p == '\\' && p[1])
				p = sed_field(p + 2, p[1]);
			else
				p++;
		}
		switch (*p) {
		case '\0':
			return false;
		case 'e': case 'r': case 'R': case 'w': case 'W': case 'F':
			return *p != 'F';
		case 's': case 'y':
			if (!p[1])
				return false;
			p = sed_field(sed_field(p + 2, p[1]), p[1]);
			for (; *p && !strchr(";\n}", *p); p++)
				if (*p == 'e' || *p == 'w' || *p == 'W')
					return true;
			break;
		case 'a': case 'i': case 'c':
			/* Text, to the end of the line. */
			while (*p && *p != '\n')
				p++;
			break;
		case ':': case 'b': case 't': case 'T':
			/* A label, to the end of the line or a ';'. */
			while (*p && *p != '\n' && *p != ';')
				p++;
			break;
		default:
			p++;
		}
	}
	return false;
}

bool
kw_cmd_sed_opens(const struct kw_sh_word *w, size_t n)
{
	bool given = false;

	for (size_t i = 0; i < n; i++) {
		const char *a = w[i].text;
		if (strcmp(a, "-e") == 0 || strcmp(a, "--expression") == 0) {
			given = true;
			if (i + 1 < n && sed_script_opens(w[++i].text))
				return true;
		} else if (strncmp(a, "--expression=", 13) == 0 || (strncmp(a, "-e", 2) == 0 && a[2])) {
			given = true;
			if (sed_script_opens(a[1] == '-' ? a + 13 : a + 2))
				return true;
		} else if (strcmp(a, "-f") == 0 || strncmp(a, "--file", 6) == 0) {
			given = true;	/* a script file: read, and decided as a file */
		} else if (a[0] != '-' && !given) {
			return sed_script_opens(a);
		}
	}
	return false;
}
