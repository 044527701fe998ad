/*
 * main.c - keywardend: start-up, the run, and a clean stop.
 *
 * Exit status: 0 after SIGTERM/SIGINT, 1 when the broker cannot run (socket
 * in use, stores unusable), 2 for a configuration or usage problem --
 * including a data directory, socket directory or file in them that someone
 * other than root or the broker's user could have changed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "broker/apiproxy/apiproxy.h"
#include "broker/audit/audit.h"
#include "broker/core/daemon.h"
#include "broker/dispatch/dispatch.h"
#include "broker/features.h"
#include "broker/login/secrets.h"
#include "broker/store/factors.h"
#include "common/config.h"
#include "common/fsutil.h"
#include "keystore/keystore.h"
#include "client/keywarden.h"
#include "common/log.h"
#include "broker/core/loop.h"
#include "broker/alerts/monitor.h"
#include "broker/core/sd_notify.h"
#include "broker/accounts/cache.h"
#include "broker/accounts/roles.h"
#include "broker/core/listener.h"
#include "broker/store/state.h"
#include "broker/store/users.h"
#include "broker/login/totp.h"
#include "broker/reload.h"
#include "common/wipe_alloc.h"
#include "policy/detect/detect.h"
#include "policy/policy.h"

#define EXIT_RUNTIME 1
#define EXIT_CONFIG 2

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: keywardend [--config FILE] [--check-config] [--debug]\n"
	    "\n"
	    "The keywarden broker: holds API keys and sessions, decides every request,\n"
	    "and audits it.  Runs in the foreground (systemd Type=notify).\n"
	    "\n"
	    "  -c, --config FILE   configuration (default $KEYWARDEN_CONFIG, then\n"
	    "                      " KW_CONFIG_PATH_DEFAULT "; missing means defaults)\n"
	    "      --check-config  validate the configuration and exit (0 valid, 2 not)\n"
	    "  -d, --debug         log debug messages\n"
	    "  -h, --help          show this help\n"
	    "  -V, --version       show the version\n"
	    "\n"
	    "See keywardend(8) and keywarden.conf(5).\n");
}

/* No core file, no ptrace by other users: memory will hold key material. */
static void
harden_process(void)
{
	struct rlimit rl = { 0, 0 };

	(void)setrlimit(RLIMIT_CORE, &rl);
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	umask(077);
}

/* Room for maxClients connections plus the stores and the listener. */
static void
raise_fd_limit(size_t max_conns)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	rlim_t want = (rlim_t)max_conns + 64;
	if (rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < want)
		kw_log_warn("only %llu file descriptors available for %zu clients",
		    (unsigned long long)rl.rlim_cur, max_conns);
}


/*
 * Keys the file sets that keywarden does not act on (yet): a warning naming
 * each, at every start and from --check-config.  Returns how many.
 */
static size_t
warn_unenforced(const struct kw_config *cfg)
{
	const struct kw_config_key *schema;
	char text[256];
	size_t n, count = 0;

	schema = kw_config_schema(&n);
	for (size_t i = 0; i < n; i++) {
		if (schema[i].enforced || !kw_config_is_set(cfg, schema[i].path))
			continue;
		kw_log_warn("config: %s", kw_config_unenforced_text(&schema[i], text, sizeof(text)));
		count++;
	}
	return count;
}

static int
setup_signals(struct kw_daemon *b)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);	/* reload (broker/reload.h) */
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	b->signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	return b->signal_fd < 0 ? -1 : 0;
}

