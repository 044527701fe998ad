/*
 * main.c - keywarden-proxy: the API proxy's process (proxy/DESIGN.md).
 *
 *	keywarden-proxy --broker-fd N [--config PATH]
 *
 * The broker starts it with one end of a socketpair as fd N.  It reads the
 * configuration (refusing, exit 2 with one line on stderr, what must not
 * run), reads the CA bundle, binds its loopback port, shuts itself in with
 * Landlock, says hello and proxy.ready {listen} to the broker, and serves
 * until the broker's end of the fd closes, or until SIGTERM (the broker
 * restarting or stopping it): then it takes no new connections, lets the
 * calls in flight end (DRAIN_MS at most), hands every record to the broker
 * and exits.  No core dumps and no ptrace by others: it holds keys of calls
 * in flight.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/log.h"
#include "proxy/proxy.h"

#define EXIT_REFUSED	2
/* A stop waits this long for calls in flight, then for their records. */
#define DRAIN_MS	5000
#define FLUSH_MS	2000

static void
usage(FILE *f)
{
	fprintf(f, "usage: keywarden-proxy --broker-fd N [--config PATH]\n"
	    "The API proxy of keywarden; keywardend starts it (broker.apiProxy.enabled).\n");
}

static int
refuse(const char *what)
{
	fprintf(stderr, "keywarden-proxy: %s\n", what);
	return EXIT_REFUSED;
}

static void
harden(void)
{
	struct rlimit none = { 0, 0 }, files;

	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	(void)setrlimit(RLIMIT_CORE, &none);
	/* A stream holds four descriptors (client, upstream, curl's wake-up
	   pair): maxConnections of them need more than the usual soft 1024. */
	if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
		files.rlim_cur = files.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &files);
	}
	signal(SIGPIPE, SIG_IGN);
}

static int
parse_args(int argc, char **argv, int *ret_fd, const char **ret_config)
{
	static const struct option opts[] = {
		{ "broker-fd", required_argument, NULL, 'b' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
		switch (c) {
		case 'b': {
			char *end;
			long fd = strtol(optarg, &end, 10);
			if (*end || fd < 0 || fd > 65535)
				return refuse("--broker-fd: expected a file descriptor number");
			*ret_fd = (int)fd;
			break;
		}
		case 'c':
			*ret_config = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("keywarden-proxy %s\n", KW_VERSION);
			exit(0);
		default:
			usage(stderr);
			return EXIT_REFUSED;
		}
	if (optind < argc) {
		usage(stderr);
		return EXIT_REFUSED;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static struct kw_proxy_settings s;
	struct kw_config *cfg = NULL;
	const char *config = NULL;
	char err[512] = "", listen[80];
	int broker_fd = -1, fd, r;
	struct stat st;

	harden();
	if (kw_proxy_heap_setup() < 0)
		return refuse("out of memory");
	/* SIGTERM is read from a signalfd by main alone: blocked before any
	   thread exists, so every thread inherits the mask. */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	int sigfd;
	if (sigprocmask(SIG_BLOCK, &stop, NULL) < 0 ||
	    (sigfd = signalfd(-1, &stop, SFD_CLOEXEC)) < 0)
		return refuse("cannot set up its signal handling");
	kw_log_init("keywarden-proxy", KW_LOG_STDERR, LOG_WARNING);
	if ((r = parse_args(argc, argv, &broker_fd, &config)) != 0)
		return r;
	if (broker_fd < 0 || fstat(broker_fd, &st) < 0 || !S_ISSOCK(st.st_mode))
		return refuse("--broker-fd N must name the broker's socket (keywardend starts "
		    "this program)");
	r = config ? kw_config_load(config, true, &cfg, err, sizeof(err)) :
	    ((cfg = kw_config_new_default()) ? 0 : KW_ERR_NOMEM);
	if (r < 0)
		return refuse(err[0] ? err : kw_strerror(r));
	r = kw_proxy_settings_from_config(cfg, &s, err, sizeof(err));
	kw_config_free(cfg);
	if (r < 0)
		return refuse(err[0] ? err : kw_strerror(r));
	if (kw_proxy_forward_init(&s) < 0)
		return refuse("libcurl did not initialise");
	if (kw_proxy_settings_load_cas(&s, err, sizeof(err)) < 0)
		return refuse(err);
	if (!s.verify)
		fprintf(stderr, "keywarden-proxy: WARNING: security.network.verifyCertificates is "
		    "false: upstream certificates and host names are NOT verified; anyone on the "
		    "path can read the API key\n");
	if ((fd = kw_proxy_server_listen(&s, listen, sizeof(listen), err, sizeof(err))) < 0)
		return refuse(err);

	/* Before any thread exists, so every thread is inside. */
	int ports[] = { s.upstream_port, 53, 0, 0 };
	if (s.proxy_enabled) {
		const char *colon = strrchr(s.proxy_url, ':');
		ports[2] = colon ? atoi(colon + 1) : 0;
	}
	r = kw_proxy_landlock(ports);
	if (r < 0)
		return refuse("Landlock refused to restrict the process");
	if (r > 0)
		fprintf(stderr, "keywarden-proxy: WARNING: this kernel has no Landlock: the proxy "
		    "runs unconfined (it can read every file the broker's user can)\n");

	if ((r = kw_proxy_broker_open(broker_fd)) < 0)
		return refuse("the broker did not answer hello on --broker-fd");
	if (kw_proxy_server_start(&s, fd, err, sizeof(err)) < 0)
		return refuse(err);
	if (kw_proxy_broker_ready(listen) < 0)
		return refuse("the broker did not accept proxy.ready");
	if (kw_proxy_broker_wait(sigfd) == 1) {
		unsigned cut = kw_proxy_server_drain(DRAIN_MS);
		if (cut)
			fprintf(stderr, "keywarden-proxy: stopping with %u call%s still running "
			    "(the broker records them as cut)\n", cut, cut == 1 ? "" : "s");
		if (kw_proxy_broker_flush(FLUSH_MS) < 0)
			fprintf(stderr, "keywarden-proxy: stopping before the broker took every "
			    "record (the broker records those calls as cut)\n");
	}
	/* End now, without unwinding threads: connections still open lose their broker. */
	fflush(stderr);
	_exit(0);
}
