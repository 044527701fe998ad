/*
 * command.c - deciding a command line.
 *
 * The line is parsed (policy/shell/) into every simple command it would run,
 * substitutions and compound bodies included.  Each command is peeled like
 * an onion: a wrapper (sudo, env, timeout, xargs, find -exec, ...) is a
 * command decided on its own and then the command it runs is decided too;
 * "sh -c STRING" is parsed again, to a bounded depth.  Each command that
 * runs is an EXEC effect (the execution.* rules), its operands that name
 * files are READ/WRITE/DELETE effects (the path rules), and the hosts a
 * network tool reaches are NET effects (the network rules).
 *
 * What cannot be analysed -- eval of expanded text, source, an
 * interpreter's one-liner, a script file or a pipe fed to a shell, a command
 * name only known when it runs, a line that does not parse or is too long --
 * is an OPAQUE effect:
 * "ask", or "deny" in whitelist mode.  Never "allow".
 */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/errors.h"
#include "policy/commands.h"
#include "policy/match.h"
#include "policy/policy_internal.h"
#include "policy/shell/shell.h"

#define MAX_SHELL_DEPTH	4	/* sh -c "sh -c '...'" nesting decided */
#define MAX_ARGV_DEPTH	16	/* wrappers around wrappers */

struct eval {
	const struct kw_policy *p;
	const struct kw_policy_ctx *ctx;
	struct kw_decision *d;
	unsigned depth;		/* shells within shells */
};

static enum kw_verdict
opaque_verdict(const struct kw_policy *p)
{
	return p->whitelist_mode ? KW_VERDICT_DENY : KW_VERDICT_ASK;
}

static int
opaque(struct eval *ev, const char *what, const char *why)
{
	return kw_decision_add(ev->d, KW_EFFECT_OPAQUE, what, opaque_verdict(ev->p),
	    ev->p->whitelist_mode ? "security.execution.whitelistMode" : "security.execution",
	    "%s: %s", what, why);
}

const char *
kw_cmd_basename(const char *word)
{
	const char *slash = strrchr(word, '/');

	return slash && slash[1] ? slash + 1 : word;
}

/* Operands and flags of a command, for the command rules. */
static bool
flag_given(const char *name, const char *flag, char *const *args, size_t n)
{
	if (kw_cmd_implied_flag(name, args, n, flag))
		return true;
	for (size_t i = 0; i < n; i++) {
		const char *a = args[i];
		if (strcmp(a, "--") == 0)
			break;
		if (a[0] != '-' || a[1] == '\0')
			continue;
		if (a[1] == '-') {
			size_t len = strcspn(a, "=");
			if (strlen(flag) == len && strncmp(a, flag, len) == 0)
				return true;
			if (kw_cmd_flag_alias(name, a, flag))
				return true;
		} else {
			for (const char *c = a + 1; *c; c++) {
				char one[3] = { '-', *c, '\0' };
				if (flag[1] == '\0' && (*c == flag[0] ||
				    kw_cmd_short_alias(name, *c, flag[0])))
					return true;
				if (kw_cmd_flag_alias(name, one, flag))
					return true;
			}
		}
	}
	return false;
}

bool
kw_cmd_rule_matches(const struct kw_cmd_rule *rule, const char *name, char *const *args,
    size_t n)
{
	size_t w = 0;
	bool operands = true;

	if (strcmp(rule->name, name) != 0)
		return false;
	for (size_t i = 0; i < rule->n_flags; i++)
		if (!flag_given(name, rule->flags[i], args, n))
			return false;
	for (size_t i = 0; i < n && w < rule->n_words; i++) {
		if (operands && strcmp(args[i], "--") == 0)
			operands = false;
		else if ((!operands || args[i][0] != '-') &&
		    kw_cmd_same_operand(name, args[i], rule->words[w]))
			w++;
	}
	return w == rule->n_words;
}

static const struct kw_cmd_rule *
first_match(const struct kw_cmd_rules *rules, const char *name, char *const *args, size_t n)
{
	for (size_t i = 0; i < rules->n; i++)
		if (rules->v[i].name[0] == name[0] &&
		    kw_cmd_rule_matches(&rules->v[i], name, args, n))
			return &rules->v[i];
	return NULL;
}

