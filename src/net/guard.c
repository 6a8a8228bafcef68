/*
 * SSRF guard: address classes, localhost names and allow-lists (see
 * guard.h).  Pure functions over bytes; the transport resolves and asks.
 */
#include "guard.h"

#include "flaghook.h"
#include "util/fail.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#define NO_EMBED (-1)

/* One special-purpose block.  For a block that embeds an IPv4 address,
 * `cls` is the floor: the answer when the embedded address is public. */
typedef struct fh_range {
	uint8_t net[16];
	int len;             /* prefix length in bits */
	fh_addr_class cls;
	int embed;           /* byte offset of an embedded IPv4 address, or NO_EMBED */
} fh_range;

/*
 * From the IANA IPv4 and IPv6 Special-Purpose Address Registries
 * (iana-ipv4-special-registry, iana-ipv6-special-registry, RFC 6890),
 * the IPv4 Multicast and IPv6 Address Space registries.  The most specific
 * block that holds an address decides, so order does not matter.
 *
 * Blocks the registry marks globally reachable stay public unless they
 * sit inside a block refused as a whole (192.0.0.9 and .10 in 192.0.0/24,
 * the anycast, AMT and ORCHIDv2 blocks in 2001::/23): no webhook receiver
 * lives at a protocol anycast address, and a whole block is easier to
 * reason about than its holes.
 */
static const fh_range v4_ranges[] = {
	{ {0}, 8, FH_ADDR_UNSPECIFIED, NO_EMBED },               /* "this network", RFC 791 */
	{ {10}, 8, FH_ADDR_PRIVATE, NO_EMBED },                  /* RFC 1918 */
	{ {100, 64}, 10, FH_ADDR_SHARED, NO_EMBED },             /* RFC 6598 */
	{ {127}, 8, FH_ADDR_LOOPBACK, NO_EMBED },
	{ {169, 254}, 16, FH_ADDR_LINK_LOCAL, NO_EMBED },        /* RFC 3927; 169.254.169.254 */
	{ {172, 16}, 12, FH_ADDR_PRIVATE, NO_EMBED },
	{ {192, 0, 0}, 24, FH_ADDR_RESERVED, NO_EMBED },         /* IETF protocol assignments */
	{ {192, 0, 2}, 24, FH_ADDR_DOCUMENTATION, NO_EMBED },    /* TEST-NET-1 */
	{ {192, 88, 99}, 24, FH_ADDR_RESERVED, NO_EMBED },       /* 6to4 relay anycast, RFC 7526 */
	{ {192, 168}, 16, FH_ADDR_PRIVATE, NO_EMBED },
	{ {198, 18}, 15, FH_ADDR_BENCHMARKING, NO_EMBED },       /* RFC 2544 */
	{ {198, 51, 100}, 24, FH_ADDR_DOCUMENTATION, NO_EMBED }, /* TEST-NET-2 */
	{ {203, 0, 113}, 24, FH_ADDR_DOCUMENTATION, NO_EMBED },  /* TEST-NET-3 */
	{ {224}, 4, FH_ADDR_MULTICAST, NO_EMBED },
	{ {240}, 4, FH_ADDR_RESERVED, NO_EMBED },                /* future use, 255.255.255.255 */
};

/* IANA assigns unicast only from 2000::/3; the rest of the space is
 * "Reserved by IETF" (IPv6 Address Space registry), so ::/0 is reserved
 * and 2000::/3 public.  That default also covers the special blocks no
 * receiver can live at: 100::/64 discard (RFC 6666), 100:0:0:1::/64,
 * 5f00::/16 SRv6 SIDs (RFC 9602), fec0::/10 old site-local, ::/8 forms
 * other than those below. */
