/* The flaghook command, run as a user would: against a loopback receiver,
 * and against SQLite and PostgreSQL outboxes the test fills through the
 * store libraries. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "flaghook.h"
#include "payload/sign.h"
#include "flaghook_pg.h"
#include "flaghook_sqlite.h"
#include "httpd.h"
#include "vectors.h"

#if defined(__has_include)
#  if __has_include(<libpq-fe.h>)
#    include <libpq-fe.h>
#  else
#    include <postgresql/libpq-fe.h>   /* Debian, without pkg-config's -I */
#  endif
#else
#  include <libpq-fe.h>
#endif

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SECRET "cli-secret-7f3a"
/* A database password in the conninfos below: it must never be printed. */
#define DB_SECRET "s3cret-value"

static char out[8192];

/* Runs `flaghook ARGS` with sh; returns the exit status, output in `out`
 * (stdout and stderr together).  The secret must never show in it. */
static int run(const char *fmt, ...)
{
	char args[2048], cmd[2600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	const char *build = getenv("FLAGHOOK_BUILD");
	snprintf(cmd, sizeof(cmd), "%s/flaghook %s 2>&1", build ? build : "build", args);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	int status = pclose(p);
	assert_true(WIFEXITED(status));
	if (strstr(out, SECRET))
		fail_msg("output shows the secret: %s", out);
	if (strstr(out, DB_SECRET))
		fail_msg("output shows the database password: %s", out);
	const char *pw = getenv("FLAGHOOK_TEST_PG_PASSWORD");
	if (pw && *pw && strstr(out, pw))
		fail_msg("output shows the test server's password: %s", out);
	return WEXITSTATUS(status);
}

/* ---- per-case fixtures: torn down even when an assertion fails ---- */

/* What a case makes; teardown removes it.  Every case starts and ends with
 * the environment the command reads cleared, so no case depends on what
 * another (or the caller's shell) left there. */
typedef struct outbox outbox;
typedef struct fx {
	th_server *srv;
	int refused_fd;             /* a socket bound and never listening, or -1 */
	char files[2][128];         /* temporary files, "" when unused */
	char dir[64];               /* a temporary directory (emptied by its case), "" */
	struct outbox *ob;          /* an outbox made by outbox_make, or NULL */
	char pg_schema[64];         /* a PostgreSQL schema to drop, "" when none */
} fx;

static void clear_env(void)
{
	unsetenv("FLAGHOOK_SECRET");
	unsetenv("FLAGHOOK_STANDARD_SECRET");
	unsetenv("FLAGHOOK_PG_CONNINFO");
	unsetenv("FLAGHOOK_TEST_PG_PASSWORD");
}

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->refused_fd = -1;
	clear_env();
	*state = f;
	return 0;
}

static void outbox_remove(outbox *ob);
static void pg_drop_schema(const char *schema);

static int teardown(void **state)
{
	fx *f = *state;
	th_stop(f->srv);
	if (f->refused_fd >= 0)
		close(f->refused_fd);
	for (int i = 0; i < 2; i++)
		if (f->files[i][0])
			unlink(f->files[i]);
	if (f->dir[0])
		rmdir(f->dir);
	if (f->ob) {
		outbox_remove(f->ob);
		free(f->ob);
	}
	if (f->pg_schema[0])
		pg_drop_schema(f->pg_schema);
	clear_env();
	free(f);
	return 0;
}

/* A temporary file (slot i of the case's), empty. */
static const char *temp_file(fx *f, int i, const char *prefix)
{
	snprintf(f->files[i], sizeof(f->files[i]), "/tmp/%s-XXXXXX", prefix);
	int fd = mkstemp(f->files[i]);
	if (fd < 0) {
		f->files[i][0] = '\0';
		fail_msg("mkstemp failed");
	}
	close(fd);
	return f->files[i];
}

/* A loopback port bound and never listening, held until teardown: a
 * connection to it is refused, and nobody else can take it meanwhile. */
static int refused_port(fx *f)
{
	int port = th_refused_port(&f->refused_fd);
	assert_true(port > 0);
	return port;
}

/* Drops a schema of FLAGHOOK_PG's server, if there is one. */
static void pg_drop_schema(const char *schema)
{
	const char *pg = getenv("FLAGHOOK_PG");
	if (!pg || !*pg)
		return;
	PGconn *c = PQconnectdb(pg);
	if (PQstatus(c) == CONNECTION_OK) {
		char sql[128];
		snprintf(sql, sizeof(sql), "SET client_min_messages = warning;"
		         " DROP SCHEMA IF EXISTS \"%s\" CASCADE", schema);
		PQclear(PQexec(c, sql));
	}
	PQfinish(c);
}

