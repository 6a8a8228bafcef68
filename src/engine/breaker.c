/* The circuit breaker: see breaker.h. */
#include "engine/breaker.h"

#define MAX_COOLDOWN_FACTOR 16

bool flaghook__breaker_allows(const fh_endpoint *ep)
{
	return ep->breaker == FH_CLOSED || (ep->breaker == FH_HALF_OPEN && !ep->probe_out);
}

void flaghook__breaker_started(fh_endpoint *ep, fh_job *j)
{
	if (ep->breaker == FH_HALF_OPEN)
		ep->probe_out = j->is_probe = true;
}

void flaghook__breaker_success(const flaghook_client *c, fh_endpoint *ep)
{
	ep->consecutive_failures = 0;
	ep->failing_since = 0;
	ep->breaker = FH_CLOSED;
	ep->cooldown_ms = c->breaker_cooldown_ms;
}

bool flaghook__breaker_failure(const flaghook_client *c, fh_endpoint *ep, int64_t now, bool probe,
                               int *disable)
{
	ep->consecutive_failures++;
	if (!ep->failing_since)
		ep->failing_since = now ? now : 1;
	/* Half-open: only the probe's answer decides; an older attempt still in
	 * flight when the circuit opened must not re-open it. */
	bool trip = (ep->breaker == FH_HALF_OPEN && probe) ||
	            (ep->breaker == FH_CLOSED && c->breaker_threshold > 0 &&
	             ep->consecutive_failures >= c->breaker_threshold);
	if (trip) {
		/* A failed probe waits longer next time, up to a bound. */
		if (ep->breaker == FH_HALF_OPEN && ep->cooldown_ms < c->breaker_cooldown_ms * MAX_COOLDOWN_FACTOR)
			ep->cooldown_ms *= 2;
		ep->breaker = FH_OPEN;
		ep->breaker_until = flaghook__sat_add(now, flaghook__ms_to_us(ep->cooldown_ms));
	}
	*disable = c->disable_after_ms > 0 && now - ep->failing_since >= flaghook__ms_to_us(c->disable_after_ms)
	               ? FLAGHOOK_DISABLED_FAILING : 0;
	return trip;
}

bool flaghook__breaker_half_open(fh_endpoint *ep, int64_t now)
{
	if (ep->breaker != FH_OPEN || now < ep->breaker_until)
		return false;
	ep->breaker = FH_HALF_OPEN;
	ep->probe_out = false;
	return true;
}

void flaghook__breaker_reset(const flaghook_client *c, fh_endpoint *ep)
{
	ep->consecutive_failures = 0;
	ep->failing_since = 0;
	ep->breaker = FH_CLOSED;
	ep->cooldown_ms = c->breaker_cooldown_ms;
	ep->probe_out = false;
}