static const fh_range v6_ranges[] = {
	{ {0}, 0, FH_ADDR_RESERVED, NO_EMBED },
	{ {0x20}, 3, FH_ADDR_PUBLIC, NO_EMBED },
	{ {0}, 128, FH_ADDR_UNSPECIFIED, NO_EMBED },
	{ {[15] = 1}, 128, FH_ADDR_LOOPBACK, NO_EMBED },
	/* IPv4-compatible ::a.b.c.d (RFC 4291, deprecated): never public. */
	{ {0}, 96, FH_ADDR_RESERVED, 12 },
	{ {[10] = 0xff, [11] = 0xff}, 96, FH_ADDR_PUBLIC, 12 },  /* IPv4-mapped */
	{ {0, 0x64, 0xff, 0x9b}, 96, FH_ADDR_PUBLIC, 12 },       /* NAT64, RFC 6052 */
	/* Local-use NAT64 (RFC 8215): the operator may embed the IPv4 address
	 * at any RFC 6052 position, so only the plain /96 spelling is judged
	 * by it alone; with other bits set it is at least reserved. */
	{ {0, 0x64, 0xff, 0x9b, 0, 1}, 96, FH_ADDR_PUBLIC, 12 },
	{ {0, 0x64, 0xff, 0x9b, 0, 1}, 48, FH_ADDR_RESERVED, 12 },
	{ {0x20, 0x01}, 23, FH_ADDR_RESERVED, NO_EMBED },       /* IETF assignments, Teredo */
	{ {0x20, 0x01, 0x00, 0x02}, 48, FH_ADDR_BENCHMARKING, NO_EMBED }, /* RFC 5180 */
	{ {0x20, 0x01, 0x0d, 0xb8}, 32, FH_ADDR_DOCUMENTATION, NO_EMBED }, /* RFC 3849 */
	{ {0x20, 0x02}, 16, FH_ADDR_PUBLIC, 2 },                 /* 6to4, RFC 3056 */
	{ {0x3f, 0xff}, 20, FH_ADDR_DOCUMENTATION, NO_EMBED },   /* RFC 9637 */
	{ {0xfc}, 7, FH_ADDR_UNIQUE_LOCAL, NO_EMBED },           /* RFC 4193 */
	{ {0xfe, 0x80}, 10, FH_ADDR_LINK_LOCAL, NO_EMBED },
	{ {0xff}, 8, FH_ADDR_MULTICAST, NO_EMBED },
};

static const char *const class_names[FH_ADDR_CLASS_COUNT] = {
	[FH_ADDR_PUBLIC] = "public",
	[FH_ADDR_UNSPECIFIED] = "unspecified",
	[FH_ADDR_LOOPBACK] = "loopback",
	[FH_ADDR_PRIVATE] = "private (RFC 1918)",
	[FH_ADDR_SHARED] = "carrier-grade NAT",
	[FH_ADDR_LINK_LOCAL] = "link-local (cloud metadata)",
	[FH_ADDR_UNIQUE_LOCAL] = "unique-local IPv6",
	[FH_ADDR_MULTICAST] = "multicast",
	[FH_ADDR_DOCUMENTATION] = "documentation",
	[FH_ADDR_BENCHMARKING] = "benchmarking",
	[FH_ADDR_RESERVED] = "reserved",
};

static const uint8_t mapped_prefix[12] = { [10] = 0xff, [11] = 0xff };

