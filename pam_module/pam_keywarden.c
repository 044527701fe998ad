/*
 * pam_keywarden.c - the keywarden PAM module, a thin client of the broker.
 *
 *   auth     prompt for the TOTP (or recovery) code and ask the broker (op
 *            login); the session token it answers is kept as PAM data
 *   account  ask the broker whether the user may log in now (op account):
 *            registered, not locked, holding require_role=ROLE if given
 *   session  open: put the token into the user's token cache so later
 *            keywarden commands find it; close: end the session at the broker
 *
 * The module holds no secrets of the broker and reads none of its files.  It
 * sends a code or a token only over a connection that passed libkeywarden's
 * trust check (kw_client_connect_trusted), logs only to syslog (never a code or a token), and
 * wipes codes and tokens after use.  Only the pam_sm_* functions are
 * exported (pam_keywarden.map, -fvisibility=hidden).
 */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <limits.h>
#include <pwd.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <security/pam_modutil.h>

#include "client/keywarden.h"
#include "common/escape.h"
#include "common/macros.h"

#define PK_EXPORT		__attribute__((visibility("default")))
#define PK_SOCKET_DEFAULT	"/run/keywarden/broker.sock"
#define PK_DATA_SESSION		"pam_keywarden_session"
#define PK_PROMPT		"keywarden code: "
/* Longer than any TOTP or recovery code: not sent, never a code. */
#define PK_CODE_MAX		64
/* Broker messages shown to the user are cut to this length. */
#define PK_MESSAGE_MAX		256

struct pk_opts {
	const char *socket;
	const char *require_role;	/* NULL: no role required */
	bool debug;
	bool nosession;			/* check the code only; open no broker session */
	bool has_broker_uid;
	uid_t broker_uid;
};

/*
 * What auth leaves for the session stage (PAM data).  The session belongs
 * to the user and the broker auth talked to, even if the application
 * changes PAM_USER before the session stage (sudo names the target user).
 */
struct pk_session {
	char *token;			/* wiped on cleanup */
	char *id;			/* the session's public id */
	char *user;
	char *socket;
	uid_t broker_uid;		/* trusted besides root (stage_trust) */
	unsigned timeout_s;		/* how long the cache should keep the token */
	bool claimed;			/* a session stage took it over or ended it */
	bool debug;
};

static int
parse_opts(pam_handle_t *pamh, int argc, const char **argv, struct pk_opts *o)
{
	*o = (struct pk_opts){ .socket = PK_SOCKET_DEFAULT };
	/* $KEYWARDEN_SOCKET is the caller's to set: only the PAM config names the broker. */
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strncmp(a, "socket=", 7) == 0) {
			o->socket = a + 7;
			if (o->socket[0] != '/') {
				pam_syslog(pamh, LOG_ERR, "socket= must be an absolute path");
				return PAM_SERVICE_ERR;
			}
		} else if (strncmp(a, "require_role=", 13) == 0) {
			o->require_role = a + 13;
			if (!*o->require_role) {
				pam_syslog(pamh, LOG_ERR, "require_role= needs a role name");
				return PAM_SERVICE_ERR;
			}
		} else if (strncmp(a, "broker_uid=", 11) == 0) {
			char *end;
			errno = 0;
			unsigned long v = strtoul(a + 11, &end, 10);
			if (errno || !isdigit((unsigned char)a[11]) || *end ||
			    v >= (unsigned long)(uid_t)-1) {
				pam_syslog(pamh, LOG_ERR, "broker_uid= needs a numeric uid");
				return PAM_SERVICE_ERR;
			}
			o->has_broker_uid = true;
			o->broker_uid = (uid_t)v;
		} else if (strcmp(a, "debug") == 0) {
			o->debug = true;
		} else if (strcmp(a, "nosession") == 0) {
			o->nosession = true;
		} else {
			pam_syslog(pamh, LOG_WARNING, "unknown option '%.64s' ignored", a);
		}
	}
	return PAM_SUCCESS;
}

static void
wipe_free(char *s)
{
	if (s) {
		sodium_memzero(s, strlen(s));
		free(s);
	}
}

/* Wipe a string held by a JSON value (jansson frees without wiping). */
static void
json_wipe_str(json_t *v)
{
	const char *s = json_string_value(v);

	if (s)
		sodium_memzero((char *)s, strlen(s));
}

