/* Clocks: see clock.h. */
#include "clock.h"

#include <time.h>

int64_t flaghook__now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t flaghook__mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t flaghook__sat_add(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	if (b < 0 && a < INT64_MIN - b)
		return INT64_MIN;
	return a + b;
}

int64_t flaghook__sat_mul(int64_t a, int64_t b)
{
	if (a == 0 || b <= 0)
		return 0; /* only b >= 0 is meaningful here */
	if (a > 0 && a > INT64_MAX / b)
		return INT64_MAX;
	if (a < 0 && a < INT64_MIN / b)
		return INT64_MIN;
	return a * b;
}

int64_t flaghook__ms_to_us(int64_t ms)
{
	return ms <= 0 ? 0 : flaghook__sat_mul(ms, 1000);
}
