/* The SSRF guard's pure core: address classes at both edges of every
 * range, IPv4 embedded in IPv6, localhost names, allow-list parsing and
 * matching, and the policy decision. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "flaghook.h"
#include "net/guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

typedef struct addr_case {
	const char *text;
	fh_addr_class want;
} addr_case;

/* A sockaddr of the family the text spells, the way getaddrinfo fills
 * one in; returns its length. */
static size_t make_sa(struct sockaddr_storage *ss, const char *text)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(text, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(443);
		if (inet_pton(AF_INET6, text, &s6->sin6_addr) != 1)
			fail_msg("test bug: inet_pton(AF_INET6, \"%s\")", text);
		return sizeof(*s6);
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	s4->sin_family = AF_INET;
	s4->sin_port = htons(443);
	if (inet_pton(AF_INET, text, &s4->sin_addr) != 1)
		fail_msg("test bug: inet_pton(AF_INET, \"%s\")", text);
	return sizeof(*s4);
}

static const addr_case refused[] = {
	{ "127.0.0.1", FH_ADDR_LOOPBACK },
	{ "127.255.255.254", FH_ADDR_LOOPBACK },
	{ "::1", FH_ADDR_LOOPBACK },
	{ "0.0.0.0", FH_ADDR_UNSPECIFIED },
	{ "0.1.2.3", FH_ADDR_UNSPECIFIED },
	{ "::", FH_ADDR_UNSPECIFIED },
	{ "169.254.169.254", FH_ADDR_LINK_LOCAL },
	{ "10.0.0.1", FH_ADDR_PRIVATE },
	{ "10.255.255.255", FH_ADDR_PRIVATE },
	{ "172.16.0.1", FH_ADDR_PRIVATE },
	{ "172.31.255.255", FH_ADDR_PRIVATE },
	{ "192.168.0.1", FH_ADDR_PRIVATE },
	{ "100.64.0.1", FH_ADDR_SHARED },
	{ "100.127.255.255", FH_ADDR_SHARED },
	{ "fe80::1", FH_ADDR_LINK_LOCAL },
	{ "febf::1", FH_ADDR_LINK_LOCAL },
	{ "fd00::1", FH_ADDR_UNIQUE_LOCAL },
	{ "fc00::1", FH_ADDR_UNIQUE_LOCAL },
	{ "::ffff:127.0.0.1", FH_ADDR_LOOPBACK },
	{ "::ffff:169.254.169.254", FH_ADDR_LINK_LOCAL },
	{ "::ffff:10.1.2.3", FH_ADDR_PRIVATE },
	{ "::127.0.0.1", FH_ADDR_LOOPBACK },
	{ "64:ff9b::a9fe:a9fe", FH_ADDR_LINK_LOCAL },
	{ "64:ff9b::7f00:1", FH_ADDR_LOOPBACK },
	{ "64:ff9b:1::a9fe:a9fe", FH_ADDR_LINK_LOCAL },
	{ "2002:a9fe:a9fe::1", FH_ADDR_LINK_LOCAL },
	{ "2002:7f00:1::1", FH_ADDR_LOOPBACK },
	{ "2002:0a00:0001::1", FH_ADDR_PRIVATE },
	{ "224.0.0.1", FH_ADDR_MULTICAST },
	{ "239.255.255.250", FH_ADDR_MULTICAST },
	{ "ff02::1", FH_ADDR_MULTICAST },
	{ "ff05::2", FH_ADDR_MULTICAST },
	{ "192.0.2.1", FH_ADDR_DOCUMENTATION },
	{ "198.51.100.1", FH_ADDR_DOCUMENTATION },
	{ "203.0.113.1", FH_ADDR_DOCUMENTATION },
	{ "2001:db8::1", FH_ADDR_DOCUMENTATION },
	{ "198.18.0.1", FH_ADDR_BENCHMARKING },
	{ "198.19.255.255", FH_ADDR_BENCHMARKING },
	{ "240.0.0.1", FH_ADDR_RESERVED },
	{ "255.255.255.255", FH_ADDR_RESERVED },
	{ "192.0.0.8", FH_ADDR_RESERVED },
	{ "2001::1", FH_ADDR_RESERVED },
	{ "100::1", FH_ADDR_RESERVED },
};

