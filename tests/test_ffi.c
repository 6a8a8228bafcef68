/*
 * The layout-free API for bindings: events and options as JSON (the same
 * bytes as from the structs, exact int64, errors that name the JSON path),
 * the result queue and its descriptor, logs, stats, Prometheus metrics,
 * constants by name, and error detail for calls made on another thread.
 * Deliveries go to a real HTTP server on loopback (tests/support/httpd.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "flaghook.h"
#include "httpd.h"
#include "sample_events.h"
#include "vectors.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "ffi-s3cr3t"

/* A FLAG_UPDATED event as JSON, with one feature id spliced in. */
static char *flag_event(const char *feature_id, const char *name)
{
	char *s = malloc(2048);
	snprintf(s, 2048,
	         "{\"event_type\": \"FLAG_UPDATED\", \"environment_id\": 7, \"data\": {"
	         "\"changed_by\": \"ops@example.com\", \"timestamp\": \"2024-05-06T07:08:09.000001Z\","
	         "\"new_state\": {\"enabled\": true, \"environment\": {\"id\": 7, \"name\": \"Prod\"},"
	         "\"feature\": {\"id\": %s, \"name\": \"%s\", \"description\": null, \"initial_value\": null,"
	         "\"default_enabled\": false, \"type\": \"STANDARD\", \"created_date\": \"2023-01-02T03:04:05Z\","
	         "\"project\": {\"id\": 3, \"name\": \"Web\"}},"
	         "\"feature_segment\": null, \"feature_state_value\": \"on\", \"identity\": null,"
	         "\"identity_identifier\": null, \"multivariate_feature_state_values\": []}}}",
	         feature_id, name);
	return s;
}

static int render_json(const char *ev, const char *opts, char **out, size_t *len, char *err, size_t errsz)
{
	return flaghook_render_json(out, len, ev, strlen(ev), opts, err, errsz);
}

/* ---- JSON in: the same bytes as the structs ---- */

/* Each golden body is the event JSON of itself (plus routing ids): read
 * back and rendered, it must come out byte for byte.  The golden bodies
 * are what the structs render (test_render), so JSON and structs agree. */
static void test_golden_round_trip(void **state)
{
	(void)state;
	size_t n;
	const golden_case *cases = golden_cases(&n);
	size_t checked = 0;
	for (size_t i = 0; i < n; i++) {
		if (cases[i].profile == FLAGHOOK_PROFILE_FLAGSMITH_2020)
			continue; /* its body is the older shape; the event JSON is today's */
		char rel[256];
		snprintf(rel, sizeof(rel), "golden/%s.json", cases[i].name);
		size_t want_len;
		char *want = read_whole(test_path(rel), &want_len);
		const char *profile = cases[i].profile == FLAGHOOK_PROFILE_BULLET_TRAIN ? "bullet_train" : "flagsmith";
		char opts[128];
		snprintf(opts, sizeof(opts), "{\"profile\": \"%s\", \"compact\": %s}", profile,
		         cases[i].flags & FLAGHOOK_RENDER_COMPACT ? "true" : "false");
		/* the routing id, which the body does not carry */
		char *ev = malloc(want_len + 32);
		int k = snprintf(ev, want_len + 32, "{\"environment_id\": 7, ");
		memcpy(ev + k, want + 1, want_len - 1);
		char *out = NULL, err[256];
		size_t len = 0;
		int rc = flaghook_render_json(&out, &len, ev, (size_t)k + want_len - 1, opts, err, sizeof(err));
		free(ev);
		if (rc)
			fail_msg("%s: rc %d: %s", cases[i].name, rc, err);
		assert_string_equal(err, "");
		if (len != want_len || memcmp(out, want, want_len))
			fail_msg("%s differs\n got: %s\nwant: %s", cases[i].name, out, want);
		/* and the struct renders the same */
		flaghook_render_options ro = FLAGHOOK_RENDER_OPTIONS_INIT;
		ro.profile = cases[i].profile;
		ro.flags = cases[i].flags;
		flaghook_buf b = FLAGHOOK_BUF_INIT;
		assert_int_equal(flaghook_render(&b, cases[i].event, &ro), 0);
		assert_int_equal(b.size, len);
		assert_memory_equal(b.ptr, out, len);
		flaghook_buf_free(&b);
		flaghook_free(out);
		free(want);
		checked++;
	}
	assert_true(checked >= 8);
}

