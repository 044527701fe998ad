/*
 * cmd_doctor.c - keywarden doctor [--fix [--yes]] [--json]
 *
 * The security guide's checklist, run on the user's machine: API keys in
 * plaintext, file permissions, the broker's view of the user, the audit
 * trail, access control, Claude Code's wiring and sensitive-data filtering
 * (doctor.h says which file checks what).  Each item is pass, info, skip,
 * warn or fail, with one line of what to do; exit 0 when nothing fails.
 *
 * --fix makes only the safe fixes: modes of the user's own files and
 * directories, and, once confirmed (a prompt at a terminal, --yes
 * otherwise), a plaintext key moved into keywarden through key import's
 * key.set.  It deletes nothing: it says which copies to delete.  What it
 * does goes to stderr; the report that follows is the state after it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/doctor.h"
#include "cli/key_import.h"
#include "cli/prompt.h"
#include "common/fsutil.h"


static const char *const status_names[] = {
	[KW_DR_PASS] = "pass",
	[KW_DR_INFO] = "info",
	[KW_DR_SKIP] = "skip",
	[KW_DR_WARN] = "warn",
	[KW_DR_FAIL] = "fail",
};

char *
kw_dr_fmt(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	return r < 0 ? NULL : s;
}

struct kw_dr_item *
kw_dr_add(struct kw_dr *d, const char *check, enum kw_dr_status status, const char *file,
    long line, const char *fix, const char *fmt, ...)
{
	struct kw_dr_item *it;
	va_list ap;
	int r;

	if (d->n_items == d->cap_items) {
		size_t cap = d->cap_items ? d->cap_items * 2 : 32;
		struct kw_dr_item *n = reallocarray(d->items, cap, sizeof(*n));
		if (!n) {
			d->oom = true;
			return NULL;
		}
		d->items = n;
		d->cap_items = cap;
	}
	it = &d->items[d->n_items];
	*it = (struct kw_dr_item){ .status = status, .line = line };
	va_start(ap, fmt);
	r = vasprintf(&it->detail, fmt, ap);
	va_end(ap);
	if (r < 0 || !(it->check = strdup(check)) || (fix && !(it->fix = strdup(fix))) ||
	    (file && !(it->file = strdup(file)))) {
		if (r >= 0)
			free(it->detail);
		free(it->check);
		free(it->fix);
		d->oom = true;
		return NULL;
	}
	d->n_items++;
	return it;
}

int
kw_dr_read_file(const char *path, size_t max, char **ret_data, size_t *ret_len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK), r;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	r = kw_read_fd(fd, max, ret_data, ret_len);
	close(fd);
	if (r == KW_ERR_INVALID)
		errno = EFBIG;
	else if (r == KW_ERR_NOMEM)
		errno = ENOMEM;
	return r < 0 ? -1 : 0;
}

void
kw_dr_clear(struct kw_dr *d)
{
	for (size_t i = 0; i < d->n_items; i++) {
		struct kw_dr_item *it = &d->items[i];
		free(it->check);
		free(it->detail);
		free(it->fix);
		free(it->file);
		kw_secret_free(it->value);
	}
	free(d->items);
	d->items = NULL;
	d->n_items = d->cap_items = 0;
}

/* ---- context ------------------------------------------------------------ */

static bool
has_git(const char *dir)
{
	_cleanup_free_ char *p = kw_dr_fmt("%s/.git", dir);

	return p && access(p, F_OK) == 0;
}

/*
 * The current directory and its parents, up to the repository's root, $HOME
 * or four levels up (a current directory that is gone: $HOME).  -1: out of memory.
 */
static int
find_project(struct kw_dr *d)
{
	char *dir = getcwd(NULL, 0);

	if (!dir && (errno == ENOMEM || !(dir = strdup(d->home))))
		return -1;
	for (;;) {
		char *slash;
		d->project[d->n_project++] = dir;
		if (has_git(dir)) {
			d->repo_root = true;
			break;
		}
		if (strcmp(dir, d->home) == 0 || d->n_project == KW_DR_PROJECT_MAX ||
		    !(slash = strrchr(dir, '/')) || slash == dir)
			break;
		if (!(dir = strndup(dir, (size_t)(slash - dir))))
			return -1;
	}
	return 0;
}

static const char *
home_dir(void)
{
	const char *h = getenv("HOME");
	struct passwd *pw;

	if (h && h[0] == '/')
		return h;
	return (pw = getpwuid(geteuid())) && pw->pw_dir ? pw->pw_dir : "/";
}

