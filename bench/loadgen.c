/*
 * loadgen.c - closed-loop load generator for make bench.
 *
 *   loadgen --socket PATH [--clients N] [--seconds S] [--requests N]
 *           [--warmup S] [--timeout S] [--label NAME] [--op NAME]
 *           [--args JSON]
 *   loadgen --wait-socket PATH [--timeout S] [--pid PID]
 *
 * N connections each do the hello handshake, then keep exactly one request
 * in flight: send {"id":K,"op":OP}, read one whole reply frame, record the
 * round trip on CLOCK_MONOTONIC, send the next.  One thread and one epoll
 * set drive all of them, so with two cores the server gets the other one.
 *
 * Round trips that complete during --warmup are not counted.  The run then
 * measures for --seconds, or until --requests round trips were counted
 * (--seconds is then a cap, default 600), and prints one flat JSON line:
 *
 *   {"label":"broker","clients":8,"seconds":1.500,"roundtrips":12000,
 *    "rps":8000.0,"p50_us":..,"p90_us":..,"p99_us":..,"max_us":..,"errors":0}
 *
 * The format is flat on purpose: bench/run.sh reads it with sed and awk.
 * A reply with "ok": false or a wrong id counts as an error ("errors" counts
 * the warmup's replies too); any error makes the exit status 1, because a
 * rate of failures measures nothing useful.
 *
 * --wait-socket polls connect() until the socket accepts (exit 0), the
 * timeout passes or process --pid is gone (exit 1): the readiness check.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

#define REQ_MAX		1024		/* request bodies are small */
#define MAX_EVENTS	64
#define MAX_CLIENTS	4096
#define MAX_SAMPLES	((size_t)1 << 25)	/* 128 MiB of latencies, then stop */
#define WAIT_POLL_NS	5000000L	/* 5 ms between readiness probes */

struct opts {
	const char *socket;
	const char *wait_socket;
	const char *label;
	const char *op;
	const char *args;	/* JSON object text, or NULL */
	unsigned clients;
	double seconds;
	double warmup;
	double timeout;		/* per handshake, and longest wait for a reply */
	uint64_t requests;	/* 0: run for --seconds */
	pid_t pid;
};

struct conn {
	int fd;
	bool want_out;		/* EPOLLOUT armed: a request is half written */
	uint64_t next_id;
	uint64_t id;		/* request in flight */
	uint64_t sent_ns;
	size_t out_len, out_off;
	size_t in_len;
	uint8_t out[BENCH_FRAME_HDR + REQ_MAX];
	uint8_t in[BENCH_FRAME_HDR + BENCH_FRAME_MAX + 1];	/* +1: a NUL */
};

struct run {
	const struct opts *o;
	struct conn *conns;
	int ep;
	uint64_t measure_start;	/* end of the warmup */
	uint64_t measure_end;	/* end of the window (a cap in --requests mode) */
	uint64_t stop_ns;	/* when the run stopped early, else 0 */
	uint64_t last_reply_ns;
	uint64_t done;		/* round trips counted */
	uint64_t errors;
	char first_error[200];
	uint32_t *lat_ns;	/* one per counted round trip */
	size_t lat_cap;
};

/* ---- requests and replies ------------------------------------------- */

/* Frame {"id":id,"op":op[,"args":args]} into c->out.  -1 if it is too big. */
static int
conn_build(struct conn *c, uint64_t id, const char *op, const char *args)
{
	int n = snprintf((char *)c->out + BENCH_FRAME_HDR, REQ_MAX,
	    "{\"id\":%" PRIu64 ",\"op\":\"%s\"%s%s}", id, op,
	    args ? ",\"args\":" : "", args ? args : "");

	if (n < 0 || n >= REQ_MAX) {
		bench_log("request body too long");
		return -1;
	}
	bench_put_be32(c->out, (uint32_t)n);
	c->out_len = BENCH_FRAME_HDR + (size_t)n;
	c->out_off = 0;
	c->id = id;
	return 0;
}

/* Point just past `"key"` and the colon of the first such member, or NULL. */
static const char *
json_member(const char *body, const char *key)
{
	char pat[32];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	if ((p = strstr(body, pat)) == NULL)
		return NULL;
	p += strlen(pat);
	p += strspn(p, " \t\r\n");
	if (*p != ':')
		return NULL;
	p++;
	return p + strspn(p, " \t\r\n");
}

