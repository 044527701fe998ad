/*
 * plan_grants.c - the plan's Landlock grants and its hides: what the
 * command may reach, and what inside that must be mounted over.  The
 * reasons for each choice are in plan.c's header comment.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/fsutil.h"
#include "policy/match.h"
#include "sandbox/plan_internal.h"

/* The walk for excludePatterns stops here (a warning names the limit). */
#define KW_SB_WALK_MAX_ENTRIES	100000
#define KW_SB_WALK_MAX_DEPTH	64

/*
 * When /etc itself is denied, programs still need these to start, find
 * users and resolve names; each is granted read-only unless deniedPaths
 * names it (or something under /etc holding it) itself.
 */
static const char *const kw_sb_etc_needs[] = {
	"ld.so.cache", "ld.so.conf", "ld.so.conf.d", "nsswitch.conf", "passwd", "group",
	"hosts", "resolv.conf", "host.conf", "gai.conf", "localtime", "ssl",
	"ca-certificates", "alternatives", "mime.types", "os-release",
};

static const char *const kw_sb_system_dirs[] = {
	"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt",
};

/* Devices: name, rights.  Terminals get ioctl (KW_SB_DEV) for termios. */
static const struct { const char *path; unsigned rights; } kw_sb_devices[] = {
	{ "/dev/null", KW_SB_READ | KW_SB_WRITE },
	{ "/dev/zero", KW_SB_READ | KW_SB_WRITE },
	{ "/dev/full", KW_SB_READ | KW_SB_WRITE },
	{ "/dev/random", KW_SB_READ },
	{ "/dev/urandom", KW_SB_READ },
	{ "/dev/tty", KW_SB_READ | KW_SB_WRITE | KW_SB_DEV },
	{ "/dev/pts", KW_SB_READ | KW_SB_WRITE | KW_SB_DEV },
	{ "/dev/ptmx", KW_SB_READ | KW_SB_WRITE | KW_SB_DEV },
};

bool
kw_sb_plan_denied(const struct kw_sb_plan_priv *pp, const char *real)
{
	for (size_t i = 0; i < pp->n_denied; i++)
		if (kw_path_within(real, pp->denied[i]))
			return true;
	return false;
}

/* deniedPaths as written (normalised) and as resolved, so either spelling is caught. */
static int
load_denied(struct kw_sb_plan_priv *pp, const struct kw_sandbox_policy *policy)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < policy->n_denied; i++) {
		char real[PATH_MAX];

		r = kw_sb_strv_add(&pp->denied, &pp->n_denied, policy->denied_paths[i]);
		if (r == 0 && realpath(policy->denied_paths[i], real))
			r = kw_sb_strv_add(&pp->denied, &pp->n_denied, real);
	}
	return r;
}

static int
add_grant_real(struct kw_sb_plan_priv *pp, const char *real, unsigned rights, const char *why)
{
	struct kw_sandbox_plan *p = &pp->pub;
	struct kw_sandbox_grant *g;

	for (size_t i = 0; i < p->n_grants; i++)
		if (strcmp(p->grants[i].path, real) == 0) {
			p->grants[i].rights |= rights;
			return 0;
		}
	if (!(g = realloc(p->grants, (p->n_grants + 1) * sizeof(*g))))
		return KW_ERR_NOMEM;
	p->grants = g;
	if (!(g[p->n_grants].path = strdup(real)))
		return KW_ERR_NOMEM;
	g[p->n_grants].rights = rights;
	g[p->n_grants].why = why;
	p->n_grants++;
	return 0;
}

int
kw_sb_plan_grant(struct kw_sb_plan_priv *pp, const char *path, unsigned rights, const char *why,
    bool quiet)
{
	char real[PATH_MAX];

	if (!realpath(path, real))
		return quiet ? 0 : kw_sb_plan_warn(pp, "grant %s (%s): %s: not granted", path, why,
		    strerror(errno));
	if (kw_sb_plan_denied(pp, real))
		return kw_sb_plan_warn(pp, "grant %s (%s) lies inside deniedPaths: dropped", real,
		    why);
	return add_grant_real(pp, real, rights, why);
}

