/*
 * Test webhook receiver: see httpd.h.
 *
 * Built to hold thousands of connections, also under ThreadSanitizer
 * (whose thread creation costs milliseconds each), so it does not spend a
 * thread per connection:
 *
 *   - one accept thread hands each new connection to one of TH_LOOPS
 *     event-loop threads, and leaves clients in the listen backlog while
 *     max_conns are open;
 *   - an event loop (epoll, level-triggered) runs each connection as a
 *     small state machine over non-blocking sockets and non-blocking
 *     mbedTLS: handshake, read a request, reply (after a delay from its
 *     timer heap), then the next request or the end;
 *   - handlers run on a pool of worker threads that grows while every
 *     worker is busy, so a handler that blocks for a while (a lock, a
 *     short sleep) holds up neither the loop nor other connections, and
 *     handlers of different connections still run concurrently.
 *
 * Every loop and the acceptor also watch a "stop pipe": th_stop writes one
 * byte to it and never reads it, so the pipe stays readable and they all
 * return at once.  That is what lets TH_HANG, delays and idle keep-alive
 * connections end promptly.
 *
 * SPDX-License-Identifier: MIT
 */
#include "httpd.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#define TH_MAX_HEAD    (64 * 1024)
#define TH_MAX_BODY    (16 * 1024 * 1024)
#define TH_BACKLOG     4096  /* the kernel caps it at net.core.somaxconn */
#define TH_LOOPS       4     /* event-loop threads: TLS handshakes use CPU */
#define TH_MAX_WORKERS 256   /* handler threads at most; then they queue */

typedef struct conn conn;

/* One event-loop thread and the connections it runs. */
typedef struct loop {
	struct th_server *s;
	pthread_t tid;
	int started;
	int ep;                      /* epoll */
	int wake;                    /* eventfd: inbox or ready has news */
	pthread_mutex_t mu;          /* guards inbox and ready */
	conn *inbox;                 /* new connections from the acceptor */
	conn *ready;                 /* connections whose handler returned */
	/* Loop thread only: */
	conn *conns;                 /* all of them, for shutdown */
	conn **heap;                 /* delayed replies, earliest first */
	size_t nheap, heap_cap;
} loop;

struct th_server {
	int lfd, port;
	int stop_pipe[2];
	pthread_t acceptor;
	int acceptor_started;
	th_handler handler;
	void *ud;
	loop loops[TH_LOOPS];

	/* TLS: the config, certificates, key and DRBG are shared by all
	 * connections; Debian's mbedTLS has MBEDTLS_THREADING_C, which locks
	 * the DRBG and RSA blinding internally. */
	int tls;
	mbedtls_ssl_config conf;
	mbedtls_x509_crt cert;
	mbedtls_x509_crt client_ca;  /* mutual TLS; empty otherwise */
	mbedtls_pk_context key;
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_ecp_group_id curves[32];  /* ECDHE preference, NONE-terminated */

	pthread_mutex_t mu;          /* guards everything below */
	pthread_cond_t rec_cv;       /* a request was recorded */
	pthread_cond_t slot_cv;      /* a connection ended */
	pthread_cond_t job_cv;       /* a handler call is queued */
	int stopping;
	size_t active;               /* connections open */
	size_t max_conns;
	size_t conns;
	conn *jobs, *jobs_tail;      /* handler calls waiting for a worker */
	pthread_t *workers;
	size_t nworkers, workers_cap, idle, starting;
	th_request **reqs;
	size_t nreqs, reqs_cap;
	th_reply *script;            /* strings strdup'd, freed by th_stop */
	size_t script_n, script_pos, script_cap;
};

typedef struct head_info {
	long long clen;              /* -1: no Content-Length */
	int chunked, expect_continue, close, keep_alive;
} head_info;

enum cstate {
	C_HANDSHAKE,                 /* TLS handshake */
	C_READ,                      /* reading a request */
	C_HANDLER,                   /* on the job queue or a worker */
	C_DELAY,                     /* in the timer heap */
	C_WRITE,                     /* sending out[], then doing `after` */
	C_HANG                       /* TH_HANG: discarding input */
};

/* How a connection ends, or (AFTER_READ) goes on after a write. */
enum { END_CLOSE, END_QUIET, END_RESET, AFTER_READ };

struct conn {
	th_server *s;
	loop *l;
	conn *prev, *next;           /* l->conns */
	conn *link;                  /* on an inbox, ready or job list */
	int fd, id;
	enum cstate state;
	uint32_t events;             /* epoll interest; 0: not registered */
	int tls_up;                  /* handshake done: close_notify makes sense */
	char client_cn[sizeof ((th_request *)0)->client_cn];
	mbedtls_ssl_context ssl;
	char *buf;                   /* received, not yet consumed (pipelining) */
	size_t len, cap;
	/* The request being read (hlen != 0 once its head is parsed) ... */
	th_request *rq;
	head_info hi;
	size_t hlen, need;
	/* ... and its answer. */
	th_reply reply;
	int closing;
	long long due_ms;            /* C_DELAY */
	char *out;                   /* C_WRITE */
	size_t out_len, out_off;
	int after;
};

/* ------------------------------------------------------------------ */
/* Non-blocking I/O                                                    */

#define IO_AGAIN_READ  (-2)
#define IO_AGAIN_WRITE (-3)

static long long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/*
 * Wait for ev on fd (fd < 0: just sleep) or the stop pipe: the acceptor's
 * waits.  timeout_ms < 0 waits forever.  1: ready (or error/hangup, which
 * the next call reports), 0: timed out, -1: the server is stopping.
 */
static int wait_fd(th_server *s, int fd, short ev, int timeout_ms)
{
	struct pollfd p[2] = { { fd, ev, 0 }, { s->stop_pipe[0], POLLIN, 0 } };
	for (;;) {
		int r = poll(p, 2, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || p[1].revents)
			return -1;
		return r > 0;
	}
}

/* >0 bytes, 0 on EOF, IO_AGAIN_READ, or -1. */
static long raw_recv(conn *c, void *b, size_t n)
{
	for (;;) {
		ssize_t r = recv(c->fd, b, n, MSG_DONTWAIT);
		if (r >= 0)
			return (long)r;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return IO_AGAIN_READ;
		if (errno != EINTR)
			return -1;
	}
}

/* >0 bytes, IO_AGAIN_WRITE, or -1. */
static long raw_send(conn *c, const void *b, size_t n)
{
	for (;;) {
		ssize_t r = send(c->fd, b, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r >= 0)
			return (long)r;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return IO_AGAIN_WRITE;
		if (errno != EINTR)
			return -1;
	}
}

/* mbedTLS BIO callbacks over the non-blocking socket. */
static int bio_recv(void *ctx, unsigned char *b, size_t n)
{
	long r = raw_recv(ctx, b, n);
	return r == IO_AGAIN_READ ? MBEDTLS_ERR_SSL_WANT_READ :
	       r < 0 ? MBEDTLS_ERR_NET_RECV_FAILED : (int)r;
}

static int bio_send(void *ctx, const unsigned char *b, size_t n)
{
	long r = raw_send(ctx, b, n);
	return r == IO_AGAIN_WRITE ? MBEDTLS_ERR_SSL_WANT_WRITE :
	       r < 0 ? MBEDTLS_ERR_NET_SEND_FAILED : (int)r;
}

