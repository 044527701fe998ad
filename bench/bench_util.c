/*
 * bench_util.c - helpers shared by the benchmark programs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

const char *bench_prog = "bench";

static void BENCH_PRINTF(2, 0)
vlog(int errnum, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", bench_prog);
	vfprintf(stderr, fmt, ap);
	if (errnum != 0)
		fprintf(stderr, ": %s", strerror(errnum));
	fputc('\n', stderr);
}

void
bench_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(0, fmt, ap);
	va_end(ap);
}

void
bench_log_errno(const char *fmt, ...)
{
	int errnum = errno;	/* before stdio can change it */
	va_list ap;

	va_start(ap, fmt);
	vlog(errnum, fmt, ap);
	va_end(ap);
}

uint64_t
bench_now_ns(void)
{
	struct timespec ts;

	/* Only EINVAL/EFAULT are possible, neither with these arguments. */
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		abort();
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int
bench_sockaddr(const char *path, struct sockaddr_un *ret_sa, socklen_t *ret_len)
{
	size_t len = strlen(path);

	memset(ret_sa, 0, sizeof(*ret_sa));
	if (len == 0 || len >= sizeof(ret_sa->sun_path)) {
		bench_log("socket path too long or empty (%zu bytes): %.64s",
		    len, path);
		return -1;
	}
	ret_sa->sun_family = AF_UNIX;
	memcpy(ret_sa->sun_path, path, len + 1);
	*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	return 0;
}

int
bench_set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		bench_log_errno("fcntl O_NONBLOCK");
		return -1;
	}
	return 0;
}

void
bench_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

uint32_t
bench_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

double
bench_parse_seconds(const char *s)
{
	char *end = NULL;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < 0)
		return -1;
	return v;
}

long long
bench_parse_uint(const char *s, long long min, long long max)
{
	char *end = NULL;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	return v;
}
