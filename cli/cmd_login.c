/*
 * cmd_login.c - keywarden login [-u USER] [--pam-service NAME] [--json]
 *
 * The broker checks the code whichever way it comes: the "login" request
 * takes it, and a session token comes back.  What differs is who asks.
 * When the PAM service "keywarden" is installed (/etc/pam.d/keywarden, or
 * the service named by --pam-service), this command runs it, so an admin
 * decides what a login takes: pam_keywarden.so alone asks for the TOTP
 * code, pam_unix.so stacked in front asks for the password first; the
 * module leaves the token in the user's token cache when the PAM session
 * opens, and is not closed here: it outlives the command, until `keywarden
 * logout` or its expiry.  Without a service file, PAM would fall back to
 * "other" (pam_unix on most systems: a password prompt a TOTP code never
 * satisfies), so the command asks for the code itself, sends it to the
 * broker as the module would, and caches the token.
 *
 * Either way it asks the broker first ("account") whether it knows the user
 * and whether the account is locked: a user it cannot log in is told why in
 * the broker's words before typing a code.  Then it shows the session the
 * broker sees for the cached token.
 */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <security/pam_appl.h>

#include "cli/cli.h"
#include "cli/prompt.h"
#include "common/macros.h"

#define LOGIN_SERVICE	"keywarden"
#define LOGIN_PROMPT	"keywarden code: "
/* Longest answer to a prompt: a password or a code, never more. */
#define ANSWER_MAX	512
/* Longer than any TOTP or recovery code: not sent (as pam_keywarden). */
#define CODE_MAX	64


/*
 * One line from stdin, read a byte at a time so that what follows it (the
 * answer to the next prompt of the stack) stays unread.  EOF before any
 * byte is KW_ERR_IO; a line longer than max is KW_ERR_INVALID.
 */
