/*
 * apiproxy.h - the API proxy (keywarden-proxy) as the broker runs it: one
 * child process, started and supervised here, talking to the broker over
 * one end of a socketpair that the event loop serves as an internal peer
 * (proxy/DESIGN.md).
 *
 * broker/main.c gives the supervisor what it may not reach itself (the
 * event loop, systemd's notification, the way to stop) as hooks, starts it
 * after the socket is bound, and reports ready only once the proxy has said
 * proxy.ready; a proxy that exits first, or is not ready in time, fails the
 * broker's start with the proxy's reason (its stderr is the broker's).  A
 * proxy that dies later is logged and restarted with a back-off; SIGHUP
 * restarts it with the new configuration; the broker's stop stops it first.
 */
#ifndef KW_APIPROXY_H
#define KW_APIPROXY_H

#include <stdbool.h>
#include <stddef.h>

#include "broker/dispatch/dispatch.h"
#include "common/config.h"
#include "common/macros.h"

/* The most records one proxy.record may carry (args.records). */
#define KW_AP_RECORDS_MAX	256

/* How long the broker waits for a starting proxy's proxy.ready. */
#define KW_APIPROXY_READY_MS	10000

struct kw_apiproxy;

struct kw_apiproxy_hooks {
	/* Serve fd as an internal peer (kw_loop_adopt; fd transferred). */
	int (*adopt)(void *ctx, int fd, struct kw_peer **ret_peer);
	/* The first proxy is ready: the broker is (sd_notify READY). */
	void (*ready)(void *ctx);
	/* The first proxy failed (logged): the broker's start fails. */
	void (*fail)(void *ctx);
	void *ctx;
};

/* The feature's requests and its supervisor (svc->apiproxy).  0 or KW_ERR_NOMEM. */
int kw_apiproxy_register(struct kw_dispatcher *d, struct kw_services *svc)
	KW_WUR KW_NONNULL(1, 2);

/*
 * At start (once the broker's socket is bound): warn about what the
 * configuration weakens, seed the budget counters from the audit trail and,
 * when broker.apiProxy.enabled, start the proxy.  Returns 1 when the broker
 * must wait for hooks->ready (or ->fail), 0 when it is ready now (no proxy),
 * or a negative error with the reason logged.  A NULL ap (no feature) is 0.
 */
int kw_apiproxy_start(struct kw_apiproxy *ap, const struct kw_apiproxy_hooks *hooks)
	KW_WUR KW_NONNULL(2);

/*
 * After SIGHUP (between turns): ask the proxy to stop and, once it has
 * handed over the records of its calls and gone, start it anew on svc->cfg.
 */
void kw_apiproxy_reload(struct kw_apiproxy *ap);

/*
 * The configuration check of the proxy's settings (at start, in
 * --check-config and on reload): broker.apiProxy.listen must be a loopback
 * HOST:PORT -- the proxy hands out the use of real keys to whoever reaches
 * it with a token, and a token must never travel over a network.  0 or
 * KW_ERR_CONFIG with the reason in err.
 */
int kw_apiproxy_check_config(const struct kw_config *cfg, char *err, size_t err_len)
	KW_WUR KW_NONNULL(1, 2);

#endif