static int
setup(struct kw_dr *d, struct kw_cli *cli)
{
	d->cli = cli;
	d->home = home_dir();
	snprintf(d->cfg_path, sizeof(d->cfg_path), "%s", cli->config);
	d->cfg_err = kw_config_load(cli->config, true, &d->cfg, d->cfg_why, sizeof(d->cfg_why));
	if (d->cfg_err < 0 && !(d->cfg = kw_config_new_default()))
		return -1;
	if (find_project(d) < 0)
		return -1;
	kw_dr_read_helper(d);
	return d->oom ? -1 : 0;
}

static void
teardown(struct kw_dr *d)
{
	kw_dr_clear(d);
	for (size_t i = 0; i < d->n_project; i++)
		free(d->project[i]);
	kw_config_free(d->cfg);
	kw_client_free(d->client);
	json_decref(d->status);
	json_decref(d->account);
	json_decref(d->verify);
	kw_secret_free(d->imported);
	free(d->helper_file);
	free(d->helper_prog);
	free(d->helper_key);
}

/* ---- the checks ---------------------------------------------------------- */

void
kw_dr_check_config(struct kw_dr *d)
{
	const char *path = kw_cli_safe(d->cfg_path);
	_cleanup_free_ char *fix = NULL;

	switch (d->cfg_err) {
	case 0:
		if (access(d->cfg_path, F_OK) == 0)
			kw_dr_add(d, "config", KW_DR_PASS, d->cfg_path, 0, NULL, "%s is valid", path);
		else
			kw_dr_add(d, "config", KW_DR_INFO, NULL, 0, NULL, "no configuration file at %s: "
			    "the built-in defaults (the guide's values) apply", path);
		break;
	case KW_ERR_IO:
		kw_dr_add(d, "config", KW_DR_INFO, d->cfg_path, 0, NULL, "%s cannot be read by you "
		    "(%s); the checks below assume the built-in defaults", path,
		    kw_cli_safe(d->cfg_why));
		break;
	default:
		fix = kw_dr_fmt("keywardend --check-config --config %s says why; correct it with "
		    "keywarden config set", path);
		kw_dr_add(d, "config", KW_DR_FAIL, d->cfg_path, 0, fix, "%s: %s (the broker refuses "
		    "it); the checks below assume the built-in defaults", path,
		    kw_cli_safe(d->cfg_why));
		break;
	}
}

static void
run_checks(struct kw_dr *d)
{
	kw_dr_check_config(d);
	kw_dr_check_keys(d);
	kw_dr_check_perms(d);
	kw_dr_check_broker(d);
	kw_dr_check_claude(d);
	kw_dr_check_filtering(d);
	kw_dr_check_sandbox(d);
	kw_dr_check_apiproxy(d);
}

/* ---- --fix: the key ------------------------------------------------------- */

/* "FILE line N, the environment (VAR), ..." for the items holding value. */
static char *
places(const struct kw_dr *d, const char *value)
{
	char *text = strdup(""), *next;

	for (size_t i = 0; i < d->n_items && text; i++) {
		const struct kw_dr_item *it = &d->items[i];
		if (!it->value || strcmp(it->value, value) != 0)
			continue;
		if (it->file)
			next = kw_dr_fmt("%s%s%s line %ld", text, *text ? ", " : "",
			    kw_cli_safe(it->file), it->line);
		else
			next = kw_dr_fmt("%s%sthe environment (%.*s)", text, *text ? ", " : "",
			    (int)strcspn(it->detail, " "), it->detail);
		free(text);
		text = next;
	}
	return text;
}

static bool
confirmed(bool yes, const char *where, const char *name)
{
	char answer[16];

	if (yes)
		return true;
	if (!isatty(STDIN_FILENO)) {
		fprintf(stderr, "keywarden doctor: not importing the API key found in %s: standard "
		    "input is not a terminal to confirm at; run keywarden doctor --fix --yes to "
		    "import it\n", where);
		return false;
	}
	fprintf(stderr, "Import the API key found in %s into keywarden as %s? [y/N] ", where, name);
	if (!fgets(answer, sizeof(answer), stdin))
		return false;
	answer[strcspn(answer, "\n")] = '\0';
	if (strcmp(answer, "y") == 0 || strcmp(answer, "Y") == 0 || strcmp(answer, "yes") == 0)
		return true;
	fprintf(stderr, "keywarden doctor: not imported\n");
	return false;
}

/*
 * Move the plaintext key the checks found into keywarden: only when they
 * found one value (two different keys: which is right is the user's call),
 * only once confirmed, and only through key.set.
 */