/* The 2020 profile renders from today's shape. */
static void test_profile_2020(void **state)
{
	(void)state;
	char *ev = flag_event("12", "f");
	char *out = NULL;
	size_t len;
	char err[256];
	assert_int_equal(render_json(ev, "{\"profile\": \"flagsmith_2020\"}", &out, &len, err, sizeof(err)), 0);
	assert_non_null(strstr(out, "\"environment\": 7"));
	flaghook_free(out);
	free(ev);
}

/* cJSON keeps doubles; the library keeps every int64 exactly. */
static void test_int64_exact(void **state)
{
	(void)state;
	static const char *const ids[] = { "9223372036854775807", "-9223372036854775808", "9007199254740993",
	                                   "-9007199254740993", "0", "-1" };
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		char *ev = flag_event(ids[i], "f");
		char *out = NULL, err[256];
		size_t len;
		int rc = render_json(ev, NULL, &out, &len, err, sizeof(err));
		if (rc)
			fail_msg("%s: %d %s", ids[i], rc, err);
		char want[64];
		snprintf(want, sizeof(want), "\"id\": %s,", ids[i]);
		if (!strstr(out, want))
			fail_msg("%s not exact in %s", ids[i], out);
		flaghook_free(out);
		free(ev);
	}
	/* one past either end, and a fraction where an integer belongs */
	static const char *const bad[] = { "9223372036854775808", "-9223372036854775809", "1.5", "1e3" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *ev = flag_event(bad[i], "f");
		char *out = NULL, err[256];
		size_t len;
		assert_int_not_equal(render_json(ev, NULL, &out, &len, err, sizeof(err)), 0);
		assert_null(out);
		if (strncmp(err, "$.data.new_state.feature.id: ", 29))
			fail_msg("%s: error does not name the path: %s", bad[i], err);
		free(ev);
	}
}

/* Bad input: a clear code, the JSON path, nothing rendered. */
static void test_errors_name_the_path(void **state)
{
	(void)state;
	struct {
		const char *json;
		int code;
		const char *starts;
	} cases[] = {
		{ "{\"event_type\": \"FLAG_UPDATED\"", FLAGHOOK_EEVENT, "not valid JSON at byte 28" },
		{ "[]", FLAGHOOK_EEVENT, "$: must be an object" },
		{ "{\"event_type\": \"NOPE\", \"data\": {}}", FLAGHOOK_EEVENT, "$.event_type: " },
		{ "{\"event_type\": \"FLAG_UPDATED\"}", FLAGHOOK_EEVENT, "$.data: " },
		{ "{\"event_type\": \"FLAG_UPDATED\", \"data\": {}, \"data\": {}}", FLAGHOOK_EEVENT, "$.data: " },
		{ "{\"event_type\": \"FLAG_UPDATED\", \"data\": {}, \"extra\": 1}", FLAGHOOK_EEVENT, "$.extra: " },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = (char *)"untouched", err[256];
		size_t len = 99;
		int rc = render_json(cases[i].json, NULL, &out, &len, err, sizeof(err));
		if (rc != cases[i].code || strncmp(err, cases[i].starts, strlen(cases[i].starts)))
			fail_msg("case %zu: rc %d err \"%s\"; want %d \"%s...\"", i, rc, err, cases[i].code, cases[i].starts);
		assert_null(out);
		assert_int_equal(len, 0);
	}
	/* invalid UTF-8 deep inside */
	char *ev = flag_event("1", "bad\xff");
	char *out = NULL, err[256];
	size_t len;
	assert_int_equal(render_json(ev, NULL, &out, &len, err, sizeof(err)), FLAGHOOK_EUTF8);
	assert_non_null(strstr(err, "$.data.new_state.feature.name"));
	free(ev);
	/* a NUL escaped in a string would cut it short; a NUL byte within the
	 * length is no JSON */
	ev = flag_event("1", "cut\\u0000here");
	assert_int_equal(render_json(ev, NULL, &out, &len, err, sizeof(err)), FLAGHOOK_EEVENT);
	assert_string_equal(err, "$.data.new_state.feature.name: the string holds \\u0000 (a NUL), which no string "
	                         "here may");
	free(ev);
	ev = flag_event("1", "not\\\\u0000"); /* an escaped backslash, then text */
	assert_int_equal(render_json(ev, NULL, &out, &len, err, sizeof(err)), 0);
	assert_non_null(strstr(out, "\"name\": \"not\\\\u0000\""));
	flaghook_free(out);
	size_t evlen = strlen(ev);
	ev[evlen - 1] = '\0'; /* the closing brace, now inside the length */
	assert_int_equal(flaghook_render_json(&out, &len, ev, evlen, NULL, err, sizeof(err)), FLAGHOOK_EEVENT);
	assert_non_null(strstr(err, "NUL byte"));
	free(ev);
	/* the options too */
	ev = flag_event("1", "f");
	assert_int_equal(render_json(ev, "{\"profile\": \"x\"}", &out, &len, err, sizeof(err)), FLAGHOOK_EINVAL);
	assert_non_null(strstr(err, "$.profile: must be one of"));
	assert_int_equal(render_json(ev, "{\"compakt\": true}", &out, &len, err, sizeof(err)), FLAGHOOK_EINVAL);
	assert_non_null(strstr(err, "$.compakt"));
	/* a small error buffer is cut, never overrun */
	char tiny[8];
	memset(tiny, 'x', sizeof(tiny));
	assert_int_equal(render_json(ev, "{\"profile\": \"x\"}", &out, &len, tiny, 5), FLAGHOOK_EINVAL);
	assert_string_equal(tiny, "$.pr");
	assert_int_equal(tiny[5], 'x');
	free(ev);
}

