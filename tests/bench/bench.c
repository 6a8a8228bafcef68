/*
 * bench — the C half of `make bench` (tests/bench/run.sh drives it).
 *
 * Every figure is printed on stdout as one line "name value unit";
 * progress and configuration go to stderr.  Subcommands:
 *
 *   bench body DIR             writes DIR/body.json (the rendered environment
 *                              sample) and DIR/signature; prints body_bytes
 *   bench freeport             prints a free TCP port on 127.0.0.1
 *   bench probe URL            one POST; exit 0 on a 2xx answer
 *   bench render               render+sign vs bare mbedTLS HMAC, side by side
 *   bench deliver URL          deliveries/s through the asynchronous engine
 *   bench emitlat URL          time inside flaghook_emit, 4 threads emitting
 *   bench rss                  memory per queued delivery (endpoint down)
 *   bench fanout URL           time per delivery for 1..1000 endpoints
 *   bench emitrate URL --store memory|sqlite|pg
 *                              emits/s from --emitters threads at once with
 *                              the memory store, SQLite (--db FILE) or
 *                              PostgreSQL (conninfo in FLAGHOOK_BENCH_PG)
 *   bench curl-easy URL        libcurl alone: --threads blocking easy handles
 *   bench curl-multi URL       libcurl alone: one thread, --threads connections
 *   bench rtt URL              deliveries/s of the default ASYNC client to
 *                              --endpoints (1000) URLs URL/i of a slow receiver
 *   bench syncslow URL         one SYNC emit to --endpoints (10) URLs URL/i of
 *                              a slow receiver: median over --count (21) emits
 *   bench threads URL          threads flaghook_client_new starts (SYNC, ASYNC)
 *   bench loop-render|loop-hmac|loop-sign   one side alone for --seconds
 *                              (profiling aids for perf/callgrind; no figures)
 *
 * Options (where they apply): --seconds S --warmup S --threads N
 * --inflight N --pending N --emitters N --rate N (per emitter, per second)
 * --deliveries N --counts 1,10,100,1000 --rounds N --queued N --tag NAME
 * --store memory|sqlite|pg --db FILE --endpoints N --count N.
 *
 * The HMAC key is FLAGHOOK_BENCH_SECRET (a fixed, public benchmark value;
 * run.sh sets it so wrk and the Python sender sign with the same key).
 *
 * SPDX-License-Identifier: MIT
 */
#include "flaghook.h"
#include "flaghook_pg.h"
#include "flaghook_sqlite.h"
#include "sample.h"
#include "stores/sqlite_testhooks.h" /* flaghook__sqlite_commits: static archive only */

#include <curl/curl.h>
#include <libpq-fe.h>
#include <mbedtls/md.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench: %s: %s (%d) %s\n", what, flaghook_strerror(rc), rc,
	        flaghook_last_error());
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void figure(const char *name, double value, const char *unit)
{
	if (value >= 100 || value == (double)(long long)value)
		printf("%s %.0f %s\n", name, value, unit);
	else
		printf("%s %.3f %s\n", name, value, unit);
	fflush(stdout);
}

static const char *secret(void)
{
	const char *s = getenv("FLAGHOOK_BENCH_SECRET");
	return s && *s ? s : "flaghook-bench-secret-not-a-real-one";
}

/* ---- options ---- */

typedef struct opts {
	double seconds, warmup;
	int threads, inflight, emitters;
	size_t pending, deliveries, queued;
	int rounds, endpoints, count;
	double rate;
	const char *counts, *tag, *url, *store, *db;
} opts;

static void parse(opts *o, int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (a[0] != '-' || a[1] != '-') {
			o->url = a;
			continue;
		}
		if (!v) {
			fprintf(stderr, "bench: %s needs a value\n", a);
			exit(2);
		}
		i++;
		if (!strcmp(a, "--seconds")) o->seconds = atof(v);
		else if (!strcmp(a, "--warmup")) o->warmup = atof(v);
		else if (!strcmp(a, "--threads")) o->threads = atoi(v);
		else if (!strcmp(a, "--inflight")) o->inflight = atoi(v);
		else if (!strcmp(a, "--emitters")) o->emitters = atoi(v);
		else if (!strcmp(a, "--pending")) o->pending = (size_t)atoll(v);
		else if (!strcmp(a, "--deliveries")) o->deliveries = (size_t)atoll(v);
		else if (!strcmp(a, "--queued")) o->queued = (size_t)atoll(v);
		else if (!strcmp(a, "--rate")) o->rate = atof(v);
		else if (!strcmp(a, "--counts")) o->counts = v;
		else if (!strcmp(a, "--rounds")) o->rounds = atoi(v);
		else if (!strcmp(a, "--endpoints")) o->endpoints = atoi(v);
		else if (!strcmp(a, "--count")) o->count = atoi(v);
		else if (!strcmp(a, "--tag")) o->tag = v;
		else if (!strcmp(a, "--store")) o->store = v;
		else if (!strcmp(a, "--db")) o->db = v;
		else {
			fprintf(stderr, "bench: unknown option %s\n", a);
			exit(2);
		}
	}
}

static void need_url(const opts *o)
{
	if (!o->url) {
		fprintf(stderr, "bench: this subcommand needs a URL (http://127.0.0.1:PORT/...)\n");
		exit(2);
	}
}

/* The body every measurement sends: the environment sample, default
 * profile (what the Flagsmith server's json.dumps(sort_keys=True) writes). */
static flaghook_buf render_sample(void)
{
	flaghook_buf b = FLAGHOOK_BUF_INIT;
	int rc = flaghook_render(&b, fh_sample_environment(), NULL);
	if (rc)
		die("flaghook_render", rc);
	return b;
}

/* ---- delivery counting (on_result runs on the engine's threads) ---- */

typedef struct counters {
	atomic_ullong delivered, failed;
	atomic_int first_error_logged;
} counters;

static void on_result(const flaghook_result *r, void *ud)
{
	counters *c = ud;
	if (r->outcome == FLAGHOOK_OUTCOME_DELIVERED) {
		atomic_fetch_add(&c->delivered, 1);
	} else {
		atomic_fetch_add(&c->failed, 1);
		if (!atomic_exchange(&c->first_error_logged, 1))
			fprintf(stderr, "bench: a delivery failed: outcome %d status %d errclass %s: %s\n",
			        (int)r->outcome, (int)r->status, flaghook_errclass_name(r->errclass), r->error);
	}
}

static flaghook_client *async_client(int threads, int inflight, size_t pending, counters *cnt)
{
	flaghook_client_options co = FLAGHOOK_CLIENT_OPTIONS_INIT;
	co.mode = FLAGHOOK_MODE_ASYNC;
	co.allow_private = 1; /* the receiver is on loopback (the SSRF guard refuses it by default) */
	co.threads = threads;
	co.max_in_flight = inflight;
	co.max_pending = pending;
	co.emit_wait_ms = 60000; /* back-pressure: emit waits instead of failing */
	co.on_result = on_result;
	co.user_data = cnt;
	co.shutdown_timeout_ms = 30000;
	flaghook_client *c = NULL;
	int rc = flaghook_client_new(&c, &co);
	if (rc)
		die("flaghook_client_new", rc);
	return c;
}

static uint64_t add_endpoint_id(flaghook_client *c, const char *url, uint64_t want)
{
	flaghook_endpoint_options eo = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	eo.id = want; /* 0: the library picks; a durable store needs a stable one */
	eo.scope = FLAGHOOK_SCOPE_ENVIRONMENT;
	eo.scope_id = 1; /* the sample's environment */
	eo.url = url;
	eo.secret = secret();
	eo.secret_len = strlen(eo.secret);
	uint64_t id = 0;
	int rc = flaghook_endpoint_add(c, &id, &eo);
	if (rc)
		die("flaghook_endpoint_add", rc);
	return id;
}

static uint64_t add_endpoint(flaghook_client *c, const char *url)
{
	return add_endpoint_id(c, url, 0);
}

/* ------------------------------------------------------------------ */
/* body, freeport, probe                                               */

