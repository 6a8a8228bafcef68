/*
 * Versioned structs (review defect 2).  A program built against an older
 * header hands the library the older, shorter layout of a struct: every
 * *_init() must write only that much, and every function that reads the
 * struct must read only that much.  Each case lays a struct of its old
 * size in a buffer with a guard after it.
 *
 * The sizes of old versions come from frozen copies of their layouts
 * below: when a struct grows, freeze its previous layout here.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "flaghook.h"
#include "flaghook_pg.h"
#include "flaghook_sqlite.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GUARD 64
#define FILL 0xA5

/* ---- frozen layouts of earlier versions ---- */

/* flaghook_sqlite_options, version 1 (before file_mode). */
typedef struct sqlite_options_v1 {
	unsigned int version;
	const char *path;
	int32_t synchronous;
	int64_t busy_timeout_ms;
	int64_t prune_after_ms;
	int32_t attempt_log_max;
	size_t response_max;
	const flaghook_allocator *allocator;
} sqlite_options_v1;

/* flaghook_transport, version 1 (send only). */
typedef struct transport_v1 {
	unsigned int version;
	int (*send)(const flaghook_request *, flaghook_response *, void *);
	void (*destroy)(void *);
	void *user_data;
} transport_v1;

/* flaghook_client_options, version 1 (before the network options). */
typedef struct client_options_v1 {
	unsigned int version;
	int32_t mode;
	int64_t connect_timeout_ms, timeout_ms;
	size_t max_body_bytes, max_response_bytes;
	const char *user_agent, *ca_file;
	const flaghook_transport *transport;
	const flaghook_executor *executor;
	const flaghook_storage *storage;
	const flaghook_allocator *allocator;
	void (*on_result)(const flaghook_result *, void *);
	void *user_data;
	int32_t threads;
	size_t max_pending;
	int64_t emit_wait_ms;
	const flaghook_retry_policy *retry;
	int32_t max_in_flight, breaker_threshold;
	int64_t breaker_cooldown_ms, disable_after_ms, shutdown_timeout_ms;
	int32_t timers;
	int64_t (*clock)(void *);
	void (*on_attempt)(const flaghook_result *, void *);
	void (*on_endpoint_disabled)(uint64_t, int32_t, void *);
	int64_t poll_interval_ms;
} client_options_v1;

/* flaghook_client_options, version 2 (the network; before bindings' and
 * operators' members). */
typedef struct client_options_v2 {
	client_options_v1 v1;       /* ends in an int64: no tail padding */
	int32_t allow_private;
	const char *const *allow_cidrs;
	size_t allow_cidr_count;
	const char *proxy;
	int32_t tls_min_version;
	const char *ca_path;
	int32_t max_transfers, max_host_connections, http_version;
} client_options_v2;

/* flaghook_endpoint_options, version 1 (before TLS). */
typedef struct endpoint_options_v1 {
	unsigned int version;
	int32_t scope;
	int64_t scope_id;
	const char *url, *secret;
	size_t secret_len;
	uint32_t events;
	int32_t disabled, profile;
	uint32_t render_flags;
	const char *const *standard_secrets;
	size_t standard_secret_count;
	int32_t fifo, max_in_flight;
	const flaghook_retry_policy *retry;
	uint64_t id;
} endpoint_options_v1;

/* ---- every *_init() at every version it knows ---- */

typedef struct init_case {
	const char *name;
	int (*init)(void *p, unsigned int version);
	unsigned int current;
	size_t sizes[4];            /* sizes[v]: the struct at version v */
} init_case;

#define INIT(fn) ((int (*)(void *, unsigned int))(fn))

