/* The endpoint functions of the API: options, add, remove, enable,
 * stats.  What an endpoint is and how it is checked: registry.c. */
#include "client/registry.h"
#include "engine/engine.h"

#include <string.h>

static const size_t endpoint_options_sizes[] = {
	0,
	FH_SIZE_BEFORE(flaghook_endpoint_options, ca_file), /* 1 */
	sizeof(flaghook_endpoint_options),                  /* 2: TLS */
};
static const size_t stats_sizes[] = { 0, sizeof(flaghook_endpoint_stats) };

int flaghook_endpoint_options_init(flaghook_endpoint_options *opts, unsigned int version)
{
	int rc = flaghook__struct_init(opts, version, endpoint_options_sizes, FH_COUNT(endpoint_options_sizes),
	                               "endpoint options");
	if (!rc)
		opts->scope = FLAGHOOK_SCOPE_ENVIRONMENT;
	return rc;
}

int flaghook_endpoint_add(flaghook_client *c, uint64_t *out_id, const flaghook_endpoint_options *opts)
{
	flaghook__error_clear();
	if (!c || !opts)
		return c ? flaghook__client_fail(c, flaghook__error(FLAGHOOK_EINVAL, "opts is NULL"))
		         : flaghook__error(FLAGHOOK_EINVAL, "client is NULL");
	/* The caller's options at its version, widened to ours. */
	flaghook_endpoint_options copy;
	int rc = flaghook__struct_read(&copy, opts, endpoint_options_sizes, FH_COUNT(endpoint_options_sizes),
	                               "endpoint options");
	if (rc)
		return flaghook__client_fail(c, rc);
	const flaghook_endpoint_options *o = &copy;
	if (c->durable && o->id == 0)
		return flaghook__client_fail(c, flaghook__error(FLAGHOOK_EINVAL,
		                             "with a durable store an endpoint needs a stable id (endpoint "
		                             "options id): stored deliveries name their endpoint by it"));
	fh_endpoint *ep = NULL;
	rc = flaghook__endpoint_build(c, &ep, o);
	if (!rc)
		rc = flaghook__endpoint_register(c, ep, o->id, out_id);
	if (rc)
		return flaghook__client_fail(c, rc);
	/* Stored deliveries for this id may be waiting (a restart): queue
	 * them now, in the caller's thread, so that they go before anything
	 * the caller emits next (FIFO order across restarts). */
	flaghook__engine_poll_now(c);
	return 0;
}

int flaghook_endpoint_remove(flaghook_client *c, uint64_t id)
{
	flaghook__error_clear();
	if (!c)
		return flaghook__error(FLAGHOOK_EINVAL, "client is NULL");
	fh_endpoint *gone = flaghook__endpoint_unregister(c, id);
	if (!gone)
		return flaghook__client_fail(c, flaghook__error(FLAGHOOK_ENOTFOUND,
		                                                "no endpoint with id %llu", (unsigned long long)id));
	/* Deliveries in flight hold their own reference. */
	flaghook__endpoint_release(c, gone);
	return 0;
}

int flaghook_endpoint_set_enabled(flaghook_client *c, uint64_t id, int enabled)
{
	flaghook__error_clear();
	if (!c)
		return flaghook__error(FLAGHOOK_EINVAL, "client is NULL");
	fh_endpoint *ep = flaghook__endpoint_find(c, id);
	if (!ep)
		return flaghook__client_fail(c, flaghook__error(FLAGHOOK_ENOTFOUND, "no endpoint with id %llu",
		                                                (unsigned long long)id));
	/* Disabled means not sent to: what still waits for it is given up,
	 * each with a result that says so. */
	if (enabled)
		flaghook__engine_enable(c, ep);
	else
		flaghook__engine_disable(c, ep, "endpoint disabled by the caller");
	flaghook__endpoint_release(c, ep);
	return 0;
}

