/*
 * Error detail for the library, the stores and the command alike.  The
 * detail lives in the core's per-thread slot (flaghook_last_error); these
 * helpers format it and hand it over through the public
 * flaghook_error_set(), so a store linked to the shared core writes the
 * same slot the core reads.
 */
#ifndef FLAGHOOK_UTIL_FAIL_H
#define FLAGHOOK_UTIL_FAIL_H

#if defined(__GNUC__)
#  define FH_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#  define FH_PRINTF(a, b)
#endif

/* Records `code` with a formatted detail for flaghook_last_error() and
 * returns code, so callers can `return flaghook__error(...)`. */
int flaghook__error(int code, const char *fmt, ...) FH_PRINTF(2, 3);
void flaghook__error_clear(void);

#endif