static void
import_key(struct kw_dr *d, bool yes)
{
	const char *name = d->helper_key ? d->helper_key : KW_DR_KEY_DEFAULT, *value = NULL;
	_cleanup_free_ char *where = NULL;
	json_t *res = NULL;
	char *copy;
	bool different = false;

	for (size_t i = 0; i < d->n_items; i++) {
		const char *v = d->items[i].value;
		if (!v)
			continue;
		if (!value)
			value = v;
		else if (strcmp(v, value) != 0)
			different = true;
	}
	if (!value)
		return;
	if (different) {
		fprintf(stderr, "keywarden doctor: the plaintext copies hold different API keys; not "
		    "importing any: store the right one with keywarden key import %s --from ... or "
		    "keywarden key set %s\n", name, name);
		return;
	}
	if (!(where = places(d, value))) {
		d->oom = true;
		return;
	}
	if (!confirmed(yes, where, name))
		return;
	if (!(copy = strdup(value)) || !(d->imported = strdup(value))) {
		free(copy);
		d->oom = true;
		return;
	}
	if (kw_cli_key_store(d->cli, "doctor: key import", name, copy, &res) != 0) {
		kw_secret_free(d->imported);
		d->imported = NULL;
		fprintf(stderr, "keywarden doctor: the API key was not imported\n");
		return;
	}
	snprintf(d->imported_name, sizeof(d->imported_name), "%s", name);
	d->imported_version = json_integer_value(json_object_get(res, "version"));
	json_decref(res);
	fprintf(stderr, "keywarden doctor: imported the API key into keywarden as %s (version "
	    "%lld); keywarden leaves your files alone: delete the plaintext copies yourself: %s\n",
	    name, d->imported_version, where);
}

/* ---- the report ----------------------------------------------------------- */

static int
print_json(const struct kw_dr *d)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < d->n_items; i++) {
		const struct kw_dr_item *it = &d->items[i];
		json_t *o = json_pack("{s:s, s:s, s:s, s:s?}", "check", it->check,
		    "status", status_names[it->status], "detail", it->detail, "fix", it->fix);
		if (o && it->file)
			json_object_set_new(o, "file", json_string(it->file));
		if (o && it->line)
			json_object_set_new(o, "line", json_integer(it->line));
		if (!o || json_array_append_new(a, o) < 0) {
			json_decref(a);
			a = NULL;
		}
	}
	if (!a)
		return -1;
	kw_cli_print_json(a);
	json_decref(a);
	return 0;
}

static void
print_human(const struct kw_dr *d)
{
	size_t count[KW_ELEMENTSOF(status_names)] = { 0 };

	printf("keywarden doctor: the security checklist for %s\n\n", kw_cli_safe(kw_dr_user(d)));
	for (size_t i = 0; i < d->n_items; i++) {
		const struct kw_dr_item *it = &d->items[i];
		count[it->status]++;
		/* Details are made of escaped text already (kw_cli_safe at each source). */
		printf("%-4s  %-24s %s\n", status_names[it->status], it->check, it->detail);
		if (it->fix && it->status != KW_DR_PASS)
			printf("      %-24s fix: %s\n", "", it->fix);
	}
	printf("\n%zu failed, %zu warning%s, %zu passed, %zu skipped, %zu note%s\n",
	    count[KW_DR_FAIL], count[KW_DR_WARN], count[KW_DR_WARN] == 1 ? "" : "s",
	    count[KW_DR_PASS], count[KW_DR_SKIP], count[KW_DR_INFO],
	    count[KW_DR_INFO] == 1 ? "" : "s");
}

static bool
any_failed(const struct kw_dr *d)
{
	for (size_t i = 0; i < d->n_items; i++)
		if (d->items[i].status == KW_DR_FAIL)
			return true;
	return false;
}

int
kw_cmd_doctor(struct kw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "fix", no_argument, NULL, 'f' },
		{ "yes", no_argument, NULL, 'y' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct kw_dr d = { 0 };
	bool fix = false, yes = false, json = cli->json;
	int c, ex = KW_EXIT_DENIED;

	optind = 0;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'f': fix = true; break;
		case 'y': yes = true; break;
		case 'j': json = true; break;
		default: return kw_cli_bad_option(cli, argc, argv, opts);
		}
	}
	if ((ex = kw_cli_args(cli, argc, argv, optind, "")) != 0)
		return ex;
	ex = KW_EXIT_DENIED;
	if (yes && !fix)
		return kw_cli_usage(cli, "--yes goes with --fix");
	if (setup(&d, cli) < 0)
		goto out;
	d.keep_values = fix;
	run_checks(&d);
	if (fix && !d.oom) {
		kw_dr_fix_perms(&d);
		import_key(&d, yes);
		/* The report is the state after the fixes: checked again, keeping no values. */
		kw_dr_clear(&d);
		d.keep_values = false;
		run_checks(&d);
	}
	if (d.oom || (json ? print_json(&d) : (print_human(&d), 0)) < 0)
		goto out;
	ex = any_failed(&d) ? KW_EXIT_DENIED : KW_EXIT_OK;
 out:
	if (d.oom)
		fprintf(stderr, "keywarden doctor: out of memory\n");
	teardown(&d);
	return ex;
}