/* ---- constants ---- */

/* Every object-like numeric FLAGHOOK_* macro of the header, read here
 * from the header's text, is known by name with the compiler's value for
 * the ones this test can name itself. */
static void test_constants(void **state)
{
	(void)state;
	int64_t v = 0;
	assert_int_equal(flaghook_constant("FLAGHOOK_EINVAL", &v), 0);
	assert_int_equal(v, FLAGHOOK_EINVAL);
	assert_int_equal(flaghook_constant("FLAGHOOK_EVENT_NEW_VERSION_PUBLISHED", &v), 0);
	assert_int_equal(v, FLAGHOOK_EVENT_NEW_VERSION_PUBLISHED);
	assert_int_equal(flaghook_constant("FLAGHOOK_CLIENT_OPTIONS_VERSION", &v), 0);
	assert_int_equal(v, FLAGHOOK_CLIENT_OPTIONS_VERSION);
	assert_int_equal(flaghook_constant("FLAGHOOK_TLS_1_3", &v), 0);
	assert_int_equal(v, FLAGHOOK_TLS_1_3);
	assert_int_equal(flaghook_constant("FLAGHOOK_NOPE", &v), FLAGHOOK_ENOTFOUND);
	assert_int_equal(flaghook_constant("FLAGHOOK_CLIENT_OPTIONS_INIT", &v), FLAGHOOK_ENOTFOUND);
	assert_int_equal(flaghook_constant(NULL, &v), FLAGHOOK_EINVAL);

	cJSON *all = cJSON_Parse(flaghook_constants_json());
	assert_non_null(all);
	static const char *const headers[] = { "common.h", "event.h", "outbox.h", "client.h", "bindings.h",
	                                       "sys/transport.h", "sys/storage.h" };
	size_t found = 0;
	for (size_t h = 0; h < sizeof(headers) / sizeof(headers[0]); h++) {
		char rel[64];
		snprintf(rel, sizeof(rel), "../include/flaghook/%s", headers[h]);
		size_t header_len;
		char *header = read_whole(test_path(rel), &header_len);
		for (char *line = strtok(header, "\n"); line; line = strtok(NULL, "\n")) {
			char name[128], value[64];
			if (sscanf(line, "#define %127s %63s", name, value) != 2 || strncmp(name, "FLAGHOOK_", 9) ||
			    strchr(name, '(') || !(value[0] == '-' || (value[0] >= '0' && value[0] <= '9')))
				continue;
			cJSON *item = cJSON_GetObjectItemCaseSensitive(all, name);
			if (!cJSON_IsNumber(item))
				fail_msg("%s is in flaghook/%s but not in flaghook_constants_json()", name, headers[h]);
			assert_int_equal(flaghook_constant(name, &v), 0);
			assert_true((double)v == item->valuedouble);
			found++;
		}
		free(header);
	}
	assert_true(found >= 90);
	assert_int_equal((size_t)cJSON_GetArraySize(all), found);
	cJSON_Delete(all);
}

/* ---- clients from JSON, the result queue ---- */

typedef struct fx {
	th_server *srv;
	flaghook_client *c;
	uint64_t ep;
} fx;

static char *url_of(fx *f, const char *path)
{
	char *u = malloc(128);
	snprintf(u, 128, "http://127.0.0.1:%d%s", th_port(f->srv), path);
	return u;
}