static int cmd_body(const char *dir)
{
	flaghook_buf b = render_sample();
	char sig[FLAGHOOK_SIGNATURE_HEX_BYTES + 1];
	int rc = flaghook_sign(sig, sizeof(sig), secret(), strlen(secret()), b.ptr, b.size);
	if (rc)
		die("flaghook_sign", rc);
	char path[4096];
	snprintf(path, sizeof(path), "%s/body.json", dir);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(b.ptr, 1, b.size, f) != b.size || fclose(f)) {
		perror(path);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/signature", dir);
	f = fopen(path, "wb");
	if (!f || fputs(sig, f) < 0 || fclose(f)) {
		perror(path);
		return 1;
	}
	figure("body_bytes", (double)b.size, "bytes");
	flaghook_buf_free(&b);
	return 0;
}

/* Binds 127.0.0.1:0; with listen=0 the port stays bound and refuses
 * connections (an endpoint that is "down"). */
static int loopback_socket(int *port, int do_close)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(a);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) || getsockname(s, (struct sockaddr *)&a, &len)) {
		perror("bench: loopback socket");
		exit(1);
	}
	*port = ntohs(a.sin_port);
	if (do_close) {
		close(s);
		return -1;
	}
	return s;
}

static int cmd_freeport(void)
{
	int port;
	loopback_socket(&port, 1);
	printf("%d\n", port);
	return 0;
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p; (void)ud;
	return size * n;
}

static int cmd_probe(const char *url)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURL *h = curl_easy_init();
	flaghook_buf b = render_sample();
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, b.ptr);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b.size);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 2000L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	CURLcode cc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	flaghook_buf_free(&b);
	curl_global_cleanup();
	return cc == CURLE_OK && status >= 200 && status <= 299 ? 0 : 1;
}

/* ------------------------------------------------------------------ */
/* render_sign_vs_hmac                                                  */

/*
 * A: flaghook_render(sample) + flaghook_sign(body) + flaghook_buf_free —
 *    what it costs to produce one signed body from an event struct.
 * B: mbedtls_md_hmac(SHA-256, same key, the same rendered bytes) — the
 *    floor: signing alone, with nothing rendered.
 * Rounds alternate A and B so both see the same machine state; each side's
 * rate is its total count over its total time.
 */
static int cmd_render(const opts *o)
{
	const double total = o->seconds > 0 ? o->seconds : 2.0;
	const int rounds = 10;
	const double slice = total / 2 / rounds;
	const flaghook_event *ev = fh_sample_environment();
	const char *key = secret();
	size_t key_len = strlen(key);
	flaghook_buf body = render_sample();
	const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
	unsigned char mac[32];
	char sig[FLAGHOOK_SIGNATURE_HEX_BYTES + 1];
	volatile unsigned sink = 0;
	uint64_t na = 0, nb = 0;
	double ta = 0, tb = 0;

	for (int r = 0; r < rounds; r++) {
		/* A */
		double t0 = now_s(), t1 = t0;
		uint64_t n = 0;
		do {
			for (int k = 0; k < 64; k++) {
				flaghook_buf b = FLAGHOOK_BUF_INIT;
				int rc = flaghook_render(&b, ev, NULL);
				if (!rc)
					rc = flaghook_sign(sig, sizeof(sig), key, key_len, b.ptr, b.size);
				if (rc)
					die("render+sign", rc);
				sink += (unsigned char)sig[0];
				flaghook_buf_free(&b);
			}
			n += 64;
			t1 = now_s();
		} while (t1 - t0 < slice);
		na += n;
		ta += t1 - t0;
		/* B */
		t0 = now_s();
		n = 0;
		do {
			for (int k = 0; k < 64; k++) {
				if (mbedtls_md_hmac(md, (const unsigned char *)key, key_len,
				                    (const unsigned char *)body.ptr, body.size, mac))
					die("mbedtls_md_hmac", FLAGHOOK_ENOMEM);
				sink += mac[0];
			}
			n += 64;
			t1 = now_s();
		} while (t1 - t0 < slice);
		nb += n;
		tb += t1 - t0;
	}
	/* Render alone, for the analysis (not a goal). */
	double t0 = now_s(), t1;
	uint64_t nr = 0;
	do {
		for (int k = 0; k < 64; k++) {
			flaghook_buf b = FLAGHOOK_BUF_INIT;
			if (flaghook_render(&b, ev, NULL))
				die("render", -1);
			sink += (unsigned char)b.ptr[0];
			flaghook_buf_free(&b);
		}
		nr += 64;
		t1 = now_s();
	} while (t1 - t0 < slice * 2);
	(void)sink;

	double ra = (double)na / ta, rb = (double)nb / tb, rr = (double)nr / (t1 - t0);
	figure("body_bytes", (double)body.size, "bytes");
	figure("render_sign_per_s", ra, "events/s");
	figure("hmac_per_s", rb, "hmacs/s");
	figure("render_only_per_s", rr, "events/s");
	figure("render_us", 1e6 / rr, "us");
	figure("hmac_us", 1e6 / rb, "us");
	figure("render_sign_vs_hmac", ra / rb, "ratio");
	flaghook_buf_free(&body);
	return 0;
}

/* Profiling aids (not figures): one side alone, for perf/callgrind. */
static int cmd_loop(const opts *o, int what)
{
	double seconds = o->seconds > 0 ? o->seconds : 2.0;
	const flaghook_event *ev = fh_sample_environment();
	const char *key = secret();
	size_t key_len = strlen(key);
	flaghook_buf body = render_sample();
	const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
	unsigned char mac[32];
	char sig[FLAGHOOK_SIGNATURE_HEX_BYTES + 1];
	uint64_t n = 0;
	double t0 = now_s(), t1;
	do {
		for (int k = 0; k < 64; k++) {
			if (what == 0) {
				flaghook_buf b = FLAGHOOK_BUF_INIT;
				if (flaghook_render(&b, ev, NULL))
					die("render", -1);
				flaghook_buf_free(&b);
			} else if (what == 1) {
				mbedtls_md_hmac(md, (const unsigned char *)key, key_len,
				                (const unsigned char *)body.ptr, body.size, mac);
			} else {
				flaghook_sign(sig, sizeof(sig), key, key_len, body.ptr, body.size);
			}
		}
		n += 64;
		t1 = now_s();
	} while (t1 - t0 < seconds);
	fprintf(stderr, "bench: %llu calls, %.3f us each\n", (unsigned long long)n, (t1 - t0) * 1e6 / (double)n);
	flaghook_buf_free(&body);
	return 0;
}

/* ------------------------------------------------------------------ */
/* deliver: deliveries per second through the asynchronous engine      */

/*
 * One endpoint (the receiver), one emitting thread calling flaghook_emit
 * in a loop as fast as back-pressure lets it (max_pending --pending,
 * emit_wait_ms 60 s).  Each emit renders the event, makes its delivery and
 * queues it; the pool (--threads) signs and POSTs with at most --inflight
 * at once, i.e. over at most that many keep-alive connections.  The rate
 * is deliveries reported DELIVERED by on_result during the measured window,
 * after --warmup seconds.
 */
