/* The client handle and its endpoints, shared by client.c, endpoint.c and
 * dispatch.c. */
#ifndef FLAGHOOK_CLIENT_H
#define FLAGHOOK_CLIENT_H

#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct fh_endpoint {
	uint64_t id;
	int32_t scope;
	int64_t scope_id;
	uint32_t events;            /* resolved mask, never 0 */
	int32_t profile;
	uint32_t render_flags;
	char *url;
	char *secret;               /* NULL: no X-Flagsmith-Signature */
	size_t secret_len;
	char **standard_secrets;
	size_t standard_secret_count;
	atomic_int enabled;
	atomic_int refs;            /* the registry's and every in-flight use */
} fh_endpoint;

struct flaghook_client {
	flaghook_allocator allocator_copy;
	const flaghook_allocator *allocator; /* NULL or &allocator_copy */
	int32_t mode;
	int64_t connect_timeout_ms;
	int64_t timeout_ms;
	size_t max_body_bytes;
	size_t max_response_bytes;
	char *user_agent;
	flaghook_transport transport;
	flaghook_storage storage;
	void (*on_result)(const flaghook_result *, void *);
	void *user_data;

	pthread_rwlock_t lock;      /* guards the endpoint list */
	fh_endpoint **endpoints;
	size_t endpoint_count, endpoint_cap;
	uint64_t next_endpoint_id;
	atomic_uint_fast64_t next_delivery_id;

	pthread_mutex_t error_lock;
	char last_error[512];
};

/* Copies the thread's last error into the client; returns rc. */
int flaghook__client_fail(flaghook_client *c, int rc);

void flaghook__endpoint_release(flaghook_client *c, fh_endpoint *ep);
/* Takes a reference on every enabled endpoint that should get an event of
 * this type and scope.  *out is allocated; count in *n. */
int flaghook__route(flaghook_client *c, int type, int64_t env_id, int64_t org_id,
                    fh_endpoint ***out, size_t *n);
void flaghook__endpoints_free(flaghook_client *c);


#endif