static void open_client(fx *f, const char *mode, const char *extra)
{
	memset(f, 0, sizeof(*f));
	assert_int_equal(th_start(&f->srv, NULL, NULL), 0);
	char opts[512], err[256];
	snprintf(opts, sizeof(opts), "{\"mode\": \"%s\", \"result_queue\": true, \"allow_private\": true%s%s}", mode,
	         extra ? ", " : "", extra ? extra : "");
	int rc = flaghook_client_new_json(&f->c, opts, err, sizeof(err));
	if (rc)
		fail_msg("client: %d %s", rc, err);
	char *u = url_of(f, "/hook");
	char ep[512];
	snprintf(ep, sizeof(ep), "{\"url\": \"%s\", \"secret\": \"%s\", \"scope_id\": 7}", u, SECRET);
	rc = flaghook_endpoint_add_json(f->c, &f->ep, ep, err, sizeof(err));
	if (rc)
		fail_msg("endpoint: %d %s", rc, err);
	free(u);
}

static void close_client(fx *f)
{
	flaghook_client_free(f->c);
	th_stop(f->srv);
}

static bool readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static cJSON *next_record(flaghook_client *c, int64_t timeout_ms)
{
	char *s = NULL;
	size_t n = 0;
	int rc = flaghook_result_next(c, timeout_ms, &s, &n);
	if (rc)
		fail_msg("result_next: %d %s", rc, flaghook_last_error());
	assert_int_equal(strlen(s), n);
	assert_null(strchr(s, '\n'));
	cJSON *j = cJSON_Parse(s);
	assert_non_null(j);
	flaghook_free(s);
	return j;
}

static const char *str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	if (!cJSON_IsString(v))
		fail_msg("no string %s", k);
	return v->valuestring;
}

static double num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	if (!cJSON_IsNumber(v))
		fail_msg("no number %s", k);
	return v->valuedouble;
}

/* SYNC: the result is queued before emit returns; the descriptor is
 * readable exactly while a record waits; the body is the JSON's render,
 * signed with the secret. */