static int cmd_deliver(const opts *o)
{
	need_url(o);
	int threads = o->threads > 0 ? o->threads : 4;
	int inflight = o->inflight > 0 ? o->inflight : threads;
	size_t pending = o->pending ? o->pending : 1024;
	double warmup = o->warmup > 0 ? o->warmup : 0.5;
	double seconds = o->seconds > 0 ? o->seconds : 3.0;
	const char *tag = o->tag ? o->tag : "deliver";
	counters cnt = { 0 };
	flaghook_client *c = async_client(threads, inflight, pending, &cnt);
	add_endpoint(c, o->url);
	const flaghook_event *ev = fh_sample_environment();

	double start = now_s(), t0 = 0, c0 = 0, t1;
	uint64_t d0 = 0, emitted = 0;
	for (;;) {
		int rc = flaghook_emit(c, ev);
		if (rc)
			die("flaghook_emit", rc);
		emitted++;
		double t = now_s();
		if (!t0 && t - start >= warmup) {
			t0 = t;
			c0 = cpu_s();
			d0 = atomic_load(&cnt.delivered);
		}
		if (t0 && t - t0 >= seconds)
			break;
	}
	t1 = now_s();
	uint64_t d1 = atomic_load(&cnt.delivered);
	double c1 = cpu_s();
	int rc = flaghook_flush(c, 30000);
	if (rc)
		die("flaghook_flush", rc);
	flaghook_client_free(c);
	uint64_t failed = atomic_load(&cnt.failed);
	double rate = (double)(d1 - d0) / (t1 - t0);
	char name[128];
	fprintf(stderr, "bench: %s: threads %d, max_in_flight %d, max_pending %zu: %llu emitted, "
	        "%llu failed\n", tag, threads, inflight, pending, (unsigned long long)emitted,
	        (unsigned long long)failed);
	snprintf(name, sizeof(name), "%s_per_s", tag);
	figure(name, rate, "deliveries/s");
	snprintf(name, sizeof(name), "%s_cpu_us_per_delivery", tag);
	figure(name, (c1 - c0) * 1e6 / (double)(d1 - d0), "us");
	if (failed) {
		snprintf(name, sizeof(name), "%s_failed", tag);
		figure(name, (double)failed, "deliveries");
	}
	return failed ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* transport ceilings: libcurl alone, no libflaghook                    */

/*
 * What libcurl itself can do on this machine with the same request (the
 * rendered body, the same headers, the signature computed once):
 *   curl-easy:  --threads N threads, each its own easy handle and
 *               connection, blocking curl_easy_perform in a loop (the
 *               old, thread-per-request transport's shape; a reference);
 *   curl-multi: one thread, one multi handle driving --threads easy
 *               handles at once (the default transport's shape, minus the
 *               library): the baseline of deliver_vs_curl_multi and
 *               deliver_cpu_us_vs_curl_multi.  A best-effort loop:
 *               curl_multi_perform, then every finished handle removed and
 *               added again at once (the same handle, its options kept,
 *               the next request on the same keep-alive connection from
 *               the multi's connection cache), then curl_multi_poll,
 *               which returns as soon as a socket is ready or libcurl's
 *               own timeout is due.  --threads transfers are in flight
 *               all the time, over --threads connections.
 * The request is the library's: the same body, the same header lines
 * (Content-Type, User-Agent, X-Flaghook-Event-Id, X-Flagsmith-Signature,
 * no Expect), TCP_NODELAY.  Only the signature is computed once.
 * --tag NAME names the figures NAME_per_s and NAME_cpu_us_per_request.
 */
typedef struct curl_job {
	const char *url;
	const flaghook_buf *body;
	struct curl_slist *headers;
	double seconds, warmup;
	uint64_t done, failed, all;
	double t_measured;
} curl_job;

static CURL *bench_handle(const curl_job *j)
{
	CURL *h = curl_easy_init();
	curl_easy_setopt(h, CURLOPT_URL, j->url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, j->headers);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, j->body->ptr);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->body->size);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
	return h;
}

static int status_ok(CURL *h, CURLcode cc)
{
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	return cc == CURLE_OK && status >= 200 && status <= 299;
}

static void *curl_easy_thread(void *arg)
{
	curl_job *j = arg;
	CURL *h = bench_handle(j);
	double start = now_s(), t0 = 0, t;
	uint64_t n0 = 0;
	for (;;) {
		CURLcode cc = curl_easy_perform(h);
		if (status_ok(h, cc))
			j->done++;
		else
			j->failed++;
		t = now_s();
		if (!t0 && t - start >= j->warmup) {
			t0 = t;
			n0 = j->done;
		}
		if (t0 && t - t0 >= j->seconds)
			break;
	}
	j->all = j->done;
	j->done -= n0;
	j->t_measured = t - t0;
	curl_easy_cleanup(h);
	return NULL;
}

/* A fixed event id for the baselines (wrk's post.lua sends the same). */
#define BENCH_EVENT_ID "00000000-0000-4000-8000-000000000000"

static struct curl_slist *bench_headers(const flaghook_buf *body)
{
	char sig[FLAGHOOK_SIGNATURE_HEX_BYTES + 1], line[128];
	if (flaghook_sign(sig, sizeof(sig), secret(), strlen(secret()), body->ptr, body->size))
		die("flaghook_sign", -1);
	snprintf(line, sizeof(line), "X-Flagsmith-Signature: %s", sig);
	struct curl_slist *h = curl_slist_append(NULL, "Expect:");
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "User-Agent: libflaghook/" FLAGHOOK_VERSION);
	/* The library sends the event's id (a UUID, 36 characters) too. */
	h = curl_slist_append(h, "X-Flaghook-Event-Id: " BENCH_EVENT_ID);
	return curl_slist_append(h, line);
}

static int cmd_curl(const opts *o, int multi)
{
	need_url(o);
	int n = o->threads > 0 ? o->threads : 4;
	double seconds = o->seconds > 0 ? o->seconds : 3.0;
	double warmup = o->warmup > 0 ? o->warmup : 0.5;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	flaghook_buf body = render_sample();
	struct curl_slist *headers = bench_headers(&body);
	uint64_t done = 0, failed = 0, all = 0;
	double secs = 0, c0 = cpu_s(), wc0 = -1, wc1 = -1;
	if (!multi) {
		curl_job *jobs = calloc((size_t)n, sizeof(*jobs));
		pthread_t *tids = calloc((size_t)n, sizeof(*tids));
		for (int i = 0; i < n; i++) {
			jobs[i] = (curl_job){ o->url, &body, headers, seconds, warmup, 0, 0, 0, 0 };
			pthread_create(&tids[i], NULL, curl_easy_thread, &jobs[i]);
		}
		for (int i = 0; i < n; i++) {
			pthread_join(tids[i], NULL);
			done += jobs[i].done;
			all += jobs[i].all;
			failed += jobs[i].failed;
			secs += jobs[i].t_measured / n;
		}
		free(jobs);
		free(tids);
	} else {
		curl_job j = { o->url, &body, headers, seconds, warmup, 0, 0, 0, 0 };
		CURLM *m = curl_multi_init();
		CURL **hs = calloc((size_t)n, sizeof(*hs));
		for (int i = 0; i < n; i++) {
			hs[i] = bench_handle(&j);
			curl_multi_add_handle(m, hs[i]);
		}
		double start = now_s(), t0 = 0, t = start;
		uint64_t n0 = 0;
		int running = 1;
		wc0 = -1;
		while (!(t0 && t - t0 >= seconds)) {
			curl_multi_perform(m, &running);
			CURLMsg *msg;
			int left;
			while ((msg = curl_multi_info_read(m, &left))) {
				if (msg->msg != CURLMSG_DONE)
					continue;
				CURL *h = msg->easy_handle;
				CURLcode cc = msg->data.result;
				if (status_ok(h, cc))
					done++;
				else
					failed++;
				curl_multi_remove_handle(m, h);
				curl_multi_add_handle(m, h); /* the next request, same connection */
			}
			curl_multi_poll(m, NULL, 0, 100, NULL);
			t = now_s();
			if (!t0 && t - start >= warmup) {
				t0 = t;
				n0 = done;
				wc0 = cpu_s();
			}
		}
		wc1 = cpu_s();
		all = done;
		done -= n0;
		secs = t - t0;
		for (int i = 0; i < n; i++) {
			curl_multi_remove_handle(m, hs[i]);
			curl_easy_cleanup(hs[i]);
		}
		free(hs);
		curl_multi_cleanup(m);
	}
	double c1 = cpu_s();
	char name[160], prefix[96];
	const char *kind = multi ? "curl_multi" : "curl_easy";
	if (o->tag)
		snprintf(prefix, sizeof(prefix), "%s", o->tag);
	else
		snprintf(prefix, sizeof(prefix), "%s_c%d", kind, n);
	snprintf(name, sizeof(name), "%s_per_s", prefix);
	figure(name, (double)done / secs, "requests/s");
	snprintf(name, sizeof(name), "%s_cpu_us_per_request", prefix);
	/* curl-easy: CPU of the whole run (warm-up included) over all its
	 * requests; curl-multi: CPU of the measured window over its requests,
	 * as `deliver` measures it (deliver_cpu_us_vs_curl_multi). */
	if (multi && wc0 >= 0)
		figure(name, (wc1 - wc0) * 1e6 / (double)done, "us");
	else
		figure(name, (c1 - c0) * 1e6 / (double)all, "us");
	if (failed) {
		fprintf(stderr, "bench: %s: %llu requests failed\n", kind, (unsigned long long)failed);
		return 1;
	}
	curl_slist_free_all(headers);
	flaghook_buf_free(&body);
	curl_global_cleanup();
	return 0;
}

