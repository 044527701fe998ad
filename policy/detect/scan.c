/*
 * scan.c - one window of input through the rules: the keyword prefilter,
 * PCRE2 matches, validators and allowlists, then the choice among
 * overlapping candidates (the earlier, then the longer, then the first
 * rule) and the callback, in input order.
 */
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "policy/detect/detect_internal.h"

#define ALLOW_MARK	"keywarden:allow"

int
kw_scan_scratch_init(const struct kw_detector *d, struct kw_scan_scratch *s)
{
	memset(s, 0, sizeof(*s));
	if (!(s->md = pcre2_match_data_create(32, NULL)) ||
	    !(s->present = calloc(d->n_keywords + 1, sizeof(*s->present))))
		return KW_ERR_NOMEM;
	return 0;
}

void
kw_scan_scratch_done(struct kw_scan_scratch *s)
{
	pcre2_match_data_free(s->md);
	free(s->present);
	free(s->cand);
	memset(s, 0, sizeof(*s));
}

/* ASCII lowercase of every byte. */
static const unsigned char lower_tab[256] = {
#define L4(c) L1(c), L1(c + 1), L1(c + 2), L1(c + 3)
/* The cast: clang checks the branch not taken too (c + 32 for c > 223). */
#define L1(c) ((unsigned char)((c) >= 'A' && (c) <= 'Z' ? (c) + ('a' - 'A') : (c)))
#define L16(c) L4(c), L4(c + 4), L4(c + 8), L4(c + 12)
#define L64(c) L16(c), L16(c + 16), L16(c + 32), L16(c + 48)
	L64(0), L64(64), L64(128), L64(192)
#undef L64
#undef L16
#undef L1
#undef L4
};

static inline unsigned char
lower(unsigned char c)
{
	return lower_tab[c];
}

/* Whether keyword k (lowercase) is at p (any case), p having n bytes left. */
static bool
keyword_at(const struct kw_detector *d, size_t k, const unsigned char *p, size_t n)
{
	const char *kw = d->keywords[k];
	size_t len = d->keyword_len[k];

	if (len > n)
		return false;
	for (size_t i = 0; i < len; i++)
		if (lower(p[i]) != (unsigned char)kw[i])
			return false;
	return true;
}

/* Keywords of one or two bytes, looked for at every place. */
static size_t
prefilter_short(const struct kw_detector *d, struct kw_scan_scratch *s,
    const unsigned char *p, size_t n)
{
	size_t found = 0;

	for (size_t k = 0; k < d->n_keywords; k++) {
		if (d->keyword_len[k] >= 3)
			continue;
		for (size_t i = 0; i < n && !s->present[k]; i++)
			s->present[k] = keyword_at(d, k, p + i, n - i);
		found += s->present[k];
	}
	return found;
}

/*
 * Which keywords occur in buf[from, len), case-insensitively: one pass,
 * each three bytes looked up in the detector's trigram bitmap, and only on
 * a hit its chain of keywords compared.
 */
static int
prefilter(const struct kw_detector *d, struct kw_scan_scratch *s, const char *buf,
    size_t from, size_t len)
{
	const unsigned char *p = (const unsigned char *)buf + from;
	size_t n = len - from, left = d->n_keywords;

	if (d->n_keywords == 0)
		return 0;
	memset(s->present, 0, d->n_keywords * sizeof(*s->present));
	if (d->has_short_kw)
		left -= prefilter_short(d, s, p, n);
	if (n < 3)
		return 0;
	unsigned h = kw_trigram_roll(kw_trigram_roll(0, p[0]), p[1]);
	for (size_t i = 2; i < n && left > 0; i++) {
		h = kw_trigram_roll(h, p[i]);
		if (!(d->trigram_bits[h / 64] >> (h % 64) & 1))
			continue;
		for (int k = d->trigram_first[h]; k >= 0; k = d->kw_next[k])
			if (!s->present[k] && keyword_at(d, (size_t)k, p + i - 2, n - i + 2)) {
				s->present[k] = true;
				left--;
			}
	}
	return 0;
}

static bool
rule_may_match(const struct kw_rule *rule, const struct kw_scan_scratch *s)
{
	if (rule->n_keywords == 0)
		return true;
	for (size_t i = 0; i < rule->n_keywords; i++)
		if (s->present[rule->keywords[i]])
			return true;
	return false;
}

/* Whether the line holding buf[start] (looked at back to lo) says keywarden:allow. */
static bool
line_allowed(const char *buf, size_t lo, size_t len, size_t start, size_t end)
{
	const char *ls = buf + start, *le;
	size_t back = start - lo > KW_DETECT_LINE_BACK ? KW_DETECT_LINE_BACK : start - lo;

	while (ls > buf + start - back && ls[-1] != '\n')
		ls--;
	le = memchr(buf + end, '\n', len - end);
	if (!le)
		le = buf + len;
	return memmem(ls, (size_t)(le - ls), ALLOW_MARK, sizeof(ALLOW_MARK) - 1) != NULL;
}