/* The execution rules for one command. */
static int
decide_exec(struct eval *ev, const char *name, char *const *args, size_t n)
{
	const struct kw_policy *p = ev->p;
	const struct kw_cmd_rule *r;
	char rule[160];

	if ((r = first_match(&p->denied_cmds, name, args, n))) {
		snprintf(rule, sizeof(rule), "%s: %s", p->denied_cmds.key, r->text);
		return kw_decision_add(ev->d, KW_EFFECT_EXEC, name, KW_VERDICT_DENY, rule,
		    "\"%s\" is a denied command", r->text);
	}
	if (p->whitelist_mode) {
		if (!(r = first_match(&p->whitelist, name, args, n)))
			return kw_decision_add(ev->d, KW_EFFECT_EXEC, name, KW_VERDICT_DENY,
			    "security.execution.whitelistMode", "%s is not in "
			    "security.execution.whitelist (whitelist mode)", name);
		snprintf(rule, sizeof(rule), "%s: %s", p->whitelist.key, r->text);
		return kw_decision_add(ev->d, KW_EFFECT_EXEC, name, KW_VERDICT_ALLOW, rule,
		    "%s is in the whitelist", name);
	}
	if ((r = first_match(&p->allowed_cmds, name, args, n))) {
		snprintf(rule, sizeof(rule), "%s: %s", p->allowed_cmds.key, r->text);
		return kw_decision_add(ev->d, KW_EFFECT_EXEC, name, KW_VERDICT_ALLOW, rule,
		    "%s is an allowed command", name);
	}
	if (p->require_confirmation)
		return kw_decision_add(ev->d, KW_EFFECT_EXEC, name, KW_VERDICT_ASK,
		    "security.execution.requireConfirmation", "%s is not in "
		    "security.execution.allowedCommands: confirm it", name);
	return kw_decision_add(ev->d, KW_EFFECT_EXEC, name, KW_VERDICT_ALLOW, "",
	    "no rule restricts %s", name);
}

/* An operand names a file when it looks like a path or one exists by that name. */
static bool
path_like(const struct eval *ev, const struct kw_sh_word *w)
{
	struct stat st;
	char joined[4096];

	if (w->flags & (KW_SH_TILDE | KW_SH_GLOB) || strchr(w->text, '/') || w->text[0] == '.')
		return true;
	if (!ev->ctx->fs || w->text[0] == '\0')
		return false;
	if (snprintf(joined, sizeof(joined), "%s/%s", ev->ctx->cwd, w->text) >= (int)sizeof(joined))
		return false;
	return lstat(joined, &st) == 0;
}

/* $HOME and $PWD are known; the rest of a dynamic word is checked as written. */
static void
expand_known(const struct eval *ev, const char *text, char *out, size_t len)
{
	static const char *const vars[][2] = {
		{ "${HOME}", NULL }, { "$HOME", NULL }, { "${PWD}", "" }, { "$PWD", "" },
	};

	for (size_t i = 0; i < KW_ELEMENTSOF(vars); i++) {
		size_t n = strlen(vars[i][0]);
		if (strncmp(text, vars[i][0], n) == 0 && (text[n] == '/' || text[n] == '\0')) {
			snprintf(out, len, "%s%s", vars[i][1] ? ev->ctx->cwd : ev->ctx->home,
			    text + n);
			return;
		}
	}
	snprintf(out, len, "%s", text);
}

/*
 * An unquoted glob names the files it matches when it runs.  Where the file
 * system may be asked they are the files it matches now, each decided;
 * otherwise -- or for a pattern of many wildcard levels, costly to expand
 * -- the directory before the first wildcard is decided as a tree walked.
 */
