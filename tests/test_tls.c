/*
 * TLS options against real TLS servers on loopback (tests/support/httpd.c,
 * mbedTLS): the minimum version enforced against a TLS 1.0/1.1-only
 * server, mutual TLS accepted and refused, a CA per client and per
 * endpoint (file and directory), and every file checked when it is set.
 * The certificates are made for each run (th_make_pki: a CA, a server
 * certificate for 127.0.0.1, client certificates from it and from a
 * second CA).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "flaghook.h"
#include "httpd.h"
#include "sample.h"

#include <curl/curl.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEY_PASSWORD "tls-key-password-123"

static char dir[64];

static const char *pki(const char *name)
{
	static char paths[8][160];
	static int next;
	char *p = paths[next++ % 8];
	snprintf(p, sizeof(paths[0]), "%s/%s", dir, name);
	return p;
}

typedef struct seen {
	pthread_mutex_t lock;
	int results, delivered;
	int status, errclass;
	char error[256];
} seen;

static void on_result(const flaghook_result *r, void *ud)
{
	seen *s = ud;
	pthread_mutex_lock(&s->lock);
	s->results++;
	s->delivered += r->outcome == FLAGHOOK_OUTCOME_DELIVERED;
	s->status = r->status;
	s->errclass = r->errclass;
	snprintf(s->error, sizeof(s->error), "%s", r->error);
	pthread_mutex_unlock(&s->lock);
}

static flaghook_client *client(seen *s, const char *ca_file, const char *ca_path, int32_t tls_min)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	flaghook_client_options o = FLAGHOOK_CLIENT_OPTIONS_INIT;
	o.allow_private = 1; /* the receivers are on loopback */
	o.on_result = on_result;
	o.user_data = s;
	o.ca_file = ca_file;
	o.ca_path = ca_path;
	o.tls_min_version = tls_min;
	o.timeout_ms = 30000;
	flaghook_client *c = NULL;
	if (flaghook_client_new(&c, &o))
		fail_msg("client_new: %s", flaghook_last_error());
	return c;
}

static flaghook_endpoint_options endpoint(th_server *srv, char *url, size_t n)
{
	snprintf(url, n, "https://127.0.0.1:%d/hook", th_port(srv));
	flaghook_endpoint_options e = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	e.scope_id = 1;
	e.url = url;
	return e;
}

static th_server *server(int min_minor, int max_minor, const char *client_ca)
{
	th_tls_options o = { pki("server.pem"), pki("server.key"), client_ca, min_minor, max_minor };
	th_server *srv = NULL;
	if (th_start_tls_opts(&srv, &o, NULL, NULL))
		fail_msg("could not start the TLS test server");
	return srv;
}

/* One SYNC emit to `e`; the result in *s. */
static int deliver(flaghook_client *c, flaghook_endpoint_options *e)
{
	uint64_t id;
	if (flaghook_endpoint_add(c, &id, e))
		fail_msg("endpoint_add: %s", flaghook_last_error());
	int rc = flaghook_emit(c, fh_sample_environment());
	assert_int_equal(flaghook_endpoint_remove(c, id), 0);
	return rc;
}