/* Show a broker message to the user through the conversation, tamed. */
static void
tell_user(pam_handle_t *pamh, int flags, const char *msg)
{
	char clean[PK_MESSAGE_MAX + 1];

	if ((flags & PAM_SILENT) || !msg)
		return;
	/* An admin's lock message reaches a terminal: no control characters. */
	(void)pam_error(pamh, "%s", kw_escape(msg, clean, sizeof(clean)));
}

/*
 * A trusted connection to the broker (root or broker_uid answers).
 * PAM_SUCCESS, PAM_AUTHINFO_UNAVAIL when nobody answers, or `untrusted`
 * (the caller's failure code) when the socket or its peer fails the checks.
 */
static int
connect_broker(pam_handle_t *pamh, uid_t broker_uid, const char *socket, int untrusted,
    kw_client **ret_client)
{
	char why[512];
	int r = kw_client_connect_trusted(socket, broker_uid, ret_client, why, sizeof(why));

	if (r == 0)
		return PAM_SUCCESS;
	if (r == KW_ERR_DENIED) {
		pam_syslog(pamh, LOG_ERR, "broker not trusted: %s", why);
		return untrusted;
	}
	pam_syslog(pamh, LOG_ERR, "broker unreachable: %s", why);
	return r == KW_ERR_NOMEM ? PAM_BUF_ERR : PAM_AUTHINFO_UNAVAIL;
}

/* Who may answer besides root in this stage: broker_uid=, else the module's own euid. */
static uid_t
stage_trust(const struct pk_opts *o)
{
	return o->has_broker_uid ? o->broker_uid : geteuid();
}

/* PAM's answer for a failed op login. */
static int
login_error(int r)
{
	switch (r) {
	case KW_ERR_LOCKED:
		/* Trying again cannot help until the lock ends. */
		return PAM_MAXTRIES;
	case KW_ERR_NOT_FOUND:
		return PAM_USER_UNKNOWN;
	case KW_ERR_CONNECT:
	case KW_ERR_CLOSED:
	case KW_ERR_TIMEOUT:
	case KW_ERR_BUSY:
	case KW_ERR_IO:
	case KW_ERR_AUDIT:
		return PAM_AUTHINFO_UNAVAIL;
	case KW_ERR_NOMEM:
		return PAM_BUF_ERR;
	default:
		/* A wrong or replayed code, and anything unexpected: fail closed. */
		return PAM_AUTH_ERR;
	}
}

/* ---- the session auth obtained ------------------------------------------ */

static void
session_free(struct pk_session *s)
{
	if (!s)
		return;
	wipe_free(s->token);
	free(s->id);
	free(s->user);
	free(s->socket);
	sodium_memzero(s, sizeof(*s));
	free(s);
}

/*
 * End a session no session stage took over: nobody else can reach its
 * token, so it would only wait for its idle timeout and count against the
 * user's maxSessions.  Root ends it by id; the user with the token.
 */
static void
end_unclaimed(pam_handle_t *pamh, const struct pk_session *s)
{
	kw_client *c = NULL;
	json_t *args = NULL, *res = NULL;
	char *msg = NULL;
	int r;

	if (connect_broker(pamh, s->broker_uid, s->socket, PAM_SESSION_ERR, &c) != PAM_SUCCESS)
		return;
	if (geteuid() == 0) {
		r = (args = json_pack("{s:s}", "id", s->id)) ?
		    kw_client_call(c, "session.revoke", args, &res, &msg) : KW_ERR_NOMEM;
	} else if ((r = kw_client_set_session(c, s->token)) == 0) {
		r = kw_client_call(c, "logout", NULL, &res, &msg);
	}
	if (r < 0)
		pam_syslog(pamh, LOG_WARNING, "cannot end unused session %.32s: %s", s->id,
		    kw_error_name(r));
	else if (s->debug)
		pam_syslog(pamh, LOG_DEBUG, "unused session %.32s ended", s->id);
	json_decref(args);
	json_decref(res);
	free(msg);
	kw_client_free(c);
}

static void
session_cleanup(pam_handle_t *pamh, void *data, int error_status)
{
	struct pk_session *s = data;

	if (!s)
		return;
	/* PAM_DATA_SILENT: a forked copy ends; the session is not its to end. */
	if (!s->claimed && !(error_status & PAM_DATA_SILENT))
		end_unclaimed(pamh, s);
	session_free(s);
}

