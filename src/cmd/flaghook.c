/*
 * flaghook(1): sign and verify bodies, send Flagsmith's test webhook, and
 * inspect and replay an outbox (store.c).  Secrets come from --secret,
 * --secret-file or FLAGHOOK_SECRET, a PostgreSQL conninfo from --pg or
 * FLAGHOOK_PG_CONNINFO; none is ever printed.
 */
#include "flaghook.h"
#include "sample.h"
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXIT_MISMATCH 1
#define EXIT_USAGE 2
#define MAX_INPUT (256u * 1024 * 1024)

static const char usage_head[] =
	"usage: flaghook sign   [--secret S | --secret-file PATH] [FILE]\n"
	"       flaghook verify [--secret S | --secret-file PATH] --signature HEX [FILE]\n"
	"       flaghook sign   --scheme standard --standard-secret whsec_... --id ID --timestamp T [FILE]\n"
	"       flaghook verify --scheme standard --standard-secret whsec_... [--standard-secret ...]\n"
	"                       --id ID --timestamp T --signature 'v1,...' [--tolerance SECONDS] [FILE]\n"
	"       flaghook test URL [--secret S | --secret-file PATH] [--standard-secret whsec_... ...]\n"
	"                     [--scope environment|organisation] [--timeout SECONDS] [--ca-file PATH]\n"
	"                     [--allow-private]\n";
static const char usage_tail[] =
	"       flaghook --version | --help\n"
	"The secret may also come from the environment variable FLAGHOOK_SECRET, a Standard\n"
	"Webhooks secret from FLAGHOOK_STANDARD_SECRET.\n"
	"Exit status: 0 success, 1 failure (a mismatch, a failed test, a store error), 2 usage.\n";

static void print_usage(FILE *f)
{
	fputs(usage_head, f);
	fputs(fh_store_usage, f);
	fputs(usage_tail, f);
}

typedef struct args {
	const char *secret;
	const char *secret_source;  /* the option it came from, for messages */
	char *secret_owned;
	const char *signature;
	const char *scope;
	const char *file;
	const char *url;
	const char *ca_file;
	long timeout_s;
	int allow_private;
	int standard;               /* --scheme standard */
	const char *standard_secrets[FLAGHOOK_STANDARD_SECRETS_MAX];
	size_t nstandard;
	const char *msg_id;
	const char *timestamp;
	long tolerance_s;
} args;

static int fail_usage(const char *what)
{
	fprintf(stderr, "flaghook: %s\n", what);
	print_usage(stderr);
	return EXIT_USAGE;
}

/* Reads a whole stream; NULL on error (errno set). */
static char *read_all(FILE *f, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		n += fread(buf + n, 1, cap - n, f);
		if (n < cap)
			break;
		if (cap >= MAX_INPUT) {
			free(buf);
			errno = EFBIG;
			return NULL;
		}
		char *grown = realloc(buf, cap * 2);
		if (!grown)
			free(buf);
		buf = grown;
		cap *= 2;
	}
	if (buf && ferror(f)) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = (!path || !strcmp(path, "-")) ? stdin : fopen(path, "rb");
	if (!f)
		return NULL;
	char *data = read_all(f, len);
	if (f != stdin)
		fclose(f);
	return data;
}

