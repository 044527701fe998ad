/*
 * sandbox.h - confine a command, and all it starts, with the kernel:
 * Landlock (files, TCP, scoping), seccomp (libseccomp), and unprivileged
 * user + mount + network namespaces.  Used by `keywarden run` and
 * `keywarden exec --sandbox`; the policy comes from the broker (the
 * administrator's), never from a file the confined user controls.
 *
 * Three steps, each its own file:
 *   detect.c   what the machine offers (kw_sandbox_detect);
 *   plan.c     the policy + what the machine offers -> exactly what will be
 *              applied, or what is missing (kw_sandbox_plan_build);
 *   launch.c   fork, apply the plan in the child, exec, and serve the
 *              child from the parent (exec guard, network filter) until it
 *              ends (kw_sandbox_launch).
 * The kernel parts are landlock.c, seccomp.c, namespaces.c (mounts,
 * loopback), exec_guard.c (seccomp user notification: the first execve
 * only), and net_*.c + connect_parse.c (the CONNECT filter and loopback forwards of the parent's
 * side).  Nothing here talks to the broker or logs: callers do.
 */
#ifndef KW_SANDBOX_H
#define KW_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "common/macros.h"

/* What this machine offers.  Filled by kw_sandbox_detect. */
struct kw_sandbox_caps {
	int landlock_abi;	/* 0: none (not built in, disabled, or refused) */
	bool userns;		/* an unprivileged user namespace can be made (probed) */
	bool seccomp;		/* seccomp filters can be loaded (probed) */
	bool seccomp_notify;	/* user notification with CONTINUE (kernel >= 5.5) */
	char why_not[256];	/* for each false above, the reason, "; "-separated */
};

/*
 * Probe the machine: the Landlock ABI (landlock_create_ruleset's version),
 * a user namespace (a short-lived child calls unshare(CLONE_NEWUSER |
 * CLONE_NEWNS | CLONE_NEWNET)), and seccomp (prctl(PR_GET_SECCOMP) and
 * the notification API's version).  "without" lists features to pretend
 * are missing ("userns", "seccomp", "landlock", "landlock-net"; NULL or
 * "": none), for tests of the fallbacks and for a user who wants them off.
 * Never fails: what cannot be probed is absent, with its reason.
 */
void kw_sandbox_detect(struct kw_sandbox_caps *caps, const char *without) KW_NONNULL(1);

/*
 * The policy to apply, as the broker sends it (sandbox.begin's "policy",
 * see broker/policy/op_sandbox.c) with "~" already expanded for the
 * caller, then tightened by the user's profile (kw_sandbox_policy_tighten).
 * Every path is absolute.  Owned: kw_sandbox_policy_free.
 */
struct kw_sandbox_policy {
	bool enabled;		/* security.sandbox.enabled: a shortfall refuses */
	bool allow_network;	/* security.sandbox.allowNetwork && network.allowOutbound */
	bool allow_exec;	/* security.sandbox.allowExec */
	bool read_only;		/* security.readOnly */
	char **allowed_paths;	/* security.allowedPaths (empty: the cwd only) */
	size_t n_allowed;
	char **read_only_paths;	/* granted read-only whatever read_only says (a profile's) */
	size_t n_read_only;
	char **denied_paths;	/* security.deniedPaths */
	size_t n_denied;
	char **exclude_patterns;	/* security.excludePatterns (globs, policy/match.h) */
	size_t n_exclude;
	bool whitelist_mode;	/* security.execution.whitelistMode */
	char **whitelist;	/* security.execution.whitelist: program names or paths */
	size_t n_whitelist;
	char **allowed_hosts;	/* security.network.allowedHosts (exact names) */
	size_t n_hosts;
	char **allowed_domains;	/* security.network.allowedDomains (name or a subdomain) */
	size_t n_domains;
	char *home;		/* the caller's home, from the broker's password database */
	char *profile;		/* "default", "claude", or the user's profile file's name */
};

