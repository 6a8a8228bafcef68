/* Formatting error details: see fail.h. */
#include "fail.h"

#include "flaghook.h"

#include <stdarg.h>
#include <stdio.h>

int flaghook__error(int code, const char *fmt, ...)
{
	char detail[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return flaghook_error_set(code, detail);
}

void flaghook__error_clear(void)
{
	flaghook_error_set(0, NULL);
}
