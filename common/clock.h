/*
 * clock.h - wall-clock timestamps as keywarden writes them.
 */
#ifndef KW_CLOCK_H
#define KW_CLOCK_H

#include <stddef.h>

#include "common/macros.h"

/* Room for any timestamp kw_now_rfc3339 writes. */
#define KW_RFC3339_LEN 40

/*
 * Write the current UTC time as RFC 3339 with milliseconds
 * ("2026-11-24T23:30:00.123Z") to buf and return it as Unix milliseconds.
 * The real-time clock is used so that libfaketime can move it in tests.
 */
long long kw_now_rfc3339(char buf[KW_RFC3339_LEN]) KW_NONNULL(1);

/* RFC 3339 (whole seconds, UTC) for Unix seconds into buf[32]; "" for t < 0. */
const char *kw_time_text(long long t, char buf[32]) KW_NONNULL(2);

#endif
