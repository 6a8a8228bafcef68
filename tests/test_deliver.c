/*
 * Synchronous delivery against a real HTTP(S) server on loopback
 * (tests/support/httpd.c): the bytes and headers that arrive, routing,
 * receivers that fail, TLS, and bad input that must send nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "flaghook.h"
#include "httpd.h"
#include "sample.h"
#include "vectors.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#define SECRET "s3cr3t-value"

/* ---- results seen by on_result ---- */

typedef struct seen {
	pthread_mutex_t lock;
	int count;
	flaghook_result last;
	char error[256];
	char response[256];
	char event_id[64];
	int delivered, gave_up;
} seen;

static void on_result(const flaghook_result *r, void *ud)
{
	seen *s = ud;
	pthread_mutex_lock(&s->lock);
	s->count++;
	s->last = *r;
	snprintf(s->error, sizeof(s->error), "%s", r->error);
	size_t n = r->response_len < sizeof(s->response) - 1 ? r->response_len : sizeof(s->response) - 1;
	memcpy(s->response, r->response, n);
	s->response[n] = '\0';
	snprintf(s->event_id, sizeof(s->event_id), "%s", r->event_id);
	s->delivered += r->outcome == FLAGHOOK_OUTCOME_DELIVERED;
	s->gave_up += r->outcome == FLAGHOOK_OUTCOME_GAVE_UP;
	s->last.error = s->error;
	s->last.response = s->response;
	s->last.event_id = s->event_id;
	pthread_mutex_unlock(&s->lock);
}

typedef struct fx {
	th_server *srv;
	flaghook_client *c;
	seen seen;
	char url[128];
	/* what some cases add, torn down even when an assertion fails */
	th_server *srv2;
	flaghook_client *c2;
	char dir[64];               /* a temporary directory of files, "" when none */
	int fd;                     /* a socket bound and never listening, or -1 */
} fx;

static flaghook_client *new_client(fx *f, int64_t timeout_ms, const char *ca_file)
{
	flaghook_client_options o = FLAGHOOK_CLIENT_OPTIONS_INIT;
	o.allow_private = 1; /* the receivers are on loopback */
	o.on_result = on_result;
	o.user_data = &f->seen;
	o.timeout_ms = timeout_ms;
	o.ca_file = ca_file;
	flaghook_client *c = NULL;
	assert_int_equal(flaghook_client_new(&c, &o), 0);
	return c;
}

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	pthread_mutex_init(&f->seen.lock, NULL);
	if (th_start(&f->srv, NULL, NULL))
		return -1;
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/hook", th_port(f->srv));
	f->fd = -1;
	/* Long enough for a loaded machine; test_timeout sets its own. */
	f->c = new_client(f, 30000, NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	flaghook_client_free(f->c2);
	flaghook_client_free(f->c);
	th_stop(f->srv2);
	th_stop(f->srv);
	if (f->fd >= 0)
		close(f->fd);
	if (f->dir[0]) {
		char p[160];
		static const char *const files[] = { "cert.pem", "key.pem" };
		for (size_t i = 0; i < 2; i++) {
			snprintf(p, sizeof(p), "%s/%s", f->dir, files[i]);
			unlink(p);
		}
		rmdir(f->dir);
	}
	pthread_mutex_destroy(&f->seen.lock);
	free(f);
	return 0;
}

static uint64_t add(flaghook_client *c, int scope, int64_t id, const char *url, const char *secret)
{
	flaghook_endpoint_options e = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	e.scope = scope;
	e.scope_id = id;
	e.url = url;
	e.secret = secret;
	e.secret_len = secret ? strlen(secret) : 0;
	uint64_t out = 0;
	int rc = flaghook_endpoint_add(c, &out, &e);
	if (rc)
		fail_msg("endpoint_add: %d %s", rc, flaghook_last_error());
	return out;
}

static char *golden(const char *name, size_t *len)
{
	char rel[128];
	snprintf(rel, sizeof(rel), "golden/%s.json", name);
	return read_whole(test_path(rel), len);
}

/* The bytes that arrive are the golden body, with the documented headers
 * and a signature a receiver can check. */