/*
 * Is body (NUL-terminated) a success reply to request id?  A real JSON
 * parser is not needed: the broker's replies and the echoed requests carry
 * the top-level "id" first, and only an error reply has "ok": false.
 */
static bool
reply_ok(const char *body, uint64_t id)
{
	const char *p = json_member(body, "id");
	const char *ok = json_member(body, "ok");
	char *end = NULL;

	if (p == NULL || strtoull(p, &end, 10) != id || end == p)
		return false;
	return ok == NULL || strncmp(ok, "false", 5) != 0;
}

static void
note_error(struct run *r, const char *body)
{
	if (r->errors++ == 0)
		snprintf(r->first_error, sizeof(r->first_error), "%.160s", body);
}

/* ---- the handshake, blocking with timeouts ------------------------------ */

static int
set_timeouts(int fd, double seconds)
{
	struct timeval tv = {
		.tv_sec = (time_t)seconds,
		.tv_usec = (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6),
	};

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
		bench_log_errno("setsockopt timeouts");
		return -1;
	}
	return 0;
}

/* Each pass moves bytes or fails (a timeout is EAGAIN), so it ends. */
static int
write_all(int fd, const uint8_t *buf, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, buf + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			bench_log_errno("write");
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

/* Read one whole frame into c->in, NUL-terminate the body. */
static int
read_frame(struct conn *c)
{
	size_t need = BENCH_FRAME_HDR;

	for (c->in_len = 0; c->in_len < need;) {
		ssize_t n = read(c->fd, c->in + c->in_len, need - c->in_len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				bench_log("server closed the connection");
			else
				bench_log_errno("read");
			return -1;
		}
		c->in_len += (size_t)n;
		if (c->in_len == BENCH_FRAME_HDR) {
			uint32_t len = bench_get_be32(c->in);

			if (len == 0 || len > BENCH_FRAME_MAX) {
				bench_log("bad reply length %" PRIu32, len);
				return -1;
			}
			need += len;
		}
	}
	c->in[c->in_len] = '\0';
	return 0;
}

/* Connect and say hello; the socket is non-blocking afterwards. */
static int
conn_open(struct conn *c, const struct opts *o)
{
	struct sockaddr_un sa;
	socklen_t salen;

	if (bench_sockaddr(o->socket, &sa, &salen) != 0)
		return -1;
	if ((c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		bench_log_errno("socket");
		return -1;
	}
	if (connect(c->fd, (struct sockaddr *)&sa, salen) != 0) {
		bench_log_errno("connect %s", o->socket);
		return -1;
	}
	if (set_timeouts(c->fd, o->timeout) != 0 ||
	    conn_build(c, 1, "hello", "{\"version\":1}") != 0 ||
	    write_all(c->fd, c->out, c->out_len) != 0 || read_frame(c) != 0)
		return -1;
	if (!reply_ok((char *)c->in + BENCH_FRAME_HDR, 1)) {
		bench_log("hello refused: %.160s", c->in + BENCH_FRAME_HDR);
		return -1;
	}
	c->in_len = 0;
	c->id = 0;
	c->next_id = 2;
	return bench_set_nonblock(c->fd);
}

/* ---- the measured loop ------------------------------------------------- */

static int
conn_arm(struct run *r, struct conn *c, bool want_out)
{
	struct epoll_event ev = {
		.events = EPOLLIN | (want_out ? EPOLLOUT : 0),
		.data.ptr = c,
	};

	if (c->want_out == want_out)
		return 0;
	if (epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
		bench_log_errno("epoll_ctl MOD");
		return -1;
	}
	c->want_out = want_out;
	return 0;
}

/* Write what is left of the request; arm EPOLLOUT while some remains. */
static int
conn_flush(struct run *r, struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off,
		    c->out_len - c->out_off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return conn_arm(r, c, true);
		if (n < 0) {
			bench_log_errno("write");
			return -1;
		}
		c->out_off += (size_t)n;
	}
	return conn_arm(r, c, false);
}

static int
conn_send_next(struct run *r, struct conn *c)
{
	if (conn_build(c, c->next_id++, r->o->op, r->o->args) != 0)
		return -1;
	c->sent_ns = bench_now_ns();
	return conn_flush(r, c);
}

/* Stop early: the request count was reached or no room for samples. */
static void
run_stop(struct run *r, uint64_t now)
{
	if (r->stop_ns == 0)
		r->stop_ns = now;
}

/* Count a round trip that ended at `now`, if it ended inside the window. */
static void
run_record(struct run *r, uint64_t latency, uint64_t now)
{
	if (now < r->measure_start || now >= r->measure_end || r->stop_ns)
		return;
	if (r->done == r->lat_cap) {
		size_t cap = r->lat_cap ? r->lat_cap * 2 : 65536;
		uint32_t *p = cap <= MAX_SAMPLES ?
		    realloc(r->lat_ns, cap * sizeof(*p)) : NULL;

		if (p == NULL) {
			run_stop(r, now);	/* enough samples either way */
			return;
		}
		r->lat_ns = p;
		r->lat_cap = cap;
	}
	r->lat_ns[r->done++] = latency > UINT32_MAX ? UINT32_MAX :
	    (uint32_t)latency;
	if (r->o->requests && r->done >= r->o->requests)
		run_stop(r, now);
}

/* A whole reply is in c->in: check it, count it, send the next request. */
static int
conn_complete(struct run *r, struct conn *c)
{
	uint64_t now = bench_now_ns();
	char *body = (char *)c->in + BENCH_FRAME_HDR;

	c->in[c->in_len] = '\0';
	if (!reply_ok(body, c->id))
		note_error(r, body);
	run_record(r, now - c->sent_ns, now);
	r->last_reply_ns = now;
	c->in_len = 0;
	c->id = 0;
	return r->stop_ns ? 0 : conn_send_next(r, c);
}

static int
conn_read(struct run *r, struct conn *c)
{
	ssize_t n = read(c->fd, c->in + c->in_len,
	    BENCH_FRAME_HDR + BENCH_FRAME_MAX - c->in_len);
	uint32_t len;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		if (n == 0)
			bench_log("server closed a connection");
		else
			bench_log_errno("read");
		return -1;
	}
	c->in_len += (size_t)n;
	if (c->in_len < BENCH_FRAME_HDR)
		return 0;
	len = bench_get_be32(c->in);
	if (len == 0 || len > BENCH_FRAME_MAX) {
		bench_log("bad reply length %" PRIu32, len);
		return -1;
	}
	if (c->in_len < BENCH_FRAME_HDR + (size_t)len)
		return 0;
	if (c->in_len > BENCH_FRAME_HDR + (size_t)len || c->id == 0) {
		/* One request in flight: more than one reply is a bug. */
		bench_log("unexpected bytes from the server");
		return -1;
	}
	return conn_complete(r, c);
}

