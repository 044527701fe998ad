/*
 * supervise.c - starting, watching and stopping keywarden-proxy (see
 * apiproxy.h and proxy/DESIGN.md).
 *
 * The proxy is a fresh image (fork + exec): nothing of the broker's memory
 * reaches it, and its only descriptors besides stdin, stdout and stderr are
 * fd 3, its end of the socketpair.  Holding that end is its only capability:
 * the broker's end is an internal peer, the one connection proxy.* requests
 * are answered on.  Its death is seen as that connection closing; the exit
 * status is collected through a pidfd, with a bound, so the loop never
 * waits on a proxy that will not go.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker/apiproxy/apiproxy_internal.h"
#include "broker/audit/audit.h"
#include "common/clock.h"
#include "common/errors.h"
#include "common/log.h"

#ifndef KW_LIBDIR
#define KW_LIBDIR "/usr/local/lib"
#endif

#define BACKOFF_MIN_MS	1000
#define BACKOFF_MAX_MS	30000
/* A proxy that ran this long before dying starts again after the shortest wait. */
#define STABLE_MS	60000
/* A proxy asked to stop gets this long to finish its calls and hand over
   their records (it takes 5 s + 2 s at most itself) before it is killed. */
#define STOP_MS		8000

extern char **environ;

/* keywarden-proxy next to keywardend itself, else where make install puts it. */
static int
find_program(char *out, size_t len)
{
	char self[PATH_MAX - 32];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/'))) {
			*slash = '\0';
			snprintf(out, len, "%s/keywarden-proxy", self);
			if (access(out, X_OK) == 0)
				return 0;
		}
	}
	snprintf(out, len, "%s/keywarden/keywarden-proxy", KW_LIBDIR);
	return access(out, X_OK) == 0 ? 0 : KW_ERR_NOT_FOUND;
}

/* The broker's environment (the proxy reads ${VAR}s from it) but systemd's notify socket. */
static char **
child_env(void)
{
	size_t n = 0, j = 0;
	char **env;

	while (environ && environ[n])
		n++;
	if (!(env = calloc(n + 1, sizeof(*env))))
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "NOTIFY_SOCKET=", 14) != 0 &&
		    strncmp(environ[i], "LISTEN_FDS=", 11) != 0 &&
		    strncmp(environ[i], "LISTEN_PID=", 11) != 0)
			env[j++] = environ[i];
	return env;
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void __attribute__((noreturn))
child(int fd, const char *prog, char *const argv[], char *const envp[])
{
	static const char msg[] = "keywarden-proxy: cannot be executed\n";
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;

	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	(void)sigaction(SIGPIPE, &dfl, NULL);
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	if (fd == 3) {
		if (fcntl(3, F_SETFD, 0) < 0)
			_exit(127);
	} else if (dup2(fd, 3) < 0) {
		_exit(127);
	}
	/* Nothing of the broker's but stdio and the channel. */
	if (syscall(SYS_close_range, 4U, ~0U, 0U) < 0)
		for (int i = 4; i < 65536; i++)
			(void)close(i);
	execve(prog, argv, envp);
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(127);
}

static void
publish(struct kw_apiproxy *ap)
{
	json_t *parts = ap->svc->status_parts;

	if (!parts)
		return;
	if (ap->state == KW_AP_OFF && !kw_config_bool(ap->svc->cfg, "broker.apiProxy.enabled")) {
		json_object_del(parts, "api_proxy");
		return;
	}
	json_object_set_new(parts, "api_proxy", json_pack("{s:s, s:b, s:I}",
	    "listen", ap->listen[0] ? ap->listen :
	    kw_config_str(ap->svc->cfg, "broker.apiProxy.listen"),
	    "running", ap->state == KW_AP_RUNNING,
	    "pid", (json_int_t)(ap->state == KW_AP_RUNNING ? ap->pid : 0)));
}

