/*
 * The default transport: every request on one libcurl multi handle, driven
 * through the socket API (CURLMOPT_SOCKETFUNCTION and TIMERFUNCTION) by
 * the client's I/O loop, so one thread (the I/O thread, or the host's in
 * TICK mode) moves thousands of transfers, and connections stay open and
 * are reused between deliveries (HTTP/2 multiplexed where the receiver
 * offers it over TLS).
 *
 * start() runs on an executor thread: it builds the request's header and
 * address lists there, queues it and wakes the loop.  Everything that
 * touches the multi handle runs on the loop's thread.
 *
 * The SSRF guard: every address libcurl is about to connect to passes
 * through open_socket() (CURLOPT_OPENSOCKETFUNCTION) and is refused there
 * unless the client's guard allows it; and a name's transfer is pinned
 * (CURLOPT_RESOLVE) to the addresses the library resolved and vetted
 * before it started, so a resolver that answers differently now (DNS
 * rebinding) is never asked.
 */
#include "plugins/plugins.h"

#include <curl/curl.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define IDLE_HANDLES_MAX 256

typedef struct driver driver;

typedef struct xfer {
	struct xfer *next, *prev;
	driver *d;
	CURL *easy;
	const flaghook_request *req;
	flaghook_response *resp;
	void (*done)(void *ctx);
	void *done_ctx;
	struct curl_slist *headers, *resolve;
	bool capped;                /* we stopped reading on purpose */
	int refused;                /* the guard's class + 1 when it refused a connect */
	int socket_errno;           /* socket() failed: why (EMFILE: out of descriptors) */
	char errbuf[CURL_ERROR_SIZE];
} xfer;

typedef struct sock {
	driver *d;
	curl_socket_t fd;
	fh_watch *w;
} sock;

struct driver {
	const flaghook_allocator *allocator;
	fh_loop *loop;
	const fh_guard *guard;
	CURLM *multi;
	int wake_fd, timer_fd;
	fh_watch *wake_w, *timer_w;
	long http_version;
	const fh_proxy *proxy;      /* the client's, taken apart; NULL: none */
	/* Guarded by lock: what start() queued, and shutdown's cancel. */
	pthread_mutex_t lock;
	xfer *inbox_head, *inbox_tail;
	bool signalled;
	bool cancel;                /* sticky: shutdown ends everything, new ones too */
	/* The loop thread's alone. */
	int64_t timeout_due;        /* libcurl's next timeout (monotonic us), INT64_MAX: none */
	int64_t armed_due;          /* what timer_fd is armed for */
	bool timeout_now;           /* libcurl asked for its timeout at once */
	xfer *active;
	CURL **idle;
	size_t nidle;
};

/* ---- the reply ---- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	xfer *x = ud;
	size_t len = size * n;
	flaghook_response *r = x->resp;
	size_t room = r->body_size > r->body_len ? r->body_size - r->body_len : 0;
	if (len > room) {
		/* Past the cap: keep what fits and stop the transfer.  The status
		 * line has arrived, so the attempt is still judged by it. */
		if (room)
			memcpy(r->body + r->body_len, p, room);
		r->body_len += room;
		x->capped = true;
		return 0;
	}
	memcpy(r->body + r->body_len, p, len);
	r->body_len += len;
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	xfer *x = ud;
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
		if (vl >= sizeof(x->resp->retry_after))
			vl = sizeof(x->resp->retry_after) - 1;
		memcpy(x->resp->retry_after, v, vl);
		x->resp->retry_after[vl] = '\0';
	}
	return len;
}

/* The guard, at connect time: every address, every connection. */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	xfer *x = clientp;
	const fh_guard *g = x->d->guard;
	if (purpose == CURLSOCKTYPE_IPCXN && g && g->on) {
		fh_addr_class cls = flaghook__guard_check(&g->policy, &a->addr, a->addrlen);
		if (cls != FH_ADDR_PUBLIC) {
			x->refused = (int)cls + 1;
			return CURL_SOCKET_BAD;
		}
	}
	curl_socket_t fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	if (fd == CURL_SOCKET_BAD)
		x->socket_errno = errno;
	return fd;
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