/*
 * Build a policy from sandbox.begin's "policy" object (borrowed).  0, or
 * KW_ERR_INVALID with err saying which member is missing or of the wrong
 * type, or KW_ERR_NOMEM.
 */
int kw_sandbox_policy_from_json(const json_t *obj, struct kw_sandbox_policy **ret,
    char *err, size_t err_len) KW_WUR KW_NONNULL(1, 2, 3);

/*
 * Tighten policy with the user's profile file (JSON: "readOnly",
 * "allowNetwork", "allowExec" booleans, "allowedPaths", "readOnlyPaths"
 * lists of absolute paths).  A boolean may only go the strict way, and
 * each path must lie inside what the policy already grants (an allowed
 * path, or the cwd when there are none): anything else is refused, never
 * ignored.  The file must be a regular file owned by the caller and not
 * writable by others.  0, or KW_ERR_INVALID / KW_ERR_IO / KW_ERR_DENIED
 * with err naming the file and the entry.
 */
int kw_sandbox_policy_tighten(struct kw_sandbox_policy *policy, const char *profile_file,
    const char *cwd, char *err, size_t err_len) KW_WUR KW_NONNULL(1, 2, 3, 4);

void kw_sandbox_policy_free(struct kw_sandbox_policy *policy);

/* Landlock access bits this file uses, ABI by ABI (Debian 12's header stops at 2). */
#define KW_SB_READ	(1u << 0)	/* read files, list directories */
#define KW_SB_WRITE	(1u << 1)	/* write, truncate, create, remove, rename into */
#define KW_SB_EXEC	(1u << 2)	/* execute */
#define KW_SB_DEV	(1u << 3)	/* ioctl on devices (terminals) */

/* One Landlock rule: a path beneath which rights are granted. */
struct kw_sandbox_grant {
	char *path;		/* absolute, real (symlinks resolved) */
	unsigned rights;	/* KW_SB_* */
	const char *why;	/* static: "allowedPaths", "cwd", "system", "tmp", "claude", ... */
};

enum kw_sandbox_net {
	KW_SB_NET_OPEN,		/* allowNetwork and no host list: as outside */
	KW_SB_NET_FILTERED,	/* only the CONNECT filter (allowed hosts) and the forwards */
	KW_SB_NET_NONE,		/* nothing (loopback inside a network namespace at most) */
};

enum kw_sandbox_exec {
	KW_SB_EXEC_ANY,		/* allowExec: any program under the read grants */
	KW_SB_EXEC_LIST,	/* whitelistMode: execute right on the listed programs only */
	KW_SB_EXEC_ONCE,	/* !allowExec: the command itself, then no execve at all */
};

/*
 * What will be applied: kw_sandbox_plan_build's answer.  Owned:
 * kw_sandbox_plan_free.
 */
struct kw_sandbox_plan {
	/* Layers, each true when applied. */
	int landlock_abi;	/* the ABI the ruleset is built for (0: no Landlock) */
	bool userns;		/* user namespace (the same uid and gid inside) */
	bool mountns;		/* private mount namespace: hides, socket hiding */
	bool netns;		/* network namespace: loopback only, plus the filter */
	bool landlock_net;	/* Landlock TCP bind/connect rules (ABI >= 4) */
	bool scoped;		/* Landlock scoping: signals, abstract sockets (ABI >= 6) */
	bool seccomp;		/* the seccomp filter (always required) */
	enum kw_sandbox_net net;
	enum kw_sandbox_exec exec;

