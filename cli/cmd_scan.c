/*
 * cmd_scan.c - keywarden scan [PATH...] [--staged] [--json | --sarif]
 * [--baseline FILE [--update-baseline]]: secrets in source code, found by
 * the detection engine's secret rules (not the personal-data filters,
 * which are for redacting text shown to a model: an e-mail address in
 * code is no leak to block a commit for).
 *
 * What a finding means is the configuration's code review: the rule
 * no-hardcoded-secrets in security.codeReview.rules, at
 * security.codeReview.severity.  error fails the scan (exit 1), warning and
 * info report and exit 0; with codeReview disabled or the rule not listed
 * the scan still reports (it was asked for) as notes and exits 0.
 *
 * Files named by security.excludePatterns (.env, *.pem, *.key ...) are
 * scanned unless --respect-excludes: those patterns keep secret files away
 * from a model, and they are the files most likely to hold a secret that
 * must not be committed.  Nothing a finding keeps holds the value: a
 * preview of at most its first quarter (up to 4 characters) and a hash.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/scan.h"
#include "common/config.h"
#include "common/fsutil.h"
#include "policy/detect/detect.h"

#define WHAT		"scan"
#define REVIEW_RULE	"no-hardcoded-secrets"

struct scan {
	struct kw_cli *cli;
	bool staged, sarif, update, respect_excludes;
	const char *baseline_file;
	size_t max_size;
	struct kw_config *cfg;
	struct kw_detector *det;
	struct kw_baseline *baseline;
	json_t *scanned;		/* {"file": true}: what this run read */
	struct kw_scan_result res;
	const char *buf;		/* the file being scanned, for columns */
	const char *file;
	char base[PATH_MAX];		/* where the reported paths start */
};

/* Code points in [p, p + n): bytes that do not continue a UTF-8 sequence. */
static unsigned long long
code_points(const char *p, size_t n)
{
	unsigned long long c = 0;

	for (size_t i = 0; i < n; i++)
		c += ((unsigned char)p[i] & 0xc0) != 0x80;
	return c;
}

static int
on_finding(const struct kw_finding *f, const char *value, size_t len, void *ctx)
{
	struct scan *s = ctx;
	struct kw_scan_finding *k;
	const char *nl;

	if (s->res.n == s->res.cap) {
		size_t cap = s->res.cap ? 2 * s->res.cap : 16;
		struct kw_scan_finding *nf = reallocarray(s->res.findings, cap, sizeof(*nf));
		if (!nf)
			return KW_ERR_NOMEM;
		s->res.findings = nf;
		s->res.cap = cap;
	}
	k = &s->res.findings[s->res.n];
	*k = (struct kw_scan_finding){ .line = f->line, .column = f->column };
	if (!(k->file = strdup(s->file)) || !(k->rule = strdup(f->rule))) {
		free(k->file);
		return KW_ERR_NOMEM;
	}
	s->res.n++;
	/* SARIF counts code points: those between the line's start and the match. */
	k->char_column = 1 + code_points(s->buf + f->start - (f->column - 1), f->column - 1);
	if ((nl = memrchr(value, '\n', len))) {
		k->end_line = f->line;
		for (const char *p = value; (p = memchr(p, '\n', len - (size_t)(p - value))); p++)
			k->end_line++;
		k->end_char_column = 1 + code_points(nl + 1, len - (size_t)(nl + 1 - value));
	} else {
		k->end_line = f->line;
		k->end_char_column = k->char_column + code_points(value, len);
	}
	kw_scan_preview(value, len, k->preview, sizeof(k->preview));
	kw_scan_hash(f->rule, value, len, k->hash);
	return 0;
}

static int
on_skip(const char *path, const char *reason, void *ctx)
{
	struct scan *s = ctx;

	return json_array_append_new(s->res.skipped, json_pack("{s:s, s:s}", "file", path,
	    "reason", reason)) < 0 ? KW_ERR_NOMEM : 0;
}

/* One file's bytes, reported as path. */
static int
scan_bytes(const char *path, const char *data, size_t len, void *ctx)
{
	struct scan *s = ctx;

	if (kw_detector_path_allowed(s->det, path))
		return on_skip(path, "allowlisted (security.secrets.allowlist.paths)", s);
	if (memchr(data, '\0', len < KW_SCAN_BINARY_PROBE ? len : KW_SCAN_BINARY_PROBE))
		return on_skip(path, "binary", s);
	if (json_object_set_new(s->scanned, path, json_true()) < 0)
		return KW_ERR_NOMEM;
	s->res.files++;
	s->res.bytes += len;
	s->buf = data;
	s->file = path;
	return kw_detect_buffer(s->det, data, len, on_finding, s);
}

