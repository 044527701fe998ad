/*
 * rules_path.c - deciding one file access.
 *
 * The path is resolved as the tool would open it (cwd, "~", ".."), and --
 * when the file system may be asked -- through symbolic links too; both the
 * path as written and the one it leads to must pass, so a link into a
 * denied directory is denied and so is a denied link.  Order: device files
 * every program uses pass; deniedPaths and excludePatterns deny; a
 * non-empty allowedPaths confines; readOnly refuses writes; a file that
 * looks sensitive (by name, or for a small file being read, by content)
 * is asked about.  A walk of a whole tree (kw_decide_tree) reaches the
 * denied paths under it.
 */
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/errors.h"
#include "policy/match.h"
#include "policy/policy_internal.h"

#define SNIFF_MAX	(64 * 1024)	/* larger files are not read for content */

static const char *const harmless[] = {
	"/dev/null", "/dev/zero", "/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/tty",
	"/dev/random", "/dev/urandom",
};

static bool
is_harmless(const char *path)
{
	for (size_t i = 0; i < KW_ELEMENTSOF(harmless); i++)
		if (strcmp(path, harmless[i]) == 0)
			return true;
	return strncmp(path, "/dev/fd/", 8) == 0 || strncmp(path, "/proc/self/fd/", 14) == 0;
}

/* An entry of a path list, made absolute: "~/x" from home, "./x" from cwd. */
static bool
entry_path(const char *entry, const struct kw_policy_ctx *ctx, char *out, size_t len)
{
	char joined[4096];
	int n;

	if (strcmp(entry, "~") == 0 || strncmp(entry, "~/", 2) == 0)
		n = snprintf(joined, sizeof(joined), "%s/%s", ctx->home, entry + 1);
	else if (strcmp(entry, ".") == 0 || strncmp(entry, "./", 2) == 0)
		n = snprintf(joined, sizeof(joined), "%s/%s", ctx->cwd, entry + 1);
	else
		n = snprintf(joined, sizeof(joined), "%s", entry);
	return n > 0 && (size_t)n < sizeof(joined) &&
	    kw_path_normalise(joined, out, len) == 0;
}

static bool
has_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

static char **
absolute_entries(const struct kw_strs *list, const struct kw_policy_ctx *ctx)
{
	char **v = calloc(list->n + 1, sizeof(char *)), abs[4096];

	for (size_t i = 0; v && i < list->n; i++)
		if (strncmp(list->v[i], "**", 2) != 0 && entry_path(list->v[i], ctx, abs, sizeof(abs)))
			v[i] = strdup(abs);	/* NULL (skipped) also when out of memory */
	return v;
}

/* The entries of list (allowed or denied paths) made absolute for ctx (NULL: none). */
static char **
entries_for(const struct kw_policy *p, const struct kw_policy_ctx *ctx, struct kw_decision *d,
    const struct kw_strs *list)
{
	struct kw_path_memo *m = d->memo;

	if (m && strcmp(m->cwd, ctx->cwd) != 0)
		kw_path_memo_clear(m);
	if (!m && !(m = d->memo = calloc(1, sizeof(*m))))
		return NULL;
	if (!m->allowed && !m->denied) {
		snprintf(m->cwd, sizeof(m->cwd), "%s", ctx->cwd);
		m->allowed = absolute_entries(&p->allowed_paths, ctx);
		m->n_allowed = m->allowed ? p->allowed_paths.n : 0;
		m->denied = absolute_entries(&p->denied_paths, ctx);
		m->n_denied = m->denied ? p->denied_paths.n : 0;
	}
	return list == &p->allowed_paths ? m->allowed : m->denied;
}

/* Whether path is within (or, for a pattern, matches) one entry; *ret_i says which. */
static bool
listed(const struct kw_policy *p, const struct kw_strs *list, const struct kw_policy_ctx *ctx,
    struct kw_decision *d, const char *path, size_t *ret_i)
{
	char **abs = entries_for(p, ctx, d, list);

	for (size_t i = 0; i < list->n; i++) {
		const char *e = list->v[i];
		bool hit;
		if (strncmp(e, "**", 2) == 0)
			hit = kw_glob_match(e, path);
		else if (!abs || !abs[i])
			continue;
		else
			hit = has_glob(abs[i]) ? kw_glob_match(abs[i], path) :
			    kw_path_within(path, abs[i]);
		if (hit) {
			*ret_i = i;
			return true;
		}
	}
	return false;
}

static bool
excluded(const struct kw_policy *p, const char *path, size_t *ret_i)
{
	const struct kw_strs *list = &p->exclude;

	for (size_t i = 0; i < list->n; i++)
		if ((!p->exclude_lit[i] || strstr(path, p->exclude_lit[i])) &&
		    kw_glob_match(list->v[i], path)) {
			*ret_i = i;
			return true;
		}
	return false;
}

static bool
contains_word(const char *hay, const char *word)
{
	return strcasestr(hay, word) != NULL;
}

