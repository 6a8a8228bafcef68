/*
 * Test webhook receiver: see httpd.h.
 *
 * One accept thread plus one thread per connection (at most TH_MAX_CONNS).
 * Every blocking wait is a poll() that also watches a "stop pipe": th_stop
 * writes one byte to it and never reads it, so the pipe stays readable and
 * every present and future wait returns at once.  That is what lets
 * TH_HANG, delays and idle keep-alive connections end promptly.
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
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#define TH_MAX_CONNS 64
#define TH_MAX_HEAD  (64 * 1024)
#define TH_MAX_BODY  (16 * 1024 * 1024)

enum { SLOT_FREE, SLOT_RUNNING, SLOT_DONE };

struct th_server {
	int lfd, port;
	int stop_pipe[2];
	pthread_t acceptor;
	th_handler handler;
	void *ud;

	/* TLS: the config, certificate, key and DRBG are shared by all
	 * connections; Debian's mbedTLS has MBEDTLS_THREADING_C, which locks
	 * the DRBG and RSA blinding internally. */
	int tls;
	mbedtls_ssl_config conf;
	mbedtls_x509_crt cert;
	mbedtls_pk_context key;
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;

	pthread_mutex_t mu;          /* guards everything below */
	pthread_cond_t rec_cv;       /* a request was recorded */
	pthread_cond_t slot_cv;      /* a connection thread finished */
	int stopping;
	struct { pthread_t tid; int state; } slots[TH_MAX_CONNS];
	int active;
	size_t conns;
	th_request **reqs;
	size_t nreqs, reqs_cap;
	th_reply *script;            /* strings strdup'd, freed by th_stop */
	size_t script_n, script_pos, script_cap;
};

typedef struct conn {
	th_server *s;
	int fd, id, slot;
	int tls_up;                  /* handshake done: close_notify makes sense */
	mbedtls_ssl_context ssl;
	char *buf;                   /* received, not yet consumed (pipelining) */
	size_t len, cap;
} conn;

typedef struct head_info {
	long long clen;              /* -1: no Content-Length */
	int chunked, expect_continue, close, keep_alive;
} head_info;

/* ------------------------------------------------------------------ */
/* Waiting and raw I/O                                                 */

/*
 * Wait for ev on fd (fd < 0: just sleep) or the stop pipe.  timeout_ms < 0
 * waits forever.  1: ready (or error/hangup, which the next call reports),
 * 0: timed out, -1: the server is stopping.
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

static long raw_recv(conn *c, void *b, size_t n)
{
	for (;;) {
		if (wait_fd(c->s, c->fd, POLLIN, -1) < 0)
			return -1;
		ssize_t r = recv(c->fd, b, n, MSG_DONTWAIT);
		if (r >= 0)
			return (long)r;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -1;
	}
}

static long raw_send(conn *c, const void *b, size_t n)
{
	for (;;) {
		if (wait_fd(c->s, c->fd, POLLOUT, -1) < 0)
			return -1;
		ssize_t r = send(c->fd, b, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r >= 0)
			return (long)r;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -1;
	}
}

/* mbedTLS BIO callbacks, so TLS waits are stop-aware too. */
static int bio_recv(void *ctx, unsigned char *b, size_t n)
{
	long r = raw_recv(ctx, b, n);
	return r < 0 ? MBEDTLS_ERR_NET_RECV_FAILED : (int)r;
}

static int bio_send(void *ctx, const unsigned char *b, size_t n)
{
	long r = raw_send(ctx, b, n);
	return r < 0 ? MBEDTLS_ERR_NET_SEND_FAILED : (int)r;
}