static int parse(int argc, char **argv, int first, args *a)
{
	for (int i = first; i < argc; i++) {
		const char *arg = argv[i];
		const char *next = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(arg, "--secret") && next) {
			a->secret = next, a->secret_source = "--secret", i++;
		} else if (!strcmp(arg, "--secret-file") && next) {
			size_t len;
			free(a->secret_owned);
			a->secret_owned = read_file(next, &len);
			if (!a->secret_owned) {
				fprintf(stderr, "flaghook: --secret-file %s: %s\n", next, strerror(errno));
				return EXIT_USAGE;
			}
			/* A trailing newline is the editor's, not the secret's. */
			while (len && (a->secret_owned[len - 1] == '\n' || a->secret_owned[len - 1] == '\r'))
				len--;
			a->secret_owned[len] = '\0';
			a->secret = a->secret_owned;
			a->secret_source = "--secret-file (a newline alone counts as empty)";
			i++;
		} else if (!strcmp(arg, "--scheme") && next) {
			if (!strcmp(next, "standard"))
				a->standard = 1;
			else if (strcmp(next, "flagsmith"))
				return fail_usage("--scheme is flagsmith (X-Flagsmith-Signature) or standard (Standard Webhooks)");
			i++;
		} else if (!strcmp(arg, "--standard-secret") && next) {
			if (a->nstandard == FLAGHOOK_STANDARD_SECRETS_MAX)
				return fail_usage("too many --standard-secret");
			a->standard_secrets[a->nstandard++] = next, i++;
		} else if (!strcmp(arg, "--id") && next) {
			a->msg_id = next, i++;
		} else if (!strcmp(arg, "--timestamp") && next) {
			a->timestamp = next, i++;
		} else if (!strcmp(arg, "--tolerance") && next) {
			char *end;
			a->tolerance_s = strtol(next, &end, 10);
			if (*end || a->tolerance_s <= 0 || a->tolerance_s > 86400 * 366)
				return fail_usage("--tolerance takes seconds, 1 to 31622400");
			i++;
		} else if (!strcmp(arg, "--signature") && next) {
			a->signature = next, i++;
		} else if (!strcmp(arg, "--scope") && next) {
			a->scope = next, i++;
		} else if (!strcmp(arg, "--allow-private")) {
			a->allow_private = 1;
		} else if (!strcmp(arg, "--ca-file") && next) {
			a->ca_file = next, i++;
		} else if (!strcmp(arg, "--timeout") && next) {
			char *end;
			a->timeout_s = strtol(next, &end, 10);
			if (*end || a->timeout_s <= 0 || a->timeout_s > 3600)
				return fail_usage("--timeout takes seconds, 1 to 3600");
			i++;
		} else if (arg[0] == '-' && arg[1]) {
			fprintf(stderr, "flaghook: unknown or incomplete option %s\n", arg);
			return EXIT_USAGE;
		} else if (!a->url && first == 2 && !strcmp(argv[1], "test")) {
			a->url = arg;
		} else if (!a->file) {
			a->file = arg;
		} else {
			return fail_usage("too many arguments");
		}
	}
	if (!a->secret && (a->secret = getenv("FLAGHOOK_SECRET")))
		a->secret_source = "FLAGHOOK_SECRET";
	if (!a->nstandard && getenv("FLAGHOOK_STANDARD_SECRET"))
		a->standard_secrets[a->nstandard++] = getenv("FLAGHOOK_STANDARD_SECRET");
	/* An empty key signs nothing: anybody can make that HMAC.  Refuse it
	 * rather than print "signature OK" or send an unsigned request. */
	if (a->secret && !a->secret[0]) {
		fprintf(stderr, "flaghook: the secret from %s is empty\n", a->secret_source);
		return EXIT_USAGE;
	}
	return 0;
}

/* A whole decimal number of seconds, as the webhook-timestamp header has it. */
static int parse_timestamp(const char *s, int64_t *out)
{
	if (!s || !*s || strlen(s) > 18)
		return -1;
	int64_t v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
	}
	*out = v;
	return 0;
}

/* What each scheme needs before a body is read; 0 or a usage exit. */
static int flagsmith_usage(const args *a, int verify)
{
	if (!a->secret)
		return fail_usage("a secret is needed: --secret, --secret-file or FLAGHOOK_SECRET");
	if (verify && !a->signature)
		return fail_usage("verify needs --signature HEX");
	return 0;
}

static int standard_usage(const args *a, int verify, int64_t *ts)
{
	if (!a->nstandard)
		return fail_usage("--scheme standard needs --standard-secret whsec_... (or FLAGHOOK_STANDARD_SECRET)");
	if (!a->msg_id || !a->timestamp)
		return fail_usage("--scheme standard needs --id (webhook-id) and --timestamp (webhook-timestamp)");
	if (parse_timestamp(a->timestamp, ts))
		return fail_usage("--timestamp is whole seconds since 1970, digits only");
	if (!verify && a->nstandard > 1)
		return fail_usage("sign takes one --standard-secret (verify takes several, for a rotation)");
	if (verify && !a->signature)
		return fail_usage("verify needs --signature 'v1,...' (the webhook-signature header)");
	return 0;
}

/* sign prints the X-Flagsmith-Signature value, or with --scheme standard
 * the webhook-signature value; verify checks one (Standard Webhooks:
 * against every secret given, a rotation, within --tolerance of now). */
static int cmd_sign(args *a, int verify)
{
	int64_t ts = 0;
	int rc = a->standard ? standard_usage(a, verify, &ts) : flagsmith_usage(a, verify);
	if (rc)
		return rc;
	size_t len = 0;
	char *body = read_file(a->file, &len);
	if (!body) {
		fprintf(stderr, "flaghook: %s: %s\n", a->file ? a->file : "stdin", strerror(errno));
		return EXIT_USAGE;
	}
	char sig[256];
	if (verify && a->standard)
		rc = flaghook_standard_verify(a->standard_secrets, a->nstandard, a->msg_id, a->timestamp, a->signature,
		                              body, len, (int64_t)time(NULL), a->tolerance_s);
	else if (verify)
		rc = flaghook_verify(a->secret, strlen(a->secret), body, len, a->signature, strlen(a->signature));
	else if (a->standard)
		rc = flaghook_standard_sign(sig, sizeof(sig), a->standard_secrets[0], a->msg_id, ts, body, len);
	else
		rc = flaghook_sign(sig, sizeof(sig), a->secret, strlen(a->secret), body, len);
	free(body);
	if (rc == 0) {
		puts(verify ? "signature OK" : sig);
		return 0;
	}
	fprintf(stderr, "flaghook: %s\n", flaghook_last_error());
	/* A signature that does not match (or a stale timestamp) is 1; a key
	 * that is no key, 2. */
	return verify && (!a->standard || rc == FLAGHOOK_EVERIFY) ? EXIT_MISMATCH : EXIT_USAGE;
}