static long tls_result(int r)
{
	if (r >= 0)
		return r;
	if (r == MBEDTLS_ERR_SSL_WANT_READ)
		return IO_AGAIN_READ;
	if (r == MBEDTLS_ERR_SSL_WANT_WRITE)
		return IO_AGAIN_WRITE;
	if (r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
		return 0;
	return -1;
}

/* >0 bytes, 0 on EOF, IO_AGAIN_*, or -1. */
static long conn_read(conn *c, void *b, size_t n)
{
	if (!c->tls_up)
		return raw_recv(c, b, n);
	return tls_result(mbedtls_ssl_read(&c->ssl, b, n));
}

/* >0 bytes taken, IO_AGAIN_*, or -1.  After IO_AGAIN_*, mbedTLS wants the
 * same bytes offered again, which C_WRITE does. */
static long conn_write(conn *c, const char *b, size_t n)
{
	if (!c->tls_up)
		return raw_send(c, b, n);
	long r = tls_result(mbedtls_ssl_write(&c->ssl, (const unsigned char *)b, n));
	return r == 0 ? -1 : r;
}

/* Read more into c->buf, keeping it NUL-terminated.  As conn_read. */
static long conn_fill(conn *c)
{
	if (c->cap - c->len < 4096 + 1) {
		size_t cap = c->cap ? c->cap * 2 : 16384;
		char *nb = realloc(c->buf, cap);
		if (!nb)
			return -1;
		c->buf = nb;
		c->cap = cap;
	}
	long r = conn_read(c, c->buf + c->len, c->cap - c->len - 1);
	if (r > 0) {
		c->len += (size_t)r;
		c->buf[c->len] = 0;
	}
	return r;
}

/* ------------------------------------------------------------------ */
/* Parsing                                                             */

static const char *reason(int st)
{
	switch (st) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 410: return "Gone";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default:  return "Status";
	}
}

static int has_token(const char *list, const char *tok)
{
	size_t tl = strlen(tok);
	const char *p = list;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *e = p;
		while (*e && *e != ',')
			e++;
		const char *t = e;
		while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if ((size_t)(t - p) == tl && strncasecmp(p, tok, tl) == 0)
			return 1;
		p = e;
	}
	return 0;
}

/*
 * Parse the request line and headers in p[0..n), which ends with the CRLF of
 * the last header line.  Returns 0, or the status to refuse the request with
 * (the connection is then closed, as the framing may be unknowable).
 */
