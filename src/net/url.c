/* Webhook URLs: see url.h. */
#include "net/url.h"
#include "internal.h"

#include <curl/curl.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* A part of the parsed URL, decoded when asked; NULL when absent. */
static char *part(CURLU *u, CURLUPart which, unsigned flags)
{
	char *v = NULL;
	if (curl_url_get(u, which, &v, flags) != CURLUE_OK)
		return NULL;
	return v;
}

/* Wipes and frees a part that may hold a credential. */
static void part_free(char *v)
{
	if (v) {
		flaghook__wipe(v, strlen(v));
		curl_free(v);
	}
}

int flaghook__url_parse(const char *url, fh_url *out)
{
	if (!url)
		return flaghook__error(FLAGHOOK_EURL, "endpoint url is NULL");
	size_t len = strlen(url);
	if (len > FH_URL_MAX)
		return flaghook__error(FLAGHOOK_EURL, "endpoint url is longer than %d bytes", FH_URL_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)url[i];
		if (c <= 0x20 || c == 0x7f)
			return flaghook__error(FLAGHOOK_EURL,
			                       "endpoint url has a control character or space at byte %zu", i);
	}
	size_t skip;
	if (!strncasecmp(url, "http://", 7))
		skip = 7;
	else if (!strncasecmp(url, "https://", 8))
		skip = 8;
	else
		return flaghook__error(FLAGHOOK_EURL, "endpoint url must start with http:// or https://");
	/* libcurl reads "http:///x" as host "x"; we do not guess. */
	if (url[skip] == '/' || url[skip] == '?' || url[skip] == '#' || url[skip] == '\0')
		return flaghook__error(FLAGHOOK_EURL, "endpoint url has no host");

	CURLU *u = curl_url();
	if (!u)
		return flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
	int rc = 0;
	CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
	char *host = NULL, *port = NULL, *user = NULL, *password = NULL, *options = NULL;
	if (uc != CURLUE_OK) {
		/* libcurl's own words, which never quote the URL. */
		rc = flaghook__error(uc == CURLUE_OUT_OF_MEMORY ? FLAGHOOK_ENOMEM : FLAGHOOK_EURL,
		                     "endpoint url is not one libcurl accepts: %s", curl_url_strerror(uc));
		goto done;
	}
	host = part(u, CURLUPART_HOST, 0);
	port = part(u, CURLUPART_PORT, CURLU_DEFAULT_PORT);
	/* Userinfo as libcurl will send it, decoded.  libcurl refuses to decode
	 * what would hold a control character: a part that is there raw but
	 * will not decode is refused too. */
	static const CURLUPart userinfo[] = { CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_OPTIONS };
	char **decoded[] = { &user, &password, &options };
	for (int i = 0; i < 3; i++) {
		char *raw = part(u, userinfo[i], 0);
		*decoded[i] = part(u, userinfo[i], CURLU_URLDECODE);
		int undecodable = raw && !*decoded[i];
		part_free(raw);
		if (undecodable) {
			rc = flaghook__error(FLAGHOOK_EURL,
			                     "endpoint url's user information has a control character");
			goto done;
		}
	}
	if (!host || !host[0] || (host[0] == '[' && host[1] == ']')) {
		rc = flaghook__error(FLAGHOOK_EURL, "endpoint url has no host");
		goto done;
	}
	if (strlen(host) >= sizeof(out->host)) {
		rc = flaghook__error(FLAGHOOK_EURL, "endpoint url's host is longer than %zu bytes",
		                     sizeof(out->host) - 1);
		goto done;
	}
	char *end = NULL;
	long p = port ? strtol(port, &end, 10) : 0;
	if (!port || *end || p < 1 || p > 65535) {
		rc = flaghook__error(FLAGHOOK_EURL, "endpoint url's port must be 1 to 65535");
		goto done;
	}
	if ((user && has_control(user)) || (password && has_control(password)) ||
	    (options && has_control(options))) {
		rc = flaghook__error(FLAGHOOK_EURL, "endpoint url's user information has a control character");
		goto done;
	}
	if (out) {
		out->https = !strncasecmp(url, "https", 5);
		strcpy(out->host, host);
		out->port = (int)p;
		out->has_userinfo = user || password || options;
	}
