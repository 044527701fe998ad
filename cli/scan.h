/*
 * scan.h - the parts of `keywarden scan`: which files (scan_walk.c, and the
 * staged blobs from git in scan_git.c), what a finding keeps (never the
 * value: a masked preview and a hash), the baseline of accepted findings
 * (scan_baseline.c) and the SARIF 2.1.0 log (sarif.c).  cmd_scan.c runs
 * the detection engine over them.
 */
#ifndef KW_CLI_SCAN_H
#define KW_CLI_SCAN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "common/macros.h"

/* Files larger than this are skipped (and said so) unless --max-size says otherwise. */
#define KW_SCAN_MAX_SIZE_DEFAULT	(10u << 20)
/* A file with a NUL byte in its first 8 KiB is binary, as git and grep decide. */
#define KW_SCAN_BINARY_PROBE		8192
#define KW_SCAN_HASH_HEX		65	/* SHA-256 in hex, and the NUL */
#define KW_SCAN_PREVIEW_MAX		32

/* How a finding counts (security.codeReview.severity; SARIF's levels). */
enum kw_scan_level {
	KW_SCAN_ERROR,		/* fails the scan (exit 1) */
	KW_SCAN_WARNING,	/* printed; exit 0 */
	KW_SCAN_NOTE,		/* severity info, or the review rule turned off */
};

/* One finding: where, which rule, and what stands for the value. */
struct kw_scan_finding {
	char *file;			/* as reported: relative to the PATH given, or the repo */
	char *rule;
	unsigned long long line, column;	/* 1-based; column in bytes (the engine's) */
	unsigned long long char_column;		/* 1-based, in Unicode code points (SARIF) */
	unsigned long long end_line, end_char_column;	/* the column after the last */
	char preview[KW_SCAN_PREVIEW_MAX];	/* "sk-a…(108)": never the value */
	char hash[KW_SCAN_HASH_HEX];	/* kw_scan_hash(rule, value) */
	bool known;			/* in the baseline: reported, does not fail */
};

/* What a run found and left out, for the reports. */
struct kw_scan_result {
	struct kw_scan_finding *findings;
	size_t n, cap;
	json_t *skipped;		/* [{"file", "reason"}] */
	size_t files, n_new;
	unsigned long long bytes;
	enum kw_scan_level level;	/* every finding's */
	bool baseline;			/* a baseline was given: findings say new or known */
};

/* Free what r holds (not r). */
void kw_scan_result_clear(struct kw_scan_result *r) KW_NONNULL(1);

/* "error", "warning" or "note" (SARIF's names). */
const char *kw_scan_level_name(enum kw_scan_level level);

/*
 * The hash a finding is known by: hex SHA-256 of the rule id, a NUL and
 * the matched value.  out holds KW_SCAN_HASH_HEX bytes.
 */
void kw_scan_hash(const char *rule, const char *value, size_t len, char *out) KW_NONNULL(1, 2, 4);

/*
 * A preview that cannot give the value away: at most a quarter of it
 * (up to 4 characters, printable ASCII only), then "…" and its length.
 */
void kw_scan_preview(const char *value, size_t len, char *out, size_t out_len) KW_NONNULL(1, 3);

/* ---- scan_walk.c ------------------------------------------------------ */

/* What the walk hands over: an open regular file, by the path it reports. */
typedef int (*kw_walk_file_fn)(const char *path, int fd, const struct stat *st, void *ctx);
/* A file left out, and why ("binary", "larger than 10 MiB", "unreadable: ..."). */
typedef int (*kw_walk_skip_fn)(const char *path, const char *reason, void *ctx);

struct kw_walk {
	kw_walk_file_fn file;
	kw_walk_skip_fn skip;
	void *ctx;
	json_t *excludes;	/* gitignore-style globs on the absolute path, or NULL */
	dev_t avoid_dev;	/* a file never to scan (the baseline), or 0 */
	ino_t avoid_ino;
};

/*
 * Walk root (a directory or a file; a link given as root is followed, none
 * below it is): every regular file not under .git, not ignored by the
 * .gitignore files met on the way, not matching w->excludes, in name order.
 * 0, the first negative code a callback returned, or KW_ERR_NOT_FOUND /
 * KW_ERR_IO for root itself (errno set).
 */
int kw_scan_walk(const char *root, const struct kw_walk *w) KW_WUR KW_NONNULL(1, 2);

/* ---- scan_git.c ------------------------------------------------------- */

/* A staged blob: its path in the repository and its bytes (borrowed for the call). */
typedef int (*kw_staged_fn)(const char *path, const char *data, size_t len, void *ctx);

/*
 * Each file `git diff --cached` would add, copy or modify (limited to the
 * pathspecs, when any), as staged: the index's blob, not the work tree's
 * file.  A blob over max bytes goes to skip.  0, a callback's negative
 * code, or KW_ERR_IO / KW_ERR_NOT_FOUND (not a repository) with a reason
 * in why.
 */
int kw_scan_staged(char **pathspecs, int n_pathspecs, size_t max, kw_staged_fn fn,
    kw_walk_skip_fn skip, void *ctx, char *why, size_t why_len) KW_WUR;

/*
 * Run git with argv (no shell), stdin /dev/null, stderr passed through;
 * its stdout (at most max bytes, NUL-terminated) in *ret_out.  The exit
 * status, or negative when git could not run or wrote more than max.
 */
int kw_git_output(char *const argv[], size_t max, char **ret_out, size_t *ret_len)
	KW_NONNULL(1, 3);

/* ---- scan_baseline.c -------------------------------------------------- */

/* The findings accepted before: {"file\nrule\nhash": true}. */
struct kw_baseline;

/*
 * Read FILE.  A missing file is an empty baseline (so --update-baseline can
 * create it).  0, or KW_ERR_CONFIG / KW_ERR_IO with why.
 */
int kw_baseline_load(const char *file, struct kw_baseline **ret, char *why, size_t why_len)
	KW_WUR KW_NONNULL(1, 2, 3);
void kw_baseline_free(struct kw_baseline *b);
bool kw_baseline_has(const struct kw_baseline *b, const struct kw_scan_finding *f)
	KW_NONNULL(1, 2);

/*
 * Write FILE anew (atomically, 0644: hashes only): the entries of b for
 * files this run did not scan (scanned: {"file": true}), then every
 * finding of r.  0 or KW_ERR_IO (errno set).
 */
int kw_baseline_write(const char *file, const struct kw_baseline *b, json_t *scanned,
    const struct kw_scan_result *r, size_t *ret_n) KW_WUR KW_NONNULL(1, 3, 4);

/* ---- sarif.c ---------------------------------------------------------- */

/*
 * The SARIF 2.1.0 log of a run: the rules (kw_detector_rules' array,
 * borrowed), the results and the skipped files as notifications.  base
 * (absolute) is the directory the relative paths start from.  New reference.
 */
json_t *kw_sarif_log(const struct kw_scan_result *r, json_t *rules, const char *base)
	KW_NONNULL(1, 2, 3);

#endif