static void test_delivers_exact_bytes(void **state)
{
	fx *f = *state;
	add(f->c, FLAGHOOK_SCOPE_ENVIRONMENT, 1, f->url, SECRET);
	assert_int_equal(flaghook_emit(f->c, fh_sample_environment()), 0);
	assert_int_equal(th_count(f->srv), 1);
	th_request r;
	assert_int_equal(th_get(f->srv, 0, &r), 0);
	size_t want_len;
	char *want = golden("sample_environment", &want_len);
	assert_string_equal(r.method, "POST");
	assert_string_equal(r.target, "/hook");
	assert_int_equal(r.body_len, want_len);
	assert_memory_equal(r.body, want, want_len);
	assert_string_equal(th_header(&r, "Content-Type"), "application/json");
	assert_string_equal(th_header(&r, "User-Agent"), "libflaghook/" FLAGHOOK_VERSION);
	char sig[65];
	assert_int_equal(flaghook_sign(sig, sizeof(sig), SECRET, strlen(SECRET), want, want_len), 0);
	assert_string_equal(th_header(&r, "X-Flagsmith-Signature"), sig);
	assert_int_equal(flaghook_verify(SECRET, strlen(SECRET), r.body, r.body_len, sig, 64), 0);
	assert_null(th_header(&r, "webhook-signature"));
	assert_null(th_header(&r, "Expect"));
	assert_int_equal(f->seen.count, 1);
	assert_int_equal(f->seen.last.outcome, FLAGHOOK_OUTCOME_DELIVERED);
	assert_int_equal(f->seen.last.status, 200);
	assert_int_equal(f->seen.last.errclass, FLAGHOOK_ERRCLASS_NONE);
	assert_int_equal(f->seen.last.attempts, 1);
	assert_true(f->seen.last.elapsed_us > 0);
	assert_int_equal(f->seen.last.event_type, FLAGHOOK_EVENT_FLAG_UPDATED);
	assert_int_equal(strlen(f->seen.event_id), 36);
	assert_string_equal(f->seen.response, "ok");
	th_request_free(&r);
	free(want);
}

static void test_no_secret_no_header(void **state)
{
	fx *f = *state;
	add(f->c, FLAGHOOK_SCOPE_ORGANISATION, 1, f->url, NULL);
	add(f->c, FLAGHOOK_SCOPE_ORGANISATION, 1, f->url, "");
	assert_int_equal(flaghook_emit(f->c, fh_sample_organisation()), 0);
	assert_int_equal(th_count(f->srv), 2);
	for (size_t i = 0; i < 2; i++) {
		th_request r;
		th_get(f->srv, i, &r);
		assert_null(th_header(&r, "X-Flagsmith-Signature"));
		th_request_free(&r);
	}
}

static void test_standard_webhooks_headers(void **state)
{
	fx *f = *state;
	const char *secrets[] = { "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_dGhlIG9sZCBzZWNyZXQ=" };
	flaghook_endpoint_options e = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	e.scope_id = 1;
	e.url = f->url;
	e.standard_secrets = secrets;
	e.standard_secret_count = 2;
	uint64_t id;
	assert_int_equal(flaghook_endpoint_add(f->c, &id, &e), 0);
	assert_int_equal(flaghook_emit(f->c, fh_sample_environment()), 0);
	th_request r;
	assert_int_equal(th_get(f->srv, 0, &r), 0);
	const char *wid = th_header(&r, "webhook-id"), *wts = th_header(&r, "webhook-timestamp");
	const char *wsig = th_header(&r, "webhook-signature");
	assert_non_null(wid);
	assert_non_null(wts);
	assert_non_null(wsig);
	assert_string_equal(wid, f->seen.event_id);
	assert_non_null(strchr(wsig, ' ')); /* one signature per secret */
	int64_t now = (int64_t)time(NULL);
	for (int k = 0; k < 2; k++)
		assert_int_equal(flaghook_standard_verify(&secrets[k], 1, wid, wts, wsig, r.body, r.body_len, now, 60), 0);
	const char *other = "whsec_b3RoZXI=";
	assert_int_equal(flaghook_standard_verify(&other, 1, wid, wts, wsig, r.body, r.body_len, now, 60),
	                 FLAGHOOK_EVERIFY);
	th_request_free(&r);
}

/* Scope, event mask and the enabled flag decide who gets what; each shape
 * (profile, compact) gets its own body. */
