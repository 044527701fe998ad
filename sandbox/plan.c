/*
 * plan.c - from the administrator's policy and what the machine offers to
 * exactly what the sandbox will apply, or the list of what it cannot.
 *
 * The choices, for the man page:
 *
 *  - Files: Landlock only grants, so the plan lists what may be reached
 *    (allowedPaths read-write, or read-only under readOnly; the cwd when
 *    the list is empty; the system's programs and libraries read-only;
 *    /etc read-only; a few devices; /proc read-only; a private TMPDIR) and
 *    everything else is refused by the kernel.  Every grant is realpath'd;
 *    one inside a denied path is dropped with a warning, and a cwd inside
 *    one is refused.
 *  - Hides: a denied path, or an excludePatterns match, that lies inside a
 *    grant cannot be carved out with Landlock.  The child mounts over it in
 *    a private mount namespace (user namespace, no root needed): an empty
 *    read-only tmpfs of mode 000 on a directory, an empty file of mode 000
 *    on a file.  Matches are found by walking the user's own grants
 *    (allowedPaths, the cwd, the profile's; not the system's) before the
 *    run, without following symlinks, at most 100000 entries and 64 levels
 *    deep (a warning names the limit when reached).  Limits: a file
 *    created during the run under a name the patterns match is not hidden
 *    (it did not exist when the plan was made); a hide covers a name, not
 *    an inode, so each other name (hard link) of a hidden file that the
 *    walk sees is hidden too, but a hard link made before the run outside
 *    the walked trees (or beyond the walk's limits) still reaches the
 *    contents (one cannot be made during the run: every name the
 *    command could link from is hidden); without
 *    user namespaces there is no hide at all, and the plan says so (a
 *    `missing` line per hide).
 *  - /etc: granted read-only minus deniedPaths.  When /etc itself is
 *    denied, only what programs need to start and resolve names is
 *    granted (see kw_sb_etc_needs in plan_grants.c: ld.so.cache,
 *    ld.so.conf(.d), nsswitch.conf, passwd, group, hosts, resolv.conf,
 *    host.conf, gai.conf, localtime, ssl, ca-certificates, alternatives,
 *    mime.types, os-release), each unless named in deniedPaths itself.
 *  - /proc is read-only; other processes' environ, mem and fds stay out
 *    of reach because Landlock scopes ptrace (a sandboxed process cannot
 *    ptrace-access anything outside its domain, and /proc/PID/environ,
 *    mem, fd need that access), and seccomp refuses ptrace outright.
 *    /dev/fd is /proc/self/fd: it needs no grant of its own.
 *  - TMPDIR: a directory made 0700 under $TMPDIR (or /tmp) for this run,
 *    granted read-write, named by TMPDIR in the child's environment, and
 *    removed with everything in it when the plan is freed (without
 *    following symlinks).
 *  - Execution: the command itself (and its interpreters) may always be
 *    executed, even from outside the grants (exec_paths is filled in
 *    every mode, not only for LIST/ONCE as sandbox.h first said);
 *    allowExec gives the execute right under every read grant;
 *    whitelistMode only on the listed programs (resolved through PATH),
 *    the command, and their #! and ELF interpreters; !allowExec lets the
 *    command itself start (a seccomp listener answers the first execve)
 *    and refuses every later execve.  With whitelistMode, the ELF
 *    interpreter is executable, so "ld.so PROGRAM" can map a readable
 *    program without execve: the list limits execve, not code.
 *  - Network: allowNetwork false: nothing (a network namespace with only
 *    loopback, or Landlock refusing every TCP connect, plus seccomp
 *    refusing UDP and raw sockets); true with allowedHosts/allowedDomains:
 *    only through the CONNECT filter; true with neither: as outside.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/errors.h"
#include "sandbox/plan_internal.h"

int
kw_sb_strv_add(char ***v, size_t *n, const char *s)
{
	char **nv;

	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i], s) == 0)
			return 0;
	if (!(nv = realloc(*v, (*n + 2) * sizeof(char *))))
		return KW_ERR_NOMEM;
	*v = nv;
	if (!(nv[*n] = strdup(s)))
		return KW_ERR_NOMEM;
	nv[++*n] = NULL;
	return 0;
}

void
kw_sb_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int
kw_sb_plan_warn(struct kw_sb_plan_priv *pp, const char *fmt, ...)
{
	char line[1024], *w;
	size_t len;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	len = strlen(line) + 1;
	/* NUL-separated, and one more NUL at the end: an empty string stops a reader. */
	if (!(w = realloc(pp->pub.warnings, pp->warn_len + len + 1)))
		return KW_ERR_NOMEM;
	memcpy(w + pp->warn_len, line, len);
	pp->warn_len += len;
	w[pp->warn_len] = '\0';
	pp->pub.warnings = w;
	return 0;
}

