/*
 * Allocation failure: through the allocator hook, every allocation the
 * library makes in render, client setup, endpoint registration and emit is
 * failed in turn.  Each run must return FLAGHOOK_ENOMEM (or succeed), leak
 * nothing (the sanitizer build checks), and leave no half-done state.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "plugins/plugins.h"
#include "sample.h"

#include <stdlib.h>
#include <string.h>

typedef struct budget {
	long left;    /* allocations allowed before failing; <0: unlimited */
	long made;    /* allocations made */
	long live;    /* outstanding */
} budget;

static void *b_malloc(size_t n, void *ud)
{
	budget *b = ud;
	if (b->left == 0)
		return NULL;
	if (b->left > 0)
		b->left--;
	void *p = malloc(n);
	if (p)
		b->made++, b->live++;
	return p;
}

static void *b_realloc(void *p, size_t n, void *ud)
{
	budget *b = ud;
	if (b->left == 0)
		return NULL;
	if (b->left > 0)
		b->left--;
	void *q = realloc(p, n);
	if (q && !p)
		b->made++, b->live++;
	return q;
}

static void b_free(void *p, void *ud)
{
	budget *b = ud;
	if (p)
		b->live--;
	free(p);
}

static void test_render_every_failure(void **state)
{
	(void)state;
	budget b = { -1, 0, 0 };
	flaghook_allocator a = { FLAGHOOK_ALLOCATOR_VERSION, b_malloc, b_realloc, b_free, &b };
	flaghook_render_options o = FLAGHOOK_RENDER_OPTIONS_INIT;
	o.allocator = &a;
	const flaghook_event *events[] = { fh_sample_environment(), fh_sample_organisation() };
	for (size_t e = 0; e < 2; e++) {
		int ok_at = -1;
		for (long n = 0; n < 1000 && ok_at < 0; n++) {
			b = (budget){ n, 0, 0 };
			flaghook_buf out = FLAGHOOK_BUF_INIT;
			int rc = flaghook_render(&out, events[e], &o);
			if (rc == 0) {
				ok_at = (int)n;
				flaghook_buf_free(&out);
			} else {
				assert_int_equal(rc, FLAGHOOK_ENOMEM);
				assert_null(out.ptr);
			}
			assert_int_equal(b.live, 0);
		}
		assert_true(ok_at > 0);
	}
}

/* A transport that answers 200 and counts destroy calls. */
static int destroyed;
static int ok_send(const flaghook_request *req, flaghook_response *resp, void *ud)
{
	(void)req; (void)ud;
	resp->status = 200;
	return 0;
}
static void count_destroy(void *ud) { (void)ud; destroyed++; }

static int results;
static void on_result(const flaghook_result *r, void *ud)
{
	(void)ud;
	results += r->outcome == FLAGHOOK_OUTCOME_DELIVERED;
}

static void test_client_every_failure(void **state)
{
	(void)state;
	budget b;
	flaghook_allocator a = { FLAGHOOK_ALLOCATOR_VERSION, b_malloc, b_realloc, b_free, &b };
	flaghook_transport t = FLAGHOOK_TRANSPORT_INIT;
	t.send = ok_send;
	t.destroy = count_destroy;
	flaghook_client_options o = FLAGHOOK_CLIENT_OPTIONS_INIT;
	o.allow_private = 1; /* the receivers are on loopback */
	o.allocator = &a;
	o.transport = &t;
	o.on_result = on_result;
	int completed = 0;
	for (long n = 0; n < 2000 && !completed; n++) {
		b = (budget){ n, 0, 0 };
		destroyed = 0;
		results = 0;
		flaghook_client *c = NULL;
		int rc = flaghook_client_new(&c, &o);
		if (rc) {
			assert_int_equal(rc, FLAGHOOK_ENOMEM);
			assert_null(c);
			assert_int_equal(destroyed, 0); /* the caller's transport stays theirs */
			assert_int_equal(b.live, 0);
			continue;
		}
		flaghook_endpoint_options e = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
		e.scope_id = 1;
		e.url = "http://127.0.0.1:9/";
		e.secret = "secret";
		e.secret_len = 6;
		uint64_t id;
		rc = flaghook_endpoint_add(c, &id, &e);
		if (!rc) {
			e.scope = FLAGHOOK_SCOPE_ORGANISATION;
			e.render_flags = FLAGHOOK_RENDER_COMPACT;
			rc = flaghook_endpoint_add(c, &id, &e);
		}
		if (!rc) {
			rc = flaghook_emit(c, fh_sample_environment());
			/* All or nothing: a failed emit delivered nothing. */
			if (rc)
				assert_int_equal(results, 0);
			else
				assert_int_equal(results, 2);
		}
		if (rc)
			assert_int_equal(rc, FLAGHOOK_ENOMEM);
		else
			completed = 1;
		flaghook_client_free(c);
		assert_int_equal(destroyed, 1);
		assert_int_equal(b.live, 0);
	}
	assert_true(completed);
}