static void test_routing_and_profiles(void **state)
{
	fx *f = *state;
	char u[6][160];
	for (int i = 0; i < 6; i++)
		snprintf(u[i], sizeof(u[i]), "http://127.0.0.1:%d/ep%d", th_port(f->srv), i);
	add(f->c, FLAGHOOK_SCOPE_ENVIRONMENT, 1, u[0], SECRET);            /* gets the flag event */
	uint64_t off = add(f->c, FLAGHOOK_SCOPE_ENVIRONMENT, 1, u[1], NULL); /* disabled below */
	add(f->c, FLAGHOOK_SCOPE_ENVIRONMENT, 2, u[2], NULL);              /* other environment */
	add(f->c, FLAGHOOK_SCOPE_ORGANISATION, 1, u[3], NULL);             /* org gets flags too */
	flaghook_endpoint_options e = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	e.scope_id = 1;
	e.url = u[4];
	e.events = FLAGHOOK_EVENT_BIT(FLAGHOOK_EVENT_AUDIT_LOG_CREATED); /* audit logs only */
	uint64_t id;
	assert_int_equal(flaghook_endpoint_add(f->c, &id, &e), 0);
	e.url = u[5];
	e.events = 0;
	e.profile = FLAGHOOK_PROFILE_FLAGSMITH_2020;
	e.render_flags = FLAGHOOK_RENDER_COMPACT;
	assert_int_equal(flaghook_endpoint_add(f->c, &id, &e), 0);
	assert_int_equal(flaghook_endpoint_set_enabled(f->c, off, 0), 0);

	assert_int_equal(flaghook_emit(f->c, fh_sample_environment()), 0);
	assert_int_equal(th_count(f->srv), 3);
	int got[6] = { 0 };
	for (size_t i = 0; i < 3; i++) {
		th_request r;
		th_get(f->srv, i, &r);
		int n = r.target[3] - '0';
		got[n]++;
		if (n == 5) {
			assert_non_null(strstr(r.body, "\"environment\":1,"));
			assert_null(strstr(r.body, "multivariate"));
		} else {
			size_t len;
			char *want = golden("sample_environment", &len);
			assert_int_equal(r.body_len, len);
			assert_memory_equal(r.body, want, len);
			free(want);
		}
		th_request_free(&r);
	}
	assert_int_equal(got[0] + got[3] + got[5], 3);
	/* The sample audit log names no environment: organisation only. */
	assert_int_equal(flaghook_emit(f->c, fh_sample_organisation()), 0);
	assert_int_equal(th_count(f->srv), 4);
	/* One about environment 1 also reaches the environment endpoint that
	 * subscribed to audit logs. */
	flaghook_environment env1 = { .id = 1, .name = "Development" };
	flaghook_audit_log audit = *fh_sample_organisation()->audit;
	audit.environment = &env1;
	flaghook_event ev = *fh_sample_organisation();
	ev.audit = &audit;
	assert_int_equal(flaghook_emit(f->c, &ev), 0);
	assert_int_equal(th_count(f->srv), 6);
	/* Re-enabled, removed, unknown. */
	assert_int_equal(flaghook_endpoint_set_enabled(f->c, off, 1), 0);
	assert_int_equal(flaghook_emit(f->c, fh_sample_environment()), 0);
	assert_int_equal(th_count(f->srv), 10);
	assert_int_equal(flaghook_endpoint_remove(f->c, off), 0);
	assert_int_equal(flaghook_endpoint_remove(f->c, off), FLAGHOOK_ENOTFOUND);
	assert_int_equal(flaghook_endpoint_set_enabled(f->c, 999, 1), FLAGHOOK_ENOTFOUND);
	char msg[128];
	assert_true(flaghook_client_last_error(f->c, msg, sizeof(msg)) > 0);
	assert_non_null(strstr(msg, "999"));
}

static void test_connection_reused(void **state)
{
	fx *f = *state;
	add(f->c, FLAGHOOK_SCOPE_ENVIRONMENT, 1, f->url, SECRET);
	for (int i = 0; i < 5; i++)
		assert_int_equal(flaghook_emit(f->c, fh_sample_environment()), 0);
	assert_int_equal(th_count(f->srv), 5);
	assert_int_equal(th_connections(f->srv), 1);
}

static void test_http_error_status(void **state)
{
	fx *f = *state;
	th_reply replies[] = { { TH_RESPOND, 500, NULL, "boom", 0, 0 } };
	th_script(f->srv, replies, 1);
	add(f->c, FLAGHOOK_SCOPE_ENVIRONMENT, 1, f->url, SECRET);
	assert_int_equal(flaghook_emit(f->c, fh_sample_environment()), FLAGHOOK_EDELIVERY);
	assert_int_equal(f->seen.last.outcome, FLAGHOOK_OUTCOME_GAVE_UP);
	assert_int_equal(f->seen.last.status, 500);
	assert_int_equal(f->seen.last.errclass, FLAGHOOK_ERRCLASS_HTTP);
	assert_string_equal(f->seen.response, "boom");
	assert_non_null(strstr(f->seen.error, "500"));
	assert_non_null(strstr(flaghook_last_error(), "1 of 1 endpoints"));
	assert_null(strstr(flaghook_last_error(), SECRET));
}

/* Redirects are never followed: a 3xx is the answer. */
static void test_redirect_not_followed(void **state)
{
	fx *f = *state;
	char hdr[160];
	snprintf(hdr, sizeof(hdr), "Location: http://127.0.0.1:%d/elsewhere\r\n", th_port(f->srv));
	th_reply replies[] = { { TH_RESPOND, 302, hdr, NULL, 0, 0 } };
	th_script(f->srv, replies, 1);
	add(f->c, FLAGHOOK_SCOPE_ENVIRONMENT, 1, f->url, NULL);
	assert_int_equal(flaghook_emit(f->c, fh_sample_environment()), FLAGHOOK_EDELIVERY);
	assert_int_equal(f->seen.last.status, 302);
	usleep(100 * 1000);
	assert_int_equal(th_count(f->srv), 1);
}

