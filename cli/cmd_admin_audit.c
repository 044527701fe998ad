/*
 * cmd_admin_audit.c - keywarden admin audit query|export|verify|prune|pubkey|keygen
 *
 * query and export page through audit.query on one connection.  Sealed
 * details are opened here with the auditor's secret key (--decrypt-key),
 * which never reaches the broker.  verify --archive (against the broker's
 * public key) and keygen need no broker.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/archive_verify.h"
#include "cli/cli.h"
#include "cli/progress.h"
#include "common/clock.h"
#include "common/fsutil.h"
#include "cli/timespec.h"
#include "common/config.h"

/* Records asked for per audit.query call: a reply must fit in one frame (KW_FRAME_MAX). */
#define PAGE_SIZE 100
/* Progress lines are redrawn at most this often (ns). */
/* A pseudonym: "~" and 20 lower-case hex digits (SPEC6). */
#define PSEUDONYM_HEX 20
#define SEALED_ERROR "cannot open with this key"
#define KEYGEN_DEFAULT "audit-secret.key"

static const struct option audit_options[] = {
	{ "user", required_argument, NULL, 'u' },
	{ "action", required_argument, NULL, 'a' },
	{ "since", required_argument, NULL, 's' },
	{ "until", required_argument, NULL, 't' },
	{ "result", required_argument, NULL, 'r' },
	{ "limit", required_argument, NULL, 'n' },
	{ "decrypt-key", required_argument, NULL, 'k' },
	{ "format", required_argument, NULL, 'f' },
	{ "output", required_argument, NULL, 'o' },
	{ "force", no_argument, NULL, 'F' },
	{ "archive", required_argument, NULL, 'A' },
	{ "pubkey", required_argument, NULL, 'P' },
	{ NULL, 0, NULL, 0 },
};

/* What the command line asked for; which options a subcommand takes is `allowed`. */
struct audit_args {
	struct kw_cli *cli;
	const char *what;		/* "admin audit query", for messages */
	const char *allowed;		/* option letters (audit_options) accepted */
	json_t *filter;			/* audit.query arguments, owned */
	long long limit;		/* records wanted; -1: all */
	const char *key_file, *format, *output, *archive, *pubkey;
	bool force, json;
};

static int
bad_value(const struct audit_args *a, const char *opt, const char *value, const char *want)
{
	return kw_cli_usage(a->cli, "--%s: '%.64s' is not %s", opt, kw_cli_safe(value), want);
}

static int
set_time(struct audit_args *a, const char *opt, const char *value)
{
	char now[KW_RFC3339_LEN];
	long long ms;

	if (kw_cli_parse_time(value, kw_now_rfc3339(now), &ms) < 0)
		return bad_value(a, opt, value, "a time (2026-11-25T01:02:03Z, 2026-11-25, "
		    "or an age such as 30m, 12h, 7d)");
	json_object_set_new(a->filter, opt, json_integer(ms));
	return 0;
}

/* One option's value into a; 0 or KW_EXIT_USAGE (said why). */
static int
take_option(struct audit_args *a, int c, const char *name, const char *v)
{
	char *end;

	switch (c) {
	case 'u': json_object_set_new(a->filter, "user", json_string(v)); return 0;
	case 'a': json_object_set_new(a->filter, "action", json_string(v)); return 0;
	case 's': return set_time(a, "since", v);
	case 't': return set_time(a, "until", v);
	case 'r':
		if (strcmp(v, "success") != 0 && strcmp(v, "denied") != 0 && strcmp(v, "error") != 0)
			return bad_value(a, name, v, "success, denied or error");
		json_object_set_new(a->filter, "result", json_string(v));
		return 0;
	case 'n':
		errno = 0;
		a->limit = strtoll(v, &end, 10);
		if (errno || end == v || *end || a->limit < 1)
			return bad_value(a, name, v, "a positive number");
		return 0;
	case 'f':
		if (strcmp(v, "json") != 0 && strcmp(v, "jsonl") != 0)
			return bad_value(a, name, v, "json or jsonl");
		a->format = v;
		return 0;
	case 'k': a->key_file = v; return 0;
	case 'o': a->output = v; return 0;
	case 'A': a->archive = v; return 0;
	case 'P': a->pubkey = v; return 0;
	case 'F': a->force = true; return 0;
	}
	return KW_EXIT_USAGE;
}

/* Parse argv into a (a->what and a->allowed set); 0 or KW_EXIT_USAGE, said why. */
static int
parse(struct kw_cli *cli, int argc, char **argv, struct audit_args *a)
{
	json_t *since, *until;
	int c, ex, i = -1;

	a->cli = cli;
	a->json = cli->json;
	a->limit = -1;
	if (!(a->filter = json_object()))
		return KW_EXIT_USAGE;
	optind = 0;
	while ((c = getopt_long(argc, argv, "", audit_options, &i)) != -1) {
		if (c == '?')
			return kw_cli_bad_option(cli, argc, argv, audit_options);
		if (!strchr(a->allowed, c))
			return kw_cli_usage(cli, "unknown option '--%s'", audit_options[i].name);
		if (take_option(a, c, audit_options[i].name, optarg) != 0)
			return KW_EXIT_USAGE;
	}
	if ((ex = kw_cli_args(cli, argc, argv, optind, "")) != 0)
		return ex;
	since = json_object_get(a->filter, "since");
	until = json_object_get(a->filter, "until");
	if (since && until && json_integer_value(since) > json_integer_value(until))
		return kw_cli_usage(cli, "--since is later than --until");
	return 0;
}