int
kw_sb_plan_missing(struct kw_sb_plan_priv *pp, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	return kw_sb_strv_add(&pp->pub.missing, &pp->pub.n_missing, line);
}

const char *
kw_sb_plan_exec_path(const struct kw_sandbox_plan *plan)
{
	return kw_sb_priv(plan)->command;
}

const char *
kw_sb_plan_empty_file(const struct kw_sandbox_plan *plan)
{
	return kw_sb_priv(plan)->empty_file;
}

const char *
kw_sandbox_plan_level(const struct kw_sandbox_plan *plan)
{
	return kw_sb_priv(plan)->level;
}

static void
make_level(struct kw_sb_plan_priv *pp)
{
	const struct kw_sandbox_plan *p = &pp->pub;
	char *l = pp->level;
	size_t sz = sizeof(pp->level);

	if (p->landlock_abi > 0)
		snprintf(l, sz, "landlock-%d", p->landlock_abi);
	else
		snprintf(l, sz, "no-landlock");
#define KW_LEVEL_ADD(cond, word) \
	if (cond) \
		snprintf(l + strlen(l), sz - strlen(l), "+%s", word)
	KW_LEVEL_ADD(p->userns, "userns");
	KW_LEVEL_ADD(p->mountns, "mountns");
	KW_LEVEL_ADD(p->netns, "netns");
	KW_LEVEL_ADD(p->landlock_net, "landlock-net");
	KW_LEVEL_ADD(p->seccomp, "seccomp");
	KW_LEVEL_ADD(p->exec == KW_SB_EXEC_ONCE, "exec-once");
	KW_LEVEL_ADD(p->exec == KW_SB_EXEC_LIST, "exec-list");
#undef KW_LEVEL_ADD
}

/* Remove name under dirfd and all beneath it, never following a symlink. */
static void
remove_tree_at(int at, const char *name, int depth)
{
	struct dirent *de;
	DIR *d;
	int fd;

	if (unlinkat(at, name, 0) == 0 || errno == ENOENT || depth > 256)
		return;
	/* The command may have left a directory it made unreadable: it is ours. */
	if (fchmodat(at, name, 0700, AT_SYMLINK_NOFOLLOW) != 0 && errno != EOPNOTSUPP)
		return;
	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			remove_tree_at(dirfd(d), de->d_name, depth + 1);
	closedir(d);
	(void)!unlinkat(at, name, AT_REMOVEDIR);
}

/* The run's private directory: workdir/tmp (TMPDIR) and workdir/empty (for hides). */
static int
make_workdir(struct kw_sb_plan_priv *pp, char *err, size_t err_len)
{
	const char *base = getenv("TMPDIR");
	char path[4096];
	int fd;

	if (!base || base[0] != '/')
		base = "/tmp";
	if (snprintf(path, sizeof(path), "%s/keywarden-sandbox.XXXXXX", base) >= (int)sizeof(path)
	    || !mkdtemp(path)) {
		snprintf(err, err_len, "cannot make the sandbox's private directory under %.200s: "
		    "%s", base, strerror(errno));
		return KW_ERR_IO;
	}
	if (!(pp->workdir = strdup(path)))
		return KW_ERR_NOMEM;
	if (asprintf(&pp->pub.tmpdir, "%s/tmp", path) < 0) {
		pp->pub.tmpdir = NULL;
		return KW_ERR_NOMEM;
	}
	if (asprintf(&pp->empty_file, "%s/empty", path) < 0) {
		pp->empty_file = NULL;
		return KW_ERR_NOMEM;
	}
	if (mkdir(pp->pub.tmpdir, 0700) != 0 ||
	    (fd = open(pp->empty_file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0)) < 0) {
		snprintf(err, err_len, "cannot populate %.200s: %s", path, strerror(errno));
		return KW_ERR_IO;
	}
	close(fd);
	return 0;
}

void
kw_sandbox_plan_free(struct kw_sandbox_plan *plan)
{
	struct kw_sb_plan_priv *pp = kw_sb_priv(plan);

	if (!plan)
		return;
	if (pp->workdir)
		remove_tree_at(AT_FDCWD, pp->workdir, 0);
	for (size_t i = 0; i < plan->n_grants; i++)
		free(plan->grants[i].path);
	free(plan->grants);
	kw_sb_strv_free(plan->hides, plan->n_hides);
	free(plan->tmpdir);
	free(plan->broker_socket);
	kw_sb_strv_free(plan->exec_paths, plan->n_exec_paths);
	kw_sb_strv_free(plan->allowed_hosts, plan->n_hosts);
	kw_sb_strv_free(plan->allowed_domains, plan->n_domains);
	free(plan->forward_ports);
	if (plan->proxy_fd >= 0)
		close(plan->proxy_fd);
	kw_sb_strv_free(plan->missing, plan->n_missing);
	free(plan->warnings);
	free(pp->command);
	free(pp->workdir);
	free(pp->empty_file);
	kw_sb_strv_free(pp->denied, pp->n_denied);
	free(pp);
}

