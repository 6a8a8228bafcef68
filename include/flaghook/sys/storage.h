/*
 * libflaghook, for plug-in authors: the storage table (the outbox) that
 * the memory store, libflaghook-sqlite and libflaghook-pg implement.
 * Included by <flaghook.h>.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef FLAGHOOK_SYS_STORAGE_H
#define FLAGHOOK_SYS_STORAGE_H

#include "../common.h"
#include "../outbox.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* The storage plug-in                                                */

/* Storage flags. */
#define FLAGHOOK_STORAGE_DURABLE 1u /* survives the process: shutdown releases
                                       what is pending instead of abandoning it */
#define FLAGHOOK_STORAGE_SHARED  2u /* other processes claim from it too */

/*
 * The outbox.  The memory store (the default), libflaghook-sqlite and
 * libflaghook-pg implement it; every function may be called from several
 * threads at once and returns 0 or a negative FLAGHOOK_E* code.
 *
 * put      records new deliveries, all endpoints of one event at once (all
 *          or none), before the first attempt; it assigns each an id and
 *          sets `claimed`.  A durable store returns only once they would
 *          survive a crash.  A failure means nothing was recorded.
 * claim    hands out, through take(), pending deliveries nobody holds
 *          (left by an earlier process, released, re-queued, or whose
 *          holder's lease ran out) that are due by now_us + horizon_us, at
 *          most `max`, an endpoint's oldest first and, for a FIFO delivery,
 *          only while nothing older of its endpoint is pending.  take()
 *          returns 0 to take one, 1 to leave it (an endpoint this client
 *          does not have), negative to stop.  Taken deliveries are held
 *          by this store instance; a shared store also renews the lease of
 *          every delivery it holds here.  NULL: put is the only source.
 * record   books an attempt, or the end of a delivery without one: RETRY
 *          (attempts and next_attempt_us, still held), DELIVERED, GAVE_UP
 *          (a dead letter), RELEASED (pending again, held by nobody) or
 *          ABANDONED (a store that cannot keep it drops it).
 * list     calls each() for the deliveries `query` matches (each returns
 *          non-zero to stop), oldest first; attempts does the same for the
 *          attempt log; requeue makes the matching deliveries that are not
 *          pending pending again, attempts 0, due now, and counts them.
 *          Each may be NULL (FLAGHOOK_ENOTSUP).
 * pending  counts what is not yet delivered or dead, for flaghook_flush;
 *          nullable.
 * release  hands back, in one go, deliveries this instance holds (pending,
 *          held by nobody, attempts and next_attempt_us kept): what a
 *          client shutting down leaves.  The same as record(RELEASED)
 *          without an attempt for each, in one transaction instead of
 *          `count`.  Nullable: the client then records each.
 */
struct flaghook_storage {
	unsigned int version;
	uint32_t flags;             /* FLAGHOOK_STORAGE_* */
	int (*put)(flaghook_delivery *deliveries, size_t count, void *user_data);
	int (*claim)(int64_t now_us, int64_t horizon_us, size_t max,
	             int (*take)(const flaghook_delivery *delivery, void *arg), void *arg,
	             void *user_data);
	int (*record)(const flaghook_delivery *delivery, const flaghook_attempt *attempt,
	              void *user_data);
	int (*list)(const flaghook_query *query,
	            int (*each)(const flaghook_delivery *delivery, void *arg), void *arg,
	            void *user_data);
	int (*attempts)(const flaghook_query *query,
	                int (*each)(const flaghook_attempt *attempt, void *arg), void *arg,
	                void *user_data);
	int (*requeue)(const flaghook_query *query, uint64_t *count, void *user_data);
	int (*pending)(uint64_t *count, void *user_data);
	int (*release)(const uint64_t *ids, size_t count, void *user_data);
	void (*destroy)(void *user_data); /* nullable; called by flaghook_client_free */
	void *user_data;
};

#define FLAGHOOK_STORAGE_VERSION 1
#define FLAGHOOK_STORAGE_INIT { FLAGHOOK_STORAGE_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }
FLAGHOOK_EXTERN int flaghook_storage_init(flaghook_storage *storage,
                                          unsigned int version);

#ifdef __cplusplus
}
#endif

#endif /* FLAGHOOK_SYS_STORAGE_H */