/* A line "WORD ... = value" or "WORD: value", or a private key block. */
static bool
content_sensitive(const char *buf, const struct kw_strs *words, const char **ret_word)
{
	if (strstr(buf, "-----BEGIN") && strstr(buf, "PRIVATE KEY-----")) {
		*ret_word = "a private key";
		return true;
	}
	for (const char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		const char *end = strchr(line, '\n'), *sep;
		size_t len = end ? (size_t)(end - line) : strlen(line);
		for (size_t i = 0; i < words->n; i++) {
			const char *w = strcasestr(line, words->v[i]);
			if (!w || (size_t)(w - line) >= len)
				continue;
			for (sep = w + strlen(words->v[i]); sep < line + len &&
			    (isalnum((unsigned char)*sep) || *sep == '_' || *sep == '"' ||
			    *sep == '\'' || *sep == ' ' || *sep == '\t'); sep++)
				;
			if (sep < line + len && (*sep == '=' || *sep == ':')) {
				*ret_word = words->v[i];
				return true;
			}
		}
	}
	return false;
}

struct first_secret {
	char rule[80];
};

static int
on_secret(const struct kw_finding *f, const char *value, size_t len, void *ctx)
{
	struct first_secret *fs = ctx;

	(void)value;
	(void)len;
	snprintf(fs->rule, sizeof(fs->rule), "%.64s", f->rule);
	return KW_ERR_DENIED;	/* stop at the first: one is enough to ask */
}

/* A value one of the secret rules finds (not in an allowlisted path); its rule in fs. */
static bool
holds_secret(const struct kw_policy *p, const char *path, const char *buf, size_t len,
    struct first_secret *fs)
{
	int r;

	if (!p->secrets || kw_detector_path_allowed(p->secrets, path))
		return false;
	if ((r = kw_detect_buffer(p->secrets, buf, len, on_secret, fs)) < 0 && r != KW_ERR_DENIED)
		snprintf(fs->rule, sizeof(fs->rule), "(unknown: the secret rules could not run)");
	return r < 0;	/* not checked is asked about too */
}

/*
 * Read a small regular text file the caller could read itself, and look
 * inside: a sensitive word before a value, a private key, a secret rule's
 * match.  What it holds is never kept: only the word or rule id goes to why.
 */
static bool
sniff(const struct kw_policy *p, const char *path, const struct kw_policy_ctx *ctx,
    char *why, size_t why_len)
{
	struct first_secret fs = { .rule = "" };
	const char *word = NULL;
	char *buf = NULL;
	struct stat st;
	bool hit = false;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		return false;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > SNIFF_MAX ||
	    !(st.st_uid == ctx->uid ? st.st_mode & S_IRUSR : st.st_gid == ctx->gid ?
	    st.st_mode & S_IRGRP : st.st_mode & S_IROTH) || !(buf = malloc(SNIFF_MAX + 1)))
		goto out;
	if ((n = read(fd, buf, SNIFF_MAX)) <= 0)
		goto out;
	buf[n] = '\0';
	if (memchr(buf, '\0', (size_t)n))
		goto out;	/* binary */
	if ((hit = content_sensitive(buf, &p->sensitive, &word)))
		snprintf(why, why_len, "%s", word);
	else if ((hit = holds_secret(p, path, buf, (size_t)n, &fs)))
		snprintf(why, why_len, "secret rule %s", fs.rule);	/* never the value */
 out:
	if (buf)
		explicit_bzero(buf, SNIFF_MAX);
	free(buf);
	close(fd);
	return hit;
}

/* The deny and confine rules for one spelling of the path; true when it decided. */
static int
deny_rules(const struct kw_policy *p, const struct kw_policy_ctx *ctx, struct kw_decision *d,
    const char *path, const char *shown, enum kw_effect_kind access, bool *ret_done)
{
	char rule[160];
	size_t i;

	*ret_done = true;
	if (listed(p, &p->denied_paths, ctx, d, path, &i)) {
		snprintf(rule, sizeof(rule), "%s: %s", p->denied_paths.key, p->denied_paths.v[i]);
		return kw_decision_add(d, access, shown, KW_VERDICT_DENY, rule,
		    "%s is in a denied path (%.64s)", path, p->denied_paths.v[i]);
	}
	if (excluded(p, path, &i)) {
		snprintf(rule, sizeof(rule), "%s: %s", p->exclude.key, p->exclude.v[i]);
		return kw_decision_add(d, access, shown, KW_VERDICT_DENY, rule,
		    "%s matches an excluded pattern (%.64s)", path, p->exclude.v[i]);
	}
	if (p->allowed_paths.n > 0 && !listed(p, &p->allowed_paths, ctx, d, path, &i))
		return kw_decision_add(d, access, shown, KW_VERDICT_DENY, p->allowed_paths.key,
		    "%s is outside the allowed paths", path);
	*ret_done = false;
	return 0;
}

