/*
 * doctor_perms.c - configuration and log file permissions: the guide's
 * "chmod 600 ~/.config/claude/config.json", "chmod 600 ~/.claude/logs/NAME.log"
 * and "chmod 700 ~/.config/claude/", for Claude Code's files and
 * keywarden's own (the configuration file, the token cache).
 *
 * A file or directory the user owns is private when neither its group nor
 * others have any access: directories 0700, files 0600 (0700 when the
 * owner may run them).  One the user does not own (a system configuration
 * owned by root) must at least not be writable by others.  Symbolic links
 * are not followed; a walk stops at a depth of 16 or after 20000 entries.
 * --fix changes only modes, only of what the user owns, through a
 * descriptor opened without following links and checked to be what was
 * looked at.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/doctor.h"

#define WALK_DEPTH	16
#define WALK_ENTRIES	20000
#define REPORT_MAX	5	/* items per place; the rest are counted */

struct place {
	const char *check;
	char *path;
	bool tree;		/* a directory to walk */
	bool follow;		/* the configuration: judged as loaded, through a link */
};

struct walk {
	struct kw_dr *d;
	const struct place *p;
	bool fix;
	size_t entries, bad, fixed;
};

/* What group and others may do, in words. */
static const char *
exposure(mode_t mode, bool dir)
{
	if (mode & 002)
		return "anyone may change it";
	if (mode & 020)
		return "its group may change it";
	if (mode & 004)
		return dir ? "anyone may list it" : "anyone may read it";
	if (mode & 040)
		return dir ? "its group may list it" : "its group may read it";
	return dir ? "others may reach what is in it" : "others may run it";
}

static mode_t
private_mode(const struct stat *st)
{
	if (S_ISDIR(st->st_mode) || (st->st_mode & S_IXUSR))
		return 0700;
	return 0600;
}

/*
 * chmod path to want if it is still the file seen (same inode, ours, not a
 * link).  O_PATH opens even a file we may not read; /proc/self/fd/N then
 * names that very inode.  0 or -1 with errno.
 */
