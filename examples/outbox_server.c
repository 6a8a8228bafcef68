/*
 * outbox_server — a flag server that survives a crash without losing a
 * webhook: every event is written to a SQLite outbox before flaghook_emit
 * returns, and the next run sends what the last one could not.
 *
 *   outbox_server --db PATH [--emit N] [--hold] [--secret S] URL
 *
 * --emit N   report N flag changes (feature "dark_mode" toggled N times)
 * --hold     then wait forever instead of draining: kill it (even with
 *            SIGKILL) and run it again without --emit to see the rest sent
 * Without --hold it waits until the outbox is empty, then exits 0.
 *
 * What makes a restart lose nothing:
 *  - the store is durable (libflaghook-sqlite), so emit returns only once
 *    the deliveries are on disk;
 *  - the endpoint is registered under the same id in every run (here 1;
 *    a real server would use its webhook row's primary key), because the
 *    stored deliveries name their endpoint by id.  The URL and secret come
 *    from today's configuration, not from the outbox;
 *  - at start the client asks the store for what nobody holds and resumes
 *    it with its attempt count and next-attempt time.
 * Each request carries X-Flaghook-Event-Id, the same on every retry and
 * after every restart, so a receiver can drop the duplicates an at-least-
 * once sender may produce.
 *
 * Build: cc outbox_server.c $(pkg-config --cflags --libs flaghook-sqlite)
 *
 * SPDX-License-Identifier: MIT
 */
#include <flaghook.h>
#include <flaghook_sqlite.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

/* On the library's pool threads. */
static void on_result(const flaghook_result *r, void *user_data)
{
	(void)user_data;
	pthread_mutex_lock(&out_lock);
	if (r->outcome == FLAGHOOK_OUTCOME_DELIVERED)
		printf("delivered event %s after %d attempt(s): HTTP %d\n", r->event_id, (int)r->attempts,
		       (int)r->status);
	else if (r->outcome == FLAGHOOK_OUTCOME_RELEASED)
		printf("event %s still pending at exit: the outbox keeps it for the next run\n", r->event_id);
	else
		printf("event %s not delivered (%s): %s\n", r->event_id, flaghook_errclass_name(r->errclass),
		       r->error);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

/* Every attempt, including the failed ones that will be retried. */
static void on_attempt(const flaghook_result *r, void *user_data)
{
	(void)user_data;
	if (r->outcome != FLAGHOOK_OUTCOME_RETRY)
		return;
	pthread_mutex_lock(&out_lock);
	printf("attempt %d of event %s failed (%s); it will be retried\n", (int)r->attempts, r->event_id,
	       flaghook_errclass_name(r->errclass));
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

static int check(int rc, const char *what)
{
	if (rc != 0) {
		fflush(stdout);
		fprintf(stderr, "outbox_server: %s: %s (%s)\n", what, flaghook_strerror(rc), flaghook_last_error());
	}
	return rc;
}

int main(int argc, char **argv)
{
	const char *url = NULL, *db = NULL;
	const char *secret = getenv("FLAGHOOK_SECRET");
	int emit = 0, hold = 0, bad = 0, allow_private = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--db") && i + 1 < argc)
			db = argv[++i];
		else if (!strcmp(argv[i], "--emit") && i + 1 < argc)
			emit = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--allow-private"))
			allow_private = 1;
		else if (!strcmp(argv[i], "--hold"))
			hold = 1;
		else if (!strcmp(argv[i], "--secret") && i + 1 < argc)
			secret = argv[++i];
		else if (argv[i][0] != '-' && !url)
			url = argv[i];
		else
			bad = 1;
	}
	if (!url || !db || bad || emit < 0) {
		fputs("usage: outbox_server --db PATH [--emit N] [--hold] [--allow-private] [--secret S] URL\n", stderr);
		return 2;
	}

	/* The outbox.  The client owns it once flaghook_client_new succeeds. */
	flaghook_storage store = FLAGHOOK_STORAGE_INIT;
	flaghook_sqlite_options so = FLAGHOOK_SQLITE_OPTIONS_INIT;
	so.path = db;
	if (check(flaghook_sqlite_open(&store, &so), "open the outbox"))
		return 1;

	/* Quick retries for the demo; the default Standard schedule waits 5 s,
	 * then 5 min, 30 min and so on. */
	static const int64_t schedule_ms[] = { 200, 500, 1000 };
	flaghook_retry_policy retry = FLAGHOOK_RETRY_POLICY_INIT;
	retry.kind = FLAGHOOK_RETRY_STANDARD;
	retry.schedule_ms = schedule_ms;
	retry.schedule_count = 3;
	retry.max_attempts = 100;

	flaghook_client_options opts = FLAGHOOK_CLIENT_OPTIONS_INIT;
	opts.mode = FLAGHOOK_MODE_ASYNC;
	opts.storage = &store;
	opts.retry = &retry;
	opts.on_result = on_result;
	opts.on_attempt = on_attempt;
	opts.shutdown_timeout_ms = 500;
	opts.allow_private = allow_private; /* a receiver on this machine (the demo's) */
	flaghook_client *client = NULL;
	if (check(flaghook_client_new(&client, &opts), "flaghook_client_new")) {
		flaghook_storage_close(&store);
		return 1;
	}

	flaghook_endpoint_options ep = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	ep.id = 1; /* stable across runs: the outbox's deliveries name it */
	ep.scope = FLAGHOOK_SCOPE_ENVIRONMENT;
	ep.scope_id = 1;
	ep.url = url;
	ep.secret = secret && *secret ? secret : NULL;
	ep.secret_len = ep.secret ? strlen(ep.secret) : 0;
	if (check(flaghook_endpoint_add(client, NULL, &ep), "add the endpoint")) {
		flaghook_client_free(client);
		return 1;
	}

	const flaghook_environment production = { .id = 1, .name = "Production" };
	const flaghook_feature dark_mode = {
		.id = 1, .name = "dark_mode", .type = "STANDARD",
		.created_date_us = 1717200000000000LL,
		.project = { .id = 1, .name = "My Project" },
	};
	for (int i = 0; i < emit; i++) {
		flaghook_feature_state was = { .id = 42, .enabled = i % 2, .environment = production,
		                               .feature = dark_mode };
		flaghook_feature_state now = was;
		now.enabled = !was.enabled;
		flaghook_flag_change change = { .changed_by = "alice@example.com", .new_state = &now,
		                                .previous_state = &was,
		                                .timestamp_us = (int64_t)time(NULL) * 1000000 };
		flaghook_event ev = FLAGHOOK_EVENT_INIT;
		ev.type = FLAGHOOK_EVENT_FLAG_UPDATED;
		ev.flag = &change;
		/* 0 means: on disk.  Whatever happens to this process now, the
		 * next run sends it. */
		if (check(flaghook_emit(client, &ev), "emit")) {
			flaghook_client_free(client);
			return 1;
		}
		pthread_mutex_lock(&out_lock);
		printf("stored flag change %d of %d in the outbox\n", i + 1, emit);
		fflush(stdout);
		pthread_mutex_unlock(&out_lock);
	}

	if (hold) {
		puts("holding: kill this process, then run outbox_server again without --emit");
		fflush(stdout);
		for (;;)
			pause();
	}
	/* Waits until the outbox has nothing pending: what this run emitted
	 * and what earlier runs left. */
	int rc = check(flaghook_flush(client, 30000), "flush");
	if (rc == 0)
		puts("outbox empty: every webhook delivered");
	flaghook_client_free(client);
	return rc ? 1 : 0;
}
