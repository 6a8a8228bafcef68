/* The timestamp format Python's strftime/isoformat would write. */
#include "payload/render.h"

#include <time.h>

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
	/* Written digit by digit: this runs several times per body.  Python's
	 * strftime hands %Y to glibc, which does not pad years below 1000
	 * ("5-01-02"); isoformat always writes four digits. */
	char *p = out;
	int year = (int)y;
	if (style != FH_TIME_STRFTIME || year >= 1000) {
		*p++ = (char)('0' + year / 1000);
		*p++ = (char)('0' + year / 100 % 10);
		*p++ = (char)('0' + year / 10 % 10);
	} else {
		if (year >= 100)
			*p++ = (char)('0' + year / 100);
		if (year >= 10)
			*p++ = (char)('0' + year / 10 % 10);
	}
	*p++ = (char)('0' + year % 10);
	unsigned fields[5] = { m, d, (unsigned)(sod / 3600), (unsigned)(sod / 60 % 60), (unsigned)(sod % 60) };
	static const char seps[5] = { '-', '-', 'T', ':', ':' };
	for (int i = 0; i < 5; i++) {
		*p++ = seps[i];
		*p++ = (char)('0' + fields[i] / 10);
		*p++ = (char)('0' + fields[i] % 10);
	}
	int digits = 0;
	unsigned f = (unsigned)frac;
	if (style == FH_TIME_STRFTIME || (style == FH_TIME_DRF && frac))
		digits = 6;
	else if (style == FH_TIME_DJANGO && frac)
		digits = 3, f /= 1000;
	if (digits) {
		*p++ = '.';
		for (int i = digits - 1; i >= 0; i--, f /= 10)
			p[i] = (char)('0' + f % 10);
		p += digits;
	}
	*p++ = 'Z';
	*p = '\0';
	return (int)(p - out);
}