static int
too_large(struct scan *s, const char *path)
{
	char why[64];

	snprintf(why, sizeof(why), "larger than %zu bytes (--max-size)", s->max_size);
	return on_skip(path, why, s);
}

static int
scan_file(const char *path, int fd, const struct stat *st, void *ctx)
{
	struct scan *s = ctx;
	char *data = NULL;
	size_t len = 0;
	int r;

	if ((unsigned long long)st->st_size > s->max_size)
		return too_large(s, path);
	if ((r = kw_read_fd(fd, s->max_size, &data, &len)) < 0) {
		char why[160];
		if (r == KW_ERR_INVALID)
			return too_large(s, path);
		if (r == KW_ERR_NOMEM)
			return r;
		snprintf(why, sizeof(why), "unreadable: %s", strerror(errno));
		return on_skip(path, why, s);
	}
	r = scan_bytes(path, data, len, s);
	/* The user's own file, but it may hold a key: not left in freed memory. */
	sodium_memzero(data, len);
	free(data);
	return r;
}

/* The code review's level for a finding (see the top of the file). */
static enum kw_scan_level
review_level(const struct kw_config *cfg)
{
	json_t *rules = kw_config_get(cfg, "security.codeReview.rules"), *v;
	const char *sev = kw_config_str(cfg, "security.codeReview.severity");
	bool listed = false;
	size_t i;

	json_array_foreach(rules, i, v)
		listed |= json_is_string(v) && strcmp(json_string_value(v), REVIEW_RULE) == 0;
	if (!listed || !kw_config_bool(cfg, "security.codeReview.enabled"))
		return KW_SCAN_NOTE;
	return !strcmp(sev, "warning") ? KW_SCAN_WARNING : !strcmp(sev, "info") ? KW_SCAN_NOTE :
	    KW_SCAN_ERROR;
}

static int
prepare(struct scan *s)
{
	char err[1024];
	int r;

	if ((r = kw_config_load(s->cli->config, true, &s->cfg, err, sizeof(err))) < 0 ||
	    (r = kw_detector_compile(s->cfg, KW_DETECT_SECRETS, &s->det, err, sizeof(err))) < 0)
		return kw_cli_fail(r == KW_ERR_NOMEM ? r : KW_ERR_CONFIG, WHAT, "%s",
		    kw_cli_safe(err));
	s->res.level = review_level(s->cfg);
	if (!(s->res.skipped = json_array()) || !(s->scanned = json_object()))
		return KW_EXIT_DENIED;
	if (s->baseline_file) {
		if ((r = kw_baseline_load(s->baseline_file, &s->baseline, err, sizeof(err))) < 0)
			return kw_cli_fail(KW_ERR_CONFIG, WHAT, "%s", kw_cli_safe(err));
		s->res.baseline = true;
	}
	if (!s->staged && !getcwd(s->base, sizeof(s->base)))
		return kw_cli_fail(KW_ERR_IO, WHAT, "cannot tell the current directory: "
		    "%s", strerror(errno));
	return 0;
}

/* The top of the work tree: what staged paths are relative to. */
static int
repo_top(struct scan *s)
{
	char *argv[] = { "git", "rev-parse", "--show-toplevel", NULL };
	char *out = NULL;
	size_t len;
	int st = kw_git_output(argv, PATH_MAX, &out, &len);

	if (st != 0) {
		free(out);
		return kw_cli_fail(KW_ERR_INVALID, WHAT, "--staged: not in a git work "
		    "tree (git rev-parse --show-toplevel failed)");
	}
	out[strcspn(out, "\n")] = '\0';
	snprintf(s->base, sizeof(s->base), "%s", out);
	free(out);
	return 0;
}

static int
run_staged(struct scan *s, char **paths, int n)
{
	char why[512];
	int r, ex;

	if ((ex = repo_top(s)) != 0)
		return ex;
	r = kw_scan_staged(paths, n, s->max_size, scan_bytes, on_skip, s, why, sizeof(why));
	if (r == KW_ERR_NOMEM)
		return KW_EXIT_DENIED;
	if (r < 0)
		return kw_cli_fail(r == KW_ERR_NOT_FOUND ? KW_ERR_INVALID : r, WHAT, "%s",
		    kw_cli_safe(why));
	return 0;
}

