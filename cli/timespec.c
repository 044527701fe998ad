/*
 * timespec.c - parsing --since/--until times (see timespec.h).
 */
#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>

#include "client/keywarden.h"
#include "cli/timespec.h"

#define MS_PER_DAY 86400000LL
/* Ages past this many days are surely typos; it also keeps the arithmetic small. */
#define MAX_AGE_DAYS (10000LL * 366)

/* n decimal digits at *p into *ret; advances *p.  false when they are not all there. */
static bool
digits(const char **p, int n, int *ret)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*ret = v;
	return true;
}

static bool
expect(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

static int
days_in_month(int y, int m)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's days_from_civil). */
static long long
days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	long long era = y / 400;	/* y >= 0 here */
	long long yoe = y - era * 400;
	long long doy = (153LL * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

/* "YYYY-MM-DD" at *p: the day's first millisecond, or -1. */
static long long
parse_date(const char **p)
{
	int y, m, d;

	if (!digits(p, 4, &y) || !expect(p, '-') || !digits(p, 2, &m) || !expect(p, '-') ||
	    !digits(p, 2, &d) || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
		return -1;
	return days_from_civil(y, m, d) * MS_PER_DAY;
}

/* "HH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" at *p, to the end: milliseconds into the day. */
static bool
parse_clock(const char *p, long long *ret_ms)
{
	int h, mi, s, ms = 0, oh = 0, om = 0, sign = 0;

	if (!digits(&p, 2, &h) || !expect(&p, ':') || !digits(&p, 2, &mi) || !expect(&p, ':') ||
	    !digits(&p, 2, &s) || h > 23 || mi > 59 || s > 60)
		return false;
	if (*p == '.') {
		int scale = 100;
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		for (; isdigit((unsigned char)*p); p++, scale /= 10)
			ms += (*p - '0') * scale;
	}
	if (*p == 'Z' || *p == 'z')
		p++;
	else if (*p == '+' || *p == '-') {
		sign = *p++ == '+' ? 1 : -1;
		if (!digits(&p, 2, &oh) || !expect(&p, ':') || !digits(&p, 2, &om) ||
		    oh > 23 || om > 59)
			return false;
	} else
		return false;
	if (*p != '\0')
		return false;
	/* A leap second (:60) counts as the next minute's first: close enough for a filter. */
	*ret_ms = ((h * 60LL + mi) * 60 + s) * 1000 + ms - sign * (oh * 60LL + om) * 60000;
	return true;
}

/* "N" + unit: an age in milliseconds, or -1. */
static long long
parse_age(const char *s)
{
	static const struct { char unit; long long ms; } units[] = {
		{ 's', 1000 }, { 'm', 60000 }, { 'h', 3600000 }, { 'd', MS_PER_DAY },
		{ 'w', 7 * MS_PER_DAY },
	};
	long long n = 0;
	const char *p = s;

	for (; isdigit((unsigned char)*p); p++) {
		n = n * 10 + (*p - '0');
		if (n > MAX_AGE_DAYS * 86400)
			return -1;
	}
	if (p == s || p[0] == '\0' || p[1] != '\0')
		return -1;
	for (size_t i = 0; i < KW_ELEMENTSOF(units); i++)
		if (units[i].unit == *p)
			return n * units[i].ms <= MAX_AGE_DAYS * MS_PER_DAY ? n * units[i].ms : -1;
	return -1;
}

int
kw_cli_parse_time(const char *s, long long now_ms, long long *ret_ms)
{
	const char *p = s;
	long long day, clock = 0, t;

	if (isdigit((unsigned char)s[0]) && (t = parse_age(s)) >= 0) {
		if (now_ms - t < 0)
			return KW_ERR_INVALID;
		*ret_ms = now_ms - t;
		return 0;
	}
	if ((day = parse_date(&p)) < 0)
		return KW_ERR_INVALID;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		if (!parse_clock(p + 1, &clock))
			return KW_ERR_INVALID;
	} else if (*p != '\0')
		return KW_ERR_INVALID;
	t = day + clock;
	if (t < 0)
		return KW_ERR_INVALID;
	*ret_ms = t;
	return 0;
}
