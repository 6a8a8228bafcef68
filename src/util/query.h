/* Checking a caller's flaghook_query, for the library and every store. */
#ifndef FLAGHOOK_UTIL_QUERY_H
#define FLAGHOOK_UTIL_QUERY_H

#include "flaghook.h"

/* Checks a query's version and state (NULL is every delivery); `who`
 * names it in the error. */
int flaghook__check_query(const flaghook_query *q, const char *who);

#endif