static const addr_case public_ok[] = {
	{ "1.1.1.1", FH_ADDR_PUBLIC },
	{ "8.8.8.8", FH_ADDR_PUBLIC },
	{ "93.184.216.34", FH_ADDR_PUBLIC },
	{ "172.15.255.255", FH_ADDR_PUBLIC },
	{ "172.32.0.0", FH_ADDR_PUBLIC },
	{ "100.63.255.255", FH_ADDR_PUBLIC },
	{ "100.128.0.0", FH_ADDR_PUBLIC },
	{ "169.253.255.255", FH_ADDR_PUBLIC },
	{ "192.167.255.255", FH_ADDR_PUBLIC },
	{ "11.0.0.0", FH_ADDR_PUBLIC },
	{ "2606:4700:4700::1111", FH_ADDR_PUBLIC },
	{ "2a00:1450:4001:80b::200e", FH_ADDR_PUBLIC },
	{ "64:ff9b::808:808", FH_ADDR_PUBLIC },
	{ "2002:0808:0808::1", FH_ADDR_PUBLIC },
	{ "::ffff:8.8.8.8", FH_ADDR_PUBLIC },
};

/* Both edges of every IPv4 range: the first and last address inside and
 * the neighbours just outside. */
static const addr_case v4_edges[] = {
	{ "0.255.255.255", FH_ADDR_UNSPECIFIED }, { "1.0.0.0", FH_ADDR_PUBLIC },
	{ "9.255.255.255", FH_ADDR_PUBLIC }, { "10.0.0.0", FH_ADDR_PRIVATE },
	{ "100.64.0.0", FH_ADDR_SHARED },
	{ "126.255.255.255", FH_ADDR_PUBLIC }, { "127.0.0.0", FH_ADDR_LOOPBACK },
	{ "127.255.255.255", FH_ADDR_LOOPBACK }, { "128.0.0.0", FH_ADDR_PUBLIC },
	{ "169.254.0.0", FH_ADDR_LINK_LOCAL }, { "169.254.255.255", FH_ADDR_LINK_LOCAL },
	{ "169.255.0.0", FH_ADDR_PUBLIC },
	{ "172.16.0.0", FH_ADDR_PRIVATE },
	{ "191.255.255.255", FH_ADDR_PUBLIC }, { "192.0.0.0", FH_ADDR_RESERVED },
	{ "192.0.0.255", FH_ADDR_RESERVED }, { "192.0.1.0", FH_ADDR_PUBLIC },
	{ "192.0.2.0", FH_ADDR_DOCUMENTATION }, { "192.0.2.255", FH_ADDR_DOCUMENTATION },
	{ "192.0.3.0", FH_ADDR_PUBLIC },
	{ "192.88.98.255", FH_ADDR_PUBLIC }, { "192.88.99.0", FH_ADDR_RESERVED },
	{ "192.88.99.255", FH_ADDR_RESERVED }, { "192.88.100.0", FH_ADDR_PUBLIC },
	{ "192.168.0.0", FH_ADDR_PRIVATE }, { "192.168.255.255", FH_ADDR_PRIVATE },
	{ "192.169.0.0", FH_ADDR_PUBLIC },
	{ "198.17.255.255", FH_ADDR_PUBLIC }, { "198.18.0.0", FH_ADDR_BENCHMARKING },
	{ "198.20.0.0", FH_ADDR_PUBLIC },
	{ "198.51.99.255", FH_ADDR_PUBLIC }, { "198.51.100.0", FH_ADDR_DOCUMENTATION },
	{ "198.51.100.255", FH_ADDR_DOCUMENTATION }, { "198.51.101.0", FH_ADDR_PUBLIC },
	{ "203.0.112.255", FH_ADDR_PUBLIC }, { "203.0.113.0", FH_ADDR_DOCUMENTATION },
	{ "203.0.113.255", FH_ADDR_DOCUMENTATION }, { "203.0.114.0", FH_ADDR_PUBLIC },
	{ "223.255.255.255", FH_ADDR_PUBLIC }, { "224.0.0.0", FH_ADDR_MULTICAST },
	{ "239.255.255.255", FH_ADDR_MULTICAST }, { "240.0.0.0", FH_ADDR_RESERVED },
	/* Special-purpose but globally reachable (AS112, AMT): public. */
	{ "192.31.196.1", FH_ADDR_PUBLIC }, { "192.52.193.1", FH_ADDR_PUBLIC },
	{ "192.175.48.1", FH_ADDR_PUBLIC },
};

