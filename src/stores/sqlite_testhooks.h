/*
 * Hooks of libflaghook-sqlite for its own tests.  They exist only in the
 * copy of the store the Makefile builds for the tests (-DFLAGHOOK_TESTHOOKS,
 * $(BUILD)/tests/libflaghook-sqlite-testhooks.a); no installed library,
 * static or shared, has them.  Not an API.
 */
#ifndef FLAGHOOK_SQLITE_TESTHOOKS_H
#define FLAGHOOK_SQLITE_TESTHOOKS_H

#include <stdint.h>

/* Transactions committed on the store's write connection since it opened:
 * with group commit, far fewer than the writes made. */
uint64_t flaghook__sqlite_commits(void *user_data);

/* Batches the store's leaders have taken from the queue, committed or not:
 * the requests of one batch share one transaction. */
uint64_t flaghook__sqlite_batches(void *user_data);

/* Runs `sql` on the write connection inside a write transaction of its own
 * (e.g. "PRAGMA max_page_count = 40" to fake a full disk).  0 or a
 * negative FLAGHOOK_E* code. */
int flaghook__sqlite_exec(void *user_data, const char *sql);

#endif
