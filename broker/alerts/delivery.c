/*
 * notifier.c - the delivery thread (see notifier.h).
 *
 * One mutex guards the queue and the stop flag; deliveries run with it
 * released.  A delivery that is still running when the grace after stop
 * has passed is aborted from curl's progress callback.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "client/keywarden.h"
#include "common/clock.h"
#include "common/log.h"
#include "broker/alerts/delivery.h"

enum msg_kind { MSG_MAIL, MSG_POST };

struct msg {
	enum msg_kind kind;
	char *to, *subject, *body;	/* body: the mail text, or the JSON to post */
	struct msg *next;
};

struct kw_notifier {
	char *smtp_url, *mail_from, *webhook_url;
	char *smtp_user, *smtp_password;	/* sodium_malloc'd; NULL when unset */
	bool verify;
	long timeout_s;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct msg *head, *tail;	/* guarded by mu */
	size_t queued;			/* guarded by mu */
	bool stopping;			/* guarded by mu */
	_Atomic int64_t abort_at_ms;	/* 0: none; else abort deliveries after this */
	/* Held until the turn that raised them commits (event loop thread only). */
	bool holding;
	struct msg *held_head, *held_tail;
	size_t held;
	_Atomic unsigned long dropped;
};

static void
msg_free(struct msg *m)
{
	if (!m)
		return;
	free(m->to);
	free(m->subject);
	free(m->body);
	free(m);
}

/* A copy for a header line: CR and LF (header injection) become spaces. */
static char *
header_copy(const char *s)
{
	char *c = strdup(s);

	for (char *p = c; p && *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	return c;
}

static char *
secret_from_env(const char *name)
{
	const char *v = getenv(name);
	size_t n;
	char *c;

	if (!v || !*v)
		return NULL;
	n = strlen(v) + 1;
	if ((c = sodium_malloc(n)))
		memcpy(c, v, n);
	return c;
}

static void
secret_free(char *s)
{
	if (s) {
		sodium_memzero(s, strlen(s));
		sodium_free(s);
	}
}

/* ---- the message text ------------------------------------------------ */

/* Body text with bare LF turned into CRLF (RFC 5322); libcurl dot-stuffs. */
static char *
crlf_body(const char *body)
{
	size_t n = 0;
	char *out, *o;

	for (const char *p = body; *p; p++)
		n += (*p == '\n' && (p == body || p[-1] != '\r')) ? 2 : 1;
	if (!(out = o = malloc(n + 3)))
		return NULL;
	for (const char *p = body; *p; p++) {
		if (*p == '\n' && (p == body || p[-1] != '\r'))
			*o++ = '\r';
		*o++ = *p;
	}
	if (o == out || o[-1] != '\n') {
		*o++ = '\r';
		*o++ = '\n';
	}
	*o = '\0';
	return out;
}

/* The whole RFC 5322 message of m (malloc'd), or NULL. */
static char *
mail_text(const struct kw_notifier *n, const struct msg *m)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
		"Aug", "Sep", "Oct", "Nov", "Dec" };
	unsigned char rnd[12];
	char date[64], id[2 * sizeof(rnd) + 1], *body, *text = NULL;
	time_t now = (time_t)kw_now();
	struct tm tm;

	gmtime_r(&now, &tm);
	snprintf(date, sizeof(date), "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday],
	    tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(id, sizeof(id), rnd, sizeof(rnd));
	if (!(body = crlf_body(m->body)))
		return NULL;
	if (asprintf(&text, "Date: %s\r\nFrom: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n"
	    "Message-ID: <%s.%lld@keywarden>\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
	    "Auto-Submitted: auto-generated\r\n\r\n%s", date, n->mail_from, m->to, m->subject, id,
	    (long long)now, body) < 0)
		text = NULL;
	free(body);
	return text;
}

struct upload {
	const char *data;
	size_t len, off;
};

static size_t
read_upload(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct upload *u = userdata;
	size_t room = size * nitems, left = u->len - u->off;
	size_t n = left < room ? left : room;

	memcpy(buf, u->data + u->off, n);
	u->off += n;
	return n;
}

static size_t
discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	return size * nmemb;
}

/* curl's progress callback: a non-zero return aborts the transfer once the grace is over. */
static int
progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct kw_notifier *n = clientp;
	int64_t at = atomic_load(&n->abort_at_ms);

	return at != 0 && kw_mono_ms() >= at;
}

static void
common_options(struct kw_notifier *n, CURL *c)
{
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, n->timeout_s);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, n->timeout_s);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, n);
	if (!n->verify) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
}

