/*
 * notifier.h - alert delivery (SMTP mail, webhook posts) on a thread of its
 * own, so that a slow or dead mail server never holds the event loop.
 *
 * The event loop queues copies; the thread owns them, talks only to the
 * network (never to the databases) and logs what failed, without
 * credentials.  The queue is bounded: when it is full a message is dropped,
 * logged and counted.
 */
#ifndef KW_NOTIFIER_H
#define KW_NOTIFIER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/macros.h"

#define KW_NOTIFIER_QUEUE_MAX 256

struct kw_notifier;

struct kw_notifier_options {
	const char *smtp_url;		/* security.monitoring.smtp.url */
	const char *mail_from;		/* security.monitoring.smtp.from */
	const char *webhook_url;	/* security.monitoring.webhookUrl; "" for none */
	bool verify_certificates;	/* security.network.verifyCertificates */
	long timeout_s;			/* per delivery */
};

/*
 * Start the thread (all signals blocked in it).  Strings are copied;
 * $KEYWARDEN_SMTP_USER / $KEYWARDEN_SMTP_PASSWORD are read here.  0, or
 * KW_ERR_NOMEM / KW_ERR_INTERNAL with err set.
 */
int kw_notifier_start(const struct kw_notifier_options *opt, struct kw_notifier **ret_notifier,
    char *err, size_t err_len) KW_WUR KW_NONNULL(1, 2, 3);

/*
 * Stop: what is queued gets a grace of grace_ms to go out (a delivery still
 * running after that is aborted), then the thread is joined.  Accepts NULL.
 */
void kw_notifier_stop(struct kw_notifier *n, long grace_ms);

/*
 * Queue a plain-text mail to `to` (header values lose CR and LF).  0, or
 * KW_ERR_BUSY when the queue is full (dropped and logged), KW_ERR_NOMEM.
 */
int kw_notifier_mail(struct kw_notifier *n, const char *to, const char *subject,
    const char *body) KW_NONNULL(1, 2, 3, 4);

/* Queue a POST of payload (serialised here) to the webhook.  As kw_notifier_mail. */
int kw_notifier_post(struct kw_notifier *n, const json_t *payload) KW_NONNULL(1, 2);

/*
 * Hold what is queued from now on until kw_notifier_release: a turn's
 * alerts go out only if the turn's records committed (send true), else they
 * are dropped with the turn.  Event loop thread only.
 */
void kw_notifier_hold(struct kw_notifier *n) KW_NONNULL(1);
void kw_notifier_release(struct kw_notifier *n, bool send) KW_NONNULL(1);

/* Whether a webhook URL is configured (posting would go somewhere). */
bool kw_notifier_has_webhook(const struct kw_notifier *n) KW_NONNULL(1);

#endif
