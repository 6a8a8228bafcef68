/*
 * Self-test for the test HTTP server (httpd.c), driven by raw sockets and,
 * for TLS, the curl command and libcurl.
 *
 * SPDX-License-Identifier: MIT
 */
#include "httpd.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

static int passed, failed;

#define CHECK(cond) do { \
	if (cond) passed++; \
	else { failed++; fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

static long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

/* ------------------------------------------------------------------ */
/* A minimal client that keeps leftover bytes between responses.       */

typedef struct client { int fd; char buf[65536]; size_t len; } client;
typedef struct resp {
	int status;
	char head[4096];
	char body[4096];
	size_t partial;   /* bytes received when the connection ended early */
	int err;          /* errno of the failing recv, 0 for a clean EOF */
} resp;

static int cl_open(client *c, int port)
{
	struct sockaddr_in a;
	struct timeval tv = { 5, 0 };
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->len = 0;
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0)
		return -1;
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return connect(c->fd, (struct sockaddr *)&a, sizeof a);
}

static int cl_send(client *c, const char *s)
{
	size_t n = strlen(s);
	while (n > 0) {
		ssize_t r = send(c->fd, s, n, MSG_NOSIGNAL);
		if (r <= 0)
			return -1;
		s += r;
		n -= (size_t)r;
	}
	return 0;
}

/* >0 bytes, 0 EOF, -1 error (errno set). */
static ssize_t cl_fill(client *c)
{
	ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len - 1, 0);
	if (r > 0) {
		c->len += (size_t)r;
		c->buf[c->len] = 0;
	}
	return r;
}

/* Status of the next final response, or -1 if the connection ended first. */
static int cl_resp(client *c, resp *r)
{
	memset(r, 0, sizeof *r);
	for (;;) {
		char *he;
		c->buf[c->len] = 0;
		while (!(he = strstr(c->buf, "\r\n\r\n"))) {
			ssize_t n = cl_fill(c);
			if (n <= 0) {
				r->partial = c->len;
				r->err = n < 0 ? errno : 0;
				return -1;
			}
		}
		size_t hl = (size_t)(he - c->buf) + 4;
		r->status = atoi(c->buf + 9);
		if (r->status == 100) {  /* interim: drop it and read on */
			memmove(c->buf, c->buf + hl, c->len - hl + 1);
			c->len -= hl;
			continue;
		}
		snprintf(r->head, sizeof r->head, "%.*s", (int)hl, c->buf);
		const char *cl = strcasestr(r->head, "\r\nContent-Length:");
		size_t bl = cl ? (size_t)atol(cl + 17) : 0;
		while (c->len < hl + bl)
			if (cl_fill(c) <= 0)
				return -1;
		snprintf(r->body, sizeof r->body, "%.*s", (int)bl, c->buf + hl);
		memmove(c->buf, c->buf + hl + bl, c->len - hl - bl + 1);
		c->len -= hl + bl;
		return r->status;
	}
}

/* 1 if the peer closes the connection without sending anything more. */
static int cl_eof(client *c)
{
	return c->len == 0 && cl_fill(c) == 0;
}

/* ------------------------------------------------------------------ */

static void echo_handler(const th_request *req, th_reply *reply, void *ud)
{
	int *calls = ud;
	__atomic_fetch_add(calls, 1, __ATOMIC_SEQ_CST);
	if (strncmp(req->target, "/status/", 8) == 0) {
		reply->status = atoi(req->target + 8);
		reply->body = "custom";
		reply->extra_headers = "X-Handled: yes\r\n";
	} else if (strcmp(req->target, "/echo") == 0) {
		reply->body = req->body;  /* valid until the reply is sent */
	}
}