/* Does url name this host (127.0.0.0/8, ::1, localhost)? */
static bool
loopback_url(const char *url)
{
	const char *host = strstr(url, "://"), *at;

	if (!host)
		return false;
	host += 3;
	if ((at = strchr(host, '@')) && at < host + strcspn(host, "/"))
		host = at + 1;
	return strncmp(host, "127.", 4) == 0 || strncmp(host, "[::1]", 5) == 0 ||
	    (strncmp(host, "localhost", 9) == 0 && strchr(":/", host[9]));
}

static void
send_mail(struct kw_notifier *n, const struct msg *m)
{
	char from[512], rcpt[512], *text = mail_text(n, m);
	struct curl_slist *rcpts = NULL;
	struct upload up = { .data = text, .len = text ? strlen(text) : 0 };
	CURLcode rc = CURLE_OUT_OF_MEMORY;
	CURL *c = NULL;

	snprintf(from, sizeof(from), "<%s>", n->mail_from);
	snprintf(rcpt, sizeof(rcpt), "<%s>", m->to);
	if (!text || !(rcpts = curl_slist_append(NULL, rcpt)) || !(c = curl_easy_init()))
		goto out;
	common_options(n, c);
	curl_easy_setopt(c, CURLOPT_URL, n->smtp_url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpts);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, read_upload);
	curl_easy_setopt(c, CURLOPT_READDATA, &up);
	curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)up.len);
	/* STARTTLS when the server offers it; credentials only ever with TLS or to this host. */
	curl_easy_setopt(c, CURLOPT_USE_SSL, (long)(n->smtp_user && !loopback_url(n->smtp_url) ?
	    CURLUSESSL_ALL : CURLUSESSL_TRY));
	if (n->smtp_user) {
		curl_easy_setopt(c, CURLOPT_USERNAME, n->smtp_user);
		if (n->smtp_password)
			curl_easy_setopt(c, CURLOPT_PASSWORD, n->smtp_password);
	}
	rc = curl_easy_perform(c);
 out:
	if (rc != CURLE_OK)
		kw_log_warn("alert mail to %.64s not delivered: %s", m->to, curl_easy_strerror(rc));
	else
		kw_log_info("alert mail to %.64s delivered", m->to);
	curl_easy_cleanup(c);
	curl_slist_free_all(rcpts);
	free(text);
}

static void
send_post(struct kw_notifier *n, const struct msg *m)
{
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	CURLcode rc = CURLE_OUT_OF_MEMORY;
	long status = 0;
	CURL *c = NULL;

	if (hdrs && (c = curl_easy_init())) {
		common_options(n, c);
		curl_easy_setopt(c, CURLOPT_URL, n->webhook_url);
		curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, m->body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(m->body));
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
		rc = curl_easy_perform(c);
		if (rc == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	}
	/* The URL may carry a token: it is not logged. */
	if (rc != CURLE_OK)
		kw_log_warn("alert webhook not delivered: %s", curl_easy_strerror(rc));
	else if (status < 200 || status > 299)
		kw_log_warn("alert webhook not delivered: HTTP status %ld", status);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
}

static void *
run(void *arg)
{
	struct kw_notifier *n = arg;
	struct msg *m;

	for (;;) {
		pthread_mutex_lock(&n->mu);
		while (!n->head && !n->stopping)
			pthread_cond_wait(&n->cv, &n->mu);
		m = n->head;
		if (m) {
			n->head = m->next;
			if (!n->head)
				n->tail = NULL;
			n->queued--;
		}
		pthread_mutex_unlock(&n->mu);
		if (!m)
			return NULL;	/* stopping, and nothing left */
		int64_t at = atomic_load(&n->abort_at_ms);
		if (at != 0 && kw_mono_ms() >= at) {
			kw_log_warn("alert %s to %.64s dropped at shutdown", m->kind == MSG_MAIL ?
			    "mail" : "webhook post", m->kind == MSG_MAIL ? m->to : "the webhook");
		} else if (m->kind == MSG_MAIL)
			send_mail(n, m);
		else
			send_post(n, m);
		msg_free(m);
	}
}

static int enqueue_now(struct kw_notifier *n, struct msg *m);

static int
enqueue(struct kw_notifier *n, struct msg *m)
{
	if (!n->holding)
		return enqueue_now(n, m);
	if (n->held >= KW_NOTIFIER_QUEUE_MAX) {
		unsigned long d = atomic_fetch_add(&n->dropped, 1) + 1;
		kw_log_warn("alert dropped: too many in one turn (%lu dropped so far)", d);
		msg_free(m);
		return KW_ERR_BUSY;
	}
	if (n->held_tail)
		n->held_tail->next = m;
	else
		n->held_head = m;
	n->held_tail = m;
	n->held++;
	return 0;
}

void
kw_notifier_hold(struct kw_notifier *n)
{
	n->holding = true;
}

void
kw_notifier_release(struct kw_notifier *n, bool send)
{
	struct msg *m = n->held_head, *next;

	n->holding = false;
	n->held_head = n->held_tail = NULL;
	n->held = 0;
	for (; m; m = next) {
		next = m->next;
		m->next = NULL;
		if (send)
			(void)enqueue_now(n, m);
		else
			msg_free(m);
	}
}

