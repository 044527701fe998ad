/*
 * clock.c - timestamps (see clock.h).
 */
#include <stdio.h>
#include <time.h>

#include "common/clock.h"

long long
kw_now(void)
{
	return (long long)time(NULL);
}

int64_t
kw_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long
kw_now_rfc3339(char buf[KW_RFC3339_LEN])
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	/* The year is clamped so the text always fits, whatever the clock says. */
	snprintf(buf, KW_RFC3339_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    (tm.tm_year + 1900) % 10000, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, (int)(ts.tv_nsec / 1000000));
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *
kw_time_text(long long t, char buf[32])
{
	struct tm tm;
	time_t tt = (time_t)t;

	buf[0] = '\0';
	if (t >= 0 && gmtime_r(&tt, &tm))
		strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

void
kw_deadline_after_ms(int ms, struct timespec *ret)
{
	clock_gettime(CLOCK_REALTIME, ret);
	ret->tv_sec += ms / 1000;
	ret->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ret->tv_nsec >= 1000000000L) {
		ret->tv_sec++;
		ret->tv_nsec -= 1000000000L;
	}
}
