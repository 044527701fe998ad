/*
 * sandbox_internal.h - how the sandbox's files call each other.  Not for
 * the CLI: it uses sandbox.h.
 *
 * The child's order (launch.c), each step failing closed with a reason
 * written to the parent before the child exits 127:
 *   1. unshare(CLONE_NEWUSER | CLONE_NEWNS [| CLONE_NEWNET]) and the id
 *      maps (namespaces.c: kw_sb_ns_enter), when plan->userns;
 *   2. mounts: hides and the socket (kw_sb_ns_mount), when plan->mountns;
 *   3. loopback up and the listeners inside the new network namespace
 *      (kw_sb_ns_loopback, kw_sb_net_child_listen), when plan->netns;
 *      their fds go to the parent (SCM_RIGHTS);
 *   4. PR_SET_NO_NEW_PRIVS;
 *   5. Landlock (landlock.c: kw_sb_landlock_apply);
 *   6. seccomp (seccomp.c: kw_sb_seccomp_apply), last, since it refuses
 *      what steps 1-5 use; with KW_SB_EXEC_ONCE its notification fd goes
 *      to the parent;
 *   7. tell the parent "ready", wait for "go" (the ready hook ran), execve.
 * The parent serves the exec guard (exec_guard.c) and the network filter
 * (net_serve.c) on threads of their own until the child ends.
 */
#ifndef KW_SANDBOX_INTERNAL_H
#define KW_SANDBOX_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "sandbox/sandbox.h"

/* Landlock access masks beyond Debian 12's <linux/landlock.h> (ABI 2). */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE		(1ULL << 14)	/* ABI 3 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV		(1ULL << 15)	/* ABI 5 */
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP		(1ULL << 0)	/* ABI 4 */
#define LANDLOCK_ACCESS_NET_CONNECT_TCP		(1ULL << 1)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET	(1ULL << 0)	/* ABI 6 */
#define LANDLOCK_SCOPE_SIGNAL			(1ULL << 1)
#endif
#define KW_LANDLOCK_RULE_NET_PORT		2	/* LANDLOCK_RULE_NET_PORT */
/* landlock_restrict_self's flags (ABI 7): log the denials of what is exec'd. */
#define KW_LANDLOCK_LOG_NEW_EXEC_ON		(1U << 1)

/* The newest ABI this code knows the rights of. */
#define KW_LANDLOCK_ABI_KNOWN	7
/* The oldest it uses: TRUNCATE (3) keeps a read-only tree from being truncated. */
#define KW_LANDLOCK_ABI_MIN	3
/* Inside a network namespace the filter listens here (127.0.0.1). */
#define KW_SB_PROXY_PORT_NETNS	3128
/* ... and the caller's broker relay here (plan->relay; served by the caller). */
#define KW_SB_RELAY_PORT_NETNS	3129

/*
 * landlock.c: build and enforce the ruleset for plan (grants, exec paths,
 * TCP ports: the proxy's, the forwards' and the relay's when plan->landlock_net, and
 * the scopes when plan->scoped) on the calling thread.  0, or -errno with
 * err naming the path or the call that failed.
 */
int kw_sb_landlock_apply(const struct kw_sandbox_plan *plan, char *err, size_t err_len)
    KW_WUR KW_NONNULL(1, 2);

/*
 * namespaces.c: enter a user namespace (plus mount, plus network when
 * plan->netns) keeping the caller's uid and gid, with setgroups denied.
 * 0, or -errno with err.
 */
int kw_sb_ns_enter(const struct kw_sandbox_plan *plan, char *err, size_t err_len)
    KW_WUR KW_NONNULL(1, 2);

/*
 * namespaces.c: in the new mount namespace, make every mount private,
 * then mount over each of plan->hides (an empty read-only tmpfs on a
 * directory, an empty unreadable file on a file) and over the broker's
 * socket.  0, or -errno with err naming the path.
 */
int kw_sb_ns_mount(const struct kw_sandbox_plan *plan, char *err, size_t err_len)
    KW_WUR KW_NONNULL(1, 2);

/* namespaces.c: bring "lo" up in the new network namespace.  0 or -errno. */
int kw_sb_ns_loopback(char *err, size_t err_len) KW_WUR KW_NONNULL(1);

