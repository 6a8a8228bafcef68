/*
 * The memory store (the default) through the store conformance suite
 * (tests/support/store_suite.c), the same cases SQLite and PostgreSQL run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "plugins/plugins.h"
#include "store_suite.h"

static int open_memory(flaghook_storage *out, void *ctx)
{
	(void)ctx;
	return flaghook__storage_memory(out, NULL);
}

int main(void)
{
	/* The memory store keeps 4096 attempts in all, not a number per
	 * delivery, and 256 reply bytes of each. */
	store_suite_target t = { open_memory, NULL, "store/memory", 0, 0, 256, 1 };
	return store_suite_run(&t);
}
