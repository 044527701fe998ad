/*
 * idleconns.c - a server's resident memory with many idle clients, for
 * make bench's memory figures.
 *
 *   idleconns --socket PATH --pid PID --counts "1 1000 4000" [--timeout S]
 *
 * Reads VmRSS of process PID (the server behind PATH) with no connection of
 * ours, then opens connections up to each count in turn -- each one does
 * the hello handshake and waits for its answer, so the server has accepted
 * it and holds whatever it keeps per client -- and reads VmRSS again after
 * a short settling pause.  All connections stay open, idle, until the end;
 * then they are closed.  Output, one flat JSON line:
 *
 *   {"rss0_kb":N,"counts":[1,1000,4000],"rss_kb":[..,..,..]}
 *
 * The open file limit is raised to its hard limit first (4,000 sockets).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

#define MAX_COUNTS	8
#define MAX_CONNS	60000
#define SETTLE_NS	200000000L	/* 0.2 s for the server to finish its work */

static long
rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "r"))) {
		bench_log_errno("open %s", path);
		return -1;
	}
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	if (kb < 0)
		bench_log("no VmRSS in %s", path);
	return kb;
}

/* One blocking read or write of exactly len bytes (timeouts set on fd). */
static int
xfer(int fd, void *buf, size_t len, bool out)
{
	for (size_t off = 0; off < len;) {
		ssize_t n = out ? write(fd, (char *)buf + off, len - off) :
		    read(fd, (char *)buf + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			bench_log_errno(out ? "write" : "read");
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

/* Connect to path and do the hello handshake; the fd, or -1 (logged). */
static int
open_client(const char *path, double timeout)
{
	static const char hello[] = "{\"id\":1,\"op\":\"hello\",\"args\":{\"version\":1}}";
	struct timeval tv = { .tv_sec = (time_t)timeout };
	uint8_t buf[BENCH_FRAME_HDR + BENCH_FRAME_MAX + 1];
	struct sockaddr_un sa;
	socklen_t salen;
	uint32_t len;
	int fd;

	if (bench_sockaddr(path, &sa, &salen) != 0)
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		bench_log_errno("socket");
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
	    connect(fd, (struct sockaddr *)&sa, salen) != 0) {
		bench_log_errno("connect %s", path);
		goto fail;
	}
	bench_put_be32(buf, sizeof(hello) - 1);
	memcpy(buf + BENCH_FRAME_HDR, hello, sizeof(hello) - 1);
	if (xfer(fd, buf, BENCH_FRAME_HDR + sizeof(hello) - 1, true) != 0 ||
	    xfer(fd, buf, BENCH_FRAME_HDR, false) != 0)
		goto fail;
	if ((len = bench_get_be32(buf)) > BENCH_FRAME_MAX) {
		bench_log("reply frame of %u bytes", len);
		goto fail;
	}
	if (xfer(fd, buf + BENCH_FRAME_HDR, len, false) != 0)
		goto fail;
	buf[BENCH_FRAME_HDR + len] = '\0';
	if (strstr((char *)buf + BENCH_FRAME_HDR, "\"ok\":false")) {
		bench_log("hello refused: %.160s", buf + BENCH_FRAME_HDR);
		goto fail;
	}
	return fd;
 fail:
	close(fd);
	return -1;
}

static int
raise_nofile(size_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		bench_log_errno("getrlimit");
		return -1;
	}
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want + 16) {
		bench_log("open file limit %llu is too low for %zu connections",
		    (unsigned long long)rl.rlim_cur, want);
		return -1;
	}
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: idleconns --socket PATH --pid PID --counts \"N...\" [--timeout S]\n");
}

int
main(int argc, char **argv)
{
	const struct timespec settle = { .tv_nsec = SETTLE_NS };
	const char *path = NULL, *counts_s = NULL;
	long long counts[MAX_COUNTS], pid = -1;
	long rss[MAX_COUNTS], rss0;
	double timeout = 10;
	size_t n = 0, open = 0;
	int *fds, rc = 1;
	char *copy, *tok, *save = NULL;

	bench_prog = "idleconns";
	for (int i = 1; i < argc; i += 2) {
		if (i + 1 >= argc)
			goto bad;
		if (strcmp(argv[i], "--socket") == 0)
			path = argv[i + 1];
		else if (strcmp(argv[i], "--pid") == 0)
			pid = bench_parse_uint(argv[i + 1], 1, 1 << 30);
		else if (strcmp(argv[i], "--counts") == 0)
			counts_s = argv[i + 1];
		else if (strcmp(argv[i], "--timeout") == 0 &&
		    (timeout = bench_parse_seconds(argv[i + 1])) > 0)
			;
		else
			goto bad;
	}
	if (!path || pid <= 0 || !counts_s || !(copy = strdup(counts_s)))
		goto bad;
	for (tok = strtok_r(copy, " ,", &save); tok; tok = strtok_r(NULL, " ,", &save)) {
		if (n == MAX_COUNTS || (counts[n] = bench_parse_uint(tok, 1, MAX_CONNS)) < 0 ||
		    (n > 0 && counts[n] <= counts[n - 1]))
			goto bad;
		n++;
	}
	free(copy);
	if (n == 0)
		goto bad;
	if (raise_nofile((size_t)counts[n - 1]) != 0 ||
	    !(fds = calloc((size_t)counts[n - 1], sizeof(*fds))))
		return 1;
	if ((rss0 = rss_kb((pid_t)pid)) < 0)
		goto out;
	for (size_t k = 0; k < n; k++) {
		while (open < (size_t)counts[k]) {
			if ((fds[open] = open_client(path, timeout)) < 0) {
				bench_log("connection %zu of %lld failed", open + 1, counts[k]);
				goto out;
			}
			open++;
		}
		nanosleep(&settle, NULL);
		if ((rss[k] = rss_kb((pid_t)pid)) < 0)
			goto out;
	}
	printf("{\"rss0_kb\":%ld,\"counts\":[", rss0);
	for (size_t k = 0; k < n; k++)
		printf("%s%lld", k ? "," : "", counts[k]);
	printf("],\"rss_kb\":[");
	for (size_t k = 0; k < n; k++)
		printf("%s%ld", k ? "," : "", rss[k]);
	printf("]}\n");
	rc = 0;
 out:
	while (open > 0)
		close(fds[--open]);
	free(fds);
	return rc;
 bad:
	usage();
	return 2;
}