static void test_connection_refused(void **state)
{
	fx *f = *state;
	/* A port bound and never listening, held until teardown: a connection
	 * to it is refused, and nobody else can take it meanwhile. */
	int port = th_refused_port(&f->fd);
	assert_true(port > 0);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	add(f->c, FLAGHOOK_SCOPE_ENVIRONMENT, 1, url, SECRET);
	assert_int_equal(flaghook_emit(f->c, fh_sample_environment()), FLAGHOOK_EDELIVERY);
	assert_int_equal(f->seen.last.status, 0);
	assert_int_equal(f->seen.last.errclass, FLAGHOOK_ERRCLASS_CONNECT);
	assert_true(strlen(f->seen.error) > 0);
	/* Review defect 12: the error says why, not only that. */
	const char *e = flaghook_last_error();
	if (!strstr(e, "1 of 1 endpoints did not take event") || !strstr(e, "endpoint 1: connect: ") ||
	    !strstr(e, f->seen.error))
		fail_msg("the error does not say why: %s", e);
	char msg[512];
	flaghook_client_last_error(f->c, msg, sizeof(msg));
	assert_string_equal(msg, e);
}

/* Review defect 12, with an HTTP status as the cause. */
static void test_sync_error_names_status(void **state)
{
	fx *f = *state;
	add(f->c, FLAGHOOK_SCOPE_ENVIRONMENT, 1, f->url, SECRET);
	add(f->c, FLAGHOOK_SCOPE_ENVIRONMENT, 1, f->url, SECRET);
	th_reply fail[] = { { TH_RESPOND, 200, NULL, NULL, 0, 0 }, { TH_RESPOND, 503, NULL, "busy", 0, 0 } };
	th_script(f->srv, fail, 2);
	assert_int_equal(flaghook_emit(f->c, fh_sample_environment()), FLAGHOOK_EDELIVERY);
	const char *e = flaghook_last_error();
	if (!strstr(e, "1 of 2 endpoints did not take event") || !strstr(e, ": http: HTTP status 503"))
		fail_msg("the error does not say why: %s", e);
}

static void test_timeout(void **state)
{
	fx *f = *state;
	flaghook_client_free(f->c);
	f->c = new_client(f, 300, NULL);
	th_reply replies[] = { { TH_HANG, 0, NULL, NULL, 0, 0 } };
	th_script(f->srv, replies, 1);
	add(f->c, FLAGHOOK_SCOPE_ENVIRONMENT, 1, f->url, NULL);
	assert_int_equal(flaghook_emit(f->c, fh_sample_environment()), FLAGHOOK_EDELIVERY);
	assert_int_equal(f->seen.last.errclass, FLAGHOOK_ERRCLASS_TIMEOUT);
	assert_true(f->seen.last.elapsed_us >= 250000);
	assert_true(f->seen.last.elapsed_us < 30000000); /* a hang bound */
}

static void test_reset_and_close(void **state)
{
	fx *f = *state;
	th_reply replies[] = { { TH_RESET, 200, NULL, "partial body here", 0, 0 },
	                       { TH_CLOSE_BEFORE_REPLY, 0, NULL, NULL, 0, 0 } };
	th_script(f->srv, replies, 2);
	add(f->c, FLAGHOOK_SCOPE_ENVIRONMENT, 1, f->url, NULL);
	assert_int_equal(flaghook_emit(f->c, fh_sample_environment()), FLAGHOOK_EDELIVERY);
	assert_int_equal(f->seen.last.errclass, FLAGHOOK_ERRCLASS_RECV);
	assert_int_equal(flaghook_emit(f->c, fh_sample_environment()), FLAGHOOK_EDELIVERY);
	assert_int_equal(f->seen.last.errclass, FLAGHOOK_ERRCLASS_RECV);
	/* And the next one, on a new connection, goes through. */
	assert_int_equal(flaghook_emit(f->c, fh_sample_environment()), 0);
}

/* A large reply is read up to the cap and no further; the status counts. */
static void test_response_capped(void **state)
{
	fx *f = *state;
	flaghook_client_free(f->c);
	flaghook_client_options o = FLAGHOOK_CLIENT_OPTIONS_INIT;
	o.allow_private = 1; /* the receivers are on loopback */
	o.on_result = on_result;
	o.user_data = &f->seen;
	o.timeout_ms = 30000;
	o.max_response_bytes = 100;
	assert_int_equal(flaghook_client_new(&f->c, &o), 0);
	static char big[200001];
	memset(big, 'x', sizeof(big) - 1);
	th_reply replies[] = { { TH_RESPOND, 202, NULL, big, 0, 0 } };
	th_script(f->srv, replies, 1);
	add(f->c, FLAGHOOK_SCOPE_ENVIRONMENT, 1, f->url, NULL);
	assert_int_equal(flaghook_emit(f->c, fh_sample_environment()), 0);
	assert_int_equal(f->seen.last.status, 202);
	assert_int_equal(f->seen.last.response_len, 100);
}