static bool prefix_match(const uint8_t *a, const uint8_t *net, int len)
{
	int full = len / 8, rest = len % 8;
	if (memcmp(a, net, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return ((a[full] ^ net[full]) & mask) == 0;
}

static const fh_range *longest_match(const fh_range *r, size_t n, const uint8_t *a)
{
	const fh_range *best = NULL;
	for (size_t i = 0; i < n; i++)
		if (prefix_match(a, r[i].net, r[i].len) && (!best || r[i].len > best->len))
			best = &r[i];
	return best;
}

static fh_addr_class class_v4(const uint8_t *a)
{
	const fh_range *r = longest_match(v4_ranges, sizeof(v4_ranges) / sizeof(v4_ranges[0]), a);
	return r ? r->cls : FH_ADDR_PUBLIC;
}

static fh_addr_class class_v6(const uint8_t *a)
{
	/* ::/0 is in the table, so there is always a match. */
	const fh_range *r = longest_match(v6_ranges, sizeof(v6_ranges) / sizeof(v6_ranges[0]), a);
	if (r->embed == NO_EMBED)
		return r->cls;
	/* The translator or tunnel delivers to the IPv4 address, so a refused
	 * one is refused under any wrapping, and its class is the clearer
	 * message. */
	fh_addr_class inner = class_v4(a + r->embed);
	return inner != FH_ADDR_PUBLIC ? inner : r->cls;
}

/* The address bytes of an AF_INET or AF_INET6 sockaddr long enough to
 * hold one; false for anything else.  memcpy: the caller's buffer need
 * not be aligned for sockaddr_in6. */
static bool sockaddr_bytes(const struct sockaddr *sa, size_t sa_len, int *family, uint8_t out[16])
{
	sa_family_t fam;
	if (!sa || sa_len < offsetof(struct sockaddr, sa_family) + sizeof(fam))
		return false;
	memcpy(&fam, (const char *)sa + offsetof(struct sockaddr, sa_family), sizeof(fam));
	if (fam == AF_INET && sa_len >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in sin;
		memcpy(&sin, sa, sizeof(sin));
		memcpy(out, &sin.sin_addr, 4);
	} else if (fam == AF_INET6 && sa_len >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 sin6;
		memcpy(&sin6, sa, sizeof(sin6));
		memcpy(out, &sin6.sin6_addr, 16);
	} else {
		return false;
	}
	*family = fam;
	return true;
}

/* ::ffff:a.b.c.d becomes a.b.c.d, so the two spellings of one IPv4
 * address compare equal. */
static void unmap(int *family, uint8_t a[16])
{
	if (*family == AF_INET6 && memcmp(a, mapped_prefix, 12) == 0) {
		memmove(a, a + 12, 4);
		memset(a + 4, 0, 12);
		*family = AF_INET;
	}
}

fh_addr_class flaghook__addr_class_raw(int family, const uint8_t *bytes)
{
	if (!bytes)
		return FH_ADDR_RESERVED;
	if (family == AF_INET)
		return class_v4(bytes);
	if (family == AF_INET6)
		return class_v6(bytes);
	return FH_ADDR_RESERVED;
}

fh_addr_class flaghook__addr_class(const struct sockaddr *sa, size_t sa_len)
{
	int family;
	uint8_t a[16];
	if (!sockaddr_bytes(sa, sa_len, &family, a))
		return FH_ADDR_RESERVED;
	return flaghook__addr_class_raw(family, a);
}

const char *flaghook__addr_class_name(fh_addr_class c)
{
	if ((int)c < 0 || c >= FH_ADDR_CLASS_COUNT)
		return "unknown";
	return class_names[c];
}

/* ASCII only: strncasecmp follows the locale, and in a Turkish one "I"
 * does not lower to "i". */
static bool ascii_ieq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x + 32);
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y + 32);
		if (x != y)
			return false;
	}
	return true;
}

bool flaghook__host_is_localhost(const char *host)
{
	static const char lh[] = "localhost", lld[] = "localhost.localdomain";
	const size_t lh_len = sizeof(lh) - 1, lld_len = sizeof(lld) - 1;
	if (!host)
		return false;
	size_t n = strlen(host);
	/* Every trailing dot, not one: "localhost.." must not slip past a
	 * resolver that is more forgiving than we are. */
	while (n > 0 && host[n - 1] == '.')
		n--;
	if (n == lld_len && ascii_ieq(host, lld, n))
		return true;
	return n >= lh_len && ascii_ieq(host + n - lh_len, lh, lh_len) &&
	       (n == lh_len || host[n - lh_len - 1] == '.');
}

/* The entry for an error detail: bounded, and with control bytes
 * replaced so a bad config cannot forge log lines. */
static void quote(char out[68], const char *s)
{
	size_t n = 0;
	for (; s[n] && n < 64; n++)
		out[n] = s[n] >= 0x20 && s[n] < 0x7f ? s[n] : '?';
	strcpy(out + n, s[n] ? "..." : "");
}