static int
glob_effects(struct eval *ev, const char *text, enum kw_effect_kind access)
{
	enum { MAX_MATCHES = 256, MAX_LEVELS = 3 };
	char pattern[4096], *cut;
	unsigned levels = 0;
	glob_t g;
	int r = 0, n;

	n = text[0] == '~' && (text[1] == '/' || !text[1]) ?
	    snprintf(pattern, sizeof(pattern), "%s%s", ev->ctx->home, text + 1) :
	    text[0] == '/' ? snprintf(pattern, sizeof(pattern), "%s", text) :
	    snprintf(pattern, sizeof(pattern), "%s/%s", ev->ctx->cwd, text);
	if (n < 0 || (size_t)n >= sizeof(pattern))
		return opaque(ev, text, "a pattern too long to expand");
	for (const char *seg = pattern; seg; seg = strchr(seg + 1, '/'))
		if (strpbrk(seg, "*?[") && (!strchr(seg + 1, '/') ||
		    strpbrk(seg, "*?[") < strchr(seg + 1, '/')))
			levels++;
	if (ev->ctx->fs && levels <= MAX_LEVELS &&
	    glob(pattern, GLOB_NOSORT | GLOB_NOESCAPE, NULL, &g) == 0) {
		if (g.gl_pathc > MAX_MATCHES)
			r = opaque(ev, text, "a pattern that matches too many files to decide");
		for (size_t i = 0; i < g.gl_pathc && i < MAX_MATCHES && r >= 0; i++)
			r = kw_decide_path(ev->p, ev->ctx, ev->d, g.gl_pathv[i], access);
		globfree(&g);
		return r;
	}
	if (!(cut = strpbrk(pattern, "*?[")))
		return 0;
	while (cut > pattern && cut[-1] != '/')
		cut--;
	*cut = '\0';
	return kw_decide_tree(ev->p, ev->ctx, ev->d, pattern[0] ? pattern : "/", access);
}

static int
path_effect(struct eval *ev, const struct kw_sh_word *w, enum kw_effect_kind access)
{
	char text[4096];
	int r;

	if (w->flags & KW_SH_DYNAMIC && (strstr(w->text, "$(") || strchr(w->text, '`')) &&
	    strchr(w->text, '/'))
		return opaque(ev, w->text, "a path built by a command substitution cannot be "
		    "checked before it runs");
	expand_known(ev, w->text, text, sizeof(text));
	if ((r = kw_decide_path(ev->p, ev->ctx, ev->d, text, access)) < 0 ||
	    !(w->flags & KW_SH_GLOB))
		return r;
	return glob_effects(ev, text, access);
}

/* A walk of the tree a word names (its known variables expanded). */
static int
tree_effect(struct eval *ev, const struct kw_sh_word *w, enum kw_effect_kind access)
{
	char text[4096];

	expand_known(ev, w->text, text, sizeof(text));
	return kw_decide_tree(ev->p, ev->ctx, ev->d, text, access);
}

static int eval_argv(struct eval *ev, const struct kw_sh_word *w, size_t n,
    const struct kw_sh_cmd *cmd, unsigned nest);

