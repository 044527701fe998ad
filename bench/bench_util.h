/*
 * bench_util.h - the little the load generator and the echo server share:
 * the frame header, a monotonic clock, Unix socket addresses, logging.
 *
 * The harness keeps its own minimal framing instead of linking client/:
 * it must measure the broker without depending on the code under test.
 */
#ifndef KW_BENCH_UTIL_H
#define KW_BENCH_UTIL_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#define BENCH_FRAME_HDR	4
#define BENCH_FRAME_MAX	65536	/* same limit as KW_FRAME_MAX in the spec */

#define BENCH_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Program name for messages; each main sets it first. */
extern const char *bench_prog;

/* "prog: message" on stderr. */
void bench_log(const char *fmt, ...) BENCH_PRINTF(1, 2);

/* As bench_log, with ": strerror(errno)" appended. */
void bench_log_errno(const char *fmt, ...) BENCH_PRINTF(1, 2);

/* CLOCK_MONOTONIC in nanoseconds; the clock cannot fail on Linux. */
uint64_t bench_now_ns(void);

/* Fill *ret_sa and *ret_len for path; -1 (logged) when it does not fit. */
int bench_sockaddr(const char *path, struct sockaddr_un *ret_sa,
    socklen_t *ret_len);

/* Make fd non-blocking; -1 (logged) on failure. */
int bench_set_nonblock(int fd);

void bench_put_be32(uint8_t *p, uint32_t v);
uint32_t bench_get_be32(const uint8_t *p);

/* Parse a non-negative decimal number of seconds; -1 when malformed. */
double bench_parse_seconds(const char *s);

/* Parse an unsigned integer in [min, max]; -1 when malformed or out of range. */
long long bench_parse_uint(const char *s, long long min, long long max);

#endif
