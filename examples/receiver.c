/*
 * receiver — a webhook receiver that checks X-Flagsmith-Signature.
 *
 *   receiver [--port N] [--secret S] [--count N] [--port-file PATH]
 *
 * Listens on 127.0.0.1 (port 0, the default, picks a free port; --port-file
 * receives the real one so a script can wait for it), takes POSTs on any
 * path, and prints one line per delivery followed by the start of the body.
 * A delivery whose signature is missing or wrong gets 401, anything else 200.
 * The secret comes from --secret or, better (it stays out of `ps`), from
 * FLAGHOOK_SECRET; without one every delivery is accepted unchecked.
 * Exits after --count deliveries (default: runs until SIGINT/SIGTERM), with
 * status 0 when every delivery verified, 1 otherwise.
 *
 * Build: cc receiver.c $(pkg-config --cflags --libs flaghook libmicrohttpd) -pthread
 *
 * SPDX-License-Identifier: MIT
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* sigwait, pthread_sigmask, kill */
#endif

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include <flaghook.h>

/* Larger than the library's default body limit (1 MiB), so nothing it sends
 * is refused here. */
#define MAX_BODY (2u * 1024 * 1024)
#define EXCERPT_BYTES 200

#ifndef MHD_HTTP_CONTENT_TOO_LARGE /* its older name */
#define MHD_HTTP_CONTENT_TOO_LARGE MHD_HTTP_PAYLOAD_TOO_LARGE
#endif

/* Shared by main and the callbacks.  MHD runs every callback on its one
 * internal thread, and main reads the counters only after MHD_stop_daemon
 * has joined that thread, so no locking is needed. */
typedef struct receiver {
	const char *secret;     /* NULL: accept everything unchecked */
	unsigned long count;    /* 0: run forever */
	unsigned long received;
	unsigned long completed;
	unsigned long rejected;
} receiver;

/* One request: its body, accumulated across calls of the handler. */
typedef struct request {
	char *body;
	size_t len;
	size_t cap;
	size_t total;           /* bytes received, kept or not */
	int too_big;
	int counted;            /* a line was printed: it counts towards --count */
} request;

static const char MSG_OK[] = "ok\n";
static const char MSG_UNAUTHORIZED[] = "signature missing or wrong\n";
static const char MSG_NOT_POST[] = "POST only\n";
static const char MSG_TOO_BIG[] = "body too large\n";

/* `last`: the final delivery of --count; closing the connection after it
 * keeps a keep-alive sender from starting another request meanwhile. */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int status,
                             const char *msg, size_t len, int last)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(len, (void *)msg, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
	if (last)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	enum MHD_Result ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static int append(request *req, const char *data, size_t n)
{
	if (n > MAX_BODY - req->len) {
		req->too_big = 1;
		return 0;
	}
	if (req->len + n + 1 > req->cap) {
		size_t cap = req->cap ? req->cap : 4096;
		while (cap < req->len + n + 1)
			cap *= 2;
		char *p = realloc(req->body, cap);
		if (!p)
			return -1;
		req->body = p;
		req->cap = cap;
	}
	memcpy(req->body + req->len, data, n);
	req->len += n;
	req->body[req->len] = '\0';
	return 0;
}

/*
 * The top-level "event_type" value, found without a JSON parser.  Bodies are
 * written with sorted keys, so "event_type" follows "data" and is the last
 * occurrence; an earlier one could only be a key inside "data".  Both the
 * default (": ") and compact (":") separators are accepted.
 */
static void event_type(const char *body, char *out, size_t out_size)
{
	static const char key[] = "\"event_type\":";
	const char *found = NULL;
	for (const char *p = strstr(body, key); p; p = strstr(p + 1, key))
		found = p;
	snprintf(out, out_size, "%s", "(no event_type)");
	if (!found)
		return;
	const char *v = found + sizeof(key) - 1;
	while (*v == ' ')
		v++;
	if (*v++ != '"')
		return;
	size_t n = 0;
	while (n + 1 < out_size && ((v[n] >= 'A' && v[n] <= 'Z') || v[n] == '_'))
		n++;
	if (v[n] == '"' && n > 0)
		snprintf(out, out_size, "%.*s", (int)n, v);
}

/* The first EXCERPT_BYTES of the body on one line: control characters
 * become '.', and the cut does not split a UTF-8 sequence. */
static void print_excerpt(const char *body, size_t len)
{
	size_t n = len < EXCERPT_BYTES ? len : EXCERPT_BYTES;
	while (n < len && n > 0 && ((unsigned char)body[n] & 0xC0) == 0x80)
		n--;
	fputs("    ", stdout);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)body[i];
		putchar(c < 0x20 || c == 0x7f ? '.' : c);
	}
	puts(n < len ? "..." : "");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	receiver *rx = cls;
	request *req = *con_cls;
	(void)url;
	(void)version;

	if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, MSG_NOT_POST, sizeof(MSG_NOT_POST) - 1, 0);
	/* --count reached: take no more while main shuts down. */
	if (rx->count && rx->received >= rx->count)
		return MHD_NO;

	/* First call: headers only.  Set up the body buffer. */
	if (!req) {
		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		*con_cls = req;
		return MHD_YES;
	}
	/* Middle calls: a piece of the body each. */
	if (*upload_data_size) {
		req->total += *upload_data_size;
		if (append(req, upload_data, *upload_data_size))
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}
	/* Last call: the whole body is here. */
	const char *body = req->body ? req->body : "";
	char type[64];
	event_type(body, type, sizeof(type));

	const char *verdict;
	unsigned int status = MHD_HTTP_OK;
	if (req->too_big) {
		verdict = "body over the size limit, rejected";
		status = MHD_HTTP_CONTENT_TOO_LARGE;
	} else if (!rx->secret) {
		verdict = "no secret configured, signature not checked";
	} else {
		const char *sig = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		                                              "X-Flagsmith-Signature");
		if (!sig) {
			verdict = "signature MISSING";
			status = MHD_HTTP_UNAUTHORIZED;
		} else if (flaghook_verify(rx->secret, strlen(rx->secret), body, req->len,
		                           sig, strlen(sig)) != 0) {
			/* flaghook_verify compares in constant time: the reply's timing
			 * tells an attacker nothing about the right signature. */
			verdict = "signature MISMATCH";
			status = MHD_HTTP_UNAUTHORIZED;
		} else {
			verdict = "signature verified";
		}
	}

	req->counted = 1;
	rx->received++;
	if (status != MHD_HTTP_OK)
		rx->rejected++;
	printf("received %s (%zu bytes), %s\n", type, req->total, verdict);
	print_excerpt(body, req->len);
	fflush(stdout);

	int last = rx->count && rx->received == rx->count;
	if (status == MHD_HTTP_CONTENT_TOO_LARGE)
		return reply(conn, status, MSG_TOO_BIG, sizeof(MSG_TOO_BIG) - 1, last);
	if (status == MHD_HTTP_UNAUTHORIZED)
		return reply(conn, status, MSG_UNAUTHORIZED, sizeof(MSG_UNAUTHORIZED) - 1, last);
	return reply(conn, status, MSG_OK, sizeof(MSG_OK) - 1, last);
}