/* The audit settings; a seal key that is not a public key stops the start (exit 2). */
static int
audit_options(const struct kw_services *svc, struct kw_audit_options *o, char *log_path,
    size_t log_len)
{
	const struct kw_config *cfg = svc->cfg;
	const char *key = kw_config_str(cfg, "security.audit.encryptionKey");
	const char *log = kw_config_str(cfg, "security.audit.logFile");
	size_t n = 0;

	*o = (struct kw_audit_options){
		.include_user = kw_config_bool(cfg, "security.audit.includeUser"),
		.include_context = kw_config_bool(cfg, "security.audit.includeContext"),
		.seal = kw_config_bool(cfg, "security.audit.encrypt"),
	};
	/* Relative paths are inside the data directory, like incidentLogPath. */
	if (*log) {
		snprintf(log_path, log_len, "%s%s%s", log[0] == '/' ? "" : svc->data_dir,
		    log[0] == '/' ? "" : "/", log);
		o->log_file = log_path;
	}
	if (!o->seal)
		return 0;
	if (sodium_base642bin(o->seal_pk, sizeof(o->seal_pk), key, strlen(key), " \n", &n, NULL,
	    sodium_base64_VARIANT_ORIGINAL) != 0 || n != sizeof(o->seal_pk)) {
		kw_log_error("config: security.audit.encryptionKey: with security.audit.encrypt on "
		    "it must be the auditor's public key (base64 of %zu bytes), as printed by "
		    "keywarden admin audit keygen", sizeof(o->seal_pk));
		return KW_ERR_CONFIG;
	}
	return 0;
}

/* The audit store's question: is name a registered user (else it gets no pseudonym)? */
static bool
registered(const char *name, void *ctx)
{
	struct kw_user u;

	return kw_user_by_name(ctx, name, &u) == 0;
}

/*
 * Hold the audit store against the head the state store remembers from the
 * last run, after checking that its head carries the broker's signature
 * (state.db remembers that signing began, so a store stripped of its
 * signatures is not taken for one written before they existed).
 */
static int
reconcile_audit(struct kw_services *svc)
{
	char value[128], hex[KW_AUDIT_HASH_HEX] = "";
	long long seq = 0;
	bool signed_before = kw_state_meta_get(svc->state, "audit_signed", value,
	    sizeof(value)) == 0;

	if (kw_audit_signing_start(svc->audit, signed_before) < 0)
		return KW_ERR_AUDIT;
	if (kw_state_meta_get(svc->state, "audit_head", value, sizeof(value)) == 0 &&
	    sscanf(value, "%lld %64s", &seq, hex) == 2)
		return kw_audit_reconcile(svc->audit, seq, hex);
	return 0;
}

/*
 * Each start is on the record with a digest of the configuration it runs
 * with; a configuration that differs from the last start's (or the last
 * reload's) gets a "config.change" record too (`keywarden config set` edits
 * the file; the broker reads it at start and on SIGHUP).
 */
static int
record_start(struct kw_services *svc)
{
	const char *config = svc->config_path, *hex = kw_config_digest(svc->cfg);
	char prev[KW_CONFIG_DIGEST_LEN];
	int r;

	if (kw_state_meta_get(svc->state, "config_sha256", prev, sizeof(prev)) < 0)
		prev[0] = '\0';
	json_t *meta = json_pack("{s:s, s:s, s:s}", "config", config, "sha256", hex,
	    "version", KW_VERSION);
	struct kw_audit_record rec = {
		.user = NULL, .pid = getpid(), .action = "broker.start", .resource = "config",
		.result = "success", .metadata = meta, .request_id = -1,
	};
	r = meta ? kw_audit_write(svc->audit, &rec) : KW_ERR_NOMEM;
	json_decref(meta);
	if (r < 0 || !prev[0] || strcmp(prev, hex) == 0)
		goto save;
	meta = json_pack("{s:s, s:s, s:s}", "config", config, "previous_sha256", prev,
	    "sha256", hex);
	rec.action = "config.change";
	rec.metadata = meta;
	r = meta ? kw_audit_write(svc->audit, &rec) : KW_ERR_NOMEM;
	json_decref(meta);
 save:
	/* Recorded first, remembered after: a crash between repeats the record, never loses it. */
	if (r == 0 && kw_state_meta_set(svc->state, "config_sha256", hex) < 0)
		kw_log_warn("state store: cannot remember the configuration's digest");
	return r;
}

/*
 * broker.dataDir and every directory above it must be changeable only by
 * root or the broker's user (common/fsutil.h: sshd's StrictModes, with
 * root's sticky directories such as /tmp accepted above it); a missing one
 * is made 0700.  From then on it is used by its real path: the stores are
 * opened with no link on the path, and no one else can change what is on
 * it.  0 or the exit status.
 */
