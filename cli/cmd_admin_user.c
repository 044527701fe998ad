/*
 * cmd_admin_user.c - keywarden admin user add|list|show|del|totp-reset|lock|unlock|
 * export|erase
 */
#include <ctype.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/enroll.h"
#include "cli/table.h"

static const struct option user_opts[] = {
	{ "role", required_argument, NULL, 'r' },
	{ "qr", no_argument, NULL, 'q' },
	{ "message", required_argument, NULL, 'm' },
	{ "expires", required_argument, NULL, 'e' },
	{ "output", required_argument, NULL, 'o' },
	{ "force", no_argument, NULL, 'f' },
	{ "yes", no_argument, NULL, 'y' },
	{ "locked", no_argument, NULL, 'L' },
	{ NULL, 0, NULL, 0 },
};

/* What a subcommand accepts; NULL fields refuse the option. */
struct user_flags {
	json_t *roles;		/* --role R, collected */
	bool *qr;		/* --qr */
	const char **message;	/* --message M */
	const char **expires;	/* --expires DURATION */
	const char **output;	/* --output FILE */
	bool *force;		/* --force */
	bool *yes;		/* --yes */
	bool *locked;		/* --locked */
};

/* Keep one option's value in f; false when f does not take the option. */
static bool
take(const struct user_flags *f, int c, const char *v)
{
	if (c == 'r' && f->roles)
		json_array_append_new(f->roles, json_string(v));
	else if (c == 'q' && f->qr)
		*f->qr = true;
	else if (c == 'm' && f->message)
		*f->message = v;
	else if (c == 'e' && f->expires)
		*f->expires = v;
	else if (c == 'o' && f->output)
		*f->output = v;
	else if (c == 'f' && f->force)
		*f->force = true;
	else if (c == 'y' && f->yes)
		*f->yes = true;
	else if (c == 'L' && f->locked)
		*f->locked = true;
	else
		return false;
	return true;
}

/*
 * Parse the options f allows and check the positional arguments against
 * names ("USER"); they stay in argv[optind..].  0 or the exit status.
 */
static int
parse(struct kw_cli *cli, int argc, char **argv, const struct user_flags *f, const char *names)
{
	static const struct user_flags none = { 0 };
	int c, i = -1;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", user_opts, &i)) != -1) {
		if (c == '?')
			return kw_cli_bad_option(cli, argc, argv, user_opts);
		if (!take(f ? f : &none, c, optarg))
			return kw_cli_usage(cli, "unknown option '--%s'", user_opts[i].name);
	}
	return kw_cli_args(cli, argc, argv, optind, names);
}

/* The LOCKED cell and the show line: "-", or until when, by whom, and why. */
static char *
lock_text(json_t *u)
{
	json_t *lock = json_object_get(u, "lock");
	const char *until = json_string_value(json_object_get(lock, "until"));
	const char *by = json_string_value(json_object_get(lock, "by"));
	const char *why = json_string_value(json_object_get(lock, "message"));
	char *text = NULL;

	if (!json_is_true(json_object_get(u, "locked")))
		return strdup("-");
	if (asprintf(&text, "until %s by %s: %s", until ? until : "an administrator unlocks it",
	    by ? by : "?", why ? why : "") < 0)
		return NULL;
	return text;
}

/* The second factor as a word: "enrolled" or "none". */
static const char *
totp_text(json_t *u)
{
	return json_is_true(json_object_get(json_object_get(u, "totp"), "enrolled")) ?
	    "enrolled" : "none";
}

/* The lines of user.list/user.show that say what state the account is in. */
static void
print_state(json_t *u)
{
	json_t *totp = json_object_get(u, "totp");
	char *lock;

	if (!json_object_get(u, "locked"))
		return;		/* user.add's answer: a new account has no state yet */
	lock = lock_text(u);
	printf("locked      %s\n", lock ? (strcmp(lock, "-") == 0 ? "no" : kw_cli_safe(lock)) : "?");
	if (json_is_true(json_object_get(totp, "enrolled")))
		printf("totp        enrolled %s, %lld recovery code(s) left\n",
		    kw_cli_safe(json_string_value(json_object_get(totp, "enrolled_at"))),
		    (long long)json_integer_value(json_object_get(totp, "recovery_codes_left")));
	else
		printf("totp        not enrolled\n");
	printf("sessions    %lld live\n", (long long)json_integer_value(json_object_get(u, "sessions")));
	free(lock);
}