/*
 * Keep the token of a login result for the session stage.  The cache keeps
 * it until the session's absolute end, or for the idle timeout when the
 * session has no absolute end (or the clocks disagree).
 */
static int
keep_session(pam_handle_t *pamh, const struct pk_opts *o, uid_t broker_uid, const char *user,
    json_t *res)
{
	const char *token = json_string_value(json_object_get(res, "session"));
	const char *id = json_string_value(json_object_get(res, "id"));
	struct pk_session *s;
	int pr;

	if (!token || !id) {
		pam_syslog(pamh, LOG_ERR, "login answer without a session");
		return PAM_AUTH_ERR;
	}
	if (!(s = calloc(1, sizeof(*s))) || !(s->token = strdup(token)) ||
	    !(s->id = strdup(id)) || !(s->user = strdup(user)) ||
	    !(s->socket = strdup(o->socket))) {
		session_free(s);
		return PAM_BUF_ERR;
	}
	s->broker_uid = broker_uid;
	s->debug = o->debug;
	s->timeout_s = kw_session_lifetime(res);
	/* Replacing an earlier one (a second auth) runs its cleanup, which ends it. */
	if ((pr = pam_set_data(pamh, PK_DATA_SESSION, s, session_cleanup)) != PAM_SUCCESS)
		session_cleanup(pamh, s, 0);
	return pr;
}

/* The session auth kept, or NULL (auth was not ours, or failed). */
static struct pk_session *
kept_session(pam_handle_t *pamh)
{
	const void *data = NULL;

	if (pam_get_data(pamh, PK_DATA_SESSION, &data) != PAM_SUCCESS || !data)
		return NULL;
	return (struct pk_session *)data;
}

/* ---- auth ---------------------------------------------------------------- */

/*
 * op login {user, code, open_session}; the code is wiped from the request
 * after use.  As a second factor for sudo or sshd (nosession) the code is
 * only checked: those never reach a session stage that could take a token.
 */
static int
broker_login(kw_client *c, const char *user, const char *code, bool open_session,
    json_t **ret_result, char **ret_message)
{
	json_t *args = json_pack("{s:s, s:s, s:b}", "user", user, "code", code,
	    "open_session", open_session);
	int r;

	if (!args)
		return KW_ERR_NOMEM;
	r = kw_client_call(c, "login", args, ret_result, ret_message);
	json_wipe_str(json_object_get(args, "code"));
	json_decref(args);
	return r;
}

/*
 * Whether the broker's refusal of op login shows that user is a keywarden
 * user: it says "wrong code" (denied) or "locked" only of one.  A refusal
 * to act for another user (a caller neither root nor that user) comes
 * before the name is looked up, so it confirms nothing; nor does any other
 * error, such as bad_request for a name that is no user name at all.
 */
static bool
broker_named_a_user(pam_handle_t *pamh, const char *user, int r)
{
	const struct passwd *pw;

	if (r == KW_ERR_LOCKED)
		return true;
	if (r != KW_ERR_DENIED)
		return false;
	if (geteuid() == 0)
		return true;
	pw = pam_modutil_getpwnam(pamh, user);
	return pw && pw->pw_uid == geteuid();
}

static void
log_login_failure(pam_handle_t *pamh, const char *user, int r)
{
	/*
	 * A name is logged only once the broker showed it is a user's: what was
	 * typed at the user prompt may be a password (pam_faillock's rule).
	 */
	if (broker_named_a_user(pamh, user, r))
		pam_syslog(pamh, LOG_NOTICE, "authentication failure for %.64s: %s", user,
		    kw_error_name(r));
	else if (r == KW_ERR_NOT_FOUND)
		pam_syslog(pamh, LOG_NOTICE, "authentication failure: not a keywarden user "
		    "(or no second factor enrolled)");
	else
		pam_syslog(pamh, LOG_NOTICE, "authentication failure: %s", kw_error_name(r));
}

