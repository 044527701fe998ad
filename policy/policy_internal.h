/*
 * policy_internal.h - the compiled policy and the helpers its parts share.
 * Not for use outside policy/.
 */
#ifndef KW_POLICY_INTERNAL_H
#define KW_POLICY_INTERNAL_H

#include <stdarg.h>

#include "policy/detect/detect.h"
#include "policy/match.h"
#include "policy/policy.h"

/* A list of strings from one setting, kept with the setting's name for rules. */
struct kw_strs {
	const char *key;	/* "security.deniedPaths" (static) */
	char **v;
	size_t n;
};

/*
 * A command rule, "rm -rf" or "git push --force": the command's name, the
 * words that must appear among its operands in order, and the flags that
 * must all be given (short flags one letter each, so "-rf" is "r" and "f";
 * long flags by name).
 */
struct kw_cmd_rule {
	char *text;		/* as written, for the rule text */
	char *name;
	char **words;
	size_t n_words;
	char **flags;		/* "r", "f", "--force" */
	size_t n_flags;
};

struct kw_cmd_rules {
	const char *key;
	struct kw_cmd_rule *v;
	size_t n;
};

struct kw_policy {
	struct kw_strs allowed_paths, denied_paths, exclude, sensitive;
	char **exclude_lit;	/* per exclude pattern, a run of text every path it matches
				   holds (".pem" for the pattern of .pem files), or NULL: a cheap test first */
	bool read_only, detect_sensitive;
	struct kw_detector *secrets;	/* the secret rules, for a small file's content
					   (detectSensitiveFiles); NULL when that is off */
	struct kw_cmd_rules allowed_cmds, denied_cmds, whitelist;
	bool require_confirmation, whitelist_mode;
	struct kw_strs allowed_hosts, allowed_domains;
	bool allow_outbound, enforce_https;
	enum kw_verdict unknown_tools;
};

/*
 * The path lists' entries made absolute for one decision ("~/x" and "./x"
 * depend on the caller's home and working directory, which a "cd" in the
 * line may change): built on first use, kept with the decision.
 */
struct kw_path_memo {
	struct kw_path_cache dirs;	/* plain directories seen in this decision */
	char cwd[4096];		/* the working directory the entries were made for */
	char **allowed;		/* NULL where an entry cannot be made absolute */
	char **denied;
	size_t n_allowed, n_denied;
};

/* Forget the entries a memo made absolute (the directory cache stays). */
void kw_path_memo_clear(struct kw_path_memo *m);

/* The decision's cache of plain directories (NULL when out of memory: none). */
struct kw_path_cache *kw_decision_dirs(struct kw_decision *d);

/* Start an empty decision for action.  NULL on ENOMEM. */
struct kw_decision *kw_decision_new(const char *action);

/*
 * Add an effect with its verdict, rule ("" or the setting that decided) and
 * a reason (printf).  The decision's verdict follows the most restrictive
 * effect.  0 or KW_ERR_NOMEM.
 */
int kw_decision_add(struct kw_decision *d, enum kw_effect_kind kind, const char *name,
    enum kw_verdict verdict, const char *rule, const char *fmt, ...) KW_PRINTF(6, 7);

/* Record a leaf command line as decided (for explain).  0 or KW_ERR_NOMEM. */
int kw_decision_leaf(struct kw_decision *d, const char *line);

/* Decide one file access on path (as written by the tool) into d. */
int kw_decide_path(const struct kw_policy *p, const struct kw_policy_ctx *ctx,
    struct kw_decision *d, const char *path, enum kw_effect_kind access);

/* Decide a walk of the tree at path (grep -r, chmod -R, a search) into d: a denied path
   under it makes a read a question and any other access a refusal.  Adds nothing
   when none is; kw_decide_path decides the root itself. */
int kw_decide_tree(const struct kw_policy *p, const struct kw_policy_ctx *ctx,
    struct kw_decision *d, const char *path, enum kw_effect_kind access);
/* Decide reaching url_or_host (host "" or NULL: not known) into d; how says by what
   ("curl", "WebFetch") for the reason. */
int kw_decide_net(const struct kw_policy *p, struct kw_decision *d, const char *url_or_host,
    const char *how);

/* Decide a command line into d (depth: shells within shells). */
int kw_decide_line(const struct kw_policy *p, const struct kw_policy_ctx *ctx,
    struct kw_decision *d, const char *line, unsigned depth);

/* The basename of a command word ("/usr/bin/rm" -> "rm"). */
const char *kw_cmd_basename(const char *word);

/* Whether a command (name and its operands) matches a rule. */
bool kw_cmd_rule_matches(const struct kw_cmd_rule *rule, const char *name,
    char *const *args, size_t n_args);

#endif
