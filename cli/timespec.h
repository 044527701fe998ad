/*
 * timespec.h - the times audit filters take (--since, --until): an RFC 3339
 * instant, a UTC date, or an age.  Pure, so it can be unit tested.
 */
#ifndef KW_TIMESPEC_H
#define KW_TIMESPEC_H

#include "common/macros.h"

/*
 * Parse s into Unix milliseconds:
 *   "2026-11-25T01:02:03Z", "2026-11-25T01:02:03.456+02:00"  (RFC 3339;
 *       't' or a space may stand for 'T', 'z' for 'Z'; fractions past
 *       milliseconds are dropped)
 *   "2026-11-25"                       midnight UTC that day
 *   "30s", "30m", "12h", "7d", "2w"    now_ms minus that age
 * Returns 0 and sets *ret_ms, or KW_ERR_INVALID (negative) and leaves it
 * alone, also for times before 1970 or past 9999.
 */
int kw_cli_parse_time(const char *s, long long now_ms, long long *ret_ms)
	KW_WUR KW_NONNULL(1, 3);

#endif
