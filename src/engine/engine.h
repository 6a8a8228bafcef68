/*
 * The engine's entry points for the rest of the library: starting and
 * stopping it, accepting an emit's deliveries (ASYNC), flush and tick,
 * and what the endpoint functions ask of it.
 */
#ifndef FLAGHOOK_ENGINE_ENGINE_H
#define FLAGHOOK_ENGINE_ENGINE_H

#include "client/client.h"

/* Locks, the I/O loop and the engine's descriptors: before the transport
 * is made (the default one runs on the loop). */
int flaghook__engine_init(flaghook_client *c);
/* The executor (the built-in pool unless the caller gave one, or the
 * host's thread in TICK mode) and the I/O thread (ASYNC, TIMERS_THREAD). */
int flaghook__engine_start(flaghook_client *c, int threads);
/* Drains up to shutdown_timeout_ms, cancels the transfers still in flight,
 * reports every delivery left, stops the threads, frees the loop. */
void flaghook__engine_stop(flaghook_client *c);

/* Frees the loop and the engine's locks: after the transport is gone. */
void flaghook__engine_free(flaghook_client *c);

/* Takes n new jobs (ASYNC): counted against max_pending (waiting up to
 * emit_wait_ms), put in the store, started.  On failure frees none. */
int flaghook__engine_accept(flaghook_client *c, fh_job **jobs, size_t n);

/* Enables ep afresh (failures and circuit reset) and sends what waited. */
void flaghook__engine_enable(flaghook_client *c, fh_endpoint *ep);
/* Disables ep and gives up its waiting deliveries, reporting each. */
void flaghook__engine_disable(flaghook_client *c, fh_endpoint *ep, const char *why);
/* Asks the store for unheld deliveries at the next chance (a re-queue). */
void flaghook__engine_poll_soon(flaghook_client *c);
/* Polls in the caller's thread, after any poll under way (a new endpoint:
 * what waits for it is queued before the caller's next emit). */
void flaghook__engine_poll_now(flaghook_client *c);

#endif