static void
print_user(json_t *u)
{
	char *roles = kw_cli_join(json_object_get(u, "roles"));

	printf("user        %s\n", kw_cli_safe(json_string_value(json_object_get(u, "user"))));
	printf("uid         %lld\n", (long long)json_integer_value(json_object_get(u, "uid")));
	printf("roles       %s\n", kw_cli_safe(roles ? roles : "?"));
	if (json_array_size(json_object_get(u, "orphaned_roles")) > 0) {
		char *gone = kw_cli_join(json_object_get(u, "orphaned_roles"));
		printf("orphaned    %s (no longer defined: grants nothing)\n",
		    kw_cli_safe(gone ? gone : "?"));
		free(gone);
	}
	printf("created     %s by %s\n",
	    kw_cli_safe(json_string_value(json_object_get(u, "created"))),
	    kw_cli_safe(json_string_value(json_object_get(u, "created_by"))));
	print_state(u);
	free(roles);
}

/*
 * The new user, then (with mfa enabled) the enrollment the broker made for
 * them, which is shown this once.  Consumes res.
 */
static int
show_added(json_t *res, bool json, bool qr)
{
	if (json)
		kw_cli_print_json(res);
	else {
		print_user(res);
		if (json_object_get(res, "otpauth_uri"))
			kw_enroll_print(res, qr);
	}
	kw_enroll_wipe(res);
	json_decref(res);
	return KW_EXIT_OK;
}

static int
user_add(struct kw_cli *cli, int argc, char **argv)
{
	json_t *roles = json_array(), *args, *res = NULL;
	bool qr = false;
	struct user_flags f = { .roles = roles, .qr = &qr };
	int ex;

	if (!roles || (ex = parse(cli, argc, argv, &f, "USER")) != 0) {
		json_decref(roles);
		return roles ? ex : KW_EXIT_DENIED;
	}
	args = json_pack("{s:s, s:o}", "user", argv[optind], "roles", roles);
	ex = args ? kw_cli_call(cli, "admin user add", "user.add", args, &res) : KW_EXIT_DENIED;
	json_decref(args);
	return ex ? ex : show_added(res, cli->json, qr);
}

#define LIST_COLS 7

static int
user_list(struct kw_cli *cli, int argc, char **argv)
{
	static const char *const headers[LIST_COLS] = { "USER", "UID", "ROLES", "CREATED", "TOTP",
	    "SESSIONS", "LOCKED" };
	json_t *res = NULL, *users, *u, *args = NULL;
	const char **cells;
	char **roles, **locks;
	bool locked = false;
	struct user_flags f = { .locked = &locked };
	size_t i, n;
	int ex;

	if ((ex = parse(cli, argc, argv, &f, "")) != 0)
		return ex;
	if (locked && !(args = json_pack("{s:b}", "locked", 1)))
		return KW_EXIT_DENIED;
	ex = kw_cli_call(cli, "admin user list", "user.list", args, &res);
	json_decref(args);
	if (ex != 0)
		return ex;
	users = json_object_get(res, "users");
	if (cli->json) {
		kw_cli_print_json(res);
		json_decref(res);
		return KW_EXIT_OK;
	}
	n = json_array_size(users);
	if (n == 0 && locked) {
		printf("no locked users\n");
		json_decref(res);
		return KW_EXIT_OK;
	}
	cells = calloc(n * LIST_COLS + 1, sizeof(*cells));
	roles = calloc(n + 1, sizeof(*roles));
	locks = calloc(n + 1, sizeof(*locks));
	char (*nums)[2][24] = calloc(n + 1, sizeof(*nums));
	if (cells && roles && locks && nums) {
		json_array_foreach(users, i, u) {
			const char **row = cells + i * LIST_COLS;
			snprintf(nums[i][0], sizeof(nums[i][0]), "%lld",
			    (long long)json_integer_value(json_object_get(u, "uid")));
			snprintf(nums[i][1], sizeof(nums[i][1]), "%lld",
			    (long long)json_integer_value(json_object_get(u, "sessions")));
			roles[i] = kw_cli_join(json_object_get(u, "roles"));
			locks[i] = lock_text(u);
			row[0] = json_string_value(json_object_get(u, "user"));
			row[1] = nums[i][0];
			row[2] = roles[i];
			row[3] = json_string_value(json_object_get(u, "created"));
			row[4] = totp_text(u);
			row[5] = nums[i][1];
			row[6] = locks[i];
		}
		kw_table_print(stdout, LIST_COLS, headers, cells, n);
	}
	for (i = 0; i < n; i++) {
		free(roles ? roles[i] : NULL);
		free(locks ? locks[i] : NULL);
	}
	free(roles);
	free(locks);
	free(nums);
	free(cells);
	json_decref(res);
	return KW_EXIT_OK;
}