/* The memory store under churn: records in scrambled order, retries
 * kept, final outcomes removed, never a stale or lost entry. */
static void test_memory_store(void **state)
{
	(void)state;
	flaghook_storage st;
	assert_int_equal(flaghook__storage_memory(&st, NULL), 0);
	enum { N = 20000 };
	static uint64_t ids[N];
	for (size_t i = 0; i < N; i += 100) {
		flaghook_delivery d[100];
		for (size_t k = 0; k < 100; k++)
			d[k] = (flaghook_delivery){ .version = 1, .event_id = "e", .endpoint_id = 1 };
		assert_int_equal(st.put(d, 100, st.user_data), 0);
		for (size_t k = 0; k < 100; k++) {
			assert_true(d[k].claimed);
			ids[i + k] = d[k].id;
			assert_true(k == 0 || d[k].id > d[k - 1].id);
		}
	}
	assert_int_equal(flaghook__storage_memory_count(st.user_data), N);
	static const int outcomes[] = { FLAGHOOK_OUTCOME_RETRY, FLAGHOOK_OUTCOME_DELIVERED,
	                                FLAGHOOK_OUTCOME_GAVE_UP, FLAGHOOK_OUTCOME_ABANDONED };
	size_t left = N;
	for (size_t i = 0; i < N; i++) {
		flaghook_delivery d = { .version = 1, .id = ids[(i * 7919) % N], .event_id = "e", .attempts = 1 };
		int outcome = outcomes[i % 4];
		flaghook_attempt a = { .version = 1, .delivery_id = d.id, .number = 1, .outcome = outcome, .error = "" };
		assert_int_equal(st.record(&d, &a, st.user_data), 0);
		left -= outcome != FLAGHOOK_OUTCOME_RETRY;
		/* A second final record of the same id finds nothing, changes nothing. */
		if (outcome != FLAGHOOK_OUTCOME_RETRY)
			assert_int_equal(st.record(&d, &a, st.user_data), FLAGHOOK_ENOTFOUND);
	}
	assert_int_equal(flaghook__storage_memory_count(st.user_data), left);
	for (size_t i = 0; i < N; i++) {
		flaghook_delivery d = { .version = 1, .id = ids[(i * 7919) % N], .event_id = "e" };
		flaghook_attempt a = { .version = 1, .delivery_id = d.id, .outcome = FLAGHOOK_OUTCOME_DELIVERED, .error = "" };
		if (i % 4 == 0)
			assert_int_equal(st.record(&d, &a, st.user_data), 0);
	}
	assert_int_equal(flaghook__storage_memory_count(st.user_data), 0);
	st.destroy(st.user_data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_every_failure),
		cmocka_unit_test(test_client_every_failure),
		cmocka_unit_test(test_memory_store),
	};
	return cmocka_run_group_tests_name("alloc", tests, NULL, NULL);
}