	struct kw_sandbox_grant *grants;	/* Landlock rules, files and directories */
	size_t n_grants;
	char **hides;		/* denied paths inside a grant: mounted over (mountns) */
	size_t n_hides;
	char *tmpdir;		/* private TMPDIR, made 0700 by the plan, removed by
				   kw_sandbox_plan_free when it made it */
	char *broker_socket;	/* hidden inside (mounted over; AF_UNIX sockets are
				   refused by seccomp in any case) */
	char **exec_paths;	/* files with the execute right (the command, its #!
				   interpreter, its ELF interpreter; LIST: the list's
				   too).  Filled in every mode, so the command may lie
				   outside the grants; under LIST/ONCE only these */
	size_t n_exec_paths;
	char **allowed_hosts;	/* KW_SB_NET_FILTERED: what the CONNECT filter admits */
	size_t n_hosts;
	char **allowed_domains;
	size_t n_domains;
	unsigned short *forward_ports;	/* loopback TCP ports reachable as outside
					   (the claude profile's API stand-in) */
	size_t n_forwards;
	unsigned short proxy_port;	/* KW_SB_NET_FILTERED: where the filter listens,
					   127.0.0.1 as the child sees it (3128 inside a
					   network namespace) */
	int proxy_fd;		/* without a network namespace: the filter's listening
				   socket, bound by the plan in the parent (else -1) */
	bool relay;		/* the caller's broker relay is reachable from inside
				   (req->relay): the hook's policy checks only */
	unsigned short relay_port;	/* where it listens, 127.0.0.1 as the child sees
					   it (KW_SB_RELAY_PORT_NETNS, 3129, inside a network
					   namespace; else the port the plan bound) */
	int relay_fd;		/* without a network namespace: the relay's listening
				   socket, bound by the plan in the parent (else -1);
				   launch hands a copy to the relay hook */

	/* Set when something the policy asks for cannot be applied here:
	   one line per shortfall, "what: why (what to do)". */
	char **missing;
	size_t n_missing;
	char *warnings;		/* NUL-separated notes to print (a dropped grant), or NULL */
};

/* What the caller asks of the plan beyond the policy. */
struct kw_sandbox_request {
	char *const *argv;	/* the command; argv[0] resolved through PATH */
	const char *cwd;	/* absolute */
	const char *env_path;	/* $PATH, for argv[0] and the whitelist */
	const char *broker_socket;	/* the socket to hide */
	const char *api_base_url;	/* $ANTHROPIC_BASE_URL or NULL (claude profile) */
	const char *claude_config_dir;	/* $CLAUDE_CONFIG_DIR or NULL (claude profile) */
	int require_landlock_abi;	/* the user's --require landlock=N (0: the policy's) */
	bool relay;		/* a loopback port for the caller's broker relay (run
				   --relay; the claude profile's default) */
	bool dry_run;		/* --check: make nothing the profile would make (~/.claude),
				   say "would make PATH" as a warning instead */
};

/*
 * Build the plan.  Grants: allowedPaths (rw, or ro under readOnly; the cwd
 * when there are none), the system's read-only necessities (/usr, /lib*,
 * /bin, /sbin, /etc minus deniedPaths, a fixed list of /etc files when
 * /etc itself is denied, /dev/null and friends, the terminal, /proc), the
 * private tmpdir, and the profile's own (claude: ~/.claude, ~/.claude.json,
 * the program's install tree).  Every grant is resolved (realpath); one
 * that falls inside a denied path is dropped with a warning.  Each denied
 * path or excludePatterns match that lies inside a grant becomes a hide
 * (excludePatterns are found by walking the granted trees the user can
 * write, bounded; see the man page for the limits).
 *
 * 0 with *ret; plan->n_missing > 0 says the machine falls short (the
 * caller refuses when policy->enabled or a --require asks, else warns).
 * KW_ERR_INVALID with err for a command that cannot be found or a cwd
 * under a denied path; KW_ERR_NOMEM.
 */
int kw_sandbox_plan_build(const struct kw_sandbox_policy *policy,
    const struct kw_sandbox_caps *caps, const struct kw_sandbox_request *req,
    struct kw_sandbox_plan **ret, char *err, size_t err_len) KW_WUR KW_NONNULL(1, 2, 3, 4, 5);

void kw_sandbox_plan_free(struct kw_sandbox_plan *plan);

