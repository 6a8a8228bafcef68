/*
 * The default transport: libcurl.  Easy handles are pooled and reused, so a
 * connection to a receiver stays open between deliveries; a share handle
 * gives every easy handle the same DNS cache and connection pool.
 */
#include "internal.h"

#include <curl/curl.h>

#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct curl_transport {
	const flaghook_allocator *allocator;
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	pthread_mutex_t pool_lock;
	CURL **pool;                /* idle easy handles */
	size_t pool_count, pool_cap;
	char *ca_file;
} curl_transport;

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
	(void)h; (void)access;
	pthread_mutex_lock(&((curl_transport *)ud)->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
	(void)h;
	pthread_mutex_unlock(&((curl_transport *)ud)->share_locks[data]);
}

/* Per-request sink for the reply. */
typedef struct sink {
	flaghook_response *resp;
	bool capped;                /* we stopped reading on purpose */
} sink;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	sink *s = ud;
	size_t len = size * n;
	flaghook_response *r = s->resp;
	size_t room = r->body_size > r->body_len ? r->body_size - r->body_len : 0;
	if (len > room) {
		/* Past the cap: keep what fits and stop the transfer.  The status
		 * line has arrived, so the attempt is still judged by it. */
		if (room)
			memcpy(r->body + r->body_len, p, room);
		r->body_len += room;
		s->capped = true;
		return 0;
	}
	memcpy(r->body + r->body_len, p, len);
	r->body_len += len;
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	sink *s = ud;
	size_t len = size * n;
	static const char name[] = "retry-after:";
	if (len > sizeof(name) - 1 && !strncasecmp(p, name, sizeof(name) - 1)) {
		const char *v = p + sizeof(name) - 1;
		const char *end = p + len;
		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
			end--;
		size_t vl = (size_t)(end - v);
		if (vl >= sizeof(s->resp->retry_after))
			vl = sizeof(s->resp->retry_after) - 1;
		memcpy(s->resp->retry_after, v, vl);
		s->resp->retry_after[vl] = '\0';
	}
	return len;
}

/* Lets a shutting-down client stop a transfer that is in progress. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	(void)dltotal; (void)dlnow; (void)ultotal; (void)ulnow;
	const flaghook_request *req = ud;
	return req->cancelled(req->cancel_ctx) ? 1 : 0;
}

static CURL *handle_new(curl_transport *t)
{
	CURL *h = curl_easy_init();
	if (!h)
		return NULL;
	/* Set once: what never changes between requests. */
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_SHARE, t->share);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	if (t->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, t->ca_file);
	return h;
}

static void handle_cleanup(curl_transport *t, CURL *h)
{
	char *url = NULL;
	curl_easy_getinfo(h, CURLINFO_PRIVATE, &url);
	flaghook__free_secret(t->allocator, url); /* it may carry credentials */
	curl_easy_cleanup(h);
}

static CURL *handle_take(curl_transport *t)
{
	CURL *h = NULL;
	pthread_mutex_lock(&t->pool_lock);
	if (t->pool_count)
		h = t->pool[--t->pool_count];
	pthread_mutex_unlock(&t->pool_lock);
	return h ? h : handle_new(t);
}