/* ---- transfers: set up, finished ---- */

/* Frees a list whose lines held a signature, wiping them first. */
static void free_lines(struct curl_slist *l)
{
	for (struct curl_slist *p = l; p; p = p->next)
		if (p->data)
			flaghook__wipe(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

static void xfer_free(driver *d, xfer *x)
{
	free_lines(x->headers);
	curl_slist_free_all(x->resolve);
	flaghook__free(d->allocator, x);
}

/* The transfer is over: the response says how; the caller is told. */
static void complete(driver *d, xfer *x, CURLcode cc, const char *why)
{
	flaghook_response *r = x->resp;
	long status = 0;
	if (x->easy) {
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
		/* The handle goes back clean of this request's pointers. */
		curl_easy_reset(x->easy);
		if (d->nidle < IDLE_HANDLES_MAX)
			d->idle[d->nidle++] = x->easy;
		else
			curl_easy_cleanup(x->easy);
		x->easy = NULL;
	}
	if (cc == CURLE_WRITE_ERROR && x->capped)
		cc = CURLE_OK;
	r->status = cc == CURLE_OK ? (int32_t)status : 0;
	r->errclass = classify(cc);
	if (x->refused) {
		/* Never the URL or the address itself: its class. */
		r->errclass = FLAGHOOK_ERRCLASS_REFUSED;
		snprintf(r->error, r->error_size, "refused: the address is a%s %s address, which this client may "
		         "not connect to", strchr("aeiou", flaghook__addr_class_name((fh_addr_class)(x->refused - 1))[0])
		                               ? "n" : "",
		         flaghook__addr_class_name((fh_addr_class)(x->refused - 1)));
	} else if (x->socket_errno && cc != CURLE_OK) {
		/* libcurl would say "could not connect"; the cause is ours. */
		snprintf(r->error, r->error_size, "could not make a socket: %s%s", strerror(x->socket_errno),
		         x->socket_errno == EMFILE || x->socket_errno == ENFILE
		             ? " (each transfer needs a descriptor: raise the open-files limit or lower "
		               "max_transfers)" : "");
	} else if (why) {
		snprintf(r->error, r->error_size, "%s", why);
	} else if (cc != CURLE_OK) {
		snprintf(r->error, r->error_size, "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc));
	}
	if (x->prev)
		x->prev->next = x->next;
	else if (d->active == x)
		d->active = x->next;
	if (x->next)
		x->next->prev = x->prev;
	void (*done)(void *) = x->done;
	void *ctx = x->done_ctx;
	xfer_free(d, x);
	done(ctx);
}

static CURL *handle_get(driver *d)
{
	return d->nidle ? d->idle[--d->nidle] : curl_easy_init();
}

static long ssl_version(int32_t min)
{
	return (min >= FLAGHOOK_TLS_1_3 ? CURL_SSLVERSION_TLSv1_3 : CURL_SSLVERSION_TLSv1_2) |
	       CURL_SSLVERSION_MAX_DEFAULT;
}

static bool setup(driver *d, xfer *x)
{
	CURL *h = handle_get(d);
	if (!h)
		return false;
	x->easy = h;
	const flaghook_request *q = x->req;
	curl_easy_setopt(h, CURLOPT_PRIVATE, x);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, x);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(h, CURLOPT_URL, q->url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->headers);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)q->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)q->timeout_ms);
	/* The environment's proxies are never used, nor its no_proxy list,
	 * which would send some hosts around the proxy and so around the
	 * egress filtering the guard leaves to it: only the client's proxy,
	 * for every host.  Its credentials go apart from its URL, so that no
	 * libcurl message quoting the URL can carry them. */
	curl_easy_setopt(h, CURLOPT_NOPROXY, "");
	if (q->proxy && d->proxy) { /* the client's own proxy: the one it hands us */
		curl_easy_setopt(h, CURLOPT_PROXY, d->proxy->url);
		if (d->proxy->user)
			curl_easy_setopt(h, CURLOPT_PROXYUSERNAME, d->proxy->user);
		if (d->proxy->password)
			curl_easy_setopt(h, CURLOPT_PROXYPASSWORD, d->proxy->password);
	} else {
		curl_easy_setopt(h, CURLOPT_PROXY, q->proxy ? q->proxy : "");
	}
	if (x->resolve)
		curl_easy_setopt(h, CURLOPT_RESOLVE, x->resolve);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, ssl_version(q->tls_min_version));
	if (q->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, q->ca_file);
	if (q->ca_path)
		curl_easy_setopt(h, CURLOPT_CAPATH, q->ca_path);
	if (q->client_cert) {
		curl_easy_setopt(h, CURLOPT_SSLCERT, q->client_cert);
		curl_easy_setopt(h, CURLOPT_SSLKEY, q->client_key);
		if (q->client_key_password)
			curl_easy_setopt(h, CURLOPT_KEYPASSWD, q->client_key_password);
	}
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, d->http_version);
	if (d->http_version != CURL_HTTP_VERSION_1_1 && !strncasecmp(q->url, "https:", 6))
		curl_easy_setopt(h, CURLOPT_PIPEWAIT, 1L); /* wait to multiplex on HTTP/2 */
	return true;
}

