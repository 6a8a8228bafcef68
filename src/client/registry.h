/*
 * The endpoint registry: building an endpoint from its options (every
 * check: URL, secrets, TLS files, the guard's verdict on an IP literal),
 * the list under the client's rwlock, reference counts, lookup by id and
 * routing an event to the endpoints that should get it.
 */
#ifndef FLAGHOOK_CLIENT_REGISTRY_H
#define FLAGHOOK_CLIENT_REGISTRY_H

#include "client/client.h"

/* Checks the options and builds an endpoint (one reference, no id yet). */
int flaghook__endpoint_build(flaghook_client *c, fh_endpoint **out, const flaghook_endpoint_options *o);
/* Adds it under `id`, or the next free id when 0 (in *out_id, may be
 * NULL); on failure frees it. */
int flaghook__endpoint_register(flaghook_client *c, fh_endpoint *ep, uint64_t id, uint64_t *out_id);
/* Takes it out of the registry; the registry's reference goes to the
 * caller (NULL when no such id). */
fh_endpoint *flaghook__endpoint_unregister(flaghook_client *c, uint64_t id);
void flaghook__endpoint_release(flaghook_client *c, fh_endpoint *ep);
/* The registered endpoint with this id, with a reference taken; NULL if none. */
fh_endpoint *flaghook__endpoint_find(flaghook_client *c, uint64_t id);
/* Takes a reference on every enabled endpoint that should get an event of
 * this type and scope.  *out is allocated; count in *n. */
int flaghook__route(flaghook_client *c, int type, int64_t env_id, int64_t org_id,
                    fh_endpoint ***out, size_t *n);
void flaghook__endpoints_free(flaghook_client *c);
/* Takes a reference on every registered endpoint, in id order; *out is
 * allocated (NULL when there are none).  Release each, then free *out. */
int flaghook__endpoints_all(flaghook_client *c, fh_endpoint ***out, size_t *n);

/* One endpoint's counters at one moment (endpoint.c). */
typedef struct fh_counters {
	uint64_t id;
	uint64_t queued, in_flight, delivered, retried, gave_up, abandoned, released, attempts;
	uint64_t latency[FH_LATENCY_BUCKETS + 1];
	int64_t latency_sum_us;
	int32_t disabled, breaker_open, consecutive_failures;
} fh_counters;
void flaghook__endpoint_counters(flaghook_client *c, fh_endpoint *ep, fh_counters *out);

#endif