/* ---- sealed details ------------------------------------------------------ */

struct audit_key {
	unsigned char *sk;		/* sodium_malloc'd; NULL: leave details sealed */
	unsigned char pk[crypto_box_PUBLICKEYBYTES];
};

static void
key_wipe(struct audit_key *k)
{
	if (k->sk) {
		sodium_memzero(k->sk, crypto_box_SECRETKEYBYTES);
		sodium_free(k->sk);
		k->sk = NULL;
	}
}

/*
 * The auditor's secret key from path: base64 as keygen writes it, in a file
 * only its owner can read.  0, or the exit status after saying why.
 */
static int
key_load(const char *what, const char *path, struct audit_key *k)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	char *text = NULL;
	size_t len = 0, bin = 0;
	struct stat st;
	int ex = KW_EXIT_USAGE;

	if (fd < 0 || fstat(fd, &st) < 0)
		return kw_cli_fail(KW_ERR_INVALID, what, "--decrypt-key %s: %s", kw_cli_safe(path),
		    strerror(errno));
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		return kw_cli_fail(KW_ERR_INVALID, what, "--decrypt-key %s: refusing a secret key "
		    "that group or others can access (mode %04o); chmod 600 it", kw_cli_safe(path),
		    (unsigned)(st.st_mode & 07777));
	if (sodium_init() < 0 || !(k->sk = sodium_malloc(crypto_box_SECRETKEYBYTES)))
		return KW_EXIT_DENIED;
	if (!S_ISREG(st.st_mode) || kw_read_fd(fd, 4096, &text, &len) != 0 ||
	    sodium_base642bin(k->sk, crypto_box_SECRETKEYBYTES, text, len, " \t\r\n", &bin, NULL,
	    sodium_base64_VARIANT_ORIGINAL) != 0 || bin != crypto_box_SECRETKEYBYTES) {
		ex = kw_cli_fail(KW_ERR_INVALID, what, "--decrypt-key %s: not a base64 secret key "
		    "(keywarden admin audit keygen writes one)", kw_cli_safe(path));
		key_wipe(k);
	} else {
		crypto_scalarmult_base(k->pk, k->sk);
		ex = 0;
	}
	if (text) {
		sodium_memzero(text, len);
		free(text);
	}
	return ex;
}

