/*
 * flag_server — the smallest "flag server" that sends Flagsmith webhooks.
 *
 *   flag_server [--async] [--allow-private] [--secret S] [--url] URL
 *
 * Registers URL twice, as the webhook of environment 1 and as the webhook
 * of organisation 1, then reports two changes the way Flagsmith would:
 * the feature "dark_mode" switched on in Production (FLAG_UPDATED, to the
 * environment webhook) and the audit-log entry for it (AUDIT_LOG_CREATED, to
 * the organisation webhook).  Each body is signed with the secret (from
 * --secret or, better, FLAGHOOK_SECRET, which stays out of `ps`).
 * Exits 0 only when both events were delivered.
 *
 * With --async the client queues each event and returns at once, as a
 * flag server that must never wait on a receiver would; failed deliveries
 * are retried on the Standard Webhooks schedule, and flaghook_flush waits
 * for the results before the program exits.
 *
 * Build: cc flag_server.c $(pkg-config --cflags --libs flaghook)
 *
 * SPDX-License-Identifier: MIT
 */
#include <flaghook.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Called once per delivery: in sync mode inside flaghook_emit on this
 * thread; in async mode on the library's pool threads, hence the lock. */
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static int delivered;

static void on_result(const flaghook_result *r, void *user_data)
{
	(void)user_data;
	pthread_mutex_lock(&out_lock);
	delivered += r->outcome == FLAGHOOK_OUTCOME_DELIVERED;
	double ms = (double)r->elapsed_us / 1000.0;
	if (r->outcome == FLAGHOOK_OUTCOME_DELIVERED) {
		printf("delivered to endpoint %llu: HTTP %d in %.1f ms\n",
		       (unsigned long long)r->endpoint_id, (int)r->status, ms);
	} else if (r->status) {
		printf("endpoint %llu refused the event: HTTP %d in %.1f ms\n",
		       (unsigned long long)r->endpoint_id, (int)r->status, ms);
	} else {
		printf("endpoint %llu not reached (%s): %s\n",
		       (unsigned long long)r->endpoint_id,
		       flaghook_errclass_name(r->errclass), r->error);
	}
	pthread_mutex_unlock(&out_lock);
}

/* Every call returns 0 or a FLAGHOOK_E* code; flaghook_last_error() says
 * what exactly was wrong (it never contains the secret). */
static int check(int rc, const char *what)
{
	if (rc != 0) {
		fflush(stdout); /* keep the lines in order when both go to one file */
		fprintf(stderr, "flag_server: %s: %s (%s)\n", what, flaghook_strerror(rc),
		        flaghook_last_error());
	}
	return rc;
}

static int add_endpoint(flaghook_client *client, int32_t scope, int64_t scope_id,
                        const char *url, const char *secret)
{
	/* Start from the _INIT macro: it sets `version` and zeroes the rest,
	 * so fields added by later library versions keep their defaults. */
	flaghook_endpoint_options ep = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	ep.scope = scope;
	ep.scope_id = scope_id;
	ep.url = url;
	ep.secret = secret; /* NULL: send without X-Flagsmith-Signature */
	ep.secret_len = secret ? strlen(secret) : 0;
	/* ep.events stays FLAGHOOK_EVENTS_DEFAULT: flag changes for an
	 * environment, audit logs and flag changes for an organisation. */
	uint64_t id;
	int rc = flaghook_endpoint_add(client, &id, &ep);
	if (rc == 0)
		printf("%s %lld -> endpoint %llu\n",
		       scope == FLAGHOOK_SCOPE_ENVIRONMENT ? "environment" : "organisation",
		       (long long)scope_id, (unsigned long long)id);
	return rc;
}

