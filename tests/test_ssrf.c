/*
 * The SSRF guard end to end, inside a network namespace that has only a
 * loopback interface: whatever the guard fails to refuse cannot leave the
 * machine, and the test sees the attempt go through instead of being
 * refused.  The program re-runs itself under `unshare -rnm` (a new user,
 * network and mount namespace); inside, it brings `lo` up and mounts a
 * hosts file of its own over /etc/hosts, so that names resolve to the
 * addresses under test through the system's own resolver.
 *
 * Without unshare (or the right to use it) the tests skip, saying why;
 * with FLAGHOOK_REQUIRE_NETNS=1 (CI) that is a failure.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "flaghook.h"
#include "httpd.h"
#include "io/loop.h"
#include "net/guard.h"
#include "plugins/plugins.h"
#include "sample.h"

#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static char hosts_path[128];

/* ---- the namespace ---- */

static int lo_up(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
	if (!rc) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	close(fd);
	return rc;
}

/* Writes the namespace's /etc/hosts (the file mounted over it). */
static void hosts(const char *text)
{
	FILE *f = fopen(hosts_path, "w");
	if (!f)
		fail_msg("hosts file: %s", strerror(errno));
	fputs("127.0.0.1 localhost\n", f);
	fputs(text, f);
	fclose(f);
}

/* Only names, addresses and loopback: nothing here may leave. */
static const char base_hosts[] =
	"127.0.0.1 lo.test\n"
	"127.0.0.5 lo5.test\n"
	"::1 lo6.test\n"
	"0.0.0.0 zero.test\n"
	"169.254.169.254 metadata.test\n"
	"10.1.2.3 ten.test\n"
	"172.16.0.9 oneseventwo.test\n"
	"192.168.1.1 home.test\n"
	"100.64.0.1 cgnat.test\n"
	"fe80::1 ll6.test\n"
	"fd00::1 ula.test\n"
	"fc00::1 ula2.test\n"
	"224.0.0.1 mcast.test\n"
	"ff02::1 mcast6.test\n"
	"192.0.2.10 doc.test\n"
	"198.18.0.1 bench.test\n"
	"240.0.0.1 reserved.test\n"
	"::ffff:127.0.0.1 mapped.test\n"
	"::ffff:169.254.169.254 mappedmeta.test\n"
	"64:ff9b::a9fe:a9fe nat64.test\n"
	"64:ff9b::7f00:1 nat64lo.test\n"
	"2002:a9fe:a9fe::1 sixtofour.test\n"
	"2002:7f00:1::1 sixtofourlo.test\n"
	"93.184.216.34 mixed.test\n"
	"127.0.0.1 mixed.test\n"
	"93.184.216.34 public.test\n";

/* ---- helpers ---- */

typedef struct seen {
	pthread_mutex_t lock;
	int results;
	int errclass, status;
	char error[256];
} seen;

static void on_result(const flaghook_result *r, void *ud)
{
	seen *s = ud;
	pthread_mutex_lock(&s->lock);
	s->results++;
	s->errclass = r->errclass;
	s->status = r->status;
	snprintf(s->error, sizeof(s->error), "%s", r->error);
	pthread_mutex_unlock(&s->lock);
}

static flaghook_client *client(seen *s, int allow_private, const char *const *cidrs, size_t ncidrs,
                               const char *proxy)
{
	flaghook_client_options o = FLAGHOOK_CLIENT_OPTIONS_INIT;
	o.on_result = on_result;
	o.user_data = s;
	o.allow_private = allow_private;
	o.allow_cidrs = cidrs;
	o.allow_cidr_count = ncidrs;
	o.proxy = proxy;
	o.timeout_ms = 5000;
	flaghook_client *c = NULL;
	if (flaghook_client_new(&c, &o))
		fail_msg("client_new: %s", flaghook_last_error());
	return c;
}

static int add(flaghook_client *c, const char *url)
{
	flaghook_endpoint_options e = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	e.scope_id = 1;
	e.url = url;
	return flaghook_endpoint_add(c, NULL, &e);
}

/* The message names the class and never the URL or host. */
static void no_url_in(const char *msg, const char *url, const char *host)
{
	if (strstr(msg, url) || (host && strstr(msg, host)))
		fail_msg("the message repeats the URL or host: %s", msg);
}

/* ---- at flaghook_endpoint_add: IP literals and localhost ---- */

