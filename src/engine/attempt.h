/*
 * One attempt, in three steps: prepare (headers, the signatures, the
 * guard's addresses: CPU and perhaps a name lookup, on the executor or the
 * emitting thread), run (the transport: started and left to the I/O
 * thread, or sent on this thread by a blocking transport), conclude (the
 * reply read into status and error class).  Then record (the store) and
 * report (the callbacks).  No decision is taken here: that is the policy's
 * (client/policy.c) and the scheduler's.
 */
#ifndef FLAGHOOK_ENGINE_ATTEMPT_H
#define FLAGHOOK_ENGINE_ATTEMPT_H

#include "client/client.h"

/* An attempt with room for the reply excerpt; NULL when out of memory. */
fh_attempt *flaghook__attempt_new(flaghook_client *c);
/* Wipes the signatures and frees it (or keeps it for the next attempt).
 * NULL is a no-op. */
void flaghook__attempt_free(flaghook_client *c, fh_attempt *at);
/* Frees the blocks kept for reuse (the client is going). */
void flaghook__attempt_cache_free(flaghook_client *c);

/* An attempt that could not be allocated, as a transport failure that the
 * retry policy may retry: `spare` (the caller's, on its stack) says so.
 * flaghook__attempt_free leaves it alone. */
void flaghook__attempt_spare(fh_attempt *spare);

/*
 * The name lookup of job j's attempt (ASYNC; j->at allocated), before
 * prepare.  The default transport with the guard on sends only to
 * addresses vetted: a name is looked up first (a blocking getaddrinfo),
 * and its answer is cached on the endpoint (30 s; a name that does not
 * resolve, 5 s).
 *   FH_DNS_READY   no lookup needed now (an IP literal, the guard off, or
 *                  an answer cached, now in j->at): prepare it.
 *   FH_DNS_LOOKUP  j must look the name up: flaghook__attempt_lookup, on a
 *                  thread that may block (other endpoints' jobs first).
 *   FH_DNS_WAIT    another thread is looking it up: j waits with the
 *                  endpoint and comes back from that lookup.
 */
enum { FH_DNS_READY, FH_DNS_LOOKUP, FH_DNS_WAIT };
int flaghook__attempt_dns(flaghook_client *c, fh_job *j);
/* Looks j's endpoint's name up (blocking), caches the answer and hands it
 * to j's attempt and to the attempt of every job that waited for it.
 * Returns j with those jobs after it (through ->next), to be prepared. */
fh_job *flaghook__attempt_lookup(flaghook_client *c, fh_job *j);

/* Prepares the request for delivery d to ep.  0: ready to run.  Non-zero:
 * the attempt is already over (signing failed, the guard refused the
 * address, the name does not resolve) and `at` says how; do not run it.
 * A name is vetted by the answer flaghook__attempt_dns or _lookup gave
 * `at`, or else looked up here (SYNC: on the emitting thread). */
int flaghook__attempt_prepare(flaghook_client *c, fh_endpoint *ep, const flaghook_delivery *d, fh_attempt *at,
                              bool cancellable);

/* Runs a prepared attempt.  With a transport that can start, returns
 * false: done(ctx) comes later (or already came), from any thread.  A
 * blocking transport sends here and returns true: it is over. */
bool flaghook__attempt_run(flaghook_client *c, fh_attempt *at, void (*done)(void *ctx), void *ctx);

/* After the transport is done: status and error class from the response. */
void flaghook__attempt_conclude(fh_attempt *at);

/* Books an attempt (or, number 0, an end without one) in the store. */
int flaghook__record(flaghook_client *c, const flaghook_delivery *d, int outcome, const fh_attempt *at,
                     int32_t number, int64_t next_attempt_us);
/* A result for the callbacks. */
void flaghook__result(flaghook_result *res, const fh_endpoint *ep, const flaghook_delivery *d,
                      int32_t event_type, int outcome, const fh_attempt *at, int64_t elapsed_us);
/* storage.put, with the store's detail in the error; ESTORAGE or ENOMEM. */
int flaghook__storage_put(flaghook_client *c, flaghook_delivery *ds, size_t n);

#endif