/* ---- the loop's side ---- */

static void check_done(driver *d);

/* After every handler: libcurl's "timeout 0" runs here, at once, rather
 * than through another round of the loop; then the timer descriptor is
 * armed for what libcurl wants next, only when that moved (libcurl
 * re-states its timeout many times per transfer, and each arming is a
 * system call). */
static void settle(driver *d)
{
	for (int i = 0; d->timeout_now && i < 16; i++) {
		d->timeout_now = false;
		int running;
		curl_multi_socket_action(d->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	check_done(d);
	int64_t want = d->timeout_now ? 0 : d->timeout_due;
	if (want == d->armed_due)
		return;
	/* A timer that fires a little early costs one harmless round. */
	if (want != INT64_MAX && d->armed_due != INT64_MAX && want > d->armed_due && want - d->armed_due < 1000)
		return;
	flaghook__timerfd_arm(d->timer_fd, want);
	d->armed_due = want;
}

static void check_done(driver *d)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(d->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURL *e = m->easy_handle;
		CURLcode cc = m->data.result;
		xfer *x = NULL;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, &x);
		curl_multi_remove_handle(d->multi, e);
		complete(d, x, cc, NULL);
	}
}

static void cancel_all(driver *d)
{
	while (d->active) {
		xfer *x = d->active;
		curl_multi_remove_handle(d->multi, x->easy);
		complete(d, x, CURLE_ABORTED_BY_CALLBACK, "cancelled: the client is shutting down");
	}
}

static void on_wake(void *arg, uint32_t events)
{
	(void)events;
	driver *d = arg;
	flaghook__eventfd_clear(d->wake_fd);
	pthread_mutex_lock(&d->lock);
	xfer *x = d->inbox_head;
	d->inbox_head = d->inbox_tail = NULL;
	d->signalled = false;
	bool cancel = d->cancel;
	pthread_mutex_unlock(&d->lock);
	for (xfer *next; x; x = next) {
		next = x->next;
		x->next = x->prev = NULL;
		if (cancel) {
			complete(d, x, CURLE_ABORTED_BY_CALLBACK, "cancelled: the client is shutting down");
			continue;
		}
		if (!setup(d, x)) {
			complete(d, x, CURLE_OUT_OF_MEMORY, "out of memory for a transfer");
			continue;
		}
		x->next = d->active;
		if (d->active)
			d->active->prev = x;
		d->active = x;
		if (curl_multi_add_handle(d->multi, x->easy) != CURLM_OK)
			complete(d, x, CURLE_OUT_OF_MEMORY, "libcurl would not take the transfer");
	}
	if (cancel)
		cancel_all(d);
	settle(d);
}