static void test_sync_queue(void **state)
{
	(void)state;
	fx f;
	open_client(&f, "sync", NULL);
	int fd = -1;
	assert_int_equal(flaghook_results_fd(f.c, &fd), 0);
	assert_true(fd >= 0);
	assert_false(readable(fd));
	char *none = NULL;
	size_t n = 0;
	assert_int_equal(flaghook_result_next(f.c, 0, &none, &n), FLAGHOOK_ETIMEOUT);
	assert_int_equal(flaghook_result_next(f.c, 30, &none, &n), FLAGHOOK_ETIMEOUT);
	assert_null(none);

	char *ev = flag_event("9223372036854775807", "checkout");
	char err[256];
	assert_int_equal(flaghook_emit_json(f.c, ev, strlen(ev), err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_true(readable(fd));
	cJSON *r = next_record(f.c, 0);
	assert_false(readable(fd));
	assert_string_equal(str(r, "kind"), "result");
	assert_string_equal(str(r, "outcome"), "delivered");
	assert_string_equal(str(r, "event_type"), "FLAG_UPDATED");
	assert_string_equal(str(r, "errclass"), "none");
	assert_true(num(r, "endpoint_id") == (double)f.ep);
	assert_true(num(r, "status") == 200);
	assert_true(num(r, "attempts") == 1);
	assert_int_equal(strlen(str(r, "event_id")), 36);
	cJSON_Delete(r);

	th_request req;
	assert_int_equal(th_get(f.srv, 0, &req), 0);
	char *body = NULL;
	size_t len;
	assert_int_equal(render_json(ev, NULL, &body, &len, err, sizeof(err)), 0);
	/* sent_at differs per render: compare the part before it is enough
	 * only if there is none; this event has no sent_at, so all of it. */
	assert_int_equal(req.body_len, len);
	assert_memory_equal(req.body, body, len);
	char sig[FLAGHOOK_SIGNATURE_HEX_BYTES + 1];
	assert_int_equal(flaghook_sign(sig, sizeof(sig), SECRET, strlen(SECRET), body, len), 0);
	assert_string_equal(th_header(&req, "X-Flagsmith-Signature"), sig);
	th_request_free(&req);
	flaghook_free(body);
	free(ev);
	close_client(&f);
}

/* Endpoint ids are unsigned 64-bit everywhere: records, stats. */
static void test_large_endpoint_id(void **state)
{
	(void)state;
	th_server *srv;
	assert_int_equal(th_start(&srv, NULL, NULL), 0);
	flaghook_client *c;
	assert_int_equal(flaghook_client_new_json(&c, "{\"result_queue\": true, \"allow_private\": true}", NULL, 0), 0);
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", th_port(srv));
	flaghook_endpoint_options eo = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	eo.url = url;
	eo.scope_id = 7;
	eo.id = UINT64_MAX - 1;
	assert_int_equal(flaghook_endpoint_add(c, NULL, &eo), 0);
	char *ev = flag_event("1", "f");
	assert_int_equal(flaghook_emit_json(c, ev, strlen(ev), NULL, 0), 0);
	char *s = NULL;
	size_t n;
	assert_int_equal(flaghook_result_next(c, 0, &s, &n), 0);
	assert_non_null(strstr(s, "\"endpoint_id\":18446744073709551614,"));
	flaghook_free(s);
	assert_int_equal(flaghook_stats_json(c, &s, &n), 0);
	assert_non_null(strstr(s, "\"id\": 18446744073709551614,"));
	assert_non_null(strstr(s, "\"logs_dropped\": 0,"));
	flaghook_free(s);
	assert_int_equal(flaghook_metrics(c, &s, &n), 0);
	assert_non_null(strstr(s, "flaghook_deliveries_total{endpoint=\"18446744073709551614\",outcome=\"delivered\"} 1\n"));
	assert_non_null(strstr(s, "flaghook_logs_dropped_total 0\n"));
	flaghook_free(s);
	free(ev);
	flaghook_client_free(c);
	th_stop(srv);
}

/* A failed SYNC delivery: EDELIVERY, the error buffer says which, and the
 * queue holds a gave_up result whose response is valid UTF-8 even when
 * the receiver's was not. */
static void test_sync_failure(void **state)
{
	(void)state;
	fx f;
	open_client(&f, "sync", NULL);
	th_reply bad = { .status = 500, .body = "no\xff\xfe" };
	th_script(f.srv, &bad, 1);
	char *ev = flag_event("1", "f");
	char err[256];
	assert_int_equal(flaghook_emit_json(f.c, ev, strlen(ev), err, sizeof(err)), FLAGHOOK_EDELIVERY);
	assert_non_null(strstr(err, "HTTP status 500"));
	cJSON *r = next_record(f.c, 0);
	assert_string_equal(str(r, "outcome"), "gave_up");
	assert_string_equal(str(r, "errclass"), "http");
	assert_string_equal(str(r, "response"), "no\xef\xbf\xbd\xef\xbf\xbd");
	cJSON_Delete(r);
	free(ev);
	close_client(&f);
}

/* ASYNC: every delivery's result arrives through the queue. */
static void test_async_queue(void **state)
{
	(void)state;
	fx f;
	open_client(&f, "async", NULL);
	enum { N = 20 };
	for (int i = 0; i < N; i++) {
		char id[16];
		snprintf(id, sizeof(id), "%d", i + 1);
		char *ev = flag_event(id, "f");
		char err[256];
		int rc = flaghook_emit_json(f.c, ev, strlen(ev), err, sizeof(err));
		if (rc)
			fail_msg("emit %d: %d %s", i, rc, err);
		free(ev);
	}
	int delivered = 0;
	for (int i = 0; i < N; i++) {
		cJSON *r = next_record(f.c, 60000);
		if (!strcmp(str(r, "kind"), "result"))
			delivered += !strcmp(str(r, "outcome"), "delivered");
		else
			i--; /* a log record: not counted */
		cJSON_Delete(r);
	}
	assert_int_equal(delivered, N);
	assert_int_equal(th_count(f.srv), N);
	close_client(&f);
}

/* ---- options from JSON ---- */

static void test_options_json(void **state)
{
	(void)state;
	flaghook_client *c = NULL;
	char err[256];
	assert_int_equal(flaghook_client_new_json(&c, "{\"mode\": \"later\"}", err, sizeof(err)), FLAGHOOK_EINVAL);
	assert_non_null(strstr(err, "$.mode: must be one of \"sync\", \"async\""));
	assert_int_equal(flaghook_client_new_json(&c, "{\"timeout\": 5}", err, sizeof(err)), FLAGHOOK_EINVAL);
	assert_non_null(strstr(err, "$.timeout"));
	assert_int_equal(flaghook_client_new_json(&c, "{\"threads\": 4294967296}", err, sizeof(err)), FLAGHOOK_EINVAL);
	assert_non_null(strstr(err, "$.threads: is out of range"));
	assert_int_equal(flaghook_client_new_json(&c, "{\"retry\": {\"schedule_ms\": [1, \"2\"]}}", err, sizeof(err)),
	                 FLAGHOOK_EINVAL);
	assert_non_null(strstr(err, "$.retry.schedule_ms[1]"));
	assert_null(c);
	/* NULL: every default */
	assert_int_equal(flaghook_client_new_json(&c, NULL, err, sizeof(err)), 0);
	uint64_t id = 0;
	/* both secrets at once; odd hex; a bad event name */
	assert_int_equal(flaghook_endpoint_add_json(c, &id,
	                 "{\"url\": \"https://example.com/\", \"secret\": \"a\", \"secret_hex\": \"00\"}", err,
	                 sizeof(err)), FLAGHOOK_EINVAL);
	assert_non_null(strstr(err, "$.secret_hex"));
	assert_null(strstr(err, "\"a\""));
	assert_int_equal(flaghook_endpoint_add_json(c, &id, "{\"url\": \"https://example.com/\", \"secret_hex\": \"abc\"}",
	                 err, sizeof(err)), FLAGHOOK_EINVAL);
	/* "ab\u0000cd" must not become the secret "ab" */
	assert_int_equal(flaghook_endpoint_add_json(c, &id,
	                 "{\"url\": \"https://example.com/\", \"secret\": \"ab\\u0000cd\"}", err, sizeof(err)),
	                 FLAGHOOK_EINVAL);
	assert_non_null(strstr(err, "$.secret: the string holds \\u0000"));
	assert_int_equal(flaghook_endpoint_add_json(c, &id,
	                 "{\"url\": \"https://example.com/\", \"events\": [\"FLAG_UPDATED\", \"FLAG_NOPE\"]}", err,
	                 sizeof(err)), FLAGHOOK_EINVAL);
	assert_non_null(strstr(err, "$.events[1]"));
	/* the per-client detail has it too, for a call made elsewhere */
	char last[256];
	flaghook_client_last_error(c, last, sizeof(last));
	assert_string_equal(last, err);
	/* a URL check failure comes from the C API's own checks */
	assert_int_equal(flaghook_endpoint_add_json(c, &id, "{\"url\": \"ftp://example.com/\"}", err, sizeof(err)),
	                 FLAGHOOK_EURL);
	/* the results API without a queue */
	int fd;
	assert_int_equal(flaghook_results_fd(c, &fd), FLAGHOOK_EINVAL);
	flaghook_client_free(c);
}

/* A secret as hex: its bytes sign as given. */
static void test_secret_hex(void **state)
{
	(void)state;
	fx f;
	open_client(&f, "sync", NULL);
	char *u = url_of(&f, "/bin");
	char ep[256], err[256];
	uint64_t id;
	/* a NUL is no more a secret's byte in hex than in C */
	snprintf(ep, sizeof(ep), "{\"url\": \"%s\", \"secret_hex\": \"00c3a97a\", \"scope_id\": 7}", u);
	assert_int_equal(flaghook_endpoint_add_json(f.c, &id, ep, err, sizeof(err)), FLAGHOOK_ESECRET);
	assert_non_null(strstr(err, "NUL"));
	snprintf(ep, sizeof(ep), "{\"url\": \"%s\", \"secret_hex\": \"C3A97a21\", \"scope_id\": 7}", u);
	assert_int_equal(flaghook_endpoint_add_json(f.c, &id, ep, err, sizeof(err)), 0);
	char *ev = flag_event("1", "f");
	assert_int_equal(flaghook_emit_json(f.c, ev, strlen(ev), err, sizeof(err)), 0);
	assert_int_equal(th_count(f.srv), 2);
	for (size_t i = 0; i < 2; i++) {
		th_request req;
		assert_int_equal(th_get(f.srv, i, &req), 0);
		if (!strcmp(req.target, "/bin")) {
			char sig[FLAGHOOK_SIGNATURE_HEX_BYTES + 1];
			assert_int_equal(flaghook_sign(sig, sizeof(sig), "\xc3\xa9z!", 4, req.body, req.body_len), 0);
			assert_string_equal(th_header(&req, "X-Flagsmith-Signature"), sig);
		}
		th_request_free(&req);
	}
	free(ev);
	free(u);
	close_client(&f);
}

/* ---- error detail across threads ---- */

typedef struct call {
	flaghook_client *c;
	int rc;
	char err[256];
} call;

static void *emit_bad(void *arg)
{
	call *k = arg;
	k->rc = flaghook_emit_json(k->c, "{\"event_type\": 1}", 17, k->err, sizeof(k->err));
	return NULL;
}

static void test_error_from_another_thread(void **state)
{
	(void)state;
	flaghook_client *c = NULL;
	assert_int_equal(flaghook_client_new_json(&c, "{\"mode\": \"sync\"}", NULL, 0), 0);
	flaghook_error_set(FLAGHOOK_EINVAL, "this thread's own");
	call k = { .c = c };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, emit_bad, &k), 0);
	pthread_join(t, NULL);
	assert_int_equal(k.rc, FLAGHOOK_EEVENT);
	assert_non_null(strstr(k.err, "$.event_type"));
	assert_string_equal(flaghook_last_error(), "this thread's own");
	char last[256];
	flaghook_client_last_error(c, last, sizeof(last));
	assert_string_equal(last, k.err);
	flaghook_client_free(c);
}

