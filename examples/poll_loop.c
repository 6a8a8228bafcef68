/*
 * poll_loop — a flag server whose own event loop drives the library.
 *
 *   poll_loop [--allow-private] [--events N] URL
 *
 * The client runs in TICK mode: the library starts no thread.  It hands
 * the host one file descriptor (flaghook_fd); the host's loop, a plain
 * poll(2) here, watches it beside its own descriptors and calls
 * flaghook_tick() when it is readable.  Every transfer, retry and
 * callback then happens on this one thread.  The "host's own descriptor"
 * is a timer that makes a flag change every 100 ms, N times; the program
 * exits when every webhook has been delivered or given up.
 *
 * Build: cc poll_loop.c $(pkg-config --cflags --libs flaghook)
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* timerfd, clock_gettime under -std=c99 */
#endif
#include <flaghook.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static int finished, delivered;

/* On this thread, inside flaghook_tick: no lock needed. */
static void on_result(const flaghook_result *r, void *user_data)
{
	(void)user_data;
	finished++;
	delivered += r->outcome == FLAGHOOK_OUTCOME_DELIVERED;
	printf("event %s to endpoint %llu: %s (HTTP %d)\n", r->event_id, (unsigned long long)r->endpoint_id,
	       r->outcome == FLAGHOOK_OUTCOME_DELIVERED ? "delivered" : r->error, (int)r->status);
}

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* One flag change: dark_mode switched to `on`. */
static int emit_change(flaghook_client *client, int on)
{
	flaghook_feature_state state = {
		.enabled = on,
		.environment = { .id = 1, .name = "Production" },
		.feature = { .id = 7, .name = "dark_mode", .type = "STANDARD", .created_date_us = now_us(),
		             .project = { .id = 1, .name = "Web" } },
		.value = { .type = FLAGHOOK_VALUE_NULL },
	};
	flaghook_flag_change change = { .changed_by = "poll_loop@example.com", .new_state = &state,
	                                .timestamp_us = now_us() };
	flaghook_event ev = FLAGHOOK_EVENT_INIT;
	ev.type = FLAGHOOK_EVENT_FLAG_UPDATED;
	ev.flag = &change;
	return flaghook_emit(client, &ev); /* queues and returns: the loop sends it */
}

int main(int argc, char **argv)
{
	const char *url = NULL;
	int allow_private = 0, events = 3;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--allow-private"))
			allow_private = 1;
		else if (!strcmp(argv[i], "--events") && i + 1 < argc)
			events = atoi(argv[++i]);
		else if (argv[i][0] != '-' && !url)
			url = argv[i];
		else
			url = NULL, i = argc;
	}
	if (!url || events < 1) {
		fputs("usage: poll_loop [--allow-private] [--events N] URL\n", stderr);
		return 2;
	}

	flaghook_client_options o = FLAGHOOK_CLIENT_OPTIONS_INIT;
	o.mode = FLAGHOOK_MODE_ASYNC;
	o.timers = FLAGHOOK_TIMERS_TICK; /* no library thread: this loop runs it */
	o.on_result = on_result;
	o.allow_private = allow_private; /* a receiver on this machine (the demo's) */
	flaghook_client *client = NULL;
	if (flaghook_client_new(&client, &o) != 0) {
		fprintf(stderr, "poll_loop: %s\n", flaghook_last_error());
		return 1;
	}
	flaghook_endpoint_options ep = FLAGHOOK_ENDPOINT_OPTIONS_INIT;
	ep.scope_id = 1;
	ep.url = url;
	ep.secret = getenv("FLAGHOOK_SECRET");
	ep.secret_len = ep.secret ? strlen(ep.secret) : 0;
	int lib_fd = -1;
	if (flaghook_endpoint_add(client, NULL, &ep) != 0 || flaghook_fd(client, &lib_fd) != 0) {
		fprintf(stderr, "poll_loop: %s\n", flaghook_last_error());
		flaghook_client_free(client);
		return 1;
	}

	/* The host's own work: a timer every 100 ms. */
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	struct itimerspec every = { { 0, 100000000 }, { 0, 100000000 } };
	timerfd_settime(tfd, 0, &every, NULL);

	int emitted = 0;
	while (finished < events) {
		int64_t next_ms = -1;
		flaghook_tick(client, &next_ms);
		struct pollfd fds[2] = { { lib_fd, POLLIN, 0 }, { tfd, POLLIN, 0 } };
		if (poll(fds, 2, next_ms < 0 ? -1 : (int)(next_ms > 1000 ? 1000 : next_ms)) < 0)
			break;
		if (fds[1].revents & POLLIN) {
			uint64_t ticks;
			if (read(tfd, &ticks, sizeof(ticks)) < 0)
				break;
			if (emitted < events && emit_change(client, emitted % 2 == 0) == 0)
				emitted++;
			else if (emitted < events)
				fprintf(stderr, "poll_loop: emit: %s\n", flaghook_last_error());
		}
		/* fds[0] readable: the next flaghook_tick at the top runs it. */
	}
	close(tfd);
	flaghook_client_free(client); /* nothing is pending: returns at once */
	printf("poll_loop: %d of %d delivered from one thread's poll loop\n", delivered, events);
	return delivered == events ? 0 : 1;
}