/* The operands of a command that names files, by what the command does with them. */
static int
file_operands(struct eval *ev, const char *name, const struct kw_sh_word *w, size_t n)
{
	enum kw_cmd_files how = kw_cmd_files_of(name);
	size_t count = 0, skip = kw_cmd_script_operands(name, w, n);
	bool opts = true, walks = kw_cmd_walks_tree(name, w, n);
	int r;

	for (size_t i = 0; i < n; i++)
		if (!(w[i].text[0] == '-' && w[i].text[1]))
			count++;
	for (size_t i = 0, k = 0; i < n; i++) {
		const struct kw_sh_word *a = &w[i];
		enum kw_effect_kind access = KW_EFFECT_READ;
		const char *eq;
		if (opts && strcmp(a->text, "--") == 0) {
			opts = false;
			continue;
		}
		if (kw_cmd_runs_option(name, a->text) &&
		    (r = opaque(ev, name, "an option that runs a program")) < 0)
			return r;
		if (opts && a->text[0] == '-' && a->text[1]) {
			/* --file=PATH: the value is checked as a path when it looks like one. */
			if ((eq = strchr(a->text, '=')) && (eq[1] == '/' || eq[1] == '~' ||
			    eq[1] == '.')) {
				struct kw_sh_word v = { .text = (char *)eq + 1, .flags = a->flags };
				if ((r = path_effect(ev, &v, KW_EFFECT_READ)) < 0)
					return r;
			}
			continue;
		}
		/* Operands that are not files: chmod's mode, sed's script, grep's pattern. */
		if (++k <= skip)
			continue;
		switch (how) {
		case KW_FILES_DELETE:	access = KW_EFFECT_DELETE; break;
		case KW_FILES_WRITE:	access = KW_EFFECT_WRITE; break;
		case KW_FILES_MOVE:	access = k == count ? KW_EFFECT_WRITE : KW_EFFECT_DELETE; break;
		case KW_FILES_COPY:	access = k == count && count > 1 ? KW_EFFECT_WRITE :
					    KW_EFFECT_READ; break;
		case KW_FILES_EDIT:	access = kw_cmd_edits_in_place(name, w, n) ?
					    KW_EFFECT_WRITE : KW_EFFECT_READ; break;
		case KW_FILES_DD:
			/* dd if=IN of=OUT: the operands are KEY=VALUE. */
			if (strncmp(a->text, "if=", 3) != 0 && strncmp(a->text, "of=", 3) != 0)
				continue;
			struct kw_sh_word v = { .text = a->text + 3, .flags = a->flags };
			if ((r = path_effect(ev, &v, a->text[0] == 'o' ? KW_EFFECT_WRITE :
			    KW_EFFECT_READ)) < 0)
				return r;
			continue;
		case KW_FILES_READ:
		default:
			if (!path_like(ev, a))
				continue;
		}
		if ((r = path_effect(ev, a, access)) < 0)
			return r;
		/* grep -r reads the tree, chmod -R changes it; cp -r's target is only added to. */
		if (walks && (access == KW_EFFECT_READ || how == KW_FILES_WRITE) &&
		    (r = tree_effect(ev, a, access)) < 0)
			return r;
	}
	return 0;
}

/* Hosts a network tool reaches, and the files its options name. */
static int
net_operands(struct eval *ev, const char *name, const struct kw_sh_word *w, size_t n)
{
	enum { MAX_ITEMS = 64 };
	_cleanup_free_ struct kw_net_item *items = calloc(MAX_ITEMS, sizeof(*items));
	size_t k;
	int r = 0;

	if (!items)
		return KW_ERR_NOMEM;
	k = kw_cmd_net_scan(name, w, n, items, MAX_ITEMS);
	for (size_t i = 0; i < k && r >= 0; i++) {
		struct kw_sh_word v = { .text = items[i].text,
		    .flags = items[i].text[0] == '~' ? KW_SH_TILDE : 0 };
		switch (items[i].what) {
		case KW_NET_HOST:	r = kw_decide_net(ev->p, ev->d, items[i].text, name); break;
		case KW_NET_UNKNOWN:	r = kw_decide_net(ev->p, ev->d, NULL, name); break;
		case KW_NET_OPAQUE:	r = opaque(ev, name, items[i].text); break;
		case KW_NET_READ:	r = path_effect(ev, &v, KW_EFFECT_READ); break;
		case KW_NET_WRITE:	r = path_effect(ev, &v, KW_EFFECT_WRITE); break;
		}
	}
	return r;
}