/* /etc's necessities: only a deniedPaths entry below /etc itself takes one away. */
static int
grant_etc_needs(struct kw_sb_plan_priv *pp)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < KW_ELEMENTSOF(kw_sb_etc_needs); i++) {
		char path[PATH_MAX], real[PATH_MAX];
		bool named = false;

		snprintf(path, sizeof(path), "/etc/%s", kw_sb_etc_needs[i]);
		if (!realpath(path, real))
			continue;
		for (size_t j = 0; j < pp->n_denied; j++)
			if (!kw_path_within("/etc", pp->denied[j]) &&
			    (kw_path_within(path, pp->denied[j]) ||
			    kw_path_within(real, pp->denied[j])))
				named = true;
		if (!named)
			r = add_grant_real(pp, real, KW_SB_READ, "etc");
	}
	return r;
}

static int
grant_system(struct kw_sb_plan_priv *pp)
{
	int r = 0;
	char real[PATH_MAX];

	for (size_t i = 0; r == 0 && i < KW_ELEMENTSOF(kw_sb_system_dirs); i++)
		r = kw_sb_plan_grant(pp, kw_sb_system_dirs[i], KW_SB_READ, "system", true);
	if (r == 0) {
		if (realpath("/etc", real) && kw_sb_plan_denied(pp, real))
			r = grant_etc_needs(pp);
		else
			r = kw_sb_plan_grant(pp, "/etc", KW_SB_READ, "system", true);
	}
	for (size_t i = 0; r == 0 && i < KW_ELEMENTSOF(kw_sb_devices); i++)
		r = kw_sb_plan_grant(pp, kw_sb_devices[i].path, kw_sb_devices[i].rights, "dev",
		    true);
	if (r == 0)
		r = kw_sb_plan_grant(pp, "/proc", KW_SB_READ, "proc", true);
	if (r == 0)
		r = add_grant_real(pp, pp->pub.tmpdir, KW_SB_READ | KW_SB_WRITE, "tmp");
	return r;
}

/* allowedPaths (or the cwd), readOnlyPaths; roots gets what the walk must visit. */
static int
grant_user(struct kw_sb_plan_priv *pp, const struct kw_sandbox_policy *policy,
    const struct kw_sandbox_request *req, char ***roots, size_t *n_roots, char *err,
    size_t err_len)
{
	unsigned rw = policy->read_only ? KW_SB_READ : KW_SB_READ | KW_SB_WRITE;
	char real[PATH_MAX];
	int r = 0;

	if (realpath(req->cwd, real) && kw_sb_plan_denied(pp, real)) {
		snprintf(err, err_len, "the current directory %.200s lies inside deniedPaths: "
		    "run the command from elsewhere", real);
		return KW_ERR_INVALID;
	}
	for (size_t i = 0; r == 0 && i < policy->n_allowed; i++)
		r = kw_sb_plan_grant(pp, policy->allowed_paths[i], rw, "allowedPaths", false);
	if (r == 0 && policy->n_allowed == 0)
		r = kw_sb_plan_grant(pp, req->cwd, rw, "cwd", false);
	for (size_t i = 0; r == 0 && i < policy->n_read_only; i++) {
		const char *ro = policy->read_only_paths[i];

		if (!realpath(ro, real))
			continue;
		/* Landlock adds rights up a tree: a read-only spot in a writable one is none. */
		for (size_t j = 0; r == 0 && j < pp->pub.n_grants; j++)
			if ((pp->pub.grants[j].rights & KW_SB_WRITE) &&
			    kw_path_within(real, pp->pub.grants[j].path))
				r = kw_sb_plan_missing(pp, "readOnlyPaths %s: lies inside the writable "
				    "%s, and Landlock cannot narrow a grant (list the writable "
				    "paths beside it instead)", real, pp->pub.grants[j].path);
		if (r == 0)
			r = kw_sb_plan_grant(pp, ro, KW_SB_READ, "readOnlyPaths", false);
	}
	for (size_t i = 0; r == 0 && i < pp->pub.n_grants; i++)
		r = kw_sb_strv_add(roots, n_roots, pp->pub.grants[i].path);
	return r;
}

/*
 * Make a file the profile needs if it is missing (never through a symlink).
 * A new file is an empty JSON object: Claude Code refuses a zero-byte
 * ~/.claude.json as corrupt (and exits 1).
 */
