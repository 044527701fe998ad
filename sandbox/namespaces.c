/*
 * namespaces.c - the child's namespaces: a user namespace with the same
 * uid and gid inside (no root: the ids map to themselves, setgroups is
 * denied), a private mount namespace for the hides, and a network
 * namespace holding only loopback.  The capabilities the new user
 * namespace gives are used here, before exec, and lost at exec (the uid
 * inside is not 0).
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "policy/match.h"
#include "sandbox/plan_internal.h"

static int
write_file(const char *path, const char *text, char *err, size_t err_len)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), r = 0;

	if (fd < 0 || kw_write_all(fd, text, strlen(text)) != 0) {
		r = -errno;
		snprintf(err, err_len, "userns: write %s: %s", path, strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	return r ? r : 0;
}

int
kw_sb_ns_enter(const struct kw_sandbox_plan *p, char *err, size_t err_len)
{
	char map[64];
	uid_t uid = getuid();
	gid_t gid = getgid();
	int flags = CLONE_NEWUSER | CLONE_NEWNS | (p->netns ? CLONE_NEWNET : 0), r;

	/*
	 * keywarden makes itself non-dumpable (no core, no ptrace of a process
	 * holding keys); a non-dumpable process's /proc/self files belong to
	 * root, so it could not write its own uid_map.  The child execs the
	 * command next, which makes it dumpable in any case.
	 */
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) {
		snprintf(err, err_len, "userns: dumpable: %s", strerror(errno));
		return -errno;
	}
	if (unshare(flags) != 0) {
		snprintf(err, err_len, "userns: unshare: %s", strerror(errno));
		return -errno;
	}
	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
	if ((r = write_file("/proc/self/uid_map", map, err, err_len)) != 0 ||
	    (r = write_file("/proc/self/setgroups", "deny\n", err, err_len)) != 0)
		return r;
	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
	return write_file("/proc/self/gid_map", map, err, err_len);
}

/*
 * Remount a bind read-only.  In a user namespace, the flags the original
 * mount carried (nosuid, nodev, noexec, atime) are locked and must be
 * repeated, or the kernel refuses.
 */
static int
bind_readonly(const char *path)
{
	struct statvfs sv;
	unsigned long f = MS_REMOUNT | MS_BIND | MS_RDONLY;

	if (statvfs(path, &sv) != 0)
		return -errno;
	f |= (sv.f_flag & ST_NOSUID ? MS_NOSUID : 0) | (sv.f_flag & ST_NODEV ? MS_NODEV : 0) |
	    (sv.f_flag & ST_NOEXEC ? MS_NOEXEC : 0) | (sv.f_flag & ST_NOATIME ? MS_NOATIME : 0) |
	    (sv.f_flag & ST_NODIRATIME ? MS_NODIRATIME : 0) |
	    (sv.f_flag & ST_RELATIME ? MS_RELATIME : 0);
	return mount(NULL, path, NULL, f, NULL) == 0 ? 0 : -errno;
}

static int
hide(const char *path, const char *empty_file, char *err, size_t err_len)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -errno;	/* gone: nothing to hide */
	if (S_ISDIR(st.st_mode)) {
		if (mount("none", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		    "mode=000,size=4k") == 0)
			return 0;
	} else if (mount(empty_file, path, NULL, MS_BIND, NULL) == 0) {
		/* Best effort: the file is empty and mode 0 already; ro keeps it so. */
		(void)bind_readonly(path);
		return 0;
	}
	snprintf(err, err_len, "mountns: hide %.200s: %s", path, strerror(errno));
	return -errno;
}

/* Whether any grant lies inside dir, or dir inside a grant. */
static bool
dir_holds_grant(const struct kw_sandbox_plan *p, const char *dir)
{
	for (size_t i = 0; i < p->n_grants; i++)
		if (kw_path_within(p->grants[i].path, dir) || kw_path_within(dir, p->grants[i].path))
			return true;
	return false;
}

static int
hide_socket(const struct kw_sandbox_plan *p, const char *empty_file, char *err, size_t err_len)
{
	char dir[4096], *slash;
	struct stat st;
	int r;

	if (!p->broker_socket || lstat(p->broker_socket, &st) != 0)
		return 0;
	if ((r = hide(p->broker_socket, empty_file, err, err_len)) != 0)
		return r;
	snprintf(dir, sizeof(dir), "%s", p->broker_socket);
	if ((slash = strrchr(dir, '/')) && slash != dir) {
		*slash = '\0';
		/* Its directory holds nothing the command needs: cover it whole. */
		if (!dir_holds_grant(p, dir))
			return hide(dir, empty_file, err, err_len);
	}
	return 0;
}

int
kw_sb_ns_mount(const struct kw_sandbox_plan *p, char *err, size_t err_len)
{
	const char *empty = kw_sb_plan_empty_file(p);
	int r = 0;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
		snprintf(err, err_len, "mountns: make / private: %s", strerror(errno));
		return -errno;
	}
	for (size_t i = 0; r == 0 && i < p->n_hides; i++)
		r = hide(p->hides[i], empty, err, err_len);
	return r ? r : hide_socket(p, empty, err, err_len);
}

int
kw_sb_ns_loopback(char *err, size_t err_len)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = 0;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) != 0 ||
	    (ifr.ifr_flags |= IFF_UP | IFF_RUNNING, ioctl(fd, SIOCSIFFLAGS, &ifr) != 0)) {
		r = -errno;
		snprintf(err, err_len, "netns: loopback up: %s", strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	return r;
}