PK_EXPORT int
pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct pk_opts o;
	uid_t broker_uid;
	const char *user = NULL;
	char *code = NULL, *msg = NULL;
	kw_client *c = NULL;
	json_t *res = NULL;
	int pr, r;

	if ((pr = parse_opts(pamh, argc, argv, &o)) != PAM_SUCCESS)
		return pr;
	if ((pr = pam_get_user(pamh, &user, NULL)) != PAM_SUCCESS || !user || !*user) {
		pam_syslog(pamh, LOG_ERR, "cannot determine the user name");
		return pr == PAM_SUCCESS ? PAM_USER_UNKNOWN : pr;
	}
	pr = pam_prompt(pamh, PAM_PROMPT_ECHO_OFF, &code, "%s", PK_PROMPT);
	if (pr != PAM_SUCCESS || !code) {
		pam_syslog(pamh, LOG_ERR, "no code from the conversation");
		pr = pr == PAM_SUCCESS ? PAM_CONV_ERR : pr;
		goto out;
	}
	if (strlen(code) > PK_CODE_MAX) {
		pam_syslog(pamh, LOG_NOTICE, "answer too long to be a code; not sent");
		pr = PAM_AUTH_ERR;
		goto out;
	}
	/* Trust first: the code goes only to the broker's user. */
	broker_uid = stage_trust(&o);
	if ((pr = connect_broker(pamh, broker_uid, o.socket, PAM_AUTH_ERR, &c)) != PAM_SUCCESS)
		goto out;
	r = broker_login(c, user, code, !o.nosession, &res, &msg);
	wipe_free(TAKE_PTR(code));
	if (r < 0) {
		if (r == KW_ERR_LOCKED)
			tell_user(pamh, flags, msg);
		log_login_failure(pamh, user, r);
		pr = login_error(r);
		goto out;
	}
	if (!o.nosession && (pr = keep_session(pamh, &o, broker_uid, user, res)) != PAM_SUCCESS)
		goto out;
	if (o.debug)
		pam_syslog(pamh, LOG_DEBUG, "%.64s authenticated; session %.32s", user,
		    json_string_value(json_object_get(res, "id")));
 out:
	wipe_free(code);
	if (res)
		json_wipe_str(json_object_get(res, "session"));
	json_decref(res);
	free(msg);
	kw_client_free(c);
	return pr;
}

PK_EXPORT int
pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	/* The credential is the session token, which the session stage hands over. */
	return PAM_SUCCESS;
}

/* ---- account ------------------------------------------------------------- */

static bool
has_role(json_t *roles, const char *role)
{
	size_t i;
	json_t *v;

	json_array_foreach(roles, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), role) == 0)
			return true;
	return false;
}

/* Tell a locked user why: the broker words it ("account locked until T: why"). */
static void
tell_locked(pam_handle_t *pamh, int flags, json_t *res)
{
	const char *msg = json_string_value(json_object_get(res, "message"));
	const char *until = json_string_value(json_object_get(res, "until"));
	char text[PK_MESSAGE_MAX + 1];

	if (!msg || !*msg) {
		snprintf(text, sizeof(text), "account locked %s%.64s", until ? "until " :
		    "until an administrator unlocks it", until ? until : "");
		msg = text;
	}
	tell_user(pamh, flags, msg);
}

/* The account verdict from an op account result. */
static int
account_verdict(pam_handle_t *pamh, int flags, const struct pk_opts *o, const char *user,
    json_t *res)
{
	if (!json_is_true(json_object_get(res, "registered"))) {
		pam_syslog(pamh, LOG_NOTICE, "account refused: not a keywarden user");
		return PAM_USER_UNKNOWN;
	}
	if (json_is_true(json_object_get(res, "locked"))) {
		pam_syslog(pamh, LOG_NOTICE, "account refused for %.64s: locked", user);
		tell_locked(pamh, flags, res);
		return PAM_PERM_DENIED;
	}
	if (o->require_role && !has_role(json_object_get(res, "roles"), o->require_role)) {
		pam_syslog(pamh, LOG_NOTICE, "account refused for %.64s: no role %.64s",
		    user, o->require_role);
		return PAM_PERM_DENIED;
	}
	if (o->debug)
		pam_syslog(pamh, LOG_DEBUG, "account of %.64s allowed", user);
	return PAM_SUCCESS;
}