static int
ensure(const char *path, bool dir, mode_t mode)
{
	int fd;

	if (dir)
		return mkdir(path, mode) == 0 || errno == EEXIST ? 0 : -errno;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd >= 0) {
		if (kw_write_all(fd, "{}\n", 3) != 0) {
			int e = errno;
			close(fd);
			return -e;
		}
		close(fd);
	}
	return fd >= 0 || errno == EEXIST ? 0 : -errno;
}

/* The program's install tree: its node_modules package, or its directory. */
static int
grant_install_tree(struct kw_sb_plan_priv *pp)
{
	char real[PATH_MAX], *nm, *end;

	if (!realpath(pp->command, real))
		return 0;
	if ((nm = strstr(real, "/node_modules/"))) {
		char *last;

		while ((last = strstr(nm + 1, "/node_modules/")))
			nm = last;
		end = nm + strlen("/node_modules/");
		if (*end == '@' && strchr(end, '/'))
			end = strchr(end, '/') + 1;
		if ((end = strchr(end, '/')))
			*end = '\0';
	} else if ((end = strrchr(real, '/')) && end != real) {
		*end = '\0';
	}
	return kw_sb_plan_grant(pp, real, KW_SB_READ | KW_SB_EXEC, "claude", false);
}

static int
grant_claude(struct kw_sb_plan_priv *pp, const struct kw_sandbox_policy *policy,
    const struct kw_sandbox_request *req, char ***roots, size_t *n_roots)
{
	char path[PATH_MAX];
	int r = 0;

	if (policy->home && req->dry_run) {
		/* --check changes nothing: what is missing is only named. */
		static const char *const names[] = { ".claude", ".claude.json" };

		for (size_t i = 0; i < KW_ELEMENTSOF(names); i++) {
			snprintf(path, sizeof(path), "%s/%s", policy->home, names[i]);
			if (access(path, F_OK) != 0)
				r = kw_sb_plan_warn(pp, "would make %s", path);
			else if ((r = kw_sb_plan_grant(pp, path, KW_SB_READ | KW_SB_WRITE, "claude",
			    false)) == 0 && i == 0)
				r = kw_sb_strv_add(roots, n_roots, path);
			if (r)
				return r;
		}
	} else if (policy->home) {
		snprintf(path, sizeof(path), "%s/.claude", policy->home);
		if ((r = ensure(path, true, 0700)) != 0)
			return kw_sb_plan_warn(pp, "cannot make %s: %s", path, strerror(-r));
		if ((r = kw_sb_plan_grant(pp, path, KW_SB_READ | KW_SB_WRITE, "claude", false)) ||
		    (r = kw_sb_strv_add(roots, n_roots, path)))
			return r;
		snprintf(path, sizeof(path), "%s/.claude.json", policy->home);
		if ((r = ensure(path, false, 0600)) != 0)
			return kw_sb_plan_warn(pp, "cannot make %s: %s", path, strerror(-r));
		if ((r = kw_sb_plan_grant(pp, path, KW_SB_READ | KW_SB_WRITE, "claude", false)))
			return r;
	}
	if (req->claude_config_dir && req->claude_config_dir[0] == '/' &&
	    ((r = kw_sb_plan_grant(pp, req->claude_config_dir, KW_SB_READ | KW_SB_WRITE, "claude",
	    false)) || (r = kw_sb_strv_add(roots, n_roots, req->claude_config_dir))))
		return r;
	return grant_install_tree(pp);
}

/* ---- hides ---- */

static int
add_hide(struct kw_sb_plan_priv *pp, const char *real)
{
	for (size_t i = 0; i < pp->pub.n_hides; i++)
		if (kw_path_within(real, pp->pub.hides[i]))
			return 0;
	return kw_sb_strv_add(&pp->pub.hides, &pp->pub.n_hides, real);
}

/* Drop hides inside other hides: the outer mount already covers them. */
static int
compact_hides(struct kw_sandbox_plan *p)
{
	bool *inner = calloc(p->n_hides + 1, sizeof(bool));
	size_t k = 0;

	if (!inner)
		return KW_ERR_NOMEM;
	/* Decide first, free after: a later comparison reads every path. */
	for (size_t i = 0; i < p->n_hides; i++)
		for (size_t j = 0; j < p->n_hides && !inner[i]; j++)
			inner[i] = j != i && strcmp(p->hides[i], p->hides[j]) != 0 &&
			    kw_path_within(p->hides[i], p->hides[j]);
	for (size_t i = 0; i < p->n_hides; i++) {
		if (inner[i])
			free(p->hides[i]);
		else
			p->hides[k++] = p->hides[i];
	}
	p->n_hides = k;
	if (p->hides)
		p->hides[k] = NULL;
	free(inner);
	return 0;
}