static int
user_show(struct kw_cli *cli, int argc, char **argv)
{
	int ex;

	if ((ex = parse(cli, argc, argv, NULL, "USER")) != 0)
		return ex;
	return kw_cli_call_print(cli, "admin user show", "user.show",
	    json_pack("{s:s}", "user", argv[optind]), cli->json, print_user);
}

static void
print_deleted(json_t *res)
{
	printf("deleted user %s (%lld grant(s) removed)\n",
	    kw_cli_safe(json_string_value(json_object_get(res, "user"))),
	    (long long)json_integer_value(json_object_get(res, "grants_removed")));
}

static int
user_del(struct kw_cli *cli, int argc, char **argv)
{
	int ex;

	if ((ex = parse(cli, argc, argv, NULL, "USER")) != 0)
		return ex;
	return kw_cli_call_print(cli, "admin user del", "user.del",
	    json_pack("{s:s}", "user", argv[optind]), cli->json, print_deleted);
}

static int
user_totp_reset(struct kw_cli *cli, int argc, char **argv)
{
	json_t *args, *res = NULL;
	bool qr = false;
	struct user_flags f = { .qr = &qr };
	int ex;

	if ((ex = parse(cli, argc, argv, &f, "USER")) != 0)
		return ex;
	args = json_pack("{s:s}", "user", argv[optind]);
	ex = args ? kw_cli_call(cli, "admin user totp-reset", "user.totp-reset", args, &res) :
	    KW_EXIT_DENIED;
	json_decref(args);
	if (ex)
		return ex;
	if (cli->json)
		kw_cli_print_json(res);
	else
		kw_enroll_print(res, qr);
	kw_enroll_wipe(res);
	json_decref(res);
	return KW_EXIT_OK;
}

/*
 * DURATION: N, Ns, Nm, Nh or Nd, N a positive decimal integer.  0 and -1 on
 * anything else (including overflow past what a JSON integer carries).
 */
static int
parse_duration(const char *s, json_int_t *ret_seconds)
{
	static const struct { char unit; uint64_t mult; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
	};
	uint64_t n = 0, mult = 1;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		if (n > (UINT64_C(1) << 53) / 10)
			return -1;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	if (*p) {
		size_t i;
		for (i = 0; i < KW_ELEMENTSOF(units) && units[i].unit != *p; i++)
			;
		if (i == KW_ELEMENTSOF(units) || p[1] != '\0')
			return -1;
		mult = units[i].mult;
	}
	if (n == 0 || n > (UINT64_C(1) << 53) / mult)
		return -1;
	*ret_seconds = (json_int_t)(n * mult);
	return 0;
}

static int
user_lock(struct kw_cli *cli, int argc, char **argv)
{
	const char *message = NULL, *expires = NULL;
	struct user_flags f = { .message = &message, .expires = &expires };
	json_t *args, *res = NULL, *until;
	json_int_t seconds = 0;
	int ex;

	if ((ex = parse(cli, argc, argv, &f, "USER")) != 0)
		return ex;
	if (expires && parse_duration(expires, &seconds) < 0)
		return kw_cli_usage(cli, "--expires: '%.64s' is not a duration (N, Ns, Nm, Nh or "
		    "Nd, N > 0)", kw_cli_safe(expires));
	if (!(args = json_pack("{s:s}", "user", argv[optind])))
		return KW_EXIT_DENIED;
	if (message)
		json_object_set_new(args, "message", json_string(message));
	if (expires)
		json_object_set_new(args, "expires", json_integer(seconds));
	ex = kw_cli_call(cli, "admin user lock", "user.lock", args, &res);
	json_decref(args);
	if (ex)
		return ex;
	until = json_object_get(res, "until");
	if (cli->json)
		kw_cli_print_json(res);
	else if (json_is_string(until))
		printf("locked %s until %s (%lld session(s) ended)\n",
		    kw_cli_safe(json_string_value(json_object_get(res, "user"))),
		    kw_cli_safe(json_string_value(until)),
		    (long long)json_integer_value(json_object_get(res, "sessions_ended")));
	else
		printf("locked %s until an administrator unlocks it (%lld session(s) ended)\n",
		    kw_cli_safe(json_string_value(json_object_get(res, "user"))),
		    (long long)json_integer_value(json_object_get(res, "sessions_ended")));
	json_decref(res);
	return KW_EXIT_OK;
}