static void test_basic(void)
{
	th_server *s;
	client c;
	resp r;
	th_request q;

	CHECK(th_start(&s, NULL, NULL) == 0);
	CHECK(th_port(s) > 0);
	CHECK(cl_open(&c, th_port(s)) == 0);
	/* Two requests on one connection: keep-alive. */
	CHECK(cl_send(&c, "POST /hook?a=1 HTTP/1.1\r\nHost: x\r\nX-Test:  abc \r\n"
	                  "Content-Type: application/json\r\nContent-Length: 5\r\n\r\nhello") == 0);
	CHECK(cl_resp(&c, &r) == 200);
	CHECK(strcmp(r.body, "ok") == 0);
	CHECK(strstr(r.head, "HTTP/1.1 200 OK\r\n") == r.head);
	CHECK(cl_send(&c, "GET /two HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
	CHECK(cl_resp(&c, &r) == 200);
	/* Two more pipelined in one write. */
	CHECK(cl_send(&c, "PUT /p1 HTTP/1.1\r\nContent-Length: 2\r\n\r\nabDELETE /p2 HTTP/1.1\r\n\r\n") == 0);
	CHECK(cl_resp(&c, &r) == 200);
	CHECK(cl_resp(&c, &r) == 200);
	CHECK(th_wait(s, 4, 2000) == 0);
	CHECK(th_count(s) == 4);
	CHECK(th_connections(s) == 1);

	CHECK(th_get(s, 0, &q) == 0);
	CHECK(strcmp(q.method, "POST") == 0);
	CHECK(strcmp(q.target, "/hook?a=1") == 0);
	CHECK(q.http_minor == 1);
	CHECK(q.header_count == 4);
	CHECK(th_header(&q, "x-TEST") && strcmp(th_header(&q, "x-TEST"), "abc") == 0);
	CHECK(th_header(&q, "X-Missing") == NULL);
	CHECK(q.body_len == 5 && strcmp(q.body, "hello") == 0);
	int first_conn = q.conn_id;
	th_request_free(&q);
	CHECK(th_get(s, 1, &q) == 0);
	CHECK(strcmp(q.method, "GET") == 0 && q.body_len == 0 && q.body && q.body[0] == 0);
	CHECK(q.conn_id == first_conn);
	th_request_free(&q);
	CHECK(th_get(s, 2, &q) == 0);
	CHECK(strcmp(q.target, "/p1") == 0 && strcmp(q.body, "ab") == 0);
	th_request_free(&q);
	CHECK(th_get(s, 3, &q) == 0);
	CHECK(strcmp(q.method, "DELETE") == 0 && q.conn_id == first_conn);
	th_request_free(&q);
	CHECK(th_get(s, 4, &q) == -1);

	/* Expect: 100-continue, sending the body only after the interim. */
	CHECK(cl_send(&c, "POST /big HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n") == 0);
	while (!strstr(c.buf, "\r\n\r\n") && cl_fill(&c) > 0)
		;
	CHECK(strncmp(c.buf, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0);
	CHECK(cl_send(&c, "xyz") == 0);
	CHECK(cl_resp(&c, &r) == 200);
	CHECK(th_wait(s, 5, 2000) == 0);

	/* Connection: close is honoured. */
	CHECK(cl_send(&c, "GET /bye HTTP/1.1\r\nConnection: close\r\n\r\n") == 0);
	CHECK(cl_resp(&c, &r) == 200);
	CHECK(strstr(r.head, "Connection: close\r\n") != NULL);
	CHECK(cl_eof(&c));
	close(c.fd);

	/* HTTP/1.0 without keep-alive closes too; new connection id. */
	CHECK(cl_open(&c, th_port(s)) == 0);
	CHECK(cl_send(&c, "GET /old HTTP/1.0\r\n\r\n") == 0);
	CHECK(cl_resp(&c, &r) == 200);
	CHECK(cl_eof(&c));
	close(c.fd);
	CHECK(th_get(s, 6, &q) == 0);
	CHECK(q.http_minor == 0 && q.conn_id != first_conn);
	th_request_free(&q);
	CHECK(th_connections(s) == 2);
	th_stop(s);
}

static void test_script_and_handler(void)
{
	th_server *s;
	client c;
	resp r;
	int calls = 0;
	char retry[32];

	CHECK(th_start(&s, echo_handler, &calls) == 0);
	/* Script strings are copied: this buffer may change afterwards. */
	snprintf(retry, sizeof retry, "Retry-After: 5\r\n");
	th_reply script[] = {
		{ TH_RESPOND, 503, retry, "busy", 0, 0 },
		{ TH_RESPOND, 200, NULL, NULL, 0, 0 },
	};
	th_script(s, script, 2);
	retry[0] = 'Z';
	CHECK(cl_open(&c, th_port(s)) == 0);
	CHECK(cl_send(&c, "POST /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n") == 0);
	CHECK(cl_resp(&c, &r) == 503);
	CHECK(strstr(r.head, "HTTP/1.1 503 Service Unavailable\r\n") == r.head);
	CHECK(strstr(r.head, "\r\nRetry-After: 5\r\n") != NULL);
	CHECK(strcmp(r.body, "busy") == 0);
	CHECK(cl_send(&c, "POST /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n") == 0);
	CHECK(cl_resp(&c, &r) == 200);
	CHECK(strcmp(r.body, "") == 0);
	/* Script exhausted: the handler answers now. */
	CHECK(cl_send(&c, "GET /status/201 HTTP/1.1\r\n\r\n") == 0);
	CHECK(cl_resp(&c, &r) == 201);
	CHECK(strcmp(r.body, "custom") == 0 && strstr(r.head, "X-Handled: yes") != NULL);
	CHECK(cl_send(&c, "POST /echo HTTP/1.1\r\nContent-Length: 4\r\n\r\necho") == 0);
	CHECK(cl_resp(&c, &r) == 200 && strcmp(r.body, "echo") == 0);
	CHECK(cl_send(&c, "GET /plain HTTP/1.1\r\n\r\n") == 0);
	CHECK(cl_resp(&c, &r) == 200 && strcmp(r.body, "ok") == 0);
	CHECK(__atomic_load_n(&calls, __ATOMIC_SEQ_CST) == 3);

	/* A delayed reply takes at least its delay. */
	th_reply slow = { TH_RESPOND, 202, NULL, "late", 200, 0 };
	th_script(s, &slow, 1);
	long t0 = now_ms();
	CHECK(cl_send(&c, "GET /slow HTTP/1.1\r\n\r\n") == 0);
	CHECK(cl_resp(&c, &r) == 202);
	CHECK(now_ms() - t0 >= 195);

	/* Misbehaving receivers. */
	th_reply bad[] = {
		{ TH_CLOSE_BEFORE_REPLY, 0, NULL, NULL, 0, 0 },
		{ TH_RESET, 200, NULL, "this body is never complete", 0, 0 },
	};
	th_script(s, bad, 2);
	CHECK(cl_send(&c, "POST /x HTTP/1.1\r\nContent-Length: 1\r\n\r\n1") == 0);
	CHECK(cl_resp(&c, &r) == -1 && r.partial == 0 && r.err == 0);
	close(c.fd);
	CHECK(cl_open(&c, th_port(s)) == 0);
	CHECK(cl_send(&c, "POST /y HTTP/1.1\r\nContent-Length: 1\r\n\r\n2") == 0);
	CHECK(cl_resp(&c, &r) == -1);
	CHECK(r.partial > 0 && strncmp(c.buf, "HTTP/1.1 200", r.partial < 12 ? r.partial : 12) == 0);
	CHECK(r.err == ECONNRESET);
	close(c.fd);
	CHECK(th_count(s) == 8);  /* both misbehaving requests were recorded */

	/* Requests the server refuses are answered, closed, not recorded. */
	CHECK(cl_open(&c, th_port(s)) == 0);
	CHECK(cl_send(&c, "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n") == 0);
	CHECK(cl_resp(&c, &r) == 501);
	close(c.fd);
	CHECK(cl_open(&c, th_port(s)) == 0);
	CHECK(cl_send(&c, "garbage\r\n\r\n") == 0);
	CHECK(cl_resp(&c, &r) == 400);
	close(c.fd);
	CHECK(cl_open(&c, th_port(s)) == 0);
	char many[4096] = "GET / HTTP/1.1\r\n";
	for (int i = 0; i < TH_MAX_HEADERS + 1; i++)
		snprintf(many + strlen(many), sizeof many - strlen(many), "H%d: v\r\n", i);
	strcat(many, "\r\n");
	CHECK(cl_send(&c, many) == 0);
	CHECK(cl_resp(&c, &r) == 431);
	close(c.fd);
	CHECK(th_count(s) == 8);
	th_stop(s);
}

static void test_stop_wakes(void)
{
	th_server *s;
	client hang, idle, slow;
	th_reply hang_r = { TH_HANG, 0, NULL, NULL, 0, 0 };
	th_reply slow_r = { TH_RESPOND, 200, NULL, NULL, 10000, 0 };

	CHECK(th_start(&s, NULL, NULL) == 0);
	th_script(s, &hang_r, 1);
	th_script(s, &slow_r, 1);
	CHECK(cl_open(&hang, th_port(s)) == 0);
	CHECK(cl_send(&hang, "GET /hang HTTP/1.1\r\n\r\n") == 0);
	CHECK(th_wait(s, 1, 2000) == 0);
	CHECK(cl_open(&slow, th_port(s)) == 0);
	CHECK(cl_send(&slow, "GET /slow HTTP/1.1\r\n\r\n") == 0);
	CHECK(th_wait(s, 2, 2000) == 0);
	CHECK(cl_open(&idle, th_port(s)) == 0);
	CHECK(th_wait(s, 3, 100) == -1);  /* nothing sent on idle */
	long t0 = now_ms();
	th_stop(s);
	CHECK(now_ms() - t0 < 1000);
	CHECK(cl_eof(&hang));
	CHECK(cl_eof(&slow));
	close(hang.fd);
	close(slow.fd);
	close(idle.fd);
	th_stop(NULL);
}

struct burst { int port; int ok; };

static void *burst_main(void *arg)
{
	struct burst *b = arg;
	client *c = malloc(sizeof *c);
	resp *r = malloc(sizeof *r);
	if (c && r && cl_open(c, b->port) == 0) {
		for (int i = 0; i < 10; i++)
			if (cl_send(c, "POST /burst HTTP/1.1\r\nContent-Length: 4\r\n\r\nping") == 0 &&
			    cl_resp(c, r) == 200)
				b->ok++;
		close(c->fd);
	}
	free(c);
	free(r);
	return NULL;
}

static void test_concurrency(void)
{
	th_server *s;
	pthread_t t[8];
	struct burst b[8];
	int ok = 0;

	CHECK(th_start(&s, NULL, NULL) == 0);
	for (int i = 0; i < 8; i++) {
		b[i].port = th_port(s);
		b[i].ok = 0;
		pthread_create(&t[i], NULL, burst_main, &b[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		ok += b[i].ok;
	}
	CHECK(ok == 80);
	CHECK(th_count(s) == 80);
	CHECK(th_connections(s) == 8);
	th_stop(s);
}

/* th_connections(s) reaches n within 10 s (TSan thread start-up is slow). */
static int conns_reach(th_server *s, size_t n)
{
	for (long t0 = now_ms(); now_ms() - t0 < 10000; usleep(5000))
		if (th_connections(s) >= n)
			return 1;
	return 0;
}

/* With th_set_max_conns(64), 64 connections at most; the rest wait in
 * the backlog. */
static void test_limit(void)
{
	th_server *s;
	client *c = malloc(66 * sizeof *c);
	int n = 0;

	CHECK(c != NULL);
	if (!c)
		return;
	CHECK(th_start(&s, NULL, NULL) == 0);
	th_set_max_conns(s, 64);
	while (n < 66 && cl_open(&c[n], th_port(s)) == 0)
		n++;
	CHECK(n == 66);
	CHECK(conns_reach(s, 64));
	usleep(100000);
	CHECK(th_connections(s) == 64);
	close(c[0].fd);
	close(c[1].fd);
	CHECK(conns_reach(s, 66));
	th_stop(s);
	for (int i = 2; i < n; i++)
		close(c[i].fd);
	free(c);
}

static void test_tls(void)
{
	char dir[] = "/tmp/th_selftest.XXXXXX", cert[256], key[256], cmd[1024], out[64] = "";
	th_server *s;
	th_request q0, q1;

	q0.body = q1.body = NULL;

	if (!mkdtemp(dir)) {
		CHECK(0);
		return;
	}
	CHECK(th_make_cert(dir, cert, key, sizeof cert) == 0);
	CHECK(th_start_tls(&s, dir, key, NULL, NULL) == -1);  /* a directory */
	CHECK(th_start_tls(&s, key, key, NULL, NULL) == -1);  /* not a certificate */
	CHECK(th_start_tls(&s, cert, key, NULL, NULL) == 0);
	if (s) {
		/* Two URLs in one curl run share a connection: keep-alive over TLS. */
		snprintf(cmd, sizeof cmd,
		         "curl -sk --max-time 10 -o /dev/null -o /dev/null -w '%%{http_code} ' "
		         "-d tls-body https://127.0.0.1:%d/one https://127.0.0.1:%d/two",
		         th_port(s), th_port(s));
		FILE *p = popen(cmd, "r");
		if (p) {
			if (!fgets(out, sizeof out, p))
				out[0] = 0;
			pclose(p);
		}
		CHECK(strcmp(out, "200 200 ") == 0);
		CHECK(th_count(s) == 2);
		CHECK(th_get(s, 0, &q0) == 0 && th_get(s, 1, &q1) == 0);
		CHECK(strcmp(q0.target, "/one") == 0 && strcmp(q0.body, "tls-body") == 0);
		CHECK(strcmp(q1.target, "/two") == 0);
		CHECK(q0.conn_id == q1.conn_id && th_connections(s) == 1);
		th_request_free(&q0);
		th_request_free(&q1);
		th_stop(s);
	}
	unlink(cert);
	unlink(key);
	rmdir(dir);
}

/* A handler that blocks holds up its own connection only: /wait blocks
 * until a /release, sent on another connection, has been handled. */
typedef struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int released;
} gate;

static void gate_handler(const th_request *req, th_reply *reply, void *ud)
{
	gate *g = ud;
	pthread_mutex_lock(&g->mu);
	if (strcmp(req->target, "/release") == 0) {
		g->released = 1;
		pthread_cond_broadcast(&g->cv);
	} else {
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += 5;
		while (!g->released && pthread_cond_timedwait(&g->cv, &g->mu, &dl) == 0)
			;
		reply->status = g->released ? 200 : 504;
	}
	pthread_mutex_unlock(&g->mu);
}

static void test_blocking_handler(void)
{
	gate g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	th_server *s;
	client a, b;
	resp r;

	CHECK(th_start(&s, gate_handler, &g) == 0);
	CHECK(cl_open(&a, th_port(s)) == 0);
	CHECK(cl_send(&a, "GET /wait HTTP/1.1\r\n\r\n") == 0);
	CHECK(th_wait(s, 1, 2000) == 0);
	long t0 = now_ms();
	CHECK(cl_open(&b, th_port(s)) == 0);
	CHECK(cl_send(&b, "GET /release HTTP/1.1\r\n\r\n") == 0);
	CHECK(cl_resp(&b, &r) == 200);
	CHECK(cl_resp(&a, &r) == 200);
	CHECK(now_ms() - t0 < 2000);
	close(a.fd);
	close(b.fd);
	th_stop(s);
}

/* Bodies far larger than socket buffers: the server's reads and writes
 * stop and resume many times. */
#define BIG_LEN (4 * 1024 * 1024)

static char *big_body(void)
{
	char *b = malloc(BIG_LEN + 1);
	if (b) {
		for (size_t i = 0; i < BIG_LEN; i++)
			b[i] = (char)('a' + i % 26);
		b[BIG_LEN] = 0;
	}
	return b;
}

typedef struct big_sender { int fd; const char *b; size_t n; int ok; } big_sender;

static void *big_send_main(void *arg)
{
	big_sender *w = arg;
	size_t off = 0;
	while (off < w->n) {
		ssize_t r = send(w->fd, w->b + off, w->n - off, MSG_NOSIGNAL);
		if (r <= 0)
			return NULL;
		off += (size_t)r;
	}
	w->ok = 1;
	return NULL;
}

static void test_big_body(void)
{
	th_server *s;
	client c;
	int calls = 0;
	char *body = big_body(), *got = malloc(BIG_LEN + 4096);
	char head[128];

	CHECK(body && got);
	if (!body || !got)
		goto out;
	CHECK(th_start(&s, echo_handler, &calls) == 0);
	CHECK(cl_open(&c, th_port(s)) == 0);
	snprintf(head, sizeof head, "POST /echo HTTP/1.1\r\nContent-Length: %d\r\n\r\n", BIG_LEN);
	CHECK(cl_send(&c, head) == 0);
	/* Send from another thread: the reply may start before we finish. */
	big_sender w = { c.fd, body, BIG_LEN, 0 };
	pthread_t t;
	pthread_create(&t, NULL, big_send_main, &w);
	size_t n = 0;
	const char *he = NULL;
	long clen = -1;
	while (clen < 0 || n < (size_t)(he - got) + 4 + (size_t)clen) {
		ssize_t r = recv(c.fd, got + n, BIG_LEN + 4096 - 1 - n, 0);
		if (r <= 0)
			break;
		n += (size_t)r;
		got[n] = 0;
		if (!he && (he = strstr(got, "\r\n\r\n")) != NULL) {
			const char *cl = strcasestr(got, "\r\nContent-Length:");
			clen = cl && cl < he ? atol(cl + 17) : 0;
		}
	}
	pthread_join(t, NULL);
	CHECK(w.ok);
	CHECK(he && strncmp(got, "HTTP/1.1 200 OK\r\n", 17) == 0);
	CHECK(clen == BIG_LEN);
	CHECK(he && n == (size_t)(he - got) + 4 + BIG_LEN &&
	      memcmp(he + 4, body, BIG_LEN) == 0);
	close(c.fd);
	th_stop(s);
out:
	free(body);
	free(got);
}

/* ------------------------------------------------------------------ */
/* Scale: over a thousand keep-alive connections, each reply delayed.  */

static void delay_handler(const th_request *req, th_reply *reply, void *ud)
{
	(void)req;
	(void)ud;
	reply->delay_ms = 100;
}

/*
 * SCALE_N clients, one socket each, all opened before any is answered,
 * each sending one request to a server that answers after 100 ms.  One
 * thread drives them all with poll(), so the client side is cheap.
 */
#ifndef SCALE_N
#define SCALE_N 1100  /* -DSCALE_N=2100 to try more */
#endif

static void test_scale(void)
{
	static const char req[] = "GET /scale HTTP/1.1\r\nHost: x\r\n\r\n";
	static const char want[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	const size_t want_len = sizeof want - 1;
	struct pollfd *pf = calloc(SCALE_N, sizeof *pf);
	size_t *got = calloc(SCALE_N, sizeof *got);
	char (*buf)[sizeof want] = calloc(SCALE_N, sizeof *buf);
	th_server *s = NULL;
	int opened = 0, sent = 0, answered = 0, right = 0, eofs = 0;

	CHECK(pf && got && buf);
	if (!pf || !got || !buf)
		goto out;
	/* A client and a server socket per connection, plus slack.  Below
	 * that the rest would only fail by EMFILE: one failure says it. */
	int nofile = th_raise_nofile(2 * SCALE_N + 256);
	CHECK(nofile == 0);
	if (nofile != 0) {
		fprintf(stderr, "test_scale: RLIMIT_NOFILE's hard limit is below %d\n",
		        2 * SCALE_N + 256);
		goto out;
	}
	CHECK(th_start(&s, delay_handler, NULL) == 0);
	if (!s)
		goto out;

	long t0 = now_ms();
	for (int i = 0; i < SCALE_N; i++) {
		client c;
		pf[i].fd = -1;
		if (cl_open(&c, th_port(s)) != 0) {
			if (c.fd >= 0)
				close(c.fd);
			continue;
		}
		opened++;
		pf[i].fd = c.fd;
		pf[i].events = POLLIN;
		if (cl_send(&c, req) == 0)
			sent++;
		fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
	}
	long t_open = now_ms() - t0;
	/* Keep-alive: a reply is complete when its body is in, not at EOF. */
	while (answered < opened && now_ms() - t0 < 10000) {
		if (poll(pf, SCALE_N, 100) <= 0)
			continue;
		for (int i = 0; i < SCALE_N; i++) {
			if (pf[i].fd < 0 || !pf[i].revents)
				continue;
			ssize_t r = recv(pf[i].fd, buf[i] + got[i], sizeof buf[i] - 1 - got[i], 0);
			if (r > 0)
				got[i] += (size_t)r;
			if (r == 0 || got[i] == want_len || (r < 0 && errno != EAGAIN)) {
				answered++;
				right += got[i] == want_len && memcmp(buf[i], want, want_len) == 0;
				pf[i].events = 0;  /* still open, no longer watched */
			}
		}
	}
	long t_all = now_ms() - t0;
	CHECK(opened == SCALE_N);
	CHECK(sent == SCALE_N);
	CHECK(right == SCALE_N);
	CHECK(th_count(s) == SCALE_N);
	CHECK(th_connections(s) == SCALE_N);
	/* All at once: one at a time would take SCALE_N * 100 ms. */
	CHECK(t_all < 5000);

	/* Stopping with every connection open and idle is prompt, and each
	 * client then sees the server's FIN. */
	long t1 = now_ms();
	th_stop(s);
	long t_stop = now_ms() - t1;
	CHECK(t_stop < 1000);
	for (int i = 0; i < SCALE_N; i++) {
		if (pf[i].fd < 0)
			continue;
		char ch;
		eofs += recv(pf[i].fd, &ch, 1, 0) == 0;
		close(pf[i].fd);
	}
	CHECK(eofs == SCALE_N);
	printf("scale: %d connections opened in %ld ms, %d answered (100 ms delay each) "
	       "in %ld ms, th_stop %ld ms\n", opened, t_open, right, t_all, t_stop);
out:
	free(pf);
	free(got);
	free(buf);
}

/* ------------------------------------------------------------------ */
/* TLS with libcurl: mutual TLS, versions, the legacy server.          */

typedef struct tls_client {
	const char *ca;           /* CURLOPT_CAINFO; NULL: no verification */
	const char *cert, *key;   /* a client certificate, or NULL */
	long version;             /* CURLOPT_SSLVERSION; 0: libcurl's default */
	const char *ciphers;      /* CURLOPT_SSL_CIPHER_LIST or NULL */
} tls_client;

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

/* The HTTP status of GET https://127.0.0.1:port/path, or -CURLcode. */
static long https_get(int port, const char *path, const tls_client *o)
{
	char url[256];
	long status = 0;
	CURL *h = curl_easy_init();
	if (!h)
		return -1000;
	snprintf(url, sizeof url, "https://127.0.0.1:%d%s", port, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	if (o->ca) {
		curl_easy_setopt(h, CURLOPT_CAINFO, o->ca);
	} else {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (o->cert) {
		curl_easy_setopt(h, CURLOPT_SSLCERT, o->cert);
		curl_easy_setopt(h, CURLOPT_SSLKEY, o->key);
	}
	if (o->version)
		curl_easy_setopt(h, CURLOPT_SSLVERSION, o->version);
	if (o->ciphers)
		curl_easy_setopt(h, CURLOPT_SSL_CIPHER_LIST, o->ciphers);
	CURLcode rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	return rc == CURLE_OK ? status : -(long)rc;
}

/* A failed handshake, as libcurl reports it (not, say, a refused port). */
static int tls_refused(long r)
{
	return r == -(long)CURLE_SSL_CONNECT_ERROR;
}

typedef struct pki { char dir[64], ca[128], server[128], server_key[128],
	client[128], client_key[128], other[128], other_key[128]; } pki;

static int pki_make(pki *p)
{
	snprintf(p->dir, sizeof p->dir, "/tmp/th_pki.XXXXXX");
	if (!mkdtemp(p->dir))
		return -1;
	snprintf(p->ca, sizeof p->ca, "%s/ca.pem", p->dir);
	snprintf(p->server, sizeof p->server, "%s/server.pem", p->dir);
	snprintf(p->server_key, sizeof p->server_key, "%s/server.key", p->dir);
	snprintf(p->client, sizeof p->client, "%s/client.pem", p->dir);
	snprintf(p->client_key, sizeof p->client_key, "%s/client.key", p->dir);
	snprintf(p->other, sizeof p->other, "%s/other-client.pem", p->dir);
	snprintf(p->other_key, sizeof p->other_key, "%s/other-client.key", p->dir);
	return th_make_pki(p->dir);
}

/* Entries in dir, besides . and .. */
static int dir_entries(const char *dir)
{
	int n = 0;
	DIR *d = opendir(dir);
	struct dirent *e;
	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

static void test_mtls(const pki *p)
{
	th_server *s = NULL;
	th_request q;
	th_tls_options o;
	tls_client good = { p->ca, p->client, p->client_key, 0, NULL };
	tls_client none = { p->ca, NULL, NULL, 0, NULL };
	tls_client other = { p->ca, p->other, p->other_key, 0, NULL };

	memset(&o, 0, sizeof o);
	o.cert_pem_path = p->server;
	o.key_pem_path = p->server_key;
	o.client_ca_pem_path = p->ca;
	CHECK(th_start_tls_opts(&s, &o, NULL, NULL) == 0);
	if (!s)
		return;
	CHECK(https_get(th_port(s), "/mtls", &good) == 200);
	CHECK(th_count(s) == 1);
	CHECK(th_get(s, 0, &q) == 0);
	CHECK(strcmp(th_client_cn(&q), "flaghook-test-client") == 0);
	CHECK(strcmp(q.target, "/mtls") == 0);
	th_request_free(&q);
	CHECK(tls_refused(https_get(th_port(s), "/no-cert", &none)));
	CHECK(tls_refused(https_get(th_port(s), "/wrong-ca", &other)));
	CHECK(th_count(s) == 1);
	CHECK(th_connections(s) == 3);
	th_stop(s);

	/* Without client_ca_pem_path no certificate is asked for: CN "". */
	o.client_ca_pem_path = NULL;
	CHECK(th_start_tls_opts(&s, &o, NULL, NULL) == 0);
	if (!s)
		return;
	CHECK(https_get(th_port(s), "/plain", &none) == 200);
	CHECK(th_get(s, 0, &q) == 0);
	CHECK(strcmp(th_client_cn(&q), "") == 0);
	th_request_free(&q);
	th_stop(s);

	/* Files that are missing or not a CA are refused at start. */
	o.client_ca_pem_path = p->dir;
	CHECK(th_start_tls_opts(&s, &o, NULL, NULL) == -1 && s == NULL);
	o.client_ca_pem_path = "/nonexistent/ca.pem";
	CHECK(th_start_tls_opts(&s, &o, NULL, NULL) == -1);
	o.client_ca_pem_path = p->server_key;
	CHECK(th_start_tls_opts(&s, &o, NULL, NULL) == -1);
	CHECK(th_start_tls_opts(&s, NULL, NULL, NULL) == -1);
}

static void test_tls_versions(const pki *p)
{
	th_server *s = NULL;
	th_tls_options o;
	/* What libflaghook's transport does: libcurl's defaults, a CA. */
	tls_client normal = { p->ca, NULL, NULL, 0, NULL };
	tls_client tls12 = { p->ca, NULL, NULL, CURL_SSLVERSION_TLSv1_2, NULL };
	/* OpenSSL 3 speaks TLS 1.0/1.1 only at security level 0. */
	tls_client tls11 = { p->ca, NULL, NULL,
	                     CURL_SSLVERSION_TLSv1_0 | CURL_SSLVERSION_MAX_TLSv1_1,
	                     "DEFAULT@SECLEVEL=0" };

	memset(&o, 0, sizeof o);
	o.cert_pem_path = p->server;
	o.key_pem_path = p->server_key;
	o.min_minor = o.max_minor = 2;
	CHECK(th_start_tls_opts(&s, &o, NULL, NULL) == 0);
	if (s) {
		CHECK(https_get(th_port(s), "/v12", &normal) == 200);
		CHECK(https_get(th_port(s), "/v12", &tls12) == 200);
		CHECK(tls_refused(https_get(th_port(s), "/v11", &tls11)));
		CHECK(th_count(s) == 2);
		th_stop(s);
	}

	/* max_minor 1 (min 0: TLS 1.0): mbedTLS as a legacy server. */
	o.min_minor = 0;
	o.max_minor = 1;
	CHECK(th_start_tls_opts(&s, &o, NULL, NULL) == 0);
	if (s) {
		CHECK(tls_refused(https_get(th_port(s), "/v12", &normal)));
		CHECK(tls_refused(https_get(th_port(s), "/v12", &tls12)));
		CHECK(https_get(th_port(s), "/v11", &tls11) == 200);
		CHECK(th_count(s) == 1);
		th_stop(s);
	}

	/* No TLS 1.3 in mbedTLS 2.28; min above max; out of range. */
	int bad[][2] = { { 0, 3 }, { 2, 1 }, { -1, 0 }, { 0, -1 } };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		o.min_minor = bad[i][0];
		o.max_minor = bad[i][1];
		CHECK(th_start_tls_opts(&s, &o, NULL, NULL) == -1 && s == NULL);
	}
}

static int port_open(int port)
{
	client c;
	int ok = cl_open(&c, port) == 0;
	if (c.fd >= 0)
		close(c.fd);
	return ok;
}

static void test_legacy(const pki *p)
{
	th_legacy *l = NULL;
	int port = 0;
	tls_client normal = { p->ca, NULL, NULL, 0, NULL };
	tls_client tls12 = { p->ca, NULL, NULL, CURL_SSLVERSION_TLSv1_2, NULL };
	tls_client tls11 = { p->ca, NULL, NULL,
	                     CURL_SSLVERSION_TLSv1_0 | CURL_SSLVERSION_MAX_TLSv1_1,
	                     "DEFAULT@SECLEVEL=0" };

	long t0 = now_ms();
	CHECK(th_legacy_tls_start(&l, p->server, p->server_key, &port) == 0);
	long t_start = now_ms() - t0;
	if (!l)
		return;
	CHECK(port > 0 && port_open(port));
	CHECK(tls_refused(https_get(port, "/", &tls12)));
	CHECK(tls_refused(https_get(port, "/", &normal)));
	/* It does serve TLS 1.0/1.1, to a client that allows them. */
	CHECK(https_get(port, "/", &tls11) == 200);
	th_legacy_stop(l);
	CHECK(!port_open(port));
	th_legacy_stop(NULL);
	printf("legacy: s_server up in %ld ms\n", t_start);

	/* A key is not a certificate: s_server exits, start says so. */
	CHECK(th_legacy_tls_start(&l, p->server_key, p->server_key, &port) == -1 && !l);
	CHECK(th_legacy_tls_start(&l, p->dir, p->server_key, &port) == -1 && !l);
	/* No openssl on PATH.  (No other thread runs now: setenv is safe.) */
	char *path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
	setenv("PATH", "/nonexistent", 1);
	t0 = now_ms();
	CHECK(th_legacy_tls_start(&l, p->server, p->server_key, &port) == -1 && !l);
	CHECK(now_ms() - t0 < 2000);
	if (path)
		setenv("PATH", path, 1);
	else
		unsetenv("PATH");
	free(path);
}

/* A big POST echoed over TLS: mbedTLS's WANT_READ/WANT_WRITE paths. */
typedef struct sink_check { const char *want; size_t n; int bad; } sink_check;

static size_t check_sink(char *p, size_t size, size_t n, void *ud)
{
	sink_check *k = ud;
	size_t len = size * n;
	if (k->n + len > BIG_LEN || memcmp(p, k->want + k->n, len) != 0)
		k->bad = 1;
	k->n += len;
	return len;
}

static void test_tls_big_body(const pki *p)
{
	th_server *s = NULL;
	int calls = 0;
	char *body = big_body(), url[128];
	long status = 0;

	CHECK(body != NULL);
	if (!body)
		return;
	CHECK(th_start_tls(&s, p->server, p->server_key, echo_handler, &calls) == 0);
	CURL *h = curl_easy_init();
	if (s && h) {
		sink_check k = { body, 0, 0 };
		snprintf(url, sizeof url, "https://127.0.0.1:%d/echo", th_port(s));
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
		curl_easy_setopt(h, CURLOPT_CAINFO, p->ca);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)BIG_LEN);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, check_sink);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, &k);
		CHECK(curl_easy_perform(h) == CURLE_OK);
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		CHECK(status == 200);
		CHECK(k.n == BIG_LEN && !k.bad);
	}
	curl_easy_cleanup(h);
	th_stop(s);
	free(body);
}

/* Many mutual-TLS handshakes at once, spread over the server's loops:
 * they share the server key and the CA (see warm_ec_key in httpd.c). */
#define TLS_N 64

static void test_tls_concurrent(const pki *p)
{
	th_server *s = NULL;
	th_tls_options o;
	CURL *h[TLS_N];
	char url[128];
	int ok = 0, cn_ok = 0;

	memset(&o, 0, sizeof o);
	o.cert_pem_path = p->server;
	o.key_pem_path = p->server_key;
	o.client_ca_pem_path = p->ca;
	CHECK(th_start_tls_opts(&s, &o, delay_handler, NULL) == 0);
	CURLM *m = curl_multi_init();
	if (!s || !m)
		goto out;
	snprintf(url, sizeof url, "https://127.0.0.1:%d/many", th_port(s));
	for (int i = 0; i < TLS_N; i++) {
		h[i] = curl_easy_init();
		curl_easy_setopt(h[i], CURLOPT_URL, url);
		curl_easy_setopt(h[i], CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(h[i], CURLOPT_TIMEOUT_MS, 20000L);
		curl_easy_setopt(h[i], CURLOPT_CAINFO, p->ca);
		curl_easy_setopt(h[i], CURLOPT_SSLCERT, p->client);
		curl_easy_setopt(h[i], CURLOPT_SSLKEY, p->client_key);
		curl_easy_setopt(h[i], CURLOPT_FRESH_CONNECT, 1L);
		curl_easy_setopt(h[i], CURLOPT_WRITEFUNCTION, discard);
		curl_multi_add_handle(m, h[i]);
	}
	for (int running = 1; running; ) {
		CURLMsg *msg;
		int left;
		if (curl_multi_perform(m, &running) != CURLM_OK ||
		    curl_multi_poll(m, NULL, 0, 100, NULL) != CURLM_OK)
			break;
		while ((msg = curl_multi_info_read(m, &left))) {
			long st = 0;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &st);
			ok += msg->msg == CURLMSG_DONE && msg->data.result == CURLE_OK && st == 200;
		}
	}
	for (int i = 0; i < TLS_N; i++) {
		curl_multi_remove_handle(m, h[i]);
		curl_easy_cleanup(h[i]);
	}
	CHECK(ok == TLS_N);
	CHECK(th_connections(s) == TLS_N);
	for (size_t i = 0; i < TLS_N; i++) {
		th_request q;
		if (th_get(s, i, &q) == 0) {
			cn_ok += strcmp(th_client_cn(&q), "flaghook-test-client") == 0;
			th_request_free(&q);
		}
	}
	CHECK(cn_ok == TLS_N);
out:
	curl_multi_cleanup(m);
	th_stop(s);
}

static void test_pki(void)
{
	pki p;
	long t0 = now_ms();
	int made = pki_make(&p);
	long t_pki = now_ms() - t0;
	CHECK(made == 0);
	/* The nine documented files and nothing else. */
	CHECK(dir_entries(p.dir) == 9);
	if (made == 0) {
		test_mtls(&p);
		test_tls_versions(&p);
		test_legacy(&p);
		test_tls_big_body(&p);
		test_tls_concurrent(&p);
	}
	th_remove_pki(p.dir);
	CHECK(rmdir(p.dir) == 0);
	CHECK(th_make_pki("/nonexistent/dir") == -1);
	printf("pki: made in %ld ms\n", t_pki);
}

/* Open descriptors, to catch sockets th_stop failed to close. */
static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

int main(void)
{
	long t0 = now_ms();
	/* Before counting: libcurl may keep descriptors of its own. */
	CHECK(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK);
	int fds = count_fds();
	test_basic();
	test_script_and_handler();
	test_stop_wakes();
	test_concurrency();
	test_limit();
	test_tls();
	test_blocking_handler();
	test_big_body();
	test_scale();
	test_pki();
	CHECK(count_fds() == fds);
	curl_global_cleanup();
	/* The last line is what tests/run.sh counts: "N passed, N failed". */
	printf("self-test took %ld ms\n%d passed, %d failed\n", now_ms() - t0, passed, failed);
	return failed != 0;
}