/* ---- logs, stats, metrics ---- */

typedef struct logs {
	pthread_mutex_t lock;
	char text[8192];
	int count, levels[5];
} logs;

static void on_log(int32_t level, const char *message, void *ud)
{
	logs *l = ud;
	pthread_mutex_lock(&l->lock);
	l->count++;
	if (level >= 1 && level <= 4)
		l->levels[level]++;
	size_t n = strlen(l->text);
	snprintf(l->text + n, sizeof(l->text) - n, "%d %s\n", (int)level, message);
	pthread_mutex_unlock(&l->lock);
}

/* Logs at their levels; never the secret or the URL's credentials. */
static void test_logs(void **state)
{
	(void)state;
	th_server *srv;
	assert_int_equal(th_start(&srv, NULL, NULL), 0);
	th_reply replies[] = { { .status = 200 }, { .status = 503 } };
	th_script(srv, replies, 2);
	logs l = { .lock = PTHREAD_MUTEX_INITIALIZER };
	flaghook_client_options o = FLAGHOOK_CLIENT_OPTIONS_INIT;
	o.allow_private = 1;
	o.on_log = on_log;
	o.user_data = &l;
	o.log_level = FLAGHOOK_LOG_DEBUG;
	flaghook_client *c;
	assert_int_equal(flaghook_client_new(&c, &o), 0);
	char url[128];
	snprintf(url, sizeof(url), "http://user:pa55word@127.0.0.1:%d/hook", th_port(srv));
	flaghook_endpoint_options eo = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	eo.url = url;
	eo.scope_id = 7;
	eo.secret = SECRET;
	eo.secret_len = strlen(SECRET);
	assert_int_equal(flaghook_endpoint_add(c, NULL, &eo), 0);
	char *ev = flag_event("1", "f");
	char err[256];
	assert_int_equal(flaghook_emit_json(c, ev, strlen(ev), err, sizeof(err)), 0);
	assert_int_equal(flaghook_emit_json(c, ev, strlen(ev), err, sizeof(err)), FLAGHOOK_EDELIVERY);
	flaghook_client_free(c);
	assert_int_equal(l.levels[FLAGHOOK_LOG_DEBUG], 1); /* delivered */
	assert_int_equal(l.levels[FLAGHOOK_LOG_WARN], 1);  /* gave up */
	assert_non_null(strstr(l.text, "4 endpoint 1: FLAG_UPDATED "));
	assert_non_null(strstr(l.text, "gave up after 1 attempt HTTP 503"));
	assert_null(strstr(l.text, "pa55word"));
	assert_null(strstr(l.text, SECRET));
	assert_null(strstr(l.text, "127.0.0.1"));

	/* At the default level (warn) the success is not logged. */
	memset(l.text, 0, sizeof(l.text));
	memset(l.levels, 0, sizeof(l.levels));
	o.log_level = 0;
	th_script(srv, replies, 2);
	assert_int_equal(flaghook_client_new(&c, &o), 0);
	assert_int_equal(flaghook_endpoint_add(c, NULL, &eo), 0);
	assert_int_equal(flaghook_emit_json(c, ev, strlen(ev), err, sizeof(err)), 0);
	assert_int_equal(flaghook_emit_json(c, ev, strlen(ev), err, sizeof(err)), FLAGHOOK_EDELIVERY);
	flaghook_client_free(c);
	assert_int_equal(l.levels[FLAGHOOK_LOG_DEBUG], 0);
	assert_int_equal(l.levels[FLAGHOOK_LOG_WARN], 1);
	o.log_level = 9;
	assert_int_equal(flaghook_client_new(&c, &o), FLAGHOOK_EINVAL);
	free(ev);
	th_stop(srv);
}