static bool
within_grant(const struct kw_sandbox_plan *p, const char *real)
{
	for (size_t i = 0; i < p->n_grants; i++)
		if (kw_path_within(real, p->grants[i].path))
			return true;
	return false;
}

/* A file with more than one name, seen by the walk. */
struct linked {
	dev_t dev;
	ino_t ino;
	char *path;
};

/* nftw has no context argument: the walk's state, one walk at a time per thread. */
static __thread struct walk {
	struct kw_sb_plan_priv *pp;
	const struct kw_sandbox_policy *policy;
	size_t entries;
	bool hit_entries, hit_depth;
	struct linked *links;
	size_t n_links;
	int r;
} *kw_sb_walk;

/* Remember a multiply-linked file: a hide of one of its names must cover the others. */
static int
note_link(struct walk *w, const char *path, const struct stat *st)
{
	struct linked *l;

	if (!S_ISREG(st->st_mode) || st->st_nlink < 2)
		return 0;
	if (!(l = realloc(w->links, (w->n_links + 1) * sizeof(*l))))
		return KW_ERR_NOMEM;
	w->links = l;
	if (!(l[w->n_links].path = strdup(path)))
		return KW_ERR_NOMEM;
	l[w->n_links].dev = st->st_dev;
	l[w->n_links].ino = st->st_ino;
	w->n_links++;
	return 0;
}

static int
cmp_linked(const void *a, const void *b)
{
	const struct linked *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static bool
within_hide(const struct kw_sandbox_plan *p, const char *path)
{
	for (size_t i = 0; i < p->n_hides; i++)
		if (kw_path_within(path, p->hides[i]))
			return true;
	return false;
}

/*
 * A file hidden under one name (or inside a hidden directory) is hidden
 * under every other name the walk saw: a hard link made before the run
 * inside the user's trees does not lead around a hide.
 */
static int
hide_other_links(struct walk *w)
{
	int r = 0;

	if (w->n_links > 1)
		qsort(w->links, w->n_links, sizeof(*w->links), cmp_linked);
	for (size_t i = 0; r == 0 && i < w->n_links; ) {
		size_t end = i + 1;
		bool hidden = within_hide(&w->pp->pub, w->links[i].path);

		for (; end < w->n_links && cmp_linked(&w->links[i], &w->links[end]) == 0; end++)
			if (!hidden)
				hidden = within_hide(&w->pp->pub, w->links[end].path);
		for (size_t k = i; hidden && r == 0 && k < end; k++)
			r = add_hide(w->pp, w->links[k].path);
		i = end;
	}
	return r;
}

static int
walk_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	struct walk *w = kw_sb_walk;
	char real[PATH_MAX];

	if (++w->entries > KW_SB_WALK_MAX_ENTRIES) {
		w->hit_entries = true;
		return FTW_STOP;
	}
	if (type == FTW_F && (w->r = note_link(w, path, st)) != 0)
		return FTW_STOP;
	for (size_t i = 0; i < w->policy->n_exclude; i++) {
		if (!kw_glob_match(w->policy->exclude_patterns[i], path))
			continue;
		if (type == FTW_SL) {
			/* Hide what the link names, when it is reachable at all. */
			if (realpath(path, real) && within_grant(&w->pp->pub, real))
				w->r = add_hide(w->pp, real);
		} else {
			w->r = add_hide(w->pp, path);
		}
		/* Go on below a hidden directory: its files' other names must be seen. */
		return w->r ? FTW_STOP : FTW_CONTINUE;
	}
	if (type == FTW_D && ftw->level >= KW_SB_WALK_MAX_DEPTH) {
		w->hit_depth = true;
		return FTW_SKIP_SUBTREE;
	}
	return FTW_CONTINUE;
}

