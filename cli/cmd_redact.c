/*
 * cmd_redact.c - keywarden redact [FILE...]: the configuration's secret
 * rules and security.filters.patterns applied to text, streaming, in
 * bounded memory, without a broker.
 *
 * stdin to stdout without FILE ("-" is stdin too); each FILE in turn to
 * stdout; or, with --in-place, each FILE replaced atomically (same mode,
 * same owner), and left alone when nothing was found.  Stdout carries the
 * text, so --json's report ({"counts": {rule: n}, "files": [{"file",
 * "counts"}]}) is printed on stdout only with --in-place, and otherwise on
 * stderr, as one line after the text.
 *
 * A matched value is never written anywhere but as its replacement:
 * messages name files and rules only.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/cli.h"
#include "common/errors.h"
#include "common/fsutil.h"
#include "policy/detect/detect.h"

#define READ_CHUNK	(64 * 1024)
#define KEY_MIN		16
#define KEY_MAX		1024

struct redact_run {
	struct kw_cli *cli;
	const struct kw_detector *d;
	enum kw_redact_mode mode;
	unsigned char *key;		/* sodium_malloc'd, HMAC mode */
	size_t key_len;
	json_t *total;			/* {rule: n} over every input */
	json_t *files;			/* [{"file", "counts"}] */
};

static int
write_fd(const char *buf, size_t len, void *ctx)
{
	return kw_write_all(*(int *)ctx, buf, len);
}

/* Add counts to total. */
static int
add_counts(json_t *total, json_t *counts)
{
	const char *rule;
	json_t *n;

	json_object_foreach(counts, rule, n) {
		json_int_t t = json_integer_value(json_object_get(total, rule));
		if (json_object_set_new(total, rule, json_integer(t + json_integer_value(n))) < 0)
			return KW_ERR_NOMEM;
	}
	return 0;
}

/*
 * in through a redactor to out.  0; KW_ERR_IO with *ret_read_failed
 * telling which side failed (errno kept); KW_ERR_NOMEM.
 */
static int
redact_fd(struct redact_run *rr, int in, int out, const char *name, bool *ret_read_failed)
{
	struct kw_redactor *r = NULL;
	char *buf = NULL;
	ssize_t n;
	int rc;

	*ret_read_failed = false;
	if (!(buf = malloc(READ_CHUNK)))
		return KW_ERR_NOMEM;
	if ((rc = kw_redactor_new(rr->d, rr->mode, rr->key, rr->key_len, write_fd, &out, &r)) < 0)
		goto out;
	for (;;) {
		n = read(in, buf, READ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*ret_read_failed = true;
			rc = KW_ERR_IO;
			goto out;
		}
		if (n == 0)
			break;
		if ((rc = kw_redactor_feed(r, buf, (size_t)n)) < 0)
			goto out;
	}
	if ((rc = kw_redactor_end(r)) < 0)
		goto out;
	json_t *counts = kw_redactor_counts(r);
	if ((rc = add_counts(rr->total, counts)) < 0 ||
	    json_array_append_new(rr->files, json_pack("{s:s, s:O}", "file", name, "counts",
	    counts)) < 0)
		rc = rc < 0 ? rc : KW_ERR_NOMEM;
 out:
	sodium_memzero(buf, READ_CHUNK);
	free(buf);
	kw_redactor_free(r);
	return rc;
}

/* The count of findings the last file had (its entry in files). */
static json_int_t
last_file_findings(struct redact_run *rr)
{
	json_t *counts = json_object_get(json_array_get(rr->files,
	    json_array_size(rr->files) - 1), "counts");
	const char *rule;
	json_t *n;
	json_int_t sum = 0;

	json_object_foreach(counts, rule, n)
		sum += json_integer_value(n);
	return sum;
}

static int
io_fail(struct redact_run *rr, const char *file, const char *what)
{
	return kw_cli_fail(KW_ERR_IO, "redact", "%s: %s: %s", kw_cli_safe(file), what,
	    strerror(errno));
}