static const addr_case v6_edges[] = {
	/* Outside 2000::/3 nothing is assigned. */
	{ "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", FH_ADDR_RESERVED },
	{ "2000::", FH_ADDR_PUBLIC },
	{ "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", FH_ADDR_DOCUMENTATION },
	{ "3fff::", FH_ADDR_DOCUMENTATION }, { "3fff:1000::", FH_ADDR_PUBLIC },
	{ "3ffe:ffff::1", FH_ADDR_PUBLIC }, { "4000::", FH_ADDR_RESERVED },
	{ "5f00::1", FH_ADDR_RESERVED }, { "100:0:0:1::1", FH_ADDR_RESERVED },
	{ "100::ffff:ffff:ffff:ffff", FH_ADDR_RESERVED },
	{ "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", FH_ADDR_RESERVED },
	{ "fc00::", FH_ADDR_UNIQUE_LOCAL },
	{ "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", FH_ADDR_UNIQUE_LOCAL },
	{ "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", FH_ADDR_RESERVED },
	{ "fe80::", FH_ADDR_LINK_LOCAL },
	{ "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", FH_ADDR_LINK_LOCAL },
	{ "fec0::1", FH_ADDR_RESERVED },
	{ "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", FH_ADDR_RESERVED },
	{ "ff00::", FH_ADDR_MULTICAST },
	{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", FH_ADDR_MULTICAST },
	/* 2001::/23, with benchmarking inside it. */
	{ "2001::", FH_ADDR_RESERVED }, { "2001:0:4136:e378:8000:63bf:3fff:fdd2", FH_ADDR_RESERVED },
	{ "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", FH_ADDR_RESERVED },
	{ "2001:200::", FH_ADDR_PUBLIC },
	{ "2001:2::", FH_ADDR_BENCHMARKING }, { "2001:2:0:ffff::1", FH_ADDR_BENCHMARKING },
	{ "2001:1:ffff:ffff:ffff:ffff:ffff:ffff", FH_ADDR_RESERVED },
	{ "2001:2:1::", FH_ADDR_RESERVED },
	{ "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", FH_ADDR_PUBLIC },
	{ "2001:db8::", FH_ADDR_DOCUMENTATION },
	{ "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", FH_ADDR_DOCUMENTATION },
	{ "2001:db9::", FH_ADDR_PUBLIC },
	{ "2620:4f:8000::1", FH_ADDR_PUBLIC },
	/* The ::/96 neighbourhood: ::1 is IPv6 loopback, not 0.0.0.1. */
	{ "::2", FH_ADDR_UNSPECIFIED }, { "::8.8.8.8", FH_ADDR_RESERVED },
	{ "::255.255.255.255", FH_ADDR_RESERVED }, { "::1:0:0", FH_ADDR_RESERVED },
	{ "::fffe:808:808", FH_ADDR_RESERVED }, { "::ffff:0:808:808", FH_ADDR_RESERVED },
	{ "::ffff:0.0.0.0", FH_ADDR_UNSPECIFIED }, { "::ffff:255.255.255.255", FH_ADDR_RESERVED },
	{ "1::8.8.8.8", FH_ADDR_RESERVED },
	/* NAT64: only the exact /96, and the local-use /48. */
	{ "64:ff9b::", FH_ADDR_UNSPECIFIED }, { "64:ff9b::1:808:808", FH_ADDR_RESERVED },
	{ "64:ff9a:ffff:ffff:ffff:ffff:808:808", FH_ADDR_RESERVED },
	{ "64:ff9b:1::808:808", FH_ADDR_PUBLIC },
	{ "64:ff9b:1:ab::808:808", FH_ADDR_RESERVED },
	{ "64:ff9b:1:ffff:ffff:ffff:a9fe:a9fe", FH_ADDR_LINK_LOCAL },
	{ "64:ff9b:2::808:808", FH_ADDR_RESERVED },
	/* 6to4: the embedded address is bits 16..47, whatever follows. */
	{ "2002::", FH_ADDR_UNSPECIFIED }, { "2002:c0a8:101:ffff::1", FH_ADDR_PRIVATE },
	{ "2002:e000:1::", FH_ADDR_MULTICAST }, { "2002:c000:201::1", FH_ADDR_DOCUMENTATION },
	{ "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", FH_ADDR_RESERVED },
	{ "2001:ffff:ffff::", FH_ADDR_PUBLIC }, { "2003::", FH_ADDR_PUBLIC },
};

static void check_cases(const addr_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		size_t len = make_sa(&ss, cases[i].text);
		fh_addr_class got = flaghook__addr_class((struct sockaddr *)&ss, len);
		if (got != cases[i].want)
			fail_msg("%s: got %s, want %s", cases[i].text, flaghook__addr_class_name(got),
			         flaghook__addr_class_name(cases[i].want));
		/* The default policy refuses exactly what is not public. */
		fh_guard_policy none = {0};
		assert_int_equal(flaghook__guard_check(&none, (struct sockaddr *)&ss, len), got);
		assert_int_equal(flaghook__guard_check(NULL, (struct sockaddr *)&ss, len), got);
	}
}

static void test_refused(void **state)
{
	(void)state;
	check_cases(refused, COUNT(refused));
	for (size_t i = 0; i < COUNT(refused); i++)
		assert_int_not_equal(refused[i].want, FH_ADDR_PUBLIC);
}

static void test_public(void **state)
{
	(void)state;
	check_cases(public_ok, COUNT(public_ok));
}