static void test_literals_refused_at_add(void **state)
{
	(void)state;
	static const struct { const char *url; const char *cls; } cases[] = {
		{ "http://127.0.0.1/", "loopback" },
		{ "http://127.1/", "loopback" },
		{ "http://2130706433/", "loopback" },
		{ "http://0x7f000001/", "loopback" },
		{ "http://017700000001/", "loopback" },
		{ "http://[::1]/", "loopback" },
		{ "http://localhost:8080/", "loopback" },
		{ "http://LocalHost./", "loopback" },
		{ "http://api.localhost/", "loopback" },
		{ "http://0.0.0.0/", "unspecified" },
		{ "http://[::]/", "unspecified" },
		{ "http://169.254.169.254/latest/meta-data/", "link-local" },
		{ "http://169.254.169.254./latest/meta-data/", "link-local" },
		{ "http://127.0.0.1./", "loopback" },
		{ "http://10.0.0.1/", "private" },
		{ "http://172.16.5.4/", "private" },
		{ "http://172.31.255.255/", "private" },
		{ "http://192.168.0.1/", "private" },
		{ "http://100.64.0.1/", "carrier-grade NAT" },
		{ "http://[fe80::1]/", "link-local" },
		{ "http://[fe80::1%25lo]/", "link-local" },
		{ "http://[fd00::1]/", "unique-local" },
		{ "http://[fc00::1]/", "unique-local" },
		{ "http://224.0.0.1/", "multicast" },
		{ "http://[ff02::1]/", "multicast" },
		{ "http://192.0.2.1/", "documentation" },
		{ "http://[2001:db8::1]/", "documentation" },
		{ "http://198.18.0.1/", "benchmarking" },
		{ "http://240.0.0.1/", "reserved" },
		{ "http://255.255.255.255/", "reserved" },
		{ "http://[::ffff:127.0.0.1]/", "loopback" },
		{ "http://[::ffff:169.254.169.254]/", "link-local" },
		{ "http://[::127.0.0.1]/", "loopback" },
		{ "http://[64:ff9b::a9fe:a9fe]/", "link-local" },
		{ "http://[64:ff9b::7f00:1]/", "loopback" },
		{ "http://[2002:a9fe:a9fe::1]/", "link-local" },
		{ "http://[2002:7f00:1::1]/", "loopback" },
		{ "https://user:pw@127.0.0.1:8443/x", "loopback" },
	};
	seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	flaghook_client *c = client(&s, 0, NULL, 0, NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = add(c, cases[i].url);
		if (rc != FLAGHOOK_EREFUSED)
			fail_msg("%s: endpoint_add gave %d (%s), not FLAGHOOK_EREFUSED", cases[i].url, rc,
			         flaghook_last_error());
		if (!strstr(flaghook_last_error(), cases[i].cls))
			fail_msg("%s: the message does not name %s: %s", cases[i].url, cases[i].cls, flaghook_last_error());
		no_url_in(flaghook_last_error(), cases[i].url, NULL);
		/* The form's check says the same without a client. */
		assert_int_equal(flaghook_url_check(NULL, cases[i].url), FLAGHOOK_EREFUSED);
	}
	/* Public literals and names are accepted here (names are judged when
	 * they are resolved). */
	assert_int_equal(add(c, "https://93.184.216.34/hook"), 0);
	assert_int_equal(add(c, "https://[2606:4700:4700::1111]/hook"), 0);
	assert_int_equal(add(c, "https://hooks.example.com/hook"), 0);
	assert_int_equal(flaghook_url_check(NULL, "https://93.184.216.34/hook"), 0);
	flaghook_client_free(c);
}

/* ---- when a name is resolved, before the transfer ---- */