static int
redact_to_stdout(struct redact_run *rr, const char *file)
{
	bool stdin_ = strcmp(file, "-") == 0, read_failed;
	_cleanup_close_ int fd = stdin_ ? -1 : open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	int r;

	if (!stdin_ && fd < 0)
		return io_fail(rr, file, "cannot open");
	r = redact_fd(rr, stdin_ ? STDIN_FILENO : fd, STDOUT_FILENO, stdin_ ? "-" : file,
	    &read_failed);
	if (r == KW_ERR_IO)
		return read_failed ? io_fail(rr, stdin_ ? "stdin" : file, "cannot read") :
		    io_fail(rr, "stdout", "cannot write");
	if (r < 0)
		return kw_cli_fail(r, "redact", "%s", kw_strerror(r));
	return 0;
}

/* FILE replaced by its redaction (mode and owner kept), or left as it was. */
static int
redact_in_place(struct redact_run *rr, const char *file)
{
	_cleanup_close_ int in = -1, dfd = -1;
	char tmp[NAME_MAX + 1];
	const char *name;
	struct stat st;
	bool read_failed;
	int out, r;

	if ((in = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW)) < 0)
		return io_fail(rr, file, errno == ELOOP ? "a symbolic link (not replaced)" :
		    "cannot open");
	if (fstat(in, &st) < 0)
		return io_fail(rr, file, "cannot stat");
	if (!S_ISREG(st.st_mode))
		return kw_cli_fail(KW_ERR_INVALID, "redact", "%s: not a regular file",
		    kw_cli_safe(file));
	if ((dfd = kw_open_dir_of(file, &name)) < 0)
		return io_fail(rr, file, "cannot open its directory");
	/* root keeps the file its owner's; anyone else can only own what they write. */
	if ((out = kw_atomic_open_at(dfd, name, st.st_mode & 07777,
	    geteuid() == 0 ? st.st_uid : (uid_t)-1, geteuid() == 0 ? st.st_gid : (gid_t)-1,
	    tmp, sizeof(tmp))) < 0)
		return io_fail(rr, file, "cannot create the replacement");
	r = redact_fd(rr, in, out, file, &read_failed);
	if (r < 0) {
		kw_atomic_abort_at(dfd, out, tmp);
		if (r == KW_ERR_IO)
			return io_fail(rr, file, read_failed ? "cannot read" : "cannot write");
		return kw_cli_fail(r, "redact", "%s", kw_strerror(r));
	}
	if (last_file_findings(rr) == 0) {
		kw_atomic_abort_at(dfd, out, tmp);
		return 0;
	}
	if (kw_atomic_commit_at(dfd, out, tmp, name) < 0)
		return io_fail(rr, file, "cannot replace");
	return 0;
}

/*
 * The HMAC key: a file of KEY_MIN..KEY_MAX bytes, owned by the caller (or
 * root), that no one else may read or write.
 */
static int
read_key(struct redact_run *rr, const char *path)
{
	char err[512];
	_cleanup_close_ int fd = kw_open_private_path(path, O_RDONLY, 0, err, sizeof(err));
	struct stat st;
	ssize_t n;

	if (fd < 0)
		return kw_cli_fail(KW_ERR_CONFIG, "redact", "--key-file: %s", err);
	if (fstat(fd, &st) < 0)
		return io_fail(rr, path, "cannot stat");
	if (st.st_mode & 077)
		return kw_cli_fail(KW_ERR_CONFIG, "redact",
		    "--key-file %s: group or others may read it (chmod 600)", kw_cli_safe(path));
	if (st.st_size < KEY_MIN || st.st_size > KEY_MAX)
		return kw_cli_fail(KW_ERR_CONFIG, "redact",
		    "--key-file %s: expected %d to %d bytes", kw_cli_safe(path), KEY_MIN, KEY_MAX);
	if (sodium_init() < 0 || !(rr->key = sodium_malloc((size_t)st.st_size)))
		return kw_cli_fail(KW_ERR_NOMEM, "redact", "out of memory");
	do
		n = pread(fd, rr->key, (size_t)st.st_size, 0);
	while (n < 0 && errno == EINTR);
	if (n != st.st_size)
		return io_fail(rr, path, "cannot read");
	rr->key_len = (size_t)n;
	return 0;
}