static int
conn_on_event(struct run *r, struct conn *c, uint32_t events)
{
	if ((events & EPOLLOUT) && conn_flush(r, c) != 0)
		return -1;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		return conn_read(r, c);
	return 0;
}

/* Milliseconds until `when`, at least 1 so the loop cannot spin. */
static int
ms_until(uint64_t now, uint64_t when)
{
	uint64_t ms = when > now ? (when - now) / 1000000u + 1 : 1;

	return ms > 1000 ? 1000 : (int)ms;
}

/*
 * Drive all connections until the window ends, the run stops early, or no
 * reply came for --timeout (a hung server: fail rather than wait).
 */
static int
run_loop(struct run *r)
{
	struct epoll_event evs[MAX_EVENTS];
	uint64_t stall_ns = (uint64_t)(r->o->timeout * 1e9);

	for (;;) {
		uint64_t now = bench_now_ns();
		uint64_t wake = r->measure_end;
		int n;

		if (now >= r->measure_end || r->stop_ns)
			return 0;
		if (now - r->last_reply_ns > stall_ns) {
			bench_log("no reply for %.1f s", r->o->timeout);
			return -1;
		}
		if (r->last_reply_ns + stall_ns < wake)
			wake = r->last_reply_ns + stall_ns;
		n = epoll_wait(r->ep, evs, MAX_EVENTS, ms_until(now, wake));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			bench_log_errno("epoll_wait");
			return -1;
		}
		for (int i = 0; i < n; i++)
			if (conn_on_event(r, evs[i].data.ptr, evs[i].events) != 0)
				return -1;
	}
}

/* ---- setup and report --------------------------------------------------- */