static int
trusted_data_dir(struct kw_services *svc)
{
	static char real[PATH_MAX];
	char why[1024];
	int r = kw_check_dir_chain(svc->data_dir, why, sizeof(why));

	if (r == KW_ERR_NOT_FOUND) {
		if (kw_mkdir_p(svc->data_dir, 0700) < 0) {
			kw_log_error("data directory %s: %s", svc->data_dir, strerror(errno));
			return EXIT_RUNTIME;
		}
		r = kw_check_dir_chain(svc->data_dir, why, sizeof(why));
	}
	if (r < 0) {
		kw_log_error("broker.dataDir %s: %s", svc->data_dir, why);
		return r == KW_ERR_CONFIG ? EXIT_CONFIG : EXIT_RUNTIME;
	}
	if (!realpath(svc->data_dir, real)) {
		kw_log_error("data directory %s: %s", svc->data_dir, strerror(errno));
		return EXIT_RUNTIME;
	}
	svc->data_dir = real;
	return 0;
}

static int
open_data_dir(struct kw_services *svc)
{
	struct kw_audit_options aopt;
	struct statvfs vfs;
	char log_path[4200];
	char err[4600];
	struct stat st;
	int r;

	if ((r = trusted_data_dir(svc)) != 0)
		return r;
	/* Readable by others is not a way in (its files are 0600), but it says too much. */
	if (stat(svc->data_dir, &st) == 0 && (st.st_mode & 077))
		kw_log_warn("data directory %s is mode %04o; it should be 0700",
		    svc->data_dir, (unsigned)(st.st_mode & 07777));
	if (statvfs(svc->data_dir, &vfs) == 0 && (vfs.f_flag & ST_RDONLY)) {
		kw_log_error("data directory %s is on a read-only file system: the audit trail "
		    "cannot be written, so nothing can be answered", svc->data_dir);
		return EXIT_RUNTIME;
	}
	if (audit_options(svc, &aopt, log_path, sizeof(log_path)) < 0)
		return EXIT_CONFIG;
	if ((r = kw_state_open(svc->data_dir, &svc->state, err, sizeof(err))) < 0) {
		kw_log_error("%s", err);
		return r == KW_ERR_CONFIG ? EXIT_CONFIG : EXIT_RUNTIME;
	}
	aopt.registered = registered;
	aopt.registered_ctx = svc->state;
	if ((r = kw_audit_open(svc->data_dir, &aopt, &svc->audit, err, sizeof(err))) < 0) {
		kw_log_error("%s", err);
		return r == KW_ERR_CONFIG ? EXIT_CONFIG : EXIT_RUNTIME;
	}

	if ((r = kw_secrets_open(svc->cfg, svc->data_dir, kw_factor_any(svc->state),
	    &svc->secrets, err, sizeof(err))) < 0) {
		kw_log_error("%s", err);
		return r == KW_ERR_CONFIG ? EXIT_CONFIG : EXIT_RUNTIME;
	}
	/* The trail is signed with a key derived from the master secret (audit.pub: its public half). */
	if ((r = kw_audit_set_signing_key(svc->audit, svc->secrets->audit_seed, err,
	    sizeof(err))) < 0) {
		kw_log_error("audit signing key: %s", err);
		return r == KW_ERR_CONFIG ? EXIT_CONFIG : EXIT_RUNTIME;
	}
	r = kw_keystore_open(svc->cfg, svc->data_dir, &svc->keystore, err, sizeof(err));
	if (r < 0) {
		kw_log_error("%s", err);
		return r == KW_ERR_CONFIG ? EXIT_CONFIG : EXIT_RUNTIME;
	}
	kw_role_warn_shadowed(svc->cfg, svc->state);
	if (kw_roles_new(svc->cfg, &svc->roles) < 0) {
		kw_log_error("out of memory");
		return EXIT_RUNTIME;
	}
	if ((r = kw_policy_compile(svc->cfg, &svc->policy, err, sizeof(err))) < 0 ||
	    (r = kw_detector_compile(svc->cfg, KW_DETECT_SECRETS | KW_DETECT_FILTERS,
	    &svc->detector, err, sizeof(err))) < 0) {
		kw_log_error("config: %s", err);
		return r == KW_ERR_CONFIG ? EXIT_CONFIG : EXIT_RUNTIME;
	}
	/* From here on nothing the trail records holds a value a secret rule matches. */
	kw_audit_set_secrets(svc->audit, svc->detector);
	if ((r = kw_monitor_open(svc, &svc->monitor, err, sizeof(err))) < 0) {
		kw_log_error("monitoring: %s", err);
		return r == KW_ERR_CONFIG ? EXIT_CONFIG : EXIT_RUNTIME;
	}
	return 0;
}