static void test_sign_and_verify(void **state)
{
	fx *fx_ = *state;
	cJSON *root = vec_load("flagsmith-signature.json");
	cJSON *c;
	const char *path = temp_file(fx_, 0, "flaghook-cli");
	int fd;
	cJSON_ArrayForEach(c, vec_cases(root)) {
		FILE *f = fopen(path, "wb");
		fputs(vec_str(c, "body"), f);
		fclose(f);
		/* The secret comes through the environment, as the page advises. */
		setenv("FLAGHOOK_SECRET", vec_str(c, "secret"), 1);
		assert_int_equal(run("sign %s", path), 0);
		char want[80];
		snprintf(want, sizeof(want), "%s\n", vec_str(c, "x_flagsmith_signature"));
		assert_string_equal(out, want);
		assert_int_equal(run("verify --signature %s %s", vec_str(c, "x_flagsmith_signature"), path), 0);
		assert_int_equal(run("verify --signature %064d %s", 0, path), 1);
		assert_int_equal(run("verify --signature %s < %s", vec_str(c, "x_flagsmith_signature"), path), 0);
	}
	unsetenv("FLAGHOOK_SECRET");
	/* A secret file, with the editor's trailing newline. */
	const char *spath = temp_file(fx_, 1, "flaghook-secret");
	fd = open(spath, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "random_key\n", 11), 11);
	close(fd);
	FILE *f = fopen(path, "wb");
	fputs("{\"key\": \"value\"}", f);
	fclose(f);
	assert_int_equal(run("sign --secret-file %s %s", spath, path), 0);
	assert_string_equal(out, "e8af67a174c950742e45136491466739cf74a634c608fda0fd487732c2a8204f\n");
	/* Review defect 4: an empty secret signs and verifies nothing, from
	 * any source; the HMAC of the empty key is refused, not "OK". */
	uint8_t mac[32];
	assert_int_equal(flaghook__hmac_sha256(mac, "", 0, "{\"key\": \"value\"}", 16), 0);
	char empty_sig[65];
	flaghook__hex(empty_sig, mac, sizeof(mac));
	setenv("FLAGHOOK_SECRET", "", 1);
	assert_int_equal(run("verify --signature %s %s", empty_sig, path), 2);
	assert_non_null(strstr(out, "the secret from FLAGHOOK_SECRET is empty"));
	assert_null(strstr(out, "signature OK"));
	assert_int_equal(run("sign %s", path), 2);
	unsetenv("FLAGHOOK_SECRET");
	fd = open(spath, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, "\n", 1), 1);
	close(fd);
	assert_int_equal(run("verify --secret-file %s --signature %s %s", spath, empty_sig, path), 2);
	assert_non_null(strstr(out, "empty"));
	assert_null(strstr(out, "signature OK"));
	assert_int_equal(run("sign --secret '' %s", path), 2);
	assert_int_equal(run("test http://127.0.0.1:9/ --secret ''"), 2);
	assert_non_null(strstr(out, "the secret from --secret is empty"));
	/* Usage errors are 2. */
	assert_int_equal(run("sign %s", path), 2);
	assert_non_null(strstr(out, "a secret is needed"));
	assert_int_equal(run("verify --secret x %s", path), 2);
	assert_int_equal(run("sign --secret x /nonexistent/file"), 2);
	assert_int_equal(run("frobnicate"), 2);
	assert_int_equal(run("sign --bogus"), 2);
	assert_int_equal(run("--version"), 0);
	assert_non_null(strstr(out, FLAGHOOK_VERSION));
	assert_int_equal(run("--help"), 0);
	cJSON_Delete(root);
}

/* `flaghook test` sends exactly the golden sample, signed, and reports
 * like Flagsmith's button. */
static void test_test_command(void **state)
{
	fx *f = *state;
	assert_int_equal(th_start(&f->srv, NULL, NULL), 0);
	th_server *s = f->srv;
	int port = th_port(s);
	static const struct { const char *scope, *golden; } scopes[] = {
		{ "environment", "golden/sample_environment.json" },
		{ "organisation", "golden/sample_organisation.json" },
	};
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(run("test http://127.0.0.1:%d/w --allow-private --secret %s --scope %s", port, SECRET, scopes[i].scope), 0);
		assert_non_null(strstr(out, "Webhook test successful: HTTP 200"));
		th_request r;
		assert_int_equal(th_get(s, i, &r), 0);
		size_t len;
		char *want = read_whole(test_path(scopes[i].golden), &len);
		assert_int_equal(r.body_len, len);
		assert_memory_equal(r.body, want, len);
		char sig[65];
		flaghook_sign(sig, sizeof(sig), SECRET, strlen(SECRET), want, len);
		assert_string_equal(th_header(&r, "X-Flagsmith-Signature"), sig);
		free(want);
		th_request_free(&r);
	}
	/* Default scope is environment; no secret, no signature. */
	assert_int_equal(run("test http://127.0.0.1:%d/w --allow-private", port), 0);
	th_request r;
	th_get(s, 2, &r);
	assert_null(th_header(&r, "X-Flagsmith-Signature"));
	assert_non_null(strstr(r.body, "\"event_type\": \"FLAG_UPDATED\""));
	th_request_free(&r);

	th_reply fail[] = { { TH_RESPOND, 500, NULL, "nope", 0, 0 } };
	th_script(s, fail, 1);
	assert_int_equal(run("test http://127.0.0.1:%d/w --allow-private --secret %s", port, SECRET), 1);
	assert_non_null(strstr(out, "Webhook returned invalid status: HTTP 500"));

	/* Nothing listens: refused (the port is held, bound, never listening). */
	port = refused_port(f);
	assert_int_equal(run("test http://127.0.0.1:%d/w --allow-private --secret %s --timeout 30", port, SECRET), 1);
	assert_non_null(strstr(out, "Could not connect to webhook URL"));
	assert_int_equal(run("test ftp://127.0.0.1/ --secret %s", SECRET), 2);
	assert_non_null(strstr(out, "http:// or https://"));
	assert_int_equal(run("test http://127.0.0.1:1/ --scope galaxy"), 2);
	assert_int_equal(run("test"), 2);
}

/* Standard Webhooks from the command: the specification's known answers,
 * a rotation, the timestamp window, and `test --standard-secret`. */
#define WHSEC "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