static int
run_open(struct run *r)
{
	const struct opts *o = r->o;

	if ((r->ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		bench_log_errno("epoll_create1");
		return -1;
	}
	if ((r->conns = calloc(o->clients, sizeof(*r->conns))) == NULL) {
		bench_log_errno("calloc");
		return -1;
	}
	for (unsigned i = 0; i < o->clients; i++)
		r->conns[i].fd = -1;
	for (unsigned i = 0; i < o->clients; i++) {
		struct conn *c = &r->conns[i];
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

		if (conn_open(c, o) != 0)
			return -1;
		if (epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
			bench_log_errno("epoll_ctl ADD");
			return -1;
		}
	}
	return 0;
}

/* Start every connection's first request; the clock starts here. */
static int
run_start(struct run *r)
{
	uint64_t t0 = bench_now_ns();

	r->measure_start = t0 + (uint64_t)(r->o->warmup * 1e9);
	r->measure_end = r->measure_start + (uint64_t)(r->o->seconds * 1e9);
	r->last_reply_ns = t0;
	for (unsigned i = 0; i < r->o->clients; i++)
		if (conn_send_next(r, &r->conns[i]) != 0)
			return -1;
	return 0;
}

static void
run_close(struct run *r)
{
	for (unsigned i = 0; r->conns && i < r->o->clients; i++)
		if (r->conns[i].fd >= 0 && close(r->conns[i].fd) != 0)
			bench_log_errno("close");
	if (r->ep >= 0 && close(r->ep) != 0)
		bench_log_errno("close");
	free(r->conns);
	free(r->lat_ns);
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of the sorted samples, in microseconds. */
static double
pct_us(const struct run *r, double q)
{
	size_t rank = (size_t)(q * (double)r->done + 0.999999);

	if (rank == 0)
		rank = 1;
	return r->lat_ns[rank - 1] / 1e3;
}

static int
run_report(struct run *r)
{
	uint64_t end = r->stop_ns ? r->stop_ns : r->measure_end;
	double secs = (double)(end - r->measure_start) / 1e9;

	if (r->done == 0 || secs <= 0) {
		bench_log("no round trip completed in the window");
		return -1;
	}
	qsort(r->lat_ns, r->done, sizeof(*r->lat_ns), cmp_u32);
	printf("{\"label\":\"%s\",\"clients\":%u,\"seconds\":%.3f,"
	    "\"roundtrips\":%" PRIu64 ",\"rps\":%.1f,\"p50_us\":%.1f,"
	    "\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,"
	    "\"errors\":%" PRIu64 "}\n",
	    r->o->label, r->o->clients, secs, r->done, (double)r->done / secs,
	    pct_us(r, 0.50), pct_us(r, 0.90), pct_us(r, 0.99),
	    pct_us(r, 1.0), r->errors);
	if (fflush(stdout) != 0) {
		bench_log_errno("stdout");
		return -1;
	}
	if (r->errors) {
		bench_log("%" PRIu64 " error replies, first: %s", r->errors,
		    r->first_error);
		return -1;
	}
	return 0;
}

static int
loadgen(const struct opts *o)
{
	struct run r = { .o = o, .ep = -1 };
	int ret = -1;

	if (run_open(&r) == 0 && run_start(&r) == 0 && run_loop(&r) == 0 &&
	    run_report(&r) == 0)
		ret = 0;
	run_close(&r);
	return ret;
}

/* ---- readiness ------------------------------------------------------- */

/* Has process pid exited?  A zombie counts: it will never listen. */
static bool
process_gone(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return true;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The state follows the last ')', since comm may contain one. */
	p = strrchr(buf, ')');
	return p == NULL || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X';
}

static int
wait_socket(const struct opts *o)
{
	struct timespec pause = { .tv_nsec = WAIT_POLL_NS };
	uint64_t deadline = bench_now_ns() + (uint64_t)(o->timeout * 1e9);
	struct sockaddr_un sa;
	socklen_t salen;

	if (bench_sockaddr(o->wait_socket, &sa, &salen) != 0)
		return -1;
	/* Bounded by the deadline; each probe is a non-blocking connect. */
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), err;

		if (fd < 0) {
			bench_log_errno("socket");
			return -1;
		}
		err = connect(fd, (struct sockaddr *)&sa, salen) == 0 ? 0 : errno;
		if (close(fd) != 0)
			bench_log_errno("close");
		if (err == 0)
			return 0;
		if (err != ENOENT && err != ECONNREFUSED) {
			errno = err;
			bench_log_errno("connect %s", o->wait_socket);
			return -1;
		}
		if (o->pid > 0 && process_gone(o->pid)) {
			bench_log("process %d exited before listening", (int)o->pid);
			return -1;
		}
		if (bench_now_ns() >= deadline) {
			bench_log("%s not accepting after %.1f s",
			    o->wait_socket, o->timeout);
			return -1;
		}
		if (nanosleep(&pause, NULL) != 0 && errno != EINTR) {
			bench_log_errno("nanosleep");
			return -1;
		}
	}
}

