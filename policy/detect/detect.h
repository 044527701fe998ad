/*
 * detect.h - one detection engine for secrets and personal data: the
 * built-in secret rules, the rules a configuration adds, and the seed's
 * redaction filters (security.filters.patterns), compiled once (PCRE2 with
 * JIT) and run over buffers or streams of any size in bounded memory.
 *
 * A rule's regex runs only where one of its keywords occurs (a literal
 * prefilter, as gitleaks and TruffleHog do), so adding rules does not
 * multiply the cost.  Validators cut false positives (Luhn for cards, the
 * SSN rules, an entropy threshold for generic secrets).  Allowlists: by
 * regex on the match, and a line holding "keywarden:allow" is skipped;
 * path globs are the caller's (scan) to apply with kw_detector_path_allowed.
 *
 * Pure like the rest of policy/: no sockets, no logging, no file I/O.
 * Nothing here keeps a matched value: callbacks get it borrowed, and the
 * engine's buffers are wiped when freed.
 */
#ifndef KW_DETECT_H
#define KW_DETECT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"
#include "common/macros.h"

struct kw_detector;

/* Which rules kw_detector_compile takes. */
enum {
	KW_DETECT_SECRETS = 1 << 0,	/* built-in secret rules and security.secrets.rules */
	KW_DETECT_FILTERS = 1 << 1,	/* security.filters.patterns (when filters.enabled) */
};

/* One finding.  Offsets count bytes from the start of the whole input (stream). */
struct kw_finding {
	const char *rule;		/* stable id: "anthropic-api-key", or a filter's name */
	bool secret;			/* a secret rule (else a personal-data filter) */
	const char *replacement;	/* the filter's replacement ("[EMAIL]"), or NULL for
					   the default "[REDACTED:<rule>]" */
	unsigned long long start, end;	/* [start, end) of the match */
	unsigned long long line;	/* 1-based line of start */
	unsigned long long column;	/* 1-based byte column of start */
};

/*
 * Called for each finding, in input order, never overlapping (the earlier
 * wins; at one start, the longer).  value/len is the matched text,
 * borrowed for the call only.  Return 0 to go on, negative to stop (that
 * code is returned by the feeding call).
 */
typedef int (*kw_finding_fn)(const struct kw_finding *f, const char *value, size_t len,
    void *ctx);

/*
 * Compile the rules selected by which (KW_DETECT_*) from cfg (borrowed).
 * 0, KW_ERR_NOMEM, or KW_ERR_CONFIG with err naming the key and index at
 * fault ("security.filters.patterns[2].regex: missing ) at offset 7").
 * Free with kw_detector_free (accepts NULL).
 */
int kw_detector_compile(const struct kw_config *cfg, unsigned which,
    struct kw_detector **ret_detector, char *err, size_t err_len) KW_WUR KW_NONNULL(1, 3, 4);
void kw_detector_free(struct kw_detector *d);

/* The rule ids the detector holds, as a JSON array of {"id", "secret", "description"}. */
json_t *kw_detector_rules(const struct kw_detector *d) KW_NONNULL(1);

/* Whether the detector holds a rule of that id (no allocation). */
bool kw_detector_has_rule(const struct kw_detector *d, const char *id) KW_WUR KW_NONNULL(1, 2);

/* Whether path (as given) is allowlisted by security.secrets.allowlist.paths. */
bool kw_detector_path_allowed(const struct kw_detector *d, const char *path) KW_NONNULL(1, 2);

/* Scan a whole buffer.  0, or the callback's negative code, or KW_ERR_NOMEM. */
int kw_detect_buffer(const struct kw_detector *d, const char *buf, size_t len,
    kw_finding_fn cb, void *ctx) KW_WUR KW_NONNULL(1, 4);

/*
 * Streaming: feed any number of chunks, then end.  Memory stays bounded
 * (a window of the longest match a rule allows), and a match that
 * straddles two chunks is found once.  Free with kw_detect_stream_free.
 */
struct kw_detect_stream;
int kw_detect_stream_new(const struct kw_detector *d, kw_finding_fn cb, void *ctx,
    struct kw_detect_stream **ret_stream) KW_WUR KW_NONNULL(1, 2, 4);
int kw_detect_stream_feed(struct kw_detect_stream *s, const char *buf, size_t len)
	KW_WUR KW_NONNULL(1);
int kw_detect_stream_end(struct kw_detect_stream *s) KW_WUR KW_NONNULL(1);
void kw_detect_stream_free(struct kw_detect_stream *s);

/* How a match is replaced. */
enum kw_redact_mode {
	KW_REDACT_REPLACE,	/* the filter's replacement, or [REDACTED:<rule>] */
	KW_REDACT_PARTIAL,	/* all but the last 4 characters become '*' */
	KW_REDACT_HMAC,		/* [<rule>:<first 16 hex of HMAC-SHA256(key, value)>] */
};

/*
 * Redact in to a new buffer (*ret_out, malloc'd, NUL-terminated, *ret_len
 * without it).  key/key_len for KW_REDACT_HMAC (else NULL, 0).  *ret_counts
 * (may be NULL) gets {"rule": count, ...} (new reference).  0 or KW_ERR_*.
 */
int kw_redact_buffer(const struct kw_detector *d, enum kw_redact_mode mode,
    const unsigned char *key, size_t key_len, const char *in, size_t len, char **ret_out,
    size_t *ret_len, json_t **ret_counts) KW_WUR KW_NONNULL(1, 5, 7, 8);

/*
 * Streaming redaction: the redacted text goes to write(buf, len, ctx) as it
 * is decided (held back only as far as a match could still straddle).
 */
typedef int (*kw_write_fn)(const char *buf, size_t len, void *ctx);
struct kw_redactor;
int kw_redactor_new(const struct kw_detector *d, enum kw_redact_mode mode,
    const unsigned char *key, size_t key_len, kw_write_fn write, void *ctx,
    struct kw_redactor **ret) KW_WUR KW_NONNULL(1, 5, 7);
int kw_redactor_feed(struct kw_redactor *r, const char *buf, size_t len) KW_WUR KW_NONNULL(1);
int kw_redactor_end(struct kw_redactor *r) KW_WUR KW_NONNULL(1);
/* Counts per rule so far ({"rule": n}, borrowed). */
json_t *kw_redactor_counts(const struct kw_redactor *r) KW_NONNULL(1);
void kw_redactor_free(struct kw_redactor *r);

#endif