static void test_edges(void **state)
{
	(void)state;
	check_cases(v4_edges, COUNT(v4_edges));
	check_cases(v6_edges, COUNT(v6_edges));
}

/* Every IPv4 case, wrapped in each IPv6 form that embeds it, keeps its
 * class (compatible: at least reserved). */
static void test_embedded_agree(void **state)
{
	(void)state;
	const addr_case *lists[] = { refused, public_ok, v4_edges };
	const size_t counts[] = { COUNT(refused), COUNT(public_ok), COUNT(v4_edges) };
	int checked = 0;
	for (size_t l = 0; l < COUNT(lists); l++) {
		for (size_t i = 0; i < counts[l]; i++) {
			uint8_t v4[4], v6[16];
			if (inet_pton(AF_INET, lists[l][i].text, v4) != 1)
				continue;
			fh_addr_class want = flaghook__addr_class_raw(AF_INET, v4);
			assert_int_equal(want, lists[l][i].want);
			static const struct { uint8_t pre[12]; int at; const char *name; } wraps[] = {
				{ { [10] = 0xff, [11] = 0xff }, 12, "mapped" },
				{ { 0, 0x64, 0xff, 0x9b }, 12, "NAT64" },
				{ { 0, 0x64, 0xff, 0x9b, 0, 1 }, 12, "local NAT64" },
				{ { 0x20, 0x02 }, 2, "6to4" },
				{ { 0 }, 12, "compatible" },
			};
			for (size_t w = 0; w < COUNT(wraps); w++) {
				memset(v6, 0, sizeof(v6));
				memcpy(v6, wraps[w].pre, 12);
				memcpy(v6 + wraps[w].at, v4, 4);
				fh_addr_class exp = want;
				if (w == 4) {
					/* ::0.0.0.0 and ::0.0.0.1 are :: and ::1. */
					if (v4[0] == 0 && v4[1] == 0 && v4[2] == 0 && v4[3] <= 1)
						exp = v4[3] ? FH_ADDR_LOOPBACK : FH_ADDR_UNSPECIFIED;
					else if (exp == FH_ADDR_PUBLIC)
						exp = FH_ADDR_RESERVED;
				}
				fh_addr_class got = flaghook__addr_class_raw(AF_INET6, v6);
				if (got != exp)
					fail_msg("%s of %s: got %s, want %s", wraps[w].name, lists[l][i].text,
					         flaghook__addr_class_name(got), flaghook__addr_class_name(exp));
				checked++;
			}
		}
	}
	assert_true(checked > 300);
}

static void test_not_inet(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	size_t len = make_sa(&ss, "8.8.8.8");
	const struct sockaddr *sa = (struct sockaddr *)&ss;
	assert_int_equal(flaghook__addr_class(sa, len), FH_ADDR_PUBLIC);
	/* Too short for its family, NULL, or another family: reserved. */
	assert_int_equal(flaghook__addr_class(sa, len - 1), FH_ADDR_RESERVED);
	assert_int_equal(flaghook__addr_class(sa, 0), FH_ADDR_RESERVED);
	assert_int_equal(flaghook__addr_class(NULL, len), FH_ADDR_RESERVED);
	len = make_sa(&ss, "2606:4700:4700::1111");
	assert_int_equal(flaghook__addr_class(sa, len), FH_ADDR_PUBLIC);
	assert_int_equal(flaghook__addr_class(sa, sizeof(struct sockaddr_in)), FH_ADDR_RESERVED);

	struct sockaddr_un un;
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	strcpy(un.sun_path, "/run/receiver.sock");
	assert_int_equal(flaghook__addr_class((struct sockaddr *)&un, sizeof(un)), FH_ADDR_RESERVED);
	/* No policy lets one through: allow_private admits RESERVED, and a
	 * /0 allow-list everything inet. */
	fh_cidr all;
	assert_int_equal(flaghook__cidr_parse("0.0.0.0/0", &all, "all"), 0);
	fh_guard_policy open = { true, &all, 1 };
	assert_int_equal(flaghook__guard_check(&open, (struct sockaddr *)&un, sizeof(un)), FH_ADDR_RESERVED);
	assert_int_equal(flaghook__guard_check(&open, sa, 3), FH_ADDR_RESERVED);
	assert_int_equal(flaghook__guard_check(&open, NULL, 0), FH_ADDR_RESERVED);

	uint8_t b[16] = {0};
	assert_int_equal(flaghook__addr_class_raw(AF_UNIX, b), FH_ADDR_RESERVED);
	assert_int_equal(flaghook__addr_class_raw(AF_INET, NULL), FH_ADDR_RESERVED);
	assert_int_equal(flaghook__addr_class_raw(AF_INET6, NULL), FH_ADDR_RESERVED);
}

