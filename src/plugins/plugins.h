/*
 * The default plug-ins: the libcurl transport, the built-in pool and the
 * memory store.  They fill the same tables a caller could fill; the
 * engine calls them only through those tables.
 */
#ifndef FLAGHOOK_PLUGINS_H
#define FLAGHOOK_PLUGINS_H

#include "internal.h"
#include "io/loop.h"
#include "net/resolve.h"
#include "net/url.h"

/* ---- the libcurl transport (transport_curl.c) ---- */

typedef struct fh_curl_config {
	const flaghook_allocator *allocator;
	fh_loop *loop;              /* its sockets and timer go here */
	const fh_guard *guard;      /* vets every address before connecting; the
	                               client's, which outlives the transport */
	long max_host_connections;  /* 0: no limit */
	int32_t http_version;       /* FLAGHOOK_HTTP_* */
	const fh_proxy *proxy;      /* the client's, taken apart; NULL: none */
} fh_curl_config;

/* A transport with start and cancel: one multi handle on the loop. */
int flaghook__transport_curl(flaghook_transport *out, const fh_curl_config *cfg);

/* ---- the built-in executor (executor_pool.c) ---- */

typedef struct fh_pool fh_pool;
int flaghook__pool_start(fh_pool **out, int threads, const flaghook_allocator *a);
int flaghook__pool_submit(void (*job)(void *), void *arg, void *user_data);
/* Runs what was submitted, then joins the threads.  NULL: no-op. */
void flaghook__pool_stop(fh_pool *p);

/* ---- the memory store (storage_memory.c) ---- */

int flaghook__storage_memory(flaghook_storage *out, const flaghook_allocator *a);
/* Deliveries the memory store holds (for tests). */
size_t flaghook__storage_memory_count(void *user_data);

#endif