/* The layers the machine can carry, and a line for each it cannot. */
static int
plan_layers(struct kw_sb_plan_priv *pp, const struct kw_sandbox_policy *policy,
    const struct kw_sandbox_caps *caps, const struct kw_sandbox_request *req)
{
	struct kw_sandbox_plan *p = &pp->pub;
	int need = req->require_landlock_abi > KW_LANDLOCK_ABI_MIN ?
	    req->require_landlock_abi : KW_LANDLOCK_ABI_MIN;
	int r = 0;

	p->landlock_abi = caps->landlock_abi < KW_LANDLOCK_ABI_KNOWN ? caps->landlock_abi :
	    KW_LANDLOCK_ABI_KNOWN;
	if (caps->landlock_abi < need)
		r = kw_sb_plan_missing(pp, "landlock: Landlock ABI %d required, this kernel offers "
		    "%d (%s)", need, caps->landlock_abi, caps->landlock_abi == 0 ?
		    "Landlock is off or not built in: boot with lsm=...,landlock" :
		    "a newer kernel is needed");
	if (caps->landlock_abi < KW_LANDLOCK_ABI_MIN)
		p->landlock_abi = 0;	/* too old to keep a read-only tree whole: not used */
	p->userns = p->mountns = caps->userns;
	p->scoped = p->landlock_abi >= 6;
	p->seccomp = caps->seccomp;
	if (r == 0 && !caps->seccomp)
		r = kw_sb_plan_missing(pp, "seccomp: the kernel refuses seccomp filters (%s)",
		    caps->why_not);
	p->exec = !policy->allow_exec ? KW_SB_EXEC_ONCE :
	    policy->whitelist_mode ? KW_SB_EXEC_LIST : KW_SB_EXEC_ANY;
	if (r == 0 && p->exec == KW_SB_EXEC_ONCE && !caps->seccomp_notify)
		r = kw_sb_plan_missing(pp, "exec-once: allowExec is false, which needs seccomp "
		    "user notification (Linux 5.5 or later) to let only the command start (%s)",
		    caps->why_not);
	return r;
}

static int
plan_hides_need_mountns(struct kw_sb_plan_priv *pp)
{
	int r = 0;

	if (pp->pub.mountns)
		return 0;
	for (size_t i = 0; r == 0 && i < pp->pub.n_hides; i++)
		r = kw_sb_plan_missing(pp, "hide %s: needs user namespaces to mount over it "
		    "(unprivileged user namespaces are off here; enable them, or take the path "
		    "out of the allowed tree)", pp->pub.hides[i]);
	return r;
}

int
kw_sandbox_plan_build(const struct kw_sandbox_policy *policy, const struct kw_sandbox_caps *caps,
    const struct kw_sandbox_request *req, struct kw_sandbox_plan **ret, char *err,
    size_t err_len)
{
	struct kw_sb_plan_priv *pp;
	int r;

	*ret = NULL;
	if (!req->argv || !req->argv[0] || !req->cwd || req->cwd[0] != '/') {
		snprintf(err, err_len, "no command, or the working directory is not absolute");
		return KW_ERR_INVALID;
	}
	if (!(pp = calloc(1, sizeof(*pp))))
		return KW_ERR_NOMEM;
	pp->pub.proxy_fd = -1;
	if ((r = plan_layers(pp, policy, caps, req)) != 0 ||
	    (r = kw_sb_plan_command(pp, policy, req, err, err_len)) != 0 ||
	    (r = make_workdir(pp, err, err_len)) != 0 ||
	    (r = kw_sb_plan_grants(pp, policy, caps, req, err, err_len)) != 0 ||
	    (r = kw_sb_plan_net(pp, policy, caps, req, err, err_len)) != 0 ||
	    (r = plan_hides_need_mountns(pp)) != 0)
		goto out;
	if (req->broker_socket && req->broker_socket[0] == '/' &&
	    !(pp->pub.broker_socket = strdup(req->broker_socket))) {
		r = KW_ERR_NOMEM;
		goto out;
	}
	make_level(pp);
	*ret = &pp->pub;
	pp = NULL;
	r = 0;
 out:
	if (r == KW_ERR_NOMEM)
		snprintf(err, err_len, "out of memory");
	if (pp)
		kw_sandbox_plan_free(&pp->pub);
	return r;
}