static bool
value_allowed(const struct kw_detector *d, pcre2_match_data *md, const char *v, size_t n)
{
	for (size_t i = 0; i < d->n_allow_re; i++)
		if (pcre2_match(d->allow_re[i], (PCRE2_SPTR)v, n, 0, 0, md, d->mctx) >= 0)
			return true;
	return false;
}

static bool
validated(const struct kw_rule *rule, const char *v, size_t n)
{
	if (rule->entropy > 0 && kw_shannon_entropy(v, n) < rule->entropy)
		return false;
	switch (rule->validator) {
	case KW_VALIDATE_LUHN:
		return kw_luhn_valid(v, n);
	case KW_VALIDATE_SSN:
		return kw_ssn_valid(v, n);
	case KW_VALIDATE_NONE:
		break;
	}
	return true;
}

static int
cand_push(struct kw_scan_scratch *s, size_t start, size_t end, size_t rule)
{
	if (s->n_cand == s->cand_cap) {
		size_t cap = s->cand_cap ? s->cand_cap * 2 : 64;
		struct kw_cand *c = realloc(s->cand, cap * sizeof(*c));
		if (!c)
			return KW_ERR_NOMEM;
		s->cand = c;
		s->cand_cap = cap;
	}
	s->cand[s->n_cand++] = (struct kw_cand){ .start = start, .end = end, .rule = rule };
	return 0;
}

/* Every match of one rule starting in [from, commit), as candidates. */
static int
rule_candidates(const struct kw_detector *d, struct kw_scan_scratch *s, size_t ri,
    const char *buf, size_t len, size_t from, size_t commit)
{
	const struct kw_rule *rule = &d->rules[ri];
	size_t pos = from;
	int rc, r;

	while (pos < commit) {
		rc = pcre2_match(rule->re, (PCRE2_SPTR)buf, len, pos, 0, s->md, d->mctx);
		/* No match, or a pattern over its backtracking budget: nothing more here. */
		if (rc < 0)
			return 0;
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
		size_t mstart = ov[0], mend = ov[1];
		size_t fs = mstart, fe = mend;
		if (rule->secret_group > 0 && rc > rule->secret_group &&
		    ov[2 * rule->secret_group] != PCRE2_UNSET) {
			fs = ov[2 * rule->secret_group];
			fe = ov[2 * rule->secret_group + 1];
		}
		/* \K or a lookahead can put the reported start past the end. */
		pos = mend > mstart ? mend : mstart + 1;
		if (fs >= commit)
			return 0;
		if (fe <= fs || fs < from || fe > len)
			continue;
		if (!validated(rule, buf + fs, fe - fs) ||
		    value_allowed(d, s->md, buf + fs, fe - fs) ||
		    line_allowed(buf, 0, len, fs, fe))
			continue;
		if ((r = cand_push(s, fs, fe, ri)) < 0)
			return r;
	}
	return 0;
}

static int
cand_cmp(const void *a, const void *b)
{
	const struct kw_cand *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->end != y->end)
		return x->end > y->end ? -1 : 1;
	return x->rule < y->rule ? -1 : x->rule > y->rule;
}

void
kw_line_cursor_advance(struct kw_line_cursor *lc, const char *buf, size_t len,
    unsigned long long base, unsigned long long to)
{
	const char *p, *end;

	if (to <= lc->pos)
		return;
	p = buf + (lc->pos - base);
	end = buf + (to - base);
	(void)len;
	while (p < end && (p = memchr(p, '\n', (size_t)(end - p)))) {
		lc->line++;
		lc->line_start = base + (unsigned long long)(p - buf) + 1;
		p++;
	}
	lc->pos = to;
}

int
kw_scan_window(const struct kw_detector *d, struct kw_scan_scratch *s,
    struct kw_line_cursor *lc, const char *buf, size_t len, size_t from, size_t commit,
    unsigned long long base, kw_finding_fn cb, void *ctx, size_t *ret_next)
{
	size_t last_end = from;
	int r;

	*ret_next = commit > from ? commit : from;
	if (from >= len || from >= commit)
		return 0;
	if ((r = prefilter(d, s, buf, from, len)) < 0)
		return r;
	s->n_cand = 0;
	for (size_t i = 0; i < d->n_rules; i++)
		if (rule_may_match(&d->rules[i], s) &&
		    (r = rule_candidates(d, s, i, buf, len, from, commit)) < 0)
			return r;
	if (s->n_cand > 1)
		qsort(s->cand, s->n_cand, sizeof(*s->cand), cand_cmp);
	for (size_t i = 0; i < s->n_cand; i++) {
		const struct kw_cand *c = &s->cand[i];
		const struct kw_rule *rule = &d->rules[c->rule];
		if (c->start < last_end)
			continue;
		kw_line_cursor_advance(lc, buf, len, base, base + c->start);
		struct kw_finding f = {
			.rule = rule->id,
			.secret = rule->secret,
			.replacement = rule->replacement,
			.start = base + c->start,
			.end = base + c->end,
			.line = lc->line + 1,
			.column = base + c->start - lc->line_start + 1,
		};
		if ((r = cb(&f, buf + c->start, c->end - c->start, ctx)) < 0)
			return r;
		last_end = c->end;
	}
	if (last_end > commit)
		*ret_next = last_end;
	return 0;
}
