/*
 * The SSRF guard's judgement of a URL's host: names that mean this
 * machine and IP literals are judged without a lookup; other names are
 * resolved (a blocking getaddrinfo, on the executor) and every address is
 * vetted, so that a name with any refused address is refused and the
 * transfer can be pinned to the addresses vetted (DNS rebinding then has
 * nothing to rebind).  The transport vets each address again when it
 * connects.
 */
#ifndef FLAGHOOK_NET_RESOLVE_H
#define FLAGHOOK_NET_RESOLVE_H

#include "net/guard.h"
#include "net/url.h"

#include <stddef.h>

#define FH_MAX_ADDRS 16

/* A host name's vetted addresses. */
typedef struct fh_addrs {
	size_t count;
	char text[FH_MAX_ADDRS][46];  /* numeric, IPv6 without brackets */
} fh_addrs;

/* A client's guard settings. */
typedef struct fh_guard {
	bool on;                    /* off with a proxy: the proxy filters */
	fh_guard_policy policy;
	fh_cidr *allow;             /* owned; policy.allow points here */
} fh_guard;

/* Judges the host without a lookup.  0 and *is_name false: an IP literal
 * the guard allows; 0 and *is_name true: a name to resolve; otherwise
 * FLAGHOOK_EREFUSED with a detail that names the class ("the URL's host
 * is a loopback address"), never the URL. */
int flaghook__guard_host(const fh_guard *g, const fh_url *u, bool *is_name);

/* Resolves u's host and vets every address.  0 with the addresses;
 * FLAGHOOK_EREFUSED (one is refused: the detail names its class);
 * FLAGHOOK_ETRANSPORT (it does not resolve: the detail says why). */
int flaghook__resolve_vet(const fh_guard *g, const fh_url *u, fh_addrs *out);

#endif