/* Shells: -c STRING is parsed again; a here-document is their program too. */
static int
eval_shell(struct eval *ev, const char *name, const struct kw_sh_word *w, size_t n,
    const struct kw_sh_cmd *cmd)
{
	struct eval inner = *ev;
	size_t i;

	for (i = 0; i < n && w[i].text[0] == '-' && strcmp(w[i].text, "--") != 0; i++)
		if (strchr(w[i].text + 1, 'c') && w[i].text[1] != '-') {
			if (i + 1 >= n)
				return opaque(ev, name, "-c without a command");
			if (ev->depth >= MAX_SHELL_DEPTH)
				return opaque(ev, name, "shells nested too deep to analyse");
			if (w[i + 1].flags & KW_SH_DYNAMIC)
				return opaque(ev, name, "runs a command string only known when it runs");
			inner.depth++;
			return kw_decide_line(ev->p, ev->ctx, ev->d, w[i + 1].text, inner.depth);
		}
	if (i < n && strcmp(w[i].text, "--") == 0)
		i++;
	if (i < n) {
		int r = path_effect(ev, &w[i], KW_EFFECT_READ);
		return r < 0 ? r : opaque(ev, name, "runs a script file this policy cannot read");
	}
	for (size_t k = 0; k < cmd->n_redirs; k++) {
		const struct kw_sh_redir *rd = &cmd->redirs[k];
		const char *prog = rd->op == KW_SH_R_HEREDOC ? rd->body :
		    rd->op == KW_SH_R_HERESTRING ? rd->target.text : NULL;
		if (rd->op == KW_SH_R_IN)
			return opaque(ev, name, "runs commands read from a file");
		if (!prog)
			continue;
		if (ev->depth >= MAX_SHELL_DEPTH)
			return opaque(ev, name, "shells nested too deep to analyse");
		return kw_decide_line(ev->p, ev->ctx, ev->d, prog, ev->depth + 1);
	}
	return opaque(ev, name, cmd->piped_in ? "runs commands read from a pipe" :
	    "starts a shell whose commands are not known");
}

/* find: its start paths are read; -exec/-ok run commands; -delete deletes. */
static int
eval_find(struct eval *ev, const struct kw_sh_word *w, size_t n, const struct kw_sh_cmd *cmd,
    unsigned nest)
{
	bool deletes = false;
	size_t i, j;
	int r;

	for (i = 0; i < n; i++)
		if (strcmp(w[i].text, "-delete") == 0)
			deletes = true;
	for (i = 0; i < n && w[i].text[0] != '-' && strcmp(w[i].text, "(") != 0 &&
	    strcmp(w[i].text, "!") != 0; i++)
		if ((r = path_effect(ev, &w[i], deletes ? KW_EFFECT_DELETE : KW_EFFECT_READ)) < 0 ||
		    (r = tree_effect(ev, &w[i], deletes ? KW_EFFECT_DELETE : KW_EFFECT_READ)) < 0)
			return r;
	for (; i < n; i++) {
		if (kw_cmd_find_exec(w[i].text)) {
			for (j = i + 1; j < n && strcmp(w[j].text, ";") != 0 &&
			    strcmp(w[j].text, "+") != 0; j++)
				;
			if ((r = eval_argv(ev, &w[i + 1], j - i - 1, cmd, nest + 1)) < 0)
				return r;
			i = j;
		} else if (kw_cmd_find_writes(w[i].text) && i + 1 < n) {
			if ((r = path_effect(ev, &w[++i], KW_EFFECT_WRITE)) < 0)
				return r;
		}
	}
	return 0;
}

static int
leaf_line(struct eval *ev, const struct kw_sh_word *w, size_t n)
{
	char line[512];
	size_t used = 0;

	for (size_t i = 0; i < n && used + 1 < sizeof(line); i++) {
		size_t k = strlen(w[i].text);
		if (i)
			line[used++] = ' ';
		if (k > sizeof(line) - 1 - used)
			k = sizeof(line) - 1 - used;
		memcpy(line + used, w[i].text, k);
		used += k;
	}
	line[used] = '\0';
	return kw_decision_leaf(ev->d, line);
}

/* A wrapper runs the command after its options, or a command string. */
static int
eval_wrapped(struct eval *ev, const char *name, const struct kw_sh_word *w, size_t n,
    const struct kw_sh_cmd *cmd, unsigned nest)
{
	_cleanup_free_ char *line = malloc(KW_SH_MAX_LINE + 1);
	size_t next;

	if (!line)
		return KW_ERR_NOMEM;
	next = kw_cmd_wrapped(name, w, n, line, KW_SH_MAX_LINE + 1);
	if (next == KW_CMD_LINE)
		return ev->depth < MAX_SHELL_DEPTH ?
		    kw_decide_line(ev->p, ev->ctx, ev->d, line, ev->depth + 1) :
		    opaque(ev, name, "shells nested too deep to analyse");
	if (next == KW_CMD_OPAQUE)
		return opaque(ev, name, "runs something this policy cannot read");
	/* env PATH=/tmp ls: the same assignments as a PATH=/tmp prefix. */
	for (size_t i = 1; i < next && i < n; i++)
		if (w[i].text[0] != '-' && strchr(w[i].text, '=') &&
		    kw_cmd_dangerous_assign(w[i].text)) {
			int r = opaque(ev, w[i].text, "changes what the command runs or loads");
			if (r < 0)
				return r;
		}
	return next < n ? eval_argv(ev, w + next, n - next, cmd, nest + 1) : 0;
}