static void handle_give(curl_transport *t, CURL *h)
{
	pthread_mutex_lock(&t->pool_lock);
	if (t->pool_count == t->pool_cap) {
		size_t cap = t->pool_cap ? t->pool_cap * 2 : 4;
		CURL **grown = flaghook__realloc(t->allocator, t->pool, cap * sizeof(*grown));
		if (grown) {
			t->pool = grown;
			t->pool_cap = cap;
		}
	}
	if (t->pool_count < t->pool_cap) {
		t->pool[t->pool_count++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&t->pool_lock);
	if (h)
		handle_cleanup(t, h);
}

static int32_t classify(CURLcode cc)
{
	switch (cc) {
	case CURLE_OK: return FLAGHOOK_ERRCLASS_NONE;
	case CURLE_COULDNT_CONNECT: return FLAGHOOK_ERRCLASS_CONNECT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY: return FLAGHOOK_ERRCLASS_DNS;
	case CURLE_OPERATION_TIMEDOUT: return FLAGHOOK_ERRCLASS_TIMEOUT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS: return FLAGHOOK_ERRCLASS_TLS;
	case CURLE_SEND_ERROR: return FLAGHOOK_ERRCLASS_SEND;
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE: return FLAGHOOK_ERRCLASS_RECV;
	default: return FLAGHOOK_ERRCLASS_OTHER;
	}
}

static int curl_send(const flaghook_request *req, flaghook_response *resp, void *ud)
{
	curl_transport *t = ud;
	CURL *h = handle_take(t);
	if (!h) {
		snprintf(resp->error, resp->error_size, "curl_easy_init failed");
		return FLAGHOOK_ETRANSPORT;
	}
	struct curl_slist *headers = NULL, *grown;
	char line[1024];
	/* No "Expect: 100-continue" round trip for larger bodies. */
	headers = curl_slist_append(NULL, "Expect:");
	for (size_t i = 0; headers && i < req->header_count; i++) {
		snprintf(line, sizeof(line), "%s: %s", req->headers[i].name, req->headers[i].value);
		grown = curl_slist_append(headers, line);
		if (!grown) {
			curl_slist_free_all(headers);
			headers = NULL;
		}
		headers = grown;
	}
	flaghook__wipe(line, sizeof(line)); /* it held a signature */
	if (!headers) {
		handle_give(t, h);
		snprintf(resp->error, resp->error_size, "out of memory");
		return FLAGHOOK_ENOMEM;
	}
	char errbuf[CURL_ERROR_SIZE];
	errbuf[0] = '\0';
	sink s = { resp, false };
	/* Deliveries to one receiver reuse a handle: parse its URL once. */
	char *last_url = NULL;
	curl_easy_getinfo(h, CURLINFO_PRIVATE, &last_url);
	if (!last_url || strcmp(last_url, req->url)) {
		char *copy = flaghook__strdup(t->allocator, req->url);
		curl_easy_setopt(h, CURLOPT_URL, req->url);
		curl_easy_setopt(h, CURLOPT_PRIVATE, copy);
		flaghook__free_secret(t->allocator, last_url);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)req->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &s);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	if (req->version >= 1 && req->cancelled) {
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)req);
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	} else {
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 1L);
	}

	CURLcode cc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (cc == CURLE_WRITE_ERROR && s.capped)
		cc = CURLE_OK;
	resp->status = cc == CURLE_OK ? (int32_t)status : 0;
	resp->errclass = classify(cc);
	if (cc != CURLE_OK)
		snprintf(resp->error, resp->error_size, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));

	/* The handle goes back clean of this request's pointers. */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, NULL);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, NULL);
	curl_slist_free_all(headers);
	handle_give(t, h);
	return 0;
}

static void curl_destroy(void *ud)
{
	curl_transport *t = ud;
	if (!t)
		return;
	for (size_t i = 0; i < t->pool_count; i++)
		handle_cleanup(t, t->pool[i]);
	flaghook__free(t->allocator, t->pool);
	if (t->share)
		curl_share_cleanup(t->share);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&t->share_locks[i]);
	pthread_mutex_destroy(&t->pool_lock);
	flaghook__free(t->allocator, t->ca_file);
	flaghook__free(t->allocator, t);
}

int flaghook__transport_curl(flaghook_transport *out, const flaghook_allocator *a, const char *ca_file)
{
	/* A CA file that is not there fails every delivery later ("error
	 * setting certificate file"): say so now, once. */
	if (ca_file) {
		struct stat st;
		const char *why = NULL;
		if (stat(ca_file, &st) != 0)
			why = strerror(errno);
		else if (!S_ISREG(st.st_mode))
			why = "not a regular file";
		else if (access(ca_file, R_OK) != 0)
			why = strerror(errno);
		if (why)
			return flaghook__error(FLAGHOOK_EINVAL, "ca_file %s: %s", ca_file, why);
	}
	curl_transport *t = flaghook__calloc(a, 1, sizeof(*t));
	if (!t)
		return flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
	t->allocator = a;
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&t->share_locks[i], NULL);
	pthread_mutex_init(&t->pool_lock, NULL);
	t->share = curl_share_init();
	if (ca_file)
		t->ca_file = flaghook__strdup(a, ca_file);
	if (!t->share || (ca_file && !t->ca_file)) {
		curl_destroy(t);
		return flaghook__error(FLAGHOOK_ETRANSPORT, "could not set up libcurl");
	}
	curl_share_setopt(t->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(t->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(t->share, CURLSHOPT_USERDATA, t);
	curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	out->version = FLAGHOOK_TRANSPORT_VERSION;
	out->send = curl_send;
	out->destroy = curl_destroy;
	out->user_data = t;
	return 0;
}

const char *flaghook_errclass_name(int errclass)
{
	switch (errclass) {
	case FLAGHOOK_ERRCLASS_NONE: return "none";
	case FLAGHOOK_ERRCLASS_CONNECT: return "connect";
	case FLAGHOOK_ERRCLASS_TIMEOUT: return "timeout";
	case FLAGHOOK_ERRCLASS_DNS: return "dns";
	case FLAGHOOK_ERRCLASS_TLS: return "tls";
	case FLAGHOOK_ERRCLASS_SEND: return "send";
	case FLAGHOOK_ERRCLASS_RECV: return "recv";
	case FLAGHOOK_ERRCLASS_HTTP: return "http";
	case FLAGHOOK_ERRCLASS_OTHER: return "other";
	default: return "unknown";
	}
}