/* ---- options --------------------------------------------------------- */

static void
usage(void)
{
	fprintf(stderr,
	    "usage: loadgen --socket PATH [--clients N] [--seconds S] "
	    "[--requests N]\n"
	    "               [--warmup S] [--timeout S] [--label NAME] "
	    "[--op NAME] [--args JSON]\n"
	    "       loadgen --wait-socket PATH [--timeout S] [--pid PID]\n");
}

/* Names go into JSON unescaped, so allow only plain characters. */
static bool
plain_name(const char *s)
{
	return *s != '\0' && strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == strlen(s);
}

/* Numeric options: -1 when the value does not parse or is out of range. */
static int
parse_number_opt(struct opts *o, const char *opt, const char *val)
{
	long long n = 0;
	double d = 0;

	if (strcmp(opt, "--clients") == 0 &&
	    (n = bench_parse_uint(val, 1, MAX_CLIENTS)) > 0)
		o->clients = (unsigned)n;
	else if (strcmp(opt, "--requests") == 0 &&
	    (n = bench_parse_uint(val, 1, (long long)MAX_SAMPLES)) > 0)
		o->requests = (uint64_t)n;
	else if (strcmp(opt, "--pid") == 0 &&
	    (n = bench_parse_uint(val, 1, INT32_MAX)) > 0)
		o->pid = (pid_t)n;
	else if (strcmp(opt, "--seconds") == 0 &&
	    (d = bench_parse_seconds(val)) > 0 && d <= 3600)
		o->seconds = d;
	else if (strcmp(opt, "--warmup") == 0 &&
	    (d = bench_parse_seconds(val)) >= 0 && d <= 3600)
		o->warmup = d;
	else if (strcmp(opt, "--timeout") == 0 &&
	    (d = bench_parse_seconds(val)) > 0 && d <= 3600)
		o->timeout = d;
	else
		return -1;
	return 0;
}

static int
parse_args(struct opts *o, int argc, char **argv)
{
	bool seconds_given = false;

	/* Options come in pairs, so i advances by two each pass. */
	for (int i = 1; i < argc; i += 2) {
		const char *opt = argv[i], *val = argv[i + 1];

		if (val == NULL)
			return -1;
		if (strcmp(opt, "--socket") == 0)
			o->socket = val;
		else if (strcmp(opt, "--wait-socket") == 0)
			o->wait_socket = val;
		else if (strcmp(opt, "--label") == 0 && plain_name(val))
			o->label = val;
		else if (strcmp(opt, "--op") == 0 && plain_name(val))
			o->op = val;
		else if (strcmp(opt, "--args") == 0 && *val == '{')
			o->args = val;
		else if (parse_number_opt(o, opt, val) != 0)
			return -1;
		seconds_given |= strcmp(opt, "--seconds") == 0;
	}
	/* With a request count, --seconds is only a safety cap. */
	if (o->requests && !seconds_given)
		o->seconds = 600;
	return (o->socket != NULL) != (o->wait_socket != NULL) ? 0 : -1;
}

int
main(int argc, char **argv)
{
	struct opts o = {
		.label = "run", .op = "status", .clients = 1,
		.seconds = 2, .warmup = 0.2, .timeout = 10,
	};

	bench_prog = "loadgen";
	if (parse_args(&o, argc, argv) != 0) {
		usage();
		return 2;
	}
	/* A server that dies mid-run must give an error, not kill us. */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		bench_log_errno("signal SIGPIPE");
		return 1;
	}
	if (o.wait_socket)
		return wait_socket(&o) == 0 ? 0 : 1;
	return loadgen(&o) == 0 ? 0 : 1;
}