/*
 * The plan as JSON for `run --check`, doctor and the audit record:
 * {"landlock_abi", "userns", "mountns", "netns", "landlock_net", "scoped",
 *  "seccomp", "net": "open"|"filtered"|"none", "exec": "any"|"list"|"once",
 *  "level": "landlock-7+userns+mountns+netns+seccomp+exec-once",
 *  "grants": [{"path", "rights": "rwxd"}], "hides": [...], "missing": [...]}.
 * New reference, or NULL on allocation failure.
 */
json_t *kw_sandbox_plan_json(const struct kw_sandbox_plan *plan) KW_NONNULL(1);

/* The short level string alone ("landlock-7+userns+..."), static per plan. */
const char *kw_sandbox_plan_level(const struct kw_sandbox_plan *plan) KW_NONNULL(1);

/*
 * A hook the launcher calls in the parent once the child has applied the
 * plan and before it execs: the caller records the run (the broker's
 * sandbox.report).  Return 0 to let the child exec, anything else to kill
 * it (launch then returns that value).
 */
typedef int (*kw_sandbox_ready_fn)(void *arg);

/*
 * A hook the launcher calls in the parent, before the ready hook, when
 * plan->relay: listen_fd is the relay's listening TCP socket (made in the
 * child's network namespace, or a copy of plan->relay_fd), and the hook
 * owns it from then on, whatever it returns (it serves it: cli/, which
 * talks to the broker; the sandbox does not).  Return 0 to go on, anything
 * else to kill the child (launch then returns that value).  Without a hook
 * the relay's socket is closed and nothing answers on the port.
 */
typedef int (*kw_sandbox_relay_fn)(void *arg, int listen_fd);

/*
 * Run argv[0] (resolved by the plan) under the plan, with envp as its
 * whole environment (the caller scrubs it: kw_sandbox_env).  The parent
 * ignores SIGINT/SIGQUIT while it waits (as system(3) does), serves the
 * exec guard and the network filter, and returns when the child ends:
 * 0 with *ret_status its exit status (128 + signal when killed), or an
 * error with err saying which step failed in the child (KW_ERR_DENIED for a
 * layer the kernel refused, KW_ERR_IO), the child not having run.
 */
/*
 * (Contract change for the relay: relay and relay_arg were added after
 * ready_arg; NULL for no relay hook.)
 */
int kw_sandbox_launch(const struct kw_sandbox_plan *plan, char *const argv[],
    char *const envp[], kw_sandbox_ready_fn ready, void *ready_arg,
    kw_sandbox_relay_fn relay, void *relay_arg, int *ret_status,
    char *err, size_t err_len) KW_WUR KW_NONNULL(1, 2, 3, 8, 9);

/*
 * The child's environment: environ minus what looks secret (names with
 * KEY, TOKEN, SECRET, PASSWORD, PASSWD, CREDENTIAL, AUTH, COOKIE, SESSION
 * in them, and values the built-in secret rules flag), minus what reaches out
 * of the sandbox (KEYWARDEN_SOCKET, DBUS_SESSION_BUS_ADDRESS,
 * SSH_AUTH_SOCK, GNOME_KEYRING_CONTROL, XDG_RUNTIME_DIR), plus TMPDIR,
 * the proxy variables for KW_SB_NET_FILTERED (HTTPS_PROXY, https_proxy,
 * HTTP_PROXY, http_proxy, NO_PROXY for the forwards),
 * KEYWARDEN_SANDBOX=LEVEL, and then `keep` (NAME=VALUE strings handed in
 * on purpose: exec --key, run --env, run's KEYWARDEN_RELAY) last so they win.  A NULL-terminated
 * array; free with kw_sandbox_env_free, which wipes every value.  The
 * proxy port is known only after launch starts, so proxy variables name
 * the port the plan fixed (plan->proxy_port).  NULL on allocation failure.
 * removed, when not NULL, gets the names dropped (for the notice).
 */
char **kw_sandbox_env(const struct kw_sandbox_plan *plan, char *const environ_[],
    char *const keep[], size_t n_keep, char ***removed) KW_NONNULL(1, 2);
void kw_sandbox_env_free(char **env);

#endif