/* ------------------------------------------------------------------ */
/* rtt: many endpoints behind a slow receiver, the default client       */

/* Raises RLIMIT_NOFILE's soft limit to the hard one: a thousand
 * connections need more descriptors than the usual 1024. */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/*
 * The receiver answers every request after 100 ms (nginx's echo_sleep),
 * so a delivery holds a connection for 100 ms and the rate is bound by how
 * many transfers the client keeps in flight: what one I/O thread driving a
 * libcurl multi handle is for.  --endpoints N (1000) endpoints, URL/0 ..
 * URL/N-1 (distinct URLs on one receiver), on one client with every
 * default but mode ASYNC and allow_private: the built-in pool of 4,
 * max_transfers 1000, max_in_flight 16 per endpoint, max_pending 100000,
 * emit_wait_ms 0.  One emit fans out to all N endpoints.  The emitting
 * thread keeps the backlog (client stats `pending`) near 2 x max_transfers
 * (an emit whenever it is below that), so max_transfers are always ready
 * to go and emit never meets a full queue.  The rate is the deliveries
 * on_result reports DELIVERED during --seconds after --warmup; the
 * transfers in flight (client stats `transfers`) are sampled every
 * millisecond, and their mean in the window is printed too.
 */
static int cmd_rtt(const opts *o)
{
	need_url(o);
	raise_nofile();
	int n = o->endpoints > 0 ? o->endpoints : 1000;
	double warmup = o->warmup > 0 ? o->warmup : 1.0;
	double seconds = o->seconds > 0 ? o->seconds : 3.0;
	const char *tag = o->tag ? o->tag : "rtt";
	counters cnt = { 0 };
	flaghook_client_options co = FLAGHOOK_CLIENT_OPTIONS_INIT;
	co.mode = FLAGHOOK_MODE_ASYNC;
	co.allow_private = 1; /* loopback; every other option at its default */
	co.on_result = on_result;
	co.user_data = &cnt;
	flaghook_client *c = NULL;
	int rc = flaghook_client_new(&c, &co);
	if (rc)
		die("flaghook_client_new", rc);
	char url[512];
	for (int i = 0; i < n; i++) {
		snprintf(url, sizeof(url), "%s/%d", o->url, i);
		add_endpoint(c, url);
	}
	const flaghook_event *ev = fh_sample_environment();
	const uint64_t target = 2000; /* 2 x the default max_transfers */
	double start = now_s(), t0 = 0, c0 = 0, t = start;
	uint64_t d0 = 0, emitted = 0, samples = 0, in_flight_sum = 0, in_flight_max = 0;
	for (;;) {
		flaghook_client_stats st = FLAGHOOK_CLIENT_STATS_INIT;
		if ((rc = flaghook_client_stats_get(c, &st)))
			die("flaghook_client_stats_get", rc);
		if (st.pending < target) {
			if ((rc = flaghook_emit(c, ev)))
				die("flaghook_emit", rc);
			emitted++;
		} else {
			sleep_s(0.001);
			if (t0) {
				samples++;
				in_flight_sum += st.transfers;
				if (st.transfers > in_flight_max)
					in_flight_max = st.transfers;
			}
		}
		t = now_s();
		if (!t0 && t - start >= warmup) {
			t0 = t;
			c0 = cpu_s();
			d0 = atomic_load(&cnt.delivered);
		}
		if (t0 && t - t0 >= seconds)
			break;
	}
	uint64_t d1 = atomic_load(&cnt.delivered);
	double c1 = cpu_s();
	if ((rc = flaghook_flush(c, 60000)))
		die("flaghook_flush", rc);
	flaghook_client_free(c);
	uint64_t failed = atomic_load(&cnt.failed);
	fprintf(stderr, "bench: %s: %d endpoints, default client: %llu events emitted (%llu deliveries), "
	        "%llu failed; transfers in flight: mean %.0f, max %llu\n", tag, n, (unsigned long long)emitted,
	        (unsigned long long)(emitted * (uint64_t)n), (unsigned long long)failed,
	        samples ? (double)in_flight_sum / (double)samples : 0.0, (unsigned long long)in_flight_max);
	char name[128];
	snprintf(name, sizeof(name), "%s_per_s", tag);
	figure(name, (double)(d1 - d0) / (t - t0), "deliveries/s");
	snprintf(name, sizeof(name), "%s_cpu_us_per_delivery", tag);
	figure(name, (c1 - c0) * 1e6 / (double)(d1 - d0), "us");
	snprintf(name, sizeof(name), "%s_transfers_mean", tag);
	figure(name, samples ? (double)in_flight_sum / (double)samples : 0.0, "transfers");
	if (failed) {
		snprintf(name, sizeof(name), "%s_failed", tag);
		figure(name, (double)failed, "deliveries");
	}
	return failed ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* syncslow: one SYNC emit to 10 endpoints of a slow receiver           */

/*
 * A client with every default (SYNC mode: no thread of its own) but
 * allow_private, and --endpoints N (10) endpoints URL/0 .. URL/N-1 on the
 * receiver that answers after 100 ms.  SYNC mode starts every endpoint's
 * attempt at once, so one emit should take one round trip (100 ms), not
 * N.  The first emit opens the connections (printed apart, _first_ms);
 * then --count (21) emits, each timed alone; the median and the worst.
 */
static int cmp_double(const void *a, const void *b);

static int cmd_syncslow(const opts *o)
{
	need_url(o);
	int n = o->endpoints > 0 ? o->endpoints : 10;
	int k = o->count > 0 ? o->count : 21;
	const char *tag = o->tag ? o->tag : "sync_emit";
	counters cnt = { 0 };
	flaghook_client_options co = FLAGHOOK_CLIENT_OPTIONS_INIT;
	co.allow_private = 1; /* loopback; SYNC and the rest: defaults */
	co.on_result = on_result;
	co.user_data = &cnt;
	flaghook_client *c = NULL;
	int rc = flaghook_client_new(&c, &co);
	if (rc)
		die("flaghook_client_new", rc);
	char url[512];
	for (int i = 0; i < n; i++) {
		snprintf(url, sizeof(url), "%s/%d", o->url, i);
		add_endpoint(c, url);
	}
	const flaghook_event *ev = fh_sample_environment();
	double first = now_s();
	if ((rc = flaghook_emit(c, ev)))
		die("flaghook_emit (first)", rc);
	first = (now_s() - first) * 1e3;
	double *ms = calloc((size_t)k, sizeof(double));
	for (int i = 0; i < k; i++) {
		double t0 = now_s();
		if ((rc = flaghook_emit(c, ev)))
			die("flaghook_emit", rc);
		ms[i] = (now_s() - t0) * 1e3;
	}
	flaghook_client_free(c);
	qsort(ms, (size_t)k, sizeof(double), cmp_double);
	uint64_t delivered = atomic_load(&cnt.delivered), failed = atomic_load(&cnt.failed);
	fprintf(stderr, "bench: %s: %d endpoints, %d emits (+1 first): %llu delivered, %llu failed; "
	        "min %.1f ms, median %.1f ms, max %.1f ms\n", tag, n, k, (unsigned long long)delivered,
	        (unsigned long long)failed, ms[0], ms[k / 2], ms[k - 1]);
	char name[128];
	snprintf(name, sizeof(name), "%s_%d_slow_ms", tag, n);
	figure(name, ms[k / 2], "ms");
	snprintf(name, sizeof(name), "%s_%d_slow_max_ms", tag, n);
	figure(name, ms[k - 1], "ms");
	snprintf(name, sizeof(name), "%s_%d_slow_first_ms", tag, n);
	figure(name, first, "ms");
	free(ms);
	return failed ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* threads: how many threads the library starts                        */

static int task_count(void)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Threads in the process after `c` was made, and after one emit (and a
 * flush) to URL, minus those before it. */
static void threads_of(const char *url, int mode, const char *tag)
{
	counters cnt = { 0 };
	flaghook_client_options co = FLAGHOOK_CLIENT_OPTIONS_INIT;
	co.mode = mode;
	co.allow_private = 1; /* loopback; every other option at its default */
	co.on_result = on_result;
	co.user_data = &cnt;
	int before = task_count();
	flaghook_client *c = NULL;
	int rc = flaghook_client_new(&c, &co);
	if (rc)
		die("flaghook_client_new", rc);
	int made = task_count();
	add_endpoint(c, url);
	if ((rc = flaghook_emit(c, fh_sample_environment())))
		die("flaghook_emit", rc);
	if ((rc = flaghook_flush(c, 10000)))
		die("flaghook_flush", rc);
	int used = task_count();
	flaghook_client_free(c);
	int after = task_count();
	char name[96];
	snprintf(name, sizeof(name), "lib_threads_%s", tag);
	figure(name, made - before, "threads");
	snprintf(name, sizeof(name), "lib_threads_%s_after_emit", tag);
	figure(name, used - before, "threads");
	fprintf(stderr, "bench: threads, %s: %d before flaghook_client_new, %d after it, %d after an emit, "
	        "%d after flaghook_client_free\n", tag, before, made, used, after);
}

static int cmd_threads(const opts *o)
{
	need_url(o);
	/* libcurl's global state first (flaghook_client_new would take it):
	 * nothing of it should count as the client's. */
	if (flaghook_global_init())
		die("flaghook_global_init", -1);
	threads_of(o->url, FLAGHOOK_MODE_SYNC, "sync");
	threads_of(o->url, FLAGHOOK_MODE_ASYNC, "async");
	flaghook_global_cleanup();
	return 0;
}

/* ------------------------------------------------------------------ */
/* emit latency                                                         */

typedef struct emitter {
	flaghook_client *c;
	double rate;            /* emits per second, this thread */
	double seconds;
	int64_t *samples;       /* ns inside flaghook_emit */
	size_t n, cap;
	int rc;
} emitter;

static void *emit_thread(void *arg)
{
	emitter *e = arg;
	const flaghook_event *ev = fh_sample_environment();
	int64_t interval = (int64_t)(1e9 / e->rate);
	int64_t start = now_ns();
	for (size_t i = 0; i < e->cap; i++) {
		/* Open loop: each emit has a start time on a fixed schedule; a late
		 * thread does not sleep (it catches up), so no slow call hides the
		 * calls that would have queued behind it. */
		int64_t due = start + (int64_t)i * interval;
		struct timespec ts = { (time_t)(due / 1000000000LL), (long)(due % 1000000000LL) };
		if (now_ns() < due)
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		int64_t a = now_ns();
		int rc = flaghook_emit(e->c, ev);
		int64_t b = now_ns();
		if (rc) {
			e->rc = rc;
			break;
		}
		e->samples[e->n++] = b - a;
	}
	return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmd_emitlat(const opts *o)
{
	need_url(o);
	int threads = o->threads > 0 ? o->threads : 4;
	int inflight = o->inflight > 0 ? o->inflight : threads;
	size_t pending = o->pending ? o->pending : 1024;
	int ne = o->emitters > 0 ? o->emitters : 4;
	double rate = o->rate > 0 ? o->rate : 1000;
	double seconds = o->seconds > 0 ? o->seconds : 3.0;
	counters cnt = { 0 };
	flaghook_client *c = async_client(threads, inflight, pending, &cnt);
	add_endpoint(c, o->url);
	/* Warm the connections and the allocator first. */
	for (int i = 0; i < 64; i++)
		if (flaghook_emit(c, fh_sample_environment()))
			die("flaghook_emit", -1);
	flaghook_flush(c, 10000);

	emitter *es = calloc((size_t)ne, sizeof(*es));
	pthread_t *tids = calloc((size_t)ne, sizeof(*tids));
	for (int i = 0; i < ne; i++) {
		es[i].c = c;
		es[i].rate = rate;
		es[i].seconds = seconds;
		es[i].cap = (size_t)(rate * seconds);
		es[i].samples = calloc(es[i].cap ? es[i].cap : 1, sizeof(int64_t));
		pthread_create(&tids[i], NULL, emit_thread, &es[i]);
	}
	size_t total = 0;
	for (int i = 0; i < ne; i++) {
		pthread_join(tids[i], NULL);
		if (es[i].rc)
			die("flaghook_emit (emitter thread)", es[i].rc);
		total += es[i].n;
	}
	int rc = flaghook_flush(c, 30000);
	if (rc)
		die("flaghook_flush", rc);
	flaghook_client_free(c);
	int64_t *all = malloc(total * sizeof(int64_t));
	size_t k = 0;
	for (int i = 0; i < ne; i++) {
		memcpy(all + k, es[i].samples, es[i].n * sizeof(int64_t));
		k += es[i].n;
		free(es[i].samples);
	}
	qsort(all, total, sizeof(int64_t), cmp_i64);
	fprintf(stderr, "bench: emitlat: %d emitters x %.0f/s for %.1f s, threads %d, max_in_flight %d: "
	        "%zu emits, %llu delivered, %llu failed\n", ne, rate, seconds, threads, inflight, total,
	        (unsigned long long)atomic_load(&cnt.delivered), (unsigned long long)atomic_load(&cnt.failed));
	figure("emit_rate_per_s", rate * ne, "events/s");
	figure("emit_p50_us", (double)all[total / 2] / 1e3, "us");
	figure("emit_p99_us", (double)all[(size_t)((double)total * 0.99)] / 1e3, "us");
	figure("emit_max_us", (double)all[total - 1] / 1e3, "us");
	free(all);
	free(es);
	free(tids);
	return atomic_load(&cnt.failed) ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* rss per queued delivery                                              */

static long rss_bytes(void)
{
	long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f || fscanf(f, "%ld %ld", &size, &resident) != 2) {
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	return resident * sysconf(_SC_PAGESIZE);
}

static long heap_bytes(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
	struct mallinfo2 mi = mallinfo2();
	return (long)(mi.uordblks + mi.hblkhd);
#else
	return -1;
#endif
}

/*
 * The endpoint is a loopback port that is bound but not listening, so every
 * connect is refused at once.  The breaker opens on the first failure
 * (threshold 1) and stays open for an hour, so everything emitted after it
 * waits in the endpoint's ready list; the one delivery that failed waits
 * an hour for its retry.  RSS (and malloc's in-use bytes, which do not
 * depend on page granularity) are read before and after --queued emits.
 */
static int cmd_rss(const opts *o)
{
	size_t queued = o->queued ? o->queued : 100000;
	int port;
	int hold = loopback_socket(&port, 0);
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/down", port);

	static const int64_t schedule[] = { 3600000 };
	flaghook_retry_policy rp = FLAGHOOK_RETRY_POLICY_INIT;
	rp.kind = FLAGHOOK_RETRY_FLAGSMITH;
	rp.schedule_ms = schedule;
	rp.schedule_count = 1;
	rp.max_attempts = 3;
	rp.jitter_percent = -1;

	flaghook_client_options co = FLAGHOOK_CLIENT_OPTIONS_INIT;
	co.mode = FLAGHOOK_MODE_ASYNC;
	co.allow_private = 1; /* a loopback port */
	co.threads = 2;
	co.max_pending = queued * 2 + 16; /* room for every one of them */
	co.emit_wait_ms = 0;
	co.retry = &rp;
	co.breaker_threshold = 1;
	co.breaker_cooldown_ms = 3600000;
	co.shutdown_timeout_ms = 1; /* abandon them at the end */
	co.connect_timeout_ms = 1000;
	co.on_result = NULL;        /* nothing to count: all are abandoned */
	flaghook_client *c = NULL;
	int rc = flaghook_client_new(&c, &co);
	if (rc)
		die("flaghook_client_new", rc);
	uint64_t id = add_endpoint(c, url);
	const flaghook_event *ev = fh_sample_environment();

	/* The first delivery fails and opens the breaker. */
	if ((rc = flaghook_emit(c, ev)))
		die("flaghook_emit", rc);
	flaghook_endpoint_stats st = FLAGHOOK_ENDPOINT_STATS_INIT;
	double deadline = now_s() + 10;
	for (;;) {
		if ((rc = flaghook_endpoint_stats_get(c, id, &st)))
			die("flaghook_endpoint_stats_get", rc);
		if (st.breaker_open && st.in_flight == 0)
			break;
		if (now_s() > deadline) {
			fprintf(stderr, "bench: rss: the breaker did not open\n");
			return 1;
		}
		sleep_s(0.005);
	}
	/* A few more so the allocator's arenas and the outbox have their shape. */
	for (int i = 0; i < 1000; i++)
		if ((rc = flaghook_emit(c, ev)))
			die("flaghook_emit", rc);

	flaghook_buf body = render_sample();
	long rss0 = rss_bytes(), heap0 = heap_bytes();
	double t0 = now_s();
	for (size_t i = 0; i < queued; i++)
		if ((rc = flaghook_emit(c, ev)))
			die("flaghook_emit (queueing)", rc);
	double t1 = now_s();
	long rss1 = rss_bytes(), heap1 = heap_bytes();
	if ((rc = flaghook_endpoint_stats_get(c, id, &st)))
		die("flaghook_endpoint_stats_get", rc);
	fprintf(stderr, "bench: rss: endpoint queued %llu, in flight %llu, breaker open %d\n",
	        (unsigned long long)st.queued, (unsigned long long)st.in_flight, (int)st.breaker_open);
	if (st.queued < queued) {
		fprintf(stderr, "bench: rss: only %llu of %zu are queued\n", (unsigned long long)st.queued, queued);
		return 1;
	}
	double per = (double)(rss1 - rss0) / (double)queued;
	figure("queued_deliveries", (double)queued, "deliveries");
	figure("body_bytes", (double)body.size, "bytes");
	figure("rss_per_queued_delivery_bytes", per, "bytes");
	if (heap0 >= 0)
		figure("heap_per_queued_delivery_bytes", (double)(heap1 - heap0) / (double)queued, "bytes");
	figure("rss_per_queued_delivery_vs_body", per / (double)body.size, "ratio");
	figure("queue_emit_us", (t1 - t0) * 1e6 / (double)queued, "us");
	double f0 = now_s();
	flaghook_client_free(c); /* abandons them all */
	figure("free_100k_queued_ms", (now_s() - f0) * 1e3, "ms");
	close(hold);
	flaghook_buf_free(&body);
	return 0;
}

/* ------------------------------------------------------------------ */
/* fan-out                                                              */

/*
 * For each N in --counts: a fresh client with N endpoints (all the
 * environment of the sample, each its own path on the receiver), the same
 * pool (--threads) and per-endpoint max_in_flight (--inflight), and the
 * same total number of deliveries (--deliveries): D/N events, emitted as
 * fast as back-pressure allows, then flush.  Time per delivery is the wall
 * time from the first emit to the flush returning, over D.  Flat means the
 * per-delivery cost does not grow with N.
 */
/* One fan-out run: N endpoints, `total` deliveries; wall and CPU time per
 * delivery.  Returns non-zero when a delivery failed. */
static int fanout_once(const opts *o, size_t n, size_t total, int threads, int inflight, size_t pending,
                       double *wall_us, double *cpu_us)
{
	const flaghook_event *ev = fh_sample_environment();
	size_t events = total / n ? total / n : 1;
	size_t pend = pending > 2 * n ? pending : 2 * n;
	counters cnt = { 0 };
	flaghook_client *c = async_client(threads, inflight, pend, &cnt);
	char url[512];
	for (size_t i = 0; i < n; i++) {
		snprintf(url, sizeof(url), "%s/%zu", o->url, i);
		add_endpoint(c, url);
	}
	/* Warm-up: connections open, allocator shaped. */
	size_t warm = 256 / n ? 256 / n : 1;
	for (size_t i = 0; i < warm; i++)
		if (flaghook_emit(c, ev))
			die("flaghook_emit", -1);
	flaghook_flush(c, 30000);
	uint64_t base = atomic_load(&cnt.delivered);
	double t0 = now_s(), c0 = cpu_s();
	for (size_t i = 0; i < events; i++) {
		int rc = flaghook_emit(c, ev);
		if (rc)
			die("flaghook_emit", rc);
	}
	int rc = flaghook_flush(c, 60000);
	double t1 = now_s(), c1 = cpu_s();
	if (rc)
		die("flaghook_flush", rc);
	uint64_t got = atomic_load(&cnt.delivered) - base;
	uint64_t failed = atomic_load(&cnt.failed);
	flaghook_client_free(c);
	*wall_us = (t1 - t0) * 1e6 / (double)(events * n);
	*cpu_us = (c1 - c0) * 1e6 / (double)(events * n);
	fprintf(stderr, "bench: fanout %zu: %zu events x %zu endpoints, %llu delivered, %llu failed, "
	        "%.2f s, %.1f us/delivery, cpu %.1f us/delivery\n", n, events, n, (unsigned long long)got,
	        (unsigned long long)failed, t1 - t0, *wall_us, *cpu_us);
	return failed != 0;
}

/*
 * For each N in --counts: a fresh client with N endpoints (all the
 * environment of the sample, each its own path on the receiver), the same
 * pool (--threads) and per-endpoint max_in_flight (--inflight), and the
 * same total number of deliveries (--deliveries): D/N events, emitted as
 * fast as back-pressure allows, then flush.  Time per delivery is the wall
 * time from the first emit to the flush returning, over D.  Flat means the
 * per-delivery cost does not grow with N.  The counts run in rounds
 * (--rounds, default 3), forwards then backwards (1 10 100 1000, 1000 100
 * 10 1, 1 10 ...), and each N reports its median round, so a change in the
 * machine's load during the sweep does not fall on one end of it.
 */
static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int cmd_fanout(const opts *o)
{
	need_url(o);
	int threads = o->threads > 0 ? o->threads : 4;
	int inflight = o->inflight > 0 ? o->inflight : threads;
	size_t total = o->deliveries ? o->deliveries : 10000;
	size_t pending = o->pending ? o->pending : 4096;
	int rounds = o->rounds > 0 ? (o->rounds > 9 ? 9 : o->rounds) : 3;
	const char *counts = o->counts ? o->counts : "1,10,100,1000";
	size_t ns[16];
	int k = 0;
	for (const char *p = counts; *p && k < 16;) {
		size_t n = (size_t)strtoull(p, (char **)&p, 10);
		if (*p)
			p++;
		if (n)
			ns[k++] = n;
	}
	double wall_r[16][9], cpu_r[16][9], wall[16], cpu[16];
	int bad = 0;
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < k; i++) {
			int x = r % 2 ? k - 1 - i : i;
			bad |= fanout_once(o, ns[x], total, threads, inflight, pending, &wall_r[x][r], &cpu_r[x][r]);
		}
	}
	for (int i = 0; i < k; i++) {
		qsort(wall_r[i], (size_t)rounds, sizeof(double), cmp_double);
		qsort(cpu_r[i], (size_t)rounds, sizeof(double), cmp_double);
		wall[i] = wall_r[i][rounds / 2];
		cpu[i] = cpu_r[i][rounds / 2];
	}
	char name[64];
	for (int i = 0; i < k; i++) {
		snprintf(name, sizeof(name), "fanout_%zu_us_per_delivery", ns[i]);
		figure(name, wall[i], "us");
		snprintf(name, sizeof(name), "fanout_%zu_cpu_us_per_delivery", ns[i]);
		figure(name, cpu[i], "us");
		if (i) {
			snprintf(name, sizeof(name), "fanout_%zu_vs_%zu", ns[i], ns[0]);
			figure(name, wall[i] / wall[0], "ratio");
		}
	}
	return bad;
}

/* ------------------------------------------------------------------ */
/* emit rate per store: memory, SQLite, PostgreSQL                      */

/*
 * --emitters threads call flaghook_emit(sample) back to back on one ASYNC
 * client with one endpoint (the receiver), each as fast as emit returns.
 * emit_wait_ms is 0 and max_pending (--pending) is large, so emit never
 * waits for room: a full queue ends the run with an error instead of
 * slowing the figure down (and the window ends early when the emits come
 * near max_pending).  With a durable store emit returns once the
 * delivery's row is durable (the store's put has committed), so the time
 * an emit takes includes the commit and its fsync.  The rate is the emits
 * that returned during the measured window (--seconds, after --warmup)
 * over its length; opening the store, starting the client and what
 * happens after the window are outside it.  Deliveries run meanwhile, to
 * the receiver, on the pool (--threads, --inflight); with a durable store
 * each one also records its result (a write through the same commits).
 *
 * --store memory: the built-in store (storage NULL).
 * --store sqlite: flaghook_sqlite_open(--db FILE) with every option at its
 *   default (synchronous FULL: an fsync per group commit).  FILE and its
 *   -wal and -shm are removed first: every run starts with an empty
 *   outbox.  Prints the store's commits during the window
 *   (flaghook__sqlite_commits, a hook of the static archive) against the
 *   puts (one per emit: one endpoint) and the records.
 * --store pg: flaghook_pg_open(conninfo in FLAGHOOK_BENCH_PG), a schema of
 *   its own (bench_<tag>, dropped first), every other option at its
 *   default (4 connections).  The run happens in a child process; the
 *   parent reads the server's WAL fsyncs (pg_stat_wal.wal_sync) before it
 *   and after the child's connections are gone (a backend reports its
 *   counts when it exits), and prints them against the child's writes
 *   (puts and records) over the whole run.
 *
 * After the window the emitters stop.  The memory store's backlog, which
 * outgrows delivery, is abandoned by flaghook_client_free.  A durable
 * store's process ends with _exit instead: shutdown would release every
 * pending delivery with a commit of its own (one fsync each, seconds for a
 * few thousand), and the file or schema is thrown away anyway.
 */
typedef struct rate_counter {
	atomic_ullong n;
	char pad[64 - sizeof(atomic_ullong)];
} rate_counter;

typedef struct rate_emitter {
	flaghook_client *c;
	atomic_int *stop;
	rate_counter *count;
	int rc;
	char error[256];
} rate_emitter;

typedef struct rate_counters {
	atomic_ullong delivered, failed, left;
	atomic_int stopping, first_error_logged;
} rate_counters;

static void rate_on_result(const flaghook_result *r, void *ud)
{
	rate_counters *c = ud;
	if (r->outcome == FLAGHOOK_OUTCOME_DELIVERED) {
		atomic_fetch_add(&c->delivered, 1);
	} else if (atomic_load(&c->stopping) && r->outcome == FLAGHOOK_OUTCOME_ABANDONED) {
		atomic_fetch_add(&c->left, 1); /* the backlog, left at the end on purpose */
	} else {
		atomic_fetch_add(&c->failed, 1);
		if (!atomic_exchange(&c->first_error_logged, 1))
			fprintf(stderr, "bench: a delivery failed: outcome %d status %d errclass %s: %s\n",
			        (int)r->outcome, (int)r->status, flaghook_errclass_name(r->errclass), r->error);
	}
}

static void *rate_thread(void *arg)
{
	rate_emitter *e = arg;
	const flaghook_event *ev = fh_sample_environment();
	while (!atomic_load_explicit(e->stop, memory_order_relaxed)) {
		int rc = flaghook_emit(e->c, ev);
		if (rc) {
			e->rc = rc;
			snprintf(e->error, sizeof(e->error), "%s", flaghook_last_error());
			break;
		}
		atomic_fetch_add_explicit(&e->count->n, 1, memory_order_relaxed);
	}
	return NULL;
}

static uint64_t rate_sum(rate_counter *cs, int n)
{
	uint64_t s = 0;
	for (int i = 0; i < n; i++)
		s += atomic_load_explicit(&cs[i].n, memory_order_relaxed);
	return s;
}

/* One measured run (see above); `kind` is "memory", "sqlite" or "pg".  A
 * durable store's run does not return: it ends the process. */
static int emitrate_run(const opts *o, const char *kind, const char *schema)
{
	int is_sqlite = !strcmp(kind, "sqlite"), is_pg = !strcmp(kind, "pg");
	int durable = is_sqlite || is_pg;
	int ne = o->emitters > 0 ? o->emitters : 8;
	int threads = o->threads > 0 ? o->threads : 4;
	int inflight = o->inflight > 0 ? o->inflight : threads;
	size_t pending = o->pending ? o->pending : 1000000;
	double warmup = o->warmup > 0 ? o->warmup : 0.5;
	double seconds = o->seconds > 0 ? o->seconds : 2.0;
	const char *tag = o->tag ? o->tag : "emitrate";
	char name[192];
	int rc;

	flaghook_storage st = FLAGHOOK_STORAGE_INIT;
	if (is_sqlite) {
		static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
		for (int i = 0; i < 4; i++) {
			snprintf(name, sizeof(name), "%s%s", o->db, suffix[i]);
			if (unlink(name) && errno != ENOENT) {
				perror(name);
				return 1;
			}
		}
		flaghook_sqlite_options so = FLAGHOOK_SQLITE_OPTIONS_INIT;
		so.path = o->db; /* synchronous FULL: the default */
		if ((rc = flaghook_sqlite_open(&st, &so)))
			die("flaghook_sqlite_open", rc);
	} else if (is_pg) {
		flaghook_pg_options po = FLAGHOOK_PG_OPTIONS_INIT;
		po.conninfo = getenv("FLAGHOOK_BENCH_PG");
		po.schema = schema;
		if ((rc = flaghook_pg_open(&st, &po)))
			die("flaghook_pg_open", rc);
	}

	rate_counters cnt = { 0 };
	flaghook_client_options co = FLAGHOOK_CLIENT_OPTIONS_INIT;
	co.mode = FLAGHOOK_MODE_ASYNC;
	co.allow_private = 1; /* the receiver is on loopback */
	co.threads = threads;
	co.max_in_flight = inflight;
	co.max_pending = pending;
	co.emit_wait_ms = 0; /* never waits for room: FLAGHOOK_EFULL would end the run */
	co.storage = durable ? &st : NULL;
	co.on_result = rate_on_result;
	co.user_data = &cnt;
	co.shutdown_timeout_ms = -1; /* memory: abandon the backlog at once */
	flaghook_client *c = NULL;
	if ((rc = flaghook_client_new(&c, &co)))
		die("flaghook_client_new", rc);
	add_endpoint_id(c, o->url, 1); /* a durable store needs a stable id */
	void *sqlite_ud = NULL;
	if (is_sqlite) {
		const flaghook_storage *cs = NULL;
		if ((rc = flaghook_client_storage(c, &cs)))
			die("flaghook_client_storage", rc);
		sqlite_ud = cs->user_data;
	}

	atomic_int stop = 0;
	rate_counter *counts = NULL;
	rate_emitter *es = calloc((size_t)ne, sizeof(*es));
	pthread_t *tids = calloc((size_t)ne, sizeof(*tids));
	if (posix_memalign((void **)&counts, 64, (size_t)ne * sizeof(*counts)) || !es || !tids) {
		fprintf(stderr, "bench: out of memory\n");
		return 1;
	}
	memset(counts, 0, (size_t)ne * sizeof(*counts));
	for (int i = 0; i < ne; i++) {
		es[i].c = c;
		es[i].stop = &stop;
		es[i].count = &counts[i];
		if (pthread_create(&tids[i], NULL, rate_thread, &es[i])) {
			fprintf(stderr, "bench: pthread_create failed\n");
			return 1;
		}
	}
	sleep_s(warmup);
	double t0 = now_s(), c0 = cpu_s();
	uint64_t e0 = rate_sum(counts, ne), d0 = atomic_load(&cnt.delivered);
	uint64_t k0 = sqlite_ud ? flaghook__sqlite_commits(sqlite_ud) : 0;
	/* The window ends early if the queue could come near max_pending (a
	 * machine much faster than this one, with the memory store): emit must
	 * never wait or fail for room, and memory stays bounded. */
	int cut = 0;
	while (now_s() - t0 < seconds) {
		sleep_s(0.01);
		if (rate_sum(counts, ne) >= pending / 10 * 9) {
			cut = 1;
			break;
		}
	}
	double t1 = now_s(), c1 = cpu_s();
	uint64_t e1 = rate_sum(counts, ne), d1 = atomic_load(&cnt.delivered);
	uint64_t k1 = sqlite_ud ? flaghook__sqlite_commits(sqlite_ud) : 0;
	atomic_store(&stop, 1);
	int bad = 0;
	for (int i = 0; i < ne; i++) {
		pthread_join(tids[i], NULL);
		if (es[i].rc) {
			fprintf(stderr, "bench: %s: flaghook_emit (emitter %d): %s (%d) %s\n", tag, i,
			        flaghook_strerror(es[i].rc), es[i].rc, es[i].error);
			bad = 1;
		}
	}
	uint64_t emitted = rate_sum(counts, ne), delivered = atomic_load(&cnt.delivered);
	uint64_t failed = atomic_load(&cnt.failed);
	double rate = (double)(e1 - e0) / (t1 - t0);
	fprintf(stderr, "bench: %s: %s store, %d emitters, pool %d, max_in_flight %d: %.0f emits/s, "
	        "%.0f deliveries/s in the window; %llu emitted, %llu delivered, %llu failed in all",
	        tag, kind, ne, threads, inflight, rate, (double)(d1 - d0) / (t1 - t0),
	        (unsigned long long)emitted, (unsigned long long)delivered, (unsigned long long)failed);
	if (sqlite_ud)
		fprintf(stderr, "; %llu commits for %llu puts and %llu records in the window",
		        (unsigned long long)(k1 - k0), (unsigned long long)(e1 - e0),
		        (unsigned long long)(d1 - d0));
	if (cut)
		fprintf(stderr, "; the window was cut to %.2f s: max_pending %zu was in sight", t1 - t0, pending);
	fprintf(stderr, "\n");
	snprintf(name, sizeof(name), "%s_per_s", tag);
	figure(name, rate, "emits/s");
	snprintf(name, sizeof(name), "%s_emit_us", tag); /* mean time one emit takes */
	figure(name, (t1 - t0) * ne * 1e6 / (double)(e1 - e0), "us");
	snprintf(name, sizeof(name), "%s_delivered_per_s", tag);
	figure(name, (double)(d1 - d0) / (t1 - t0), "deliveries/s");
	snprintf(name, sizeof(name), "%s_cpu_us_per_emit", tag);
	figure(name, (c1 - c0) * 1e6 / (double)(e1 - e0), "us");
	if (sqlite_ud) {
		snprintf(name, sizeof(name), "%s_puts", tag);
		figure(name, (double)(e1 - e0), "puts");
		snprintf(name, sizeof(name), "%s_records", tag);
		figure(name, (double)(d1 - d0), "records");
		snprintf(name, sizeof(name), "%s_commits", tag);
		figure(name, (double)(k1 - k0), "commits");
	}
	if (is_pg) {
		/* Whole run: a put per emit and a record per delivery.  Records of
		 * attempts still running at _exit may be missing: a few at most. */
		snprintf(name, sizeof(name), "%s_run_writes", tag);
		figure(name, (double)(emitted + delivered), "writes");
	}
	if (durable) {
		fflush(stdout);
		fflush(stderr);
		_exit(bad || failed ? 1 : 0);
	}
	atomic_store(&cnt.stopping, 1);
	flaghook_client_free(c);
	free(counts);
	free(es);
	free(tids);
	return bad || failed ? 1 : 0;
}

/* pg_stat_wal.wal_sync: how often the server has fsynced its WAL (every
 * backend and the WAL writer).  -1 when it cannot be read. */
static long long pg_wal_syncs(PGconn *db)
{
	PGresult *r = PQexec(db, "SELECT wal_sync FROM pg_stat_wal");
	long long v = -1;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		v = atoll(PQgetvalue(r, 0, 0));
	else
		fprintf(stderr, "bench: pg_stat_wal: %s", PQerrorMessage(db));
	PQclear(r);
	return v;
}

static int cmd_emitrate(const opts *o)
{
	need_url(o);
	const char *kind = o->store ? o->store : "memory";
	if (!strcmp(kind, "memory"))
		return emitrate_run(o, kind, NULL);
	if (!strcmp(kind, "sqlite")) {
		if (!o->db) {
			fprintf(stderr, "bench: --store sqlite needs --db FILE\n");
			return 2;
		}
		return emitrate_run(o, kind, NULL);
	}
	if (strcmp(kind, "pg")) {
		fprintf(stderr, "bench: --store is memory, sqlite or pg\n");
		return 2;
	}
	const char *conninfo = getenv("FLAGHOOK_BENCH_PG");
	if (!conninfo || !*conninfo) {
		fprintf(stderr, "bench: --store pg needs a conninfo in FLAGHOOK_BENCH_PG\n");
		return 2;
	}
	const char *tag = o->tag ? o->tag : "emitrate";
	char schema[64], sql[128], name[192];
	snprintf(schema, sizeof(schema), "bench_%s", tag);
	for (char *p = schema; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
			*p = '_';
	PGconn *db = PQconnectdb(conninfo);
	if (PQstatus(db) != CONNECTION_OK) {
		fprintf(stderr, "bench: cannot connect to PostgreSQL: %s", PQerrorMessage(db));
		PQfinish(db);
		return 1;
	}
	PQclear(PQexec(db, "SET client_min_messages = warning"));
	snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", schema);
	PGresult *r = PQexec(db, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "bench: %s: %s", sql, PQerrorMessage(db));
		PQclear(r);
		PQfinish(db);
		return 1;
	}
	PQclear(r);
	long long wal0 = pg_wal_syncs(db);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork(); /* no thread runs yet in this process */
	if (pid < 0) {
		perror("bench: fork");
		PQfinish(db);
		return 1;
	}
	if (pid == 0)
		_exit(emitrate_run(o, kind, schema)); /* never touches `db` */
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
	/* The child's backends report their counts as they exit: read until
	 * the count stops moving (at most ~2 s). */
	long long wal1 = pg_wal_syncs(db);
	for (int i = 0; i < 20 && wal1 >= 0; i++) {
		sleep_s(0.1);
		long long w = pg_wal_syncs(db);
		if (w == wal1 && i >= 2)
			break;
		wal1 = w;
	}
	PQfinish(db);
	if (rc == 0 && wal0 >= 0 && wal1 >= 0) {
		snprintf(name, sizeof(name), "%s_run_wal_syncs", tag);
		figure(name, (double)(wal1 - wal0), "fsyncs");
	}
	return rc;
}

/* ------------------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr, "usage: bench body DIR | freeport | probe URL | render | deliver URL | "
	                "emitlat URL | rss | fanout URL | emitrate URL --store memory|sqlite|pg | rtt URL | syncslow URL | "
	                "threads URL   [options: see tests/bench/bench.c]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	const char *cmd = argv[1];
	opts o;
	memset(&o, 0, sizeof(o));
	parse(&o, argc - 2, argv + 2);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(cmd, "body")) {
		if (!o.url)
			usage();
		return cmd_body(o.url);
	}
	if (!strcmp(cmd, "freeport"))
		return cmd_freeport();
	if (!strcmp(cmd, "probe")) {
		need_url(&o);
		return cmd_probe(o.url);
	}
	if (!strcmp(cmd, "render"))
		return cmd_render(&o);
	if (!strcmp(cmd, "deliver"))
		return cmd_deliver(&o);
	if (!strcmp(cmd, "curl-easy"))
		return cmd_curl(&o, 0);
	if (!strcmp(cmd, "curl-multi"))
		return cmd_curl(&o, 1);
	if (!strcmp(cmd, "loop-render"))
		return cmd_loop(&o, 0);
	if (!strcmp(cmd, "loop-hmac"))
		return cmd_loop(&o, 1);
	if (!strcmp(cmd, "loop-sign"))
		return cmd_loop(&o, 2);
	if (!strcmp(cmd, "emitlat"))
		return cmd_emitlat(&o);
	if (!strcmp(cmd, "rss"))
		return cmd_rss(&o);
	if (!strcmp(cmd, "fanout"))
		return cmd_fanout(&o);
	if (!strcmp(cmd, "emitrate"))
		return cmd_emitrate(&o);
	if (!strcmp(cmd, "rtt"))
		return cmd_rtt(&o);
	if (!strcmp(cmd, "syncslow"))
		return cmd_syncslow(&o);
	if (!strcmp(cmd, "threads"))
		return cmd_threads(&o);
	usage();
	return 2;
}