static void on_timer(void *arg, uint32_t events)
{
	(void)events;
	driver *d = arg;
	flaghook__timerfd_clear(d->timer_fd);
	d->armed_due = INT64_MAX; /* it fired */
	int running;
	curl_multi_socket_action(d->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	settle(d);
}

static void on_sock_event(void *arg, uint32_t events)
{
	sock *s = arg;
	driver *d = s->d;
	int mask = (events & EPOLLIN ? CURL_CSELECT_IN : 0) | (events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
	           (events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
	int running;
	curl_multi_socket_action(d->multi, s->fd, mask, &running);
	settle(d);
}

/* libcurl says which sockets to watch for what. */
static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
	(void)e;
	driver *d = userp;
	sock *s = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (s) {
			flaghook__loop_unwatch(d->loop, s->w);
			curl_multi_assign(d->multi, fd, NULL);
			flaghook__free(d->allocator, s);
		}
		return 0;
	}
	uint32_t ev = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (s)
		return flaghook__loop_rewatch(d->loop, s->w, ev) ? -1 : 0;
	s = flaghook__calloc(d->allocator, 1, sizeof(*s));
	if (!s)
		return -1;
	s->d = d;
	s->fd = fd;
	if (flaghook__loop_watch(d->loop, fd, ev, on_sock_event, s, &s->w)) {
		flaghook__free(d->allocator, s);
		return -1;
	}
	curl_multi_assign(d->multi, fd, s);
	return 0;
}

/* libcurl says when it wants to be called for its timeouts: noted here,
 * acted on by settle() when the handler that made libcurl say it ends
 * (libcurl calls this only from inside our calls into it). */
static int on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
	(void)m;
	driver *d = userp;
	if (timeout_ms == 0) {
		d->timeout_now = true;
		d->timeout_due = INT64_MAX;
	} else {
		d->timeout_due = timeout_ms < 0 ? INT64_MAX
		                                : flaghook__sat_add(flaghook__mono_us(), (int64_t)timeout_ms * 1000);
	}
	return 0;
}

/* ---- the table ---- */

/* "host:port:addr,addr" for CURLOPT_RESOLVE: the transfer goes only to
 * the addresses the library vetted. */
