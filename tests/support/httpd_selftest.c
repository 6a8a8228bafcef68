/*
 * Self-test for the test HTTP server (httpd.c), driven by raw sockets and,
 * for TLS, the curl command.
 *
 * SPDX-License-Identifier: MIT
 */
#include "httpd.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

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

/* 64 connection threads at most; the rest wait in the backlog. */
static void test_limit(void)
{
	th_server *s;
	client *c = malloc(66 * sizeof *c);
	int n = 0;

	CHECK(c != NULL);
	if (!c)
		return;
	CHECK(th_start(&s, NULL, NULL) == 0);
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
	int fds = count_fds();
	test_basic();
	test_script_and_handler();
	test_stop_wakes();
	test_concurrency();
	test_limit();
	test_tls();
	CHECK(count_fds() == fds);
	printf("%d passed, %d failed\n", passed, failed);
	return failed != 0;
}
