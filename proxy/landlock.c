/*
 * landlock.c - the proxy shuts itself in after start (proxy/DESIGN.md, "Why
 * a separate process"): once the configuration and the CA bundle are read,
 * it needs the file system only for the resolver and lazily loaded
 * libraries (read-only /etc, /usr, /lib*), no new listening socket, and TCP
 * only to upstream, the corporate proxy and DNS.  A parser bug in the most
 * exposed code keywarden runs then cannot read broker.dataDir or a user's
 * files.
 *
 * sandbox/ is the CLI's layer, so the few syscalls are written here.
 * Debian 12's <linux/landlock.h> describes ABI 1-2 only: the later access
 * bits and the longer ruleset attribute are defined below, and each is used
 * only when the running kernel's ABI has it.  Landlock binds the calling
 * thread and its later children, so main calls this before any thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/errors.h"
#include "proxy/proxy.h"

#define LL_FS_TRUNCATE		(1ULL << 14)	/* ABI 3 */
#define LL_FS_IOCTL_DEV		(1ULL << 15)	/* ABI 5 */
#define LL_NET_BIND_TCP		(1ULL << 0)	/* ABI 4 */
#define LL_NET_CONNECT_TCP	(1ULL << 1)
#define LL_RULE_NET_PORT	2
#define LL_SCOPE_ABSTRACT_UNIX	(1ULL << 0)	/* ABI 6 */
#define LL_SCOPE_SIGNAL		(1ULL << 1)

struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

struct ll_net_port_attr {
	uint64_t allowed_access;
	uint64_t port;
};

static const char *const readable[] = { "/etc", "/usr", "/lib", "/lib64", "/lib32" };

static int
add_path(int ruleset, const char *path, uint64_t access)
{
	struct landlock_path_beneath_attr pb = { .allowed_access = access };
	int r;

	if ((pb.parent_fd = open(path, O_PATH | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : KW_ERR_IO;
	r = (int)syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
	close(pb.parent_fd);
	return r < 0 ? KW_ERR_IO : 0;
}

int
kw_proxy_landlock(const int *connect_ports)
{
	struct ll_ruleset_attr attr = { 0 };
	size_t attr_size = sizeof(attr.handled_access_fs);
	uint64_t read_only = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
	int abi, ruleset, r = 0;

	abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 1)
		return 1;
	attr.handled_access_fs = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;
	if (abi < 2)
		attr.handled_access_fs &= ~LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		attr.handled_access_fs |= LL_FS_TRUNCATE;
	if (abi >= 5)
		attr.handled_access_fs |= LL_FS_IOCTL_DEV;
	if (abi >= 4) {
		attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
		attr_size = offsetof(struct ll_ruleset_attr, scoped);
	}
	if (abi >= 6) {
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
		attr_size = sizeof(attr);
	}
	ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
	if (ruleset < 0)
		return KW_ERR_IO;
	for (size_t i = 0; i < KW_ELEMENTSOF(readable) && r == 0; i++)
		r = add_path(ruleset, readable[i], read_only);
	for (size_t i = 0; abi >= 4 && connect_ports[i] && r == 0; i++) {
		struct ll_net_port_attr np = {
			.allowed_access = LL_NET_CONNECT_TCP, .port = (uint64_t)connect_ports[i],
		};
		if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_NET_PORT, &np, 0) < 0)
			r = KW_ERR_IO;
	}
	if (r == 0 && (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(SYS_landlock_restrict_self, ruleset, 0) < 0))
		r = KW_ERR_IO;
	close(ruleset);
	return r;
}
