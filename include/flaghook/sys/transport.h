/*
 * libflaghook, for plug-in authors: the transport (how a request is sent)
 * and the executor (who runs the library's jobs).  A flag server that
 * uses the defaults never needs this file.  Included by <flaghook.h>.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef FLAGHOOK_SYS_TRANSPORT_H
#define FLAGHOOK_SYS_TRANSPORT_H

#include "../common.h"
#include "../outbox.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Transport and executor                                             */

typedef struct flaghook_header {
	const char *name;
	const char *value;
} flaghook_header;

/* One POST, as the library hands it to a transport. */
#define FLAGHOOK_REQUEST_VERSION 2
typedef struct flaghook_request {
	unsigned int version;       /* FLAGHOOK_REQUEST_VERSION of the library */
	const char *url;
	const flaghook_header *headers;
	size_t header_count;
	const void *body;
	size_t body_len;
	int64_t connect_timeout_ms;
	int64_t timeout_ms;
	/* A transport polls this during a transfer when it can; non-zero means
	 * stop now (the client is shutting down).  NULL: nothing to poll. */
	int (*cancelled)(void *cancel_ctx);
	void *cancel_ctx;
	/* ---- version 2 ---- */
	/* The addresses the library resolved the URL's host to and vetted
	 * (numeric, IPv6 without brackets): connect to one of these and
	 * nowhere else, on `port`.  0 count: the host is an IP literal the
	 * library vetted, the guard is off (a proxy), or the transport is the
	 * caller's (the library does not resolve for it). */
	const char *const *addresses;
	size_t address_count;
	int32_t port;
	int32_t tls_min_version;    /* FLAGHOOK_TLS_* */
	const char *ca_file;        /* NULL: the system's */
	const char *ca_path;        /* a directory of CAs; NULL: none */
	const char *client_cert;    /* PEM file for mutual TLS; NULL: none */
	const char *client_key;     /* PEM file of its key */
	const char *client_key_password; /* NULL: the key is not encrypted */
	const char *proxy;          /* NULL: none; never from the environment */
} flaghook_request;

/* What a transport reports back; the library owns the buffers. */
#define FLAGHOOK_RESPONSE_VERSION 1
typedef struct flaghook_response {
	unsigned int version;       /* FLAGHOOK_RESPONSE_VERSION of the library */
	int32_t status;             /* HTTP status, 0 when none arrived */
	int32_t errclass;           /* FLAGHOOK_ERRCLASS_* for a transport failure */
	char *error;                /* NUL-terminated detail, error_size bytes */
	size_t error_size;
	char *body;                 /* response excerpt: up to body_size bytes */
	size_t body_size;
	size_t body_len;            /* set by the transport */
	char retry_after[64];       /* the Retry-After header, if any */
} flaghook_response;

/*
 * A transport sends requests and fills their responses, in one of two ways.
 *
 * start (version 2; preferred): starts the request and returns at once;
 * when it has finished, however it ended, the transport fills `response`
 * and calls done(done_ctx) exactly once, from any thread (possibly before
 * start returns).  request, response and everything they point to stay
 * valid until done is called.  No library thread waits meanwhile: the
 * default transport keeps thousands in flight on one I/O thread.
 *
 * send (version 1): sends and returns when it has finished; the library
 * runs it on an executor thread (or, in SYNC mode, the emitting thread),
 * which waits for it.  Used only when start is NULL.
 *
 * The SSRF guard's name lookup and connect-time check are the default
 * transport's: a transport of the caller's gets the URL (an IP literal in
 * it was judged by flaghook_endpoint_add) and connects its own way, so it
 * vets what it connects to itself (flaghook_url_check does it the
 * library's way).
 *
 * Both return 0 when they could try (the outcome is in the response,
 * transport failures included) and a negative code only when they could
 * not run at all (start then never calls done); the library treats that
 * (and a signing failure) as a transport failure, which the retry policy
 * may retry.  Both may be called from several threads at once.
 */
struct flaghook_transport {
	unsigned int version;
	int (*send)(const flaghook_request *request, flaghook_response *response,
	            void *user_data);
	void (*destroy)(void *user_data); /* nullable; called by flaghook_client_free */
	void *user_data;
	/* ---- version 2 ---- */
	int (*start)(const flaghook_request *request, flaghook_response *response,
	             void (*done)(void *done_ctx), void *done_ctx, void *user_data);
	/* Nullable: end every request in flight soon (shutdown's deadline has
	 * passed); each still gets its done, as a failure. */
	void (*cancel)(void *user_data);
};

#define FLAGHOOK_TRANSPORT_VERSION 2
#define FLAGHOOK_TRANSPORT_INIT { FLAGHOOK_TRANSPORT_VERSION, 0, 0, 0, 0, 0 }
FLAGHOOK_EXTERN int flaghook_transport_init(flaghook_transport *transport,
                                            unsigned int version);

/* The caller's thread pool: run job(arg) on some thread, soon.  submit
 * returns 0 when it took the job (it must then run it exactly once, also
 * while flaghook_client_free waits for it: free returns only after every
 * accepted job has run) and non-zero to refuse it: the library offers the
 * work again shortly (an attempt after 50 ms of the client's clock, given
 * up after 200 refusals in a row; finished attempts and store polls about
 * 20 ms later, as often as it takes).  Only once flaghook_client_free's
 * shutdown_timeout_ms has passed does the library run refused finished
 * attempts itself, on the thread running the loop.  It is never called
 * with a library lock held, so it may run the job inline. */
struct flaghook_executor {
	unsigned int version;
	int (*submit)(void (*job)(void *arg), void *arg, void *user_data);
	void *user_data;
};

#define FLAGHOOK_EXECUTOR_VERSION 1
#define FLAGHOOK_EXECUTOR_INIT { FLAGHOOK_EXECUTOR_VERSION, 0, 0 }
FLAGHOOK_EXTERN int flaghook_executor_init(flaghook_executor *executor,
                                           unsigned int version);

#ifdef __cplusplus
}
#endif

#endif /* FLAGHOOK_SYS_TRANSPORT_H */