/* The details sealed in b64, parsed; NULL when this key does not open them. */
static json_t *
open_sealed(const struct audit_key *k, const char *b64)
{
	size_t n = strlen(b64), ctlen = 0;
	unsigned char *ct = malloc(n + 1), *pt = NULL;
	json_t *v = NULL;

	if (!ct)
		return NULL;
	if ((sodium_base642bin(ct, n, b64, n, NULL, &ctlen, NULL,
	    sodium_base64_VARIANT_ORIGINAL) != 0 &&
	    sodium_base642bin(ct, n, b64, n, NULL, &ctlen, NULL,
	    sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0) || ctlen < crypto_box_SEALBYTES)
		goto out;
	if (!(pt = malloc(ctlen - crypto_box_SEALBYTES + 1)))
		goto out;
	if (crypto_box_seal_open(pt, ct, ctlen, k->pk, k->sk) == 0)
		v = json_loadb((const char *)pt, ctlen - crypto_box_SEALBYTES, 0, NULL);
	sodium_memzero(pt, ctlen - crypto_box_SEALBYTES);
 out:
	free(pt);
	free(ct);
	return v;
}

static bool
is_pseudonym_at(const char *p)
{
	if (p[0] != '~')
		return false;
	for (int i = 1; i <= PSEUDONYM_HEX; i++)
		if (!strchr("0123456789abcdef", p[i]) || p[i] == '\0')
			return false;
	return !strchr("0123456789abcdef", p[PSEUDONYM_HEX + 1]) || p[PSEUDONYM_HEX + 1] == '\0';
}

/* s with every known pseudonym replaced by its name; NULL when nothing changes. */
static json_t *
named_string(const char *s, json_t *subjects)
{
	char key[PSEUDONYM_HEX + 2];
	char *out = NULL;
	size_t len = 0;
	FILE *f = NULL;
	bool changed = false;
	json_t *v = NULL;

	if (!strchr(s, '~') || !(f = open_memstream(&out, &len)))
		return NULL;
	for (const char *p = s; *p; ) {
		const char *name = NULL;
		if (is_pseudonym_at(p)) {
			memcpy(key, p, sizeof(key) - 1);
			key[sizeof(key) - 1] = '\0';
			name = json_string_value(json_object_get(subjects, key));
		}
		if (name) {
			fputs(name, f);
			p += PSEUDONYM_HEX + 1;
			changed = true;
		} else
			fputc(*p++, f);
	}
	if (fclose(f) == 0 && changed)
		v = json_string(out);
	free(out);
	return v;
}

/* Replace pseudonyms in every string inside v (in place). */
static void
name_subjects(json_t *v, json_t *subjects)
{
	const char *k;
	json_t *item, *named;
	size_t i;

	if (json_is_object(v)) {
		json_object_foreach(v, k, item) {
			if (json_is_string(item) &&
			    (named = named_string(json_string_value(item), subjects)))
				json_object_set_new(v, k, named);
			else
				name_subjects(item, subjects);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, item) {
			if (json_is_string(item) &&
			    (named = named_string(json_string_value(item), subjects)))
				json_array_set_new(v, i, named);
			else
				name_subjects(item, subjects);
		}
	}
}

/*
 * Open rec's sealed details with k (when given) and put names for the
 * pseudonyms the page's subjects map knows.  False when k did not open them.
 */
static bool
resolve_record(json_t *rec, json_t *subjects, const struct audit_key *k)
{
	json_t *meta = json_object_get(rec, "metadata");
	json_t *sealed = json_object_get(meta, "sealed"), *opened;

	if (json_is_string(sealed) && json_object_size(meta) == 1) {
		if (!k->sk)
			return true;
		if (!(opened = open_sealed(k, json_string_value(sealed)))) {
			json_object_set_new(meta, "error", json_string(SEALED_ERROR));
			return false;
		}
		json_object_set_new(rec, "metadata", opened);
	}
	if (json_object_size(subjects) > 0)
		name_subjects(rec, subjects);
	return true;
}

/* ---- paging through audit.query ------------------------------------------ */

struct pager {
	const struct audit_args *args;
	struct audit_key key;
	size_t unopened;		/* sealed details the key did not open */
	int (*emit)(void *ctx, json_t *rec);	/* 0 or an exit status */
	void *ctx;
};

/* Hand one page's records to the emitter; 0 or an exit status. */
static int
take_page(struct pager *pg, json_t *res, long long *left)
{
	json_t *subjects = json_object_get(res, "subjects"), *rec;
	size_t i;
	int ex;

	json_array_foreach(json_object_get(res, "records"), i, rec) {
		if (*left == 0)
			break;
		if (!resolve_record(rec, subjects, &pg->key))
			pg->unopened++;
		if ((ex = pg->emit(pg->ctx, rec)) != 0)
			return ex;
		if (*left > 0)
			(*left)--;
	}
	return 0;
}

/* Every record the filter selects (up to the limit), in seq order, to pg->emit. */
static int
page_through(struct kw_cli *cli, struct pager *pg)
{
	json_t *filter = pg->args->filter, *res = NULL, *next;
	long long left = pg->args->limit;
	json_int_t after = -1;
	kw_client *c = NULL;
	char *msg = NULL;
	int ex, r;

	if ((ex = kw_cli_connect(cli, &c)) != 0)
		return ex;
	while (left != 0 && ex == 0) {
		json_object_set_new(filter, "limit",
		    json_integer(left > 0 && left < PAGE_SIZE ? left : PAGE_SIZE));
		if ((r = kw_client_call(c, "audit.query", filter, &res, &msg)) < 0) {
			kw_cli_error(pg->args->what, r, msg);
			ex = kw_cli_exit_for(r);
			break;
		}
		ex = take_page(pg, res, &left);
		next = json_object_get(res, "next");
		/* A cursor that does not move on would page forever. */
		if (!json_is_integer(next) || json_integer_value(next) <= after)
			break;
		after = json_integer_value(next);
		json_object_set_new(filter, "after", json_integer(after));
		json_decref(res);
		res = NULL;
	}
	json_decref(res);
	free(msg);
	kw_client_free(c);
	return ex;
}

/* Run the pager with args' key; exit 1 (said once) when some details stayed sealed. */
static int
run_pager(struct kw_cli *cli, struct pager *pg, int (*finish)(struct pager *pg))
{
	int ex;

	if (pg->args->key_file && (ex = key_load(pg->args->what, pg->args->key_file, &pg->key)) != 0)
		return ex;
	ex = page_through(cli, pg);
	key_wipe(&pg->key);
	if (ex == 0 && finish)
		ex = finish(pg);
	if (ex == 0 && pg->unopened > 0)
		ex = kw_cli_fail(KW_ERR_DENIED, pg->args->what, "%zu record(s) have details this key "
		    "cannot open", pg->unopened);
	return ex;
}

/* ---- query --------------------------------------------------------------- */

static int
collect(void *ctx, json_t *rec)
{
	return json_array_append(ctx, rec) == 0 ? 0 : KW_EXIT_DENIED;
}

/* Records that opened are shown even when others did not (run_pager says so after). */
static int
query_print(struct pager *pg)
{
	json_t *records = pg->ctx;

	if (pg->args->json)
		kw_cli_print_json(records);
	else if (json_array_size(records) == 0)
		printf("no audit records match\n");
	else
		kw_cli_print_records(stdout, records);
	return 0;
}

static int
audit_query(struct kw_cli *cli, int argc, char **argv)
{
	struct audit_args a = { .what = "admin audit query", .allowed = "uastrnk" };
	json_t *records = json_array();
	struct pager pg = { .args = &a, .emit = collect, .ctx = records };
	int ex = KW_EXIT_DENIED;

	if (records && (ex = parse(cli, argc, argv, &a)) == 0)
		ex = run_pager(cli, &pg, query_print);
	json_decref(records);
	json_decref(a.filter);
	return ex;
}

/* ---- export -------------------------------------------------------------- */

struct export {
	struct kw_cli_out out;
	bool jsonl;
	unsigned long long n;
	json_int_t first_seq, last_seq;
	struct kw_progress progress;
};

/* The record as the seed wrote it, then the chain's fields; a new object. */
static json_t *
export_record(json_t *rec)
{
	static const char *const keys[] = { "timestamp", "user", "action", "resource", "result",
	    "metadata", "seq", "pid", "request_id", "prev_hash", "hash" };
	json_t *o = json_object(), *v;

	for (size_t i = 0; o && i < KW_ELEMENTSOF(keys); i++) {
		v = json_object_get(rec, keys[i]);
		json_object_set(o, keys[i], v ? v : json_null());
	}
	return o;
}

static int
export_emit(void *ctx, json_t *rec)
{
	struct export *e = ctx;
	json_t *o = export_record(rec);
	FILE *f = e->out.f;
	int r;

	if (!o)
		return KW_EXIT_DENIED;
	if (!e->jsonl)
		fputs(e->n == 0 ? "[\n" : ",\n", f);
	r = json_dumpf(o, f, JSON_COMPACT);
	json_decref(o);
	if (e->jsonl)
		fputc('\n', f);
	if (r < 0 || ferror(f))
		return kw_cli_fail(KW_ERR_IO, "admin audit export", "writing %s: %s",
		    kw_cli_safe(e->out.path ? e->out.path : "stdout"), strerror(errno));
	if (e->n == 0)
		e->first_seq = json_integer_value(json_object_get(rec, "seq"));
	e->last_seq = json_integer_value(json_object_get(rec, "seq"));
	kw_progress_show(&e->progress, "exported %llu records", ++e->n);
	return 0;
}

static int
export_finish(struct pager *pg)
{
	struct export *e = pg->ctx;

	if (!e->jsonl)
		fputs(e->n == 0 ? "[]\n" : "\n]\n", e->out.f);
	return kw_cli_out_close(&e->out, pg->args->what);
}

/* --json for an export: what was written where, since the records are in the file. */
static void
export_summary(const struct audit_args *a, const struct export *e)
{
	json_t *o = json_pack("{s:s, s:s, s:I}", "output", a->output, "format", a->format,
	    "records", (json_int_t)e->n);

	if (!o)
		return;
	json_object_set_new(o, "first_seq", e->n ? json_integer(e->first_seq) : json_null());
	json_object_set_new(o, "last_seq", e->n ? json_integer(e->last_seq) : json_null());
	kw_cli_print_json(o);
	json_decref(o);
}

static int
audit_export(struct kw_cli *cli, int argc, char **argv)
{
	struct audit_args a = { .what = "admin audit export", .allowed = "uastrnkfoF",
	    .format = "json" };
	struct export e = { 0 };
	struct pager pg = { .args = &a, .emit = export_emit, .ctx = &e };
	int ex;

	if ((ex = parse(cli, argc, argv, &a)) != 0)
		goto out;
	e.jsonl = strcmp(a.format, "jsonl") == 0;
	if (a.force && !a.output) {
		ex = kw_cli_usage(cli, "--force goes with --output");
		goto out;
	}
	/* Without --output the records are stdout: --json has nothing to add to them. */
	if (a.json && !a.output) {
		ex = kw_cli_usage(cli, "--json goes with --output (without it, the records "
		    "themselves are the output)");
		goto out;
	}
	if ((ex = kw_cli_out_open(&e.out, a.what, a.output, a.force)) == 0) {
		/* Not over the records themselves when they go to the same terminal. */
		kw_progress_init(&e.progress, a.output || !isatty(STDOUT_FILENO));
		ex = run_pager(cli, &pg, export_finish);
		if (ex != 0)
			kw_cli_out_abort(&e.out);
		kw_progress_show(&e.progress, "exported %llu records", e.n);
		kw_progress_end(&e.progress, ex == 0);
		if (ex == 0 && a.json)
			export_summary(&a, &e);
	}
 out:
	json_decref(a.filter);
	return ex;
}

/* ---- verify -------------------------------------------------------------- */

/* Where the broker publishes its public key: broker.dataDir/audit.pub of the configuration. */
static int
default_pubkey(struct kw_cli *cli, char *path, size_t len)
{
	struct kw_config *cfg = NULL;
	char err[512];

	if (kw_config_load(cli->config, false, &cfg, err, sizeof(err)) < 0)
		return -1;
	snprintf(path, len, "%s/audit.pub", kw_config_str(cfg, "broker.dataDir"));
	kw_config_free(cfg);
	return 0;
}

/*
 * The broker's public key from --pubkey (the key in base64, or a file
 * holding it, such as audit.pub) or, without it, the configuration's
 * dataDir/audit.pub.  0, or the exit status after saying why.
 */
static int
load_pubkey(struct kw_cli *cli, const struct audit_args *a, uint8_t pk[KW_AUDIT_PK_LEN],
    char *from, size_t from_len)
{
	char path[4200];
	_cleanup_free_ char *text = NULL;
	_cleanup_close_ int fd = -1;
	size_t len = 0;

	if (a->pubkey && kw_audit_b64_parse(a->pubkey, strlen(a->pubkey), pk, KW_AUDIT_PK_LEN) == 0) {
		snprintf(from, from_len, "--pubkey");
		return 0;
	}
	if (a->pubkey)
		snprintf(path, sizeof(path), "%s", a->pubkey);
	else if (default_pubkey(cli, path, sizeof(path)) < 0)
		return kw_cli_fail(KW_ERR_INVALID, a->what, "no public key to check the archive's "
		    "signature with: give --pubkey KEY|FILE (keywarden admin audit pubkey prints it)");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0 ||
	    kw_read_fd(fd, 4096, &text, &len) != 0) {
		if (a->pubkey)
			return kw_cli_fail(KW_ERR_INVALID, a->what, "--pubkey %s: neither a public key "
			    "(base64) nor a file holding one: %s", kw_cli_safe(path),
			    fd < 0 ? strerror(errno) : "unreadable");
		return kw_cli_fail(KW_ERR_INVALID, a->what, "%s: %s; give the broker's public key "
		    "with --pubkey KEY|FILE (keywarden admin audit pubkey prints it)",
		    kw_cli_safe(path), fd < 0 ? strerror(errno) : "unreadable");
	}
	if (kw_audit_b64_parse(text, len, pk, KW_AUDIT_PK_LEN) < 0)
		return kw_cli_fail(KW_ERR_INVALID, a->what, "%s does not hold a public key (base64 "
		    "of %d bytes, as in the broker's audit.pub)", kw_cli_safe(path), KW_AUDIT_PK_LEN);
	snprintf(from, from_len, "%s", path);
	return 0;
}