static void test_names_refused_at_delivery(void **state)
{
	(void)state;
	hosts(base_hosts);
	th_server *srv = NULL;
	assert_int_equal(th_start(&srv, NULL, NULL), 0);
	static const struct { const char *host; const char *cls; } cases[] = {
		{ "lo.test", "loopback" }, { "lo5.test", "loopback" }, { "lo6.test", "loopback" },
		{ "zero.test", "unspecified" }, { "metadata.test", "link-local" }, { "ten.test", "private" },
		{ "oneseventwo.test", "private" }, { "home.test", "private" }, { "cgnat.test", "carrier-grade NAT" },
		{ "ll6.test", "link-local" }, { "ula.test", "unique-local" }, { "ula2.test", "unique-local" },
		{ "mcast.test", "multicast" }, { "mcast6.test", "multicast" }, { "doc.test", "documentation" },
		{ "bench.test", "benchmarking" }, { "reserved.test", "reserved" }, { "mapped.test", "loopback" },
		{ "mappedmeta.test", "link-local" }, { "nat64.test", "link-local" }, { "nat64lo.test", "loopback" },
		{ "sixtofour.test", "link-local" }, { "sixtofourlo.test", "loopback" },
		/* one public address beside a loopback one: the name is refused */
		{ "mixed.test", "loopback" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
		flaghook_client *c = client(&s, 0, NULL, 0, NULL);
		char url[128];
		snprintf(url, sizeof(url), "http://%s:%d/hook", cases[i].host, th_port(srv));
		assert_int_equal(add(c, url), 0); /* a name: judged when resolved */
		int rc = flaghook_emit(c, fh_sample_environment());
		if (rc != FLAGHOOK_EDELIVERY || s.errclass != FLAGHOOK_ERRCLASS_REFUSED)
			fail_msg("%s: emit %d, errclass %s (%s): not refused", cases[i].host, rc,
			         flaghook_errclass_name(s.errclass), s.error);
		if (!strstr(s.error, cases[i].cls))
			fail_msg("%s: the error does not name %s: %s", cases[i].host, cases[i].cls, s.error);
		no_url_in(s.error, url, cases[i].host);
		no_url_in(flaghook_last_error(), url, cases[i].host);
		assert_int_equal(flaghook_url_check(c, url), FLAGHOOK_EREFUSED);
		flaghook_client_free(c);
	}
	/* Nothing reached the loopback receiver the names pointed at. */
	assert_int_equal(th_count(srv), 0);
	th_stop(srv);
}

/* A refusal is final: never retried, whatever the policy. */
static void test_refusal_is_final(void **state)
{
	(void)state;
	hosts(base_hosts);
	seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	flaghook_retry_policy p = FLAGHOOK_RETRY_POLICY_INIT;
	p.kind = FLAGHOOK_RETRY_STANDARD;
	flaghook_client_options o = FLAGHOOK_CLIENT_OPTIONS_INIT;
	o.mode = FLAGHOOK_MODE_ASYNC;
	o.retry = &p;
	o.on_result = on_result;
	o.user_data = &s;
	flaghook_client *c = NULL;
	assert_int_equal(flaghook_client_new(&c, &o), 0);
	assert_int_equal(add(c, "http://metadata.test/latest/meta-data/"), 0);
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	assert_int_equal(flaghook_flush(c, 30000), 0); /* no retry waits */
	assert_int_equal(s.results, 1);
	assert_int_equal(s.errclass, FLAGHOOK_ERRCLASS_REFUSED);
	flaghook_endpoint_stats st = FLAGHOOK_ENDPOINT_STATS_INIT;
	assert_int_equal(flaghook_endpoint_stats_get(c, 1, &st), 0);
	assert_int_equal(st.gave_up, 1);
	assert_int_equal(st.retried, 0);
	flaghook_client_free(c);
}

/* DNS rebinding: a name that resolved to an allowed address and later to
 * a refused one is refused then, not followed. */
static void test_dns_rebinding(void **state)
{
	(void)state;
	th_server *srv = NULL;
	assert_int_equal(th_start(&srv, NULL, NULL), 0);
	static const char *const allow[] = { "127.0.0.1/32" };
	char url[128];
	snprintf(url, sizeof(url), "http://rebind.test:%d/hook", th_port(srv));
	hosts("127.0.0.1 rebind.test\n");
	seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	flaghook_client *c = client(&s, 0, allow, 1, NULL);
	assert_int_equal(add(c, url), 0);
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	assert_int_equal(th_count(srv), 1);
	flaghook_client_free(c);
	/* Now the same name points at the metadata address, and then at
	 * another loopback address the allow-list does not cover. */
	static const char *const rebound[] = { "169.254.169.254 rebind.test\n", "127.0.0.2 rebind.test\n" };
	for (int i = 0; i < 2; i++) {
		hosts(rebound[i]);
		memset(&s, 0, sizeof(s));
		pthread_mutex_init(&s.lock, NULL);
		c = client(&s, 0, allow, 1, NULL);
		assert_int_equal(add(c, url), 0);
		assert_int_equal(flaghook_emit(c, fh_sample_environment()), FLAGHOOK_EDELIVERY);
		assert_int_equal(s.errclass, FLAGHOOK_ERRCLASS_REFUSED);
		flaghook_client_free(c);
	}
	assert_int_equal(th_count(srv), 1);
	th_stop(srv);
}

/* The transport vets every address it connects to, whatever it was told:
 * a transfer pinned to a loopback address is refused by open_socket. */
static void done_cb(void *ctx)
{
	*(int *)ctx = 1;
}

static void test_connect_time_check(void **state)
{
	(void)state;
	th_server *srv = NULL;
	assert_int_equal(th_start(&srv, NULL, NULL), 0);
	fh_loop *loop = NULL;
	assert_int_equal(flaghook__loop_new(&loop, NULL), 0);
	fh_guard guard = { .on = true };
	fh_curl_config cfg = { NULL, loop, &guard, 0, FLAGHOOK_HTTP_DEFAULT, NULL };
	flaghook_transport t;
	assert_int_equal(flaghook__transport_curl(&t, &cfg), 0);
	char url[128];
	snprintf(url, sizeof(url), "http://pinned.test:%d/hook", th_port(srv));
	const char *addrs[] = { "127.0.0.1" };
	char error[256] = "", body[64];
	flaghook_response resp = { .version = FLAGHOOK_RESPONSE_VERSION, .error = error,
	                           .error_size = sizeof(error), .body = body, .body_size = sizeof(body) };
	flaghook_header h[] = { { "Content-Type", "application/json" } };
	flaghook_request req = { .version = FLAGHOOK_REQUEST_VERSION, .url = url, .headers = h, .header_count = 1,
	                         .body = "{}", .body_len = 2, .connect_timeout_ms = 5000, .timeout_ms = 5000,
	                         .addresses = addrs, .address_count = 1, .port = th_port(srv),
	                         .tls_min_version = FLAGHOOK_TLS_1_2 };
	int done = 0;
	assert_int_equal(t.start(&req, &resp, done_cb, &done, t.user_data), 0);
	for (int i = 0; i < 500 && !done; i++)
		flaghook__loop_run(loop, 20);
	assert_int_equal(done, 1);
	assert_int_equal(resp.errclass, FLAGHOOK_ERRCLASS_REFUSED);
	assert_non_null(strstr(error, "loopback"));
	assert_int_equal(th_count(srv), 0);
	/* Allowed, the same transfer goes through. */
	guard.policy.allow_private = true;
	done = 0;
	memset(&resp, 0, sizeof(resp));
	resp = (flaghook_response){ .version = FLAGHOOK_RESPONSE_VERSION, .error = error, .error_size = sizeof(error),
	                            .body = body, .body_size = sizeof(body) };
	assert_int_equal(t.start(&req, &resp, done_cb, &done, t.user_data), 0);
	for (int i = 0; i < 500 && !done; i++)
		flaghook__loop_run(loop, 20);
	assert_int_equal(resp.status, 200);
	assert_int_equal(th_count(srv), 1);
	t.destroy(t.user_data);
	flaghook__loop_free(loop);
	th_stop(srv);
}

/* allow_private lets intranet receivers through, but never multicast or
 * unspecified; an allow-list entry opens exactly its range. */
static void test_allow_list(void **state)
{
	(void)state;
	th_server *srv = NULL;
	assert_int_equal(th_start(&srv, NULL, NULL), 0);
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", th_port(srv));
	seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	static const char *const allow[] = { "127.0.0.1/32", "fd12:3456::/32" };
	flaghook_client *c = client(&s, 0, allow, 2, NULL);
	assert_int_equal(add(c, url), 0);
	assert_int_equal(add(c, "http://127.0.0.2/"), FLAGHOOK_EREFUSED);
	assert_int_equal(add(c, "http://[fd12:3456::9]/"), 0);
	assert_int_equal(add(c, "http://[fd12:3457::9]/"), FLAGHOOK_EREFUSED);
	assert_int_equal(add(c, "http://10.0.0.1/"), FLAGHOOK_EREFUSED);
	flaghook_client_free(c);
	c = client(&s, 1, NULL, 0, NULL);
	assert_int_equal(add(c, "http://10.0.0.1/"), 0);
	assert_int_equal(add(c, "http://169.254.169.254/"), 0);
	assert_int_equal(add(c, "http://224.0.0.1/"), FLAGHOOK_EREFUSED);
	assert_int_equal(add(c, "http://0.0.0.0/"), FLAGHOOK_EREFUSED);
	flaghook_client_free(c);
	/* Bad entries are refused by name when the client is made. */
	static const char *const bad[] = { "10.0.0.0/8", "10.0.0.1/8" };
	flaghook_client_options o = FLAGHOOK_CLIENT_OPTIONS_INIT;
	o.allow_cidrs = bad;
	o.allow_cidr_count = 2;
	assert_int_equal(flaghook_client_new(&c, &o), FLAGHOOK_EINVAL);
	assert_non_null(strstr(flaghook_last_error(), "allow_cidrs[1]"));
	th_stop(srv);
}

/* http_proxy from the environment is ignored; a proxy set in the options
 * gets the request (and does the egress filtering). */
static void test_proxies(void **state)
{
	(void)state;
	th_server *srv = NULL, *proxy = NULL;
	assert_int_equal(th_start(&srv, NULL, NULL), 0);
	assert_int_equal(th_start(&proxy, NULL, NULL), 0);
	char url[128], purl[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", th_port(srv));
	snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", th_port(proxy));
	setenv("http_proxy", purl, 1);
	setenv("HTTP_PROXY", purl, 1);
	setenv("all_proxy", purl, 1);
	seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	flaghook_client *c = client(&s, 1, NULL, 0, NULL);
	assert_int_equal(add(c, url), 0);
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), 0);
	assert_int_equal(th_count(srv), 1);
	assert_int_equal(th_count(proxy), 0);
	flaghook_client_free(c);
	unsetenv("http_proxy");
	unsetenv("HTTP_PROXY");
	unsetenv("all_proxy");
	/* The option: the request goes to the proxy, in absolute form, even for
	 * a name the guard would refuse (the proxy judges it). */
	hosts(base_hosts);
	c = client(&s, 0, NULL, 0, purl);
	assert_int_equal(add(c, "http://metadata.test/latest/"), 0);
	flaghook_emit(c, fh_sample_environment()); /* the test server answers 200 */
	assert_int_equal(th_count(proxy), 1);
	th_request r;
	assert_int_equal(th_get(proxy, 0, &r), 0);
	assert_string_equal(r.target, "http://metadata.test/latest/");
	th_request_free(&r);
	flaghook_client_free(c);
	th_stop(srv);
	th_stop(proxy);
}