static int
find_hides(struct kw_sb_plan_priv *pp, const struct kw_sandbox_policy *policy, char **roots,
    size_t n_roots)
{
	struct walk w = { .pp = pp, .policy = policy };
	int r = 0;

	/* deniedPaths inside a grant (a grant inside one was dropped already). */
	for (size_t i = 0; r == 0 && i < pp->n_denied; i++) {
		struct stat st;

		if (lstat(pp->denied[i], &st) == 0 && !S_ISLNK(st.st_mode) &&
		    within_grant(&pp->pub, pp->denied[i]))
			r = add_hide(pp, pp->denied[i]);
	}
	if (r != 0 || (policy->n_exclude == 0 && pp->pub.n_hides == 0))
		return r;
	kw_sb_walk = &w;
	for (size_t i = 0; i < n_roots && !w.hit_entries && w.r == 0; i++)
		nftw(roots[i], walk_one, 32, FTW_PHYS | FTW_ACTIONRETVAL);
	kw_sb_walk = NULL;
	r = w.r ? w.r : hide_other_links(&w);
	for (size_t i = 0; i < w.n_links; i++)
		free(w.links[i].path);
	free(w.links);
	if (r != 0)
		return r;
	if (w.hit_entries)
		r = kw_sb_plan_warn(pp, "excludePatterns: stopped looking after %d entries; files "
		    "beyond are not hidden", KW_SB_WALK_MAX_ENTRIES);
	if (r == 0 && w.hit_depth)
		r = kw_sb_plan_warn(pp, "excludePatterns: did not look deeper than %d levels; "
		    "files below are not hidden", KW_SB_WALK_MAX_DEPTH);
	return r;
}

/* Drop a grant inside another that gives it all its rights already: one rule does. */
static int
compact_grants(struct kw_sandbox_plan *p)
{
	bool *covered = calloc(p->n_grants + 1, sizeof(bool));
	size_t k = 0;

	if (!covered)
		return KW_ERR_NOMEM;
	for (size_t i = 0; i < p->n_grants; i++)
		for (size_t j = 0; j < p->n_grants && !covered[i]; j++)
			covered[i] = j != i && !covered[j] &&
			    strcmp(p->grants[i].path, p->grants[j].path) != 0 &&
			    kw_path_within(p->grants[i].path, p->grants[j].path) &&
			    (p->grants[i].rights & ~p->grants[j].rights) == 0;
	for (size_t i = 0; i < p->n_grants; i++) {
		if (covered[i])
			free(p->grants[i].path);
		else
			p->grants[k++] = p->grants[i];
	}
	p->n_grants = k;
	free(covered);
	return 0;
}

/* Under allowExec, execute wherever one may read (but not devices or /proc). */
static void
grant_exec_any(struct kw_sandbox_plan *p)
{
	for (size_t i = 0; i < p->n_grants; i++)
		if ((p->grants[i].rights & KW_SB_READ) && strcmp(p->grants[i].why, "dev") != 0 &&
		    strcmp(p->grants[i].why, "proc") != 0)
			p->grants[i].rights |= KW_SB_EXEC;
}

/*
 * With the relay, the program building the plan (keywarden itself: its
 * hook and key get are what the relay is for) is readable inside, so the
 * agent can run it wherever it is installed; executable only where the
 * exec rules make read grants so (allowExec without a whitelist).
 */
static int
grant_self(struct kw_sb_plan_priv *pp)
{
	return kw_sb_plan_grant(pp, "/proc/self/exe", KW_SB_READ, "relay", false);
}

int
kw_sb_plan_grants(struct kw_sb_plan_priv *pp, const struct kw_sandbox_policy *policy,
    const struct kw_sandbox_caps *caps, const struct kw_sandbox_request *req, char *err,
    size_t err_len)
{
	char **roots = NULL;
	size_t n_roots = 0;
	int r;

	(void)caps;
	if ((r = load_denied(pp, policy)) != 0 ||
	    (r = grant_user(pp, policy, req, &roots, &n_roots, err, err_len)) != 0 ||
	    (policy->profile && strcmp(policy->profile, "claude") == 0 &&
	    (r = grant_claude(pp, policy, req, &roots, &n_roots)) != 0) ||
	    (r = grant_system(pp)) != 0 ||
	    (req->relay && (r = grant_self(pp)) != 0) ||
	    (r = find_hides(pp, policy, roots, n_roots)) != 0)
		goto out;
	if (pp->pub.exec == KW_SB_EXEC_ANY)
		grant_exec_any(&pp->pub);
	if ((r = compact_hides(&pp->pub)) == 0)
		r = compact_grants(&pp->pub);
 out:
	kw_sb_strv_free(roots, n_roots);
	return r;
}