static const init_case cases[] = {
	{ "allocator", INIT(flaghook_allocator_init), FLAGHOOK_ALLOCATOR_VERSION,
	  { 0, sizeof(flaghook_allocator) } },
	{ "event", INIT(flaghook_event_init), FLAGHOOK_EVENT_VERSION, { 0, sizeof(flaghook_event) } },
	{ "render options", INIT(flaghook_render_options_init), FLAGHOOK_RENDER_OPTIONS_VERSION,
	  { 0, sizeof(flaghook_render_options) } },
	{ "transport", INIT(flaghook_transport_init), FLAGHOOK_TRANSPORT_VERSION,
	  { 0, sizeof(transport_v1), sizeof(flaghook_transport) } },
	{ "executor", INIT(flaghook_executor_init), FLAGHOOK_EXECUTOR_VERSION,
	  { 0, sizeof(flaghook_executor) } },
	{ "query", INIT(flaghook_query_init), FLAGHOOK_QUERY_VERSION, { 0, sizeof(flaghook_query) } },
	{ "storage", INIT(flaghook_storage_init), FLAGHOOK_STORAGE_VERSION, { 0, sizeof(flaghook_storage) } },
	{ "retry policy", INIT(flaghook_retry_policy_init), FLAGHOOK_RETRY_POLICY_VERSION,
	  { 0, sizeof(flaghook_retry_policy) } },
	{ "client options", INIT(flaghook_client_options_init), FLAGHOOK_CLIENT_OPTIONS_VERSION,
	  /* v2 ends in an int32: its 4 bytes of tail padding hold version 3's
	   * first member, so the library reads and writes only up to there */
	  { 0, sizeof(client_options_v1), offsetof(client_options_v2, http_version) + sizeof(int32_t),
	    sizeof(flaghook_client_options) } },
	{ "endpoint options", INIT(flaghook_endpoint_options_init), FLAGHOOK_ENDPOINT_OPTIONS_VERSION,
	  { 0, sizeof(endpoint_options_v1), sizeof(flaghook_endpoint_options) } },
	{ "pg options", INIT(flaghook_pg_options_init), FLAGHOOK_PG_OPTIONS_VERSION,
	  { 0, sizeof(flaghook_pg_options) } },
	{ "sqlite options", INIT(flaghook_sqlite_options_init), FLAGHOOK_SQLITE_OPTIONS_VERSION,
	  { 0, sizeof(sqlite_options_v1), sizeof(flaghook_sqlite_options) } },
};

static void test_init_writes_only_its_version(void **state)
{
	(void)state;
	int checked_older = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const init_case *c = &cases[i];
		if (c->sizes[c->current] == 0)
			fail_msg("%s: no size for its current version %u: freeze the old layout", c->name, c->current);
		for (unsigned v = 1; v <= c->current; v++) {
			size_t size = c->sizes[v];
			unsigned char *buf = malloc(size + GUARD);
			memset(buf, FILL, size + GUARD);
			if (c->init(buf, v) != 0)
				fail_msg("%s: init at version %u failed: %s", c->name, v, flaghook_last_error());
			unsigned int got;
			memcpy(&got, buf, sizeof(got));
			assert_int_equal(got, v);
			/* Every byte of the struct is set (0 or a default such as
			 * FLAGHOOK_STATE_ANY), none left as it was. */
			for (size_t k = sizeof(unsigned int); k < size; k++)
				if (buf[k] == FILL)
					fail_msg("%s v%u: byte %zu of %zu not initialised", c->name, v, k, size);
			for (size_t k = size; k < size + GUARD; k++)
				if (buf[k] != FILL)
					fail_msg("%s v%u: init wrote byte %zu, past the struct's %zu bytes", c->name, v, k,
					         size);
			checked_older += v < c->current;
			free(buf);
		}
		/* A version from a newer header, or 0, touches nothing. */
		unsigned char probe[GUARD];
		memset(probe, FILL, sizeof(probe));
		assert_int_equal(c->init(probe, c->current + 1), FLAGHOOK_EVERSION);
		assert_int_equal(c->init(probe, 0), FLAGHOOK_EVERSION);
		for (size_t k = 0; k < sizeof(probe); k++)
			assert_int_equal(probe[k], FILL);
		assert_int_equal(c->init(NULL, 1), FLAGHOOK_EINVAL);
	}
	/* At least one struct has grown, so the guard above is really tested. */
	assert_true(checked_older >= 4);
}

/* The read side: a version-1 sqlite options struct followed by bytes that
 * are not a valid file_mode must open with the default mode, never read
 * the guard as its file_mode. */
static void test_open_reads_only_its_version(void **state)
{
	(void)state;
	char dir[] = "/tmp/flaghook-versions-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[96];
	snprintf(path, sizeof(path), "%s/outbox.db", dir);
	unsigned char *buf = malloc(sizeof(sqlite_options_v1) + GUARD);
	memset(buf, 0xFF, sizeof(sqlite_options_v1) + GUARD);
	assert_int_equal(flaghook_sqlite_options_init((flaghook_sqlite_options *)(void *)buf, 1), 0);
	sqlite_options_v1 *v1 = (sqlite_options_v1 *)(void *)buf;
	v1->path = path;
	v1->synchronous = FLAGHOOK_SQLITE_SYNC_NORMAL;
	flaghook_storage st = FLAGHOOK_STORAGE_INIT;
	mode_t old = umask(022);
	int rc = flaghook_sqlite_open(&st, (const flaghook_sqlite_options *)(const void *)buf);
	umask(old);
	if (rc)
		fail_msg("open with version-1 options: %s", flaghook_last_error());
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	flaghook_storage_close(&st);
	free(buf);
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	for (int i = 0; i < 3; i++) {
		char p[128];
		snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);
		unlink(p);
	}
	rmdir(dir);
}