static int
run_walk(struct scan *s, char **paths, int n)
{
	struct kw_walk w = { .file = scan_file, .skip = on_skip, .ctx = s };
	struct stat st;
	int r;

	if (s->respect_excludes)
		w.excludes = kw_config_get(s->cfg, "security.excludePatterns");
	/* The baseline lists hashes that would only look like findings. */
	if (s->baseline_file && stat(s->baseline_file, &st) == 0) {
		w.avoid_dev = st.st_dev;
		w.avoid_ino = st.st_ino;
	}
	for (int i = 0; i < n; i++) {
		if ((r = kw_scan_walk(paths[i], &w)) == KW_ERR_NOMEM)
			return KW_EXIT_DENIED;
		if (r < 0)
			return kw_cli_fail(KW_ERR_INVALID, WHAT, "%s: %s",
			    kw_cli_safe(paths[i]), strerror(errno));
	}
	return 0;
}

/* Which findings the baseline knows, and how many are new. */
static void
sort_out(struct scan *s)
{
	s->res.n_new = 0;
	for (size_t i = 0; i < s->res.n; i++) {
		struct kw_scan_finding *f = &s->res.findings[i];
		f->known = s->baseline && kw_baseline_has(s->baseline, f);
		s->res.n_new += !f->known;
	}
}

static json_t *
report_json(const struct scan *s)
{
	json_t *list = json_array(), *o;

	for (size_t i = 0; list && i < s->res.n; i++) {
		const struct kw_scan_finding *f = &s->res.findings[i];
		if (json_array_append_new(list, json_pack("{s:s, s:I, s:I, s:s, s:s, s:s, s:s, s:b}",
		    "file", f->file, "line", (json_int_t)f->line, "column", (json_int_t)f->column,
		    "rule", f->rule, "preview", f->preview, "hash", f->hash, "level",
		    kw_scan_level_name(s->res.level), "known", f->known)) < 0) {
			json_decref(list);
			return NULL;
		}
	}
	o = json_pack("{s:o, s:I, s:I, s:I, s:O, s:s}", "findings", list, "new",
	    (json_int_t)s->res.n_new, "files", (json_int_t)s->res.files, "bytes",
	    (json_int_t)s->res.bytes, "skipped", s->res.skipped, "level",
	    kw_scan_level_name(s->res.level));
	return o;
}

/* Skips a person should hear of: the rest (binary, links, excluded) are expected. */
static bool
worth_saying(const char *reason)
{
	return !strncmp(reason, "larger", 6) || !strncmp(reason, "unreadable", 10) ||
	    !strncmp(reason, "changed", 7) || !strncmp(reason, "too deep", 8) ||
	    !strncmp(reason, "path too long", 13);
}

static void
report_human(const struct scan *s)
{
	const char *level = kw_scan_level_name(s->res.level);
	size_t i;
	json_t *v;

	for (i = 0; i < s->res.n; i++) {
		const struct kw_scan_finding *f = &s->res.findings[i];
		if (!f->known)
			printf("%s:%llu:%llu: %s: %s %s\n", kw_cli_safe(f->file), f->line, f->column,
			    level, kw_cli_safe(f->rule), f->preview);
	}
	json_array_foreach(s->res.skipped, i, v) {
		const char *why = json_string_value(json_object_get(v, "reason"));
		if (worth_saying(why))
			fprintf(stderr, "%s: skipped %s: %s\n", s->cli->path,
			    kw_cli_safe(json_string_value(json_object_get(v, "file"))), why);
	}
	if (s->res.n_new)
		fprintf(stderr, "%s: %zu secret%s found (%s, "
		    "security.codeReview.severity)%s\n", s->cli->path, s->res.n_new,
		    s->res.n_new == 1 ? "" : "s", level, s->res.n > s->res.n_new ?
		    ", besides those in the baseline" : "");
}