static void test_tls(void **state)
{
	fx *f = *state;
	snprintf(f->dir, sizeof(f->dir), "/tmp/flaghook-tls-XXXXXX");
	if (!mkdtemp(f->dir)) {
		f->dir[0] = '\0';
		fail_msg("mkdtemp failed");
	}
	char cert[256], key[256];
	assert_int_equal(th_make_cert(f->dir, cert, key, sizeof(cert)), 0);
	assert_int_equal(th_start_tls(&f->srv2, cert, key, NULL, NULL), 0);
	th_server *tls = f->srv2;
	char url[128];
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/secure", th_port(tls));

	/* Trusting the test CA: delivered, bytes intact, connection reused. */
	flaghook_client *c = f->c2 = new_client(f, 30000, cert);
	add(c, FLAGHOOK_SCOPE_ENVIRONMENT, 1, url, SECRET);
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	assert_int_equal(th_count(tls), 2);
	assert_int_equal(th_connections(tls), 1);
	th_request r;
	th_get(tls, 0, &r);
	assert_int_equal(flaghook_verify(SECRET, strlen(SECRET), r.body, r.body_len,
	                                 th_header(&r, "X-Flagsmith-Signature"), 64), 0);
	th_request_free(&r);
	flaghook_client_free(c);
	f->c2 = NULL;

	/* Not trusting it: a TLS failure, and nothing reaches the handler. */
	c = f->c2 = new_client(f, 30000, NULL);
	add(c, FLAGHOOK_SCOPE_ENVIRONMENT, 1, url, SECRET);
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), FLAGHOOK_EDELIVERY);
	assert_int_equal(f->seen.last.errclass, FLAGHOOK_ERRCLASS_TLS);
	assert_int_equal(th_count(tls), 2);
	/* teardown stops the server and removes the files */
}

/* ---- bad input: a clear code, a message naming it, nothing sent ---- */

static void expect_add_error(flaghook_client *c, flaghook_endpoint_options *e, int code, const char *words)
{
	uint64_t id = 0;
	int rc = flaghook_endpoint_add(c, &id, e);
	if (rc != code)
		fail_msg("endpoint_add: want %d got %d (%s)", code, rc, flaghook_last_error());
	if (!strstr(flaghook_last_error(), words))
		fail_msg("message '%s' lacks '%s'", flaghook_last_error(), words);
	if (e->secret && e->secret_len && strstr(flaghook_last_error(), e->secret))
		fail_msg("message shows the secret");
	if (e->url && strlen(e->url) > 12 && strstr(flaghook_last_error(), e->url))
		fail_msg("message shows the URL");
}

static void test_bad_endpoints(void **state)
{
	fx *f = *state;
	flaghook_endpoint_options e = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	e.scope_id = 1;
	static const char *bad_urls[] = { "ftp://127.0.0.1/", "file:///etc/passwd", "http://", "http:///path",
	                                  "http://a b/", "http://x/\r\nX-Evil: 1", "127.0.0.1:80/", "",
	                                  "http://user:pw@/x",
	                                  /* review defect 6: what libcurl would refuse at each attempt */
	                                  "http://127.0.0.1:(null)/h0", "http://127.0.0.1:0/", "http://h:65536/",
	                                  "http://h:-1/", "http://u%0a:p@h/", "http://u:p%0d@h/", "http://[::1/",
	                                  "http://h:8x/" };
	for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
		e.url = bad_urls[i];
		expect_add_error(f->c, &e, FLAGHOOK_EURL, "url");
	}
	e.url = NULL;
	expect_add_error(f->c, &e, FLAGHOOK_EURL, "url is NULL");
	e.url = f->url;
	e.secret = "abc\ndef";
	e.secret_len = 7;
	expect_add_error(f->c, &e, FLAGHOOK_ESECRET, "NUL, CR or LF at byte 3");
	e.secret = "abc\0def";
	expect_add_error(f->c, &e, FLAGHOOK_ESECRET, "NUL, CR or LF at byte 3");
	e.secret = "caf\xe9";
	e.secret_len = 4;
	expect_add_error(f->c, &e, FLAGHOOK_ESECRET, "not UTF-8 at byte 3");
	e.secret = NULL;
	e.secret_len = 0;
	const char *bad_std[] = { "whsec_not base64!" };
	e.standard_secrets = bad_std;
	e.standard_secret_count = 1;
	expect_add_error(f->c, &e, FLAGHOOK_ESECRET, "standard_secrets[0]");
	const char *many[9];
	for (int i = 0; i < 9; i++)
		many[i] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
	e.standard_secrets = many;
	e.standard_secret_count = 9;
	expect_add_error(f->c, &e, FLAGHOOK_ESECRET, "at most 8");
	e.standard_secrets = NULL;
	e.standard_secret_count = 0;
	e.scope = 9;
	expect_add_error(f->c, &e, FLAGHOOK_EINVAL, "scope");
	e.scope = FLAGHOOK_SCOPE_ENVIRONMENT;
	e.profile = FLAGHOOK_PROFILE_BULLET_TRAIN;
	e.events = FLAGHOOK_EVENT_BIT(FLAGHOOK_EVENT_FLAG_UPDATED);
	expect_add_error(f->c, &e, FLAGHOOK_EINVAL, "Bullet Train");
	e.profile = 0;
	e.events = 1u << 20;
	expect_add_error(f->c, &e, FLAGHOOK_EINVAL, "events");
	e.events = 0;
	e.version = 7;
	expect_add_error(f->c, &e, FLAGHOOK_EVERSION, "version");
	uint64_t id;
	assert_int_equal(flaghook_endpoint_add(NULL, &id, &e), FLAGHOOK_EINVAL);
	assert_int_equal(flaghook_endpoint_add(f->c, &id, NULL), FLAGHOOK_EINVAL);
	/* HTTPS with credentials in the URL is accepted (and never echoed). */
	e.version = FLAGHOOK_ENDPOINT_OPTIONS_VERSION;
	e.url = "HTTPS://user:pw@example.invalid:8443/x?y#z";
	assert_int_equal(flaghook_endpoint_add(f->c, &id, &e), 0);
	assert_int_equal(flaghook_endpoint_remove(f->c, id), 0);
}