static int
enqueue_now(struct kw_notifier *n, struct msg *m)
{
	bool full;

	pthread_mutex_lock(&n->mu);
	full = n->queued >= KW_NOTIFIER_QUEUE_MAX || n->stopping;
	if (!full) {
		if (n->tail)
			n->tail->next = m;
		else
			n->head = m;
		n->tail = m;
		n->queued++;
		pthread_cond_signal(&n->cv);
	}
	pthread_mutex_unlock(&n->mu);
	if (full) {
		unsigned long d = atomic_fetch_add(&n->dropped, 1) + 1;
		kw_log_warn("alert %s dropped: the delivery queue is full (%lu dropped so far)",
		    m->kind == MSG_MAIL ? "mail" : "webhook post", d);
		msg_free(m);
		return KW_ERR_BUSY;
	}
	return 0;
}

int
kw_notifier_mail(struct kw_notifier *n, const char *to, const char *subject, const char *body)
{
	struct msg *m = calloc(1, sizeof(*m));

	if (!m)
		return KW_ERR_NOMEM;
	m->kind = MSG_MAIL;
	m->to = header_copy(to);
	m->subject = header_copy(subject);
	m->body = strdup(body);
	if (!m->to || !m->subject || !m->body) {
		msg_free(m);
		return KW_ERR_NOMEM;
	}
	return enqueue(n, m);
}

int
kw_notifier_post(struct kw_notifier *n, const json_t *payload)
{
	struct msg *m;

	if (!n->webhook_url[0])
		return 0;
	if (!(m = calloc(1, sizeof(*m))))
		return KW_ERR_NOMEM;
	m->kind = MSG_POST;
	if (!(m->body = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS))) {
		msg_free(m);
		return KW_ERR_NOMEM;
	}
	return enqueue(n, m);
}

bool
kw_notifier_has_webhook(const struct kw_notifier *n)
{
	return n->webhook_url[0] != '\0';
}

static void
notifier_free(struct kw_notifier *n)
{
	struct msg *m;

	while ((m = n->head)) {
		n->head = m->next;
		msg_free(m);
	}
	free(n->smtp_url);
	free(n->mail_from);
	free(n->webhook_url);
	secret_free(n->smtp_user);
	secret_free(n->smtp_password);
	pthread_mutex_destroy(&n->mu);
	pthread_cond_destroy(&n->cv);
	free(n);
}

int
kw_notifier_start(const struct kw_notifier_options *opt, struct kw_notifier **ret_notifier,
    char *err, size_t err_len)
{
	struct kw_notifier *n = calloc(1, sizeof(*n));
	sigset_t all, old;
	int rc;

	if (!n) {
		snprintf(err, err_len, "out of memory");
		return KW_ERR_NOMEM;
	}
	pthread_mutex_init(&n->mu, NULL);
	pthread_cond_init(&n->cv, NULL);
	n->verify = opt->verify_certificates;
	n->timeout_s = opt->timeout_s > 0 ? opt->timeout_s : 10;
	n->smtp_url = header_copy(opt->smtp_url);
	n->mail_from = header_copy(opt->mail_from);
	n->webhook_url = strdup(opt->webhook_url ? opt->webhook_url : "");
	n->smtp_user = secret_from_env("KEYWARDEN_SMTP_USER");
	n->smtp_password = secret_from_env("KEYWARDEN_SMTP_PASSWORD");
	if (!n->smtp_url || !n->mail_from || !n->webhook_url) {
		notifier_free(n);
		snprintf(err, err_len, "out of memory");
		return KW_ERR_NOMEM;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		notifier_free(n);
		snprintf(err, err_len, "libcurl could not be initialised");
		return KW_ERR_INTERNAL;
	}
	/* The thread must never take a signal meant for the event loop's signalfd. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&n->thread, NULL, run, n);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		curl_global_cleanup();
		notifier_free(n);
		snprintf(err, err_len, "cannot start the alert delivery thread: %s", strerror(rc));
		return KW_ERR_INTERNAL;
	}
	n->started = true;
	*ret_notifier = n;
	return 0;
}

void
kw_notifier_stop(struct kw_notifier *n, long grace_ms)
{
	if (!n)
		return;
	kw_notifier_release(n, false);
	atomic_store(&n->abort_at_ms, kw_mono_ms() + (grace_ms > 0 ? grace_ms : 1));
	pthread_mutex_lock(&n->mu);
	n->stopping = true;
	pthread_cond_signal(&n->cv);
	pthread_mutex_unlock(&n->mu);
	if (n->started) {
		pthread_join(n->thread, NULL);
		curl_global_cleanup();
	}
	notifier_free(n);
}
