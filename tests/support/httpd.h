/*
 * A small multi-threaded HTTP/1.1 (and HTTPS) server on 127.0.0.1 used by
 * the tests as a webhook receiver, including receivers that misbehave on
 * purpose.  Test support only; not part of libflaghook.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TH_HTTPD_H
#define TH_HTTPD_H

#include <stddef.h>

#define TH_MAX_HEADERS 32

typedef struct th_field {
	char name[64];
	char value[1024];              /* leading/trailing whitespace trimmed */
} th_field;

typedef struct th_request {
	char method[16];
	char target[512];              /* path + query, as sent */
	int http_minor;                /* 1 for HTTP/1.1, 0 for HTTP/1.0 */
	size_t header_count;
	th_field headers[TH_MAX_HEADERS]; /* in arrival order, duplicates kept */
	char *body;                    /* NUL-terminated copy (never NULL) */
	size_t body_len;
	int conn_id;                   /* 1, 2, ...: the TCP connection it came on */
} th_request;

typedef enum th_action {
	TH_RESPOND = 0,
	TH_CLOSE_BEFORE_REPLY,         /* read the request, close the socket (FIN) */
	TH_RESET,                      /* read it, send half a reply, then RST */
	TH_HANG                        /* never answer; released by th_stop */
} th_action;

/*
 * How to answer one request.  Strings are copied by th_script(); a handler's
 * strings must stay valid after it returns (literals, owned by ud, or
 * req->body, which lives until the reply has been sent).
 */
typedef struct th_reply {
	th_action action;
	int status;                    /* 0 means 200 */
	const char *extra_headers;     /* "Retry-After: 5\r\nLocation: /x\r\n" or NULL */
	const char *body;              /* NULL means empty */
	int delay_ms;                  /* wait before acting; th_stop cuts it short */
	int close;                     /* close the connection after replying */
} th_reply;

typedef struct th_server th_server;

/*
 * Called on a connection thread, possibly concurrently, for each request the
 * script does not cover.  *reply starts as 200 "ok".
 */
typedef void (*th_handler)(const th_request *req, th_reply *reply, void *ud);

/* Listen on an ephemeral 127.0.0.1 port.  h may be NULL.  0 or -1. */
int th_start(th_server **out, th_handler h, void *ud);
/* Same over TLS 1.2 (mbedTLS) with the given PEM certificate and key. */
int th_start_tls(th_server **out, const char *cert_pem_path,
                 const char *key_pem_path, th_handler h, void *ud);
int th_port(const th_server *s);

/*
 * Append replies to the script.  Each request that arrives takes the next
 * one, in arrival order; once the script is used up the handler (or 200
 * "ok") answers.
 */
void th_script(th_server *s, const th_reply *replies, size_t n);

size_t th_count(th_server *s);          /* requests fully received so far */
/* 0 once at least n requests have arrived, -1 on timeout. */
int th_wait(th_server *s, size_t n, int timeout_ms);
/* Copy of request i (0-based); free with th_request_free.  0 or -1. */
int th_get(th_server *s, size_t i, th_request *out);
void th_request_free(th_request *r);
/* Value of the first header called name (any case), or NULL. */
const char *th_header(const th_request *r, const char *name);
size_t th_connections(th_server *s);    /* TCP connections accepted so far */
/* Close every socket, wake every waiting thread, join them, free.  NULL ok. */
void th_stop(th_server *s);

/*
 * Make a self-signed certificate for 127.0.0.1 / localhost in dir with the
 * openssl command: dir/cert.pem and dir/key.pem.  0 or -1.
 */
int th_make_cert(const char *dir, char *cert_path, char *key_path,
                 size_t path_size);

#endif