/* In the queue, a log record is one more kind of line. */
static void test_logs_in_queue(void **state)
{
	(void)state;
	fx f;
	open_client(&f, "sync", "\"log_level\": \"debug\"");
	char *ev = flag_event("1", "f");
	assert_int_equal(flaghook_emit_json(f.c, ev, strlen(ev), NULL, 0), 0);
	cJSON *a = next_record(f.c, 0), *b = next_record(f.c, 0);
	assert_string_equal(str(a, "kind"), "result");
	assert_string_equal(str(b, "kind"), "log");
	assert_string_equal(str(b, "level"), "debug");
	assert_non_null(strstr(str(b, "message"), "delivered after 1 attempt"));
	cJSON_Delete(a);
	cJSON_Delete(b);
	free(ev);
	close_client(&f);
}

static void test_stats_and_metrics(void **state)
{
	(void)state;
	fx f;
	open_client(&f, "sync", NULL);
	th_reply replies[] = { { .status = 200 }, { .status = 200, .delay_ms = 30 }, { .status = 500 } };
	th_script(f.srv, replies, 3);
	char *ev = flag_event("1", "f");
	assert_int_equal(flaghook_emit_json(f.c, ev, strlen(ev), NULL, 0), 0);
	assert_int_equal(flaghook_emit_json(f.c, ev, strlen(ev), NULL, 0), 0);
	assert_int_equal(flaghook_emit_json(f.c, ev, strlen(ev), NULL, 0), FLAGHOOK_EDELIVERY);

	char *s = NULL;
	size_t n;
	assert_int_equal(flaghook_stats_json(f.c, &s, &n), 0);
	cJSON *j = cJSON_Parse(s);
	assert_non_null(j);
	const cJSON *eps = cJSON_GetObjectItemCaseSensitive(j, "endpoints");
	assert_int_equal(cJSON_GetArraySize(eps), 1);
	const cJSON *e = cJSON_GetArrayItem(eps, 0);
	assert_true(num(e, "id") == (double)f.ep);
	assert_true(num(e, "delivered") == 2);
	assert_true(num(e, "gave_up") == 1);
	assert_true(num(e, "attempts") == 3);
	assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(e, "disabled")));
	assert_true(num(cJSON_GetObjectItemCaseSensitive(j, "client"), "pending") == 0);
	cJSON_Delete(j);
	flaghook_free(s);

	assert_int_equal(flaghook_metrics(f.c, &s, &n), 0);
	assert_int_equal(strlen(s), n);
	char want[160];
	snprintf(want, sizeof(want), "flaghook_deliveries_total{endpoint=\"%" PRIu64 "\",outcome=\"delivered\"} 2\n", f.ep);
	assert_non_null(strstr(s, want));
	snprintf(want, sizeof(want), "flaghook_deliveries_total{endpoint=\"%" PRIu64 "\",outcome=\"gave_up\"} 1\n", f.ep);
	assert_non_null(strstr(s, want));
	snprintf(want, sizeof(want), "flaghook_attempt_duration_seconds_count{endpoint=\"%" PRIu64 "\"} 3\n", f.ep);
	assert_non_null(strstr(s, want));
	snprintf(want, sizeof(want), "flaghook_attempt_duration_seconds_bucket{endpoint=\"%" PRIu64 "\",le=\"+Inf\"} 3\n",
	         f.ep);
	assert_non_null(strstr(s, want));
	/* The 30 ms reply is above the 25 ms bucket: at most 2 at or below it. */
	snprintf(want, sizeof(want), "flaghook_attempt_duration_seconds_bucket{endpoint=\"%" PRIu64 "\",le=\"0.025\"} ",
	         f.ep);
	const char *at = strstr(s, want);
	assert_non_null(at);
	assert_true(atoi(at + strlen(want)) <= 2);
	/* Every line is a comment or "name{labels} value"; buckets never fall. */
	long last_bucket = -1;
	for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
		if (line[0] == '#') {
			assert_true(!strncmp(line, "# HELP flaghook_", 16) || !strncmp(line, "# TYPE flaghook_", 16));
			continue;
		}
		assert_true(!strncmp(line, "flaghook_", 9));
		const char *sp = strrchr(line, ' ');
		assert_non_null(sp);
		char *end;
		double v = strtod(sp + 1, &end);
		assert_true(*end == '\0' && v >= 0);
		if (strstr(line, "_bucket{")) {
			assert_true((long)v >= last_bucket);
			last_bucket = (long)v;
		}
		assert_null(strstr(line, "127.0.0.1"));
	}
	flaghook_free(s);
	free(ev);
	close_client(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_round_trip),
		cmocka_unit_test(test_profile_2020),
		cmocka_unit_test(test_int64_exact),
		cmocka_unit_test(test_errors_name_the_path),
		cmocka_unit_test(test_constants),
		cmocka_unit_test(test_sync_queue),
		cmocka_unit_test(test_sync_failure),
		cmocka_unit_test(test_large_endpoint_id),
		cmocka_unit_test(test_async_queue),
		cmocka_unit_test(test_options_json),
		cmocka_unit_test(test_secret_hex),
		cmocka_unit_test(test_error_from_another_thread),
		cmocka_unit_test(test_logs),
		cmocka_unit_test(test_logs_in_queue),
		cmocka_unit_test(test_stats_and_metrics),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
