/*
 * clock.h - the one clock: wall-clock time (Unix seconds, RFC 3339 text)
 * for what is recorded and compared with dates, and monotonic milliseconds
 * for deadlines.  The wall clock is CLOCK_REALTIME, which libfaketime moves
 * in tests; nothing else in keywarden reads a clock.
 */
#ifndef KW_CLOCK_H
#define KW_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "common/macros.h"

/* Wall-clock Unix seconds: session expiry, locks, retention, key ages. */
long long kw_now(void);

/* Monotonic milliseconds, for deadlines that must not jump with the wall clock. */
int64_t kw_mono_ms(void);

struct timespec;

/* The wall-clock time ms from now, for pthread_cond_timedwait (which counts on it). */
void kw_deadline_after_ms(int ms, struct timespec *ret) KW_NONNULL(2);

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