/* With a proxy, no_proxy from the environment must not send any host
 * around it: the guard leaves the egress filtering to the proxy, so a
 * direct connection would be an unvetted one (cloud hosts list
 * 169.254.169.254 and 10.0.0.0/8 in NO_PROXY as a matter of course). */
static void test_no_proxy_ignored(void **state)
{
	(void)state;
	th_server *internal = NULL, *proxy = NULL;
	assert_int_equal(th_start(&internal, NULL, NULL), 0);
	assert_int_equal(th_start(&proxy, NULL, NULL), 0);
	char url[128], purl[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/latest/meta-data", th_port(internal));
	snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", th_port(proxy));
	static const char *const lists[] = { "127.0.0.1", "*", "localhost,127.0.0.0/8" };
	size_t sent = 0;
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		setenv("no_proxy", lists[i], 1);
		setenv("NO_PROXY", lists[i], 1);
		seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
		flaghook_client *c = client(&s, 0, NULL, 0, purl);
		assert_int_equal(add(c, url), 0);
		flaghook_emit(c, fh_sample_environment());
		sent++;
		flaghook_client_free(c);
		if (th_count(internal) != 0)
			fail_msg("no_proxy=%s sent a request around the proxy", lists[i]);
		assert_int_equal(th_count(proxy), sent);
	}
	unsetenv("no_proxy");
	unsetenv("NO_PROXY");
	th_stop(internal);
	th_stop(proxy);
}