/* One command's words, from its name on (a wrapper recurses into what it runs). */
static int
eval_argv(struct eval *ev, const struct kw_sh_word *w, size_t n, const struct kw_sh_cmd *cmd,
    unsigned nest)
{
	char *args[256];
	const char *name;
	size_t na;
	int r, kind;

	if (n == 0)
		return 0;
	if (nest > MAX_ARGV_DEPTH)
		return opaque(ev, w[0].text, "wrappers nested too deep to analyse");
	if (w[0].flags & (KW_SH_DYNAMIC | KW_SH_GLOB))
		return opaque(ev, w[0].text, "the command's name is only known when it runs");
	name = kw_cmd_basename(w[0].text);
	if ((r = leaf_line(ev, w, n)) < 0)
		return r;
	na = n - 1 < KW_ELEMENTSOF(args) ? n - 1 : KW_ELEMENTSOF(args);
	for (size_t i = 0; i < na; i++)
		args[i] = w[i + 1].text;
	if ((r = decide_exec(ev, name, args, na)) < 0)
		return r;
	kind = kw_cmd_kind(name);
	switch (kind) {
	case KW_CMD_WRAPPER:
		return eval_wrapped(ev, name, w, n, cmd, nest);
	case KW_CMD_SHELL:
		return eval_shell(ev, name, w + 1, n - 1, cmd);
	case KW_CMD_EVAL:
		if ((r = file_operands(ev, name, w + 1, n - 1)) < 0)
			return r;
		return opaque(ev, name, "runs code that is only known when it runs");
	case KW_CMD_INTERPRETER:
		if (kw_cmd_one_liner(name, w + 1, n - 1))
			return opaque(ev, name, "a one-liner is code this policy cannot read");
		if (kw_cmd_program_from_stdin(w + 1, n - 1) &&
		    (cmd->piped_in || cmd->n_redirs > 0))
			return opaque(ev, name, "runs a program read from its input");
		return file_operands(ev, name, w + 1, n - 1);
	case KW_CMD_FIND:
		return eval_find(ev, w + 1, n - 1, cmd, nest);
	case KW_CMD_NET:
		if ((r = net_operands(ev, name, w + 1, n - 1)) < 0)
			return r;
		/* git diff --no-index, git show: git reads files too. */
		return strcmp(name, "git") == 0 ? file_operands(ev, name, w + 1, n - 1) : 0;
	default:
		if (strcmp(name, "sed") == 0 && kw_cmd_sed_opens(w + 1, n - 1) &&
		    (r = opaque(ev, name, "a script that runs commands or opens files "
		    "(e, r, w, s///e)")) < 0)
			return r;
		return file_operands(ev, name, w + 1, n - 1);
	}
}

/* Redirections: their targets are files read or written. */
static int
eval_redirs(struct eval *ev, const struct kw_sh_cmd *cmd)
{
	int r;

	for (size_t i = 0; i < cmd->n_redirs; i++) {
		const struct kw_sh_redir *rd = &cmd->redirs[i];
		enum kw_effect_kind access;
		switch (rd->op) {
		case KW_SH_R_IN:	access = KW_EFFECT_READ; break;
		case KW_SH_R_OUT:
		case KW_SH_R_APPEND:
		case KW_SH_R_INOUT:	access = KW_EFFECT_WRITE; break;
		default:		continue;
		}
		if (rd->target.flags & KW_SH_DYNAMIC && !strstr(rd->target.text, "$HOME") &&
		    !strstr(rd->target.text, "${HOME}")) {
			if ((r = opaque(ev, rd->target.text, "a redirection to a file only known "
			    "when it runs")) < 0)
				return r;
			continue;
		}
		if ((r = path_effect(ev, &rd->target, access)) < 0)
			return r;
	}
	return 0;
}