static void test_class_names(void **state)
{
	(void)state;
	assert_string_equal(flaghook__addr_class_name(FH_ADDR_PUBLIC), "public");
	assert_string_equal(flaghook__addr_class_name(FH_ADDR_LOOPBACK), "loopback");
	assert_string_equal(flaghook__addr_class_name(FH_ADDR_PRIVATE), "private (RFC 1918)");
	assert_string_equal(flaghook__addr_class_name(FH_ADDR_LINK_LOCAL), "link-local (cloud metadata)");
	assert_string_equal(flaghook__addr_class_name(FH_ADDR_SHARED), "carrier-grade NAT");
	assert_string_equal(flaghook__addr_class_name(FH_ADDR_UNIQUE_LOCAL), "unique-local IPv6");
	assert_string_equal(flaghook__addr_class_name(FH_ADDR_RESERVED), "reserved");
	/* Every class has its own non-empty name; out of range is not NULL. */
	for (int i = 0; i < FH_ADDR_CLASS_COUNT; i++) {
		const char *a = flaghook__addr_class_name((fh_addr_class)i);
		assert_non_null(a);
		assert_true(a[0] != '\0');
		for (int j = 0; j < i; j++)
			assert_string_not_equal(a, flaghook__addr_class_name((fh_addr_class)j));
	}
	assert_non_null(flaghook__addr_class_name(FH_ADDR_CLASS_COUNT));
	assert_non_null(flaghook__addr_class_name((fh_addr_class)-1));
}

static void test_localhost(void **state)
{
	(void)state;
	static const char *const yes[] = {
		"localhost", "LOCALHOST.", "foo.localhost", "localhost.localdomain",
		"LocalHost.LocalDomain.", "a.b.LOCALHOST", "foo.localhost.", "localhost..",
		".localhost",
	};
	static const char *const no[] = {
		"localhostx.com", "notlocalhost", "localhost.com", "xlocalhost", "",
		"foo.localhost.com", "localhost.localdomainx", "localdomain", "local", ".",
		"localhos", "127.0.0.1",
	};
	for (size_t i = 0; i < COUNT(yes); i++)
		if (!flaghook__host_is_localhost(yes[i]))
			fail_msg("\"%s\" should be localhost", yes[i]);
	for (size_t i = 0; i < COUNT(no); i++)
		if (flaghook__host_is_localhost(no[i]))
			fail_msg("\"%s\" should not be localhost", no[i]);
	assert_false(flaghook__host_is_localhost(NULL));
}

typedef struct cidr_good {
	const char *text;
	int family;
	const char *addr;     /* network, in the family stored */
	int prefix;
} cidr_good;

static void test_cidr_parse_good(void **state)
{
	(void)state;
	static const cidr_good good[] = {
		{ "10.0.0.0/8", AF_INET, "10.0.0.0", 8 },
		{ "fd00::/8", AF_INET6, "fd00::", 8 },
		{ "192.168.1.7", AF_INET, "192.168.1.7", 32 },
		{ "::1", AF_INET6, "::1", 128 },
		{ "0.0.0.0/0", AF_INET, "0.0.0.0", 0 },
		{ "::/0", AF_INET6, "::", 0 },
		{ "128.0.0.0/1", AF_INET, "128.0.0.0", 1 },
		{ "2001:db8::/32", AF_INET6, "2001:db8::", 32 },
		{ "10.0.0.0/032", AF_INET, "10.0.0.0", 32 },
		/* Mapped entries become the IPv4 network they hold. */
		{ "::ffff:10.0.0.0/104", AF_INET, "10.0.0.0", 8 },
		{ "::ffff:192.168.1.7", AF_INET, "192.168.1.7", 32 },
		{ "::ffff:0:0/96", AF_INET, "0.0.0.0", 0 },
		{ "::/80", AF_INET6, "::", 80 },
	};
	for (size_t i = 0; i < COUNT(good); i++) {
		fh_cidr c, want;
		memset(&want, 0, sizeof(want));
		assert_int_equal(inet_pton(good[i].family, good[i].addr, want.addr), 1);
		if (flaghook__cidr_parse(good[i].text, &c, "allow_cidrs[0]") != 0)
			fail_msg("\"%s\": %s", good[i].text, flaghook_last_error());
		assert_int_equal(c.family, good[i].family);
		assert_int_equal(c.prefix, good[i].prefix);
		if (memcmp(c.addr, want.addr, 16) != 0)
			fail_msg("\"%s\": wrong network", good[i].text);
	}
}

typedef struct cidr_bad {
	const char *text;
	const char *detail;   /* the whole of flaghook_last_error() */
} cidr_bad;