/* Called once the reply has been sent (or the connection failed).  Only
 * here is it safe to stop: stopping in on_request would cut off the reply
 * the sender is waiting for. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	receiver *rx = cls;
	request *req = *con_cls;
	(void)conn;
	(void)toe;
	if (!req)
		return;
	int counted = req->counted;
	free(req->body);
	free(req);
	*con_cls = NULL;
	if (counted && rx->count && ++rx->completed == rx->count)
		kill(getpid(), SIGUSR1); /* wakes main's sigwait */
}

/* Writes the port to PATH.tmp, then renames it into place, so a reader
 * never sees a half-written file. */
static int write_port_file(const char *path, unsigned int port)
{
	char tmp[PATH_MAX];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -1;
	FILE *f = fopen(tmp, "w");
	if (!f)
		return -1;
	int bad = fprintf(f, "%u\n", port) < 0;
	bad |= fclose(f) != 0;
	if (bad || rename(tmp, path) != 0) {
		remove(tmp);
		return -1;
	}
	return 0;
}

static int parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		return -1;
	*out = v;
	return 0;
}

static void usage(FILE *f)
{
	fputs("usage: receiver [--port N] [--secret S] [--count N] [--port-file PATH]\n"
	      "  The secret may also be given in FLAGHOOK_SECRET.\n", f);
}

int main(int argc, char **argv)
{
	receiver rx = { 0 };
	unsigned long port = 0;
	const char *port_file = NULL;

	rx.secret = getenv("FLAGHOOK_SECRET");
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			usage(stdout);
			return 0;
		}
		if (!val) {
			usage(stderr);
			return 2;
		}
		i++;
		if (!strcmp(arg, "--port")) {
			if (parse_ulong(val, 65535, &port)) {
				fprintf(stderr, "receiver: bad --port %s\n", val);
				return 2;
			}
		} else if (!strcmp(arg, "--count")) {
			if (parse_ulong(val, ULONG_MAX, &rx.count)) {
				fprintf(stderr, "receiver: bad --count %s\n", val);
				return 2;
			}
		} else if (!strcmp(arg, "--secret")) {
			rx.secret = val;
		} else if (!strcmp(arg, "--port-file")) {
			port_file = val;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (rx.secret && !*rx.secret)
		rx.secret = NULL;

	/* Block these in every thread (MHD's inherit the mask) and collect them
	 * with sigwait below: no handler, no busy loop. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	struct sockaddr_in addr;
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	struct MHD_Daemon *d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
		on_request, &rx,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, &rx,
		MHD_OPTION_CONNECTION_TIMEOUT, 30u,
		MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "receiver: cannot listen on 127.0.0.1:%lu\n", port);
		return 1;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	unsigned int bound = info ? info->port : (unsigned int)port;

	if (port_file && write_port_file(port_file, bound) != 0) {
		fprintf(stderr, "receiver: cannot write %s: %s\n", port_file, strerror(errno));
		MHD_stop_daemon(d);
		return 1;
	}
	printf("receiver: listening on http://127.0.0.1:%u/ (%s)\n", bound,
	       rx.secret ? "checking X-Flagsmith-Signature" : "no secret: signatures not checked");
	fflush(stdout);

	int sig = 0;
	if (sigwait(&sigs, &sig) != 0)
		sig = SIGTERM;
	MHD_stop_daemon(d);

	if (sig != SIGUSR1)
		printf("receiver: stopped by signal after %lu deliveries\n", rx.received);
	return rx.rejected ? 1 : 0;
}