static int
read_answer_line(size_t max, char **ret_line)
{
	char *buf = malloc(max + 1);
	size_t len = 0;
	bool got = false, toolong = false;

	if (!buf)
		return KW_ERR_NOMEM;
	for (;;) {
		char ch;
		ssize_t n = read(STDIN_FILENO, &ch, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got = true;
		if (ch == '\n')
			break;
		if (len == max) {
			toolong = true;
			continue;
		}
		buf[len++] = ch;
	}
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	if (!got || toolong) {
		sodium_memzero(buf, max + 1);
		free(buf);
		return got ? KW_ERR_INVALID : KW_ERR_IO;
	}
	*ret_line = buf;
	return 0;
}

/* The answer to one prompt: at a terminal the user types it; else one line of stdin. */
static int
answer(const char *prompt, bool echo, char **ret)
{
	if (!isatty(STDIN_FILENO))
		return read_answer_line(ANSWER_MAX, ret);
	/* Prompts come from whatever modules the stack holds: shown escaped. */
	if (!echo)
		return kw_read_secret(kw_cli_safe(prompt), ANSWER_MAX, ret);
	fputs(kw_cli_safe(prompt), stderr);
	fflush(stderr);
	return read_answer_line(ANSWER_MAX, ret);
}

/*
 * The PAM stack's last error message, held back: when the login fails it
 * is the reason shown (a module's words, such as the broker's "account
 * locked until ...", say more than pam_strerror's "Have exhausted maximum
 * number of retries"); otherwise it is shown before whatever comes next.
 */
struct conv_state {
	char held[PAM_MAX_MSG_SIZE];
};

static void
show_held(struct conv_state *cs)
{
	if (cs->held[0])
		fprintf(stderr, "%s\n", kw_cli_safe(cs->held));
	cs->held[0] = '\0';
}

static void
free_responses(struct pam_response *resp, int n)
{
	if (!resp)
		return;
	for (int i = 0; i < n; i++)
		kw_secret_free(resp[i].resp);
	free(resp);
}

static int
conversation(int n, const struct pam_message **msg, struct pam_response **ret_resp,
    void *data)
{
	struct conv_state *cs = data;
	struct pam_response *resp;

	if (n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	if (!(resp = calloc((size_t)n, sizeof(*resp))))
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		const struct pam_message *m = msg[i];
		show_held(cs);
		switch (m->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
		case PAM_PROMPT_ECHO_ON:
			if (answer(m->msg, m->msg_style == PAM_PROMPT_ECHO_ON, &resp[i].resp) < 0)
				goto fail;
			break;
		case PAM_ERROR_MSG:
			snprintf(cs->held, sizeof(cs->held), "%s", m->msg ? m->msg : "");
			break;
		case PAM_TEXT_INFO:
			fprintf(stderr, "%s\n", kw_cli_safe(m->msg));
			break;
		default:
			goto fail;
		}
	}
	*ret_resp = resp;	/* transferred: libpam wipes and frees the answers */
	return PAM_SUCCESS;
 fail:
	free_responses(resp, n);
	return PAM_CONV_ERR;
}

/* Exit status for a PAM failure. */
static int
exit_for_pam(int pr)
{
	switch (pr) {
	case PAM_AUTHINFO_UNAVAIL:
		return KW_EXIT_UNREACHABLE;
	case PAM_SERVICE_ERR:
	case PAM_SYSTEM_ERR:
	case PAM_OPEN_ERR:
	case PAM_SYMBOL_ERR:
	case PAM_ABORT:
		return KW_EXIT_USAGE;	/* the PAM configuration is broken */
	default:
		return KW_EXIT_DENIED;
	}
}

/* Authenticate, check the account, open the session: PAM_SUCCESS or why not. */
static int
run_pam(const char *service, const char *user, const char *caller, struct conv_state *cs,
    const char **ret_stage, char *why, size_t why_len)
{
	struct pam_conv conv = { conversation, cs };
	pam_handle_t *pamh = NULL;
	int pr;

	*ret_stage = "start";
	if ((pr = pam_start(service, user, &conv, &pamh)) != PAM_SUCCESS) {
		snprintf(why, why_len, "%s", pam_strerror(NULL, pr));
		return pr;
	}
	/* For the modules' logs: who asked, and from where. */
	(void)pam_set_item(pamh, PAM_RUSER, caller);
	if (isatty(STDIN_FILENO) && ttyname(STDIN_FILENO))
		(void)pam_set_item(pamh, PAM_TTY, ttyname(STDIN_FILENO));
	*ret_stage = "authentication";
	if ((pr = pam_authenticate(pamh, 0)) == PAM_SUCCESS) {
		*ret_stage = "account";
		if ((pr = pam_acct_mgmt(pamh, 0)) == PAM_SUCCESS) {
			*ret_stage = "session";
			pr = pam_open_session(pamh, 0);
		}
	}
	snprintf(why, why_len, "%s", pam_strerror(pamh, pr));
	/*
	 * After a success the session outlives this process: SILENT has the
	 * modules drop their data without ending it.  After a failure they may
	 * clean up (pam_keywarden ends a session auth opened but no one took).
	 */
	pam_end(pamh, pr == PAM_SUCCESS ? pr | PAM_DATA_SILENT : pr);
	return pr;
}

static void
print_session(struct kw_cli *cli, bool json, const char *user, json_t *res)
{
	json_t *ses = json_object_get(res, "session");
	const char *id = json_string_value(json_object_get(ses, "id"));
	const char *exp = json_string_value(json_object_get(ses, "expires"));
	const char *idle = json_string_value(json_object_get(ses, "idle_expires"));

	if (json) {
		json_t *o = json_pack("{s:s, s:O, s:O}", "user", user, "session", ses,
		    "roles", json_object_get(res, "roles"));
		if (o)
			kw_cli_print_json(o);
		json_decref(o);
		return;
	}
	/* With no absolute end the session lasts while it is used: T is when it idles out. */
	printf("logged in as %s; session %s expires %s\n", kw_cli_safe(user),
	    kw_cli_safe(id ? id : "?"), kw_cli_safe(exp ? exp : idle ? idle : "?"));
}

/* The session the module cached, as the broker sees it now. */
static int
show_session(struct kw_cli *cli, bool json, const char *user)
{
	const char *socket = kw_cli_socket(cli);
	kw_client *c = NULL;
	json_t *res = NULL;
	char *token = NULL, *msg = NULL;
	int r, ex;

	if ((r = kw_session_load(socket, &token)) < 0) {
		fprintf(stderr, "keywarden: login: authenticated, but no session token is cached "
		    "for the broker at %s (%s); does the PAM service use socket=%s?\n",
		    kw_cli_safe(socket), kw_strerror(r), kw_cli_safe(socket));
		return KW_EXIT_DENIED;
	}
	if ((ex = kw_cli_connect(cli, &c)) != 0)
		goto out;
	if ((r = kw_client_set_session(c, token)) < 0 ||
	    (r = kw_client_call(c, "status", NULL, &res, &msg)) < 0) {
		kw_cli_error("login", r, msg);
		ex = kw_cli_exit_for(r);
		goto out;
	}
	if (!json_is_object(json_object_get(res, "session"))) {
		const char *why = json_string_value(json_object_get(res, "session_error"));
		fprintf(stderr, "keywarden: login: the broker does not accept the cached session: "
		    "%s\n", kw_cli_safe(why ? why : "no session"));
		ex = KW_EXIT_DENIED;
		goto out;
	}
	print_session(cli, json, user, res);
	ex = KW_EXIT_OK;
 out:
	kw_secret_free(token);
	free(msg);
	json_decref(res);
	kw_client_free(c);
	return ex;
}

/*
 * Whether Linux-PAM has a file for service where it looks: the directory
 * pam_wrapper puts in place of /etc/pam.d (PAM_WRAPPER=1 with
 * PAM_WRAPPER_SERVICE_DIR), else /etc/pam.d, then /usr/lib/pam.d.  Without
 * one, pam_start would run the service "other" instead.
 */
static bool
pam_service_exists(const char *service)
{
	const char *wrapped = getenv("PAM_WRAPPER_SERVICE_DIR");
	const char *dirs[] = { "/etc/pam.d", "/usr/lib/pam.d" };
	char path[4096];
	struct stat st;

	if (wrapped && *wrapped && getenv("PAM_WRAPPER") && strcmp(getenv("PAM_WRAPPER"), "1") == 0) {
		snprintf(path, sizeof(path), "%s/%s", wrapped, service);
		return stat(path, &st) == 0 && S_ISREG(st.st_mode);
	}
	for (size_t i = 0; i < KW_ELEMENTSOF(dirs); i++) {
		snprintf(path, sizeof(path), "%s/%s", dirs[i], service);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
			return true;
	}
	return false;
}

/*
 * Ask the broker whether it can log user in at all: registered, not
 * locked.  0, or the exit status after saying why.  self: user is the
 * caller (the hint names "you").
 */
static int
check_account(struct kw_cli *cli, const char *user, bool self)
{
	kw_client *c = NULL;
	json_t *args = NULL, *res = NULL;
	char *msg = NULL;
	const char *why;
	int ex, r;

	if ((ex = kw_cli_connect(cli, &c)) != 0)
		return ex;
	/* A login does not lean on an earlier session. */
	if ((r = kw_client_set_session(c, NULL)) < 0 ||
	    (r = (args = json_pack("{s:s}", "user", user)) ? 0 : KW_ERR_NOMEM) < 0 ||
	    (r = kw_client_call(c, "account", args, &res, &msg)) < 0) {
		kw_cli_error("login", r, msg);
		ex = kw_cli_exit_for(r);
	} else if (!json_is_true(json_object_get(res, "registered"))) {
		ex = kw_cli_fail(KW_ERR_NOT_FOUND, "login", "%s is not a keywarden user; an "
		    "administrator adds %s with keywarden admin user add %s", kw_cli_safe(user),
		    self ? "you" : "them", kw_cli_safe(user));
	} else if (json_is_true(json_object_get(res, "locked"))) {
		why = json_string_value(json_object_get(res, "message"));
		ex = kw_cli_fail(KW_ERR_LOCKED, "login", "%s",
		    kw_cli_safe(why ? why : "account locked"));
	}
	free(msg);
	json_decref(args);
	json_decref(res);
	kw_client_free(c);
	return ex;
}

/* The code, asked for as pam_keywarden asks; 0 or the exit status after saying why. */
static int
read_code(char **ret_code)
{
	char *code = NULL;
	int r = answer(LOGIN_PROMPT, false, &code);

	if (r == 0 && (!*code || strlen(code) > CODE_MAX)) {
		r = *code ? KW_ERR_INVALID : KW_ERR_IO;
		kw_secret_free(code);
	}
	if (r == KW_ERR_INVALID) {
		fputs("keywarden: login: that is too long to be a code; not sent\n", stderr);
		return KW_EXIT_DENIED;
	}
	if (r < 0) {
		fputs("keywarden: login: no code given\n", stderr);
		return KW_EXIT_DENIED;
	}
	*ret_code = code;
	return 0;
}

/*
 * Cache the token of a login result for this broker; if it cannot be kept,
 * end the session (nobody could use it).  0 or the exit status.
 */
static int
keep_token(kw_client *c, const char *socket, json_t *res)
{
	const char *token = json_string_value(json_object_get(res, "session"));
	json_t *out = NULL;
	char *msg = NULL;
	int r;

	if (!token) {
		fputs("keywarden: login: the broker answered without a session\n", stderr);
		return KW_EXIT_DENIED;
	}
	if ((r = kw_session_store(socket, token, kw_session_lifetime(res))) == 0)
		return 0;
	fprintf(stderr, "keywarden: login: the session token cannot be cached: %s\n",
	    r == KW_ERR_CONFIG ? "KEYWARDEN_TOKEN_CACHE must be keyring or file" :
	    r == KW_ERR_IO ? strerror(errno) : kw_strerror(r));
	if (kw_client_set_session(c, token) < 0 ||
	    kw_client_call(c, "logout", NULL, &out, &msg) < 0)
		fputs("keywarden: login: the unused session lasts until its idle timeout\n", stderr);
	json_decref(out);
	free(msg);
	return r == KW_ERR_CONFIG ? KW_EXIT_USAGE : KW_EXIT_DENIED;
}

/*
 * No PAM service: ask for the code and have the broker check it, as
 * pam_keywarden would, then cache the token.  0 or the exit status.
 */
static int
login_direct(struct kw_cli *cli, const char *user)
{
	kw_client *c = NULL;
	json_t *args = NULL, *res = NULL;
	char *code = NULL, *msg = NULL;
	int ex, r;

	if ((ex = read_code(&code)) != 0)
		return ex;
	/* Connected only now: typing the code may take longer than the broker waits. */
	if ((ex = kw_cli_connect(cli, &c)) != 0)
		goto out;
	args = json_pack("{s:s, s:s}", "user", user, "code", code);
	kw_secret_free(TAKE_PTR(code));
	if ((r = kw_client_set_session(c, NULL)) < 0 ||
	    (r = args ? 0 : KW_ERR_NOMEM) < 0 ||
	    (r = kw_client_call(c, "login", args, &res, &msg)) < 0) {
		/* The broker's reason as it is: "wrong or already used code", a lock, ... */
		fprintf(stderr, "keywarden: login: %s\n", kw_cli_safe(msg ? msg : kw_strerror(r)));
		ex = kw_cli_exit_for(r);
		goto out;
	}
	ex = keep_token(c, kw_cli_socket(cli), res);
 out:
	kw_secret_free(code);
	free(msg);
	json_decref(args);	/* the code in it is wiped: kw_json_wipe_on_free */
	json_decref(res);
	kw_client_free(c);
	return ex;
}

/* Run the PAM service; 0 or the exit status after saying why. */
static int
login_pam(const char *service, const char *user, const char *caller)
{
	struct conv_state cs = { .held = "" };
	const char *stage = NULL;
	char why[256];
	int pr = run_pam(service, user, caller, &cs, &stage, why, sizeof(why));

	if (pr == PAM_SUCCESS) {
		show_held(&cs);
		return 0;
	}
	int ex = exit_for_pam(pr);
	int err = pr == PAM_AUTHINFO_UNAVAIL ? KW_ERR_CONNECT :
	    ex == KW_EXIT_USAGE ? KW_ERR_CONFIG : KW_ERR_DENIED;

	if (cs.held[0])
		kw_cli_fail(err, "login", "%s", kw_cli_safe(cs.held));
	else if (pr == PAM_AUTHINFO_UNAVAIL)
		kw_cli_fail(err, "login", "broker unreachable: %s: %s (the system log says why)",
		    stage, kw_cli_safe(why));
	else
		kw_cli_fail(err, "login", "%s: %s", stage, kw_cli_safe(why));
	sodium_memzero(cs.held, sizeof(cs.held));
	return ex;
}

int
kw_cmd_login(struct kw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "user", required_argument, NULL, 'u' },
		{ "pam-service", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = cli->json;
	const char *user = NULL, *service = NULL;
	struct passwd *pw;
	char caller[256];
	bool self;
	int c, ex;

	optind = 0;
	while ((c = getopt_long(argc, argv, "u:", opts, NULL)) != -1) {
		if (c == 'u')
			user = optarg;
		else if (c == 'p')
			service = optarg;
		else
			return kw_cli_bad_option(cli, argc, argv, opts);
	}
	if ((ex = kw_cli_args(cli, argc, argv, optind, "")) != 0)
		return ex;
	if (!(pw = getpwuid(getuid())))
		return kw_cli_fail(KW_ERR_CONFIG, "login", "uid %u has no user name",
		    (unsigned)getuid());
	snprintf(caller, sizeof(caller), "%s", pw->pw_name);
	if (!user)
		user = caller;
	if (!*user)
		return kw_cli_usage(cli, "empty user name");
	if (service && (!*service || strchr(service, '/')))
		return kw_cli_usage(cli, "--pam-service takes a service name, not a path");
	self = strcmp(user, caller) == 0;
	if (service && !pam_service_exists(service)) {
		return kw_cli_fail(KW_ERR_CONFIG, "login", "there is no PAM service %s (/etc/pam.d/%s)",
		    kw_cli_safe(service), kw_cli_safe(service));
	}
	if (!service && pam_service_exists(LOGIN_SERVICE))
		service = LOGIN_SERVICE;
	/* Only a PAM session stage can hand another user's token to that user. */
	if (!service && !self) {
		return kw_cli_fail(KW_ERR_CONFIG, "login", "logging in for another user takes the "
		    "PAM service %s (see contrib/pam.d/keywarden)", LOGIN_SERVICE);
	}
	if ((ex = check_account(cli, user, self)) != 0)
		return ex;
	if ((ex = service ? login_pam(service, user, caller) : login_direct(cli, user)) != 0)
		return ex;
	/* Root logging in for someone else: the token went to that user's cache. */
	if (!self) {
		json_t *o = json ? json_pack("{s:s, s:s}", "user", user, "token_cache", user) : NULL;
		if (o)
			kw_cli_print_json(o);
		else if (!json)
			printf("logged in as %s; the session token is in %s's token cache\n",
			    kw_cli_safe(user), kw_cli_safe(user));
		json_decref(o);
		return KW_EXIT_OK;
	}
	return show_session(cli, json, user);
}