void flaghook__endpoint_counters(flaghook_client *c, fh_endpoint *ep, fh_counters *k)
{
	pthread_mutex_lock(&c->engine_lock);
	k->id = ep->id;
	k->queued = ep->queued;
	k->in_flight = (uint64_t)ep->in_flight;
	k->delivered = ep->delivered;
	k->retried = ep->retried;
	k->gave_up = ep->gave_up;
	k->abandoned = ep->abandoned;
	k->released = ep->released;
	k->attempts = ep->attempts;
	memcpy(k->latency, ep->latency, sizeof(k->latency));
	k->latency_sum_us = ep->latency_sum_us;
	k->breaker_open = ep->breaker == FH_OPEN;
	k->consecutive_failures = ep->consecutive_failures;
	pthread_mutex_unlock(&c->engine_lock);
	k->disabled = !atomic_load(&ep->enabled);
}

int flaghook_endpoint_stats_get(flaghook_client *c, uint64_t id, flaghook_endpoint_stats *out)
{
	flaghook__error_clear();
	if (!c || !out)
		return flaghook__error(FLAGHOOK_EINVAL, "client or out is NULL");
	int rc = flaghook__check_version(out->version, (unsigned)FH_COUNT(stats_sizes) - 1, "endpoint stats");
	if (rc)
		return flaghook__client_fail(c, rc);
	fh_endpoint *ep = flaghook__endpoint_find(c, id);
	if (!ep)
		return flaghook__client_fail(c, flaghook__error(FLAGHOOK_ENOTFOUND, "no endpoint with id %llu",
		                                                (unsigned long long)id));
	fh_counters k;
	flaghook__endpoint_counters(c, ep, &k);
	flaghook_endpoint_stats st = {
		.version = out->version,
		.queued = k.queued,
		.in_flight = k.in_flight,
		.delivered = k.delivered,
		.retried = k.retried,
		.gave_up = k.gave_up,
		.abandoned = k.abandoned,
		.released = k.released,
		.disabled = k.disabled,
		.breaker_open = k.breaker_open,
		.consecutive_failures = k.consecutive_failures,
	};
	flaghook__endpoint_release(c, ep);
	/* Only as much as the caller's version has: a later library with a
	 * longer struct must not write past an older caller's. */
	memcpy(out, &st, stats_sizes[st.version]);
	return 0;
}

int flaghook_url_check(const flaghook_client *c, const char *url)
{
	flaghook__error_clear();
	/* NULL client: the defaults, which allow no private address. */
	fh_guard defaults = { .on = true };
	const fh_guard *g = c ? &c->guard : &defaults;
	fh_url u;
	bool is_name;
	int rc = flaghook__url_parse(url, &u);
	if (!rc)
		rc = flaghook__guard_host(g, &u, &is_name);
	if (!rc && is_name) {
		fh_addrs addrs;
		rc = flaghook__resolve_vet(g, &u, &addrs);
	}
	if (rc && c)
		flaghook__client_fail((flaghook_client *)c, rc);
	return rc;
}

static const size_t client_stats_sizes[] = { 0, sizeof(flaghook_client_stats) };

int flaghook_client_stats_get(flaghook_client *c, flaghook_client_stats *out)
{
	flaghook__error_clear();
	if (!c || !out)
		return flaghook__error(FLAGHOOK_EINVAL, "client or out is NULL");
	int rc = flaghook__check_version(out->version, (unsigned)FH_COUNT(client_stats_sizes) - 1, "client stats");
	if (rc)
		return flaghook__client_fail(c, rc);
	flaghook_client_stats st = { .version = out->version };
	pthread_mutex_lock(&c->engine_lock);
	st.pending = c->pending;
	st.running = c->running;
	st.transfers = (uint64_t)c->transfers;
	st.waiting = c->heap_len;
	pthread_mutex_unlock(&c->engine_lock);
	memcpy(out, &st, client_stats_sizes[st.version]);
	return 0;
}