static void
print_unlocked(json_t *res)
{
	printf("unlocked %s\n", kw_cli_safe(json_string_value(json_object_get(res, "user"))));
}

static int
user_unlock(struct kw_cli *cli, int argc, char **argv)
{
	int ex;

	if ((ex = parse(cli, argc, argv, NULL, "USER")) != 0)
		return ex;
	return kw_cli_call_print(cli, "admin user unlock", "user.unlock",
	    json_pack("{s:s}", "user", argv[optind]), cli->json, print_unlocked);
}

/* Add the audit records about the user to an export, page by page (a reply holds 64 KiB). */
static int
export_records(struct kw_cli *cli, const char *what, const char *user, json_t *res)
{
	json_t *all = json_array(), *page = NULL, *next = json_integer(0), *args;
	int ex = 0;

	while (all && json_is_integer(next)) {
		/* What the user did and what was done to the user. */
		args = json_pack("{s:s, s:I, s:i}", "about", user, "after",
		    (json_int_t)json_integer_value(next), "limit", 1000);
		ex = args ? kw_cli_call(cli, what, "audit.query", args, &page) : KW_EXIT_DENIED;
		json_decref(args);
		json_decref(next);
		next = NULL;
		if (ex != 0)
			break;
		json_array_extend(all, json_object_get(page, "records"));
		next = json_incref(json_object_get(page, "next"));
		json_decref(page);
		page = NULL;
	}
	json_decref(next);
	if (ex == 0 && all)
		json_object_set(res, "audit", all);
	json_decref(all);
	return ex;
}

