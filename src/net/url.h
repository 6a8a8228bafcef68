/* Webhook URLs: the one place a URL is judged acceptable. */
#ifndef FLAGHOOK_URL_H
#define FLAGHOOK_URL_H

#include "flaghook.h"

#include <stdbool.h>
#include <stdint.h>

#define FH_URL_MAX 2048

typedef struct fh_url {
	bool https;
	char host[256];             /* as libcurl normalises it; IPv6 in brackets */
	int port;                   /* the explicit or the scheme's default port */
	bool has_userinfo;          /* credentials in the URL: wipe every copy */
} fh_url;

/*
 * Parses `url` the way libcurl will when it sends (curl_url), and accepts
 * only what it can send: http or https, a host, a port 1..65535, no
 * control character or space anywhere, userinfo included once decoded.
 * FLAGHOOK_EURL with a detail that names the part, never the URL (it may
 * carry credentials).  `out` may be NULL.
 */
int flaghook__url_parse(const char *url, fh_url *out);

/* A proxy URL taken apart: the URL without its credentials (what libcurl
 * may quote in an error) and the credentials, decoded, on their own. */
typedef struct fh_proxy {
	char *url;                  /* scheme://host:port, no user information */
	char *user, *password;      /* NULL when none; wiped when freed */
} fh_proxy;

/*
 * Parses a client's proxy: http, https, socks4, socks4a, socks5 or
 * socks5h, a host, a port.  FLAGHOOK_EINVAL with a detail that never
 * quotes it (it may carry credentials).  `out` may be NULL; otherwise its
 * strings are allocated with `a` and released with flaghook__proxy_free.
 */
int flaghook__proxy_parse(const char *proxy, fh_proxy *out, const flaghook_allocator *a);
void flaghook__proxy_free(fh_proxy *p, const flaghook_allocator *a);

#endif
