/*
 * landlock.c - the plan's grants as a Landlock ruleset, enforced on the
 * calling thread (raw syscalls: there is no library, and Debian 12's
 * header stops at ABI 2, so later bits come from sandbox_internal.h).
 * Every right the ABI knows is handled, so whatever no rule grants is
 * refused; a rule on a file carries only the rights a file can have.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/landlock.h>

#include "sandbox/plan_internal.h"

/* struct landlock_ruleset_attr as of ABI 6 (the header's has only the first field). */
struct kw_ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;	/* ABI 4 */
	uint64_t scoped;		/* ABI 6 */
};

/* struct landlock_net_port_attr (ABI 4). */
struct kw_ll_net_port_attr {
	uint64_t allowed_access;
	uint64_t port;
};

#define KW_LL_READ	(LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define KW_LL_WRITE	(LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR | \
	LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR | \
	LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK | \
	LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_SYM | \
	LANDLOCK_ACCESS_FS_REFER | LANDLOCK_ACCESS_FS_TRUNCATE)
/* What a rule on a file (not a directory) may carry. */
#define KW_LL_FILE	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | \
	LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE | \
	LANDLOCK_ACCESS_FS_IOCTL_DEV)

/* Every file-system right up to ABI: 1 has bits 0-12, 2 REFER, 3 TRUNCATE, 5 IOCTL_DEV. */
static uint64_t
handled_fs(int abi)
{
	uint64_t fs = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;

	if (abi >= 2)
		fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return fs;
}

static uint64_t
to_landlock(unsigned rights)
{
	uint64_t a = 0;

	if (rights & KW_SB_READ)
		a |= KW_LL_READ;
	if (rights & KW_SB_WRITE)
		a |= KW_LL_WRITE;
	if (rights & KW_SB_EXEC)
		a |= LANDLOCK_ACCESS_FS_EXECUTE;
	if (rights & KW_SB_DEV)
		a |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return a;
}

static int
add_path(int ruleset, const char *path, uint64_t access, uint64_t handled, char *err,
    size_t err_len)
{
	struct landlock_path_beneath_attr pb = { 0 };
	struct stat st;
	int fd = open(path, O_PATH | O_CLOEXEC), r = 0;

	if (fd < 0) {
		if (errno == ENOENT)
			return 0;	/* gone since the plan: nothing to grant */
		snprintf(err, err_len, "landlock: open %.200s: %s", path, strerror(errno));
		return -errno;
	}
	pb.parent_fd = fd;
	pb.allowed_access = access & handled;
	if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
		pb.allowed_access &= KW_LL_FILE;
	if (pb.allowed_access && syscall(SYS_landlock_add_rule, ruleset,
	    LANDLOCK_RULE_PATH_BENEATH, &pb, 0) != 0) {
		r = -errno;
		snprintf(err, err_len, "landlock: rule for %.200s: %s", path, strerror(errno));
	}
	close(fd);
	return r;
}

static int
add_port(int ruleset, unsigned short port, char *err, size_t err_len)
{
	struct kw_ll_net_port_attr np = {
		.allowed_access = LANDLOCK_ACCESS_NET_CONNECT_TCP, .port = port,
	};

	if (syscall(SYS_landlock_add_rule, ruleset, KW_LANDLOCK_RULE_NET_PORT, &np, 0) == 0)
		return 0;
	snprintf(err, err_len, "landlock: rule for TCP port %u: %s", port, strerror(errno));
	return -errno;
}

static int
add_rules(const struct kw_sandbox_plan *p, int ruleset, uint64_t handled, char *err,
    size_t err_len)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < p->n_grants; i++)
		r = add_path(ruleset, p->grants[i].path, to_landlock(p->grants[i].rights), handled,
		    err, err_len);
	for (size_t i = 0; r == 0 && i < p->n_exec_paths; i++)
		r = add_path(ruleset, p->exec_paths[i], LANDLOCK_ACCESS_FS_READ_FILE |
		    LANDLOCK_ACCESS_FS_EXECUTE, handled, err, err_len);
	if (r != 0 || !p->landlock_net)
		return r;
	if (p->net == KW_SB_NET_FILTERED && p->proxy_port)
		r = add_port(ruleset, p->proxy_port, err, err_len);
	for (size_t i = 0; r == 0 && i < p->n_forwards; i++)
		r = add_port(ruleset, p->forward_ports[i], err, err_len);
	if (r == 0 && p->relay && p->relay_port)
		r = add_port(ruleset, p->relay_port, err, err_len);
	return r;
}

/*
 * ABI 7 logs denials to the kernel's audit log, by default only those of
 * the program that called restrict_self.  The command is what comes after
 * our execve, so ask for its denials too (LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON).
 */
static unsigned
restrict_flags(const struct kw_sandbox_plan *p)
{
	return p->landlock_abi >= 7 ? KW_LANDLOCK_LOG_NEW_EXEC_ON : 0;
}

int
kw_sb_landlock_apply(const struct kw_sandbox_plan *p, char *err, size_t err_len)
{
	struct kw_ll_ruleset_attr attr = { .handled_access_fs = handled_fs(p->landlock_abi) };
	size_t size = sizeof(attr.handled_access_fs);
	int ruleset, r;

	if (p->landlock_abi <= 0)
		return 0;	/* the plan has no Landlock (the caller allowed it) */
	if (p->landlock_net) {
		attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP |
		    LANDLOCK_ACCESS_NET_CONNECT_TCP;
		size = offsetof(struct kw_ll_ruleset_attr, scoped);
	}
	if (p->scoped) {
		attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
		size = sizeof(attr);
	}
	ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
	if (ruleset < 0) {
		snprintf(err, err_len, "landlock: create ruleset (ABI %d): %s", p->landlock_abi,
		    strerror(errno));
		return -errno;
	}
	if ((r = add_rules(p, ruleset, attr.handled_access_fs, err, err_len)) == 0 &&
	    syscall(SYS_landlock_restrict_self, ruleset, restrict_flags(p)) != 0) {
		r = -errno;
		snprintf(err, err_len, "landlock: restrict self: %s", strerror(errno));
	}
	close(ruleset);
	return r;
}