PK_EXPORT int
pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct pk_opts o;
	uid_t broker_uid;
	const char *user = NULL;
	kw_client *c = NULL;
	json_t *args = NULL, *res = NULL;
	char *msg = NULL;
	int pr, r;

	if ((pr = parse_opts(pamh, argc, argv, &o)) != PAM_SUCCESS)
		return pr;
	if ((pr = pam_get_user(pamh, &user, NULL)) != PAM_SUCCESS || !user || !*user)
		return pr == PAM_SUCCESS ? PAM_USER_UNKNOWN : pr;
	/* An impostor could answer "not locked": the same checks as for a code. */
	broker_uid = stage_trust(&o);
	if ((pr = connect_broker(pamh, broker_uid, o.socket, PAM_PERM_DENIED, &c)) != PAM_SUCCESS)
		goto out;
	if (!(args = json_pack("{s:s}", "user", user))) {
		pr = PAM_BUF_ERR;
		goto out;
	}
	if ((r = kw_client_call(c, "account", args, &res, &msg)) < 0) {
		/* Not confirmed to be a user's: neither the name nor a message quoting it. */
		pam_syslog(pamh, LOG_ERR, "account check failed: %s: %.200s", kw_error_name(r),
		    msg && !strstr(msg, user) ? msg : kw_strerror(r));
		pr = login_error(r) == PAM_AUTHINFO_UNAVAIL ? PAM_AUTHINFO_UNAVAIL : PAM_PERM_DENIED;
		goto out;
	}
	pr = account_verdict(pamh, flags, &o, user, res);
 out:
	json_decref(args);
	json_decref(res);
	free(msg);
	kw_client_free(c);
	return pr;
}

/* ---- session ------------------------------------------------------------- */

/* What a session stage does as the user; 0 or a KW_ERR_* code. */
typedef int (*pk_user_fn)(pam_handle_t *pamh, const struct pk_session *s);

/*
 * In the child: become pw's user for good -- no supplementary groups (root's,
 * or sshd's, must not come along), then the gids, then the uids, real,
 * effective and saved -- and run fn.  Each step is checked, and so is the
 * outcome: no way back to root may be left.
 */
static int
child_as_user(pam_handle_t *pamh, const struct passwd *pw, pk_user_fn fn,
    const struct pk_session *s)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (setgroups(0, NULL) < 0) {
		pam_syslog(pamh, LOG_ERR, "setgroups: %m");
		return KW_ERR_INTERNAL;
	}
	if (setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0) {
		pam_syslog(pamh, LOG_ERR, "setresgid %u: %m", (unsigned)pw->pw_gid);
		return KW_ERR_INTERNAL;
	}
	if (setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0) {
		pam_syslog(pamh, LOG_ERR, "setresuid %u: %m", (unsigned)pw->pw_uid);
		return KW_ERR_INTERNAL;
	}
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 ||
	    ru != pw->pw_uid || eu != ru || su != ru || rg != pw->pw_gid || eg != rg ||
	    sg != rg || getgroups(0, NULL) != 0 || (pw->pw_uid != 0 && setuid(0) == 0)) {
		pam_syslog(pamh, LOG_CRIT, "the switch to uid %u is not complete",
		    (unsigned)pw->pw_uid);
		return KW_ERR_INTERNAL;
	}
	return fn(pamh, s);
}

/*
 * Run fn as pw's user: real, effective (and so file-system) ids.  The real
 * uid picks the kernel's user keyring (@u), as pam_keyinit relies on; the
 * effective uid makes the key and a fallback cache file the user's, and
 * SO_PEERCRED names the user when the token goes back to the broker (which
 * refuses a token from another uid than its owner's).
 *
 * A module already running as the user runs fn itself.  A root process
 * (sshd, a display manager) does not change its own ids: setresuid there
 * would hold for all its threads (glibc applies it process-wide) and keep
 * its supplementary groups.  A child does the work and exits; the process
 * waits for it, with SIGCHLD at its default meanwhile so that neither
 * SIG_IGN nor the application's handler takes the child's status (as
 * pam_unix does for its helper).  Returns fn's result, or KW_ERR_INTERNAL
 * when the child could not run it (logged).
 */