static struct curl_slist *pin(const flaghook_request *q)
{
	CURLU *u = curl_url();
	char *host = NULL;
	if (!u || curl_url_set(u, CURLUPART_URL, q->url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		curl_url_cleanup(u);
		return NULL;
	}
	char line[1024];
	int len = snprintf(line, sizeof(line), "%s:%d:", host, (int)q->port);
	for (size_t i = 0; i < q->address_count && len > 0 && (size_t)len < sizeof(line); i++) {
		bool v6 = strchr(q->addresses[i], ':') != NULL;
		len += snprintf(line + len, sizeof(line) - (size_t)len, "%s%s%s%s", i ? "," : "", v6 ? "[" : "",
		                q->addresses[i], v6 ? "]" : "");
	}
	curl_free(host);
	curl_url_cleanup(u);
	if (len <= 0 || (size_t)len >= sizeof(line))
		return NULL;
	return curl_slist_append(NULL, line);
}

static int curl_start(const flaghook_request *q, flaghook_response *resp, void (*done)(void *), void *ctx,
                      void *ud)
{
	driver *d = ud;
	xfer *x = flaghook__calloc(d->allocator, 1, sizeof(*x));
	if (!x)
		return FLAGHOOK_ENOMEM;
	x->d = d;
	x->req = q;
	x->resp = resp;
	x->done = done;
	x->done_ctx = ctx;
	/* Built here, on the caller's thread, not on the loop's.  No
	 * "Expect: 100-continue" round trip for larger bodies. */
	char line[1024];
	x->headers = curl_slist_append(NULL, "Expect:");
	for (size_t i = 0; x->headers && i < q->header_count; i++) {
		snprintf(line, sizeof(line), "%s: %s", q->headers[i].name, q->headers[i].value);
		struct curl_slist *grown = curl_slist_append(x->headers, line);
		if (!grown) {
			free_lines(x->headers);
			x->headers = NULL;
		}
		x->headers = grown;
	}
	flaghook__wipe(line, sizeof(line)); /* it held a signature */
	if (x->headers && q->version >= 2 && q->address_count && !(x->resolve = pin(q))) {
		free_lines(x->headers);
		x->headers = NULL;
	}
	if (!x->headers) {
		xfer_free(d, x);
		return FLAGHOOK_ENOMEM;
	}
	pthread_mutex_lock(&d->lock);
	if (d->inbox_tail)
		d->inbox_tail->next = x;
	else
		d->inbox_head = x;
	d->inbox_tail = x;
	bool signal = !d->signalled;
	d->signalled = true;
	/* Under the lock: once it is released, the loop may finish this
	 * transfer and the client free us before a later write landed. */
	if (signal)
		flaghook__eventfd_signal(d->wake_fd);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static void curl_cancel(void *ud)
{
	driver *d = ud;
	pthread_mutex_lock(&d->lock);
	d->cancel = true;
	d->signalled = true;
	flaghook__eventfd_signal(d->wake_fd);
	pthread_mutex_unlock(&d->lock);
}

static void curl_destroy(void *ud)
{
	driver *d = ud;
	if (!d)
		return;
	/* Every transfer has ended (the client waits for that); what remains
	 * are idle connections, which libcurl closes here. */
	if (d->multi)
		curl_multi_cleanup(d->multi);
	for (size_t i = 0; i < d->nidle; i++)
		curl_easy_cleanup(d->idle[i]);
	flaghook__free(d->allocator, d->idle);
	flaghook__loop_unwatch(d->loop, d->wake_w);
	flaghook__loop_unwatch(d->loop, d->timer_w);
	/* A thread that signalled holds the lock until its write is done. */
	pthread_mutex_lock(&d->lock);
	pthread_mutex_unlock(&d->lock);
	if (d->wake_fd >= 0)
		close(d->wake_fd);
	if (d->timer_fd >= 0)
		close(d->timer_fd);
	pthread_mutex_destroy(&d->lock);
	flaghook__free(d->allocator, d);
}

int flaghook__transport_curl(flaghook_transport *out, const fh_curl_config *cfg)
{
	driver *d = flaghook__calloc(cfg->allocator, 1, sizeof(*d));
	if (!d)
		return flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
	d->allocator = cfg->allocator;
	d->loop = cfg->loop;
	d->guard = cfg->guard;
	d->proxy = cfg->proxy;
	d->http_version = cfg->http_version == FLAGHOOK_HTTP_1_1 ? CURL_HTTP_VERSION_1_1 : CURL_HTTP_VERSION_2TLS;
	d->timeout_due = d->armed_due = INT64_MAX;
	pthread_mutex_init(&d->lock, NULL);
	d->wake_fd = flaghook__eventfd_new();
	d->timer_fd = flaghook__timerfd_new();
	d->multi = curl_multi_init();
	d->idle = flaghook__calloc(cfg->allocator, IDLE_HANDLES_MAX, sizeof(*d->idle));
	int rc = 0;
	if (d->wake_fd < 0 || d->timer_fd < 0 || !d->multi || !d->idle)
		rc = flaghook__error(FLAGHOOK_ETRANSPORT, "could not set up libcurl's multi handle");
	if (!rc)
		rc = flaghook__loop_watch(d->loop, d->wake_fd, EPOLLIN, on_wake, d, &d->wake_w);
	if (!rc)
		rc = flaghook__loop_watch(d->loop, d->timer_fd, EPOLLIN, on_timer, d, &d->timer_w);
	if (rc) {
		curl_destroy(d);
		return rc;
	}
	curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(d->multi, CURLMOPT_SOCKETDATA, d);
	curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(d->multi, CURLMOPT_TIMERDATA, d);
	curl_multi_setopt(d->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	if (cfg->max_host_connections > 0)
		curl_multi_setopt(d->multi, CURLMOPT_MAX_HOST_CONNECTIONS, cfg->max_host_connections);
	*out = (flaghook_transport){ .version = FLAGHOOK_TRANSPORT_VERSION,
	                             .start = curl_start,
	                             .cancel = curl_cancel,
	                             .destroy = curl_destroy,
	                             .user_data = d };
	return 0;
}