static int
verify_archive(struct kw_cli *cli, const struct audit_args *a)
{
	struct kw_archive_report rep;
	uint8_t pk[KW_AUDIT_PK_LEN];
	char from[4200], pk_b64[KW_AUDIT_PK_B64];
	json_t *o;
	int r;

	if ((r = load_pubkey(cli, a, pk, from, sizeof(from))) != 0)
		return r;
	if (sodium_init() < 0)
		return KW_EXIT_DENIED;
	kw_audit_pk_b64(pk, pk_b64);
	r = kw_archive_verify(a->archive, pk, &rep);

	if (r == KW_ERR_IO || r == KW_ERR_NOMEM)
		return kw_cli_fail(r, a->what, "%s: %s", kw_cli_safe(a->archive),
		    r == KW_ERR_IO ? strerror(errno) : "out of memory");
	if (a->json) {
		o = json_pack("{s:s, s:b, s:I, s:I, s:I}", "archive", a->archive, "ok", r == 0,
		    "records", (json_int_t)rep.records, "first_seq", (json_int_t)rep.first_seq,
		    "last_seq", (json_int_t)rep.last_seq);
		if (!o)
			return KW_EXIT_DENIED;
		json_object_set_new(o, "head_hash", rep.head_hash[0] ? json_string(rep.head_hash) :
		    json_null());
		json_object_set_new(o, "signed", json_boolean(rep.is_signed));
		json_object_set_new(o, "public_key", json_string(pk_b64));
		json_object_set_new(o, "bad", r == 0 ? json_null() :
		    json_pack("{s:o, s:I, s:s}", "seq", rep.bad_seq >= 0 ?
		    json_integer(rep.bad_seq) : json_null(), "line", (json_int_t)rep.bad_line,
		    "reason", rep.reason));
		kw_cli_print_json(o);
		json_decref(o);
	} else if (r == 0)
		printf("archive %s intact: %lld records (seq %lld..%lld), manifest signed by %s "
		    "(key from %s)\n", kw_cli_safe(a->archive), rep.records, rep.first_seq,
		    rep.last_seq, pk_b64, kw_cli_safe(from));
	else if (rep.bad_seq >= 0)
		printf("archive %s broken at record %lld: %s\n", kw_cli_safe(a->archive),
		    rep.bad_seq, kw_cli_safe(rep.reason));
	else
		/* A parse error quotes the archive: escaped like all it holds. */
		printf("archive %s broken at line %lld: %s\n", kw_cli_safe(a->archive), rep.bad_line,
		    kw_cli_safe(rep.reason));
	if (r != 0)
		kw_cli_record_error(kw_error_name(KW_ERR_DENIED), rep.reason);
	return r == 0 ? KW_EXIT_OK : KW_EXIT_DENIED;
}