static int
as_user(pam_handle_t *pamh, const struct passwd *pw, pk_user_fn fn, const struct pk_session *s)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL }, old;
	int status = 0, r = KW_ERR_INTERNAL;
	pid_t pid;

	if (geteuid() == pw->pw_uid && getuid() == pw->pw_uid)
		return fn(pamh, s);
	if (geteuid() != 0) {
		pam_syslog(pamh, LOG_ERR, "running as uid %u, cannot act as %.64s",
		    (unsigned)geteuid(), pw->pw_name);
		return KW_ERR_DENIED;
	}
	sigemptyset(&dfl.sa_mask);
	if (sigaction(SIGCHLD, &dfl, &old) < 0) {
		pam_syslog(pamh, LOG_ERR, "sigaction: %m");
		return KW_ERR_INTERNAL;
	}
	if ((pid = fork()) < 0) {
		pam_syslog(pamh, LOG_ERR, "fork: %m");
		goto out;
	}
	if (pid == 0)
		/* Errors are -1..-127; the exit status carries them back. */
		_exit(-child_as_user(pamh, pw, fn, s) & 0x7f);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			pam_syslog(pamh, LOG_ERR, "waitpid: %m");
			goto out;
		}
	}
	if (WIFEXITED(status))
		r = -WEXITSTATUS(status);
	else
		pam_syslog(pamh, LOG_ERR, "the session stage's child for %.64s died of signal %d",
		    pw->pw_name, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
 out:
	(void)sigaction(SIGCHLD, &old, NULL);
	return r;
}

/* The passwd entry of the session's user (the one auth logged in). */
static const struct passwd *
session_owner(pam_handle_t *pamh, const struct pk_session *s)
{
	const struct passwd *pw = pam_modutil_getpwnam(pamh, s->user);

	if (!pw)
		pam_syslog(pamh, LOG_ERR, "session: no Unix user %.64s", s->user);
	return pw;
}

/* As the user: the token into their token cache. */
static int
cache_token(pam_handle_t *pamh, const struct pk_session *s)
{
	return kw_session_store(s->socket, s->token, s->timeout_s);
}

PK_EXPORT int
pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	const struct passwd *pw;
	struct pk_session *s;
	struct pk_opts o;
	int pr, r;

	if ((pr = parse_opts(pamh, argc, argv, &o)) != PAM_SUCCESS)
		return pr;
	if (!(s = kept_session(pamh))) {
		if (o.debug)
			pam_syslog(pamh, LOG_DEBUG, "no keywarden session from auth; nothing to open");
		return PAM_IGNORE;
	}
	/* From here the session is the session stage's to end (close_session). */
	s->claimed = true;
	if (!(pw = session_owner(pamh, s)))
		return PAM_SESSION_ERR;
	/* The broker session exists already; a cache we cannot write costs only a re-login. */
	if ((r = as_user(pamh, pw, cache_token, s)) < 0)
		pam_syslog(pamh, LOG_WARNING, "session token of %.64s not cached: %s", s->user,
		    kw_strerror(r));
	else if (o.debug)
		pam_syslog(pamh, LOG_DEBUG, "session token of %.64s cached for %us", s->user,
		    s->timeout_s);
	return PAM_SUCCESS;
}

/*
 * As the user: op logout with the token (the broker takes it only from its
 * owner's uid), and the token out of their cache.  logout's result.
 */
static int
end_as_user(pam_handle_t *pamh, const struct pk_session *s)
{
	kw_client *c = NULL;
	json_t *res = NULL;
	char *msg = NULL;
	int r;

	if (connect_broker(pamh, s->broker_uid, s->socket, PAM_SESSION_ERR, &c) != PAM_SUCCESS)
		r = KW_ERR_CONNECT;
	else if ((r = kw_client_set_session(c, s->token)) == 0)
		r = kw_client_call(c, "logout", NULL, &res, &msg);
	/* An expired or revoked session is already what logout wants. */
	if (r < 0 && r != KW_ERR_CONNECT)
		pam_syslog(pamh, r == KW_ERR_SESSION ? LOG_INFO : LOG_WARNING,
		    "logout of session %.32s: %s: %.200s", s->id, kw_error_name(r),
		    msg ? msg : kw_strerror(r));
	json_decref(res);
	free(msg);
	kw_client_free(c);
	(void)kw_session_forget(s->socket);
	return r;
}

PK_EXPORT int
pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	const struct passwd *pw;
	struct pk_session *s;
	struct pk_opts o;
	int pr;

	if ((pr = parse_opts(pamh, argc, argv, &o)) != PAM_SUCCESS)
		return pr;
	if (!(s = kept_session(pamh)))
		return PAM_IGNORE;
	s->claimed = true;
	if ((pw = session_owner(pamh, s)) && as_user(pamh, pw, end_as_user, s) == 0 && o.debug)
		pam_syslog(pamh, LOG_DEBUG, "session %.32s of %.64s ended", s->id, s->user);
	/* Drops the data: the cleanup wipes the token. */
	(void)pam_set_data(pamh, PK_DATA_SESSION, NULL, NULL);
	return PAM_SUCCESS;
}