static int
load_detector(struct kw_cli *cli, struct kw_detector **ret)
{
	struct kw_config *cfg = NULL;
	char err[1024];
	int r;

	if ((r = kw_config_load(cli->config, true, &cfg, err, sizeof(err))) < 0 ||
	    (r = kw_detector_compile(cfg, KW_DETECT_SECRETS | KW_DETECT_FILTERS, ret, err,
	    sizeof(err))) < 0) {
		kw_config_free(cfg);
		return kw_cli_fail(r == KW_ERR_NOMEM ? KW_ERR_NOMEM : KW_ERR_CONFIG, "redact",
		    "%s", err);
	}
	kw_config_free(cfg);
	return 0;
}

static int
parse_mode(const char *s, enum kw_redact_mode *ret)
{
	if (strcmp(s, "replace") == 0)
		*ret = KW_REDACT_REPLACE;
	else if (strcmp(s, "partial") == 0)
		*ret = KW_REDACT_PARTIAL;
	else if (strcmp(s, "hmac") == 0)
		*ret = KW_REDACT_HMAC;
	else
		return -1;
	return 0;
}

static void
report(struct redact_run *rr, bool in_place)
{
	json_t *o = json_pack("{s:O, s:O}", "counts", rr->total, "files", rr->files);

	if (!o)
		return;
	if (in_place) {
		kw_cli_print_json(o);
	} else {
		json_dumpf(o, stderr, JSON_COMPACT | JSON_ENSURE_ASCII);
		fputc('\n', stderr);
	}
	json_decref(o);
}

int
kw_cmd_redact(struct kw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "in-place", no_argument, NULL, 'i' }, { "mode", required_argument, NULL, 'm' },
		{ "key-file", required_argument, NULL, 'k' }, { NULL, 0, NULL, 0 },
	};
	struct redact_run rr = { .cli = cli, .mode = KW_REDACT_REPLACE };
	struct kw_detector *d = NULL;
	const char *key_file = NULL;
	bool in_place = false, json = cli->json;
	int c, ex = KW_EXIT_OK;

	optind = 0;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'i': in_place = true; break;
		case 'm':
			if (parse_mode(optarg, &rr.mode) < 0)
				return kw_cli_usage(cli, "--mode takes replace, partial or hmac");
			break;
		case 'k': key_file = optarg; break;
		default: return kw_cli_bad_option(cli, argc, argv, opts);
		}
	}
	if (rr.mode == KW_REDACT_HMAC && !key_file)
		return kw_cli_usage(cli, "--mode hmac needs --key-file FILE");
	if (rr.mode != KW_REDACT_HMAC && key_file)
		return kw_cli_usage(cli, "--key-file goes with --mode hmac");
	if (in_place && optind == argc)
		return kw_cli_usage(cli, "--in-place needs FILE");
	for (int i = optind; in_place && i < argc; i++)
		if (strcmp(argv[i], "-") == 0)
			return kw_cli_usage(cli, "--in-place cannot replace stdin");
	/* Without --in-place stdout is the text: a failure is not reported as JSON there. */
	if (!in_place)
		cli->json = false;
	if ((key_file && (ex = read_key(&rr, key_file)) != 0) ||
	    (ex = load_detector(cli, &d)) != 0)
		goto out;
	rr.d = d;
	if (!(rr.total = json_object()) || !(rr.files = json_array())) {
		ex = kw_cli_fail(KW_ERR_NOMEM, "redact", "out of memory");
		goto out;
	}
	if (optind == argc)
		ex = redact_to_stdout(&rr, "-");
	for (int i = optind; ex == KW_EXIT_OK && i < argc; i++)
		ex = in_place ? redact_in_place(&rr, argv[i]) : redact_to_stdout(&rr, argv[i]);
	if (ex == KW_EXIT_OK && json)
		report(&rr, in_place);
 out:
	if (rr.key)
		sodium_free(rr.key);
	json_decref(rr.total);
	json_decref(rr.files);
	kw_detector_free(d);
	return ex;
}
