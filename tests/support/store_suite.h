/*
 * A conformance suite for any flaghook_storage (notes/store-contract.md):
 * the memory store, SQLite and PostgreSQL run the same cases.
 *
 *   static int open_mine(flaghook_storage *out, void *ctx) { ... a fresh, empty store ... }
 *   store_suite_target t = { open_mine, &my_ctx, "sqlite", 0, 0, 0 };
 *   failures += store_suite_run(&t);
 *
 * Each case opens its own store through open() and closes it with
 * destroy().  Operations a store leaves NULL (list, attempts, requeue,
 * pending, claim) skip the cases that need them.
 *
 * The suite asks one thing of every store that the contract states only
 * for durable ones: record(RELEASED) leaves a delivery pending and held by
 * nobody, so claim hands it out again.  It is the only way the suite has to
 * make a held delivery claimable.  ABANDONED is checked only on durable
 * stores (FLAGHOOK_STORAGE_DURABLE).
 */
#ifndef STORE_SUITE_H
#define STORE_SUITE_H

#include "flaghook.h"

#include <stddef.h>
#include <stdint.h>

typedef struct store_suite_target {
	/* Opens a fresh, empty store into *out; 0 or a FLAGHOOK_E* code. */
	int (*open)(flaghook_storage *out, void *ctx);
	void *ctx;
	const char *name;           /* the cmocka group name, e.g. "store/sqlite" */
	int shared;                 /* a shared store (FLAGHOOK_STORAGE_SHARED semantics) */
	/* The bounds open() configures, for the attempt-log cases; 0: that
	 * check is skipped. */
	int32_t attempt_log_max;
	size_t response_max;
	/* The store keeps no copy of the body of a delivery its client holds
	 * (the memory store: the client has it); list shows such a pending
	 * delivery with an empty body, and record takes the body from the
	 * delivery it is given. */
	int forgets_held_bodies;
} store_suite_target;

/* Runs every case against t; returns cmocka's count of failed tests. */
int store_suite_run(const store_suite_target *t);

#endif