/*
 * The policy settings and the detection patterns compile, as they will at
 * start (for --check-config).
 */
static int
check_policy(const struct kw_config *cfg, char *err, size_t err_len)
{
	struct kw_policy *p = NULL;
	struct kw_detector *d = NULL;
	int r;

	if ((r = kw_policy_compile(cfg, &p, err, err_len)) == 0)
		r = kw_detector_compile(cfg, KW_DETECT_SECRETS | KW_DETECT_FILTERS, &d, err, err_len);
	kw_detector_free(d);
	kw_policy_free(p);
	return r;
}

/* The API proxy's start, as the broker's start sees it. */
struct proxy_start {
	struct kw_daemon *dm;
	bool failed;
};

static int
proxy_adopt(void *ctx, int fd, struct kw_peer **ret_peer)
{
	return kw_loop_adopt(((struct proxy_start *)ctx)->dm, fd, ret_peer);
}

static void
proxy_ready(void *ctx)
{
	(void)ctx;
	(void)kw_sd_notify("READY=1\nSTATUS=serving");
}

static void
proxy_failed(void *ctx)
{
	struct proxy_start *ps = ctx;

	ps->failed = true;
	ps->dm->stopping = true;
}

static int
run(struct kw_daemon *dm, struct kw_services *svc)
{
	struct proxy_start ps = { .dm = dm };
	const struct kw_apiproxy_hooks hooks = { .adopt = proxy_adopt, .ready = proxy_ready,
		.fail = proxy_failed, .ctx = &ps };
	char err[512];
	mode_t mode = (mode_t)strtol(kw_config_str(svc->cfg, "broker.socketMode"), NULL, 8);
	int r;

	/*
	 * Signals are blocked before the stores open: libraries may start threads
	 * there (libsecret's D-Bus, curl's resolver), and a thread that inherits an
	 * unblocked SIGTERM would die by it instead of letting signalfd report it.
	 */
	if (setup_signals(dm) < 0 || (dm->epoll_fd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		kw_log_error("start-up: %s", strerror(errno));
		return EXIT_RUNTIME;
	}
	if ((r = open_data_dir(svc)) != 0)
		return r;
	if (kw_dispatcher_new(svc, dm->client_timeout_ms / 1000, &dm->d) < 0 ||
	    kw_features_register(dm->d, svc) < 0) {
		kw_log_error("start-up: cannot set up the request table");
		return EXIT_RUNTIME;
	}
	r = kw_server_listen(dm->socket_path, mode, &dm->listen_fd, &dm->lock_fd, err,
	    sizeof(err));
	if (r < 0) {
		kw_log_error("%s", err);
		return r == KW_ERR_CONFIG ? EXIT_CONFIG : EXIT_RUNTIME;
	}
	/* Only the broker holding the socket's lock writes to the trail. */
	if (reconcile_audit(svc) < 0 || record_start(svc) < 0 ||
	    kw_reload_record_orphans(svc) < 0) {
		kw_log_error("the audit store cannot record the start; not serving");
		return EXIT_RUNTIME;
	}
	/* Remembered once the start's records (and the first signature) are committed. */
	if (kw_state_meta_set(svc->state, "audit_signed", "1") < 0)
		kw_log_warn("state store: cannot remember that the audit trail is signed");
	kw_log_info("listening on %s", dm->socket_path);
	/* With the API proxy, ready means the proxy is too (it says so on its channel). */
	if ((r = kw_apiproxy_start(svc->apiproxy, &hooks)) < 0)
		return r == KW_ERR_CONFIG ? EXIT_CONFIG : EXIT_RUNTIME;
	if (r == 0)
		(void)kw_sd_notify("READY=1\nSTATUS=serving");
	r = kw_loop_run(dm);
	(void)kw_sd_notify("STOPPING=1");
	if (ps.failed)
		return EXIT_RUNTIME;
	return r < 0 ? EXIT_RUNTIME : 0;
}

static void
teardown(struct kw_daemon *dm, struct kw_services *svc)
{
	if (dm->listen_fd >= 0 || dm->lock_fd >= 0)
		kw_server_close(dm->socket_path, dm->listen_fd, dm->lock_fd);
	if (dm->epoll_fd >= 0)
		close(dm->epoll_fd);
	if (dm->signal_fd >= 0)
		close(dm->signal_fd);
	/* The worker stops before the services it may still be answering for. */
	kw_dispatcher_free(dm->d);
	kw_monitor_close(svc->monitor);
	kw_audit_close(svc->audit);
	kw_secrets_free(svc->secrets);
	kw_keystore_close(svc->keystore);
	/* The cache watches the state store: it goes first. */
	kw_roles_free(svc->roles);
	kw_state_close(svc->state);
	kw_policy_free(svc->policy);
	kw_detector_free(svc->detector);
	json_decref(svc->status_parts);
	kw_config_free(svc->cfg);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct kw_daemon dm = { .listen_fd = -1, .lock_fd = -1, .epoll_fd = -1, .signal_fd = -1 };
	struct kw_services svc = { 0 };
	struct kw_reload rl;
	static char config_full[PATH_MAX];
	const char *config = getenv("KEYWARDEN_CONFIG");
	bool check_only = false, debug = false;
	size_t unenforced;
	char err[1024];
	int c, r;

	while ((c = getopt_long(argc, argv, "c:dhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'C': check_only = true; break;
		case 'd': debug = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("keywardend %s\n", KW_VERSION); return 0;
		default: usage(stderr); return EXIT_CONFIG;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EXIT_CONFIG;
	}
	if (!config || !*config)
		config = KW_CONFIG_PATH_DEFAULT;
	kw_log_init("keywardend", KW_LOG_STDERR, debug ? LOG_DEBUG : LOG_INFO);
	harden_process();
	kw_json_wipe_on_free();
	if (sodium_init() < 0 || kw_totp_init() < 0) {
		kw_log_error("cannot initialise the crypto libraries");
		return EXIT_RUNTIME;
	}

	if (kw_config_load(config, true, &svc.cfg, err, sizeof(err)) < 0) {
		kw_log_error("config: %s", err);
		return EXIT_CONFIG;
	}
	/* A check reports every warning, whatever level the broker would log at. */
	if (!debug && !check_only)
		kw_reload_log_level(svc.cfg);
	/*
	 * The trail and deny-by-default cannot be switched off: their keys are
	 * among those reported here, with the keys waiting for the policy engine.
	 */
	unenforced = warn_unenforced(svc.cfg);
	if (check_only && (kw_monitor_check_config(svc.cfg, err, sizeof(err)) < 0 ||
	    check_policy(svc.cfg, err, sizeof(err)) < 0 ||
	    kw_apiproxy_check_config(svc.cfg, err, sizeof(err)) < 0)) {
		kw_log_error("config: %s", err);
		kw_config_free(svc.cfg);
		return EXIT_CONFIG;
	}
	if (check_only) {
		if (unenforced > 0)
			printf("%s: configuration is valid; %zu key(s) it sets are accepted but not "
			    "enforced yet (see the warnings)\n", config, unenforced);
		else
			printf("%s: configuration is valid\n", config);
		kw_config_free(svc.cfg);
		return 0;
	}
	/* The record and status name the file wherever the broker was started from. */
	svc.config_path = realpath(config, config_full) ? config_full : config;
	svc.socket_path = dm.socket_path = kw_config_str(svc.cfg, "broker.socket");
	svc.data_dir = kw_config_str(svc.cfg, "broker.dataDir");
	dm.max_conns = (size_t)kw_config_int(svc.cfg, "broker.maxClients");
	svc.uid = dm.own_uid = geteuid();
	svc.status_parts = json_object();
	kw_reload_daemon_settings(&dm, svc.cfg);
	raise_fd_limit(dm.max_conns);
	/* SIGHUP: read config again (the file as named now: a new file there counts). */
	rl = (struct kw_reload){ .svc = &svc, .path = config, .debug = debug };
	dm.on_reload = kw_reload_run;
	dm.reload_ctx = &rl;

	r = run(&dm, &svc);
	teardown(&dm, &svc);
	return r;
}