static void
print_verified(json_t *res)
{
	json_t *bad = json_object_get(res, "bad"), *unsigned_through;
	long long n = json_integer_value(json_object_get(res, "records"));
	const char *what = json_string_value(json_object_get(bad, "what"));
	bool is_signed = json_is_true(json_object_get(res, "signed"));

	if (json_is_true(json_object_get(res, "ok")) && n == 0)
		printf("audit trail intact: 0 records\n");
	else if (json_is_true(json_object_get(res, "ok")))
		printf("audit trail intact: %lld records (seq %lld..%lld), head %s%s\n", n,
		    (long long)json_integer_value(json_object_get(res, "first_seq")),
		    (long long)json_integer_value(json_object_get(res, "last_seq")),
		    kw_cli_safe(json_string_value(json_object_get(res, "head_hash"))),
		    is_signed ? ", signed by the broker" : ", not signed");
	else
		printf("audit trail broken at %s %lld: %s\n",
		    what && strcmp(what, "anchor") == 0 ? "anchor" : "record",
		    (long long)json_integer_value(json_object_get(bad, "seq")),
		    json_string_value(json_object_get(bad, "reason")) ?
		    kw_cli_safe(json_string_value(json_object_get(bad, "reason"))) : "unknown");
	unsigned_through = json_object_get(res, "unsigned_through");
	if (json_is_integer(unsigned_through))
		printf("unsigned history: the records up to seq %lld were written before the broker "
		    "signed its trail; they are chained, but no signature of their time vouches "
		    "for them\n", (long long)json_integer_value(unsigned_through));
}