static void test_standard_scheme(void **state)
{
	fx *fx_ = *state;
	const char *path = temp_file(fx_, 0, "flaghook-cli");
	cJSON *root = vec_load("standard-webhooks.json");
	cJSON *c;
	int known = 0;
	cJSON_ArrayForEach(c, vec_cases(root)) {
		const char *sig = vec_str(c, "webhook_signature");
		if (!sig || strchr(sig, ' '))
			continue; /* a case with several signatures: verify's, below */
		FILE *f = fopen(path, "wb");
		fputs(vec_str(c, "body"), f);
		fclose(f);
		setenv("FLAGHOOK_STANDARD_SECRET", vec_str(c, "secret"), 1);
		if (run("sign --scheme standard --id %s --timestamp %s %s", vec_str(c, "webhook_id"),
		        vec_str(c, "webhook_timestamp"), path) != 0)
			continue; /* a case the library refuses to sign (a bad key): the C tests judge those */
		char want[256];
		snprintf(want, sizeof(want), "%s\n", sig);
		assert_string_equal(out, want);
		known++;
		/* Its timestamp is long past: outside the window, a mismatch. */
		assert_int_equal(run("verify --scheme standard --id %s --timestamp %s --signature '%s' %s",
		                     vec_str(c, "webhook_id"), vec_str(c, "webhook_timestamp"), sig, path), 1);
		assert_non_null(strstr(out, "tolerance"));
	}
	assert_true(known >= 1);
	unsetenv("FLAGHOOK_STANDARD_SECRET");
	cJSON_Delete(root);

	/* Signed now: verified, by any of the secrets of a rotation. */
	FILE *f = fopen(path, "wb");
	fputs("{\"test\": 2432232314}", f);
	fclose(f);
	char now[24], sig[256];
	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	assert_int_equal(run("sign --scheme standard --standard-secret %s --id msg_1 --timestamp %s %s", WHSEC, now,
	                     path), 0);
	assert_null(strstr(out, WHSEC));
	snprintf(sig, sizeof(sig), "%.*s", (int)strcspn(out, "\n"), out);
	assert_true(!strncmp(sig, "v1,", 3));
	assert_int_equal(run("verify --scheme standard --standard-secret whsec_b2xkLXNlY3JldA== --standard-secret %s "
	                     "--id msg_1 --timestamp %s --signature '%s' %s", WHSEC, now, sig, path), 0);
	assert_non_null(strstr(out, "signature OK"));
	assert_null(strstr(out, WHSEC));
	/* the wrong secret, another id, another body: mismatches */
	assert_int_equal(run("verify --scheme standard --standard-secret whsec_b2xkLXNlY3JldA== --id msg_1 "
	                     "--timestamp %s --signature '%s' %s", now, sig, path), 1);
	assert_int_equal(run("verify --scheme standard --standard-secret %s --id msg_2 --timestamp %s "
	                     "--signature '%s' %s", WHSEC, now, sig, path), 1);
	assert_int_equal(run("verify --scheme standard --standard-secret %s --id msg_1 --timestamp %s "
	                     "--signature '%s' < /dev/null", WHSEC, now, sig), 1);
	/* The window: 1000 s ago is stale by default, fine with --tolerance 2000. */
	char old[24];
	snprintf(old, sizeof(old), "%lld", (long long)time(NULL) - 1000);
	assert_int_equal(run("sign --scheme standard --standard-secret %s --id msg_1 --timestamp %s %s", WHSEC, old,
	                     path), 0);
	snprintf(sig, sizeof(sig), "%.*s", (int)strcspn(out, "\n"), out);
	assert_int_equal(run("verify --scheme standard --standard-secret %s --id msg_1 --timestamp %s "
	                     "--signature '%s' %s", WHSEC, old, sig, path), 1);
	assert_int_equal(run("verify --scheme standard --standard-secret %s --id msg_1 --timestamp %s "
	                     "--signature '%s' --tolerance 2000 %s", WHSEC, old, sig, path), 0);
	/* Usage: 2. */
	assert_int_equal(run("sign --scheme standard --id m --timestamp 1 %s", path), 2);
	assert_non_null(strstr(out, "--standard-secret"));
	assert_int_equal(run("sign --scheme standard --standard-secret %s --timestamp 1 %s", WHSEC, path), 2);
	assert_int_equal(run("sign --scheme standard --standard-secret %s --id m --timestamp 12a %s", WHSEC, path), 2);
	assert_int_equal(run("sign --scheme standard --standard-secret %s --standard-secret %s --id m --timestamp 1 %s",
	                     WHSEC, WHSEC, path), 2);
	assert_int_equal(run("verify --scheme standard --standard-secret %s --id m --timestamp 1 %s", WHSEC, path), 2);
	assert_int_equal(run("sign --scheme galaxy --secret x %s", path), 2);
	assert_int_equal(run("sign --scheme standard --standard-secret not-a-key --id m --timestamp 1 %s", path), 2);
	assert_null(strstr(out, "not-a-key"));

	/* test --standard-secret: the three headers, verified here. */
	assert_int_equal(th_start(&fx_->srv, NULL, NULL), 0);
	assert_int_equal(run("test http://127.0.0.1:%d/w --allow-private --standard-secret %s", th_port(fx_->srv), WHSEC),
	                 0);
	assert_non_null(strstr(out, "Webhook test successful: HTTP 200"));
	assert_null(strstr(out, WHSEC));
	th_request r;
	assert_int_equal(th_get(fx_->srv, 0, &r), 0);
	const char *id = th_header(&r, "webhook-id"), *ts = th_header(&r, "webhook-timestamp"),
	           *hs = th_header(&r, "webhook-signature");
	assert_non_null(id);
	assert_non_null(ts);
	assert_non_null(hs);
	assert_null(th_header(&r, "X-Flagsmith-Signature"));
	const char *secrets[] = { WHSEC };
	assert_int_equal(flaghook_standard_verify(secrets, 1, id, ts, hs, r.body, r.body_len, (int64_t)time(NULL), 0), 0);
	th_request_free(&r);
}

/* ------------------------------------------------------------------ */
/* The outbox subcommands                                              */

#define T0 1795341600000000LL   /* 2026-11-22T10:00:00Z */
#define SEC 1000000LL
#define EV_A "11111111-1111-4111-8111-111111111111"
#define EV_B "22222222-2222-4222-8222-222222222222"
#define EV_C "33333333-3333-4333-8333-333333333333"
#define EV_D "44444444-4444-4444-8444-444444444444"

/* A body with a quote, a newline and a non-ASCII letter. */
static const char body_a[] = "{\"feature\": \"caf\xc3\xa9\", \"note\": \"a \\\"b\\\"\"}\n";
/* A reply with a terminal escape sequence and a newline. */
static const char resp_a1[] = "Internal \x1b[31merror\x1b[0m\nline 2";

struct outbox {
	char dir[64];
	char path[128];
	uint64_t a, b, c, d;        /* dead (7), delivered (7), dead (9), pending (9) */
};

static uint64_t put_one(flaghook_storage *st, uint64_t endpoint, const char *event_id, int type,
                        const char *body, int64_t created_us)
{
	flaghook_delivery d;
	memset(&d, 0, sizeof(d));
	d.version = FLAGHOOK_DELIVERY_VERSION;
	d.event_id = event_id;
	d.event_type = type;
	d.endpoint_id = endpoint;
	d.body = body;
	d.body_len = strlen(body);
	d.created_us = created_us;
	d.next_attempt_us = created_us;
	int rc = st->put(&d, 1, st->user_data);
	if (rc)
		fail_msg("put: %s", flaghook_last_error());
	assert_true(d.id != 0);
	return d.id;
}

