/*
 * cmd_login.c - keywarden login [-u USER] [--json]
 *
 * Runs the PAM service "keywarden" (/etc/pam.d/keywarden), so an admin
 * decides what a login takes: pam_keywarden.so alone asks for the TOTP
 * code, pam_unix.so stacked in front asks for the password first.  The
 * module leaves the session token in the user's token cache when the PAM
 * session opens; this command then shows the session the broker sees for
 * it.  The PAM session is not closed here: it outlives the command, until
 * `keywarden logout` or its expiry.
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

#include <security/pam_appl.h>

#include "cli/cli.h"
#include "cli/prompt.h"

#define LOGIN_SERVICE	"keywarden"
/* Longest answer to a prompt: a password or a code, never more. */
#define ANSWER_MAX	512

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
answer(const struct pam_message *m, char **ret)
{
	if (!isatty(STDIN_FILENO))
		return read_answer_line(ANSWER_MAX, ret);
	/* Prompts come from whatever modules the stack holds: shown escaped. */
	if (m->msg_style == PAM_PROMPT_ECHO_OFF)
		return kw_read_secret(kw_cli_safe(m->msg), ANSWER_MAX, ret);
	fputs(kw_cli_safe(m->msg), stderr);
	fflush(stderr);
	return read_answer_line(ANSWER_MAX, ret);
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
	struct pam_response *resp;

	if (n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	if (!(resp = calloc((size_t)n, sizeof(*resp))))
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		const struct pam_message *m = msg[i];
		switch (m->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
		case PAM_PROMPT_ECHO_ON:
			if (answer(m, &resp[i].resp) < 0)
				goto fail;
			break;
		case PAM_ERROR_MSG:
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
run_pam(const char *user, const char *caller, const char **ret_stage, char *why, size_t why_len)
{
	struct pam_conv conv = { conversation, NULL };
	pam_handle_t *pamh = NULL;
	int pr;

	*ret_stage = "start";
	if ((pr = pam_start(LOGIN_SERVICE, user, &conv, &pamh)) != PAM_SUCCESS) {
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

	if ((r = kw_session_load(socket, &token)) < 0)
		return kw_cli_fail(KW_ERR_NOT_FOUND, "login", "authenticated, but no session token "
		    "is cached for the broker at %s (%s); does the PAM service %s use socket=%s?",
		    kw_cli_safe(socket), kw_strerror(r), LOGIN_SERVICE, kw_cli_safe(socket));
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
		ex = kw_cli_fail(KW_ERR_SESSION, "login", "the broker does not accept the cached "
		    "session: %s", kw_cli_safe(why ? why : "no session"));
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

int
kw_cmd_login(struct kw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "user", required_argument, NULL, 'u' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = cli->json;
	const char *user = NULL, *stage = NULL;
	struct passwd *pw;
	char caller[256], why[256];
	int c, pr, ex;

	optind = 0;
	while ((c = getopt_long(argc, argv, "u:", opts, NULL)) != -1) {
		if (c != 'u')
			return kw_cli_bad_option(cli, argc, argv, opts);
		user = optarg;
	}
	if ((ex = kw_cli_args(cli, argc, argv, optind, "")) != 0)
		return ex;
	if (user && !*user)
		return kw_cli_usage(cli, "--user: an empty name");
	if (!(pw = getpwuid(getuid())))
		return kw_cli_fail(KW_ERR_CONFIG, "login", "uid %u has no user name",
		    (unsigned)getuid());
	snprintf(caller, sizeof(caller), "%s", pw->pw_name);
	if (!user)
		user = caller;
	if ((pr = run_pam(user, caller, &stage, why, sizeof(why))) != PAM_SUCCESS) {
		ex = exit_for_pam(pr);
		if (pr == PAM_AUTHINFO_UNAVAIL)
			kw_cli_fail(KW_ERR_CONNECT, "login", "broker unreachable: %s: %s (the system "
			    "log says why)", stage, kw_cli_safe(why));
		else
			kw_cli_fail(ex == KW_EXIT_USAGE ? KW_ERR_CONFIG : KW_ERR_DENIED, "login",
			    "%s: %s", stage, kw_cli_safe(why));
		return ex;
	}
	/* Root logging in for someone else: the token went to that user's cache. */
	if (strcmp(user, caller) != 0) {
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