/* The broker signs with pinned (--pubkey), or the answer is refused. */
static int
check_pinned(struct kw_cli *cli, const struct audit_args *a, json_t *res)
{
	uint8_t pk[KW_AUDIT_PK_LEN];
	char from[4200], want[KW_AUDIT_PK_B64];
	const char *got = json_string_value(json_object_get(res, "public_key"));
	int ex;

	if (!a->pubkey)
		return 0;
	if ((ex = load_pubkey(cli, a, pk, from, sizeof(from))) != 0)
		return ex;
	kw_audit_pk_b64(pk, want);
	if (got && strcmp(got, want) == 0)
		return 0;
	return kw_cli_fail(KW_ERR_DENIED, a->what, "the broker signs with the key %s, not with "
	    "the key given (%s)", got ? kw_cli_safe(got) : "(none)", want);
}

static int
audit_verify(struct kw_cli *cli, int argc, char **argv)
{
	struct audit_args a = { .what = "admin audit verify", .allowed = "AP" };
	struct kw_progress progress;
	json_t *res = NULL;
	int ex;

	if ((ex = parse(cli, argc, argv, &a)) != 0)
		goto out;
	/* Either way every record's hash is recomputed: a while for a long trail. */
	kw_progress_init(&progress, true);
	kw_progress_show(&progress, "verifying the audit trail...");
	if (a.archive) {
		ex = verify_archive(cli, &a);
		kw_progress_end(&progress, false);
		goto out;
	}
	ex = kw_cli_call(cli, a.what, "audit.verify", NULL, &res);
	kw_progress_end(&progress, false);
	if (ex != 0 || (ex = check_pinned(cli, &a, res)) != 0)
		goto out;
	if (a.json)
		kw_cli_print_json(res);
	else
		print_verified(res);
	ex = json_is_true(json_object_get(res, "ok")) ? KW_EXIT_OK : KW_EXIT_DENIED;
	if (ex != KW_EXIT_OK)
		kw_cli_record_error(kw_error_name(KW_ERR_DENIED), "the audit trail is broken");
 out:
	json_decref(res);
	json_decref(a.filter);
	return ex;
}

/* ---- prune --------------------------------------------------------------- */

/* Batches that prune nothing without being done: the broker is stuck; stop asking. */
#define PRUNE_STALLS_MAX 3

static void
print_pruned(json_t *sum)
{
	json_t *archives = json_object_get(sum, "archives");
	char *list = kw_cli_join(archives);

	printf("pruned %lld records", (long long)json_integer_value(json_object_get(sum, "pruned")));
	if (json_array_size(archives) > 0)
		printf("; archived to %s", kw_cli_safe(list ? list : "?"));
	putchar('\n');
	free(list);
}