static int
chmod_seen(const char *path, const struct stat *seen, mode_t want)
{
	char fdpath[64];
	struct stat st;
	int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC), r = -1;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		goto out;
	if (st.st_dev != seen->st_dev || st.st_ino != seen->st_ino || st.st_uid != geteuid() ||
	    (st.st_mode & S_IFMT) != (seen->st_mode & S_IFMT)) {
		errno = EAGAIN;
		goto out;
	}
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
	r = chmod(fdpath, want);
 out:
	if (r < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * Whether st may be shared (readable by others): a file of someone else's,
 * or the system's configuration, which users read for broker.socket.
 */
static bool
shared(const struct walk *w, const struct stat *st)
{
	return st->st_uid != geteuid() || (w->p->follow && st->st_uid == 0);
}

static void
judge(struct walk *w, const char *path, const struct stat *st)
{
	mode_t mode = st->st_mode & 07777, want = private_mode(st);
	bool dir = S_ISDIR(st->st_mode);
	_cleanup_free_ char *fix = NULL;

	if (!dir && !S_ISREG(st->st_mode))
		return;
	if (shared(w, st)) {
		if ((mode & 022) && !w->fix)
			kw_dr_add(w->d, w->p->check, KW_DR_FAIL, path, 0,
			    "have its owner run chmod go-w on it",
			    "%s is mode %04o and owned by uid %u: %s", kw_cli_safe(path),
			    (unsigned)mode, (unsigned)st->st_uid, exposure(mode, dir));
		return;
	}
	if (!(mode & 077))
		return;
	if (w->fix) {
		if (chmod_seen(path, st, want) < 0) {
			fprintf(stderr, "keywarden doctor: cannot change %s: %s\n",
			    kw_cli_safe(path), strerror(errno));
			return;
		}
		fprintf(stderr, "keywarden doctor: fixed: %s is now mode %04o (was %04o)\n",
		    kw_cli_safe(path), (unsigned)want, (unsigned)mode);
		w->fixed++;
		return;
	}
	if (w->bad++ >= REPORT_MAX)
		return;
	fix = kw_dr_fmt("chmod %o %s (keywarden doctor --fix does it)", (unsigned)want,
	    kw_cli_safe(path));
	kw_dr_add(w->d, w->p->check, KW_DR_FAIL, path, 0, fix, "%s is mode %04o: %s",
	    kw_cli_safe(path), (unsigned)mode, exposure(mode, dir));
}

static void
visit(struct walk *w, const char *path, int depth)
{
	struct stat st;
	struct dirent *e;
	DIR *dir;

	if ((w->p->follow ? stat(path, &st) : lstat(path, &st)) < 0 || S_ISLNK(st.st_mode))
		return;
	w->entries++;
	judge(w, path, &st);
	if (!w->p->tree || !S_ISDIR(st.st_mode) || depth >= WALK_DEPTH ||
	    st.st_uid != geteuid() || !(dir = opendir(path)))
		return;
	while ((e = readdir(dir)) && w->entries < WALK_ENTRIES) {
		char *child;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (!(child = kw_dr_fmt("%s/%s", path, e->d_name))) {
			w->d->oom = true;
			break;
		}
		visit(w, child, depth + 1);
		free(child);
	}
	closedir(dir);
}

/* The places looked at, path malloc'd (NULL when out of memory). */
static size_t
places(struct kw_dr *d, struct place *p, size_t max)
{
	const char *run = getenv("XDG_RUNTIME_DIR");
	size_t n = 0;

	if (max < 6)
		return 0;
	p[n++] = (struct place){ "permissions.claude", kw_dr_fmt("%s/.claude", d->home), true, false };
	p[n++] = (struct place){ "permissions.claude", kw_dr_fmt("%s/.claude.json", d->home), false, false };
	p[n++] = (struct place){ "permissions.claude", kw_dr_fmt("%s/.config/claude", d->home), true, false };
	p[n++] = (struct place){ "permissions.keywarden", kw_dr_fmt("%s", d->cfg_path), false, true };
	if (run && run[0] == '/')
		p[n++] = (struct place){ "permissions.keywarden", kw_dr_fmt("%s/keywarden", run),
		    true, false };
	for (size_t i = 0; i < n; i++)
		if (!p[i].path)
			d->oom = true;
	return n;
}

static void
free_places(struct place *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(p[i].path);
}

/* One line for a check with nothing wrong: what was looked at. */
static void
pass_line(struct kw_dr *d, const char *check, const struct place *p, size_t n,
    const size_t *entries)
{
	char text[2048] = "";
	size_t len = 0, looked = 0;

	for (size_t i = 0; i < n; i++) {
		if (strcmp(p[i].check, check) != 0 || !p[i].path || entries[i] == 0)
			continue;
		len += (size_t)snprintf(text + len, len < sizeof(text) ? sizeof(text) - len : 0,
		    "%s%s%s", looked ? ", " : "", kw_cli_safe(p[i].path),
		    p[i].tree && entries[i] > 1 ? " and what is in it" : "");
		looked++;
		if (len >= sizeof(text))
			break;
	}
	if (looked == 0)
		kw_dr_add(d, check, KW_DR_PASS, NULL, 0, NULL, "nothing to check: %s",
		    strcmp(check, "permissions.claude") == 0 ?
		    "no ~/.claude, ~/.claude.json or ~/.config/claude" :
		    "no configuration file and no token cache file");
	else
		kw_dr_add(d, check, KW_DR_PASS, NULL, 0, NULL, "private to their owner: %s", text);
}

void
kw_dr_check_perms(struct kw_dr *d)
{
	struct place p[8];
	size_t n = places(d, p, KW_ELEMENTSOF(p)), entries[8] = { 0 };
	const char *checks[] = { "permissions.claude", "permissions.keywarden" };

	for (size_t c = 0; c < KW_ELEMENTSOF(checks); c++) {
		size_t before = d->n_items;
		for (size_t i = 0; i < n; i++) {
			struct walk w = { .d = d, .p = &p[i] };
			if (strcmp(p[i].check, checks[c]) != 0 || !p[i].path)
				continue;
			visit(&w, p[i].path, 0);
			entries[i] = w.entries;
			if (w.bad > REPORT_MAX)
				kw_dr_add(d, checks[c], KW_DR_FAIL, p[i].path, 0,
				    "keywarden doctor --fix makes them private (as chmod -R go-rwx does)",
				    "and %zu more under %s that others may reach",
				    w.bad - REPORT_MAX, kw_cli_safe(p[i].path));
		}
		if (d->n_items == before)
			pass_line(d, checks[c], p, n, entries);
	}
	free_places(p, n);
}

int
kw_dr_fix_perms(struct kw_dr *d)
{
	struct place p[8];
	size_t n = places(d, p, KW_ELEMENTSOF(p));
	int fixed = 0;

	for (size_t i = 0; i < n; i++) {
		struct walk w = { .d = d, .p = &p[i], .fix = true };
		if (!p[i].path)
			continue;
		visit(&w, p[i].path, 0);
		fixed += (int)w.fixed;
	}
	free_places(p, n);
	return fixed;
}