/* Assignments that change what a command runs or loads make it unknowable. */
static int
eval_assigns(struct eval *ev, const struct kw_sh_cmd *cmd)
{
	for (size_t i = 0; i < cmd->n_assigns; i++)
		if (kw_cmd_dangerous_assign(cmd->assigns[i].text))
			return opaque(ev, cmd->assigns[i].text, "changes what the command runs or "
			    "loads");
	return 0;
}

static int eval_cmds(struct eval *ev, const struct kw_sh_script *s, size_t from,
    unsigned cds);

/*
 * cd DIR (pushd DIR): the commands after it run there -- or, when it fails
 * or sits in a subshell, where they were.  So they are decided again from
 * DIR; relative paths such as "cd .. && cat .aws/credentials" meet the
 * rules where they lead.  A directory only known when it runs is opaque.
 */
static int
eval_cd(struct eval *ev, const struct kw_sh_script *s, const struct kw_sh_cmd *c, size_t next,
    unsigned cds)
{
	enum { MAX_CDS = 4 };
	const struct kw_sh_word *dir = NULL;
	struct kw_policy_ctx moved = *ev->ctx;
	struct eval inner = *ev;
	struct kw_resolved *rp;
	char text[4096];
	int r;

	for (size_t i = 1; i < c->argc && !dir; i++)
		if (c->argv[i].text[0] != '-' || strcmp(c->argv[i].text, "-") == 0)
			dir = &c->argv[i];
	if (next >= s->n_cmds)
		return 0;
	if (dir && (dir->flags & (KW_SH_DYNAMIC | KW_SH_GLOB) || strcmp(dir->text, "-") == 0))
		return opaque(ev, dir->text, "a directory only known when it runs: the commands "
		    "after it cannot be placed");
	if (cds >= MAX_CDS)
		return opaque(ev, "cd", "too many directory changes to follow");
	expand_known(ev, dir ? dir->text : "~", text, sizeof(text));
	if (!(rp = malloc(sizeof(*rp))))
		return KW_ERR_NOMEM;
	if (kw_path_resolve_cached(text, ev->ctx->cwd, ev->ctx->home, ev->ctx->fs,
	    kw_decision_dirs(ev->d), rp) < 0) {
		free(rp);
		return opaque(ev, text, "a directory that cannot be resolved here");
	}
	moved.cwd = rp->real;
	inner.ctx = &moved;
	r = eval_cmds(&inner, s, next, cds + 1);
	free(rp);
	return r;
}

static int
eval_cmds(struct eval *ev, const struct kw_sh_script *s, size_t from, unsigned cds)
{
	int r;

	for (size_t i = from; i < s->n_cmds; i++) {
		const struct kw_sh_cmd *c = &s->cmds[i];
		const char *name = c->argc ? c->argv[0].text : "";
		if ((r = eval_assigns(ev, c)) < 0 || (r = eval_redirs(ev, c)) < 0 ||
		    (r = eval_argv(ev, c->argv, c->argc, c, 0)) < 0)
			return r;
		if ((strcmp(name, "cd") == 0 || strcmp(name, "pushd") == 0) &&
		    (r = eval_cd(ev, s, c, i + 1, cds)) < 0)
			return r;
	}
	return 0;
}

int
kw_decide_line(const struct kw_policy *p, const struct kw_policy_ctx *ctx,
    struct kw_decision *d, const char *line, unsigned depth)
{
	struct eval ev = { .p = p, .ctx = ctx, .d = d, .depth = depth };
	struct kw_sh_script *s = NULL;
	size_t len = strlen(line);
	int r;

	if (len > KW_SH_MAX_LINE)
		return opaque(&ev, "command line", "longer than 10 KB, too long to analyse");
	r = kw_sh_parse(line, len, &s);
	if (r == KW_ERR_NOMEM || !s)
		return KW_ERR_NOMEM;
	if (r < 0 && (r = opaque(&ev, "command line", s->error[0] ? s->error :
	    "does not parse")) < 0)
		goto out;
	r = eval_cmds(&ev, s, 0, 0);
 out:
	kw_sh_free(s);
	return r;
}