int main(int argc, char **argv)
{
	const char *url = NULL;
	const char *secret = getenv("FLAGHOOK_SECRET");
	int bad_args = 0, async = 0, allow_private = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--async"))
			async = 1;
		else if (!strcmp(argv[i], "--allow-private"))
			allow_private = 1;
		else if (!strcmp(argv[i], "--secret") && i + 1 < argc)
			secret = argv[++i];
		else if (!strcmp(argv[i], "--url") && i + 1 < argc)
			url = argv[++i];
		else if (argv[i][0] != '-' && !url)
			url = argv[i];
		else
			bad_args = 1;
	}
	if (!url || bad_args) {
		fputs("usage: flag_server [--async] [--allow-private] [--secret S] [--url] URL\n"
		      "  The secret may also be given in FLAGHOOK_SECRET.\n", stderr);
		return 2;
	}
	if (secret && !*secret)
		secret = NULL;
	if (!secret)
		fputs("flag_server: no secret given: webhooks go out unsigned\n", stderr);

	/* Sync mode: flaghook_emit tries every matching endpoint once and
	 * returns when all have answered, which is what a short program wants.
	 * Async mode: emit queues and returns; a pool delivers and retries. */
	flaghook_retry_policy retry = FLAGHOOK_RETRY_POLICY_INIT;
	retry.kind = FLAGHOOK_RETRY_STANDARD;
	flaghook_client_options opts = FLAGHOOK_CLIENT_OPTIONS_INIT;
	opts.mode = async ? FLAGHOOK_MODE_ASYNC : FLAGHOOK_MODE_SYNC;
	opts.retry = &retry;
	opts.on_result = on_result;
	/* Webhook URLs come from the flag server's users: by default the
	 * library refuses loopback and private addresses (SSRF).  A receiver
	 * on this machine, as in the demo, must be allowed explicitly. */
	opts.allow_private = allow_private;

	flaghook_client *client = NULL;
	if (check(flaghook_client_new(&client, &opts), "flaghook_client_new"))
		return 1;
	if (check(add_endpoint(client, FLAGHOOK_SCOPE_ENVIRONMENT, 1, url, secret),
	          "environment endpoint") ||
	    check(add_endpoint(client, FLAGHOOK_SCOPE_ORGANISATION, 1, url, secret),
	          "organisation endpoint")) {
		flaghook_client_free(client);
		return 1;
	}

	/* Times are microseconds since the Unix epoch, UTC. */
	int64_t now_us = (int64_t)time(NULL) * 1000000;

	/* ---- 1. FLAG_UPDATED: dark_mode switched on in Production ---- */

	/* The event only points at these structs; nothing is copied until
	 * flaghook_emit renders the body, so locals are fine. */
	const flaghook_environment production = { .id = 1, .name = "Production" };
	const flaghook_feature dark_mode = {
		.id = 1,
		.name = "dark_mode",
		.description = "Dark colour scheme for the web app",
		.initial_value = NULL,          /* rendered as null */
		.default_enabled = 0,
		.type = "STANDARD",
		.created_date_us = 1717200000000000LL, /* 2024-06-01T00:00:00Z */
		.project = { .id = 1, .name = "My Project" },
	};
	const flaghook_feature_state was = {
		.id = 42,
		.enabled = 0,
		.environment = production,
		.feature = dark_mode,
		.value = { .type = FLAGHOOK_VALUE_NULL }, /* an on/off flag, no value */
	};
	flaghook_feature_state now = was;
	now.enabled = 1;

	const flaghook_flag_change change = {
		.changed_by = "alice@example.com",
		.new_state = &now,
		.previous_state = &was, /* lets receivers show "false -> true" */
		.timestamp_us = now_us,
	};
	/* environment_id and organisation_id stay 0: the library routes by the
	 * feature state's environment.  Setting organisation_id would send the
	 * flag change to organisation endpoints as well. */
	flaghook_event flag_event = FLAGHOOK_EVENT_INIT;
	flag_event.type = FLAGHOOK_EVENT_FLAG_UPDATED;
	flag_event.flag = &change;

	/* Sync: 0 only when every matching endpoint answered 2xx (on_result has
	 * already said which did not).  Async: 0 when queued. */
	int rc_flag = check(flaghook_emit(client, &flag_event), "emit FLAG_UPDATED");

	/* ---- 2. AUDIT_LOG_CREATED: the same change in the audit log ---- */

	const flaghook_user alice = {
		.id = 1, .email = "alice@example.com", .first_name = "Alice", .last_name = "Smith",
	};
	const flaghook_audit_log entry = {
		.present = FLAGHOOK_AUDIT_HAS_RELATED_OBJECT_ID,
		.author = &alice,
		.created_date_us = now_us,
		.environment = &production,
		.log = "Flag state updated for feature: dark_mode",
		/* project.organisation routes the event to organisation 1. */
		.project = { .id = 1, .name = "My Project", .organisation = 1 },
		.related_object_id = was.id,
		.related_object_type = "FEATURE_STATE",
	};
	flaghook_event audit_event = FLAGHOOK_EVENT_INIT;
	audit_event.type = FLAGHOOK_EVENT_AUDIT_LOG_CREATED;
	audit_event.audit = &entry;

	int rc_audit = check(flaghook_emit(client, &audit_event), "emit AUDIT_LOG_CREATED");

	/* Async: wait (at most 15 s) until every result has been reported. */
	int rc_flush = check(flaghook_flush(client, 15000), "flaghook_flush");

	/* Zeroes the secrets and closes connections. */
	flaghook_client_free(client);
	pthread_mutex_lock(&out_lock);
	int ok = rc_flag == 0 && rc_audit == 0 && rc_flush == 0 && delivered == 2;
	pthread_mutex_unlock(&out_lock);
	return ok ? 0 : 1;
}