/*
 * Deleting a directory deletes what is under it, a denied path too; so does
 * chmod -R change it.  A recursive read (grep -r, tar, a search) reads it:
 * asked about, as the search tools are, since a walk may skip hidden files.
 */
static int
holds_denied(const struct kw_policy *p, const struct kw_policy_ctx *ctx, struct kw_decision *d,
    const char *path, enum kw_effect_kind access, bool *ret_done)
{
	char **entries = entries_for(p, ctx, d, &p->denied_paths), rule[160];
	const char *abs;

	*ret_done = false;
	for (size_t i = 0; entries && i < p->denied_paths.n; i++) {
		if (!(abs = entries[i]) || has_glob(abs) || !kw_path_within(abs, path) ||
		    strcmp(abs, path) == 0)
			continue;
		*ret_done = true;
		snprintf(rule, sizeof(rule), "%s: %s", p->denied_paths.key, p->denied_paths.v[i]);
		if (access == KW_EFFECT_READ)
			return kw_decision_add(d, access, abs, KW_VERDICT_ASK, rule,
			    "reading the tree %.128s would read inside the denied path %.64s",
			    path, p->denied_paths.v[i]);
		return kw_decision_add(d, access, path, KW_VERDICT_DENY, rule,
		    "%s %.128s would reach the denied path %.64s", access == KW_EFFECT_DELETE ?
		    "deleting" : "changing", path, p->denied_paths.v[i]);
	}
	return 0;
}

int
kw_decide_tree(const struct kw_policy *p, const struct kw_policy_ctx *ctx,
    struct kw_decision *d, const char *path, enum kw_effect_kind access)
{
	struct kw_resolved res, *rp = &res;
	bool done = false;
	int r = 0;

	/* A path that cannot be resolved was asked about by kw_decide_path. */
	if (kw_path_resolve_cached(path, ctx->cwd, ctx->home, ctx->fs, kw_decision_dirs(d), rp) < 0)
		goto out;
	if ((r = holds_denied(p, ctx, d, rp->real, access, &done)) < 0 || done)
		goto out;
	if (strcmp(rp->real, rp->lexical) != 0)
		r = holds_denied(p, ctx, d, rp->lexical, access, &done);
 out:
	return r;
}

int
kw_decide_path(const struct kw_policy *p, const struct kw_policy_ctx *ctx,
    struct kw_decision *d, const char *path, enum kw_effect_kind access)
{
	struct kw_resolved res, *rp = &res;
	const char *base;
	char why[100];
	bool done = false;
	size_t i;
	int r;

	if (kw_path_resolve_cached(path, ctx->cwd, ctx->home, ctx->fs, kw_decision_dirs(d), rp) < 0) {
		r = kw_decision_add(d, access, path, KW_VERDICT_ASK, "",
		    "the path %.128s cannot be resolved here", path);
		goto out;
	}
	if (is_harmless(rp->lexical) && is_harmless(rp->real)) {
		r = kw_decision_add(d, access, rp->lexical, KW_VERDICT_ALLOW, "", "a device file");
		goto out;
	}
	if ((r = deny_rules(p, ctx, d, rp->lexical, rp->lexical, access, &done)) < 0 || done)
		goto out;
	if (strcmp(rp->real, rp->lexical) != 0 &&
	    ((r = deny_rules(p, ctx, d, rp->real, rp->lexical, access, &done)) < 0 || done))
		goto out;
	if (access == KW_EFFECT_DELETE &&
	    ((r = holds_denied(p, ctx, d, rp->real, access, &done)) < 0 || done))
		goto out;
	if (p->read_only && access != KW_EFFECT_READ) {
		r = kw_decision_add(d, access, rp->lexical, KW_VERDICT_DENY, "security.readOnly",
		    "security.readOnly is true: no file may be written");
		goto out;
	}
	base = strrchr(rp->real, '/') ? strrchr(rp->real, '/') + 1 : rp->real;
	for (i = 0; p->detect_sensitive && i < p->sensitive.n; i++)
		if (contains_word(base, p->sensitive.v[i])) {
			r = kw_decision_add(d, access, rp->lexical, KW_VERDICT_ASK,
			    "security.sensitivePatterns", "the name of %s suggests a secret (%s)",
			    rp->lexical, p->sensitive.v[i]);
			goto out;
		}
	if (p->detect_sensitive && access == KW_EFFECT_READ && ctx->fs && rp->exists &&
	    sniff(p, rp->real, ctx, why, sizeof(why))) {
		r = kw_decision_add(d, access, rp->lexical, KW_VERDICT_ASK,
		    "security.detectSensitiveFiles", "%s looks like it holds secrets (%s)",
		    rp->lexical, why);
		goto out;
	}
	r = kw_decision_add(d, access, rp->lexical, KW_VERDICT_ALLOW, "", "no rule restricts it");
 out:
	return r;
}
