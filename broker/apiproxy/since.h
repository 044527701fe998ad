/*
 * since.h - the start of a usage summary's window: an ISO 8601 time or a
 * duration back from now.  Pure, for the unit tests.
 */
#ifndef KW_APIPROXY_SINCE_H
#define KW_APIPROXY_SINCE_H

#include "common/macros.h"

/* The default window of admin.usage: 24 hours. */
#define KW_USAGE_DEFAULT_MS	(24LL * 3600 * 1000)

/*
 * Parse text into *ret_ms (milliseconds since the epoch): NULL or "" is
 * now_ms - 24 h; "90s", "30m", "24h", "7d", "2w" count back from now_ms;
 * "2026-12-03", "2026-12-03T10:00:00Z", "2026-12-03T10:00:00.5+01:00" are
 * times (a time without a zone is UTC).  0, or KW_ERR_INVALID.
 */
int kw_usage_since(const char *text, long long now_ms, long long *ret_ms) KW_WUR KW_NONNULL(3);

#endif