static void test_cidr_parse_bad(void **state)
{
	(void)state;
	static const cidr_bad bad[] = {
		{ "10.0.0.0/33", "allow_cidrs[2] \"10.0.0.0/33\": the prefix must be 0 to 32" },
		{ "fd00::/129", "allow_cidrs[2] \"fd00::/129\": the prefix must be 0 to 128" },
		{ "10.0.0.0/", "allow_cidrs[2] \"10.0.0.0/\": no prefix length after the '/'" },
		{ "10.0.0.1/8",
		  "allow_cidrs[2] \"10.0.0.1/8\": host bits are set beyond /8 (the network is 10.0.0.0/8)" },
		{ "fd00::1/8",
		  "allow_cidrs[2] \"fd00::1/8\": host bits are set beyond /8 (the network is fd00::/8)" },
		{ "10.0.0.128/25x", "allow_cidrs[2] \"10.0.0.128/25x\": the prefix must be 0 to 32" },
		{ "10.0.0.0/-8", "allow_cidrs[2] \"10.0.0.0/-8\": the prefix must be 0 to 32" },
		{ "10.0.0.0/+8", "allow_cidrs[2] \"10.0.0.0/+8\": the prefix must be 0 to 32" },
		{ "10.0.0.0/ 8", "allow_cidrs[2] \"10.0.0.0/ 8\": the prefix must be 0 to 32" },
		{ "10.0.0.0/8/8", "allow_cidrs[2] \"10.0.0.0/8/8\": the prefix must be 0 to 32" },
		{ "10.0.0.0/99999999999999999999999",
		  "allow_cidrs[2] \"10.0.0.0/99999999999999999999999\": the prefix must be 0 to 32" },
		{ "banana", "allow_cidrs[2] \"banana\": not an IPv4 or IPv6 address" },
		{ "banana/8", "allow_cidrs[2] \"banana/8\": not an IPv4 or IPv6 address before the '/'" },
		{ "1.2.3", "allow_cidrs[2] \"1.2.3\": not an IPv4 or IPv6 address" },
		{ " 10.0.0.0/8", "allow_cidrs[2] \" 10.0.0.0/8\": not an IPv4 or IPv6 address before the '/'" },
		{ "fe80::1%eth0", "allow_cidrs[2] \"fe80::1%eth0\": not an IPv4 or IPv6 address" },
		{ "/8", "allow_cidrs[2] \"/8\": not an IPv4 or IPv6 address before the '/'" },
		{ "::ffff:10.0.0.0/8",
		  "allow_cidrs[2] \"::ffff:10.0.0.0/8\": host bits are set beyond /8 (the network is ::/8)" },
		{ "", "allow_cidrs[2] \"\": empty; expected an address or network such as "
		      "\"10.0.0.0/8\" or \"fd00::/8\"" },
		/* Control bytes never reach the message. */
		{ "10.0.0.0/8\n", "allow_cidrs[2] \"10.0.0.0/8?\": the prefix must be 0 to 32" },
	};
	for (size_t i = 0; i < COUNT(bad); i++) {
		fh_cidr c;
		memset(&c, 0xaa, sizeof(c));
		int rc = flaghook__cidr_parse(bad[i].text, &c, "allow_cidrs[2]");
		if (rc != FLAGHOOK_EINVAL)
			fail_msg("\"%s\": rc %d, want FLAGHOOK_EINVAL", bad[i].text, rc);
		assert_string_equal(flaghook_last_error(), bad[i].detail);
		/* Nothing half-parsed is left behind. */
		assert_int_equal(c.family, 0);
		assert_int_equal(c.prefix, 0);
	}

	fh_cidr c;
	assert_int_equal(flaghook__cidr_parse(NULL, &c, "allow_cidrs[0]"), FLAGHOOK_EINVAL);
	assert_string_equal(flaghook_last_error(), "allow_cidrs[0]: NULL instead of an address or network");
	assert_int_equal(flaghook__cidr_parse("10.0.0.0/8", NULL, "x"), FLAGHOOK_EINVAL);
	assert_non_null(strstr(flaghook_last_error(), "NULL"));
	assert_int_equal(flaghook__cidr_parse("nope", &c, NULL), FLAGHOOK_EINVAL);
	assert_string_equal(flaghook_last_error(), "CIDR \"nope\": not an IPv4 or IPv6 address");

	/* A long entry is quoted, shortened, and still says what is wrong. */
	char longer[300];
	memset(longer, '1', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	assert_int_equal(flaghook__cidr_parse(longer, &c, "allow_cidrs[9]"), FLAGHOOK_EINVAL);
	const char *e = flaghook_last_error();
	assert_true(strlen(e) < 160);
	assert_non_null(strstr(e, "...\": not an IPv4 or IPv6 address"));
}

typedef struct match_case {
	const char *cidr;
	const char *addr;
	bool want;
} match_case;

static void test_cidr_match(void **state)
{
	(void)state;
	static const match_case cases[] = {
		{ "10.0.0.0/8", "10.1.2.3", true },
		{ "10.0.0.0/8", "10.255.255.255", true },
		{ "10.0.0.0/8", "11.0.0.0", false },
		{ "10.0.0.0/8", "9.255.255.255", false },
		{ "10.0.0.0/9", "10.127.255.255", true },
		{ "10.0.0.0/9", "10.128.0.0", false },
		{ "128.0.0.0/1", "200.0.0.1", true },
		{ "128.0.0.0/1", "127.255.255.255", false },
		{ "192.168.1.7", "192.168.1.7", true },
		{ "192.168.1.7", "192.168.1.6", false },
		{ "192.168.1.7", "192.168.1.8", false },
		{ "fd00::/8", "fd12:3456::1", true },
		{ "fd00::/8", "fe00::", false },
		{ "fd00::/8", "fcff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false },
		{ "fd00::/8", "10.1.2.3", false },
		{ "2001:db8:0:1::/64", "2001:db8:0:1::5", true },
		{ "2001:db8::/63", "2001:db8:0:1::5", true },
		{ "2001:db8::/63", "2001:db8:0:2::", false },
		{ "::1", "::1", true },
		{ "::1", "::2", false },
		{ "::1", "127.0.0.1", false },
		/* Mapped against IPv4, both ways. */
		{ "10.0.0.0/8", "::ffff:10.1.2.3", true },
		{ "10.0.0.0/8", "::ffff:11.1.2.3", false },
		{ "::ffff:10.0.0.0/104", "10.1.2.3", true },
		{ "::ffff:10.0.0.0/104", "::ffff:10.1.2.3", true },
		{ "::ffff:10.0.0.0/104", "11.1.2.3", false },
		{ "::ffff:127.0.0.1", "127.0.0.1", true },
		/* The compatible form is not the mapped one. */
		{ "10.0.0.0/8", "::10.1.2.3", false },
		/* /0 is the whole of its family. */
		{ "0.0.0.0/0", "8.8.8.8", true },
		{ "0.0.0.0/0", "255.255.255.255", true },
		{ "0.0.0.0/0", "::ffff:1.2.3.4", true },
		{ "0.0.0.0/0", "2001:db8::1", false },
		{ "::/0", "2001:db8::1", true },
		{ "::/0", "ff02::1", true },
		{ "::/0", "1.2.3.4", false },
		{ "::/0", "::ffff:1.2.3.4", false },
		{ "::ffff:0:0/96", "1.2.3.4", true },
	};
	for (size_t i = 0; i < COUNT(cases); i++) {
		fh_cidr c;
		struct sockaddr_storage ss;
		if (flaghook__cidr_parse(cases[i].cidr, &c, "case") != 0)
			fail_msg("%s: %s", cases[i].cidr, flaghook_last_error());
		size_t len = make_sa(&ss, cases[i].addr);
		if (flaghook__cidr_match(&c, (struct sockaddr *)&ss, len) != cases[i].want)
			fail_msg("%s in %s: want %s", cases[i].addr, cases[i].cidr,
			         cases[i].want ? "match" : "no match");
	}

	fh_cidr c;
	struct sockaddr_storage ss;
	size_t len = make_sa(&ss, "10.1.2.3");
	assert_int_equal(flaghook__cidr_parse("10.0.0.0/8", &c, "x"), 0);
	assert_false(flaghook__cidr_match(NULL, (struct sockaddr *)&ss, len));
	assert_false(flaghook__cidr_match(&c, NULL, len));
	assert_false(flaghook__cidr_match(&c, (struct sockaddr *)&ss, len - 1));
	/* A hand-made entry with an impossible prefix matches nothing. */
	c.prefix = 33;
	assert_false(flaghook__cidr_match(&c, (struct sockaddr *)&ss, len));
	c.prefix = -1;
	assert_false(flaghook__cidr_match(&c, (struct sockaddr *)&ss, len));
}

typedef struct check_case {
	const char *addr;
	fh_addr_class want;
} check_case;

static void run_checks(const fh_guard_policy *p, const check_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		size_t len = make_sa(&ss, cases[i].addr);
		fh_addr_class got = flaghook__guard_check(p, (struct sockaddr *)&ss, len);
		if (got != cases[i].want)
			fail_msg("%s: got %s, want %s", cases[i].addr, flaghook__addr_class_name(got),
			         flaghook__addr_class_name(cases[i].want));
	}
}

static void test_guard_allow_private(void **state)
{
	(void)state;
	fh_guard_policy p = { true, NULL, 0 };
	static const check_case cases[] = {
		{ "10.0.0.1", FH_ADDR_PUBLIC }, { "127.0.0.1", FH_ADDR_PUBLIC },
		{ "::1", FH_ADDR_PUBLIC }, { "169.254.169.254", FH_ADDR_PUBLIC },
		{ "fe80::1", FH_ADDR_PUBLIC }, { "fd00::1", FH_ADDR_PUBLIC },
		{ "100.64.0.1", FH_ADDR_PUBLIC }, { "192.0.2.1", FH_ADDR_PUBLIC },
		{ "198.18.0.1", FH_ADDR_PUBLIC }, { "240.0.0.1", FH_ADDR_PUBLIC },
		{ "::ffff:192.168.0.1", FH_ADDR_PUBLIC }, { "8.8.8.8", FH_ADDR_PUBLIC },
		{ "224.0.0.1", FH_ADDR_MULTICAST }, { "ff02::1", FH_ADDR_MULTICAST },
		{ "::ffff:239.255.255.250", FH_ADDR_MULTICAST },
		{ "0.0.0.0", FH_ADDR_UNSPECIFIED }, { "::", FH_ADDR_UNSPECIFIED },
		{ "0.1.2.3", FH_ADDR_UNSPECIFIED }, { "::ffff:0.0.0.0", FH_ADDR_UNSPECIFIED },
		{ "64:ff9b::", FH_ADDR_UNSPECIFIED },
	};
	run_checks(&p, cases, COUNT(cases));
}

static void test_guard_allow_list(void **state)
{
	(void)state;
	fh_cidr allow[3];
	assert_int_equal(flaghook__cidr_parse("203.0.113.0/24", &allow[0], "allow_cidrs[0]"), 0);
	assert_int_equal(flaghook__cidr_parse("fd00:1::/32", &allow[1], "allow_cidrs[1]"), 0);
	assert_int_equal(flaghook__cidr_parse("127.0.0.1/32", &allow[2], "allow_cidrs[2]"), 0);
	fh_guard_policy p = { false, allow, 3 };
	static const check_case cases[] = {
		/* One /32 of loopback, and nothing next to it. */
		{ "127.0.0.1", FH_ADDR_PUBLIC }, { "::ffff:127.0.0.1", FH_ADDR_PUBLIC },
		{ "127.0.0.0", FH_ADDR_LOOPBACK }, { "127.0.0.2", FH_ADDR_LOOPBACK },
		{ "::1", FH_ADDR_LOOPBACK }, { "::127.0.0.1", FH_ADDR_LOOPBACK },
		{ "64:ff9b::7f00:1", FH_ADDR_LOOPBACK },
		{ "203.0.113.9", FH_ADDR_PUBLIC }, { "203.0.114.0", FH_ADDR_PUBLIC },
		{ "203.0.112.255", FH_ADDR_PUBLIC }, { "198.51.100.1", FH_ADDR_DOCUMENTATION },
		{ "fd00:1:2::3", FH_ADDR_PUBLIC }, { "fd00:2::3", FH_ADDR_UNIQUE_LOCAL },
		{ "10.0.0.1", FH_ADDR_PRIVATE }, { "169.254.169.254", FH_ADDR_LINK_LOCAL },
		{ "8.8.8.8", FH_ADDR_PUBLIC },
	};
	run_checks(&p, cases, COUNT(cases));

	/* An entry overrides any class, multicast and unspecified included. */
	fh_cidr mc[2];
	assert_int_equal(flaghook__cidr_parse("224.0.0.0/4", &mc[0], "m"), 0);
	assert_int_equal(flaghook__cidr_parse("0.0.0.0/32", &mc[1], "u"), 0);
	fh_guard_policy pm = { true, mc, 2 };
	static const check_case mcases[] = {
		{ "224.0.0.1", FH_ADDR_PUBLIC }, { "0.0.0.0", FH_ADDR_PUBLIC },
		{ "0.0.0.1", FH_ADDR_UNSPECIFIED }, { "ff02::1", FH_ADDR_MULTICAST },
		{ "10.0.0.1", FH_ADDR_PUBLIC },
	};
	run_checks(&pm, mcases, COUNT(mcases));

	/* A count without a list is no list. */
	fh_guard_policy broken = { false, NULL, 5 };
	static const check_case bcases[] = { { "127.0.0.1", FH_ADDR_LOOPBACK }, { "1.1.1.1", FH_ADDR_PUBLIC } };
	run_checks(&broken, bcases, COUNT(bcases));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_public),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_embedded_agree),
		cmocka_unit_test(test_not_inet),
		cmocka_unit_test(test_class_names),
		cmocka_unit_test(test_localhost),
		cmocka_unit_test(test_cidr_parse_good),
		cmocka_unit_test(test_cidr_parse_bad),
		cmocka_unit_test(test_cidr_match),
		cmocka_unit_test(test_guard_allow_private),
		cmocka_unit_test(test_guard_allow_list),
	};
	return cmocka_run_group_tests_name("guard", tests, NULL, NULL);
}
