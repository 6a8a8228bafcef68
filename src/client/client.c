/* The client: options, lifecycle, global init, plug-in table initialisers. */
#include "client/client.h"
#include "client/registry.h"
#include "engine/engine.h"
#include "engine/notify.h"
#include "net/tls.h"
#include "plugins/plugins.h"

#include <curl/curl.h>

#include <stdio.h>
#include <string.h>

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_MAX_BODY (1024 * 1024)
#define DEFAULT_MAX_RESPONSE (64 * 1024)
#define DEFAULT_THREADS 4
#define DEFAULT_MAX_PENDING 100000
#define DEFAULT_MAX_IN_FLIGHT 16
#define DEFAULT_MAX_TRANSFERS 1000
#define MAX_ALLOW_CIDRS 1024
#define DEFAULT_BREAKER_THRESHOLD 5
#define DEFAULT_BREAKER_COOLDOWN_MS 30000
#define DEFAULT_SHUTDOWN_MS 5000
#define DEFAULT_POLL_MS 1000
#define MAX_THREADS 1024

/* ---- global state: libcurl's, counted ---- */

static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned global_refs;

int flaghook_global_init(void)
{
	int rc = 0;
	pthread_mutex_lock(&global_lock);
	if (global_refs == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		rc = flaghook__error(FLAGHOOK_ETRANSPORT, "curl_global_init failed");
	if (!rc)
		global_refs++;
	pthread_mutex_unlock(&global_lock);
	return rc;
}

void flaghook_global_cleanup(void)
{
	pthread_mutex_lock(&global_lock);
	if (global_refs && --global_refs == 0)
		curl_global_cleanup();
	pthread_mutex_unlock(&global_lock);
}

/* ---- plug-in table initialisers ---- */

/* Each table's size at every version (see util/version.h). */
static const size_t transport_sizes[] = {
	0,
	FH_SIZE_BEFORE(flaghook_transport, start), /* 1: send only */
	sizeof(flaghook_transport),                 /* 2: start, cancel */
};
static const size_t executor_sizes[] = { 0, sizeof(flaghook_executor) };
static const size_t storage_sizes[] = { 0, sizeof(flaghook_storage) };
static const size_t allocator_sizes[] = { 0, sizeof(flaghook_allocator) };
static const size_t client_options_sizes[] = {
	0,
	FH_SIZE_BEFORE(flaghook_client_options, allow_private), /* 1 */
	FH_SIZE_BEFORE(flaghook_client_options, result_queue),  /* 2: the network */
	sizeof(flaghook_client_options),                         /* 3: bindings, logs */
};

int flaghook_transport_init(flaghook_transport *t, unsigned int version)
{
	return flaghook__struct_init(t, version, transport_sizes, FH_COUNT(transport_sizes), "transport");
}

int flaghook_executor_init(flaghook_executor *x, unsigned int version)
{
	return flaghook__struct_init(x, version, executor_sizes, FH_COUNT(executor_sizes), "executor");
}

int flaghook_storage_init(flaghook_storage *st, unsigned int version)
{
	return flaghook__struct_init(st, version, storage_sizes, FH_COUNT(storage_sizes), "storage");
}

int flaghook_client_options_init(flaghook_client_options *o, unsigned int version)
{
	return flaghook__struct_init(o, version, client_options_sizes, FH_COUNT(client_options_sizes),
	                             "client options");
}

int64_t flaghook__clock(flaghook_client *c)
{
	return c->clock ? c->clock(c->user_data) : flaghook__mono_us();
}

/* ---- errors kept per client ---- */

int flaghook__client_fail(flaghook_client *c, int rc)
{
	if (rc < 0 && c) {
		pthread_mutex_lock(&c->error_lock);
		snprintf(c->last_error, sizeof(c->last_error), "%s", flaghook_last_error());
		pthread_mutex_unlock(&c->error_lock);
	}
	return rc;
}

size_t flaghook_client_last_error(const flaghook_client *c, char *buf, size_t size)
{
	if (!c)
		return 0;
	flaghook_client *mc = (flaghook_client *)c; /* the lock is not part of the value */
	pthread_mutex_lock(&mc->error_lock);
	size_t len = strlen(mc->last_error);
	if (buf && size)
		snprintf(buf, size, "%s", mc->last_error);
	pthread_mutex_unlock(&mc->error_lock);
	return len;
}

int flaghook_client_storage(flaghook_client *c, const flaghook_storage **out)
{
	flaghook__error_clear();
	if (!c || !out)
		return flaghook__error(FLAGHOOK_EINVAL, "client or out is NULL");
	*out = &c->storage;
	return 0;
}

/* ---- lifecycle ---- */

/* The caller's options and plug-in tables, each read at the version the
 * caller gave it and widened to ours (defaults for what it lacks). */
typedef struct options_copy {
	flaghook_client_options o;
	flaghook_transport transport;
	flaghook_executor executor;
	flaghook_storage storage;
	flaghook_allocator allocator;
} options_copy;

static int read_options(options_copy *x, const flaghook_client_options *opts)
{
	int rc = opts ? flaghook__struct_read(&x->o, opts, client_options_sizes, FH_COUNT(client_options_sizes),
	                                      "client options")
	              : flaghook_client_options_init(&x->o, FLAGHOOK_CLIENT_OPTIONS_VERSION);
	if (!rc && x->o.transport &&
	    !(rc = flaghook__struct_read(&x->transport, x->o.transport, transport_sizes, FH_COUNT(transport_sizes),
	                                 "transport")))
		x->o.transport = &x->transport;
	if (!rc && x->o.executor &&
	    !(rc = flaghook__struct_read(&x->executor, x->o.executor, executor_sizes, FH_COUNT(executor_sizes),
	                                 "executor")))
		x->o.executor = &x->executor;
	if (!rc && x->o.storage &&
	    !(rc = flaghook__struct_read(&x->storage, x->o.storage, storage_sizes, FH_COUNT(storage_sizes),
	                                 "storage")))
		x->o.storage = &x->storage;
	if (!rc && x->o.allocator &&
	    !(rc = flaghook__struct_read(&x->allocator, x->o.allocator, allocator_sizes, FH_COUNT(allocator_sizes),
	                                 "allocator")))
		x->o.allocator = &x->allocator;
	return rc;
}

static int check_options(const flaghook_client_options *o)
{
	if (o->mode != FLAGHOOK_MODE_SYNC && o->mode != FLAGHOOK_MODE_ASYNC)
		return flaghook__error(FLAGHOOK_EINVAL, "client options mode %d is not a mode", (int)o->mode);
	if (o->connect_timeout_ms < 0 || o->timeout_ms < 0 || o->emit_wait_ms < 0 ||
	    o->breaker_cooldown_ms < 0 || o->disable_after_ms < 0 || o->poll_interval_ms < 0)
		return flaghook__error(FLAGHOOK_EINVAL, "client options times must not be negative");
	if (o->threads < 0 || o->threads > MAX_THREADS || o->max_in_flight < 0)
		return flaghook__error(FLAGHOOK_EINVAL, "client options threads must be 0..%d and max_in_flight >= 0",
		                       MAX_THREADS);
	if (o->timers != FLAGHOOK_TIMERS_THREAD && o->timers != FLAGHOOK_TIMERS_TICK)
		return flaghook__error(FLAGHOOK_EINVAL, "client options timers %d is not a timer mode", (int)o->timers);
	if (o->allocator && (!o->allocator->malloc || !o->allocator->realloc || !o->allocator->free))
		return flaghook__error(FLAGHOOK_EINVAL, "allocator needs all three functions");
	if (o->transport && !o->transport->send && !o->transport->start)
		return flaghook__error(FLAGHOOK_EINVAL, "transport needs send or start");
	if (o->storage && (!o->storage->put || !o->storage->record))
		return flaghook__error(FLAGHOOK_EINVAL, "storage needs put and record");
	if (o->executor && !o->executor->submit)
		return flaghook__error(FLAGHOOK_EINVAL, "executor needs submit");
	if (o->user_agent) {
		for (const char *p = o->user_agent; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return flaghook__error(FLAGHOOK_EINVAL, "user_agent has a control character");
	}
	if (o->max_transfers < 0 || o->max_host_connections < 0)
		return flaghook__error(FLAGHOOK_EINVAL, "client options max_transfers and max_host_connections must "
		                                        "not be negative");
	if (o->tls_min_version && o->tls_min_version != FLAGHOOK_TLS_1_2 && o->tls_min_version != FLAGHOOK_TLS_1_3)
		return flaghook__error(FLAGHOOK_EINVAL, "client options tls_min_version 0x%x is not FLAGHOOK_TLS_1_2 "
		                       "or FLAGHOOK_TLS_1_3 (nothing older is allowed)", (unsigned)o->tls_min_version);
	if (o->log_level < 0 || o->log_level > FLAGHOOK_LOG_DEBUG)
		return flaghook__error(FLAGHOOK_EINVAL, "client options log_level %d is not a FLAGHOOK_LOG_*",
		                       (int)o->log_level);
	if (o->http_version != FLAGHOOK_HTTP_DEFAULT && o->http_version != FLAGHOOK_HTTP_1_1)
		return flaghook__error(FLAGHOOK_EINVAL, "client options http_version %d is not a FLAGHOOK_HTTP_*",
		                       (int)o->http_version);
	if (o->allow_cidr_count && !o->allow_cidrs)
		return flaghook__error(FLAGHOOK_EINVAL, "client options allow_cidrs is NULL with a count");
	if (o->allow_cidr_count > MAX_ALLOW_CIDRS)
		return flaghook__error(FLAGHOOK_EINVAL, "client options allow_cidrs: at most %d", MAX_ALLOW_CIDRS);
	if (o->proxy) {
		int rc = flaghook__proxy_parse(o->proxy, NULL, NULL);
		if (rc)
			return rc;
	}
	return flaghook__tls_check("client", o->ca_file, o->ca_path, NULL, NULL, NULL);
}

/* The guard: its allow-list parsed once, here. */
static int guard_make(flaghook_client *c, const flaghook_client_options *o)
{
	c->guard.on = o->proxy == NULL;
	c->guard.policy.allow_private = o->allow_private != 0;
	if (!o->allow_cidr_count)
		return 0;
	c->guard.allow = flaghook__calloc(c->allocator, o->allow_cidr_count, sizeof(*c->guard.allow));
	if (!c->guard.allow)
		return flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
	for (size_t i = 0; i < o->allow_cidr_count; i++) {
		char what[48];
		snprintf(what, sizeof(what), "allow_cidrs[%zu]", i);
		int rc = flaghook__cidr_parse(o->allow_cidrs[i], &c->guard.allow[i], what);
		if (rc)
			return rc;
	}
	c->guard.policy.allow = c->guard.allow;
	c->guard.policy.allow_count = o->allow_cidr_count;
	return 0;
}

static int copy_string(flaghook_client *c, char **to, const char *from)
{
	if (!from)
		return 0;
	*to = flaghook__strdup(c->allocator, from);
	return *to ? 0 : flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
}

int flaghook_client_new(flaghook_client **out, const flaghook_client_options *opts)
{
	flaghook__error_clear();
	if (!out)
		return flaghook__error(FLAGHOOK_EINVAL, "out is NULL");
	*out = NULL;
	options_copy x;
	int rc = read_options(&x, opts);
	if (rc)
		return rc;
	const flaghook_client_options *o = &x.o;
	if ((rc = check_options(o)))
		return rc;
	if ((rc = flaghook_global_init()))
		return rc;

	flaghook_client *c = flaghook__calloc(o->allocator, 1, sizeof(*c));
	if (!c) {
		flaghook_global_cleanup();
		return flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
	}
	if (o->allocator) {
		c->allocator_copy = *o->allocator;
		c->allocator = &c->allocator_copy;
	}
	c->on_log = o->on_log;
	c->log_level = o->log_level ? o->log_level : FLAGHOOK_LOG_WARN;
	c->result_queue = o->result_queue != 0;
	if ((rc = flaghook__queue_init(c))) {
		flaghook__free(o->allocator, c);
		flaghook_global_cleanup();
		return rc;
	}
	c->mode = o->mode;
	c->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : DEFAULT_TIMEOUT_MS;
	c->timeout_ms = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
	c->max_body_bytes = o->max_body_bytes ? o->max_body_bytes : DEFAULT_MAX_BODY;
	c->max_response_bytes = o->max_response_bytes ? o->max_response_bytes : DEFAULT_MAX_RESPONSE;
	c->on_result = o->on_result;
	c->on_attempt = o->on_attempt;
	c->on_endpoint_disabled = o->on_endpoint_disabled;
	c->user_data = o->user_data;
	c->max_pending = o->max_pending ? o->max_pending : DEFAULT_MAX_PENDING;
	c->emit_wait_ms = o->emit_wait_ms;
	/* No thread waits on a transfer, so in-flight limits are about the
	 * receivers, not the pool: a slow endpoint holds at most
	 * max_in_flight of the client's max_transfers. */
	c->max_in_flight = o->max_in_flight ? o->max_in_flight : DEFAULT_MAX_IN_FLIGHT;
	c->max_transfers = o->max_transfers ? o->max_transfers : DEFAULT_MAX_TRANSFERS;
	c->tls_min_version = o->tls_min_version ? o->tls_min_version : FLAGHOOK_TLS_1_2;
	c->breaker_threshold = o->breaker_threshold ? o->breaker_threshold : DEFAULT_BREAKER_THRESHOLD;
	c->breaker_cooldown_ms = o->breaker_cooldown_ms ? o->breaker_cooldown_ms : DEFAULT_BREAKER_COOLDOWN_MS;
	c->disable_after_ms = o->disable_after_ms;
	c->shutdown_timeout_ms = o->shutdown_timeout_ms > 0 ? o->shutdown_timeout_ms
	                         : o->shutdown_timeout_ms < 0 ? 0 : DEFAULT_SHUTDOWN_MS;
	c->timers = o->timers;
	c->clock = o->clock;
	c->poll_interval_ms = o->poll_interval_ms ? o->poll_interval_ms : DEFAULT_POLL_MS;
	if (o->executor)
		c->executor = *o->executor;
	pthread_rwlock_init(&c->lock, NULL);
	pthread_mutex_init(&c->error_lock, NULL);

	char ua[64];
	snprintf(ua, sizeof(ua), "libflaghook/%s", FLAGHOOK_VERSION);
	c->user_agent = flaghook__strdup(c->allocator, o->user_agent ? o->user_agent : ua);
	if (!c->user_agent) {
		rc = flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
		goto fail;
	}
	if ((rc = copy_string(c, &c->ca_file, o->ca_file)) || (rc = copy_string(c, &c->ca_path, o->ca_path)) ||
	    (rc = copy_string(c, &c->proxy, o->proxy)) || (rc = guard_make(c, o)) ||
	    (o->proxy && (rc = flaghook__proxy_parse(o->proxy, &c->proxy_parts, c->allocator))))
		goto fail;
	if ((rc = flaghook__engine_init(c)))
		goto fail;
	if (o->transport) {
		c->transport = *o->transport;
	} else {
		fh_curl_config cc = { c->allocator, c->loop, &c->guard, o->max_host_connections, o->http_version,
		                      o->proxy ? &c->proxy_parts : NULL };
		if ((rc = flaghook__transport_curl(&c->transport, &cc)))
			goto fail;
		c->own_transport = true;
	}
	if (o->storage)
		c->storage = *o->storage;
	else if ((rc = flaghook__storage_memory(&c->storage, c->allocator)))
		goto fail;
	c->durable = (c->storage.flags & FLAGHOOK_STORAGE_DURABLE) != 0;
	if ((rc = flaghook__policy_make(&c->policy, o->retry, c->allocator)))
		goto fail;
	if ((rc = flaghook__engine_start(c, o->threads ? o->threads : DEFAULT_THREADS)))
		goto fail;
	*out = c;
	return 0;
fail:
	/* The caller's plug-ins stay the caller's when we fail. */
	if (o->transport)
		memset(&c->transport, 0, sizeof(c->transport));
	if (o->storage)
		memset(&c->storage, 0, sizeof(c->storage));
	flaghook_client_free(c);
	return rc;
}

void flaghook_client_free(flaghook_client *c)
{
	if (!c)
		return;
	/* Deliveries first: they hold endpoints, bodies and the transport. */
	flaghook__engine_stop(c);
	flaghook__endpoints_free(c);
	flaghook__policy_free(&c->policy, c->allocator);
	if (c->transport.destroy)
		c->transport.destroy(c->transport.user_data);
	if (c->storage.destroy)
		c->storage.destroy(c->storage.user_data);
	flaghook__engine_free(c); /* the loop, after the transport that used it */
	flaghook__queue_free(c);  /* last: shutdown reported into it */
	flaghook__free(c->allocator, c->user_agent);
	flaghook__free(c->allocator, c->ca_file);
	flaghook__free(c->allocator, c->ca_path);
	flaghook__free_secret(c->allocator, c->proxy); /* it may carry credentials */
	flaghook__proxy_free(&c->proxy_parts, c->allocator);
	flaghook__free(c->allocator, c->guard.allow);
	pthread_rwlock_destroy(&c->lock);
	pthread_mutex_destroy(&c->error_lock);
	flaghook_allocator a = c->allocator_copy;
	bool custom = c->allocator != NULL;
	flaghook__wipe(c->last_error, sizeof(c->last_error));
	flaghook__free(custom ? &a : NULL, c);
	flaghook_global_cleanup();
}
