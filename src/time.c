/* Clocks and the timestamp format Python's strftime/isoformat would write. */
#include "internal.h"

#include <stdio.h>
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

/* Days since 1970-01-01 to a civil date (H. Hinnant's algorithm); exact for
 * every day we accept, with no dependence on the host's time zone. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z in microseconds. */
#define MIN_US (-62135596800LL * 1000000)
#define MAX_US (253402300799LL * 1000000 + 999999)

int flaghook__format_time(char out[32], int64_t us, fh_time_style style)
{
	if (us < MIN_US || us > MAX_US)
		return -1;
	int64_t secs = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
	int64_t frac = us - secs * 1000000;
	int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
	int64_t sod = secs - days * 86400;
	int64_t y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	/* Python's strftime hands %Y to glibc, which does not pad years below
	 * 1000 ("5-01-02"); isoformat always writes four digits. */
	int n = snprintf(out, 32, style == FH_TIME_STRFTIME ? "%d-%02u-%02uT%02d:%02d:%02d"
	                                                    : "%04d-%02u-%02uT%02d:%02d:%02d", (int)y, m, d,
	                 (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60));
	if (style == FH_TIME_STRFTIME || (style == FH_TIME_DRF && frac))
		n += snprintf(out + n, (size_t)(32 - n), ".%06d", (int)frac);
	else if (style == FH_TIME_DJANGO && frac)
		n += snprintf(out + n, (size_t)(32 - n), ".%03d", (int)(frac / 1000));
	out[n++] = 'Z';
	out[n] = '\0';
	return n;
}