static void test_bad_events_send_nothing(void **state)
{
	fx *f = *state;
	add(f->c, FLAGHOOK_SCOPE_ENVIRONMENT, 1, f->url, SECRET);
	flaghook_feature_state s = *fh_sample_environment()->flag->new_state;
	s.feature.name = "\xc3";
	flaghook_flag_change fc = *fh_sample_environment()->flag;
	fc.new_state = &s;
	flaghook_event ev = *fh_sample_environment();
	ev.flag = &fc;
	assert_int_equal(flaghook_emit(f->c, &ev), FLAGHOOK_EUTF8);
	assert_non_null(strstr(flaghook_last_error(), "new_state.feature.name"));
	char msg[256];
	flaghook_client_last_error(f->c, msg, sizeof(msg));
	assert_non_null(strstr(msg, "new_state.feature.name"));
	assert_int_equal(flaghook_emit(f->c, NULL), FLAGHOOK_EINVAL);
	assert_int_equal(flaghook_emit(NULL, fh_sample_environment()), FLAGHOOK_EINVAL);

	/* Over the body limit. */
	flaghook_client *small = NULL;
	flaghook_client_options o = FLAGHOOK_CLIENT_OPTIONS_INIT;
	o.allow_private = 1; /* the receivers are on loopback */
	o.max_body_bytes = 200;
	assert_int_equal(flaghook_client_new(&small, &o), 0);
	add(small, FLAGHOOK_SCOPE_ENVIRONMENT, 1, f->url, SECRET);
	assert_int_equal(flaghook_emit(small, fh_sample_environment()), FLAGHOOK_ETOOBIG);
	flaghook_client_free(small);

	usleep(50 * 1000);
	assert_int_equal(th_count(f->srv), 0);
	assert_int_equal(f->seen.count, 0);
}

static void test_bad_client_options(void **state)
{
	(void)state;
	flaghook_client *c = NULL;
	flaghook_client_options o = FLAGHOOK_CLIENT_OPTIONS_INIT;
	o.allow_private = 1; /* the receivers are on loopback */
	assert_int_equal(flaghook_client_new(NULL, &o), FLAGHOOK_EINVAL);
	o.version = 0;
	assert_int_equal(flaghook_client_new(&c, &o), FLAGHOOK_EVERSION);
	o.version = FLAGHOOK_CLIENT_OPTIONS_VERSION;
	o.mode = 5;
	assert_int_equal(flaghook_client_new(&c, &o), FLAGHOOK_EINVAL);
	o.mode = FLAGHOOK_MODE_SYNC;
	o.timeout_ms = -1;
	assert_int_equal(flaghook_client_new(&c, &o), FLAGHOOK_EINVAL);
	o.timeout_ms = 0;
	o.user_agent = "evil\r\nX-Injected: 1";
	assert_int_equal(flaghook_client_new(&c, &o), FLAGHOOK_EINVAL);
	flaghook_transport t = FLAGHOOK_TRANSPORT_INIT; /* no send */
	o.user_agent = NULL;
	o.transport = &t;
	assert_int_equal(flaghook_client_new(&c, &o), FLAGHOOK_EINVAL);
	assert_null(c);
	/* Review defect 7: a CA file that is not there is refused now, not at
	 * every delivery. */
	o.transport = NULL;
	o.ca_file = "/nonexistent/flaghook-ca.pem";
	assert_int_equal(flaghook_client_new(&c, &o), FLAGHOOK_EINVAL);
	assert_non_null(strstr(flaghook_last_error(), "ca_file /nonexistent/flaghook-ca.pem: No such file"));
	o.ca_file = "/tmp";
	assert_int_equal(flaghook_client_new(&c, &o), FLAGHOOK_EINVAL);
	assert_non_null(strstr(flaghook_last_error(), "not a regular file"));
	assert_null(c);
	o.ca_file = NULL;
	assert_int_equal(flaghook_client_new(&c, NULL), 0);
	flaghook_client_free(c);
	flaghook_client_free(NULL);
	assert_int_equal(flaghook_transport_init(&t, FLAGHOOK_TRANSPORT_VERSION + 1), FLAGHOOK_EVERSION);
	assert_int_equal(flaghook_transport_init(&t, 1), 0);
	flaghook_executor x;
	flaghook_storage st;
	flaghook_allocator al;
	flaghook_endpoint_options eo;
	flaghook_render_options ro;
	assert_int_equal(flaghook_executor_init(&x, 1), 0);
	assert_int_equal(flaghook_storage_init(&st, 1), 0);
	assert_int_equal(flaghook_allocator_init(&al, 1), 0);
	assert_int_equal(flaghook_endpoint_options_init(&eo, 1), 0);
	assert_int_equal(flaghook_render_options_init(&ro, 1), 0);
	assert_int_equal(flaghook_client_options_init(&o, 1), 0);
	assert_int_equal(flaghook_client_options_init(NULL, 1), FLAGHOOK_EINVAL);
}

