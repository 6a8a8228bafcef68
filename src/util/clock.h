/* Clocks and saturating time arithmetic.  Times are int64 microseconds;
 * settings are milliseconds a caller may set as high as it likes
 * ("never"), so conversions and sums saturate instead of overflowing. */
#ifndef FLAGHOOK_UTIL_CLOCK_H
#define FLAGHOOK_UTIL_CLOCK_H

#include <stdint.h>

/* Wall clock, microseconds since the epoch. */
int64_t flaghook__now_us(void);
/* Monotonic clock, microseconds. */
int64_t flaghook__mono_us(void);
/* a + b, clamped to [INT64_MIN, INT64_MAX]. */
int64_t flaghook__sat_add(int64_t a, int64_t b);
/* a * b for b >= 0, clamped likewise. */
int64_t flaghook__sat_mul(int64_t a, int64_t b);
/* A caller's milliseconds ("never" may be INT64_MAX) as microseconds,
 * saturating; 0 for anything not positive. */
int64_t flaghook__ms_to_us(int64_t ms);

#endif
