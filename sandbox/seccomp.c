/*
 * seccomp.c - the child's system-call filter (libseccomp), loaded last:
 * it refuses what a confined program has no business doing (debugging
 * others, kernel keyrings, io_uring, bpf, mounts, modules, new namespaces,
 * Unix sockets that would reach the broker or a desktop bus) and, when
 * execution is limited to the command itself, hands every execve to the
 * parent's exec guard.  Everything else is allowed: Landlock and the
 * namespaces do the confining; this closes the doors they do not cover.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <seccomp.h>

#include "sandbox/sandbox_internal.h"

#ifndef AF_MAX_KW
#define AF_MAX_KW 64	/* above every family Linux knows (46 in 6.x) */
#endif

static const char *const kw_sb_refused[] = {
	"ptrace", "process_vm_readv", "process_vm_writev",
	"add_key", "request_key", "keyctl",
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	"bpf", "perf_event_open", "userfaultfd",
	"mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsconfig",
	"fsmount", "fspick", "mount_setattr",
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"setns", "unshare",
};

static int
rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
    const struct scmp_arg_cmp *cmp)
{
	int nr = seccomp_syscall_resolve_name(name);

	if (nr == __NR_SCMP_ERROR)
		return 0;	/* not on this architecture */
	return seccomp_rule_add_array(ctx, action, nr, n, cmp);
}

/* socket(): Unix refused, families other than inet and route netlink unsupported. */
static int
socket_rules(scmp_filter_ctx ctx, bool inet_tcp_only)
{
	int r = 0;

	for (int af = 0; r == 0 && af < AF_MAX_KW; af++) {
		struct scmp_arg_cmp c = SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)af);

		if (af == AF_INET || af == AF_INET6 || af == AF_NETLINK)
			continue;
		r = rule(ctx, SCMP_ACT_ERRNO(af == AF_UNIX ? EPERM : EAFNOSUPPORT), "socket", 1,
		    &c);
	}
	if (r == 0) {
		struct scmp_arg_cmp c = SCMP_A0_32(SCMP_CMP_GE, AF_MAX_KW);

		r = rule(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket", 1, &c);
	}
	if (r == 0) {
		struct scmp_arg_cmp c[2] = {
			SCMP_A0_32(SCMP_CMP_EQ, AF_NETLINK), SCMP_A2_32(SCMP_CMP_NE, 0),
		};

		r = rule(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket", 2, c);
	}
	/* Landlock's network rules know TCP only: no other inet socket without a netns. */
	for (int i = 0; r == 0 && inet_tcp_only && i < 2; i++) {
		static const int types[] = { SOCK_DGRAM, SOCK_RAW, SOCK_RDM, SOCK_SEQPACKET,
		    SOCK_DCCP, SOCK_PACKET };
		uint32_t af = i == 0 ? AF_INET : AF_INET6;

		for (size_t t = 0; r == 0 && t < KW_ELEMENTSOF(types); t++) {
			struct scmp_arg_cmp c[2] = {
				SCMP_A0_32(SCMP_CMP_EQ, af),
				SCMP_A1_32(SCMP_CMP_MASKED_EQ, 0xf, (uint32_t)types[t]),
			};

			r = rule(ctx, SCMP_ACT_ERRNO(EPERM), "socket", 2, c);
		}
		for (uint32_t proto = 1; r == 0 && proto < IPPROTO_TCP; proto++) {
			struct scmp_arg_cmp c[2] = {
				SCMP_A0_32(SCMP_CMP_EQ, af), SCMP_A2_32(SCMP_CMP_EQ, proto),
			};

			r = rule(ctx, SCMP_ACT_ERRNO(EPERM), "socket", 2, c);
		}
		if (r == 0) {
			struct scmp_arg_cmp c[2] = {
				SCMP_A0_32(SCMP_CMP_EQ, af), SCMP_A2_32(SCMP_CMP_GT, IPPROTO_TCP),
			};

			r = rule(ctx, SCMP_ACT_ERRNO(EPERM), "socket", 2, c);
		}
	}
	return r;
}

static int
build(scmp_filter_ctx ctx, const struct kw_sandbox_plan *p)
{
	struct scmp_arg_cmp newuser = SCMP_A0_64(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER,
	    CLONE_NEWUSER);
	int r;

	if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) != 0)
		return r;
	for (size_t i = 0; i < KW_ELEMENTSOF(kw_sb_refused); i++)
		if ((r = rule(ctx, SCMP_ACT_ERRNO(EPERM), kw_sb_refused[i], 0, NULL)) != 0)
			return r;
	/* clone3 passes its flags in memory, out of a filter's sight: libc falls back. */
	if ((r = rule(ctx, SCMP_ACT_ERRNO(EPERM), "clone", 1, &newuser)) != 0 ||
	    (r = rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL)) != 0 ||
	    (r = socket_rules(ctx, p->net != KW_SB_NET_OPEN && !p->netns)) != 0)
		return r;
	if (p->exec == KW_SB_EXEC_ONCE &&
	    ((r = rule(ctx, SCMP_ACT_NOTIFY, "execve", 0, NULL)) != 0 ||
	    (r = rule(ctx, SCMP_ACT_NOTIFY, "execveat", 0, NULL)) != 0))
		return r;
	return 0;
}

int
kw_sb_seccomp_apply(const struct kw_sandbox_plan *p, int *notify_fd, char *err, size_t err_len)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int r;

	*notify_fd = -1;
	if (!ctx) {
		snprintf(err, err_len, "seccomp: out of memory");
		return -ENOMEM;
	}
	if ((r = build(ctx, p)) != 0) {
		snprintf(err, err_len, "seccomp: building the filter: %s", strerror(-r));
		goto out;
	}
	if ((r = seccomp_load(ctx)) != 0) {
		snprintf(err, err_len, "seccomp: loading the filter: %s", strerror(-r));
		goto out;
	}
	if (p->exec == KW_SB_EXEC_ONCE && (*notify_fd = seccomp_notify_fd(ctx)) < 0) {
		r = *notify_fd;
		*notify_fd = -1;
		snprintf(err, err_len, "seccomp: no notification fd: %s", strerror(-r));
	}
 out:
	seccomp_release(ctx);
	return r;
}