/* Add one batch's result to sum; false once the broker says it is done. */
static bool
prune_add(json_t *sum, json_t *res, int *stalls)
{
	json_int_t n = json_integer_value(json_object_get(res, "pruned"));
	json_t *archive = json_object_get(res, "archive"), *archives, *v;
	size_t i;
	bool seen = false;

	json_object_set_new(sum, "pruned",
	    json_integer(json_integer_value(json_object_get(sum, "pruned")) + n));
	json_object_set(sum, "remaining_due", json_object_get(res, "remaining_due") ?
	    json_object_get(res, "remaining_due") : json_null());
	archives = json_object_get(sum, "archives");
	json_array_foreach(archives, i, v)
		seen = seen || json_equal(v, archive);
	if (json_is_string(archive) && !seen)
		json_array_append(archives, archive);
	*stalls = n > 0 ? 0 : *stalls + 1;
	return !json_is_true(json_object_get(res, "done"));
}

static int
audit_prune(struct kw_cli *cli, int argc, char **argv)
{
	struct audit_args a = { .what = "admin audit prune", .allowed = "" };
	struct kw_progress progress;
	json_t *sum = json_pack("{s:I, s:[], s:n}", "pruned", (json_int_t)0, "archives",
	    "remaining_due"), *res = NULL;
	kw_client *c = NULL;
	char *msg = NULL;
	int ex, r, stalls = 0;
	bool more = true;

	if (!sum)
		return KW_EXIT_DENIED;
	kw_progress_init(&progress, true);
	if ((ex = parse(cli, argc, argv, &a)) != 0 ||
	    (ex = kw_cli_connect(cli, &c)) != 0)
		goto out;
	while (more && stalls < PRUNE_STALLS_MAX) {
		if ((r = kw_client_call(c, "audit.prune", NULL, &res, &msg)) < 0) {
			kw_progress_end(&progress, false);
			kw_cli_error(a.what, r, msg);
			ex = kw_cli_exit_for(r);
			goto out;
		}
		more = prune_add(sum, res, &stalls);
		json_decref(res);
		res = NULL;
		if (more)
			kw_progress_show(&progress, "pruned %lld records",
			    (long long)json_integer_value(json_object_get(sum, "pruned")));
	}
	kw_progress_end(&progress, false);
	if (more)
		ex = kw_cli_fail(KW_ERR_INTERNAL, a.what, "the broker pruned nothing in %d batches "
		    "but is not done; stopping", PRUNE_STALLS_MAX);
	if (a.json)
		kw_cli_print_json(sum);
	else
		print_pruned(sum);
 out:
	free(msg);
	kw_client_free(c);
	json_decref(sum);
	json_decref(a.filter);
	return ex;
}

/* ---- pubkey -------------------------------------------------------------- */

static void
print_pubkey(json_t *res)
{
	printf("%s\n", json_string_value(json_object_get(res, "public_key")));
}

static int
audit_pubkey(struct kw_cli *cli, int argc, char **argv)
{
	struct audit_args a = { .what = "admin audit pubkey", .allowed = "" };
	int ex;

	if ((ex = parse(cli, argc, argv, &a)) == 0)
		ex = kw_cli_call_print(cli, a.what, "audit.pubkey", json_object(), a.json,
		    print_pubkey);
	json_decref(a.filter);
	return ex;
}

/* ---- keygen -------------------------------------------------------------- */

/* Write the secret key text to a new 0600 file; 0 or the exit status after saying why. */
static int
keygen_write(const char *what, const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0 && errno == EEXIST)
		return kw_cli_fail(KW_ERR_DENIED, what, "%s exists; refusing to overwrite a key "
		    "(move it away or choose another --output)", kw_cli_safe(path));
	/* The auditor who ran sudo keeps the key, not root (given before it holds anything). */
	if (fd >= 0)
		(void)kw_cli_give_to_invoker(fd, what, path);
	if (fd < 0 || fchmod(fd, 0600) < 0 || kw_write_all(fd, text, strlen(text)) < 0 ||
	    fsync(fd) < 0) {
		int ex = kw_cli_fail(KW_ERR_IO, what, "%s: %s", kw_cli_safe(path), strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(path);
		}
		return ex;
	}
	close(fd);
	return 0;
}