static void record_one(flaghook_storage *st, uint64_t id, uint64_t endpoint, const char *event_id,
                       int number, int outcome, int status, int errclass, int64_t started_us,
                       int64_t ms, const char *error, const char *response)
{
	flaghook_delivery d;
	memset(&d, 0, sizeof(d));
	d.version = FLAGHOOK_DELIVERY_VERSION;
	d.id = id;
	d.endpoint_id = endpoint;
	d.event_id = event_id;
	d.attempts = number;
	flaghook_attempt a;
	memset(&a, 0, sizeof(a));
	a.version = FLAGHOOK_ATTEMPT_VERSION;
	a.delivery_id = id;
	a.endpoint_id = endpoint;
	a.event_id = event_id;
	a.number = number;
	a.outcome = outcome;
	a.status = status;
	a.errclass = errclass;
	a.started_us = started_us;
	a.finished_us = started_us + ms * 1000;
	a.next_attempt_us = outcome == FLAGHOOK_OUTCOME_RETRY ? a.finished_us + 2 * SEC : 0;
	a.error = error;
	a.response = response;
	a.response_len = strlen(response);
	int rc = st->record(&d, &a, st->user_data);
	if (rc)
		fail_msg("record: %s", flaghook_last_error());
}

/* An outbox file made through libflaghook-sqlite: A and C dead letters, B
 * delivered, D pending. */
static outbox *outbox_new(fx *f, const char *dir_template)
{
	f->ob = calloc(1, sizeof(*f->ob));
	assert_non_null(f->ob);
	strcpy(f->ob->dir, dir_template);
	if (!mkdtemp(f->ob->dir)) {
		free(f->ob);
		f->ob = NULL;
		fail_msg("mkdtemp failed");
	}
	return f->ob;
}

static outbox *outbox_make(fx *f)
{
	outbox *ob = outbox_new(f, "/tmp/flaghook-cli-db-XXXXXX");
	snprintf(ob->path, sizeof(ob->path), "%s/outbox.db", ob->dir);
	flaghook_storage st = FLAGHOOK_STORAGE_INIT;
	flaghook_sqlite_options so = FLAGHOOK_SQLITE_OPTIONS_INIT;
	so.path = ob->path;
	so.synchronous = FLAGHOOK_SQLITE_SYNC_NORMAL;
	if (flaghook_sqlite_open(&st, &so))
		fail_msg("sqlite open: %s", flaghook_last_error());
	ob->a = put_one(&st, 7, EV_A, FLAGHOOK_EVENT_FLAG_UPDATED, body_a, T0);
	record_one(&st, ob->a, 7, EV_A, 1, FLAGHOOK_OUTCOME_RETRY, 500, FLAGHOOK_ERRCLASS_HTTP, T0 + 1 * SEC,
	           250, "HTTP 500", resp_a1);
	record_one(&st, ob->a, 7, EV_A, 2, FLAGHOOK_OUTCOME_GAVE_UP, 503, FLAGHOOK_ERRCLASS_HTTP,
	           T0 + 60 * SEC, 1500, "HTTP 503", "unavailable");
	ob->b = put_one(&st, 7, EV_B, FLAGHOOK_EVENT_FLAG_DELETED, "{\"b\": 1}", T0 + 60 * SEC);
	record_one(&st, ob->b, 7, EV_B, 1, FLAGHOOK_OUTCOME_DELIVERED, 200, FLAGHOOK_ERRCLASS_NONE,
	           T0 + 61 * SEC, 40, "", "ok");
	ob->c = put_one(&st, 9, EV_C, FLAGHOOK_EVENT_AUDIT_LOG_CREATED, "{\"c\": 1}", T0 + 120 * SEC);
	record_one(&st, ob->c, 9, EV_C, 1, FLAGHOOK_OUTCOME_GAVE_UP, 0, FLAGHOOK_ERRCLASS_TIMEOUT,
	           T0 + 121 * SEC, 10000, "timed out after 10000 ms", "");
	ob->d = put_one(&st, 9, EV_D, FLAGHOOK_EVENT_FLAG_UPDATED, "{\"d\": 1}", T0 + 180 * SEC);
	flaghook_storage_close(&st);
	return ob;
}

static void outbox_remove(outbox *ob)
{
	static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
	char p[160];
	for (size_t i = 0; ob->path[0] && i < 4; i++) {
		snprintf(p, sizeof(p), "%s%s", ob->path, suffixes[i]);
		unlink(p);
	}
	rmdir(ob->dir);
}

/* Splits `out` into JSON objects, one per line; returns how many. */
static int json_lines(cJSON **items, int max)
{
	int n = 0;
	char *save = NULL;
	for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		cJSON *j = cJSON_Parse(line);
		if (!j || !cJSON_IsObject(j))
			fail_msg("not a JSON object: %s", line);
		if (n == max)
			fail_msg("more than %d lines", max);
		items[n++] = j;
	}
	return n;
}

static void json_free(cJSON **items, int n)
{
	for (int i = 0; i < n; i++)
		cJSON_Delete(items[i]);
}

static double jnum(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsNumber(v))
		fail_msg("%s is not a number", key);
	return v->valuedouble;
}

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsString(v))
		fail_msg("%s is not a string", key);
	return v->valuestring;
}