typedef struct test_outcome {
	int seen;
	int status;
	int errclass;
	char error[256];
} test_outcome;

static void on_test_result(const flaghook_result *r, void *ud)
{
	test_outcome *t = ud;
	t->seen = 1;
	t->status = r->status;
	t->errclass = r->errclass;
	snprintf(t->error, sizeof(t->error), "%s", r->error);
}

/* Sends the sample like the "Test webhook" button and reports like it. */
static int cmd_test(args *a)
{
	if (!a->url)
		return fail_usage("test needs a URL");
	int org = 0;
	if (a->scope && !strcmp(a->scope, "organisation"))
		org = 1;
	else if (a->scope && strcmp(a->scope, "environment"))
		return fail_usage("--scope is environment or organisation");

	test_outcome out = { 0 };
	flaghook_client_options co = FLAGHOOK_CLIENT_OPTIONS_INIT;
	co.on_result = on_test_result;
	co.user_data = &out;
	co.ca_file = a->ca_file;
	co.allow_private = a->allow_private;
	if (a->timeout_s)
		co.timeout_ms = co.connect_timeout_ms = a->timeout_s * 1000;
	flaghook_client *c = NULL;
	int rc = flaghook_client_new(&c, &co);
	if (rc) {
		fprintf(stderr, "flaghook: %s\n", flaghook_last_error());
		return EXIT_USAGE;
	}
	flaghook_endpoint_options eo = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	eo.scope = org ? FLAGHOOK_SCOPE_ORGANISATION : FLAGHOOK_SCOPE_ENVIRONMENT;
	eo.scope_id = 1;
	eo.url = a->url;
	eo.secret = a->secret;
	eo.secret_len = a->secret ? strlen(a->secret) : 0;
	eo.standard_secrets = a->nstandard ? a->standard_secrets : NULL;
	eo.standard_secret_count = a->nstandard;
	eo.events = FLAGHOOK_EVENT_BIT(org ? FLAGHOOK_EVENT_AUDIT_LOG_CREATED : FLAGHOOK_EVENT_FLAG_UPDATED);
	uint64_t id;
	rc = flaghook_endpoint_add(c, &id, &eo);
	if (rc) {
		fprintf(stderr, "flaghook: %s\n", flaghook_last_error());
		flaghook_client_free(c);
		return EXIT_USAGE;
	}
	if (!a->secret && !a->nstandard)
		fprintf(stderr, "flaghook: no secret given: the test webhook goes unsigned "
		                "(no X-Flagsmith-Signature)\n");
	rc = flaghook_emit(c, org ? fh_sample_organisation() : fh_sample_environment());
	flaghook_client_free(c);
	if (!out.seen) {
		fprintf(stderr, "flaghook: %s\n", flaghook_last_error());
		return EXIT_MISMATCH;
	}
	if (out.status >= 200 && out.status < 300) {
		printf("Webhook test successful: HTTP %d\n", out.status);
		return 0;
	}
	if (out.status) {
		printf("Webhook returned invalid status: HTTP %d\n", out.status);
		return EXIT_MISMATCH;
	}
	printf("Could not connect to webhook URL (%s): %s\n", flaghook_errclass_name(out.errclass), out.error);
	return EXIT_MISMATCH;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return fail_usage("a command is needed");
	if (!strcmp(argv[1], "--version")) {
		printf("flaghook %s\n", flaghook_version());
		return 0;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		print_usage(stdout);
		return 0;
	}
	if (fh_store_is_command(argv[1]))
		return fh_store_main(argc, argv);
	args a = { 0 };
	int rc = parse(argc, argv, 2, &a);
	if (!rc) {
		if (!strcmp(argv[1], "sign"))
			rc = cmd_sign(&a, 0);
		else if (!strcmp(argv[1], "verify"))
			rc = cmd_sign(&a, 1);
		else if (!strcmp(argv[1], "test"))
			rc = cmd_test(&a);
		else
			rc = fail_usage("unknown command");
	}
	if (a.secret_owned) {
		memset(a.secret_owned, 0, strlen(a.secret_owned));
		free(a.secret_owned);
	}
	return rc;
}