/* A proxy's credentials are a secret: not in any error, whether the
 * proxy is refused at client_new or fails at delivery. */
static void test_proxy_credentials_never_shown(void **state)
{
	(void)state;
	static const char *const bad[] = { "foo://user:s3cret@127.0.0.1:1", "http://user:s3cret@[::1:1",
	                                   "user:s3cret@127.0.0.1:1", "http://user:s3cret@/" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		flaghook_client_options o = FLAGHOOK_CLIENT_OPTIONS_INIT;
		o.proxy = bad[i];
		flaghook_client *c = NULL;
		assert_int_equal(flaghook_client_new(&c, &o), FLAGHOOK_EINVAL);
		assert_null(c);
		assert_non_null(strstr(flaghook_last_error(), "proxy"));
		if (strstr(flaghook_last_error(), "s3cret"))
			fail_msg("%s: the error shows the password: %s", bad[i], flaghook_last_error());
	}
	/* A good proxy that is not listening: the failure names no password. */
	th_server *srv = NULL;
	assert_int_equal(th_start(&srv, NULL, NULL), 0);
	int closed = th_port(srv);
	th_stop(srv);
	char purl[128];
	snprintf(purl, sizeof(purl), "http://us%%65r:s3cret@127.0.0.1:%d", closed);
	seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	flaghook_client *c = client(&s, 0, NULL, 0, purl);
	assert_int_equal(add(c, "http://hooks.example.test/"), 0);
	assert_int_equal(flaghook_emit(c, fh_sample_environment()), FLAGHOOK_EDELIVERY);
	assert_null(strstr(flaghook_last_error(), "s3cret"));
	char last[512];
	flaghook_client_last_error(c, last, sizeof(last));
	assert_null(strstr(last, "s3cret"));
	assert_int_equal(s.results, 1);
	assert_int_equal(s.errclass, FLAGHOOK_ERRCLASS_CONNECT);
	assert_null(strstr(s.error, "s3cret"));
	flaghook_client_free(c);
}