static int setup_pki(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/flaghook-tls-XXXXXX");
	if (!mkdtemp(dir) || th_make_pki(dir))
		return -1;
	/* The client key encrypted, for client_key_password. */
	char cmd[2048];
	snprintf(cmd, sizeof(cmd),
	         "openssl ec -in %s/client.key -aes256 -passout pass:" KEY_PASSWORD " -out %s/client-enc.key "
	         ">/dev/null 2>&1 && openssl pkey -in %s/client.key -aes256 -passout pass:" KEY_PASSWORD
	         " -out %s/client-p8.key >/dev/null 2>&1 && mkdir -p %s/capath && cp %s/ca.pem %s/capath/ && "
	         "openssl rehash %s/capath >/dev/null 2>&1 && printf 'not a certificate\\n' > %s/junk.pem",
	         dir, dir, dir, dir, dir, dir, dir, dir, dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int teardown_pki(void **state)
{
	(void)state;
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- the minimum version ---- */

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

/* libcurl alone, with no version set: under the permissive OpenSSL
 * configuration main() installs, it speaks TLS 1.0 and 1.1, which shows
 * both that the server speaks only those and that only the library's
 * own minimum can stop a client here. */
static long legacy_probe(int port)
{
	CURL *h = curl_easy_init();
	char url[64];
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", port);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CAINFO, pki("ca.pem"));
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{}");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
	long status = 0;
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	return status;
}

static void test_minimum_version(void **state)
{
	(void)state;
	seen s;
	char url[96];
	/* A server that speaks TLS 1.0 and 1.1 only. */
	th_server *old = server(0, 1, NULL);
	assert_int_equal(legacy_probe(th_port(old)), 200);
	size_t before = th_count(old);
	flaghook_client *c = client(&s, pki("ca.pem"), NULL, 0);
	flaghook_endpoint_options e = endpoint(old, url, sizeof(url));
	assert_int_equal(deliver(c, &e), FLAGHOOK_EDELIVERY);
	assert_int_equal(s.status, 0);
	if (s.errclass != FLAGHOOK_ERRCLASS_TLS)
		fail_msg("a TLS 1.1 server gave %s (%s), not a TLS failure", flaghook_errclass_name(s.errclass), s.error);
	assert_int_equal(th_count(old), before); /* no request got through */
	flaghook_client_free(c);
	th_stop(old);

	/* TLS 1.2 is enough by default, not when the client asks for 1.3. */
	th_server *tls12 = server(2, 2, NULL);
	c = client(&s, pki("ca.pem"), NULL, 0);
	e = endpoint(tls12, url, sizeof(url));
	assert_int_equal(deliver(c, &e), 0);
	flaghook_client_free(c);
	c = client(&s, pki("ca.pem"), NULL, FLAGHOOK_TLS_1_3);
	e = endpoint(tls12, url, sizeof(url));
	assert_int_equal(deliver(c, &e), FLAGHOOK_EDELIVERY);
	assert_int_equal(s.errclass, FLAGHOOK_ERRCLASS_TLS);
	assert_int_equal(th_count(tls12), 1);
	flaghook_client_free(c);
	th_stop(tls12);
	/* Nothing older than 1.2 can be asked for. */
	flaghook_client_options o = FLAGHOOK_CLIENT_OPTIONS_INIT;
	o.tls_min_version = 0x0302;
	assert_int_equal(flaghook_client_new(&c, &o), FLAGHOOK_EINVAL);
	assert_non_null(strstr(flaghook_last_error(), "tls_min_version"));
}

/* ---- mutual TLS ---- */

static void test_mutual_tls(void **state)
{
	(void)state;
	seen s;
	char url[96];
	th_server *srv = server(0, 0, pki("ca.pem"));
	flaghook_client *c = client(&s, pki("ca.pem"), NULL, 0);
	/* The right client certificate: accepted, and the server saw it. */
	flaghook_endpoint_options e = endpoint(srv, url, sizeof(url));
	e.client_cert = pki("client.pem");
	e.client_key = pki("client.key");
	assert_int_equal(deliver(c, &e), 0);
	assert_int_equal(th_count(srv), 1);
	th_request r;
	assert_int_equal(th_get(srv, 0, &r), 0);
	assert_string_equal(th_client_cn(&r), "flaghook-test-client");
	th_request_free(&r);
	/* An encrypted key with its password (traditional PEM encryption,
	 * which the check at endpoint_add can decrypt too). */
	e.client_key = pki("client-enc.key");
	e.client_key_password = KEY_PASSWORD;
	assert_int_equal(deliver(c, &e), 0);
	assert_int_equal(th_count(srv), 2);
	/* PKCS#8 with AES: mbedTLS cannot decrypt it, so endpoint_add checks
	 * only that it is there; the handshake checks the password. */
	e.client_key = pki("client-p8.key");
	assert_int_equal(deliver(c, &e), 0);
	assert_int_equal(th_count(srv), 3);
	/* A new client: no connection to reuse, a handshake of its own. */
	flaghook_client_free(c);
	c = client(&s, pki("ca.pem"), NULL, 0);
	e.client_key_password = "wrong-password";
	assert_int_equal(deliver(c, &e), FLAGHOOK_EDELIVERY);
	assert_int_equal(s.errclass, FLAGHOOK_ERRCLASS_TLS);
	assert_null(strstr(s.error, "wrong-password"));
	assert_int_equal(th_count(srv), 3);
	/* No certificate, or one from another CA: refused in the handshake. */
	e = endpoint(srv, url, sizeof(url));
	assert_int_equal(deliver(c, &e), FLAGHOOK_EDELIVERY);
	assert_int_equal(s.status, 0);
	assert_true(s.errclass == FLAGHOOK_ERRCLASS_TLS || s.errclass == FLAGHOOK_ERRCLASS_RECV);
	e.client_cert = pki("other-client.pem");
	e.client_key = pki("other-client.key");
	assert_int_equal(deliver(c, &e), FLAGHOOK_EDELIVERY);
	assert_int_equal(s.status, 0);
	assert_true(s.errclass == FLAGHOOK_ERRCLASS_TLS || s.errclass == FLAGHOOK_ERRCLASS_RECV);
	assert_int_equal(th_count(srv), 3);
	flaghook_client_free(c);
	th_stop(srv);
}

/* ---- certificate authorities ---- */

static void test_ca_per_client_and_endpoint(void **state)
{
	(void)state;
	seen s;
	char url[96];
	th_server *srv = server(0, 0, NULL);
	/* The client trusts the wrong CA: verification fails... */
	flaghook_client *c = client(&s, pki("other-ca.pem"), NULL, 0);
	flaghook_endpoint_options e = endpoint(srv, url, sizeof(url));
	assert_int_equal(deliver(c, &e), FLAGHOOK_EDELIVERY);
	assert_int_equal(s.errclass, FLAGHOOK_ERRCLASS_TLS);
	/* ...unless the endpoint names the right one. */
	e.ca_file = pki("ca.pem");
	assert_int_equal(deliver(c, &e), 0);
	flaghook_client_free(c);
	/* A directory of CAs (c_rehash'd), per client and per endpoint. */
	c = client(&s, NULL, pki("capath"), 0);
	e = endpoint(srv, url, sizeof(url));
	assert_int_equal(deliver(c, &e), 0);
	flaghook_client_free(c);
	c = client(&s, pki("other-ca.pem"), NULL, 0);
	e = endpoint(srv, url, sizeof(url));
	e.ca_path = pki("capath");
	e.ca_file = pki("ca.pem");
	assert_int_equal(deliver(c, &e), 0);
	/* And the system's CAs alone do not know this CA. */
	flaghook_client_free(c);
	c = client(&s, NULL, NULL, 0);
	e = endpoint(srv, url, sizeof(url));
	assert_int_equal(deliver(c, &e), FLAGHOOK_EDELIVERY);
	assert_int_equal(s.errclass, FLAGHOOK_ERRCLASS_TLS);
	assert_int_equal(th_count(srv), 3);
	flaghook_client_free(c);
	th_stop(srv);
}

/* ---- checked when set ---- */

static void expect_add(flaghook_client *c, flaghook_endpoint_options *e, int code, const char *words)
{
	int rc = flaghook_endpoint_add(c, NULL, e);
	if (rc != code)
		fail_msg("endpoint_add: want %d got %d (%s)", code, rc, flaghook_last_error());
	if (words && !strstr(flaghook_last_error(), words))
		fail_msg("message '%s' lacks '%s'", flaghook_last_error(), words);
	if (strstr(flaghook_last_error(), KEY_PASSWORD))
		fail_msg("the message shows the key's password");
}

static void test_checked_when_set(void **state)
{
	(void)state;
	seen s;
	flaghook_client *c = client(&s, NULL, NULL, 0);
	flaghook_endpoint_options e = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	e.scope_id = 1;
	e.url = "https://hooks.example.com/x";
	e.client_cert = "/nonexistent/client.pem";
	e.client_key = pki("client.key");
	expect_add(c, &e, FLAGHOOK_EINVAL, "client_cert /nonexistent/client.pem: No such file");
	e.client_cert = pki("client.pem");
	e.client_key = NULL;
	expect_add(c, &e, FLAGHOOK_EINVAL, "come together");
	e.client_key = pki("other-client.key");
	expect_add(c, &e, FLAGHOOK_EINVAL, "does not match");
	e.client_key = pki("client-enc.key");
	expect_add(c, &e, FLAGHOOK_EINVAL, "client_key_password");
	e.client_key_password = "wrong-password";
	expect_add(c, &e, FLAGHOOK_EINVAL, "cannot be loaded");
	e.client_key_password = KEY_PASSWORD;
	expect_add(c, &e, 0, NULL);
	e.client_cert = pki("junk.pem");
	e.client_key = pki("client.key");
	e.client_key_password = NULL;
	expect_add(c, &e, FLAGHOOK_EINVAL, "not a PEM certificate");
	e.client_cert = e.client_key = NULL;
	e.ca_file = pki("junk.pem");
	expect_add(c, &e, FLAGHOOK_EINVAL, "holds no PEM certificate");
	e.ca_file = NULL;
	e.ca_path = pki("ca.pem");
	expect_add(c, &e, FLAGHOOK_EINVAL, "not a directory");
	flaghook_client_free(c);
	/* The client's own CA settings, at flaghook_client_new. */
	flaghook_client_options o = FLAGHOOK_CLIENT_OPTIONS_INIT;
	o.ca_path = "/nonexistent/capath";
	assert_int_equal(flaghook_client_new(&c, &o), FLAGHOOK_EINVAL);
	assert_non_null(strstr(flaghook_last_error(), "ca_path /nonexistent/capath"));
	o.ca_path = NULL;
	o.ca_file = pki("junk.pem");
	assert_int_equal(flaghook_client_new(&c, &o), FLAGHOOK_EINVAL);
	assert_non_null(strstr(flaghook_last_error(), "holds no PEM certificate"));
}

/* An OpenSSL configuration as permissive as the one the review found
 * (TLS 1.0 allowed, security level 0), for this process: written before
 * libcurl starts OpenSSL, which reads it then. */
static char openssl_conf[64];

static void permissive_openssl(void)
{
	snprintf(openssl_conf, sizeof(openssl_conf), "/tmp/flaghook-tls-openssl-%ld.cnf", (long)getpid());
	FILE *f = fopen(openssl_conf, "w");
	if (!f)
		return;
	fputs("openssl_conf = openssl_init\n[openssl_init]\nssl_conf = ssl_sect\n[ssl_sect]\n"
	      "system_default = system_default_sect\n[system_default_sect]\nMinProtocol = TLSv1\n"
	      "CipherString = DEFAULT@SECLEVEL=0\n", f);
	fclose(f);
	setenv("OPENSSL_CONF", openssl_conf, 1);
}

int main(void)
{
	permissive_openssl();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimum_version),
		cmocka_unit_test(test_mutual_tls),
		cmocka_unit_test(test_ca_per_client_and_endpoint),
		cmocka_unit_test(test_checked_when_set),
	};
	int rc = cmocka_run_group_tests_name("tls", tests, setup_pki, teardown_pki);
	curl_global_cleanup();
	unlink(openssl_conf);
	return rc;
}