done:
	curl_free(host);
	curl_free(port);
	part_free(user);
	part_free(password);
	part_free(options);
	curl_url_cleanup(u);
	return rc;
}

/* ---- the proxy ---- */

static int proxy_copy(const flaghook_allocator *a, char **to, const char *from)
{
	if (!from || !from[0])
		return 0;
	*to = flaghook__strdup(a, from);
	return *to ? 0 : flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
}

int flaghook__proxy_parse(const char *proxy, fh_proxy *out, const flaghook_allocator *a)
{
	if (out)
		memset(out, 0, sizeof(*out));
	if (!proxy || !proxy[0])
		return flaghook__error(FLAGHOOK_EINVAL, "proxy is empty: NULL means none");
	for (const char *p = proxy; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return flaghook__error(FLAGHOOK_EINVAL, "proxy has a space or control character");
	static const char *const schemes[] = { "http", "https", "socks4", "socks4a", "socks5", "socks5h", NULL };
	const char *colon = strstr(proxy, "://");
	bool known = false;
	for (size_t i = 0; colon && schemes[i]; i++)
		known |= (size_t)(colon - proxy) == strlen(schemes[i]) && !strncasecmp(proxy, schemes[i], strlen(schemes[i]));
	if (!known)
		return flaghook__error(FLAGHOOK_EINVAL, "proxy must start with http://, https://, socks4://, socks4a://, "
		                                        "socks5:// or socks5h://");
	CURLU *u = curl_url();
	if (!u)
		return flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
	char *host = NULL, *user = NULL, *password = NULL, *bare = NULL;
	int rc = 0;
	CURLUcode uc = curl_url_set(u, CURLUPART_URL, proxy, CURLU_NON_SUPPORT_SCHEME);
	if (uc != CURLUE_OK) {
		rc = flaghook__error(uc == CURLUE_OUT_OF_MEMORY ? FLAGHOOK_ENOMEM : FLAGHOOK_EINVAL,
		                     "proxy is not a URL libcurl accepts: %s", curl_url_strerror(uc));
		goto done;
	}
	host = part(u, CURLUPART_HOST, 0);
	if (!host || !host[0] || (host[0] == '[' && host[1] == ']')) {
		rc = flaghook__error(FLAGHOOK_EINVAL, "proxy has no host");
		goto done;
	}
	user = part(u, CURLUPART_USER, CURLU_URLDECODE);
	password = part(u, CURLUPART_PASSWORD, CURLU_URLDECODE);
	if ((user && has_control(user)) || (password && has_control(password))) {
		rc = flaghook__error(FLAGHOOK_EINVAL, "proxy's user information has a control character");
		goto done;
	}
	/* The same URL without them: what libcurl is handed, and may quote. */
	if (curl_url_set(u, CURLUPART_USER, NULL, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_OPTIONS, NULL, 0) != CURLUE_OK || !(bare = part(u, CURLUPART_URL, 0))) {
		rc = flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
		goto done;
	}
	if (out && ((rc = proxy_copy(a, &out->url, bare)) || (rc = proxy_copy(a, &out->user, user)) ||
	            (rc = proxy_copy(a, &out->password, password))))
		flaghook__proxy_free(out, a);
done:
	curl_free(host);
	part_free(user);
	part_free(password);
	curl_free(bare);
	curl_url_cleanup(u);
	return rc;
}

void flaghook__proxy_free(fh_proxy *p, const flaghook_allocator *a)
{
	if (!p)
		return;
	flaghook__free(a, p->url);
	flaghook__free_secret(a, p->user);
	flaghook__free_secret(a, p->password);
	memset(p, 0, sizeof(*p));
}