/* A program built against version 1 of the client and endpoint options
 * and the transport table works as it did: the library reads no further
 * than version 1 (a guard of 0xFF bytes after each would be read as
 * nonsense options otherwise), and fills the new members with defaults. */
static int v1_sends;
static int v1_send(const flaghook_request *req, flaghook_response *resp, void *ud)
{
	(void)ud;
	v1_sends++;
	resp->status = req->version >= 1 ? 204 : 0;
	return 0;
}

static void test_version_1_callers(void **state)
{
	(void)state;
	unsigned char *ob = malloc(sizeof(client_options_v1) + GUARD);
	unsigned char *eb = malloc(sizeof(endpoint_options_v1) + GUARD);
	unsigned char *tb = malloc(sizeof(transport_v1) + GUARD);
	memset(ob, 0xFF, sizeof(client_options_v1) + GUARD);
	memset(eb, 0xFF, sizeof(endpoint_options_v1) + GUARD);
	memset(tb, 0xFF, sizeof(transport_v1) + GUARD);
	assert_int_equal(flaghook_client_options_init((flaghook_client_options *)(void *)ob, 1), 0);
	assert_int_equal(flaghook_endpoint_options_init((flaghook_endpoint_options *)(void *)eb, 1), 0);
	assert_int_equal(flaghook_transport_init((flaghook_transport *)(void *)tb, 1), 0);
	transport_v1 *t = (transport_v1 *)(void *)tb;
	t->send = v1_send;
	client_options_v1 *o = (client_options_v1 *)(void *)ob;
	o->transport = (const flaghook_transport *)(const void *)t;
	flaghook_client *c = NULL;
	if (flaghook_client_new(&c, (const flaghook_client_options *)(const void *)o) != 0)
		fail_msg("client_new with version-1 options: %s", flaghook_last_error());
	endpoint_options_v1 *e = (endpoint_options_v1 *)(void *)eb;
	e->scope_id = 1;
	e->url = "https://hooks.example.com/flagsmith";
	if (flaghook_endpoint_add(c, NULL, (const flaghook_endpoint_options *)(const void *)e) != 0)
		fail_msg("endpoint_add with version-1 options: %s", flaghook_last_error());
	flaghook_feature_state now = { .enabled = 1, .environment = { 1, "Production", NULL, 0 },
	                               .feature = { .id = 7, .name = "f", .type = "STANDARD",
	                                            .project = { 1, "Web", 0 } } };
	flaghook_flag_change fc = { .changed_by = "a", .new_state = &now, .timestamp_us = 1 };
	flaghook_event ev = FLAGHOOK_EVENT_INIT;
	ev.type = FLAGHOOK_EVENT_FLAG_UPDATED;
	ev.flag = &fc;
	assert_int_equal(flaghook_emit(c, &ev), 0);
	assert_int_equal(v1_sends, 1);
	flaghook_client_free(c);
	free(ob);
	free(eb);
	free(tb);
}

/* Every reader checks the version it is handed. */
static void test_readers_check_versions(void **state)
{
	(void)state;
	flaghook_client_options o = FLAGHOOK_CLIENT_OPTIONS_INIT;
	flaghook_client *c = NULL;
	o.version = FLAGHOOK_CLIENT_OPTIONS_VERSION + 1;
	assert_int_equal(flaghook_client_new(&c, &o), FLAGHOOK_EVERSION);
	assert_null(c);
	o.version = FLAGHOOK_CLIENT_OPTIONS_VERSION;
	flaghook_transport t = FLAGHOOK_TRANSPORT_INIT;
	t.version = 0;
	o.transport = &t;
	assert_int_equal(flaghook_client_new(&c, &o), FLAGHOOK_EVERSION);
	assert_non_null(strstr(flaghook_last_error(), "transport version 0"));
	o.transport = NULL;
	assert_int_equal(flaghook_client_new(&c, &o), 0);
	flaghook_endpoint_options e = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	e.version = 77;
	e.url = "http://127.0.0.1:9/";
	assert_int_equal(flaghook_endpoint_add(c, NULL, &e), FLAGHOOK_EVERSION);
	flaghook_client_free(c);
	flaghook_sqlite_options so = FLAGHOOK_SQLITE_OPTIONS_INIT;
	so.version = FLAGHOOK_SQLITE_OPTIONS_VERSION + 1;
	so.path = "/nonexistent/x.db";
	flaghook_storage st = FLAGHOOK_STORAGE_INIT;
	assert_int_equal(flaghook_sqlite_open(&st, &so), FLAGHOOK_EVERSION);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_writes_only_its_version),
		cmocka_unit_test(test_open_reads_only_its_version),
		cmocka_unit_test(test_version_1_callers),
		cmocka_unit_test(test_readers_check_versions),
	};
	return cmocka_run_group_tests_name("versions", tests, NULL, NULL);
}
