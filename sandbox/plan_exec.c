/*
 * plan_exec.c - the command the sandbox runs, and what must be executable
 * for it to start when execution is limited (KW_SB_EXEC_LIST/ONCE): the
 * program, its "#!" interpreter (through "env NAME" too), and the ELF
 * interpreter (PT_INTERP: the dynamic loader the kernel opens with the
 * execute right checked).  ELF program headers are read by hand: two
 * fixed structures from <elf.h>, no library needed.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/errors.h"
#include "sandbox/plan_internal.h"

static bool
is_exec_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int
kw_sb_which(const char *name, const char *env_path, const char *cwd, char *out, size_t out_len)
{
	const char *p = env_path && *env_path ? env_path : "/usr/local/bin:/usr/bin:/bin";

	if (strchr(name, '/')) {
		if (name[0] == '/')
			snprintf(out, out_len, "%s", name);
		else
			snprintf(out, out_len, "%s/%s", cwd, name);
		return is_exec_file(out) ? 0 : KW_ERR_NOT_FOUND;
	}
	while (*p) {
		const char *end = strchr(p, ':');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		/* An empty or relative PATH entry would mean the cwd: not trusted here. */
		if (len > 0 && p[0] == '/' &&
		    snprintf(out, out_len, "%.*s/%s", (int)len, p, name) < (int)out_len &&
		    is_exec_file(out))
			return 0;
		p = end ? end + 1 : p + len;
	}
	return KW_ERR_NOT_FOUND;
}

/* PT_INTERP of an ELF file (either class, native byte order), or "" when none. */
static void
elf_interp(int fd, char *out, size_t out_len)
{
	unsigned char ident[EI_NIDENT];
	uint64_t phoff, n, entsize;
	bool is64;

	out[0] = '\0';
	if (pread(fd, ident, sizeof(ident), 0) != (ssize_t)sizeof(ident) ||
	    memcmp(ident, ELFMAG, SELFMAG) != 0)
		return;
	is64 = ident[EI_CLASS] == ELFCLASS64;
	if (is64) {
		Elf64_Ehdr eh;

		if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh))
			return;
		phoff = eh.e_phoff, n = eh.e_phnum, entsize = eh.e_phentsize;
	} else {
		Elf32_Ehdr eh;

		if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh))
			return;
		phoff = eh.e_phoff, n = eh.e_phnum, entsize = eh.e_phentsize;
	}
	if (entsize < (is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr)) || n > 4096)
		return;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t type, off, size;

		if (is64) {
			Elf64_Phdr ph;

			if (pread(fd, &ph, sizeof(ph), (off_t)(phoff + i * entsize)) !=
			    (ssize_t)sizeof(ph))
				return;
			type = ph.p_type, off = ph.p_offset, size = ph.p_filesz;
		} else {
			Elf32_Phdr ph;

			if (pread(fd, &ph, sizeof(ph), (off_t)(phoff + i * entsize)) !=
			    (ssize_t)sizeof(ph))
				return;
			type = ph.p_type, off = ph.p_offset, size = ph.p_filesz;
		}
		if (type != PT_INTERP)
			continue;
		if (size == 0 || size >= out_len ||
		    pread(fd, out, size, (off_t)off) != (ssize_t)size) {
			out[0] = '\0';
			return;
		}
		out[size] = '\0';
		return;
	}
}

/* The "#!" interpreter of a script ("env NAME" resolved through PATH), or "". */
static void
script_interp(int fd, const char *env_path, const char *cwd, char *out, size_t out_len)
{
	char head[256], *p, *tok, *save = NULL;
	ssize_t n = pread(fd, head, sizeof(head) - 1, 0);

	out[0] = '\0';
	if (n < 3 || head[0] != '#' || head[1] != '!')
		return;
	head[n] = '\0';
	if ((p = strchr(head, '\n')))
		*p = '\0';
	if (!(tok = strtok_r(head + 2, " \t", &save)))
		return;
	snprintf(out, out_len, "%s", tok);
	if (strcmp(strrchr(tok, '/') ? strrchr(tok, '/') + 1 : tok, "env") != 0)
		return;
	while ((tok = strtok_r(NULL, " \t", &save)) && (tok[0] == '-' || strchr(tok, '=')))
		;
	if (tok && kw_sb_which(tok, env_path, cwd, out, out_len) != 0)
		out[0] = '\0';
}

/* Add path and what it needs to start to the exec list (real paths), two levels deep. */
static int
add_exec(struct kw_sb_plan_priv *pp, const char *path, const struct kw_sandbox_request *req,
    int depth)
{
	char real[PATH_MAX], interp[PATH_MAX];
	int fd, r;

	if (!realpath(path, real))
		return kw_sb_plan_warn(pp, "exec %s: %s: not executable in the sandbox", path,
		    strerror(errno));
	if (kw_sb_plan_denied(pp, real))
		return kw_sb_plan_warn(pp, "exec %s lies inside deniedPaths: not executable", real);
	if ((r = kw_sb_strv_add(&pp->pub.exec_paths, &pp->pub.n_exec_paths, real)) != 0 ||
	    depth >= 2 || (fd = open(real, O_RDONLY | O_CLOEXEC)) < 0)
		return r;
	script_interp(fd, req->env_path, req->cwd, interp, sizeof(interp));
	if (!interp[0])
		elf_interp(fd, interp, sizeof(interp));
	close(fd);
	return interp[0] == '/' ? add_exec(pp, interp, req, depth + 1) : 0;
}

int
kw_sb_plan_command(struct kw_sb_plan_priv *pp, const struct kw_sandbox_policy *policy,
    const struct kw_sandbox_request *req, char *err, size_t err_len)
{
	char path[PATH_MAX];
	int r;

	if (kw_sb_which(req->argv[0], req->env_path, req->cwd, path, sizeof(path)) != 0) {
		snprintf(err, err_len, "%.200s: command not found (or not executable) in PATH",
		    req->argv[0]);
		return KW_ERR_INVALID;
	}
	if (!(pp->command = strdup(path)))
		return KW_ERR_NOMEM;
	/* The command itself may run whatever the mode, even from outside the grants. */
	if ((r = add_exec(pp, path, req, 0)) != 0)
		return r;
	for (size_t i = 0; pp->pub.exec == KW_SB_EXEC_LIST && i < policy->n_whitelist; i++) {
		if (kw_sb_which(policy->whitelist[i], req->env_path, req->cwd, path,
		    sizeof(path)) != 0)
			r = kw_sb_plan_warn(pp, "whitelist %s: not found in PATH",
			    policy->whitelist[i]);
		else
			r = add_exec(pp, path, req, 0);
		if (r != 0)
			return r;
	}
	return 0;
}