/*
 * seccomp.c: load the filter: refuse (EPERM) ptrace, process_vm_readv/
 * writev, add_key/request_key/keyctl, io_uring_*, bpf, perf_event_open,
 * userfaultfd, the mount family, kexec, init/finit/delete_module, setns,
 * unshare and clone with CLONE_NEWUSER (clone3 answers ENOSYS so libc
 * falls back to clone), socket(AF_UNIX) (socketpair stays), every socket
 * family but AF_UNIX/AF_INET/AF_INET6/AF_NETLINK(route) (EAFNOSUPPORT),
 * and, when plan->net is not OPEN and there is no network namespace, UDP
 * and raw inet sockets; foreign architectures are killed.  With
 * KW_SB_EXEC_ONCE, execve and execveat are sent to a listener: *notify_fd
 * gets its fd (else -1).  0, or -errno with err.
 */
int kw_sb_seccomp_apply(const struct kw_sandbox_plan *plan, int *notify_fd, char *err,
    size_t err_len) KW_WUR KW_NONNULL(1, 2, 3);

/*
 * exec_guard.c: serve notify_fd in the parent: the first execve goes on
 * (the command itself), every later one of any process under the filter
 * is refused with EPERM.  Returns when the fd closes (all filtered
 * processes gone) or stop_fd becomes readable.  Runs on a thread of its
 * own; never touches the plan.
 */
void kw_sb_exec_guard_serve(int notify_fd, int stop_fd);

/* net_*.c: the parent's side of the network: one listening socket per port. */
struct kw_sb_listener {
	int fd;			/* listening TCP socket (in the child's namespace or ours) */
	unsigned short port;	/* as the child sees it */
	bool is_proxy;		/* the CONNECT filter; else a forward to 127.0.0.1:port here */
	bool is_relay;		/* the caller's broker relay: never served by
				   kw_sb_net_serve, launch hands it to the relay hook */
};

/*
 * sandbox/net_listen.c, in the child after kw_sb_ns_loopback: listen on
 * 127.0.0.1:KW_SB_PROXY_PORT_NETNS (when plan->net is FILTERED), on
 * 127.0.0.1:KW_SB_RELAY_PORT_NETNS (when plan->relay; is_relay) and on
 * each forward port.  Fills out (room for 2 + plan->n_forwards) and *n.
 * 0, or -errno with err.
 */
int kw_sb_net_child_listen(const struct kw_sandbox_plan *plan, struct kw_sb_listener *out,
    size_t *n, char *err, size_t err_len) KW_WUR KW_NONNULL(1, 2, 3, 4);

/*
 * sandbox/net_serve.c, in the parent: accept on each listener until stop_fd is
 * readable.  A forward connects to 127.0.0.1:port in the parent's network
 * namespace and relays both ways.  The proxy reads one CONNECT request
 * (kw_sb_connect_parse), admits it only when the host is one of
 * plan->allowed_hosts or lies within plan->allowed_domains (and is not an
 * IP literal outside them), connects, answers 200 and relays; anything
 * else gets 403 (not allowed: names the host and the key) or 400/405 with
 * a reason, and the connection closes.  Owns the listeners' fds.
 */
void kw_sb_net_serve(const struct kw_sandbox_plan *plan, struct kw_sb_listener *listeners,
    size_t n, int stop_fd);

/* sandbox/connect_parse.c: one parsed CONNECT request head. */
struct kw_sb_connect_req {
	char host[256];		/* lower case; an IPv6 literal without brackets */
	unsigned short port;
	size_t head_len;	/* bytes of the head, "\r\n\r\n" included */
};

/*
 * Parse an HTTP/1.x request head from buf[0..len) (pure; fuzzed).
 * 1 with *req filled when a whole head of a CONNECT host:port request is
 * there; 0 when more bytes are needed (len < 8 KB); or a negative HTTP
 * status to answer: -400 (malformed, or a head over 8 KB), -405 (a
 * method other than CONNECT: only HTTPS goes through the filter).
 */
int kw_sb_connect_parse(const char *buf, size_t len, struct kw_sb_connect_req *req)
    KW_WUR KW_NONNULL(1, 3);

/* Whether host (lower case) is admitted by the plan's lists. */
bool kw_sb_host_allowed(const struct kw_sandbox_plan *plan, const char *host)
    KW_WUR KW_NONNULL(1, 2);

/*
 * plan.c (added with the kernel layer; internal only): the program launch
 * execs (argv[0] resolved through PATH by the plan), and the empty
 * unreadable file namespaces.c binds over hidden files (made by the plan
 * beside its tmpdir, outside every grant).  Both borrowed from the plan.
 */
const char *kw_sb_plan_exec_path(const struct kw_sandbox_plan *plan) KW_NONNULL(1);
const char *kw_sb_plan_empty_file(const struct kw_sandbox_plan *plan) KW_NONNULL(1);

#endif