/* Fork and exec the proxy; its channel joins the loop.  0 or an error (logged). */
static int
spawn(struct kw_apiproxy *ap)
{
	char prog[PATH_MAX];
	const char *config = ap->svc->config_path;
	char *argv[] = { prog, "--broker-fd", "3", "--config", NULL, NULL };
	char **envp = NULL;
	struct stat st;
	int sv[2] = { -1, -1 }, r;
	pid_t pid;

	if (find_program(prog, sizeof(prog)) < 0) {
		kw_log_error("API proxy: keywarden-proxy is neither next to keywardend nor in "
		    "%s/keywarden/; install it (make install) or set broker.apiProxy.enabled "
		    "to false", KW_LIBDIR);
		return KW_ERR_NOT_FOUND;
	}
	/* No file: the proxy runs on the defaults, as the broker does. */
	if (config && stat(config, &st) == 0)
		argv[4] = (char *)config;
	else
		argv[3] = NULL;
	if (!(envp = child_env()))
		return KW_ERR_NOMEM;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		kw_log_error("API proxy: socketpair: %s", strerror(errno));
		free(envp);
		return KW_ERR_IO;
	}
	(void)fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	if ((pid = fork()) < 0) {
		kw_log_error("API proxy: fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		free(envp);
		return KW_ERR_IO;
	}
	if (pid == 0)
		child(sv[1], prog, argv, envp);
	free(envp);
	close(sv[1]);
	ap->pid = pid;
	ap->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	ap->listen[0] = '\0';
	if ((r = ap->hooks.adopt(ap->hooks.ctx, sv[0], (struct kw_peer **)&ap->peer)) < 0) {
		kw_log_error("API proxy: cannot serve its channel");
		kill(pid, SIGKILL);
		ap->peer = NULL;
		return r;
	}
	kw_log_info("API proxy: started %s (pid %d)%s%s", prog, (int)pid,
	    argv[3] ? " with " : " on the defaults", argv[3] ? config : "");
	return 0;
}

/* Whether the child exited within ms (pidfd readable). */
static bool
exits_within(struct kw_apiproxy *ap, int ms)
{
	struct pollfd p = { .fd = ap->pidfd, .events = POLLIN };

	if (ap->pidfd < 0)
		return false;
	while (poll(&p, 1, ms) < 0 && errno == EINTR)
		;
	return p.revents & POLLIN;
}