static int parse_head(const char *p, size_t n, th_request *rq, head_info *hi)
{
	const char *end = p + n;
	const char *eol = memmem(p, n, "\r\n", 2);
	const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (!sp2 || sp1 == p || sp2 == sp1 + 1)
		return 400;
	size_t ml = (size_t)(sp1 - p), tl = (size_t)(sp2 - sp1 - 1);
	if (ml >= sizeof rq->method)
		return 501;
	if (tl >= sizeof rq->target)
		return 414;
	if (eol - sp2 - 1 != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
	    (sp2[8] != '0' && sp2[8] != '1'))
		return 400;
	memcpy(rq->method, p, ml);
	memcpy(rq->target, sp1 + 1, tl);
	rq->http_minor = sp2[8] - '0';

	memset(hi, 0, sizeof *hi);
	hi->clen = -1;
	for (p = eol + 2; p < end; p = eol + 2) {
		eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		const char *colon = memchr(p, ':', (size_t)(eol - p));
		if (!colon || colon == p || memchr(p, ' ', (size_t)(colon - p)) ||
		    memchr(p, '\t', (size_t)(colon - p)))
			return 400;  /* also rejects obsolete line folding */
		const char *v = colon + 1, *ve = eol;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		size_t nl = (size_t)(colon - p), vl = (size_t)(ve - v);
		/* Refuse rather than truncate, so a test never checks a
		 * silently shortened value. */
		if (rq->header_count == TH_MAX_HEADERS ||
		    nl >= sizeof rq->headers[0].name || vl >= sizeof rq->headers[0].value)
			return 431;
		th_field *f = &rq->headers[rq->header_count++];
		memcpy(f->name, p, nl);
		memcpy(f->value, v, vl);
		if (memchr(f->value, 0, vl))
			return 400;

		if (strcasecmp(f->name, "Content-Length") == 0) {
			char *e;
			errno = 0;
			long long cl = strtoll(f->value, &e, 10);
			if (vl == 0 || *e || f->value[0] < '0' || f->value[0] > '9' ||
			    errno || (hi->clen >= 0 && hi->clen != cl))
				return 400;
			if (cl > TH_MAX_BODY)
				return 413;
			hi->clen = cl;
		} else if (strcasecmp(f->name, "Transfer-Encoding") == 0) {
			hi->chunked = 1;
		} else if (strcasecmp(f->name, "Connection") == 0) {
			hi->close |= has_token(f->value, "close");
			hi->keep_alive |= has_token(f->value, "keep-alive");
		} else if (strcasecmp(f->name, "Expect") == 0) {
			hi->expect_continue = strcasecmp(f->value, "100-continue") == 0;
		}
	}
	/* Only Content-Length framing is supported; chunked bodies are
	 * refused, visibly, instead of being misread. */
	if (hi->chunked)
		return 501;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Recording and replying                                              */

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/*
 * Record the request and pick its reply.  Recording happens before the reply
 * is sent, so a client that has seen the reply can rely on th_count().
 */
static int record(th_server *s, const th_request *rq, th_reply *out, int *scripted)
{
	th_request *copy = malloc(sizeof *copy);
	char *body = malloc(rq->body_len + 1);
	if (!copy || !body) {
		free(copy);
		free(body);
		return -1;
	}
	*copy = *rq;
	memcpy(body, rq->body, rq->body_len + 1);
	copy->body = body;

	pthread_mutex_lock(&s->mu);
	if (s->nreqs == s->reqs_cap) {
		size_t cap = s->reqs_cap ? s->reqs_cap * 2 : 16;
		th_request **nr = realloc(s->reqs, cap * sizeof *nr);
		if (!nr) {
			pthread_mutex_unlock(&s->mu);
			free(copy);
			free(body);
			return -1;
		}
		s->reqs = nr;
		s->reqs_cap = cap;
	}
	s->reqs[s->nreqs++] = copy;
	*scripted = s->script_pos < s->script_n;
	if (*scripted)
		*out = s->script[s->script_pos++];
	pthread_cond_broadcast(&s->rec_cv);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

/* Status line, headers and body in one buffer, so TH_RESET can cut it. */
static char *build_reply(const th_reply *r, int closing, int head_only, size_t *len)
{
	int st = r->status ? r->status : 200;
	const char *body = r->body ? r->body : "";
	const char *extra = r->extra_headers ? r->extra_headers : "";
	size_t bl = strlen(body), cap = 256 + strlen(extra) + bl;
	char *b = malloc(cap);
	if (!b)
		return NULL;
	int n = snprintf(b, cap, "HTTP/1.1 %d %s\r\n", st, reason(st));
	if (st != 204 && st != 304)
		n += snprintf(b + n, cap - (size_t)n, "Content-Length: %zu\r\n", bl);
	n += snprintf(b + n, cap - (size_t)n, "%s%s\r\n", extra,
	              closing ? "Connection: close\r\n" : "");
	if (!head_only && st != 204 && st != 304) {
		memcpy(b + n, body, bl);
		n += (int)bl;
	}
	*len = (size_t)n;
	return b;
}

/* ------------------------------------------------------------------ */
/* Connections: a state machine run by their loop                      */

static void drive(conn *c);

/* Listen for events (EPOLLIN/EPOLLOUT), or for nothing (0): then c is
 * not in epoll at all, so a peer's hangup cannot spin the loop while c
 * waits for a handler or a timer. */
static int want(conn *c, uint32_t events)
{
	struct epoll_event ev;
	int rc = 0;
	if (events == c->events)
		return 0;
	memset(&ev, 0, sizeof ev);
	ev.events = events;
	ev.data.ptr = c;
	if (!events)
		rc = epoll_ctl(c->l->ep, EPOLL_CTL_DEL, c->fd, NULL);
	else
		rc = epoll_ctl(c->l->ep, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev);
	c->events = rc == 0 ? events : c->events;
	return rc;
}

static void free_conn(conn *c)
{
	loop *l = c->l;
	if (c->prev)
		c->prev->next = c->next;
	else
		l->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->s->tls)
		mbedtls_ssl_free(&c->ssl);
	if (c->rq)
		free(c->rq->body);
	free(c->rq);
	free(c->buf);
	free(c->out);
	free(c);
}

static void end_conn(conn *c, int how)
{
	th_server *s = c->s;
	want(c, 0);
	if (how == END_CLOSE && c->tls_up)
		mbedtls_ssl_close_notify(&c->ssl);  /* best effort: never blocks */
	if (how == END_RESET) {
		/* Linger 0 turns close() into an RST. */
		struct linger lg = { 1, 0 };
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	}
	close(c->fd);
	free_conn(c);
	pthread_mutex_lock(&s->mu);
	s->active--;
	pthread_cond_broadcast(&s->slot_cv);
	pthread_mutex_unlock(&s->mu);
}

/* Send b (owned) and then do `after`. */
static void start_write(conn *c, char *b, size_t n, int after)
{
	free(c->out);
	c->out = b;
	c->out_len = n;
	c->out_off = 0;
	c->after = after;
	c->state = C_WRITE;
}

/* Refuse the request with st and close: its framing may be unknowable. */
static void start_error(conn *c, int st)
{
	th_reply r = { TH_RESPOND, st, NULL, reason(st), 0, 1 };
	size_t n;
	char *b = build_reply(&r, 1, 0, &n);
	if (b)
		start_write(c, b, n, END_CLOSE);
	else
		start_write(c, NULL, 0, END_CLOSE);
}

/* ---- timers: a binary heap of C_DELAY connections, per loop ---- */

static int heap_push(loop *l, conn *c)
{
	if (l->nheap == l->heap_cap) {
		size_t cap = l->heap_cap ? l->heap_cap * 2 : 64;
		conn **nh = realloc(l->heap, cap * sizeof *nh);
		if (!nh)
			return -1;
		l->heap = nh;
		l->heap_cap = cap;
	}
	size_t i = l->nheap++;
	while (i > 0 && l->heap[(i - 1) / 2]->due_ms > c->due_ms) {
		l->heap[i] = l->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	l->heap[i] = c;
	return 0;
}

static conn *heap_pop(loop *l)
{
	conn *top = l->heap[0], *last = l->heap[--l->nheap];
	size_t i = 0, n = l->nheap;
	for (;;) {
		size_t k = 2 * i + 1;
		if (k >= n)
			break;
		if (k + 1 < n && l->heap[k + 1]->due_ms < l->heap[k]->due_ms)
			k++;
		if (last->due_ms <= l->heap[k]->due_ms)
			break;
		l->heap[i] = l->heap[k];
		i = k;
	}
	if (n)
		l->heap[i] = last;
	return top;
}

/* ---- handler workers ---- */

static void *worker_main(void *arg);

/* With s->mu held: one more worker when calls wait and none is free or on
 * its way.  One start at a time keeps a burst of quick calls from
 * spawning a crowd.  -1 if there is no worker and none can be made. */
static int grow_workers(th_server *s)
{
	if (!s->jobs || s->idle || s->starting || s->nworkers == TH_MAX_WORKERS)
		return 0;
	if (s->nworkers == s->workers_cap) {
		size_t cap = s->workers_cap ? s->workers_cap * 2 : 8;
		pthread_t *nw = realloc(s->workers, cap * sizeof *nw);
		if (!nw)
			return s->nworkers ? 0 : -1;
		s->workers = nw;
		s->workers_cap = cap;
	}
	if (pthread_create(&s->workers[s->nworkers], NULL, worker_main, s) != 0)
		return s->nworkers ? 0 : -1;
	s->nworkers++;
	s->starting++;
	return 0;
}

static void post_ready(conn *c)
{
	loop *l = c->l;
	uint64_t one = 1;
	pthread_mutex_lock(&l->mu);
	c->link = l->ready;
	l->ready = c;
	pthread_mutex_unlock(&l->mu);
	while (write(l->wake, &one, sizeof one) < 0 && errno == EINTR)
		;
}

static void *worker_main(void *arg)
{
	th_server *s = arg;
	pthread_mutex_lock(&s->mu);
	s->starting--;
	for (;;) {
		while (!s->stopping && !s->jobs) {
			s->idle++;
			pthread_cond_wait(&s->job_cv, &s->mu);
			s->idle--;
		}
		if (s->stopping)
			break;  /* calls still queued are dropped with their conns */
		conn *c = s->jobs;
		s->jobs = c->link;
		if (!s->jobs)
			s->jobs_tail = NULL;
		grow_workers(s);
		pthread_mutex_unlock(&s->mu);
		s->handler(c->rq, &c->reply, s->ud);
		post_ready(c);
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* Queue the handler call for c.  -1: no worker could be made. */
static int queue_handler(conn *c)
{
	th_server *s = c->s;
	pthread_mutex_lock(&s->mu);
	c->link = NULL;
	if (s->jobs_tail)
		s->jobs_tail->link = c;
	else
		s->jobs = c;
	s->jobs_tail = c;
	int rc = grow_workers(s);
	if (rc != 0) {
		/* Take it back: the loop calls the handler itself. */
		conn **p = &s->jobs;
		while (*p != c)
			p = &(*p)->link;
		*p = NULL;
		s->jobs_tail = NULL;
		for (conn *j = s->jobs; j; j = j->link)
			s->jobs_tail = j;
	} else {
		pthread_cond_signal(&s->job_cv);
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* ---- the request/reply cycle ---- */

/*
 * dispatch, replied and act move c to its next state and return 0, or end
 * it and return -1; they never call drive(), so pipelined requests loop
 * in drive() instead of recursing.
 */

/* What to do with the reply once any delay is over. */
static int act(conn *c)
{
	switch (c->reply.action) {
	case TH_CLOSE_BEFORE_REPLY:
		end_conn(c, END_QUIET);
		return -1;
	case TH_HANG:
		/* Drain whatever arrives until the peer leaves or we stop. */
		c->state = C_HANG;
		break;
	case TH_RESET:
		c->state = C_WRITE;
		c->after = END_RESET;
		break;
	default:
		c->state = C_WRITE;
		c->after = c->closing ? END_CLOSE : AFTER_READ;
		break;
	}
	return 0;
}

/* The reply is chosen (script, handler or default): build it, then wait
 * out its delay or act. */
static int replied(conn *c)
{
	const th_reply *r = &c->reply;
	int head_only = strcmp(c->rq->method, "HEAD") == 0;
	c->closing = r->close || c->hi.close || (c->rq->http_minor == 0 && !c->hi.keep_alive) ||
	             (r->extra_headers && strcasestr(r->extra_headers, "connection: close"));
	if (r->action == TH_RESPOND || r->action == TH_RESET) {
		/* Built now, while the handler's strings (req->body among
		 * them) are surely valid. */
		size_t n;
		char *b = build_reply(r, c->closing && r->action == TH_RESPOND, head_only, &n);
		if (!b) {
			end_conn(c, END_CLOSE);
			return -1;
		}
		free(c->out);
		c->out = b;
		c->out_len = r->action == TH_RESET ? (n + 1) / 2 : n;
		c->out_off = 0;
	}
	if (r->delay_ms > 0) {
		c->due_ms = now_ms() + r->delay_ms;
		c->state = C_DELAY;
		want(c, 0);
		if (heap_push(c->l, c) != 0) {
			end_conn(c, END_CLOSE);
			return -1;
		}
		return 0;
	}
	return act(c);
}

/* A complete request is in c->rq: record it and find its reply. */
static int dispatch(conn *c)
{
	th_server *s = c->s;
	int scripted = 0;
	c->reply = (th_reply){ TH_RESPOND, 200, NULL, "ok", 0, 0 };
	if (record(s, c->rq, &c->reply, &scripted) < 0) {
		end_conn(c, END_CLOSE);
		return -1;
	}
	if (!scripted && s->handler) {
		c->state = C_HANDLER;
		want(c, 0);
		if (queue_handler(c) == 0)
			return 0;  /* the worker posts c back to its loop */
		s->handler(c->rq, &c->reply, s->ud);
	}
	return replied(c);
}

/*
 * C_READ: parse what has arrived.  1: a complete request is in c->rq;
 * 0: c moved on (error reply, 100 Continue) or waits; -1: c has ended.
 */
static int read_request(conn *c)
{
	if (!c->hlen) {
		char *he;
		/* c->len check: memmem is declared nonnull and buf starts NULL. */
		while (!(he = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL)) {
			if (c->len > TH_MAX_HEAD) {
				start_error(c, 431);
				return 0;
			}
			long r = conn_fill(c);
			if (r > 0)
				continue;
			if (r == IO_AGAIN_READ || r == IO_AGAIN_WRITE) {
				want(c, r == IO_AGAIN_READ ? EPOLLIN : EPOLLOUT);
				return 0;
			}
			end_conn(c, END_QUIET);
			return -1;
		}
		size_t hlen = (size_t)(he - c->buf) + 4;
		/* The previous body lives until here: a handler may have
		 * pointed reply->body at it. */
		free(c->rq->body);
		memset(c->rq, 0, sizeof *c->rq);
		int st = parse_head(c->buf, hlen - 2, c->rq, &c->hi);
		if (st) {
			start_error(c, st);
			return 0;
		}
		c->hlen = hlen;
		c->need = hlen + (size_t)(c->hi.clen > 0 ? c->hi.clen : 0);
		/* curl sends "Expect: 100-continue" for larger POST bodies and
		 * would otherwise stall for a second before sending them. */
		if (c->hi.expect_continue && c->len < c->need) {
			char *b = strdup("HTTP/1.1 100 Continue\r\n\r\n");
			if (!b) {
				end_conn(c, END_QUIET);
				return -1;
			}
			start_write(c, b, strlen(b), AFTER_READ);
			return 0;
		}
	}
	while (c->len < c->need) {
		long r = conn_fill(c);
		if (r > 0)
			continue;
		if (r == IO_AGAIN_READ || r == IO_AGAIN_WRITE) {
			want(c, r == IO_AGAIN_READ ? EPOLLIN : EPOLLOUT);
			return 0;
		}
		end_conn(c, END_QUIET);
		return -1;
	}
	th_request *rq = c->rq;
	rq->body_len = c->need - c->hlen;
	rq->body = malloc(rq->body_len + 1);
	if (!rq->body) {
		end_conn(c, END_CLOSE);
		return -1;
	}
	memcpy(rq->body, c->buf + c->hlen, rq->body_len);
	rq->body[rq->body_len] = 0;
	rq->conn_id = c->id;
	memcpy(rq->client_cn, c->client_cn, sizeof rq->client_cn);
	memmove(c->buf, c->buf + c->need, c->len - c->need + 1);
	c->len -= c->need;
	c->hlen = c->need = 0;
	return 1;
}

/* The subject CN of the verified client certificate, "" without one. */
static void peer_cn(const mbedtls_ssl_context *ssl, char *out, size_t size)
{
	const mbedtls_x509_crt *crt = mbedtls_ssl_get_peer_cert(ssl);
	out[0] = 0;
	for (const mbedtls_x509_name *n = crt ? &crt->subject : NULL; n; n = n->next) {
		if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0) {
			size_t l = n->val.len < size - 1 ? n->val.len : size - 1;
			memcpy(out, n->val.p, l);
			out[l] = 0;
			return;
		}
	}
}

/* Run c as far as it goes without waiting; c may be freed on return. */
static void drive(conn *c)
{
	for (;;) {
		switch (c->state) {
		case C_HANDSHAKE: {
			long r = tls_result(mbedtls_ssl_handshake(&c->ssl));
			if (r == IO_AGAIN_READ || r == IO_AGAIN_WRITE) {
				want(c, r == IO_AGAIN_READ ? EPOLLIN : EPOLLOUT);
				return;
			}
			if (r != 0) {
				end_conn(c, END_QUIET);
				return;
			}
			c->tls_up = 1;
			peer_cn(&c->ssl, c->client_cn, sizeof c->client_cn);
			c->state = C_READ;
			break;
		}
		case C_READ: {
			int r = read_request(c);
			if (r < 0 || (r == 0 && c->state == C_READ))
				return;
			if (r > 0 && dispatch(c) < 0)
				return;
			break;  /* on to its next state */
		}
		case C_WRITE:
			while (c->out_off < c->out_len) {
				long r = conn_write(c, c->out + c->out_off, c->out_len - c->out_off);
				if (r == IO_AGAIN_READ || r == IO_AGAIN_WRITE) {
					want(c, r == IO_AGAIN_READ ? EPOLLIN : EPOLLOUT);
					return;
				}
				if (r < 0) {
					end_conn(c, c->after == END_RESET ? END_RESET : END_QUIET);
					return;
				}
				c->out_off += (size_t)r;
			}
			free(c->out);
			c->out = NULL;
			c->out_len = c->out_off = 0;
			if (c->after != AFTER_READ) {
				end_conn(c, c->after);
				return;
			}
			c->state = C_READ;  /* the next request may already be here */
			break;
		case C_HANG: {
			char sink[4096];
			long r;
			while ((r = raw_recv(c, sink, sizeof sink)) > 0)
				;
			if (r == IO_AGAIN_READ) {
				want(c, EPOLLIN);
				return;
			}
			end_conn(c, END_QUIET);
			return;
		}
		case C_HANDLER:
		case C_DELAY:
			return;  /* a worker or the timer moves it on */
		}
	}
}

/* ------------------------------------------------------------------ */
/* Event loops                                                         */

/* A new connection from the acceptor. */
static void adopt(loop *l, conn *c)
{
	c->l = l;
	c->prev = NULL;
	c->next = l->conns;
	if (l->conns)
		l->conns->prev = c;
	l->conns = c;
	if (c->s->tls)
		mbedtls_ssl_init(&c->ssl);  /* first: free_conn frees it */
	c->rq = calloc(1, sizeof *c->rq);
	if (!c->rq) {
		end_conn(c, END_QUIET);
		return;
	}
	c->state = C_READ;
	if (c->s->tls) {
		if (mbedtls_ssl_setup(&c->ssl, &c->s->conf) != 0) {
			end_conn(c, END_QUIET);
			return;
		}
		mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
		c->state = C_HANDSHAKE;
	}
	drive(c);
}

/* New connections and returned handlers, handed over by other threads. */
static void take_mail(loop *l)
{
	uint64_t n;
	while (read(l->wake, &n, sizeof n) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&l->mu);
	conn *in = l->inbox, *ready = l->ready;
	l->inbox = l->ready = NULL;
	pthread_mutex_unlock(&l->mu);
	while (in) {
		conn *next = in->link;
		adopt(l, in);
		in = next;
	}
	while (ready) {
		conn *next = ready->link;
		if (replied(ready) == 0)
			drive(ready);
		ready = next;
	}
}

static void *loop_main(void *arg)
{
	loop *l = arg;
	th_server *s = l->s;
	struct epoll_event evs[256];
	for (;;) {
		int timeout = -1;
		if (l->nheap) {
			long long left = l->heap[0]->due_ms - now_ms();
			timeout = left <= 0 ? 0 : left > 60000 ? 60000 : (int)left;
		}
		int n = epoll_wait(l->ep, evs, (int)(sizeof evs / sizeof *evs), timeout);
		if (n < 0 && errno != EINTR)
			break;
		/* Each connection appears at most once in evs, and only one
		 * that was in epoll: handlers' and timers' connections are
		 * not, so handling one event never frees another's conn. */
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			if (p == &s->stop_pipe)
				goto stop;
			if (p == &l->wake)
				take_mail(l);
			else
				drive(p);
		}
		for (long long t = now_ms(); l->nheap && l->heap[0]->due_ms <= t; ) {
			conn *c = heap_pop(l);
			if (act(c) == 0)
				drive(c);
		}
	}
stop:
	/* Close every socket now, so clients see the end at once.  A
	 * connection whose handler is running stays allocated until th_stop
	 * has joined the workers. */
	for (conn *c = l->conns, *next; c; c = next) {
		next = c->next;
		want(c, 0);
		close(c->fd);
		c->fd = -1;
		if (c->state != C_HANDLER)
			free_conn(c);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Accept thread                                                       */

static void *accept_main(void *arg)
{
	th_server *s = arg;
	for (;;) {
		/* At the limit, leave further clients in the listen backlog. */
		pthread_mutex_lock(&s->mu);
		while (!s->stopping && s->active >= s->max_conns)
			pthread_cond_wait(&s->slot_cv, &s->mu);
		int stopping = s->stopping;
		pthread_mutex_unlock(&s->mu);
		if (stopping || wait_fd(s, s->lfd, POLLIN, -1) < 0)
			break;
		int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			/* The peer already left (try again), or we are out of
			 * descriptors or memory: back off instead of spinning
			 * on a listener that stays readable. */
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				wait_fd(s, -1, 0, 10);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		conn *c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			continue;
		}
		c->s = s;
		c->fd = fd;
		pthread_mutex_lock(&s->mu);
		c->id = (int)++s->conns;
		s->active++;
		pthread_mutex_unlock(&s->mu);

		loop *l = &s->loops[(size_t)c->id % TH_LOOPS];
		uint64_t wake = 1;
		pthread_mutex_lock(&l->mu);
		c->link = l->inbox;
		l->inbox = c;
		pthread_mutex_unlock(&l->mu);
		while (write(l->wake, &wake, sizeof wake) < 0 && errno == EINTR)
			;
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Public API                                                          */

static void free_server(th_server *s)
{
	for (int i = 0; i < TH_LOOPS; i++) {
		loop *l = &s->loops[i];
		if (l->ep >= 0)
			close(l->ep);
		if (l->wake >= 0)
			close(l->wake);
		free(l->heap);
		pthread_mutex_destroy(&l->mu);
	}
	free(s->workers);
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->stop_pipe[0] >= 0)
		close(s->stop_pipe[0]);
	if (s->stop_pipe[1] >= 0)
		close(s->stop_pipe[1]);
	if (s->tls) {
		mbedtls_ssl_config_free(&s->conf);
		mbedtls_x509_crt_free(&s->cert);
		mbedtls_x509_crt_free(&s->client_ca);
		mbedtls_pk_free(&s->key);
		mbedtls_ctr_drbg_free(&s->drbg);
		mbedtls_entropy_free(&s->entropy);
	}
	for (size_t i = 0; i < s->nreqs; i++) {
		free(s->reqs[i]->body);
		free(s->reqs[i]);
	}
	free(s->reqs);
	for (size_t i = 0; i < s->script_n; i++) {
		free((char *)s->script[i].extra_headers);
		free((char *)s->script[i].body);
	}
	free(s->script);
	pthread_cond_destroy(&s->rec_cv);
	pthread_cond_destroy(&s->slot_cv);
	pthread_cond_destroy(&s->job_cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static int regular_file(const char *path)
{
	struct stat st;
	return path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/*
 * The TLS 1.x minor versions o asks for, as mbedTLS's SSL 3.(x+1), or -1.
 * See th_tls_options for what 0 means.
 */
static int tls_versions(const th_tls_options *o, int *min, int *max)
{
#if defined(MBEDTLS_SSL_PROTO_TLS1)
	const int lowest = 0;
#elif defined(MBEDTLS_SSL_PROTO_TLS1_1)
	const int lowest = 1;
#else
	const int lowest = 2;
#endif
	int hi = o->max_minor ? o->max_minor : 2;
	int lo = o->min_minor ? o->min_minor : hi < 2 ? lowest : 2;
	if (lo < lowest || hi > 2 || lo > hi)
		return -1;
	*min = lo + 1;
	*max = hi + 1;
	return 0;
}

/*
 * ECDHE curves, fastest first: mbedTLS 2.28's own order starts with
 * secp521r1 (and ranks P-256 above x25519), which made a thousand
 * handshakes take seconds.  Every curve it has stays in the list, since
 * it also checks a peer certificate's curve against it.
 */
static void prefer_fast_curves(th_server *s)
{
	static const mbedtls_ecp_group_id fast[] = {
		MBEDTLS_ECP_DP_CURVE25519, MBEDTLS_ECP_DP_SECP256R1,
	};
	const size_t cap = sizeof s->curves / sizeof *s->curves;
	size_t n = 0;
	for (size_t i = 0; i < sizeof fast / sizeof *fast; i++)
		if (mbedtls_ecp_curve_info_from_grp_id(fast[i]))
			s->curves[n++] = fast[i];
	for (const mbedtls_ecp_group_id *g = mbedtls_ecp_grp_id_list();
	     *g != MBEDTLS_ECP_DP_NONE && n + 1 < cap; g++)
		if (*g != MBEDTLS_ECP_DP_CURVE25519 && *g != MBEDTLS_ECP_DP_SECP256R1)
			s->curves[n++] = *g;
	s->curves[n] = MBEDTLS_ECP_DP_NONE;
	mbedtls_ssl_conf_curves(&s->conf, s->curves);
}

/*
 * The first multiplication by the generator on an EC group caches a
 * precomputed table in the group (grp->T), unlocked.  The server key and
 * the client CA's keys are shared by every handshake, and several loops
 * handshake at once: fill that cache here, before there are threads to
 * race for it (a lost race leaks or frees a table another is using).
 */
static int warm_ec_key(th_server *s, mbedtls_pk_context *pk)
{
	if (!mbedtls_pk_can_do(pk, MBEDTLS_PK_ECKEY))
		return 0;
	mbedtls_ecp_group *grp = &mbedtls_pk_ec(*pk)->grp;
	mbedtls_ecp_point r;
	mbedtls_mpi one;
	mbedtls_ecp_point_init(&r);
	mbedtls_mpi_init(&one);
	int rc = mbedtls_mpi_lset(&one, 1) != 0 ||
	         mbedtls_ecp_mul(grp, &r, &one, &grp->G, mbedtls_ctr_drbg_random, &s->drbg) != 0;
	mbedtls_ecp_point_free(&r);
	mbedtls_mpi_free(&one);
	return rc ? -1 : 0;
}

static int tls_setup(th_server *s, const th_tls_options *o)
{
	static const char *alpn[] = { "http/1.1", NULL };
	int vmin, vmax;
	/* mbedTLS sizes its buffer with ftell(), which a directory turns
	 * into a huge calloc() that sanitizers abort on. */
	if (!regular_file(o->cert_pem_path) || !regular_file(o->key_pem_path) ||
	    (o->client_ca_pem_path && !regular_file(o->client_ca_pem_path)) ||
	    tls_versions(o, &vmin, &vmax) != 0)
		return -1;
	s->tls = 1;
	mbedtls_ssl_config_init(&s->conf);
	mbedtls_x509_crt_init(&s->cert);
	mbedtls_x509_crt_init(&s->client_ca);
	mbedtls_pk_init(&s->key);
	mbedtls_entropy_init(&s->entropy);
	mbedtls_ctr_drbg_init(&s->drbg);
	if (mbedtls_ctr_drbg_seed(&s->drbg, mbedtls_entropy_func, &s->entropy,
	                          (const unsigned char *)"th_httpd", 8) != 0 ||
	    mbedtls_x509_crt_parse_file(&s->cert, o->cert_pem_path) != 0 ||
	    mbedtls_pk_parse_keyfile(&s->key, o->key_pem_path, NULL) != 0 ||
	    (o->client_ca_pem_path &&
	     mbedtls_x509_crt_parse_file(&s->client_ca, o->client_ca_pem_path) != 0) ||
	    mbedtls_ssl_config_defaults(&s->conf, MBEDTLS_SSL_IS_SERVER,
	                                MBEDTLS_SSL_TRANSPORT_STREAM,
	                                MBEDTLS_SSL_PRESET_DEFAULT) != 0)
		return -1;
	if (warm_ec_key(s, &s->key) != 0)
		return -1;
	for (mbedtls_x509_crt *ca = &s->client_ca; ca && ca->version; ca = ca->next)
		if (warm_ec_key(s, &ca->pk) != 0)
			return -1;
	mbedtls_ssl_conf_rng(&s->conf, mbedtls_ctr_drbg_random, &s->drbg);
	prefer_fast_curves(s);
	mbedtls_ssl_conf_min_version(&s->conf, MBEDTLS_SSL_MAJOR_VERSION_3, vmin);
	mbedtls_ssl_conf_max_version(&s->conf, MBEDTLS_SSL_MAJOR_VERSION_3, vmax);
	if (o->client_ca_pem_path) {
		mbedtls_ssl_conf_ca_chain(&s->conf, &s->client_ca, NULL);
		mbedtls_ssl_conf_authmode(&s->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	}
	/* Offer only http/1.1 so an h2-capable client never tries HTTP/2. */
	if (mbedtls_ssl_conf_alpn_protocols(&s->conf, alpn) != 0 ||
	    mbedtls_ssl_conf_own_cert(&s->conf, &s->cert, &s->key) != 0)
		return -1;
	return 0;
}

static int start_loops(th_server *s)
{
	for (int i = 0; i < TH_LOOPS; i++) {
		loop *l = &s->loops[i];
		struct epoll_event stop = { EPOLLIN, { .ptr = &s->stop_pipe } };
		struct epoll_event wake = { EPOLLIN, { .ptr = &l->wake } };
		l->ep = epoll_create1(EPOLL_CLOEXEC);
		l->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (l->ep < 0 || l->wake < 0 ||
		    epoll_ctl(l->ep, EPOLL_CTL_ADD, s->stop_pipe[0], &stop) != 0 ||
		    epoll_ctl(l->ep, EPOLL_CTL_ADD, l->wake, &wake) != 0 ||
		    pthread_create(&l->tid, NULL, loop_main, l) != 0)
			return -1;
		l->started = 1;
	}
	return 0;
}

static int start(th_server **out, const th_tls_options *tls, th_handler h, void *ud)
{
	pthread_condattr_t ca;
	th_server *s = calloc(1, sizeof *s);
	*out = NULL;
	if (!s)
		return -1;
	s->lfd = s->stop_pipe[0] = s->stop_pipe[1] = -1;
	s->handler = h;
	s->ud = ud;
	s->max_conns = TH_MAX_CONNS;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->rec_cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&s->slot_cv, NULL);
	pthread_cond_init(&s->job_cv, NULL);
	for (int i = 0; i < TH_LOOPS; i++) {
		s->loops[i].s = s;
		s->loops[i].ep = s->loops[i].wake = -1;
		pthread_mutex_init(&s->loops[i].mu, NULL);
	}

	struct sockaddr_in a;
	socklen_t al = sizeof a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* Non-blocking listener: a connection reset between poll() and
	 * accept() must not leave the acceptor stuck in accept(). */
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
	    listen(s->lfd, TH_BACKLOG) != 0 ||
	    getsockname(s->lfd, (struct sockaddr *)&a, &al) != 0 ||
	    pipe2(s->stop_pipe, O_CLOEXEC) != 0 ||
	    (tls && tls_setup(s, tls) != 0) || start_loops(s) != 0 ||
	    pthread_create(&s->acceptor, NULL, accept_main, s) != 0) {
		th_stop(s);
		return -1;
	}
	s->acceptor_started = 1;
	s->port = ntohs(a.sin_port);
	*out = s;
	return 0;
}

int th_start(th_server **out, th_handler h, void *ud)
{
	return start(out, NULL, h, ud);
}

int th_start_tls(th_server **out, const char *cert_pem_path,
                 const char *key_pem_path, th_handler h, void *ud)
{
	th_tls_options o;
	memset(&o, 0, sizeof o);
	o.cert_pem_path = cert_pem_path;
	o.key_pem_path = key_pem_path;
	return th_start_tls_opts(out, &o, h, ud);
}

int th_start_tls_opts(th_server **out, const th_tls_options *o, th_handler h,
                      void *ud)
{
	if (!o || !o->cert_pem_path || !o->key_pem_path) {
		*out = NULL;
		return -1;
	}
	return start(out, o, h, ud);
}

const char *th_client_cn(const th_request *r)
{
	return r->client_cn;
}

void th_set_max_conns(th_server *s, size_t n)
{
	pthread_mutex_lock(&s->mu);
	s->max_conns = n ? n : 1;
	pthread_cond_broadcast(&s->slot_cv);
	pthread_mutex_unlock(&s->mu);
}

int th_raise_nofile(size_t n)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < n) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > n ? n : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			return -1;
	}
	return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= n ? 0 : -1;
}

int th_port(const th_server *s)
{
	return s->port;
}

void th_script(th_server *s, const th_reply *replies, size_t n)
{
	pthread_mutex_lock(&s->mu);
	if (s->script_n + n > s->script_cap) {
		size_t cap = s->script_cap ? s->script_cap : 8;
		while (cap < s->script_n + n)
			cap *= 2;
		th_reply *ns = realloc(s->script, cap * sizeof *ns);
		if (!ns)
			abort();  /* test support: failing loudly beats a wrong script */
		s->script = ns;
		s->script_cap = cap;
	}
	for (size_t i = 0; i < n; i++) {
		th_reply r = replies[i];
		r.extra_headers = dup_or_null(r.extra_headers);
		r.body = dup_or_null(r.body);
		s->script[s->script_n++] = r;
	}
	pthread_mutex_unlock(&s->mu);
}

size_t th_count(th_server *s)
{
	pthread_mutex_lock(&s->mu);
	size_t n = s->nreqs;
	pthread_mutex_unlock(&s->mu);
	return n;
}

int th_wait(th_server *s, size_t n, int timeout_ms)
{
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->mu);
	int r = 0;
	while (s->nreqs < n && r != ETIMEDOUT)
		r = pthread_cond_timedwait(&s->rec_cv, &s->mu, &dl);
	int ok = s->nreqs >= n;
	pthread_mutex_unlock(&s->mu);
	return ok ? 0 : -1;
}

int th_get(th_server *s, size_t i, th_request *out)
{
	int rc = -1;
	pthread_mutex_lock(&s->mu);
	if (i < s->nreqs) {
		const th_request *r = s->reqs[i];
		char *body = malloc(r->body_len + 1);
		if (body) {
			memcpy(body, r->body, r->body_len + 1);
			*out = *r;
			out->body = body;
			rc = 0;
		}
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

void th_request_free(th_request *r)
{
	if (r) {
		free(r->body);
		r->body = NULL;
	}
}

const char *th_header(const th_request *r, const char *name)
{
	for (size_t i = 0; i < r->header_count; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

size_t th_connections(th_server *s)
{
	pthread_mutex_lock(&s->mu);
	size_t n = s->conns;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* Close and free what th_stop finds left: connections a loop had not
 * adopted yet, and those whose handler was queued or running. */
static void free_leftovers(loop *l)
{
	while (l->inbox) {
		conn *c = l->inbox;
		l->inbox = c->link;
		close(c->fd);
		free(c);
	}
	while (l->conns) {
		conn *c = l->conns;
		if (c->fd >= 0)
			close(c->fd);
		free_conn(c);
	}
}

void th_stop(th_server *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_cond_broadcast(&s->slot_cv);
	pthread_cond_broadcast(&s->job_cv);
	pthread_mutex_unlock(&s->mu);
	/* Never read, so every wait on the pipe from now on returns. */
	if (s->stop_pipe[1] >= 0)
		while (write(s->stop_pipe[1], "x", 1) < 0 && errno == EINTR)
			;
	/* The acceptor first (no new connections), then the loops (they
	 * close every socket), then the workers: each finishes the handler
	 * it is in, and calls still queued are dropped. */
	if (s->acceptor_started)
		pthread_join(s->acceptor, NULL);
	for (int i = 0; i < TH_LOOPS; i++)
		if (s->loops[i].started)
			pthread_join(s->loops[i].tid, NULL);
	pthread_mutex_lock(&s->mu);
	size_t nworkers = s->nworkers;
	pthread_mutex_unlock(&s->mu);
	for (size_t i = 0; i < nworkers; i++)
		pthread_join(s->workers[i], NULL);
	for (int i = 0; i < TH_LOOPS; i++)
		free_leftovers(&s->loops[i]);
	free_server(s);
}

/* ------------------------------------------------------------------ */
/* Certificates and the legacy server: the openssl command             */

/* Run argv[0] from PATH with stdio on /dev/null.  0 when it exits 0. */
static int run_quiet(char *const argv[])
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st = 0;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		return -1;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

int th_make_cert(const char *dir, char *cert_path, char *key_path,
                 size_t path_size)
{
	int n1 = snprintf(cert_path, path_size, "%s/cert.pem", dir);
	int n2 = snprintf(key_path, path_size, "%s/key.pem", dir);
	if (n1 < 0 || n2 < 0 || (size_t)n1 >= path_size || (size_t)n2 >= path_size)
		return -1;
	char *argv[] = { "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
	                 "-subj", "/CN=localhost",
	                 "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
	                 "-days", "2", "-keyout", key_path, "-out", cert_path, NULL };
	return run_quiet(argv);
}

/* What th_make_pki leaves, then its working files. */
static const char *const pki_files[] = {
	"ca.pem", "ca.key", "server.pem", "server.key", "client.pem", "client.key",
	"other-ca.pem", "other-client.pem", "other-client.key",
};
static const char *const pki_work[] = {
	"pki.cnf", "other-ca.key", "server.csr", "client.csr", "other-client.csr",
};

/* Our own config, so the system's openssl.cnf adds no extensions. */
static const char pki_cnf[] =
	"[req]\n"
	"distinguished_name = dn\n"
	"prompt = no\n"
	"[dn]\n"
	"CN = unused\n"
	"[ext_ca]\n"
	"basicConstraints = critical,CA:TRUE\n"
	"keyUsage = critical,keyCertSign,cRLSign\n"
	"subjectKeyIdentifier = hash\n"
	"[ext_server]\n"
	"basicConstraints = critical,CA:FALSE\n"
	"keyUsage = critical,digitalSignature\n"
	"extendedKeyUsage = serverAuth\n"
	"subjectAltName = IP:127.0.0.1,DNS:localhost\n"
	"subjectKeyIdentifier = hash\n"
	"authorityKeyIdentifier = keyid\n"
	"[ext_client]\n"
	"basicConstraints = critical,CA:FALSE\n"
	"keyUsage = critical,digitalSignature\n"
	"extendedKeyUsage = clientAuth\n"
	"subjectKeyIdentifier = hash\n"
	"authorityKeyIdentifier = keyid\n";

typedef struct pki_path { char p[4096]; } pki_path;

/* dir/<name><suffix>; -1 if too long. */
static int pki_name(pki_path *out, const char *dir, const char *name, const char *suffix)
{
	int n = snprintf(out->p, sizeof out->p, "%s/%s%s", dir, name, suffix);
	return n < 0 || (size_t)n >= sizeof out->p ? -1 : 0;
}

/* A self-signed CA: dir/<name>.pem and dir/<name>.key. */
static int pki_ca(const char *dir, const pki_path *cnf, const char *name, const char *subj)
{
	pki_path pem, key;
	if (pki_name(&pem, dir, name, ".pem") || pki_name(&key, dir, name, ".key"))
		return -1;
	char *argv[] = { "openssl", "req", "-x509", "-config", (char *)cnf->p,
	                 "-extensions", "ext_ca", "-newkey", "ec",
	                 "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
	                 "-subj", (char *)subj, "-days", "2",
	                 "-keyout", key.p, "-out", pem.p, NULL };
	return run_quiet(argv);
}

/* dir/<name>.pem and .key, with extensions section ext, signed by CA ca. */
static int pki_leaf(const char *dir, const pki_path *cnf, const char *name,
                    const char *subj, const char *ext, const char *ca)
{
	pki_path pem, key, csr, ca_pem, ca_key;
	if (pki_name(&pem, dir, name, ".pem") || pki_name(&key, dir, name, ".key") ||
	    pki_name(&csr, dir, name, ".csr") || pki_name(&ca_pem, dir, ca, ".pem") ||
	    pki_name(&ca_key, dir, ca, ".key"))
		return -1;
	char *req[] = { "openssl", "req", "-new", "-config", (char *)cnf->p,
	                "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
	                "-subj", (char *)subj, "-keyout", key.p, "-out", csr.p, NULL };
	/* No serial file: OpenSSL 3 then picks a random serial. */
	char *sign[] = { "openssl", "x509", "-req", "-in", csr.p,
	                 "-CA", ca_pem.p, "-CAkey", ca_key.p, "-days", "2",
	                 "-extfile", (char *)cnf->p, "-extensions", (char *)ext,
	                 "-out", pem.p, NULL };
	return run_quiet(req) || run_quiet(sign) ? -1 : 0;
}

static void pki_remove(const char *dir, const char *const *names, size_t n)
{
	pki_path p;
	for (size_t i = 0; i < n; i++)
		if (pki_name(&p, dir, names[i], "") == 0)
			unlink(p.p);
}

void th_remove_pki(const char *dir)
{
	pki_remove(dir, pki_files, sizeof pki_files / sizeof *pki_files);
	pki_remove(dir, pki_work, sizeof pki_work / sizeof *pki_work);
}

int th_make_pki(const char *dir)
{
	pki_path cnf;
	FILE *f;
	if (pki_name(&cnf, dir, "pki.cnf", "") != 0 || !(f = fopen(cnf.p, "w")))
		return -1;
	int rc = fputs(pki_cnf, f) < 0;
	rc |= fclose(f) != 0;
	rc = rc ||
	     pki_ca(dir, &cnf, "ca", "/CN=flaghook-test-ca") ||
	     pki_leaf(dir, &cnf, "server", "/CN=127.0.0.1", "ext_server", "ca") ||
	     pki_leaf(dir, &cnf, "client", "/CN=flaghook-test-client", "ext_client", "ca") ||
	     pki_ca(dir, &cnf, "other-ca", "/CN=flaghook-other-ca") ||
	     pki_leaf(dir, &cnf, "other-client", "/CN=flaghook-other-client",
	              "ext_client", "other-ca");
	pki_remove(dir, pki_work, sizeof pki_work / sizeof *pki_work);
	if (rc) {
		th_remove_pki(dir);
		return -1;
	}
	return 0;
}

struct th_legacy {
	pid_t pid;        /* the sh below, leader of its own process group */
	int keep_fd;      /* the write end of its stdin */
};

/*
 * Runs s_server, stopping it when stdin reaches EOF: th_legacy_stop closes
 * our end, and so does this process ending, even by a crash, so a failed
 * test leaves no server behind.  Prints EXITED if the server dies first.
 */
static const char legacy_sh[] =
	"command -v openssl >/dev/null 2>&1 || exit 127\n"
	"exec 3<&0\n"
	"openssl s_server \"$@\" </dev/null 3<&- 2>/dev/null &\n"
	"p=$!\n"
	"(read x <&3; kill $p 2>/dev/null) &\n"
	"w=$!\n"
	"wait $p\n"
	"kill $w 2>/dev/null\n"
	"echo EXITED\n";

/* Reap pid within timeout_ms: 0, or -1 if it is still running. */
static int reap_within(pid_t pid, int timeout_ms)
{
	for (int waited = 0; ; waited += 2) {
		pid_t r = waitpid(pid, NULL, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			return 0;
		if (waited >= timeout_ms)
			return -1;
		usleep(2000);
	}
}

void th_legacy_stop(th_legacy *l)
{
	if (!l)
		return;
	/* EOF on its stdin: the shell kills s_server and reaps it before
	 * exiting, so once we have reaped the shell the port is closed. */
	if (l->keep_fd >= 0)
		close(l->keep_fd);
	if (l->pid > 0 && reap_within(l->pid, 3000) != 0) {
		/* A forked child of ours still holds the pipe open: kill the
		 * whole group (shell, watcher, s_server).  The group cannot
		 * be recycled: its leader is our unreaped child. */
		kill(-l->pid, SIGKILL);
		while (waitpid(l->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	free(l);
}

/* 0 once 127.0.0.1:port accepts a TCP connection. */
static int port_accepts(int port)
{
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
	close(fd);
	return rc;
}

int th_legacy_tls_start(th_legacy **out, const char *cert_pem_path,
                        const char *key_pem_path, int *port)
{
	char path[] = "/tmp/th_legacy.XXXXXX";
	int wfd, rfd = -1, keep[2] = { -1, -1 }, p = 0;
	th_legacy *l;

	*out = NULL;
	if (!regular_file(cert_pem_path) || !regular_file(key_pem_path) ||
	    !(l = calloc(1, sizeof *l)))
		return -1;
	l->pid = -1;
	l->keep_fd = -1;
	/* s_server prints "ACCEPT 127.0.0.1:<port>" to stdout: a file we
	 * read back (a pipe we stopped reading could fill and block it). */
	if ((wfd = mkostemp(path, O_CLOEXEC)) < 0) {
		free(l);
		return -1;
	}
	rfd = open(path, O_RDONLY | O_CLOEXEC);
	unlink(path);
	if (rfd >= 0 && pipe2(keep, O_CLOEXEC) == 0) {
		char *argv[] = { "sh", "-c", (char *)legacy_sh, "th_legacy",
		                 "-accept", "127.0.0.1:0",
		                 "-cert", (char *)cert_pem_path, "-key", (char *)key_pem_path,
		                 "-www", "-min_protocol", "TLSv1", "-max_protocol", "TLSv1.1",
		                 "-cipher", "DEFAULT@SECLEVEL=0", NULL };
		posix_spawn_file_actions_t fa;
		posix_spawnattr_t at;
		sigset_t none, dfl;
		sigemptyset(&none);
		sigemptyset(&dfl);
		sigaddset(&dfl, SIGTERM);
		sigaddset(&dfl, SIGPIPE);
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, keep[0], 0);
		posix_spawn_file_actions_adddup2(&fa, wfd, 1);
		posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
		posix_spawnattr_init(&at);
		posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
		                              POSIX_SPAWN_SETSIGDEF);
		posix_spawnattr_setpgroup(&at, 0);
		posix_spawnattr_setsigmask(&at, &none);
		posix_spawnattr_setsigdefault(&at, &dfl);
		if (posix_spawn(&l->pid, "/bin/sh", &fa, &at, argv, environ) != 0)
			l->pid = -1;
		posix_spawnattr_destroy(&at);
		posix_spawn_file_actions_destroy(&fa);
		close(keep[0]);
		l->keep_fd = keep[1];
	}
	close(wfd);

	for (long long t0 = now_ms(); l->pid > 0 && p == 0 && now_ms() - t0 < 10000; ) {
		char buf[1024];
		ssize_t n = pread(rfd, buf, sizeof buf - 1, 0);
		buf[n > 0 ? n : 0] = 0;
		const char *a = strstr(buf, "ACCEPT 127.0.0.1:");
		if (a && strchr(a, '\n'))
			p = atoi(a + 17);
		else if (strstr(buf, "EXITED"))
			break;  /* s_server failed; th_legacy_stop reaps the shell */
		else if (waitpid(l->pid, NULL, WNOHANG) == l->pid)
			l->pid = -1;  /* the shell exited: no openssl */
		else
			usleep(10000);
	}
	if (rfd >= 0)
		close(rfd);
	for (long long t0 = now_ms(); p > 0 && port_accepts(p) != 0; usleep(10000))
		if (now_ms() - t0 > 10000)
			p = 0;
	if (p <= 0) {
		th_legacy_stop(l);
		return -1;
	}
	*port = p;
	*out = l;
	return 0;
}

int th_refused_port(int *fd)
{
	*fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*fd < 0)
		return -1;
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(a);
	if (bind(*fd, (struct sockaddr *)&a, sizeof(a)) != 0 || getsockname(*fd, (struct sockaddr *)&a, &len) != 0) {
		close(*fd);
		*fd = -1;
		return -1;
	}
	return ntohs(a.sin_port);
}
