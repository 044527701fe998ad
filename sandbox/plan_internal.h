/*
 * plan_internal.h - how plan.c and its helpers (plan_grants.c: the Landlock
 * grants and the hides; plan_exec.c: the command and its interpreters;
 * plan_net.c: the network mode; plan_json.c: the JSON view) share the plan
 * they are building.  Not for the rest of the sandbox: it reads the plan
 * through sandbox.h and the two accessors in sandbox_internal.h.
 */
#ifndef KW_SANDBOX_PLAN_INTERNAL_H
#define KW_SANDBOX_PLAN_INTERNAL_H

#include "sandbox/sandbox_internal.h"

/* The plan with its private part; kw_sandbox_plan_build allocates this. */
struct kw_sb_plan_priv {
	struct kw_sandbox_plan pub;	/* first: the caller's pointer is this */
	char level[160];		/* kw_sandbox_plan_level */
	char *command;			/* argv[0] resolved through PATH (not realpath'd) */
	char *workdir;			/* made by the plan: tmp/ (TMPDIR) and the hide file */
	char *empty_file;		/* workdir/empty: mode 0, bound over hidden files */
	size_t warn_len;		/* bytes of pub.warnings, the last NUL included */
	char **denied;			/* deniedPaths as given and realpath'd, for within() */
	size_t n_denied;
};

static inline struct kw_sb_plan_priv *
kw_sb_priv(const struct kw_sandbox_plan *plan)
{
	return (struct kw_sb_plan_priv *)plan;
}

/* Add s (copied) to a NULL-terminated vector unless it is there already.  0 or NOMEM. */
int kw_sb_strv_add(char ***v, size_t *n, const char *s) KW_WUR KW_NONNULL(1, 2, 3);
void kw_sb_strv_free(char **v, size_t n);

/* A note for the caller to print (plan->warnings).  0 or NOMEM. */
int kw_sb_plan_warn(struct kw_sb_plan_priv *pp, const char *fmt, ...) KW_PRINTF(2, 3) KW_WUR;
/* A shortfall: "what: why (what to do)".  0 or NOMEM. */
int kw_sb_plan_missing(struct kw_sb_plan_priv *pp, const char *fmt, ...) KW_PRINTF(2, 3) KW_WUR;

/* plan_grants.c: whether a real path lies inside a denied path. */
bool kw_sb_plan_denied(const struct kw_sb_plan_priv *pp, const char *real) KW_NONNULL(1, 2);

/*
 * plan_grants.c: every grant (user, system, /etc, devices, /proc, the
 * tmpdir, the claude profile's) and then the hides.  0, KW_ERR_INVALID
 * with err (the cwd under a denied path), KW_ERR_IO, KW_ERR_NOMEM.
 */
int kw_sb_plan_grants(struct kw_sb_plan_priv *pp, const struct kw_sandbox_policy *policy,
    const struct kw_sandbox_caps *caps, const struct kw_sandbox_request *req, char *err,
    size_t err_len) KW_WUR;
int kw_sb_plan_grant(struct kw_sb_plan_priv *pp, const char *path, unsigned rights,
    const char *why, bool quiet) KW_WUR;

/* plan_exec.c: resolve argv[0] (pp->command) and fill exec_paths for LIST/ONCE. */
int kw_sb_plan_command(struct kw_sb_plan_priv *pp, const struct kw_sandbox_policy *policy,
    const struct kw_sandbox_request *req, char *err, size_t err_len) KW_WUR;
/* plan_exec.c: resolve a program name through PATH into out; 0 or KW_ERR_NOT_FOUND. */
int kw_sb_which(const char *name, const char *env_path, const char *cwd, char *out,
    size_t out_len) KW_WUR;

/* plan_net.c: the network mode, proxy socket and forwards. */
int kw_sb_plan_net(struct kw_sb_plan_priv *pp, const struct kw_sandbox_policy *policy,
    const struct kw_sandbox_caps *caps, const struct kw_sandbox_request *req, char *err,
    size_t err_len) KW_WUR;

#endif