int flaghook__cidr_parse(const char *text, fh_cidr *out, const char *what)
{
	char q[68], abuf[64], net[INET6_ADDRSTRLEN];
	uint8_t a[16] = {0};
	if (!what)
		what = "CIDR";
	if (out)
		memset(out, 0, sizeof(*out));
	if (!text)
		return flaghook__error(FLAGHOOK_EINVAL, "%s: NULL instead of an address or network", what);
	if (!out)
		return flaghook__error(FLAGHOOK_EINVAL, "%s: no place for the result (NULL)", what);
	quote(q, text);
	if (!*text)
		return flaghook__error(FLAGHOOK_EINVAL,
		                       "%s \"\": empty; expected an address or network such as "
		                       "\"10.0.0.0/8\" or \"fd00::/8\"", what);

	const char *slash = strchr(text, '/');
	size_t alen = slash ? (size_t)(slash - text) : strlen(text);
	int family = memchr(text, ':', alen) ? AF_INET6 : AF_INET;
	if (alen < sizeof(abuf)) {
		memcpy(abuf, text, alen);
		abuf[alen] = '\0';
	}
	if (alen >= sizeof(abuf) || inet_pton(family, abuf, a) != 1)
		return flaghook__error(FLAGHOOK_EINVAL, "%s \"%s\": not an IPv4 or IPv6 address%s",
		                       what, q, slash ? " before the '/'" : "");

	int max = family == AF_INET ? 32 : 128, prefix = max;
	if (slash) {
		const char *p = slash + 1;
		if (!*p)
			return flaghook__error(FLAGHOOK_EINVAL, "%s \"%s\": no prefix length after the '/'",
			                       what, q);
		/* Digits only: no sign, no space, no "0x"; stop growing once it
		 * is too large so a long run of digits cannot overflow. */
		for (prefix = 0; *p && prefix <= max; p++) {
			if (*p < '0' || *p > '9')
				break;
			prefix = prefix * 10 + (*p - '0');
		}
		if (*p || prefix > max)
			return flaghook__error(FLAGHOOK_EINVAL, "%s \"%s\": the prefix must be 0 to %d",
			                       what, q, max);
	}

	uint8_t masked[16] = {0};
	memcpy(masked, a, (size_t)(prefix / 8));
	if (prefix % 8)
		masked[prefix / 8] = (uint8_t)(a[prefix / 8] & (0xff << (8 - prefix % 8)));
	if (memcmp(masked, a, sizeof(a)) != 0) {
		inet_ntop(family, masked, net, sizeof(net));
		return flaghook__error(FLAGHOOK_EINVAL,
		                       "%s \"%s\": host bits are set beyond /%d (the network is %s/%d)",
		                       what, q, prefix, net, prefix);
	}

	/* A mapped network of /96 or longer is an IPv4 network; a shorter v6
	 * prefix holding the mapped range (::/0) stays IPv6 and so does not
	 * match IPv4 addresses: an allow-list only widens, so the narrower
	 * reading is the safe one. */
	if (family == AF_INET6 && prefix >= 96 && memcmp(a, mapped_prefix, 12) == 0) {
		unmap(&family, a);
		prefix -= 96;
	}
	out->family = family;
	memcpy(out->addr, a, sizeof(out->addr));
	out->prefix = prefix;
	return 0;
}

static bool match_bytes(const fh_cidr *c, int family, const uint8_t *a)
{
	int max = family == AF_INET ? 32 : 128;
	return c->family == family && c->prefix >= 0 && c->prefix <= max &&
	       prefix_match(a, c->addr, c->prefix);
}

bool flaghook__cidr_match(const fh_cidr *c, const struct sockaddr *sa, size_t sa_len)
{
	int family;
	uint8_t a[16];
	if (!c || !sockaddr_bytes(sa, sa_len, &family, a))
		return false;
	unmap(&family, a);
	return match_bytes(c, family, a);
}

fh_addr_class flaghook__guard_check(const fh_guard_policy *p, const struct sockaddr *sa,
                                    size_t sa_len)
{
	int family;
	uint8_t a[16];
	/* Checked before the policy: allow_private lets RESERVED through,
	 * and an AF_UNIX or truncated sockaddr must never be. */
	if (!sockaddr_bytes(sa, sa_len, &family, a))
		return FH_ADDR_RESERVED;
	fh_addr_class c = flaghook__addr_class_raw(family, a);
	if (c == FH_ADDR_PUBLIC || !p)
		return c;
	unmap(&family, a);
	for (size_t i = 0; p->allow && i < p->allow_count; i++)
		if (match_bytes(&p->allow[i], family, a))
			return FH_ADDR_PUBLIC;
	if (p->allow_private && c != FH_ADDR_UNSPECIFIED && c != FH_ADDR_MULTICAST)
		return FH_ADDR_PUBLIC;
	return c;
}
