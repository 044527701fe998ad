/*
 * detect_internal.h - what the engine's files share: the compiled rule,
 * the detector, the scanning window and the validators.
 */
#ifndef KW_DETECT_INTERNAL_H
#define KW_DETECT_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>

#include "policy/detect/detect.h"

/*
 * Matches longer than this may be cut at a chunk boundary of a stream;
 * every built-in rule is bounded below it (a PEM block of an 8192-bit RSA
 * key is about 6.5 KiB).
 */
#define KW_DETECT_WINDOW	(16 * 1024)
/* Bytes a stream scans at once (plus the window carried over). */
#define KW_DETECT_CHUNK		(256 * 1024)
/* Bytes of a line before a match looked at for "keywarden:allow". */
#define KW_DETECT_LINE_BACK	1024
/* Backtracking budget of one match attempt: a user's pattern cannot hang us. */
#define KW_DETECT_MATCH_LIMIT	1000000

enum kw_validator {
	KW_VALIDATE_NONE,
	KW_VALIDATE_LUHN,	/* filter named "credit_card" */
	KW_VALIDATE_SSN,	/* filter named "ssn" */
};

/* A built-in secret rule (rules.c). */
struct kw_builtin_rule {
	const char *id;
	const char *regex;	/* the finding is the group named "secret", else the match */
	const char *keywords;	/* space-separated, lowercase; NULL: always run */
	const char *description;
	double entropy;		/* minimum Shannon entropy of the finding (0: none) */
};

/* The built-in rules; *ret_n gets the count.  Static storage. */
const struct kw_builtin_rule *kw_detect_builtin_rules(size_t *ret_n);

struct kw_rule {
	char *id;
	char *description;
	char *replacement;		/* NULL: [REDACTED:<id>] */
	bool secret;
	enum kw_validator validator;
	double entropy;
	pcre2_code *re;
	int secret_group;		/* group number of "secret", 0 for the whole match */
	size_t *keywords;		/* indexes into the detector's keyword table */
	size_t n_keywords;
};

struct kw_detector {
	struct kw_rule *rules;
	size_t n_rules;
	char **keywords;		/* distinct, lowercase */
	size_t *keyword_len;
	size_t n_keywords;
	pcre2_code **allow_re;
	size_t n_allow_re;
	char **allow_paths;
	size_t n_allow_paths;
	pcre2_match_context *mctx;
};

/* One candidate match, before the earlier/longer one is chosen. */
struct kw_cand {
	size_t start, end;		/* in the window's buffer */
	size_t rule;
};

/* Scratch space of one scanning caller (a buffer call or a stream). */
struct kw_scan_scratch {
	pcre2_match_data *md;
	char *lower;			/* the window lowercased, for the keyword prefilter */
	size_t lower_cap;
	bool *present;			/* per keyword */
	struct kw_cand *cand;
	size_t n_cand, cand_cap;
};

int kw_scan_scratch_init(const struct kw_detector *d, struct kw_scan_scratch *s) KW_WUR;
void kw_scan_scratch_done(struct kw_scan_scratch *s);

/*
 * Where the next finding's line and column come from: the stream offset
 * up to which newlines were counted, how many, and where the last line
 * began.
 */
struct kw_line_cursor {
	unsigned long long pos, line, line_start;
};

/*
 * Find in buf[from, len) (buf[0, from) is context for lookbehinds and the
 * allow comment; buf[0] is stream offset base) the findings that start
 * before commit, choose the earlier (then longer, then first rule) of
 * overlapping ones, and call cb for each.  *ret_next gets where the next
 * scan starts: commit, or the end of the last finding past it.
 */
int kw_scan_window(const struct kw_detector *d, struct kw_scan_scratch *s,
    struct kw_line_cursor *lc, const char *buf, size_t len, size_t from, size_t commit,
    unsigned long long base, kw_finding_fn cb, void *ctx, size_t *ret_next) KW_WUR;

/* Count the newlines of buf (stream offset base) up to stream offset to. */
void kw_line_cursor_advance(struct kw_line_cursor *lc, const char *buf, size_t len,
    unsigned long long base, unsigned long long to);

/*
 * Called by a stream before it forgets input: everything before stream
 * offset upto is decided (no finding will start there).  buf holds the
 * stream from offset base on.  The redactor writes that text out.
 */
typedef int (*kw_stream_flush_fn)(const char *buf, unsigned long long base,
    unsigned long long upto, void *ctx);
void kw_detect_stream_set_flush(struct kw_detect_stream *s, kw_stream_flush_fn fn);

/* validate.c */
bool kw_luhn_valid(const char *s, size_t len);
bool kw_ssn_valid(const char *s, size_t len);
double kw_shannon_entropy(const char *s, size_t len);

#endif