static int
audit_keygen(struct kw_cli *cli, int argc, char **argv)
{
	enum { B64_LEN = sodium_base64_ENCODED_LEN(crypto_box_SECRETKEYBYTES,
	    sodium_base64_VARIANT_ORIGINAL) };
	struct audit_args a = { .what = "admin audit keygen", .allowed = "o" };
	unsigned char pk[crypto_box_PUBLICKEYBYTES], *sk = NULL;
	char pk_b64[B64_LEN], *sk_text = NULL, *abs = NULL;
	json_t *o;
	int ex;

	if ((ex = parse(cli, argc, argv, &a)) != 0)
		goto out;
	if (!a.output)
		a.output = KEYGEN_DEFAULT;
	ex = KW_EXIT_DENIED;
	if (sodium_init() < 0 || !(sk = sodium_malloc(crypto_box_SECRETKEYBYTES)) ||
	    !(sk_text = sodium_malloc(B64_LEN + 1)))
		goto out;
	crypto_box_keypair(pk, sk);
	sodium_bin2base64(sk_text, B64_LEN, sk, crypto_box_SECRETKEYBYTES,
	    sodium_base64_VARIANT_ORIGINAL);
	strcat(sk_text, "\n");
	sodium_bin2base64(pk_b64, sizeof(pk_b64), pk, sizeof(pk), sodium_base64_VARIANT_ORIGINAL);
	if ((ex = keygen_write(a.what, a.output, sk_text)) != 0)
		goto out;
	abs = realpath(a.output, NULL);
	if (a.json) {
		if ((o = json_pack("{s:s, s:s}", "public_key", pk_b64, "secret_key_file",
		    abs ? abs : a.output)))
			kw_cli_print_json(o);
		json_decref(o);
	} else {
		printf("%s\n", pk_b64);
		fprintf(stderr, "keywarden: secret key written to %s (mode 0600): keep it with the "
		    "auditors, off this host\n"
		    "set it with: echo %s | keywarden config set security.audit.encryptionKey\n"
		    "  (config set reads secret keys on stdin, never from the command line)\n"
		    "then: keywarden config set security.audit.encrypt true\n",
		    kw_cli_safe(abs ? abs : a.output), pk_b64);
	}
 out:
	if (sk) {
		sodium_memzero(sk, crypto_box_SECRETKEYBYTES);
		sodium_free(sk);
	}
	if (sk_text) {
		sodium_memzero(sk_text, B64_LEN + 1);
		sodium_free(sk_text);
	}
	free(abs);
	json_decref(a.filter);
	return ex;
}

#define FILTER_OPTIONS \
	"  --user U       records by or about user U\n" \
	"  --action A     actions matching the glob A (key.*, login)\n" \
	"  --since T      from T: 2026-11-25T01:02:03Z, 2026-11-25, or an age (30m, 12h, 7d)\n" \
	"  --until T      up to T\n" \
	"  --result R     success, denied or error\n" \
	"  --limit N      at most N records\n" \
	"  --decrypt-key FILE  open sealed details with the auditor's secret key\n"

static const struct kw_cmd audit_commands[] = {
	{ .name = "query", .fn = audit_query, .help = "the records a filter selects, oldest first",
	  .usage = "[--user U] [--action A] [--since T] [--until T] [--result R] [--limit N] "
	    "[--decrypt-key FILE] [--json]",
	  .options = FILTER_OPTIONS
	    "  --json         an array of records (seq, ts, user, action, resource, result, ...)\n" },
	{ .name = "export", .fn = audit_export,
	  .help = "write the records a filter selects as JSON or JSON lines",
	  .usage = "[--format json|jsonl] [--output FILE [--force]] [filters as query] [--json]",
	  .options = "  --format F     json (one array, the default) or jsonl (a record a line)\n"
	    "  --output FILE  write a new 0600 file instead of stdout\n"
	    "  --force        replace FILE if it exists\n"
	    FILTER_OPTIONS
	    "  --json         with --output: {\"output\", \"format\", \"records\", \"first_seq\",\n"
	    "                 \"last_seq\"}, the summary of what was written\n" },
	{ .name = "verify", .fn = audit_verify,
	  .help = "check the hash chain and the broker's signatures, or an archive offline",
	  .usage = "[--archive FILE] [--pubkey KEY|FILE] [--json]",
	  .options = "  --archive FILE    an archive (audit-FIRST-LAST.jsonl.gz), without the broker\n"
	    "  --pubkey KEY|FILE the broker's public key (default: broker.dataDir/audit.pub)\n"
	    "  --json            {\"ok\", \"records\", \"first_seq\", \"last_seq\", \"bad\", ...};\n"
	    "                    exit 1 when broken\n" },
	{ .name = "prune", .fn = audit_prune,
	  .help = "remove records older than security.audit.retention now (archived first with "
	    "autoArchive)",
	  .usage = "[--json]",
	  .options = "  --json  {\"pruned\", \"archives\", \"remaining_due\"}\n" },
	{ .name = "pubkey", .fn = audit_pubkey, .help = "the public key the broker signs its trail with",
	  .usage = "[--json]", .options = "  --json  {\"public_key\"}\n" },
	{ .name = "keygen", .fn = audit_keygen,
	  .help = "a key pair for sealed details; needs no broker",
	  .usage = "[--output FILE] [--json]",
	  .options = "  --output FILE  where the secret key goes (default audit-secret.key, 0600)\n"
	    "  --json         {\"public_key\", \"secret_key_file\"}\n" },
};

int
kw_cmd_admin_audit(struct kw_cli *cli, int argc, char **argv)
{
	return kw_cli_run_group(cli, audit_commands, KW_ELEMENTSOF(audit_commands), argc, argv);
}