static void iso_of(int64_t us, char *buf, size_t size)
{
	time_t t = (time_t)(us / SEC);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Lines in `out`. */
static int lines(void)
{
	int n = 0;
	for (const char *p = out; *p; p++)
		n += *p == '\n';
	return n;
}

static void test_outbox_dead_and_deliveries(void **state)
{
	outbox *ob = outbox_make(*state);
	cJSON *j[8];

	/* Text: a header and the two dead letters, oldest first. */
	assert_int_equal(run("dead --sqlite %s", ob->path), 0);
	assert_int_equal(lines(), 3);
	assert_non_null(strstr(out, "EVENT"));
	const char *la = strstr(out, EV_A), *lc = strstr(out, EV_C);
	assert_non_null(la);
	assert_non_null(lc);
	assert_true(la < lc);
	assert_null(strstr(out, EV_B));
	assert_null(strstr(out, EV_D));
	assert_non_null(strstr(out, "FLAG_UPDATED"));
	assert_non_null(strstr(out, "AUDIT_LOG_CREATED"));
	assert_non_null(strstr(out, " 503 "));
	char text[sizeof(out)];
	strcpy(text, out);

	/* JSON: every column, and the time in the table is the row's. */
	assert_int_equal(run("dead --sqlite %s --json", ob->path), 0);
	assert_int_equal(json_lines(j, 8), 2);
	assert_int_equal((uint64_t)jnum(j[0], "id"), ob->a);
	assert_int_equal((int)jnum(j[0], "endpoint"), 7);
	assert_string_equal(jstr(j[0], "event_id"), EV_A);
	assert_string_equal(jstr(j[0], "event_type"), "FLAG_UPDATED");
	assert_string_equal(jstr(j[0], "state"), "dead");
	assert_int_equal((int)jnum(j[0], "attempts"), 2);
	assert_int_equal((int)jnum(j[0], "last_status"), 503);
	assert_string_equal(jstr(j[0], "created"), "2026-11-22T10:00:00Z");
	assert_true(jnum(j[0], "created_us") == (double)T0);
	char want[32];
	iso_of((int64_t)jnum(j[0], "updated_us"), want, sizeof(want));
	assert_string_equal(jstr(j[0], "updated"), want);
	assert_non_null(strstr(text, want));
	assert_null(cJSON_GetObjectItemCaseSensitive(j[0], "body"));
	assert_int_equal((int)jnum(j[0], "body_bytes"), (int)strlen(body_a));
	assert_int_equal((uint64_t)jnum(j[1], "id"), ob->c);
	assert_string_equal(jstr(j[1], "event_type"), "AUDIT_LOG_CREATED");
	assert_int_equal((int)jnum(j[1], "last_status"), 0);
	json_free(j, 2);

	/* Filters. */
	assert_int_equal(run("dead --sqlite %s --endpoint 9 --json", ob->path), 0);
	assert_int_equal(json_lines(j, 8), 1);
	assert_string_equal(jstr(j[0], "event_id"), EV_C);
	json_free(j, 1);
	assert_int_equal(run("dead --sqlite %s --limit 1 --json", ob->path), 0);
	assert_int_equal(json_lines(j, 8), 1);
	assert_string_equal(jstr(j[0], "event_id"), EV_A);
	json_free(j, 1);
	assert_int_equal(run("dead --sqlite %s --since 2026-11-22T10:01:30Z --json", ob->path), 0);
	assert_int_equal(json_lines(j, 8), 1);
	assert_string_equal(jstr(j[0], "event_id"), EV_C);
	json_free(j, 1);
	assert_int_equal(run("dead --since 2099-01-01 --sqlite %s", ob->path), 0);
	assert_string_equal(out, "no dead letters\n");
	/* Relative times are tried on an outbox dated from now, in
	 * test_outbox_relative_since: this one's dates are fixed. */

	/* deliveries: every state, or one. */
	assert_int_equal(run("deliveries --sqlite %s --json", ob->path), 0);
	assert_int_equal(json_lines(j, 8), 4);
	assert_string_equal(jstr(j[1], "state"), "delivered");
	assert_string_equal(jstr(j[1], "event_type"), "FLAG_DELETED");
	assert_string_equal(jstr(j[3], "state"), "pending");
	json_free(j, 4);
	assert_int_equal(run("deliveries --sqlite %s --state pending --json", ob->path), 0);
	assert_int_equal(json_lines(j, 8), 1);
	assert_string_equal(jstr(j[0], "event_id"), EV_D);
	json_free(j, 1);
	assert_int_equal(run("deliveries --sqlite %s --state delivered", ob->path), 0);
	assert_int_equal(lines(), 2);
	assert_non_null(strstr(out, EV_B));
	assert_non_null(strstr(out, "delivered"));
	assert_int_equal(run("deliveries --sqlite %s --delivery %llu --state any --json", ob->path,
	                     (unsigned long long)ob->d), 0);
	assert_int_equal(json_lines(j, 8), 1);
	assert_string_equal(jstr(j[0], "event_id"), EV_D);
	json_free(j, 1);

	/* --body: the exact bytes through JSON; made printable in text. */
	assert_int_equal(run("deliveries --sqlite %s --delivery %llu --json --body", ob->path,
	                     (unsigned long long)ob->a), 0);
	assert_int_equal(json_lines(j, 8), 1);
	assert_string_equal(jstr(j[0], "body"), body_a);
	json_free(j, 1);
	assert_int_equal(run("dead --sqlite %s --endpoint 7 --body", ob->path), 0);
	/* Backslashes doubled, so that the \n that ends it is unambiguous. */
	assert_non_null(strstr(out, "    body: {\"feature\": \"caf\xc3\xa9\", \"note\": \"a \\\\\"b\\\\\"\"}\\n\n"));
}

static void test_outbox_attempts(void **state)
{
	outbox *ob = outbox_make(*state);
	cJSON *j[8];

	assert_int_equal(run("attempts --sqlite %s --delivery %llu", ob->path, (unsigned long long)ob->a), 0);
	assert_int_equal(lines(), 3);
	const char *r1 = strstr(out, " retry "), *r2 = strstr(out, " gave_up ");
	assert_non_null(r1);
	assert_non_null(r2);
	assert_true(r1 < r2);
	assert_non_null(strstr(out, "2026-11-22T10:00:01Z"));
	assert_non_null(strstr(out, " 250 "));
	assert_non_null(strstr(out, " 1500 "));
	assert_non_null(strstr(out, " http "));
	assert_non_null(strstr(out, "HTTP 500 | response \"Internal \\x1b[31merror\\x1b[0m\\nline 2\""));
	assert_null(strchr(out, '\x1b'));   /* nothing reaches the terminal raw */

	assert_int_equal(run("attempts --sqlite %s --delivery %llu --json", ob->path, (unsigned long long)ob->a), 0);
	assert_int_equal(json_lines(j, 8), 2);
	assert_int_equal((uint64_t)jnum(j[0], "delivery"), ob->a);
	assert_int_equal((int)jnum(j[0], "endpoint"), 7);
	assert_string_equal(jstr(j[0], "event_id"), EV_A);
	assert_int_equal((int)jnum(j[0], "attempt"), 1);
	assert_string_equal(jstr(j[0], "outcome"), "retry");
	assert_int_equal((int)jnum(j[0], "status"), 500);
	assert_string_equal(jstr(j[0], "errclass"), "http");
	assert_string_equal(jstr(j[0], "error"), "HTTP 500");
	assert_string_equal(jstr(j[0], "started"), "2026-11-22T10:00:01Z");
	assert_int_equal((int)jnum(j[0], "duration_ms"), 250);
	assert_string_equal(jstr(j[0], "response"), resp_a1);
	assert_string_equal(jstr(j[1], "outcome"), "gave_up");
	assert_int_equal((int)jnum(j[1], "duration_ms"), 1500);
	json_free(j, 2);

	assert_int_equal(run("attempts --sqlite %s --endpoint 9", ob->path), 0);
	assert_int_equal(lines(), 2);
	assert_non_null(strstr(out, " timeout "));
	assert_non_null(strstr(out, "timed out after 10000 ms"));
	assert_non_null(strstr(out, " 10000 "));

	/* --since in each form, and --limit. */
	assert_int_equal(run("attempts --sqlite %s --since 2026-11-22T10:00:30Z --json", ob->path), 0);
	assert_int_equal(json_lines(j, 8), 3);
	assert_string_equal(jstr(j[0], "outcome"), "gave_up");
	assert_string_equal(jstr(j[1], "outcome"), "delivered");
	json_free(j, 3);
	assert_int_equal(run("attempts --sqlite %s --since %lld --json", ob->path, (long long)(T0 + 30 * SEC)), 0);
	assert_int_equal(json_lines(j, 8), 3);
	json_free(j, 3);
	assert_int_equal(run("attempts --sqlite %s --since 2026-11-22T10:00:30.5Z --json", ob->path), 0);
	assert_int_equal(json_lines(j, 8), 3);
	json_free(j, 3);
	assert_int_equal(run("attempts --sqlite %s --since 2026-11-22T10:00:00Z --limit 2 --json", ob->path), 0);
	assert_int_equal(json_lines(j, 8), 2);
	assert_string_equal(jstr(j[0], "outcome"), "retry");
	json_free(j, 2);
	assert_int_equal(run("attempts --sqlite %s --delivery %llu", ob->path, (unsigned long long)ob->d), 0);
	assert_string_equal(out, "no attempts\n");
}

typedef struct seen_row {
	int n;
	int32_t state, attempts;
} seen_row;

static int see_row(const flaghook_delivery *d, void *arg)
{
	seen_row *r = arg;
	r->n++;
	r->state = d->state;
	r->attempts = d->attempts;
	return 0;
}

static void test_outbox_requeue_and_pending(void **state)
{
	outbox *ob = outbox_make(*state);

	assert_int_equal(run("pending --sqlite %s", ob->path), 0);
	assert_string_equal(out, "1\n");

	/* No filter: refused, and nothing changed. */
	assert_int_equal(run("requeue --sqlite %s", ob->path), 2);
	assert_non_null(strstr(out, "refusing to re-queue without a filter"));
	assert_int_equal(run("requeue --sqlite %s --dead", ob->path), 2);
	assert_non_null(strstr(out, "refusing"));
	assert_int_equal(run("pending --sqlite %s", ob->path), 0);
	assert_string_equal(out, "1\n");

	/* One delivery. */
	assert_int_equal(run("requeue --sqlite %s --delivery %llu", ob->path, (unsigned long long)ob->a), 0);
	assert_string_equal(out, "requeued 1 delivery\n");
	assert_int_equal(run("pending --sqlite %s", ob->path), 0);
	assert_string_equal(out, "2\n");
	assert_int_equal(run("dead --sqlite %s", ob->path), 0);
	assert_null(strstr(out, EV_A));
	assert_non_null(strstr(out, EV_C));
	assert_int_equal(run("requeue --sqlite %s --delivery %llu", ob->path, (unsigned long long)ob->a), 0);
	assert_non_null(strstr(out, "requeued 0 deliveries\n"));
	assert_non_null(strstr(out, "is pending already"));
	assert_int_equal(run("requeue --sqlite %s --delivery 999", ob->path), 1);
	assert_non_null(strstr(out, "no delivery 999"));

	/* An endpoint's dead letters: endpoint 7 has only a delivered one left. */
	assert_int_equal(run("requeue --sqlite %s --endpoint 7", ob->path), 0);
	assert_string_equal(out, "requeued 0 deliveries\n");
	assert_int_equal(run("requeue --sqlite %s --endpoint 9", ob->path), 0);
	assert_string_equal(out, "requeued 1 delivery\n");
	assert_int_equal(run("dead --sqlite %s", ob->path), 0);
	assert_string_equal(out, "no dead letters\n");

	/* Everything created since a time: B, delivered, is sent again. */
	assert_int_equal(run("requeue --sqlite %s --since 2026-11-22T10:00:30Z --json", ob->path), 0);
	assert_string_equal(out, "{\"requeued\":1}\n");
	assert_int_equal(run("pending --sqlite %s --json", ob->path), 0);
	assert_string_equal(out, "{\"pending\":4}\n");

	/* The store agrees: A is pending again with its attempts reset. */
	flaghook_storage st = FLAGHOOK_STORAGE_INIT;
	flaghook_sqlite_options so = FLAGHOOK_SQLITE_OPTIONS_INIT;
	so.path = ob->path;
	assert_int_equal(flaghook_sqlite_open(&st, &so), 0);
	flaghook_query q = FLAGHOOK_QUERY_INIT;
	q.delivery_id = ob->a;
	seen_row seen = { 0, -1, -1 };
	assert_int_equal(flaghook_storage_list(&st, &q, see_row, &seen), 0);
	assert_int_equal(seen.n, 1);
	assert_int_equal(seen.state, FLAGHOOK_DELIVERY_PENDING);
	assert_int_equal(seen.attempts, 0);
	uint64_t pending = 0;
	assert_int_equal(st.pending(&pending, st.user_data), 0);
	assert_int_equal(pending, 4);
	flaghook_storage_close(&st);
}

/* --since -7d and the like count back from the clock of the machine the
 * command runs on.  An outbox fixed in time cannot test them for long (the
 * one above is dated 2026-11-22, and "-7d" stopped matching it a week
 * later): this one is dated from now, so it passes on any date. */
static void test_outbox_relative_since(void **state)
{
	outbox *ob = outbox_new(*state, "/tmp/flaghook-cli-rel-XXXXXX");
	snprintf(ob->path, sizeof(ob->path), "%s/outbox.db", ob->dir);
	flaghook_storage st = FLAGHOOK_STORAGE_INIT;
	flaghook_sqlite_options so = FLAGHOOK_SQLITE_OPTIONS_INIT;
	so.path = ob->path;
	so.synchronous = FLAGHOOK_SQLITE_SYNC_NORMAL;
	if (flaghook_sqlite_open(&st, &so))
		fail_msg("sqlite open: %s", flaghook_last_error());
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now = (int64_t)ts.tv_sec * SEC;
	int64_t day = 86400 * SEC;
	/* Dead letters one day, thirty days and a year old. */
	int64_t when[] = { now - day, now - 30 * day, now - 365 * day };
	const char *ev[] = { EV_A, EV_B, EV_C };
	for (int i = 0; i < 3; i++) {
		uint64_t id = put_one(&st, 7, ev[i], FLAGHOOK_EVENT_FLAG_UPDATED, "{}", when[i]);
		record_one(&st, id, 7, ev[i], 1, FLAGHOOK_OUTCOME_GAVE_UP, 500, FLAGHOOK_ERRCLASS_HTTP, when[i] + SEC,
		           10, "HTTP 500", "");
	}
	flaghook_storage_close(&st);
	cJSON *j[4];
	static const struct { const char *since; int dead; } cases[] = {
		{ "-2h", 0 }, { "-36h", 1 }, { "-7d", 1 }, { "-29d", 1 }, { "-31d", 2 }, { "-400d", 3 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(run("dead --sqlite %s --since %s --json", ob->path, cases[i].since), 0);
		/* The youngest `dead` of them, whatever their order. */
		for (int k = 0; k < 3; k++)
			if (!strstr(out, ev[k]) != (k >= cases[i].dead))
				fail_msg("dead --since %s: event %d %s (%s)", cases[i].since, k,
				         k < cases[i].dead ? "missing" : "listed", out);
		int n = cases[i].dead ? json_lines(j, 4) : 0;
		if (n != cases[i].dead)
			fail_msg("dead --since %s: %d dead letters, want %d", cases[i].since, n, cases[i].dead);
		json_free(j, n);
		if (!n)
			assert_string_equal(out, ""); /* JSON lines: none */
		assert_int_equal(run("attempts --sqlite %s --since %s --json", ob->path, cases[i].since), 0);
		n = cases[i].dead ? json_lines(j, 4) : 0;
		if (n != cases[i].dead)
			fail_msg("attempts --since %s: %d attempts, want %d", cases[i].since, n, cases[i].dead);
		json_free(j, n);
	}
	assert_int_equal(run("requeue --sqlite %s --since -7d", ob->path), 0);
	assert_string_equal(out, "requeued 1 delivery\n");
	assert_int_equal(run("dead --sqlite %s --since -400d --json", ob->path), 0);
	assert_int_equal(json_lines(j, 4), 2);
	json_free(j, 2);
}

/* Usage errors: exit 2 and a message naming the argument. */
static void test_outbox_bad_arguments(void **state)
{
	outbox *ob = outbox_make(*state);
	static const struct { const char *args, *says; } cases[] = {
		{ "dead --sqlite %s --since yesterday", "--since \"yesterday\" is not a time" },
		{ "dead --sqlite %s --since -5x", "--since \"-5x\" is not a relative time" },
		{ "dead --sqlite %s --since -h", "--since \"-h\"" },
		{ "dead --sqlite %s --since 2026-13-01T00:00:00Z", "--since \"2026-13-01T00:00:00Z\" is not a valid" },
		{ "dead --sqlite %s --since 2026-02-30", "no such day" },
		{ "dead --sqlite %s --since 2026-11-22T10:00:00", "does not end in Z" },
		{ "dead --sqlite %s --since 2026-11-22T10:00:00+01:00", "UTC offset" },
		{ "dead --sqlite %s --since 1795341600", "seconds or milliseconds" },
		{ "dead --sqlite %s --since 0", "--since \"0\"" },
		{ "dead --sqlite %s --since", "--since needs a value" },
		{ "dead --sqlite %s --limit 0", "--limit takes a whole number from 1, not \"0\"" },
		{ "dead --sqlite %s --limit ten", "--limit takes a whole number from 1, not \"ten\"" },
		{ "dead --sqlite %s --endpoint -3", "--endpoint takes an endpoint id" },
		{ "attempts --sqlite %s --delivery 99999999999999999999999", "--delivery takes a delivery id" },
		{ "deliveries --sqlite %s --state lost", "--state is pending, delivered, dead or any, not \"lost\"" },
		{ "dead --sqlite %s --state dead", "--state does not apply" },
		{ "pending --sqlite %s --endpoint 1", "--endpoint does not apply" },
		{ "attempts --sqlite %s --body", "--body does not apply" },
		{ "dead --sqlite %s --frobnicate", "unknown option --frobnicate" },
		{ "dead --sqlite %s stray", "unexpected argument" },
		{ "dead --sqlite %s --pg dbname=x", "not both" },
		{ "dead --sqlite %s --pg-schema s", "--pg-schema goes with a PostgreSQL outbox" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = run(cases[i].args, ob->path);
		if (rc != 2 || !strstr(out, cases[i].says) || !strstr(out, "usage:"))
			fail_msg("`%s`: exit %d, wanted 2 and \"%s\":\n%s", cases[i].args, rc, cases[i].says, out);
	}
	assert_int_equal(run("dead"), 2);
	assert_non_null(strstr(out, "a store is needed"));
	/* What could be part of a conninfo is named, never echoed. */
	assert_int_equal(run("pending '--pg=host=127.0.0.1 password=%s'", DB_SECRET), 2);
	assert_non_null(strstr(out, "unknown option --pg"));
	assert_int_equal(run("pending --pg host=127.0.0.1 password=%s", DB_SECRET), 2);
	assert_non_null(strstr(out, "unexpected argument"));
	/* Help is not an error. */
	assert_int_equal(run("requeue --help"), 0);
	assert_non_null(strstr(out, "--delivery ID"));
	assert_int_equal(run("--help"), 0);
	assert_non_null(strstr(out, "flaghook dead"));
	assert_non_null(strstr(out, "FLAGHOOK_PG_CONNINFO"));
}

/* A path that is not an outbox: exit 1, a clear message, nothing created. */
static void test_outbox_missing_database(void **state)
{
	fx *fx_ = *state;
	char *dir = fx_->dir;
	snprintf(fx_->dir, sizeof(fx_->dir), "/tmp/flaghook-cli-missing-XXXXXX");
	if (!mkdtemp(fx_->dir)) {
		fx_->dir[0] = '\0';
		fail_msg("mkdtemp failed");
	}
	snprintf(fx_->files[0], sizeof(fx_->files[0]), "%s/outbox.db", dir); /* made below */
	char path[128];
	snprintf(path, sizeof(path), "%s/no-such-dir/outbox.db", dir);
	assert_int_equal(run("dead --sqlite %s", path), 1);
	assert_non_null(strstr(out, "cannot open the SQLite outbox"));
	assert_non_null(strstr(out, path));
	assert_non_null(strstr(out, "No such file or directory"));
	snprintf(path, sizeof(path), "%s/outbox.db", dir);
	assert_int_equal(run("pending --sqlite %s", path), 1);
	assert_non_null(strstr(out, "does not create an outbox"));
	struct stat sb;
	assert_int_not_equal(stat(path, &sb), 0);   /* a typo makes no empty outbox */
	assert_int_equal(run("requeue --sqlite %s --delivery 1", dir), 1);
	assert_non_null(strstr(out, "is a directory"));
	/* A file that is not a database. */
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	for (int i = 0; i < 512; i++)
		fputs("not a database ", f);
	fclose(f);
	assert_int_equal(run("dead --sqlite %s", path), 1);
	assert_non_null(strstr(out, "cannot open the SQLite outbox"));
	assert_true(strlen(out) > strlen("flaghook: dead: cannot open the SQLite outbox ") + strlen(path) + 4);
}

/* Single-quotes s for sh. */
static const char *shq(const char *s, char *buf, size_t size)
{
	size_t n = 0;
	buf[n++] = '\'';
	for (; *s && n + 5 < size; s++) {
		if (*s == '\'') {
			memcpy(buf + n, "'\\''", 4);
			n += 4;
		} else {
			buf[n++] = *s;
		}
	}
	buf[n++] = '\'';
	buf[n] = '\0';
	return buf;
}

/* PostgreSQL: never a password in the output, success or failure. */
static void test_outbox_pg(void **state)
{
	fx *f = *state;
	/* A closed port: the connection fails; the password is not shown. */
	char closed[256];
	snprintf(closed, sizeof(closed), "host=127.0.0.1 port=%d dbname=flaghook user=flaghook password="
	         DB_SECRET " connect_timeout=30", refused_port(f));
	char q[1024];
	assert_int_equal(run("pending --pg %s", shq(closed, q, sizeof(q))), 1);
	assert_non_null(strstr(out, "cannot open the PostgreSQL outbox"));
	assert_non_null(strstr(out, "--pg"));
	setenv("FLAGHOOK_PG_CONNINFO", closed, 1);
	assert_int_equal(run("dead"), 1);
	assert_non_null(strstr(out, "FLAGHOOK_PG_CONNINFO"));
	unsetenv("FLAGHOOK_PG_CONNINFO");

	const char *pg = getenv("FLAGHOOK_PG");
	if (!pg || !*pg) {
		printf("[  SKIP    ] PostgreSQL part of test_outbox_pg: FLAGHOOK_PG is not set "
		       "(tests/run.sh sets it when it can start a server)\n");
		skip();
	}
	/* The live server's password, so run() checks for it too. */
	const char *pw = strstr(pg, "password=");
	char password[128] = "";
	if (pw) {
		pw += strlen("password=");
		size_t n = strcspn(pw, " ");
		if (n >= sizeof(password))
			n = sizeof(password) - 1;
		memcpy(password, pw, n);
		password[n] = '\0';
		if (strlen(password) >= 6)
			setenv("FLAGHOOK_TEST_PG_PASSWORD", password, 1);
	}
	assert_int_equal(run("pending --pg %s", shq(pg, q, sizeof(q))), 0);
	assert_true(out[0] >= '0' && out[0] <= '9');
	assert_int_equal(out[strspn(out, "0123456789")], '\n');

	/* A schema of our own, filled through libflaghook-pg; dropped first (a
	 * run with this pid may have left it) and by teardown. */
	char schema[64];
	snprintf(schema, sizeof(schema), "flaghook_cli_%ld", (long)getpid());
	pg_drop_schema(schema);
	snprintf(f->pg_schema, sizeof(f->pg_schema), "%s", schema);
	flaghook_storage st = FLAGHOOK_STORAGE_INIT;
	flaghook_pg_options po = FLAGHOOK_PG_OPTIONS_INIT;
	po.conninfo = pg;
	po.schema = schema;
	if (flaghook_pg_open(&st, &po))
		fail_msg("pg open: %s", flaghook_last_error());
	uint64_t id = put_one(&st, 5, EV_A, FLAGHOOK_EVENT_FLAG_UPDATED, body_a, T0);
	record_one(&st, id, 5, EV_A, 1, FLAGHOOK_OUTCOME_GAVE_UP, 500, FLAGHOOK_ERRCLASS_HTTP, T0 + SEC, 20,
	           "HTTP 500", resp_a1);
	flaghook_storage_close(&st);

	assert_int_equal(run("dead --pg %s --pg-schema %s --json --body", q, schema), 0);
	cJSON *j[4];
	assert_int_equal(json_lines(j, 4), 1);
	assert_string_equal(jstr(j[0], "event_id"), EV_A);
	assert_string_equal(jstr(j[0], "body"), body_a);
	json_free(j, 1);
	assert_int_equal(run("attempts --pg %s --pg-schema %s --json", q, schema), 0);
	assert_int_equal(json_lines(j, 4), 1);
	assert_string_equal(jstr(j[0], "response"), resp_a1);
	json_free(j, 1);
	setenv("FLAGHOOK_PG_CONNINFO", pg, 1);
	assert_int_equal(run("requeue --pg-schema %s --endpoint 5", schema), 0);
	assert_string_equal(out, "requeued 1 delivery\n");
	assert_int_equal(run("pending --pg-schema %s", schema), 0);
	assert_string_equal(out, "1\n");
	unsetenv("FLAGHOOK_PG_CONNINFO");

	/* A wrong password is refused, and neither password is shown. */
	if (password[0]) {
		char wrong[1024];
		size_t at = (size_t)(pw - pg);
		snprintf(wrong, sizeof(wrong), "%.*s%s%s", (int)at, pg, "wrong-" DB_SECRET, pw + strlen(password));
		assert_int_equal(run("pending --pg %s", shq(wrong, q, sizeof(q))), 1);
		assert_non_null(strstr(out, "cannot open the PostgreSQL outbox"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sign_and_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_test_command, setup, teardown),
		cmocka_unit_test_setup_teardown(test_standard_scheme, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbox_dead_and_deliveries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbox_attempts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbox_requeue_and_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbox_relative_since, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbox_bad_arguments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbox_missing_database, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbox_pg, setup, teardown),
	};
	return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
