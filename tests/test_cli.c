/* The flaghook command, run as a user would, against a loopback receiver. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "flaghook.h"
#include "httpd.h"
#include "vectors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECRET "cli-secret-7f3a"

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
	return WEXITSTATUS(status);
}

static void test_sign_and_verify(void **state)
{
	(void)state;
	cJSON *root = vec_load("flagsmith-signature.json");
	cJSON *c;
	char path[] = "/tmp/flaghook-cli-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
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
	char spath[] = "/tmp/flaghook-secret-XXXXXX";
	fd = mkstemp(spath);
	assert_int_equal(write(fd, "random_key\n", 11), 11);
	close(fd);
	FILE *f = fopen(path, "wb");
	fputs("{\"key\": \"value\"}", f);
	fclose(f);
	assert_int_equal(run("sign --secret-file %s %s", spath, path), 0);
	assert_string_equal(out, "e8af67a174c950742e45136491466739cf74a634c608fda0fd487732c2a8204f\n");
	unlink(spath);
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
	unlink(path);
	cJSON_Delete(root);
}

/* `flaghook test` sends exactly the golden sample, signed, and reports
 * like Flagsmith's button. */
static void test_test_command(void **state)
{
	(void)state;
	th_server *s = NULL;
	assert_int_equal(th_start(&s, NULL, NULL), 0);
	int port = th_port(s);
	static const struct { const char *scope, *golden; } scopes[] = {
		{ "environment", "golden/sample_environment.json" },
		{ "organisation", "golden/sample_organisation.json" },
	};
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(run("test http://127.0.0.1:%d/w --secret %s --scope %s", port, SECRET, scopes[i].scope), 0);
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
	assert_int_equal(run("test http://127.0.0.1:%d/w", port), 0);
	th_request r;
	th_get(s, 2, &r);
	assert_null(th_header(&r, "X-Flagsmith-Signature"));
	assert_non_null(strstr(r.body, "\"event_type\": \"FLAG_UPDATED\""));
	th_request_free(&r);

	th_reply fail[] = { { TH_RESPOND, 500, NULL, "nope", 0, 0 } };
	th_script(s, fail, 1);
	assert_int_equal(run("test http://127.0.0.1:%d/w --secret %s", port, SECRET), 1);
	assert_non_null(strstr(out, "Webhook returned invalid status: HTTP 500"));
	th_stop(s);

	assert_int_equal(run("test http://127.0.0.1:%d/w --secret %s --timeout 2", port, SECRET), 1);
	assert_non_null(strstr(out, "Could not connect to webhook URL"));
	assert_int_equal(run("test ftp://127.0.0.1/ --secret %s", SECRET), 2);
	assert_non_null(strstr(out, "http:// or https://"));
	assert_int_equal(run("test http://127.0.0.1:1/ --scope galaxy"), 2);
	assert_int_equal(run("test"), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_and_verify),
		cmocka_unit_test(test_test_command),
	};
	return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