/* ---- running inside the namespace ---- */

static int in_namespace(void)
{
	char dir[] = "/tmp/flaghook-ssrf-XXXXXX";
	if (!mkdtemp(dir))
		return -1;
	snprintf(hosts_path, sizeof(hosts_path), "%s/hosts", dir);
	FILE *f = fopen(hosts_path, "w");
	if (!f)
		return -1;
	fputs("127.0.0.1 localhost\n", f);
	fclose(f);
	if (lo_up() != 0) {
		fprintf(stderr, "test_ssrf: cannot bring lo up: %s\n", strerror(errno));
		return -1;
	}
	if (mount(hosts_path, "/etc/hosts", NULL, MS_BIND, NULL) != 0) {
		fprintf(stderr, "test_ssrf: cannot mount over /etc/hosts: %s\n", strerror(errno));
		return -1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_literals_refused_at_add),
		cmocka_unit_test(test_names_refused_at_delivery),
		cmocka_unit_test(test_refusal_is_final),
		cmocka_unit_test(test_dns_rebinding),
		cmocka_unit_test(test_connect_time_check),
		cmocka_unit_test(test_allow_list),
		cmocka_unit_test(test_proxies),
		cmocka_unit_test(test_no_proxy_ignored),
		cmocka_unit_test(test_proxy_credentials_never_shown),
	};
	int rc = cmocka_run_group_tests_name("ssrf", tests, NULL, NULL);
	umount2("/etc/hosts", MNT_DETACH);
	unlink(hosts_path);
	rmdir(dir);
	return rc;
}

int main(int argc, char **argv)
{
	(void)argc;
	if (getenv("FLAGHOOK_SSRF_IN_NETNS"))
		return in_namespace();
	/* Can we make a namespace here at all? */
	int probe = system("unshare -rnm true >/dev/null 2>&1");
	if (probe != 0) {
		bool required = getenv("FLAGHOOK_REQUIRE_NETNS") && !strcmp(getenv("FLAGHOOK_REQUIRE_NETNS"), "1");
		printf("[  SKIP    ] test_ssrf: `unshare -rnm` is not available or not permitted here; the guard's "
		       "end-to-end tests need a network namespace with only lo\n");
		if (required) {
			printf("[  FAILED  ] 1 test(s), listed below:\n[  FAILED  ] test_ssrf (FLAGHOOK_REQUIRE_NETNS=1)\n");
			return 1;
		}
		return 0;
	}
	setenv("FLAGHOOK_SSRF_IN_NETNS", "1", 1);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		execlp("unshare", "unshare", "-rnm", "--", argv[0], (char *)NULL);
		_exit(127);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
