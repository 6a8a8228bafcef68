/*
 * The circuit breaker of one endpoint: after breaker_threshold failed
 * attempts in a row it opens, lets nothing through for a cooldown, then
 * half-opens for one probe; a failed probe opens it again for twice as
 * long (up to 16 times the cooldown), a success closes it.  Pure state on
 * the endpoint; the caller holds the engine lock and arms the timer.
 */
#ifndef FLAGHOOK_ENGINE_BREAKER_H
#define FLAGHOOK_ENGINE_BREAKER_H

#include "client/client.h"

/* Whether an attempt may start now (a half-open circuit: one probe). */
bool flaghook__breaker_allows(const fh_endpoint *ep);
/* An attempt starts: a half-open circuit's one probe is now out. */
void flaghook__breaker_started(fh_endpoint *ep, fh_job *j);
/* An attempt succeeded: closed, the failure streak forgotten. */
void flaghook__breaker_success(const flaghook_client *c, fh_endpoint *ep);
/* An attempt failed at `now` (client clock).  Returns true when the circuit
 * opened: the caller arms a timer for ep->breaker_until.  *disable gets
 * FLAGHOOK_DISABLED_FAILING when the endpoint has failed for
 * disable_after_ms, else 0. */
bool flaghook__breaker_failure(const flaghook_client *c, fh_endpoint *ep, int64_t now, bool probe,
                               int *disable);
/* The open circuit's cooldown timer fired at `now`: half-open. */
bool flaghook__breaker_half_open(fh_endpoint *ep, int64_t now);
/* A fresh start (the endpoint is enabled again). */
void flaghook__breaker_reset(const flaghook_client *c, fh_endpoint *ep);

#endif