/* ---- review defect 11: credentials in URLs are wiped like secrets ---- */

/* An allocator that remembers each block's size and, when a block is
 * freed, looks in it for the password. */
typedef struct scan {
	pthread_mutex_t lock;
	const char *needle;
	int found;                  /* blocks freed with the needle still in them */
	long live;
} scan;

static void *scan_malloc(size_t n, void *ud)
{
	scan *sc = ud;
	size_t *p = malloc(n + sizeof(size_t) * 2);
	if (!p)
		return NULL;
	p[0] = n;
	pthread_mutex_lock(&sc->lock);
	sc->live++;
	pthread_mutex_unlock(&sc->lock);
	return p + 2;
}

static int holds(const char *block, size_t n, const char *needle)
{
	size_t k = strlen(needle);
	for (size_t i = 0; i + k <= n; i++)
		if (!memcmp(block + i, needle, k))
			return 1;
	return 0;
}

static void scan_free(void *q, void *ud)
{
	scan *sc = ud;
	if (!q)
		return;
	size_t *p = (size_t *)q - 2;
	pthread_mutex_lock(&sc->lock);
	sc->found += holds(q, p[0], sc->needle);
	sc->live--;
	pthread_mutex_unlock(&sc->lock);
	free(p);
}

static void *scan_realloc(void *q, size_t n, void *ud)
{
	if (!q)
		return scan_malloc(n, ud);
	size_t old = ((size_t *)q)[-2];
	void *r = scan_malloc(n, ud);
	if (!r)
		return NULL;
	memcpy(r, q, old < n ? old : n);
	scan_free(q, ud);
	return r;
}

static void test_url_credentials_wiped(void **state)
{
	fx *f = *state;
	scan sc = { .needle = "hunter2-pw" };
	pthread_mutex_init(&sc.lock, NULL);
	flaghook_allocator al = { FLAGHOOK_ALLOCATOR_VERSION, scan_malloc, scan_realloc, scan_free, &sc };
	flaghook_client_options o = FLAGHOOK_CLIENT_OPTIONS_INIT;
	o.allow_private = 1; /* the receivers are on loopback */
	o.allocator = &al;
	flaghook_client *c = NULL;
	assert_int_equal(flaghook_client_new(&c, &o), 0);
	char url[128];
	snprintf(url, sizeof(url), "http://alice:hunter2-pw@127.0.0.1:%d/hook", th_port(f->srv));
	/* One endpoint removed at once, one sent to (the transport keeps its
	 * own copy of the URL) and freed with the client. */
	uint64_t gone = add(c, FLAGHOOK_SCOPE_ENVIRONMENT, 2, url, SECRET);
	assert_int_equal(flaghook_endpoint_remove(c, gone), 0);
	add(c, FLAGHOOK_SCOPE_ENVIRONMENT, 1, url, SECRET);
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	th_request r;
	assert_int_equal(th_get(f->srv, 0, &r), 0);
	assert_non_null(th_header(&r, "Authorization")); /* the credentials were used */
	th_request_free(&r);
	flaghook_client_free(c);
	assert_int_equal(sc.live, 0);
	assert_int_equal(sc.found, 0);
	pthread_mutex_destroy(&sc.lock);
}

/* ---- plug-ins: a custom transport and storage see the right things ---- */

typedef struct recorder {
	int puts, records, sends;
	int put_before_send;
	char url[128];
	char body[4096];
	char signature[80];
	int status;
} recorder;

static int rec_send(const flaghook_request *req, flaghook_response *resp, void *ud)
{
	recorder *r = ud;
	r->sends++;
	r->put_before_send = r->puts > 0;
	snprintf(r->url, sizeof(r->url), "%s", req->url);
	snprintf(r->body, sizeof(r->body), "%.*s", (int)req->body_len, (const char *)req->body);
	for (size_t i = 0; i < req->header_count; i++)
		if (!strcmp(req->headers[i].name, "X-Flagsmith-Signature"))
			snprintf(r->signature, sizeof(r->signature), "%s", req->headers[i].value);
	assert_int_equal(req->timeout_ms, 10000); /* the documented default */
	resp->status = r->status;
	return 0;
}

