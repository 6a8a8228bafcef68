/* The guard's judgement of a host: see resolve.h. */
#include "net/resolve.h"
#include "internal.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* The host as an address, when it is a literal ("[::1]" or "10.0.0.1"). */
static bool literal(const char *host, struct sockaddr_storage *ss, size_t *len)
{
	memset(ss, 0, sizeof(*ss));
	char buf[sizeof(((fh_url *)0)->host)];
	size_t n = strlen(host);
	if (host[0] == '[' && n >= 2 && host[n - 1] == ']') {
		memcpy(buf, host + 1, n - 2);
		buf[n - 2] = '\0';
		char *zone = strchr(buf, '%'); /* fe80::1%eth0: the zone is no part of the class */
		if (zone)
			*zone = '\0';
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		*len = sizeof(*s6);
		return inet_pton(AF_INET6, buf, &s6->sin6_addr) == 1;
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	s4->sin_family = AF_INET;
	*len = sizeof(*s4);
	/* "169.254.169.254." is the same address as a fully qualified name:
	 * judged as the literal it is, not left to the resolver. */
	if (n >= 2 && n < sizeof(buf) && host[n - 1] == '.') {
		memcpy(buf, host, n - 1);
		buf[n - 1] = '\0';
		host = buf;
	}
	return inet_pton(AF_INET, host, &s4->sin_addr) == 1;
}

static int refused(fh_addr_class cls, const char *what)
{
	return flaghook__error(FLAGHOOK_EREFUSED,
	                       "%s is a%s %s address, which this client may not connect to (allow it with "
	                       "allow_private or allow_cidrs)", what,
	                       strchr("aeiou", flaghook__addr_class_name(cls)[0]) ? "n" : "",
	                       flaghook__addr_class_name(cls));
}

int flaghook__guard_host(const fh_guard *g, const fh_url *u, bool *is_name)
{
	*is_name = false;
	struct sockaddr_storage ss;
	size_t len;
	if (literal(u->host, &ss, &len)) {
		if (!g->on)
			return 0;
		fh_addr_class cls = flaghook__guard_check(&g->policy, (struct sockaddr *)&ss, len);
		return cls == FH_ADDR_PUBLIC ? 0 : refused(cls, "the URL's host");
	}
	if (g->on && flaghook__host_is_localhost(u->host)) {
		/* "localhost" is loopback whatever a resolver says; an allow-list
		 * entry for 127.0.0.1 still lets it through once resolved. */
		if (!g->policy.allow_private && !g->policy.allow_count)
			return refused(FH_ADDR_LOOPBACK, "the URL's host (localhost)");
	}
	*is_name = true;
	return 0;
}

int flaghook__resolve_vet(const fh_guard *g, const fh_url *u, fh_addrs *out)
{
	out->count = 0;
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	char port[8];
	snprintf(port, sizeof(port), "%d", u->port);
	int rc = getaddrinfo(u->host, port, &hints, &res);
	if (rc == EAI_ADDRFAMILY || rc == EAI_NONAME) {
		/* AI_ADDRCONFIG hides every address on a host with only
		 * loopback: ask again without it. */
		hints.ai_flags = 0;
		rc = getaddrinfo(u->host, port, &hints, &res);
	}
	if (rc != 0)
		return flaghook__error(FLAGHOOK_ETRANSPORT, "the URL's host does not resolve: %s", gai_strerror(rc));
	int err = 0;
	for (struct addrinfo *a = res; a && !err; a = a->ai_next) {
		if (a->ai_family != AF_INET && a->ai_family != AF_INET6)
			continue;
		if (g->on) {
			/* Any refused address refuses the name: a resolver that mixes
			 * a public address with a private one is not to be trusted. */
			fh_addr_class cls = flaghook__guard_check(&g->policy, a->ai_addr, a->ai_addrlen);
			if (cls != FH_ADDR_PUBLIC) {
				err = refused(cls, "the URL's host resolves to an address that");
				break;
			}
		}
		if (out->count == FH_MAX_ADDRS)
			continue;
		const void *bytes = a->ai_family == AF_INET ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
		                                            : (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
		char text[INET6_ADDRSTRLEN];
		if (!inet_ntop(a->ai_family, bytes, text, sizeof(text)))
			continue;
		bool seen = false;
		for (size_t i = 0; i < out->count && !seen; i++)
			seen = !strcmp(out->text[i], text);
		if (!seen)
			snprintf(out->text[out->count++], sizeof(out->text[0]), "%s", text);
	}
	freeaddrinfo(res);
	if (!err && !out->count)
		err = flaghook__error(FLAGHOOK_ETRANSPORT, "the URL's host has no IPv4 or IPv6 address");
	if (err)
		out->count = 0;
	return err;
}
