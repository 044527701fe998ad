/*
 * outfile.c - where a command writes a result file (--output): a 0600
 * temporary file beside the target, fsync'd and renamed into place, so the
 * file appears whole or not at all (see struct kw_cli_out in cli.h).  Under
 * sudo the file is given to the user who ran sudo: an export made for them
 * is theirs to read, not root's.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

/* A uid or gid as sudo writes it: decimal digits, below (uid_t)-1. */
static bool
parse_id(const char *s, uint32_t *ret_id)
{
	unsigned long long v = 0;

	if (!s || !*s || strlen(s) > 10)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (unsigned)(*s - '0');
	}
	if (v >= UINT32_MAX)
		return false;
	*ret_id = (uint32_t)v;
	return true;
}

int
kw_cli_give_to_invoker(int fd, const char *what, const char *path)
{
	uint32_t uid, gid;

	/* Only root can give a file away, and only sudo says to whom. */
	if (geteuid() != 0 || !parse_id(getenv("SUDO_UID"), &uid) ||
	    !parse_id(getenv("SUDO_GID"), &gid) || uid == 0)
		return 0;
	if (fchown(fd, (uid_t)uid, (gid_t)gid) == 0)
		return 0;
	fprintf(stderr, "keywarden: %s: %s stays owned by root: cannot give it to uid %u "
	    "(SUDO_UID): %s\n", what, kw_cli_safe(path), (unsigned)uid, strerror(errno));
	return -1;
}

int
kw_cli_out_open(struct kw_cli_out *o, const char *what, const char *path, bool force)
{
	struct stat st;
	int fd = -1;

	*o = (struct kw_cli_out){ .f = stdout, .force = force };
	if (!path)
		return 0;
	/* Say so before any work; the rename says it again if the file appears meanwhile. */
	if (!force && lstat(path, &st) == 0)
		return kw_cli_fail(KW_ERR_IO, what, "%s exists; use --force to replace it",
		    kw_cli_safe(path));
	if (!(o->path = strdup(path)) || asprintf(&o->tmp, "%s.tmp.XXXXXX", path) < 0) {
		o->tmp = NULL;
		goto fail;
	}
	if ((fd = mkostemp(o->tmp, O_CLOEXEC)) < 0 || fchmod(fd, 0600) < 0 ||
	    !(o->f = fdopen(fd, "w")))
		goto fail;
	return 0;
 fail:
	kw_cli_fail(KW_ERR_IO, what, "%s: %s", kw_cli_safe(path), strerror(errno));
	if (fd >= 0) {
		close(fd);
		unlink(o->tmp);
	}
	free(o->tmp);
	free(o->path);
	*o = (struct kw_cli_out){ 0 };
	return KW_EXIT_DENIED;
}

static int
fsync_dir_of(const char *path)
{
	char *copy = strdup(path);
	int fd = copy ? open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1, r;

	free(copy);
	if (fd < 0)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

/* Move the finished temporary file to its name; 0 or -1 with errno. */
static int
out_publish(struct kw_cli_out *o)
{
	if (o->force)
		return rename(o->tmp, o->path);
	if (renameat2(AT_FDCWD, o->tmp, AT_FDCWD, o->path, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	/* No RENAME_NOREPLACE on this file system: a hard link refuses to replace too. */
	if (link(o->tmp, o->path) < 0)
		return -1;
	unlink(o->tmp);
	return 0;
}

/* Free o; the temporary file is removed unless it was published under its name. */
static void
out_release(struct kw_cli_out *o, bool published)
{
	if (o->f)
		fclose(o->f);
	if (o->tmp && !published)
		unlink(o->tmp);
	free(o->tmp);
	free(o->path);
	*o = (struct kw_cli_out){ 0 };
}

int
kw_cli_out_close(struct kw_cli_out *o, const char *what)
{
	int ex = KW_EXIT_OK;

	if (!o->path) {
		if (fflush(stdout) != 0 || ferror(stdout))
			ex = kw_cli_fail(KW_ERR_IO, what, "writing stdout: %s", strerror(errno));
		return ex;
	}
	if (fflush(o->f) != 0 || ferror(o->f) || fsync(fileno(o->f)) < 0) {
		kw_cli_fail(KW_ERR_IO, what, "writing %s: %s", kw_cli_safe(o->path), strerror(errno));
		out_release(o, false);
		return KW_EXIT_DENIED;
	}
	/* Given away before it has its name: it never appears as root's. */
	(void)kw_cli_give_to_invoker(fileno(o->f), what, o->path);
	fclose(o->f);
	o->f = NULL;
	if (out_publish(o) < 0) {
		if (errno == EEXIST)
			kw_cli_fail(KW_ERR_IO, what, "%s exists; use --force to replace it",
			    kw_cli_safe(o->path));
		else
			kw_cli_fail(KW_ERR_IO, what, "%s: %s", kw_cli_safe(o->path), strerror(errno));
		out_release(o, false);
		return KW_EXIT_DENIED;
	}
	if (fsync_dir_of(o->path) < 0)
		ex = kw_cli_fail(KW_ERR_IO, what, "%s: syncing its directory: %s",
		    kw_cli_safe(o->path), strerror(errno));
	out_release(o, true);
	return ex;
}

void
kw_cli_out_abort(struct kw_cli_out *o)
{
	if (o->path)
		out_release(o, false);
}