static int rec_put(flaghook_delivery *d, size_t n, void *ud)
{
	recorder *r = ud;
	r->puts += (int)n;
	assert_int_equal(d[0].attempts, 0);
	assert_int_equal(d[0].id, 0); /* the store names it */
	assert_non_null(d[0].event_id);
	d[0].id = 1000 + (uint64_t)r->puts;
	d[0].claimed = 1;
	return 0;
}

static int rec_record(const flaghook_delivery *d, const flaghook_attempt *a, void *ud)
{
	recorder *r = ud;
	r->records++;
	assert_int_equal(d->id, 1000 + (uint64_t)r->puts);
	assert_int_equal(d->attempts, 1);
	assert_int_equal(a->number, 1);
	assert_int_equal(a->delivery_id, d->id);
	assert_string_equal(a->event_id, d->event_id);
	assert_true(a->started_us > 0 && a->finished_us >= a->started_us);
	assert_int_equal(a->outcome, a->status == 204 ? FLAGHOOK_OUTCOME_DELIVERED : FLAGHOOK_OUTCOME_GAVE_UP);
	assert_int_equal(a->errclass, a->status == 204 ? FLAGHOOK_ERRCLASS_NONE : FLAGHOOK_ERRCLASS_HTTP);
	return 0;
}

static void test_custom_plugins(void **state)
{
	(void)state;
	recorder rec = { .status = 204 };
	flaghook_transport t = FLAGHOOK_TRANSPORT_INIT;
	t.send = rec_send;
	t.user_data = &rec;
	flaghook_storage st = FLAGHOOK_STORAGE_INIT;
	st.put = rec_put;
	st.record = rec_record;
	st.user_data = &rec;
	flaghook_client_options o = FLAGHOOK_CLIENT_OPTIONS_INIT;
	o.allow_private = 1; /* the receivers are on loopback */
	o.transport = &t;
	o.storage = &st;
	flaghook_client *c = NULL;
	assert_int_equal(flaghook_client_new(&c, &o), 0);
	add(c, FLAGHOOK_SCOPE_ENVIRONMENT, 1, "https://receiver.invalid/x", "secret");
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	assert_int_equal(rec.sends, 1);
	assert_int_equal(rec.puts, 1);
	assert_int_equal(rec.records, 1);
	assert_true(rec.put_before_send);
	assert_string_equal(rec.url, "https://receiver.invalid/x");
	size_t len;
	char *want = golden("sample_environment", &len);
	assert_string_equal(rec.body, want);
	char sig[65];
	flaghook_sign(sig, sizeof(sig), "secret", 6, want, len);
	assert_string_equal(rec.signature, sig);
	free(want);
	rec.status = 503;
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), FLAGHOOK_EDELIVERY);
	assert_int_equal(rec.records, 2);
	flaghook_client_free(c);
}

/* ---- many threads emitting through one client ---- */

typedef struct worker { flaghook_client *c; int n, failures; } worker;

static void *emit_loop(void *arg)
{
	worker *w = arg;
	for (int i = 0; i < w->n; i++)
		w->failures += flaghook_emit(w->c, i % 2 ? fh_sample_environment() : fh_sample_organisation()) != 0;
	return NULL;
}

static void test_threads(void **state)
{
	fx *f = *state;
	add(f->c, FLAGHOOK_SCOPE_ENVIRONMENT, 1, f->url, SECRET);
	add(f->c, FLAGHOOK_SCOPE_ORGANISATION, 1, f->url, SECRET);
	pthread_t th[4];
	worker w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (worker){ f->c, 25, 0 };
		pthread_create(&th[i], NULL, emit_loop, &w[i]);
	}
	/* Endpoints come and go while events flow. */
	for (int i = 0; i < 20; i++) {
		uint64_t id = add(f->c, FLAGHOOK_SCOPE_ENVIRONMENT, 99, f->url, NULL);
		flaghook_endpoint_remove(f->c, id);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 4; i++)
		assert_int_equal(w[i].failures, 0);
	/* Environment events reach 2 endpoints (env + org), audit logs 1. */
	assert_int_equal(th_count(f->srv), 4 * (13 * 1 + 12 * 2));
	assert_int_equal(f->seen.delivered, 4 * (13 + 24));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_delivers_exact_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_secret_no_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_standard_webhooks_headers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_routing_and_profiles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_http_error_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_redirect_not_followed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_error_names_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_url_credentials_wiped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_and_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_response_capped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_endpoints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_events_send_nothing, setup, teardown),
		cmocka_unit_test(test_bad_client_options),
		cmocka_unit_test(test_custom_plugins),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};
	return cmocka_run_group_tests_name("deliver", tests, NULL, NULL);
}
