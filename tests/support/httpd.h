/*
 * A small multi-threaded HTTP/1.1 (and HTTPS) server on 127.0.0.1 used by
 * the tests as a webhook receiver, including receivers that misbehave on
 * purpose.  Test support only; not part of libflaghook.
 *
 * Connections are served by a few event-loop threads, so thousands can be
 * open at once (also under ThreadSanitizer); handlers run on a pool of
 * worker threads.  Up to TH_MAX_CONNS connections are served at once
 * (th_set_max_conns lowers it); further clients wait in a 4096-deep
 * listen backlog.  A test that opens more than a few hundred connections
 * calls th_raise_nofile first.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TH_HTTPD_H
#define TH_HTTPD_H

#include <stddef.h>

#define TH_MAX_HEADERS 32
#define TH_MAX_CONNS   4096        /* default cap on simultaneous connections */

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
	char client_cn[128];           /* see th_client_cn() */
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
	int delay_ms;                  /* wait before acting (a timer, no thread);
	                                  th_stop cuts it short */
	int close;                     /* close the connection after replying */
} th_reply;

typedef struct th_server th_server;

/*
 * Called for each request the script does not cover, on a worker thread:
 * possibly concurrently with calls for other connections, and a call that
 * blocks for a while (a lock, a short sleep) holds up only its own
 * connection -- though to answer late, set reply->delay_ms instead, which
 * costs no thread.  The pool grows while every worker is busy, up to 256.
 * *reply starts as 200 "ok"; the reply is built as soon as this returns.
 */
typedef void (*th_handler)(const th_request *req, th_reply *reply, void *ud);

/* Listen on an ephemeral 127.0.0.1 port.  h may be NULL.  0 or -1. */
int th_start(th_server **out, th_handler h, void *ud);
/* Same over TLS 1.2 (mbedTLS) with the given PEM certificate and key. */
int th_start_tls(th_server **out, const char *cert_pem_path,
                 const char *key_pem_path, th_handler h, void *ud);

/*
 * TLS server options; zero-initialise, then set what you need.
 *
 * min_minor and max_minor are the x of "TLS 1.x" (1: TLS 1.1, 2: TLS 1.2);
 * 0 means the default: at most TLS 1.2 (the newest Debian's mbedTLS 2.28
 * speaks; 3 is refused), at least TLS 1.2 -- or, when max_minor is below
 * 2, at least TLS 1.0, so {0, 1} is a TLS 1.0/1.1-only server.  Debian's
 * mbedTLS 2.28 has TLS 1.0, 1.1 and 1.2 compiled in.
 */
typedef struct th_tls_options {
	const char *cert_pem_path, *key_pem_path;  /* the server's */
	/* Non-NULL: require a client certificate signed by this CA (mutual
	 * TLS); a handshake without one, or with one from another CA, fails. */
	const char *client_ca_pem_path;
	int min_minor, max_minor;                   /* TLS 1.x; 0: defaults, above */
} th_tls_options;

/* th_start_tls with options.  -1 on a bad option or unreadable file. */
int th_start_tls_opts(th_server **out, const th_tls_options *o, th_handler h,
                      void *ud);

/*
 * The subject CN of the client certificate of request r's connection
 * (r->client_cn, truncated to 127 bytes), "" when it had none.
 */
const char *th_client_cn(const th_request *r);

int th_port(const th_server *s);

/*
 * Serve at most n connections at once (default TH_MAX_CONNS, n >= 1);
 * further clients wait in the listen backlog until one closes.  Call it
 * before clients connect.
 */
void th_set_max_conns(th_server *s, size_t n);

/*
 * Raise this process's RLIMIT_NOFILE soft limit to at least n descriptors
 * (a client and a server socket per loopback connection, plus some), up to
 * the hard limit.  0 when n are now allowed, -1 when the hard limit is
 * lower (the soft limit is then raised to it).
 */
int th_raise_nofile(size_t n);

/*
 * A loopback port on which nothing listens: a socket bound to it and never
 * listening, kept in *fd, so that a connection to it is refused and nobody
 * else can take the port while *fd is open.  The caller closes *fd.
 * Returns the port, or -1 (*fd -1).
 */
int th_refused_port(int *fd);

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

/*
 * Make a small PKI in dir with the openssl command, EC P-256 keys, valid
 * two days:
 *   ca.pem, ca.key                a CA (CN=flaghook-test-ca)
 *   server.pem, server.key        CN=127.0.0.1, SAN IP:127.0.0.1 and
 *                                 DNS:localhost, serverAuth, signed by the CA
 *   client.pem, client.key        CN=flaghook-test-client, clientAuth,
 *                                 signed by the CA
 *   other-ca.pem                  a second CA (CN=flaghook-other-ca)
 *   other-client.pem, other-client.key
 *                                 CN=flaghook-other-client, clientAuth,
 *                                 signed by the second CA: "wrong CA" tests
 * and nothing else (working files are removed).  Paths are dir/<name>.
 * 0 or -1.
 */
int th_make_pki(const char *dir);
/* Remove the files th_make_pki makes from dir (not dir itself). */
void th_remove_pki(const char *dir);

/*
 * A TLS 1.0/1.1-only server, to show a client refuses it: `openssl
 * s_server -www` on a free 127.0.0.1 port, with the security level lowered
 * to 0 so OpenSSL 3 allows those versions, serving the given certificate.
 * It answers any GET with "HTTP/1.0 200 ok" and a status page, one
 * connection at a time; other methods (POST) get no answer.  *port gets
 * the port, which accepts connections when this returns.  The server stops
 * with th_legacy_stop(), which kills and reaps it, or when this process
 * ends.  0, or -1 (openssl missing, a bad certificate or key).
 */
typedef struct th_legacy th_legacy;
int th_legacy_tls_start(th_legacy **out, const char *cert_pem_path,
                        const char *key_pem_path, int *port);
void th_legacy_stop(th_legacy *l);  /* NULL ok */

#endif