static int
update_baseline(struct scan *s)
{
	size_t n = 0;

	if (kw_baseline_write(s->baseline_file, s->baseline, s->scanned, &s->res, &n) < 0)
		return kw_cli_fail(KW_ERR_IO, WHAT, "cannot write %s: %s",
		    kw_cli_safe(s->baseline_file), strerror(errno));
	if (s->cli->json) {
		json_t *o = json_pack("{s:s, s:I, s:I}", "baseline", s->baseline_file, "findings",
		    (json_int_t)n, "new", (json_int_t)s->res.n_new);
		if (o)
			kw_cli_print_json(o);
		json_decref(o);
	} else {
		printf("wrote %s: %zu finding%s (%zu new)\n", kw_cli_safe(s->baseline_file), n,
		    n == 1 ? "" : "s", s->res.n_new);
	}
	return KW_EXIT_OK;
}

static int
report(struct scan *s)
{
	char msg[128];
	json_t *o = NULL;

	if (s->sarif) {
		json_t *rules = kw_detector_rules(s->det);	/* a new reference */
		o = rules ? kw_sarif_log(&s->res, rules, s->base) : NULL;
		json_decref(rules);
	} else if (s->cli->json) {
		o = report_json(s);
	} else {
		report_human(s);
	}
	if ((s->sarif || s->cli->json) && !o)
		return KW_EXIT_DENIED;
	if (o)
		kw_cli_print_json(o);
	json_decref(o);
	if (s->res.level != KW_SCAN_ERROR || s->res.n_new == 0)
		return KW_EXIT_OK;
	snprintf(msg, sizeof(msg), "%zu secret%s found", s->res.n_new, s->res.n_new == 1 ? "" :
	    "s");
	kw_cli_record_error("secrets_found", msg);
	return KW_EXIT_DENIED;
}

/* --max-size N[k|M|G]; 0 is no limit. */
static bool
parse_size(const char *arg, size_t *ret)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno || end == arg || arg[0] == '-')
		return false;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end || v > SIZE_MAX / 2)
		return false;
	*ret = v ? (size_t)v : SIZE_MAX / 2;
	return true;
}

static int
parse(struct scan *s, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "staged", no_argument, NULL, 'S' },
		{ "sarif", no_argument, NULL, 'f' },
		{ "baseline", required_argument, NULL, 'b' },
		{ "update-baseline", no_argument, NULL, 'u' },
		{ "respect-excludes", no_argument, NULL, 'x' },
		{ "max-size", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	/* Not "+": options may come after the paths (scan . --sarif). */
	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'S': s->staged = true; break;
		case 'f': s->sarif = true; break;
		case 'b': s->baseline_file = optarg; break;
		case 'u': s->update = true; break;
		case 'x': s->respect_excludes = true; break;
		case 'm':
			if (!parse_size(optarg, &s->max_size))
				return kw_cli_usage(s->cli, "--max-size '%.32s': a number of bytes, "
				    "with k, M or G after it, or 0 for no limit", kw_cli_safe(optarg));
			break;
		default: return kw_cli_bad_option(s->cli, argc, argv, opts);
		}
	}
	if (s->sarif && s->cli->json)
		return kw_cli_usage(s->cli, "--json and --sarif are two formats: give one");
	if (s->update && !s->baseline_file)
		return kw_cli_usage(s->cli, "--update-baseline needs --baseline FILE");
	if (s->update && s->sarif)
		return kw_cli_usage(s->cli, "--update-baseline writes the baseline, not a report: "
		    "leave out --sarif");
	if (s->baseline_file && !*s->baseline_file)
		return kw_cli_usage(s->cli, "--baseline needs a file");
	return 0;
}

int
kw_cmd_scan(struct kw_cli *cli, int argc, char **argv)
{
	struct scan s = { .cli = cli, .max_size = KW_SCAN_MAX_SIZE_DEFAULT };
	char *here[] = { ".", NULL };
	char **paths;
	int ex, n;

	if ((ex = parse(&s, argc, argv)) != 0)
		return ex;
	/* Options may follow the paths: getopt put the paths last. */
	paths = argv + optind;
	n = argc - optind;
	if (n == 0 && !s.staged) {
		paths = here;
		n = 1;
	}
	if ((ex = prepare(&s)) != 0 ||
	    (ex = s.staged ? run_staged(&s, paths, n) : run_walk(&s, paths, n)) != 0)
		goto out;
	sort_out(&s);
	ex = s.update ? update_baseline(&s) : report(&s);
 out:
	kw_scan_result_clear(&s.res);
	json_decref(s.scanned);
	kw_baseline_free(s.baseline);
	kw_detector_free(s.det);
	kw_config_free(s.cfg);
	return ex;
}
