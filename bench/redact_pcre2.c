/*
 * redact_pcre2.c - the library ceiling for `keywarden redact` (make bench,
 * section redact): the same five patterns as the sed baseline, each
 * compiled once with PCRE2 JIT and applied in turn, globally, to each
 * block of lines (pcre2_substitute, as sed applies its -e scripts), with
 * nothing else: no prefilter, no validators, no overlap rules.
 *
 *   redact_pcre2 < IN > OUT
 *
 * Blocks end at a newline, so no match is cut (the patterns do not span
 * lines).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK	(1 << 20)

static const struct {
	const char *regex, *replacement;
} patterns[] = {
	{ "[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[a-zA-Z]{2,}", "[EMAIL]" },
	{ "\\d{3}-\\d{3}-\\d{4}", "[PHONE]" },
	{ "\\d{3}-\\d{2}-\\d{4}", "[SSN]" },
	{ "\\d{4}[\\s-]?\\d{4}[\\s-]?\\d{4}[\\s-]?\\d{4}", "[CARD]" },
	{ "sk-ant-api03-[A-Za-z0-9_-]{20,200}", "[REDACTED:anthropic-api-key]" },
};
#define N_PATTERNS (sizeof(patterns) / sizeof(patterns[0]))

static int
write_all(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDOUT_FILENO, p, n);
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
main(void)
{
	pcre2_code *re[N_PATTERNS];
	pcre2_match_data *md;
	size_t cap = 4 * BLOCK, have = 0;
	char *in = malloc(BLOCK), *a = malloc(cap), *b = malloc(cap);
	int code;
	PCRE2_SIZE off;

	if (!in || !a || !b)
		return 1;
	for (size_t i = 0; i < N_PATTERNS; i++) {
		re[i] = pcre2_compile((PCRE2_SPTR)patterns[i].regex, PCRE2_ZERO_TERMINATED, 0, &code,
		    &off, NULL);
		if (!re[i] || pcre2_jit_compile(re[i], PCRE2_JIT_COMPLETE) != 0) {
			fprintf(stderr, "redact_pcre2: pattern %zu\n", i);
			return 1;
		}
	}
	md = pcre2_match_data_create(4, NULL);
	for (;;) {
		ssize_t n = read(STDIN_FILENO, in + have, BLOCK - have);
		if (n < 0)
			return 1;
		have += (size_t)n;
		/* A block of whole lines (or the rest at the end). */
		size_t cut = have;
		if (n > 0) {
			char *nl = memrchr(in, '\n', have);
			if (!nl && have < BLOCK)
				continue;
			cut = nl ? (size_t)(nl - in) + 1 : have;
		}
		size_t len = cut;
		memcpy(a, in, len);
		for (size_t i = 0; i < N_PATTERNS; i++) {
			PCRE2_SIZE out_len = cap;
			if (pcre2_substitute(re[i], (PCRE2_SPTR)a, len, 0, PCRE2_SUBSTITUTE_GLOBAL, md,
			    NULL, (PCRE2_SPTR)patterns[i].replacement, PCRE2_ZERO_TERMINATED,
			    (PCRE2_UCHAR *)b, &out_len) < 0)
				return 1;
			char *t = a;
			a = b;
			b = t;
			len = out_len;
		}
		if (write_all(a, len) < 0)
			return 1;
		memmove(in, in + cut, have - cut);
		have -= cut;
		if (n == 0 && have == 0)
			break;
	}
	return 0;
}