/* Everything keywarden holds about a user (GDPR access), to stdout or a new 0600 file. */
static int
user_export(struct kw_cli *cli, int argc, char **argv)
{
	static const char what[] = "admin user export";
	const char *output = NULL;
	bool force = false;
	struct user_flags f = { .output = &output, .force = &force };
	struct kw_cli_out out;
	json_t *args, *res = NULL;
	int ex;

	if ((ex = parse(cli, argc, argv, &f, "USER")) != 0)
		return ex;
	if (force && !output)
		return kw_cli_usage(cli, "--force goes with --output");
	if (!(args = json_pack("{s:s}", "user", argv[optind])))
		return KW_EXIT_DENIED;
	/* The file is refused before the broker is asked (and audits the export). */
	if ((ex = kw_cli_out_open(&out, what, output, force)) == 0 &&
	    (ex = kw_cli_call(cli, what, "user.export", args, &res)) == 0 &&
	    (ex = export_records(cli, what, argv[optind], res)) == 0) {
		json_dumpf(res, out.f, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', out.f);
		ex = kw_cli_out_close(&out, what);
	}
	kw_cli_out_abort(&out);
	if (ex == 0 && output && !cli->json)
		printf("exported %s to %s (%zu audit record(s))\n", kw_cli_safe(argv[optind]),
		    kw_cli_safe(output),
		    json_array_size(json_object_get(res, "audit")));
	else if (ex == 0 && output && cli->json) {
		json_t *o = json_pack("{s:s, s:s, s:I}", "user", argv[optind], "output", output,
		    "audit_records", (json_int_t)json_array_size(json_object_get(res, "audit")));
		if (o)
			kw_cli_print_json(o);
		json_decref(o);
	}
	json_decref(res);
	json_decref(args);
	return ex;
}

/* Ask at the terminal; true only for y or yes. */
static bool
confirm(const char *user)
{
	char line[16];

	fprintf(stderr, "erase %.64s? this cannot be undone [y/N] ", kw_cli_safe(user));
	fflush(stderr);
	if (!fgets(line, sizeof(line), stdin))
		return false;
	line[strcspn(line, "\n")] = '\0';
	return strcasecmp(line, "y") == 0 || strcasecmp(line, "yes") == 0;
}

static void
print_erased(json_t *res)
{
	printf("erased user %s; their audit records remain under %s, no longer linked to a name\n",
	    kw_cli_safe(json_string_value(json_object_get(res, "user"))),
	    json_string_value(json_object_get(res, "pseudonym")) ?
	    kw_cli_safe(json_string_value(json_object_get(res, "pseudonym"))) : "a pseudonym");
}

/* GDPR erasure: the user goes, and so does the link from its pseudonym to its name. */
static int
user_erase(struct kw_cli *cli, int argc, char **argv)
{
	bool yes = false;
	struct user_flags f = { .yes = &yes };
	int ex;

	if ((ex = parse(cli, argc, argv, &f, "USER")) != 0)
		return ex;
	if (!yes && !isatty(STDIN_FILENO))
		return kw_cli_fail(KW_ERR_INVALID, "admin user erase", "erasing %.64s cannot be "
		    "undone; add --yes to confirm when not at a terminal", kw_cli_safe(argv[optind]));
	if (!yes && !confirm(argv[optind]))
		return kw_cli_fail(KW_ERR_DENIED, "admin user erase", "not erased");
	return kw_cli_call_print(cli, "admin user erase", "user.erase",
	    json_pack("{s:s}", "user", argv[optind]), cli->json, print_erased);
}

static const struct kw_cmd user_commands[] = {
	{ .name = "add", .fn = user_add,
	  .help = "register a Unix user with the broker, and enroll their TOTP factor",
	  .usage = "USER [--role ROLE]... [--qr] [--json]",
	  .options = "  --role ROLE  grant ROLE (again for more)\n"
	    "  --qr         draw the QR code even when stdout is not a terminal\n"
	    "  --json       the user and the enrollment, with \"otpauth_uri\"\n" },
	{ .name = "list", .fn = user_list,
	  .help = "every user with their roles, lock, second factor and live sessions",
	  .usage = "[--locked] [--json]",
	  .options = "  --locked  only the users whose account is locked\n"
	    "  --json    {\"users\": [{\"user\", \"uid\", \"roles\", \"created\", \"locked\",\n"
	    "            \"lock\", \"totp\", \"sessions\", ...}]}\n" },
	{ .name = "show", .fn = user_show, .help = "one user: uid, roles, lock, second factor, sessions, when created and by whom",
	  .usage = "USER [--json]" },
	{ .name = "del", .fn = user_del, .help = "remove a user and their grants",
	  .usage = "USER [--json]" },
	{ .name = "totp-reset", .fn = user_totp_reset,
	  .help = "a new TOTP secret and recovery codes for USER; ends their sessions",
	  .usage = "USER [--qr] [--json]",
	  .options = "  --qr    draw the QR code even when stdout is not a terminal\n"
	    "  --json  the enrollment, with \"otpauth_uri\"\n" },
	{ .name = "lock", .fn = user_lock, .help = "lock an account and end its sessions",
	  .usage = "USER [--message M] [--expires DURATION] [--json]",
	  .options = "  --message M         what the user is told when refused\n"
	    "  --expires DURATION  N, Ns, Nm, Nh or Nd (default: until unlocked)\n"
	    "  --json              {\"user\", \"until\", \"sessions_ended\"}\n" },
	{ .name = "unlock", .fn = user_unlock, .help = "lift a lock", .usage = "USER [--json]" },
	{ .name = "export", .fn = user_export,
	  .help = "everything keywarden holds about USER, as JSON (GDPR access)",
	  .usage = "USER [--output FILE [--force]] [--json]",
	  .options = "  --output FILE  write a new 0600 file instead of stdout\n"
	    "  --force        replace FILE if it exists\n"
	    "  --json         with --output: {\"user\", \"output\", \"audit_records\"}; without,\n"
	    "                 the export itself is the JSON\n" },
	{ .name = "erase", .fn = user_erase,
	  .help = "erase USER (GDPR): the records stay, no longer linked to a name",
	  .usage = "USER [--yes] [--json]",
	  .options = "  --yes   do not ask (needed when stdin is not a terminal)\n"
	    "  --json  {\"user\", \"pseudonym\", ...}\n" },
};

int
kw_cmd_admin_user(struct kw_cli *cli, int argc, char **argv)
{
	return kw_cli_run_group(cli, user_commands, KW_ELEMENTSOF(user_commands), argc, argv);
}