/* >0 bytes, 0 on EOF, -1 on error or stop. */
static long conn_read(conn *c, void *b, size_t n)
{
	if (!c->tls_up)
		return raw_recv(c, b, n);
	for (;;) {
		int r = mbedtls_ssl_read(&c->ssl, b, n);
		if (r >= 0)
			return r;
		if (r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
			return 0;
		if (r != MBEDTLS_ERR_SSL_WANT_READ && r != MBEDTLS_ERR_SSL_WANT_WRITE)
			return -1;
	}
}

static int conn_write(conn *c, const char *b, size_t n)
{
	while (n > 0) {
		long r;
		if (c->tls_up) {
			r = mbedtls_ssl_write(&c->ssl, (const unsigned char *)b, n);
			if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
				continue;
		} else {
			r = raw_send(c, b, n);
		}
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
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

static void send_error(conn *c, int st)
{
	th_reply r = { TH_RESPOND, st, NULL, reason(st), 0, 1 };
	size_t n;
	char *b = build_reply(&r, 1, 0, &n);
	if (b)
		conn_write(c, b, n);
	free(b);
}

/* ------------------------------------------------------------------ */
/* Connection thread                                                   */

enum { END_CLOSE, END_QUIET, END_RESET };

/* Serve requests until the connection should end; says how to end it. */
static int serve(conn *c, th_request *rq)
{
	th_server *s = c->s;
	for (;;) {
		char *he;
		/* c->len check: memmem is declared nonnull and buf starts NULL. */
		while (!(he = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL)) {
			if (c->len > TH_MAX_HEAD) {
				send_error(c, 431);
				return END_CLOSE;
			}
			if (conn_fill(c) <= 0)
				return END_QUIET;
		}
		size_t hlen = (size_t)(he - c->buf) + 4;
		head_info hi;
		/* The previous body lives until here: a handler may have
		 * pointed reply->body at it. */
		free(rq->body);
		memset(rq, 0, sizeof *rq);
		int st = parse_head(c->buf, hlen - 2, rq, &hi);
		if (st) {
			send_error(c, st);
			return END_CLOSE;
		}
		size_t need = hlen + (size_t)(hi.clen > 0 ? hi.clen : 0);
		/* curl sends "Expect: 100-continue" for larger POST bodies and
		 * would otherwise stall for a second before sending them. */
		if (hi.expect_continue && c->len < need &&
		    conn_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0)
			return END_QUIET;
		while (c->len < need)
			if (conn_fill(c) <= 0)
				return END_QUIET;

		rq->body_len = need - hlen;
		rq->body = malloc(rq->body_len + 1);
		if (!rq->body)
			return END_CLOSE;
		memcpy(rq->body, c->buf + hlen, rq->body_len);
		rq->body[rq->body_len] = 0;
		rq->conn_id = c->id;
		memmove(c->buf, c->buf + need, c->len - need + 1);
		c->len -= need;

		th_reply r = { TH_RESPOND, 200, NULL, "ok", 0, 0 };
		int scripted = 0;
		if (record(s, rq, &r, &scripted) < 0)
			return END_CLOSE;
		if (!scripted && s->handler)
			s->handler(rq, &r, s->ud);
		int head_only = strcmp(rq->method, "HEAD") == 0;
		int closing = r.close || hi.close || (rq->http_minor == 0 && !hi.keep_alive) ||
		            (r.extra_headers && strcasestr(r.extra_headers, "connection: close"));

		if (r.delay_ms > 0 && wait_fd(s, -1, 0, r.delay_ms) < 0)
			return END_QUIET;
		if (r.action == TH_CLOSE_BEFORE_REPLY)
			return END_QUIET;
		if (r.action == TH_HANG) {
			/* Drain whatever arrives until the peer leaves or we stop. */
			char sink[4096];
			while (raw_recv(c, sink, sizeof sink) > 0)
				;
			return END_QUIET;
		}
		size_t n;
		char *b = build_reply(&r, closing && r.action == TH_RESPOND, head_only, &n);
		if (!b)
			return END_CLOSE;
		int w = conn_write(c, b, r.action == TH_RESET ? (n + 1) / 2 : n);
		free(b);
		if (r.action == TH_RESET)
			return END_RESET;
		if (w < 0)
			return END_QUIET;
		if (closing)
			return END_CLOSE;
	}
}

static void *conn_main(void *arg)
{
	conn *c = arg;
	th_server *s = c->s;
	th_request *rq = calloc(1, sizeof *rq);
	int how = END_QUIET;

	if (s->tls) {
		mbedtls_ssl_init(&c->ssl);
		if (mbedtls_ssl_setup(&c->ssl, &s->conf) != 0)
			goto out;
		mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
		int r;
		while ((r = mbedtls_ssl_handshake(&c->ssl)) != 0)
			if (r != MBEDTLS_ERR_SSL_WANT_READ && r != MBEDTLS_ERR_SSL_WANT_WRITE)
				goto out;
		c->tls_up = 1;
	}
	if (rq)
		how = serve(c, rq);
out:
	if (how == END_CLOSE && c->tls_up)
		mbedtls_ssl_close_notify(&c->ssl);
	if (how == END_RESET) {
		/* Linger 0 turns close() into an RST. */
		struct linger lg = { 1, 0 };
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	}
	close(c->fd);
	if (s->tls)
		mbedtls_ssl_free(&c->ssl);
	if (rq)
		free(rq->body);
	free(rq);
	free(c->buf);
	int slot = c->slot;
	free(c);

	pthread_mutex_lock(&s->mu);
	s->slots[slot].state = SLOT_DONE;
	s->active--;
	pthread_cond_broadcast(&s->slot_cv);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Accept thread                                                       */

/* Join finished connection threads; with all=1 (stopping) every one.
 * A slot is reusable only once joined, so after this at least
 * TH_MAX_CONNS - active slots are free. */
static void reap(th_server *s, int all)
{
	pthread_t tids[TH_MAX_CONNS];
	int n = 0;
	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < TH_MAX_CONNS; i++) {
		int st = s->slots[i].state;
		if (st == SLOT_DONE || (all && st == SLOT_RUNNING)) {
			tids[n++] = s->slots[i].tid;
			s->slots[i].state = SLOT_FREE;
		}
	}
	pthread_mutex_unlock(&s->mu);
	for (int i = 0; i < n; i++)
		pthread_join(tids[i], NULL);
}

static void *accept_main(void *arg)
{
	th_server *s = arg;
	for (;;) {
		/* At the limit, leave further clients in the listen backlog. */
		pthread_mutex_lock(&s->mu);
		while (!s->stopping && s->active == TH_MAX_CONNS)
			pthread_cond_wait(&s->slot_cv, &s->mu);
		int stopping = s->stopping;
		pthread_mutex_unlock(&s->mu);
		reap(s, 0);
		if (stopping || wait_fd(s, s->lfd, POLLIN, -1) < 0)
			break;
		int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;  /* the peer already left, or EMFILE: try again */
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
		int i = 0;
		while (s->slots[i].state != SLOT_FREE)
			i++;
		c->slot = i;
		c->id = (int)++s->conns;
		s->slots[i].state = SLOT_RUNNING;
		s->active++;
		/* Created under the lock so reap() never sees a RUNNING slot
		 * whose tid is not yet written. */
		if (pthread_create(&s->slots[i].tid, NULL, conn_main, c) != 0) {
			s->slots[i].state = SLOT_FREE;
			s->active--;
			close(fd);
			free(c);
		}
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Public API                                                          */

static void free_server(th_server *s)
{
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->stop_pipe[0] >= 0)
		close(s->stop_pipe[0]);
	if (s->stop_pipe[1] >= 0)
		close(s->stop_pipe[1]);
	if (s->tls) {
		mbedtls_ssl_config_free(&s->conf);
		mbedtls_x509_crt_free(&s->cert);
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
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static int tls_setup(th_server *s, const char *cert, const char *key)
{
	static const char *alpn[] = { "http/1.1", NULL };
	struct stat st;
	/* mbedTLS sizes its buffer with ftell(), which a directory turns
	 * into a huge calloc() that sanitizers abort on. */
	if (stat(cert, &st) != 0 || !S_ISREG(st.st_mode) ||
	    stat(key, &st) != 0 || !S_ISREG(st.st_mode))
		return -1;
	s->tls = 1;
	mbedtls_ssl_config_init(&s->conf);
	mbedtls_x509_crt_init(&s->cert);
	mbedtls_pk_init(&s->key);
	mbedtls_entropy_init(&s->entropy);
	mbedtls_ctr_drbg_init(&s->drbg);
	if (mbedtls_ctr_drbg_seed(&s->drbg, mbedtls_entropy_func, &s->entropy,
	                          (const unsigned char *)"th_httpd", 8) != 0 ||
	    mbedtls_x509_crt_parse_file(&s->cert, cert) != 0 ||
	    mbedtls_pk_parse_keyfile(&s->key, key, NULL) != 0 ||
	    mbedtls_ssl_config_defaults(&s->conf, MBEDTLS_SSL_IS_SERVER,
	                                MBEDTLS_SSL_TRANSPORT_STREAM,
	                                MBEDTLS_SSL_PRESET_DEFAULT) != 0)
		return -1;
	mbedtls_ssl_conf_rng(&s->conf, mbedtls_ctr_drbg_random, &s->drbg);
	mbedtls_ssl_conf_min_version(&s->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
	                             MBEDTLS_SSL_MINOR_VERSION_3);
	/* Offer only http/1.1 so an h2-capable client never tries HTTP/2. */
	if (mbedtls_ssl_conf_alpn_protocols(&s->conf, alpn) != 0 ||
	    mbedtls_ssl_conf_own_cert(&s->conf, &s->cert, &s->key) != 0)
		return -1;
	return 0;
}

static int start(th_server **out, const char *cert, const char *key,
                 th_handler h, void *ud)
{
	pthread_condattr_t ca;
	th_server *s = calloc(1, sizeof *s);
	*out = NULL;
	if (!s)
		return -1;
	s->lfd = s->stop_pipe[0] = s->stop_pipe[1] = -1;
	s->handler = h;
	s->ud = ud;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->rec_cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&s->slot_cv, NULL);

	struct sockaddr_in a;
	socklen_t al = sizeof a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* Non-blocking listener: a connection reset between poll() and
	 * accept() must not leave the acceptor stuck in accept(). */
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
	    listen(s->lfd, 128) != 0 ||
	    getsockname(s->lfd, (struct sockaddr *)&a, &al) != 0 ||
	    pipe2(s->stop_pipe, O_CLOEXEC) != 0 ||
	    (cert && tls_setup(s, cert, key) != 0) ||
	    pthread_create(&s->acceptor, NULL, accept_main, s) != 0) {
		free_server(s);
		return -1;
	}
	s->port = ntohs(a.sin_port);
	*out = s;
	return 0;
}

int th_start(th_server **out, th_handler h, void *ud)
{
	return start(out, NULL, NULL, h, ud);
}

int th_start_tls(th_server **out, const char *cert_pem_path,
                 const char *key_pem_path, th_handler h, void *ud)
{
	if (!cert_pem_path || !key_pem_path) {
		*out = NULL;
		return -1;
	}
	return start(out, cert_pem_path, key_pem_path, h, ud);
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

void th_stop(th_server *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_cond_broadcast(&s->slot_cv);
	pthread_mutex_unlock(&s->mu);
	/* Never read, so every poll() on the pipe from now on returns. */
	while (write(s->stop_pipe[1], "x", 1) < 0 && errno == EINTR)
		;
	pthread_join(s->acceptor, NULL);
	reap(s, 1);  /* no new connections now: the acceptor has exited */
	free_server(s);
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
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st = 0;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	int rc = posix_spawnp(&pid, "openssl", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		return -1;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}
