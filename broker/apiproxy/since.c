/*
 * since.c - parsing a usage window's start (see since.h).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/apiproxy/since.h"
#include "common/errors.h"

/* "7d": a count and one unit letter, nothing else. */
static int
duration(const char *text, long long *ret_ms)
{
	static const struct { char unit; long long ms; } units[] = {
		{ 's', 1000LL }, { 'm', 60000LL }, { 'h', 3600000LL }, { 'd', 86400000LL },
		{ 'w', 7 * 86400000LL },
	};
	char *end;
	long long n;

	if (!isdigit((unsigned char)text[0]))
		return KW_ERR_INVALID;
	n = strtoll(text, &end, 10);
	if (end[0] == '\0' || end[1] != '\0' || n < 0 || n > 100LL * 366)
		return KW_ERR_INVALID;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (units[i].unit == end[0]) {
			*ret_ms = n * units[i].ms;
			return 0;
		}
	return KW_ERR_INVALID;
}

/* "YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM|-HH:MM]". */
static int
iso8601(const char *text, long long *ret_ms)
{
	struct tm tm = { 0 };
	const char *p = strptime(text, "%Y-%m-%d", &tm);
	long long frac = 0, scale = 1000, offset = 0;

	if (!p)
		return KW_ERR_INVALID;
	if (*p == 'T' || *p == ' ') {
		const char *q = strptime(p + 1, "%H:%M", &tm);
		if (!q)
			return KW_ERR_INVALID;
		p = q;
		if (*p == ':') {
			if (!(q = strptime(p + 1, "%S", &tm)))
				return KW_ERR_INVALID;
			p = q;
			if (*p == '.' || *p == ',') {
				for (p++; isdigit((unsigned char)*p); p++)
					if (scale > 1) {
						scale /= 10;
						frac += (*p - '0') * scale;
					}
			}
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, hh, mm;
		if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]) || p[3] != ':' ||
		    !isdigit((unsigned char)p[4]) || !isdigit((unsigned char)p[5]))
			return KW_ERR_INVALID;
		hh = (p[1] - '0') * 10 + (p[2] - '0');
		mm = (p[4] - '0') * 10 + (p[5] - '0');
		if (hh > 23 || mm > 59)
			return KW_ERR_INVALID;
		offset = sign * (hh * 3600LL + mm * 60LL);
		p += 6;
	}
	if (*p != '\0')
		return KW_ERR_INVALID;
	*ret_ms = ((long long)timegm(&tm) - offset) * 1000 + frac;
	return 0;
}

int
kw_usage_since(const char *text, long long now_ms, long long *ret_ms)
{
	long long ms;

	if (!text || !*text) {
		*ret_ms = now_ms - KW_USAGE_DEFAULT_MS;
		return 0;
	}
	if (duration(text, &ms) == 0) {
		*ret_ms = now_ms - ms;
		return 0;
	}
	if (strlen(text) >= 10 && text[4] == '-' && iso8601(text, &ms) == 0) {
		*ret_ms = ms;
		return 0;
	}
	return KW_ERR_INVALID;
}
