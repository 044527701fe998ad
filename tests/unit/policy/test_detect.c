/*
 * test_detect.c - the detection engine (policy/detect/detect.h): every
 * built-in rule on true and false examples, the seed's four filters and
 * their validators, streams cut at every offset around a chunk boundary,
 * allowlists, errors that name the key at fault, and the redaction modes.
 *
 * No real key is in this file: every token is built at run time from a
 * fixed-seed generator, in the provider's public shape.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/config.h"
#include "common/errors.h"
#include "policy/detect/detect.h"
#include "policy/detect/detect_internal.h"

#define B64URL	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#define ALNUM	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
#define B64	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
#define DIGITS	"0123456789"
#define B32	"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

/* ---- helpers --------------------------------------------------------------- */

static unsigned long long rng_state = 0x9e3779b97f4a7c15ULL;

static unsigned
rnd(void)
{
	/* xorshift64*: the same strings on every run. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (unsigned)((rng_state * 2685821657736338717ULL) >> 33);
}

/* A string built of parts: literal text, or "%Nr:ALPHABET" -- N random characters. */
struct sb {
	char s[16384];
	size_t len;
};

static void
sb_add(struct sb *b, const char *text)
{
	size_t n = strlen(text);

	assert_true(b->len + n < sizeof(b->s));
	memcpy(b->s + b->len, text, n + 1);
	b->len += n;
}

static void
sb_rand(struct sb *b, const char *alphabet, size_t n)
{
	size_t k = strlen(alphabet);

	assert_true(b->len + n < sizeof(b->s));
	for (size_t i = 0; i < n; i++)
		b->s[b->len++] = alphabet[rnd() % k];
	b->s[b->len] = '\0';
}

static struct kw_detector *
detector(const char *json, unsigned which)
{
	struct kw_config *cfg = NULL;
	struct kw_detector *d = NULL;
	char err[512];

	if (kw_config_parse(json, strlen(json), &cfg, err, sizeof(err)) < 0)
		fail_msg("config: %s", err);
	if (kw_detector_compile(cfg, which, &d, err, sizeof(err)) < 0)
		fail_msg("compile: %s", err);
	kw_config_free(cfg);
	return d;
}

#define MAX_FOUND 64

struct found {
	size_t n;
	struct {
		char rule[64];
		bool secret;
		unsigned long long start, end, line, column;
	} f[MAX_FOUND];
};

static int
collect(const struct kw_finding *f, const char *value, size_t len, void *ctx)
{
	struct found *fo = ctx;

	assert_int_equal(f->end - f->start, len);
	if (fo->n == MAX_FOUND)
		return -100;
	snprintf(fo->f[fo->n].rule, sizeof(fo->f[fo->n].rule), "%s", f->rule);
	fo->f[fo->n].secret = f->secret;
	fo->f[fo->n].start = f->start;
	fo->f[fo->n].end = f->end;
	fo->f[fo->n].line = f->line;
	fo->f[fo->n].column = f->column;
	fo->n++;
	return 0;
}

static struct found
scan(const struct kw_detector *d, const char *text)
{
	struct found fo = { 0 };

	assert_int_equal(kw_detect_buffer(d, text, strlen(text), collect, &fo), 0);
	return fo;
}

/* ---- built-in rules ----------------------------------------------------------- */

/* One true example: text holds the token; the finding is [start, end) of it. */
struct example {
	const char *rule;
	struct sb text;
	size_t start, end;	/* of the expected finding */
};

/* Surround what was built since mark with words, and note its span. */
static void
expect_span(struct example *e, const char *rule, size_t start)
{
	e->rule = rule;
	e->start = start;
	e->end = e->text.len;
	sb_add(&e->text, " and more text\n");
}

static size_t
lead(struct example *e, const char *prefix)
{
	memset(&e->text, 0, sizeof(e->text));
	sb_add(&e->text, "log line: ");
	sb_add(&e->text, prefix);
	return e->text.len;
}

static void
build_true_examples(struct example *ex, size_t *ret_n)
{
	size_t n = 0, s;
	struct sb *t;

#define NEXT(prefix) (s = lead(&ex[n], prefix), t = &ex[n].text)
	NEXT("key ");
	sb_add(t, "sk-ant-api03-"); sb_rand(t, B64URL, 93); sb_add(t, "AA");
	expect_span(&ex[n++], "anthropic-api-key", s);
	NEXT("admin ");
	sb_add(t, "sk-ant-admin01-"); sb_rand(t, B64URL, 93); sb_add(t, "AA");
	expect_span(&ex[n++], "anthropic-admin-key", s);
	NEXT("oauth=");
	sb_add(t, "sk-ant-oat01-"); sb_rand(t, B64URL, 93); sb_add(t, "AA");
	expect_span(&ex[n++], "anthropic-oauth-token", s);
	NEXT("openai ");
	sb_add(t, "sk-proj-"); sb_rand(t, ALNUM, 58); sb_add(t, "T3BlbkFJ"); sb_rand(t, ALNUM, 58);
	expect_span(&ex[n++], "openai-api-key", s);
	NEXT("legacy ");
	sb_add(t, "sk-"); sb_rand(t, ALNUM, 20); sb_add(t, "T3BlbkFJ"); sb_rand(t, ALNUM, 20);
	expect_span(&ex[n++], "openai-api-key", s);
	NEXT("id ");
	sb_add(t, "AKIA"); sb_rand(t, B32, 16);
	expect_span(&ex[n++], "aws-access-key-id", s);
	NEXT("AWS_SECRET_ACCESS_KEY=");
	s = t->len; sb_rand(t, B64, 40);
	expect_span(&ex[n++], "aws-secret-access-key", s);
	NEXT("aws_secret_key: \"");
	s = t->len; sb_rand(t, B64, 40);
	expect_span(&ex[n++], "aws-secret-access-key", s);
	NEXT("gh ");
	sb_add(t, "ghp_"); sb_rand(t, ALNUM, 36);
	expect_span(&ex[n++], "github-token", s);
	NEXT("gh ");
	sb_add(t, "ghs_"); sb_rand(t, ALNUM, 36);
	expect_span(&ex[n++], "github-token", s);
	NEXT("fine ");
	sb_add(t, "github_pat_"); sb_rand(t, ALNUM, 22); sb_add(t, "_"); sb_rand(t, ALNUM, 59);
	expect_span(&ex[n++], "github-token", s);
	NEXT("gl ");
	sb_add(t, "glpat-"); sb_rand(t, B64URL, 20);
	expect_span(&ex[n++], "gitlab-token", s);
	NEXT("slack ");
	sb_add(t, "xoxb-"); sb_rand(t, DIGITS, 12); sb_add(t, "-"); sb_rand(t, DIGITS, 13);
	sb_add(t, "-"); sb_rand(t, ALNUM, 24);
	expect_span(&ex[n++], "slack-token", s);
	NEXT("stripe ");
	sb_add(t, "sk_live_"); sb_rand(t, ALNUM, 24);
	expect_span(&ex[n++], "stripe-key", s);
	NEXT("restricted ");
	sb_add(t, "rk_live_"); sb_rand(t, ALNUM, 24);
	expect_span(&ex[n++], "stripe-key", s);
	NEXT("google ");
	sb_add(t, "AIza"); sb_rand(t, B64URL, 35);
	expect_span(&ex[n++], "google-api-key", s);
	static const char *const pem_kinds[] = { "RSA ", "EC ", "OPENSSH ", "", "ENCRYPTED " };
	for (size_t k = 0; k < KW_ELEMENTSOF(pem_kinds); k++) {
		NEXT("\n");
		sb_add(t, "-----BEGIN "); sb_add(t, pem_kinds[k]); sb_add(t, "PRIVATE KEY-----\n");
		for (int line = 0; line < 25; line++) {
			sb_rand(t, B64, 64);
			sb_add(t, "\n");
		}
		sb_rand(t, B64, 20);
		sb_add(t, "==\n-----END "); sb_add(t, pem_kinds[k]); sb_add(t, "PRIVATE KEY-----");
		expect_span(&ex[n++], "private-key", s);
	}
	NEXT("Authorization: Bearer ");
	sb_add(t, "eyJ"); sb_rand(t, B64URL, 30); sb_add(t, ".eyJ"); sb_rand(t, B64URL, 80);
	sb_add(t, "."); sb_rand(t, B64URL, 43);
	expect_span(&ex[n++], "jwt", s);
	NEXT("DATABASE_URL=postgres://");
	s = t->len; sb_add(t, "app:"); sb_rand(t, ALNUM, 18);
	ex[n].end = t->len;
	sb_add(t, "@db.example.internal:5432/prod\n");
	ex[n].rule = "database-url";
	ex[n++].start = s;
	NEXT("mongodb+srv://");
	s = t->len; sb_add(t, "svc:"); sb_rand(t, ALNUM, 12);
	ex[n].end = t->len;
	sb_add(t, "@cluster0.example.net/db\n");
	ex[n].rule = "database-url";
	ex[n++].start = s;
	NEXT("password = \"");
	s = t->len; sb_rand(t, ALNUM "!#%&*", 20);
	expect_span(&ex[n], "generic-secret", s);
	sb_add(&ex[n++].text, "\"");
	NEXT("client_secret: ");
	s = t->len; sb_rand(t, ALNUM, 32);
	expect_span(&ex[n++], "generic-secret", s);
	NEXT("API_TOKEN='");
	s = t->len; sb_rand(t, B64, 28);
	expect_span(&ex[n], "generic-secret", s);
	sb_add(&ex[n++].text, "'");
#undef NEXT
	*ret_n = n;
}

static void
test_builtin_rules_find_their_tokens(void **state)
{
	struct kw_detector *d = detector("{}", KW_DETECT_SECRETS);
	static struct example ex[64];
	size_t n;

	build_true_examples(ex, &n);
	for (size_t i = 0; i < n; i++) {
		struct found fo = scan(d, ex[i].text.s);
		if (fo.n != 1 || strcmp(fo.f[0].rule, ex[i].rule) != 0 ||
		    fo.f[0].start != ex[i].start || fo.f[0].end != ex[i].end)
			fail_msg("example %zu (%s): %zu findings, first %s [%llu, %llu), want [%zu, %zu)",
			    i, ex[i].rule, fo.n, fo.n ? fo.f[0].rule : "-", fo.n ? fo.f[0].start : 0,
			    fo.n ? fo.f[0].end : 0, ex[i].start, ex[i].end);
		assert_true(fo.f[0].secret);
	}
	kw_detector_free(d);
}

/* Every built-in rule has at least one true example above. */
static void
test_every_builtin_rule_has_an_example(void **state)
{
	const struct kw_builtin_rule *b;
	static struct example ex[64];
	size_t n, nb;

	build_true_examples(ex, &n);
	b = kw_detect_builtin_rules(&nb);
	assert_int_equal(nb, 15);
	for (size_t i = 0; i < nb; i++) {
		bool seen = false;
		for (size_t j = 0; j < n && !seen; j++)
			seen = strcmp(ex[j].rule, b[i].id) == 0;
		if (!seen)
			fail_msg("no example for %s", b[i].id);
	}
}

static void
test_builtin_rules_pass_lookalikes(void **state)
{
	struct kw_detector *d = detector("{}", KW_DETECT_SECRETS);
	struct sb t;

#define NONE(...) do {							\
		memset(&t, 0, sizeof(t));				\
		__VA_ARGS__;						\
		struct found fo = scan(d, t.s);				\
		if (fo.n)						\
			fail_msg("line %d: %s found in \"%.60s\"", __LINE__,	\
			    fo.f[0].rule, t.s);				\
	} while (0)
	NONE(sb_add(&t, "sk-ant-api03-short"));
	NONE(sb_add(&t, "sk-ant-api04-"); sb_rand(&t, B64URL, 95));
	NONE(sb_add(&t, "sk-"); sb_rand(&t, ALNUM, 48));
	NONE(sb_add(&t, "AKIA"); sb_rand(&t, B32, 15));
	NONE(sb_add(&t, "xAKIA"); sb_rand(&t, B32, 16));
	NONE(sb_add(&t, "akia"); sb_rand(&t, B32, 16));
	/* 40 base64 characters without their name are not a finding. */
	NONE(sb_add(&t, "sha "); sb_rand(&t, B64, 40));
	NONE(sb_add(&t, "AWS_SECRET_ACCESS_KEY="); sb_add(&t, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	NONE(sb_add(&t, "ghp_"); sb_rand(&t, ALNUM, 20));
	NONE(sb_add(&t, "ghx_"); sb_rand(&t, ALNUM, 36));
	NONE(sb_add(&t, "glpat-short"));
	NONE(sb_add(&t, "xoxz-"); sb_rand(&t, ALNUM, 30));
	NONE(sb_add(&t, "sk_test_"); sb_rand(&t, ALNUM, 24));
	NONE(sb_add(&t, "AIza"); sb_rand(&t, B64URL, 20));
	NONE(sb_add(&t, "-----BEGIN RSA PRIVATE KEY-----\n"); sb_rand(&t, B64, 64));
	NONE(sb_add(&t, "-----BEGIN PUBLIC KEY-----\n"); sb_rand(&t, B64, 64);
	    sb_add(&t, "\n-----END PUBLIC KEY-----"));
	NONE(sb_add(&t, "-----BEGIN RSA PRIVATE KEY-----\n"); sb_rand(&t, B64, 64);
	    sb_add(&t, "\n-----END EC PRIVATE KEY-----"));
	NONE(sb_add(&t, "eyJhbGciOiJIUzI1NiJ9 alone"));
	NONE(sb_add(&t, "postgres://user:password@db.local/x"));
	NONE(sb_add(&t, "postgres://user@db.local/x"));
	NONE(sb_add(&t, "postgres://user:${DB_PASSWORD}@db.local/x"));
	NONE(sb_add(&t, "mysql://root:****@localhost/x"));
	NONE(sb_add(&t, "https://user:"); sb_rand(&t, ALNUM, 12); sb_add(&t, "@example.com/"));
	NONE(sb_add(&t, "password = \"aaaaaaaaaaaaaaaa\""));
	NONE(sb_add(&t, "password: changeme"));
	NONE(sb_add(&t, "token = ${GITHUB_TOKEN}"));
	NONE(sb_add(&t, "password = [REDACTED:generic-secret]"));
	NONE(sb_add(&t, "tokenizer = "); sb_add(&t, "short"));
	NONE(sb_add(&t, "the secret garden grows "); sb_rand(&t, ALNUM, 30));
#undef NONE
	kw_detector_free(d);
}

/* ---- the seed's filters --------------------------------------------------------- */

/* A 16-digit number that passes (or, off by one digit, fails) Luhn. */
static void
card_number(char out[17], bool valid)
{
	unsigned sum = 0;

	out[0] = '4';
	for (int i = 1; i < 15; i++)
		out[i] = (char)('0' + rnd() % 10);
	for (int i = 14, dbl = 1; i >= 0; i--, dbl ^= 1) {
		unsigned v = (unsigned)(out[i] - '0');
		if (dbl && (v *= 2) > 9)
			v -= 9;
		sum += v;
	}
	out[15] = (char)('0' + (10 - sum % 10) % 10 + (valid ? 0 : 1) % 10);
	if (!valid && out[15] > '9')
		out[15] = '0';
	out[16] = '\0';
}

static void
test_filters(void **state)
{
	struct kw_detector *d = detector("{}", KW_DETECT_FILTERS);
	char card[17], text[256];
	struct found fo;

	fo = scan(d, "mail alice.o'neil+x@mail.example.co.uk or call 555-123-4567.");
	assert_int_equal(fo.n, 2);
	assert_string_equal(fo.f[0].rule, "email");
	assert_false(fo.f[0].secret);
	assert_string_equal(fo.f[1].rule, "phone");

	fo = scan(d, "ssn 123-45-6789 ok; 000-12-3456, 666-12-3456, 912-12-3456, 123-00-4567, "
	    "123-45-0000 are not");
	assert_int_equal(fo.n, 1);
	assert_string_equal(fo.f[0].rule, "ssn");
	assert_int_equal(fo.f[0].start, 4);

	for (int i = 0; i < 20; i++) {
		card_number(card, true);
		snprintf(text, sizeof(text), "card %.4s %.4s %.4s %.4s and %.4s-%.4s-%.4s-%.4s and %s",
		    card, card + 4, card + 8, card + 12, card, card + 4, card + 8, card + 12, card);
		fo = scan(d, text);
		assert_int_equal(fo.n, 3);
		for (size_t k = 0; k < 3; k++)
			assert_string_equal(fo.f[k].rule, "credit_card");
		card_number(card, false);
		snprintf(text, sizeof(text), "card %s", card);
		assert_int_equal(scan(d, text).n, 0);
	}
	kw_detector_free(d);

	/* Switched off: none. */
	d = detector("{\"security\": {\"filters\": {\"enabled\": false}}}",
	    KW_DETECT_SECRETS | KW_DETECT_FILTERS);
	assert_int_equal(scan(d, "bob@example.com 555-123-4567").n, 0);
	kw_detector_free(d);
}

static void
test_validators(void **state)
{
	assert_true(kw_luhn_valid("4111111111111111", 16));
	assert_true(kw_luhn_valid("4111 1111 1111 1111", 19));
	assert_true(kw_luhn_valid("5500-0000-0000-0004", 19));
	assert_false(kw_luhn_valid("4111111111111112", 16));
	assert_false(kw_luhn_valid("0000", 4));
	assert_false(kw_luhn_valid("4111x11111111111", 16));
	assert_true(kw_ssn_valid("123-45-6789", 11));
	assert_true(kw_ssn_valid("899-99-9999", 11));
	assert_false(kw_ssn_valid("000-45-6789", 11));
	assert_false(kw_ssn_valid("666-45-6789", 11));
	assert_false(kw_ssn_valid("900-45-6789", 11));
	assert_false(kw_ssn_valid("999-45-6789", 11));
	assert_false(kw_ssn_valid("123-00-6789", 11));
	assert_false(kw_ssn_valid("123-45-0000", 11));
	assert_false(kw_ssn_valid("123-45-678", 10));
	assert_true(kw_shannon_entropy("aaaa", 4) == 0);
	assert_true(kw_shannon_entropy("abcd", 4) > 1.99 && kw_shannon_entropy("abcd", 4) < 2.01);
	assert_true(kw_shannon_entropy("", 0) == 0);
}

/* ---- order, lines, overlap ------------------------------------------------------- */

static void
test_order_lines_and_overlap(void **state)
{
	struct kw_detector *d = detector("{}", KW_DETECT_SECRETS | KW_DETECT_FILTERS);
	struct sb t = { 0 };
	struct found fo;

	sb_add(&t, "first line\nsecond bob@example.com\n\n  x ghp_");
	sb_rand(&t, ALNUM, 36);
	sb_add(&t, " tail\nDB=postgres://app:");
	sb_rand(&t, ALNUM, 16);
	sb_add(&t, "@db.example.com/x\n");
	fo = scan(d, t.s);
	assert_int_equal(fo.n, 3);
	assert_string_equal(fo.f[0].rule, "email");
	assert_int_equal(fo.f[0].line, 2);
	assert_int_equal(fo.f[0].column, 8);
	assert_string_equal(fo.f[1].rule, "github-token");
	assert_int_equal(fo.f[1].line, 4);
	assert_int_equal(fo.f[1].column, 5);
	/* user:password starts before "password@host", which the email filter matches. */
	assert_string_equal(fo.f[2].rule, "database-url");
	assert_int_equal(fo.f[2].line, 5);
	for (size_t i = 1; i < fo.n; i++)
		assert_true(fo.f[i].start >= fo.f[i - 1].end);
	kw_detector_free(d);
}

/* ---- streams and chunk boundaries ----------------------------------------------- */

static void
check_one(const struct found *fo, const char *rule, size_t start, size_t end, size_t off)
{
	if (fo->n != 1 || strcmp(fo->f[0].rule, rule) != 0 || fo->f[0].start != start ||
	    fo->f[0].end != end)
		fail_msg("offset %zu: %zu findings, first %s [%llu, %llu), want %s [%zu, %zu)", off,
		    fo->n, fo->n ? fo->f[0].rule : "-", fo->n ? fo->f[0].start : 0,
		    fo->n ? fo->f[0].end : 0, rule, start, end);
}

/*
 * A token placed at every offset across the stream's first commit point
 * (where the first scan stops deciding) and its buffer's end, fed in
 * pieces of varying size: found once, where it is.
 */
static void
test_stream_boundary_every_offset(void **state)
{
	struct kw_detector *d = detector("{}", KW_DETECT_SECRETS | KW_DETECT_FILTERS);
	const size_t cap = KW_DETECT_LINE_BACK + KW_DETECT_CHUNK + KW_DETECT_WINDOW;
	const size_t size = cap + 2 * KW_DETECT_WINDOW;
	const size_t centers[] = { cap - KW_DETECT_WINDOW, cap,
		KW_DETECT_CHUNK + KW_DETECT_WINDOW };
	struct sb tok = { 0 };
	char *text = malloc(size + 1);

	assert_non_null(text);
	sb_add(&tok, "sk-ant-api03-");
	sb_rand(&tok, B64URL, 93);
	sb_add(&tok, "AA");
	for (size_t c = 0; c < KW_ELEMENTSOF(centers); c++) {
		for (size_t at = centers[c] - tok.len - 2; at <= centers[c] + 2; at++) {
			struct found fo = { 0 };
			struct kw_detect_stream *st = NULL;

			memset(text, '.', size);
			for (size_t i = 80; i < size; i += 81)
				text[i] = '\n';
			text[at - 1] = ' ';
			memcpy(text + at, tok.s, tok.len);
			text[at + tok.len] = ' ';
			text[size] = '\0';
			assert_int_equal(kw_detect_stream_new(d, collect, &fo, &st), 0);
			for (size_t off = 0, piece = 1 + at % 7919; off < size;) {
				size_t n = size - off < piece ? size - off : piece;
				assert_int_equal(kw_detect_stream_feed(st, text + off, n), 0);
				off += n;
				piece = piece * 3 % 65521 + 1;
			}
			assert_int_equal(kw_detect_stream_end(st), 0);
			kw_detect_stream_free(st);
			check_one(&fo, "anthropic-api-key", at, at + tok.len, at);
			size_t line = 1, line_start = 0;
			for (size_t i = 0; i < at; i++)
				if (text[i] == '\n') {
					line++;
					line_start = i + 1;
				}
			assert_int_equal(fo.f[0].line, line);
			assert_int_equal(fo.f[0].column, at - line_start + 1);

			memset(&fo, 0, sizeof(fo));
			assert_int_equal(kw_detect_buffer(d, text, size, collect, &fo), 0);
			check_one(&fo, "anthropic-api-key", at, at + tok.len, at);
		}
	}
	free(text);
	kw_detector_free(d);
}

/* A PEM block (multi-line, long) across the boundary, through the redactor. */
struct sink {
	char *p;
	size_t len, cap;
};

static int
sink_write(const char *buf, size_t len, void *ctx)
{
	struct sink *s = ctx;

	if (s->len + len + 1 > s->cap) {
		s->cap = (s->len + len + 1) * 2;
		s->p = realloc(s->p, s->cap);
		assert_non_null(s->p);
	}
	memcpy(s->p + s->len, buf, len);
	s->len += len;
	s->p[s->len] = '\0';
	return 0;
}

static void
test_redactor_stream_matches_buffer(void **state)
{
	struct kw_detector *d = detector("{}", KW_DETECT_SECRETS | KW_DETECT_FILTERS);
	const size_t size = 700 * 1024;
	char *text = malloc(size + 1);
	struct sb pem = { 0 };
	size_t at_list[] = { KW_DETECT_CHUNK - 100, KW_DETECT_CHUNK + KW_DETECT_WINDOW - 3000,
		KW_DETECT_LINE_BACK + KW_DETECT_CHUNK + 5 };

	assert_non_null(text);
	sb_add(&pem, "-----BEGIN OPENSSH PRIVATE KEY-----\n");
	for (int i = 0; i < 40; i++) {
		sb_rand(&pem, B64, 70);
		sb_add(&pem, "\n");
	}
	sb_add(&pem, "-----END OPENSSH PRIVATE KEY-----");
	for (size_t k = 0; k < KW_ELEMENTSOF(at_list); k++) {
		struct sink s = { 0 };
		struct kw_redactor *r = NULL;
		char *whole = NULL;
		size_t whole_len;
		json_t *counts = NULL;

		for (size_t i = 0; i < size; i++)
			text[i] = (char)("abc de\nfg"[i % 9]);
		memcpy(text + at_list[k], pem.s, pem.len);
		memcpy(text + 1000, "mail bob@example.com now", 24);
		text[size] = '\0';
		assert_int_equal(kw_redactor_new(d, KW_REDACT_REPLACE, NULL, 0, sink_write, &s, &r), 0);
		for (size_t off = 0; off < size; off += 4093)
			assert_int_equal(kw_redactor_feed(r, text + off,
			    size - off < 4093 ? size - off : 4093), 0);
		assert_int_equal(kw_redactor_end(r), 0);
		assert_int_equal(json_integer_value(json_object_get(kw_redactor_counts(r),
		    "private-key")), 1);
		assert_int_equal(kw_redact_buffer(d, KW_REDACT_REPLACE, NULL, 0, text, size, &whole,
		    &whole_len, &counts), 0);
		assert_true(json_equal(counts, kw_redactor_counts(r)));
		assert_int_equal(s.len, whole_len);
		assert_memory_equal(s.p, whole, whole_len);
		assert_non_null(strstr(whole, "[REDACTED:private-key]"));
		assert_null(strstr(whole, "BEGIN OPENSSH"));
		assert_non_null(strstr(whole, "mail [EMAIL] now"));
		assert_int_equal(whole_len, size - pem.len + strlen("[REDACTED:private-key]") -
		    strlen("bob@example.com") + strlen("[EMAIL]"));
		json_decref(counts);
		free(whole);
		free(s.p);
		kw_redactor_free(r);
	}
	free(text);
	kw_detector_free(d);
}

/* ---- allowlists ------------------------------------------------------------------ */

static void
test_allowlists(void **state)
{
	struct kw_detector *d = detector("{\"security\": {\"secrets\": {\"allowlist\": {"
	    "\"regexes\": [\"^AKIA.*EXAMPLE$\", \"@example\\\\.org$\"],"
	    "\"paths\": [\"**/testdata/**\", \"*.lock\"]}}}}",
	    KW_DETECT_SECRETS | KW_DETECT_FILTERS);
	struct sb t = { 0 };
	struct found fo;

	fo = scan(d, "AKIAIOSFODNN7EXAMPLE and bob@example.org but eve@example.com");
	assert_int_equal(fo.n, 1);
	assert_string_equal(fo.f[0].rule, "email");
	sb_add(&t, "x = ghp_");
	sb_rand(&t, ALNUM, 36);
	sb_add(&t, "  # keywarden:allow\nnext ghp_");
	sb_rand(&t, ALNUM, 36);
	sb_add(&t, "\n");
	fo = scan(d, t.s);
	assert_int_equal(fo.n, 1);
	assert_int_equal(fo.f[0].line, 2);
	/* The comment may come before the match on its line, too. */
	fo = scan(d, "// keywarden:allow\n/* keywarden:allow */ bob@example.com\nbob@example.com");
	assert_int_equal(fo.n, 1);
	assert_int_equal(fo.f[0].line, 3);

	assert_true(kw_detector_path_allowed(d, "src/testdata/keys.txt"));
	assert_true(kw_detector_path_allowed(d, "/repo/Cargo.lock"));
	assert_false(kw_detector_path_allowed(d, "src/main.c"));
	kw_detector_free(d);
}

/* ---- configured rules and errors ------------------------------------------------ */

static void
test_configured_rules(void **state)
{
	struct kw_detector *d = detector("{\"security\": {\"secrets\": {\"rules\": ["
	    "{\"id\": \"acme-token\", \"regex\": \"acme_[a-z0-9]{12}\", \"keywords\": [\"ACME_\"],"
	    " \"description\": \"ACME\"},"
	    "{\"id\": \"internal\", \"regex\": \"int=(?<secret>[A-Za-z0-9]{10,})\", \"entropy\": 3},"
	    "{\"id\": \"github-token\", \"regex\": \"ghp_only_this\"}]}}}", KW_DETECT_SECRETS);
	struct sb t = { 0 };
	struct found fo;
	json_t *rules;

	fo = scan(d, "x acme_0123456789ab y int=Zq8Rt2Lm9Pw4 int=aaaaaaaaaaaa ghp_only_this");
	assert_int_equal(fo.n, 3);
	assert_string_equal(fo.f[0].rule, "acme-token");
	assert_string_equal(fo.f[1].rule, "internal");
	assert_int_equal(fo.f[1].start, 26);
	assert_string_equal(fo.f[2].rule, "github-token");
	/* The configured github-token replaced the built-in one. */
	sb_add(&t, "ghp_");
	sb_rand(&t, ALNUM, 36);
	assert_int_equal(scan(d, t.s).n, 0);

	rules = kw_detector_rules(d);
	assert_non_null(rules);
	size_t n = json_array_size(rules), gh = 0;
	for (size_t i = 0; i < n; i++)
		gh += strcmp(json_string_value(json_object_get(json_array_get(rules, i), "id")),
		    "github-token") == 0;
	assert_int_equal(gh, 1);
	assert_int_equal(n, 15 + 2);
	json_decref(rules);
	kw_detector_free(d);
}

static void
expect_error(const char *json, const char *want)
{
	struct kw_config *cfg = NULL;
	struct kw_detector *d = NULL;
	char err[512];

	assert_int_equal(kw_config_parse(json, strlen(json), &cfg, err, sizeof(err)), 0);
	assert_int_equal(kw_detector_compile(cfg, KW_DETECT_SECRETS | KW_DETECT_FILTERS, &d, err,
	    sizeof(err)), KW_ERR_CONFIG);
	assert_null(d);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("error \"%s\", want it to start \"%s\"", err, want);
	kw_config_free(cfg);
}

static void
test_bad_patterns_are_named(void **state)
{
	expect_error("{\"security\": {\"filters\": {\"patterns\": ["
	    "{\"name\": \"a\", \"regex\": \"x+\", \"replacement\": \"[A]\"},"
	    "{\"name\": \"b\", \"regex\": \"(unclosed\", \"replacement\": \"[B]\"}]}}}",
	    "security.filters.patterns[1].regex: missing closing parenthesis at offset 9");
	expect_error("{\"security\": {\"secrets\": {\"rules\": ["
	    "{\"id\": \"a\", \"regex\": \"[z-a]\"}]}}}", "security.secrets.rules[0].regex: ");
	expect_error("{\"security\": {\"secrets\": {\"allowlist\": {\"regexes\": [\"ok\", \"*x\"]}}}}",
	    "security.secrets.allowlist.regexes[1]: ");
}

/* ---- redaction modes -------------------------------------------------------------- */

static char *
redact(const struct kw_detector *d, enum kw_redact_mode mode, const char *key, const char *in)
{
	char *out = NULL;
	size_t len;

	assert_int_equal(kw_redact_buffer(d, mode, (const unsigned char *)key, key ? strlen(key) : 0,
	    in, strlen(in), &out, &len, NULL), 0);
	assert_int_equal(strlen(out), len);
	return out;
}

static void
test_redact_modes(void **state)
{
	struct kw_detector *d = detector("{}", KW_DETECT_SECRETS | KW_DETECT_FILTERS);
	const char *k1 = "0123456789abcdef0123456789abcdef", *k2 = "another key of 32 bytes, at least";
	struct sb a = { 0 }, b = { 0 }, in = { 0 };
	char *o1, *o2, *o3, *o4;
	json_t *counts = NULL;
	char *out;
	size_t len;

	sb_add(&a, "sk_live_");
	sb_rand(&a, ALNUM, 24);
	sb_add(&b, "sk_live_");
	sb_rand(&b, ALNUM, 24);

	o1 = redact(d, KW_REDACT_HMAC, k1, a.s);
	o2 = redact(d, KW_REDACT_HMAC, k1, a.s);
	o3 = redact(d, KW_REDACT_HMAC, k1, b.s);
	o4 = redact(d, KW_REDACT_HMAC, k2, a.s);
	assert_string_equal(o1, o2);
	assert_string_not_equal(o1, o3);
	assert_string_not_equal(o1, o4);
	assert_int_equal(strlen(o1), strlen("[stripe-key:]") + 16);
	assert_int_equal(strncmp(o1, "[stripe-key:", 12), 0);
	free(o1); free(o2); free(o3); free(o4);

	out = redact(d, KW_REDACT_PARTIAL, NULL, a.s);
	assert_int_equal(strlen(out), a.len);
	assert_int_equal(strspn(out, "*"), a.len - 4);
	assert_string_equal(out + a.len - 4, a.s + a.len - 4);
	free(out);
	/* Too short to keep 4 of: all masked. */
	out = redact(d, KW_REDACT_PARTIAL, NULL, "mail a@b.io");
	assert_string_equal(out, "mail ******");
	free(out);

	sb_add(&in, "to bob@example.com, key ");
	sb_add(&in, a.s);
	sb_add(&in, ", ssn 123-45-6789, bob@example.com again");
	assert_int_equal(kw_redact_buffer(d, KW_REDACT_REPLACE, NULL, 0, in.s, in.len, &out, &len,
	    &counts), 0);
	assert_string_equal(out, "to [EMAIL], key [REDACTED:stripe-key], ssn [SSN], [EMAIL] again");
	assert_int_equal(json_integer_value(json_object_get(counts, "email")), 2);
	assert_int_equal(json_integer_value(json_object_get(counts, "stripe-key")), 1);
	assert_int_equal(json_integer_value(json_object_get(counts, "ssn")), 1);
	assert_int_equal(json_object_size(counts), 3);
	json_decref(counts);
	free(out);

	/* HMAC without a key is refused. */
	assert_int_equal(kw_redact_buffer(d, KW_REDACT_HMAC, NULL, 0, "x", 1, &out, &len, NULL),
	    KW_ERR_INVALID);
	/* Empty input: empty output. */
	out = redact(d, KW_REDACT_REPLACE, NULL, "");
	assert_string_equal(out, "");
	free(out);
	kw_detector_free(d);
}

/* A callback's negative code stops the scan and comes back. */
static int
stop_at_first(const struct kw_finding *f, const char *value, size_t len, void *ctx)
{
	(*(int *)ctx)++;
	return -42;
}

static void
test_callback_stops(void **state)
{
	struct kw_detector *d = detector("{}", KW_DETECT_FILTERS);
	const char *text = "a@b.io c@d.io e@f.io";
	int calls = 0;

	assert_int_equal(kw_detect_buffer(d, text, strlen(text), stop_at_first, &calls), -42);
	assert_int_equal(calls, 1);
	kw_detector_free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin_rules_find_their_tokens),
		cmocka_unit_test(test_every_builtin_rule_has_an_example),
		cmocka_unit_test(test_builtin_rules_pass_lookalikes),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_validators),
		cmocka_unit_test(test_order_lines_and_overlap),
		cmocka_unit_test(test_stream_boundary_every_offset),
		cmocka_unit_test(test_redactor_stream_matches_buffer),
		cmocka_unit_test(test_allowlists),
		cmocka_unit_test(test_configured_rules),
		cmocka_unit_test(test_bad_patterns_are_named),
		cmocka_unit_test(test_redact_modes),
		cmocka_unit_test(test_callback_stops),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
