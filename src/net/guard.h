/*
 * The SSRF guard's pure core: what kind of address a resolved webhook
 * host is, whether a name means this machine, and the allow-list that
 * overrides both.  No I/O, no allocation, no locks: the transport calls
 * it for every address it is about to connect to.
 */
#ifndef FLAGHOOK_NET_GUARD_H
#define FLAGHOOK_NET_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef enum fh_addr_class {
	FH_ADDR_PUBLIC = 0,      /* allowed by default */
	FH_ADDR_UNSPECIFIED,     /* 0.0.0.0/8, :: */
	FH_ADDR_LOOPBACK,        /* 127/8, ::1 */
	FH_ADDR_PRIVATE,         /* 10/8, 172.16/12, 192.168/16 */
	FH_ADDR_SHARED,          /* carrier-grade NAT 100.64/10 */
	FH_ADDR_LINK_LOCAL,      /* 169.254/16 (cloud metadata lives here), fe80::/10 */
	FH_ADDR_UNIQUE_LOCAL,    /* fc00::/7 */
	FH_ADDR_MULTICAST,       /* 224/4, ff00::/8 */
	FH_ADDR_DOCUMENTATION,   /* 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20 */
	FH_ADDR_BENCHMARKING,    /* 198.18/15, 2001:2::/48 */
	FH_ADDR_RESERVED,        /* 240/4, 192.0.0/24, 192.88.99/24, 2001::/23 (Teredo
	                          * included), IPv6 outside 2000::/3 not named above,
	                          * ::a.b.c.d, anything that is not AF_INET/AF_INET6 */
	FH_ADDR_CLASS_COUNT
} fh_addr_class;

/*
 * The class of an address (AF_INET or AF_INET6 sockaddr of at least its
 * family's size; anything else, NULL included, is FH_ADDR_RESERVED).  IPv6
 * forms that embed an IPv4 address are judged by the embedded address:
 * IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d (deprecated: at
 * least RESERVED, the embedded class when that is not public), NAT64
 * 64:ff9b::/96 and the local-use 64:ff9b:1::/48 (low 32 bits; with other
 * bits than the /96 form set, at least RESERVED), 6to4 2002::/16 (bits
 * 16..47).
 */
fh_addr_class flaghook__addr_class(const struct sockaddr *sa, size_t sa_len);
/* Same for raw bytes: family AF_INET with 4 bytes or AF_INET6 with 16. */
fh_addr_class flaghook__addr_class_raw(int family, const uint8_t *bytes);
/* A short phrase naming the class for error messages ("loopback",
 * "private (RFC 1918)", ...).  Never NULL. */
const char *flaghook__addr_class_name(fh_addr_class c);

/* Names refused without resolving: "localhost", any name ending in
 * ".localhost" (RFC 6761) and "localhost.localdomain"; ASCII
 * case-insensitive, trailing dots ignored.  NULL is no name: false. */
bool flaghook__host_is_localhost(const char *host);

/* One allow-list entry: "10.0.0.0/8", "fd00::/8", "192.168.1.7" (a /32),
 * "::1" (a /128).  An IPv4-mapped IPv6 entry of prefix >= 96 is kept as
 * the IPv4 network it embeds, and a mapped address matched is compared as
 * its IPv4 address, so either spelling matches either. */
typedef struct fh_cidr {
	int family;          /* AF_INET or AF_INET6 */
	uint8_t addr[16];    /* network address, host bits cleared */
	int prefix;          /* 0..32 or 0..128 */
} fh_cidr;

/* 0, or FLAGHOOK_EINVAL through flaghook__error() with a detail that
 * quotes the entry and says what is wrong; `what` ("allow_cidrs[2]")
 * names it.  Host bits set (10.0.0.1/8) are an error. */
int flaghook__cidr_parse(const char *text, fh_cidr *out, const char *what);
bool flaghook__cidr_match(const fh_cidr *c, const struct sockaddr *sa, size_t sa_len);

/*
 * The whole decision.  allow_private lets every class but UNSPECIFIED and
 * MULTICAST through (intranet receivers, tests); an allow-list entry that
 * matches lets the address through whatever its class.  Returns
 * FH_ADDR_PUBLIC when the address may be connected to, otherwise its
 * class.  A sockaddr that is not AF_INET/AF_INET6 is always refused.  NULL
 * policy: the default (public addresses only).
 */
typedef struct fh_guard_policy {
	bool allow_private;
	const fh_cidr *allow;
	size_t allow_count;
} fh_guard_policy;
fh_addr_class flaghook__guard_check(const fh_guard_policy *p, const struct sockaddr *sa,
                                    size_t sa_len);

#endif