/* Collect the child, giving it grace_ms to go on its own; what became of it in how. */
static void
reap(struct kw_apiproxy *ap, int grace_ms, char *how, size_t how_len)
{
	int status = 0;

	if (ap->pid <= 0) {
		snprintf(how, how_len, "is gone");
		return;
	}
	if (!exits_within(ap, grace_ms)) {
		kill(ap->pid, SIGTERM);
		if (!exits_within(ap, 2000))
			kill(ap->pid, SIGKILL);
	}
	while (waitpid(ap->pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status))
		snprintf(how, how_len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(how, how_len, "was killed by signal %d", WTERMSIG(status));
	else
		snprintf(how, how_len, "is gone");
	if (ap->pidfd >= 0)
		close(ap->pidfd);
	ap->pidfd = -1;
	ap->pid = 0;
}

/* Calls authorized that the proxy will never record: failures, "proxy gone". */
static void
fail_calls(struct kw_apiproxy *ap)
{
	struct kw_ap_call *c;

	while ((c = ap->calls)) {
		ap->calls = c->next;
		json_t *meta = json_pack("{s:s, s:i, s:s}", "key", c->key, "version", c->version,
		    "error", "proxy gone");
		char res[160];
		snprintf(res, sizeof(res), "key/%s", c->key);
		(void)kw_ap_record(ap, c->user, c->uid, "error", res, meta, -1);
		json_decref(meta);
		free(c);
	}
}

static void
start_child(struct kw_apiproxy *ap);

/* The proxy is gone (how says why): the start fails, or it starts again later. */
static void
died(struct kw_apiproxy *ap, const char *how)
{
	int64_t now = kw_mono_ms();

	ap->peer = NULL;
	fail_calls(ap);
	if (ap->first) {
		kw_log_error("API proxy (keywarden-proxy, broker.apiProxy.listen %s) %s before it "
		    "was ready (its reason is above); the broker does not start without it",
		    kw_config_str(ap->svc->cfg, "broker.apiProxy.listen"), how);
		ap->state = KW_AP_OFF;
		publish(ap);
		ap->hooks.fail(ap->hooks.ctx);
		return;
	}
	if (ap->state == KW_AP_RUNNING && now - ap->ready_ms >= STABLE_MS)
		ap->backoff_ms = BACKOFF_MIN_MS;
	kw_log_warn("API proxy (keywarden-proxy) %s; starting it again in %lld ms", how,
	    (long long)ap->backoff_ms);
	ap->state = KW_AP_WAITING;
	ap->due_ms = now + ap->backoff_ms;
	ap->backoff_ms = ap->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ap->backoff_ms * 2;
	publish(ap);
}

static void
start_child(struct kw_apiproxy *ap)
{
	if (spawn(ap) < 0) {
		died(ap, "could not be started");
		return;
	}
	ap->state = KW_AP_STARTING;
	ap->due_ms = kw_mono_ms() + KW_APIPROXY_READY_MS;
	publish(ap);
}

/*
 * The proxy is gone, or goes now (reap: SIGTERM, then SIGKILL): its calls
 * not recorded are recorded as cut; a new one starts when restart.
 */
static void
finish(struct kw_apiproxy *ap, bool restart)
{
	char how[64];

	if (ap->pid > 0) {
		reap(ap, 5000, how, sizeof(how));
		kw_log_info("API proxy stopped (%s)", how);
	}
	ap->peer = NULL;
	fail_calls(ap);
	ap->state = KW_AP_OFF;
	publish(ap);
	if (restart)
		start_child(ap);
}

/* Stop the proxy now, waiting for it. */
static void
stop_child(struct kw_apiproxy *ap)
{
	if (ap->pid > 0)
		kill(ap->pid, SIGTERM);
	finish(ap, false);
}

/*
 * Ask the proxy to stop without waiting for it: it takes no new calls, ends
 * those in flight and sends their records, which the loop keeps answering
 * until its channel closes (finish()).  Then a new one starts when restart.
 */
static void
retire(struct kw_apiproxy *ap, bool restart)
{
	ap->restart = restart;
	if (ap->state == KW_AP_STOPPING)
		return;
	if (ap->pid <= 0 || !ap->peer) {
		finish(ap, restart);
		return;
	}
	kill(ap->pid, SIGTERM);
	ap->state = KW_AP_STOPPING;
	ap->due_ms = kw_mono_ms() + STOP_MS;
	publish(ap);
}

static int
timer_due(void *data)
{
	struct kw_apiproxy *ap = data;
	int64_t left;

	if (ap->state != KW_AP_STARTING && ap->state != KW_AP_WAITING &&
	    ap->state != KW_AP_STOPPING)
		return 60000;
	left = ap->due_ms - kw_mono_ms();
	return left <= 0 ? 0 : left > 60000 ? 60000 : (int)left;
}

static void
timer_run(void *data)
{
	struct kw_apiproxy *ap = data;
	char how[64], why[128];

	if (ap->state == KW_AP_STARTING) {
		/* Silent too long: it goes, as if it had died. */
		kill(ap->pid, SIGKILL);
		reap(ap, 0, how, sizeof(how));
		snprintf(why, sizeof(why), "did not report ready within %d s",
		    KW_APIPROXY_READY_MS / 1000);
		died(ap, why);
	} else if (ap->state == KW_AP_WAITING) {
		start_child(ap);
	} else if (ap->state == KW_AP_STOPPING) {
		kw_log_warn("API proxy: did not stop within %d s of SIGTERM; killing it",
		    STOP_MS / 1000);
		kill(ap->pid, SIGKILL);
		finish(ap, ap->restart);
	}
}

static void
on_gone(void *data, const struct kw_peer *peer)
{
	struct kw_apiproxy *ap = data;
	char how[64];

	/* A channel of a proxy already stopped or replaced says nothing new. */
	if (peer != ap->peer)
		return;
	if (ap->state == KW_AP_STOPPING) {
		finish(ap, ap->restart);
		return;
	}
	reap(ap, 1000, how, sizeof(how));
	died(ap, how);
}

/* The broker is stopping: true while the proxy is still handing over its records. */
static bool
on_finishing(void *data)
{
	struct kw_apiproxy *ap = data;

	if (ap->state == KW_AP_RUNNING || ap->state == KW_AP_STARTING)
		retire(ap, false);
	else if (ap->state == KW_AP_STOPPING)
		ap->restart = false;
	return ap->state == KW_AP_STOPPING;
}

static void
on_stopping(void *data)
{
	struct kw_apiproxy *ap = data;

	stop_child(ap);
}

static void
ap_free(void *data)
{
	struct kw_apiproxy *ap = data;
	struct kw_ap_call *c;
	char how[64];

	if (ap->pid > 0) {
		kill(ap->pid, SIGTERM);
		reap(ap, 2000, how, sizeof(how));
	}
	while ((c = ap->calls)) {
		ap->calls = c->next;
		free(c);
	}
	kw_spent_free(ap->spent);
	if (ap->svc->apiproxy == ap)
		ap->svc->apiproxy = NULL;
	free(ap);
}

int
kw_apiproxy_register(struct kw_dispatcher *d, struct kw_services *svc)
{
	struct kw_apiproxy *ap = calloc(1, sizeof(*ap));
	int r;

	if (!ap || !(ap->spent = kw_spent_new())) {
		free(ap);
		return KW_ERR_NOMEM;
	}
	ap->svc = svc;
	ap->pidfd = -1;
	ap->backoff_ms = BACKOFF_MIN_MS;
	const struct kw_timer t = { .name = "apiproxy", .due_ms = timer_due, .run = timer_run,
	    .data = ap, .free = ap_free };
	if ((r = kw_dispatch_add_timer(d, &t)) < 0) {
		kw_spent_free(ap->spent);
		free(ap);
		return r;
	}
	svc->apiproxy = ap;
	const struct kw_internal_watch w = { .gone = on_gone, .finishing = on_finishing,
		.stopping = on_stopping, .data = ap };
	kw_dispatch_watch_internal(d, &w);
	return kw_ap_register_ops(d);
}

/* What the configuration weakens is said at every start. */
static void
warn_weakened(const struct kw_config *cfg)
{
	if (!kw_config_bool(cfg, "security.network.verifyCertificates"))
		kw_log_warn("config: security.network.verifyCertificates is false: the API proxy "
		    "does not verify the upstream's TLS certificate, so anyone on the path can "
		    "read the API keys it sends; set it to true");
}

int
kw_apiproxy_start(struct kw_apiproxy *ap, const struct kw_apiproxy_hooks *hooks)
{
	char err[512];

	if (!ap)
		return 0;
	ap->hooks = *hooks;
	ap->hooked = true;
	warn_weakened(ap->svc->cfg);
	if (kw_apiproxy_check_config(ap->svc->cfg, err, sizeof(err)) < 0) {
		kw_log_error("config: %s", err);
		return KW_ERR_CONFIG;
	}
	if (kw_ap_seed_spent(ap) < 0)
		kw_log_warn("API budgets: today's spending could not be read from the audit trail; "
		    "counting from 0");
	if (!kw_config_bool(ap->svc->cfg, "broker.apiProxy.enabled"))
		return 0;
	ap->first = true;
	if (spawn(ap) < 0)
		return KW_ERR_IO;
	ap->state = KW_AP_STARTING;
	ap->due_ms = kw_mono_ms() + KW_APIPROXY_READY_MS;
	publish(ap);
	return 1;
}

void
kw_apiproxy_reload(struct kw_apiproxy *ap)
{
	struct kw_batch *t;
	char err[512];
	bool start;

	if (!ap || !ap->hooked)
		return;
	t = ap->svc->batch;
	warn_weakened(ap->svc->cfg);
	ap->backoff_ms = BACKOFF_MIN_MS;
	start = kw_config_bool(ap->svc->cfg, "broker.apiProxy.enabled");
	if (start && kw_apiproxy_check_config(ap->svc->cfg, err, sizeof(err)) < 0) {
		kw_log_error("config: %s; the API proxy stays stopped", err);
		start = false;
	}
	/* The old proxy finishes its calls first; the new one starts once it is gone. */
	retire(ap, start);
	/* Between turns: what was recorded (calls a dead proxy left) lands now. */
	if (t && t->open) {
		if (kw_batch_commit(t) < 0)
			kw_log_warn("API proxy: records of its restart could not be written");
		kw_batch_clear(t);
	}
}

struct kw_ap_call *
kw_ap_call_take(struct kw_apiproxy *ap, long long id)
{
	for (struct kw_ap_call **p = &ap->calls; *p; p = &(*p)->next)
		if ((*p)->id == id) {
			struct kw_ap_call *c = *p;
			*p = c->next;
			return c;
		}
	return NULL;
}

int
kw_ap_record(struct kw_apiproxy *ap, const char *user, uid_t uid, const char *result,
    const char *resource, json_t *meta, long long request_id)
{
	struct kw_services *svc = ap->svc;
	struct kw_audit_record rec = {
		.user = user, .uid = uid, .pid = ap->pid, .action = "api_call",
		.resource = resource, .result = result, .metadata = meta,
		.request_id = request_id,
	};

	/* As for the hook's tool calls: refusals always, the rest when logActions says. */
	if (strcmp(result, "denied") != 0 && !kw_dispatch_action_logged(svc, "api_call"))
		return 0;
	kw_batch_enter(svc->batch);
	if (!kw_batch_audit_ok(svc->batch) || kw_audit_write(svc->audit, &rec) < 0) {
		kw_batch_note_write_failure(svc->batch);
		return KW_ERR_AUDIT;
	}
	return 0;
}

int
kw_ap_ready(struct kw_apiproxy *ap, const struct kw_peer *peer, const char *listen,
    char *why, size_t why_len)
{
	if (peer != ap->peer || ap->state != KW_AP_STARTING) {
		snprintf(why, why_len, "no proxy is starting on this channel");
		return KW_ERR_DENIED;
	}
	snprintf(ap->listen, sizeof(ap->listen), "%s", listen);
	ap->state = KW_AP_RUNNING;
	ap->ready_ms = kw_mono_ms();
	publish(ap);
	kw_log_info("API proxy ready: listening on %s", ap->listen);
	if (ap->first) {
		ap->first = false;
		ap->hooks.ready(ap->hooks.ctx);
	}
	return 0;
}
