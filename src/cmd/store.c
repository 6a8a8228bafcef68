/*
 * flaghook(1)'s outbox subcommands: list dead letters and deliveries, show
 * the attempt log, re-queue, and count what is pending, on a SQLite file or
 * a PostgreSQL outbox.
 *
 * Operators run these against production outboxes, so:
 *  - the PostgreSQL conninfo (which may hold a password) is never printed,
 *    not in errors either: store errors are flaghook_last_error(), which
 *    the stores keep free of it, and arguments we reject are named, not
 *    echoed, wherever they could be part of a conninfo;
 *  - an unfiltered re-queue is refused;
 *  - a SQLite path that does not exist is an error (opening would create
 *    an empty outbox and report nothing);
 *  - exit status 0 success, 1 the store failed, 2 usage.
 */
#include "store.h"

#include "flaghook.h"
#include "flaghook_pg.h"
#include "flaghook_sqlite.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define EXIT_STORE 1
#define EXIT_USAGE 2

/* Below this an epoch value is taken for seconds or milliseconds by
 * mistake: 1e14 microseconds is March 1973, before any outbox. */
#define EPOCH_US_MIN 100000000000000LL

#define ERROR_TEXT_SHOWN    120   /* characters of an attempt's error in a table */
#define RESPONSE_TEXT_SHOWN 60    /* characters of a response excerpt in a table */

const char fh_store_usage[] =
	"       flaghook dead       STORE [--endpoint ID] [--delivery ID] [--since TIME] [--limit N]\n"
	"                                 [--json] [--body]\n"
	"       flaghook deliveries STORE [--state pending|delivered|dead|any] [--endpoint ID]\n"
	"                                 [--delivery ID] [--since TIME] [--limit N] [--json] [--body]\n"
	"       flaghook attempts   STORE [--endpoint ID] [--delivery ID] [--since TIME] [--limit N] [--json]\n"
	"       flaghook requeue    STORE (--delivery ID | --endpoint ID | --since TIME) [--dead] [--json]\n"
	"       flaghook pending    STORE [--json]\n"
	"STORE is --sqlite PATH, or --pg CONNINFO [--pg-schema NAME]; the conninfo may also come\n"
	"from FLAGHOOK_PG_CONNINFO.  TIME is 2026-11-22T10:00:00Z, 2026-11-22, -30m, -2h, -7d or\n"
	"epoch microseconds.\n";

/* Options, as bits: which subcommand takes which. */
enum {
	O_ENDPOINT = 1 << 0,
	O_DELIVERY = 1 << 1,
	O_SINCE    = 1 << 2,
	O_LIMIT    = 1 << 3,
	O_JSON     = 1 << 4,
	O_BODY     = 1 << 5,
	O_STATE    = 1 << 6,
	O_DEAD     = 1 << 7,
};

enum { C_DEAD, C_DELIVERIES, C_ATTEMPTS, C_REQUEUE, C_PENDING };

static const struct command {
	const char *name;
	int kind;
	unsigned takes;
	const char *synopsis;
} commands[] = {
	{ "dead", C_DEAD, O_ENDPOINT | O_DELIVERY | O_SINCE | O_LIMIT | O_JSON | O_BODY,
	  "flaghook dead STORE [--endpoint ID] [--delivery ID] [--since TIME] [--limit N] [--json] [--body]" },
	{ "deliveries", C_DELIVERIES, O_ENDPOINT | O_DELIVERY | O_SINCE | O_LIMIT | O_JSON | O_BODY | O_STATE,
	  "flaghook deliveries STORE [--state pending|delivered|dead|any] [--endpoint ID] [--delivery ID]\n"
	  "                          [--since TIME] [--limit N] [--json] [--body]" },
	{ "attempts", C_ATTEMPTS, O_ENDPOINT | O_DELIVERY | O_SINCE | O_LIMIT | O_JSON,
	  "flaghook attempts STORE [--endpoint ID] [--delivery ID] [--since TIME] [--limit N] [--json]" },
	{ "requeue", C_REQUEUE, O_ENDPOINT | O_DELIVERY | O_SINCE | O_DEAD | O_JSON,
	  "flaghook requeue STORE (--delivery ID | --endpoint ID | --since TIME) [--dead] [--json]" },
	{ "pending", C_PENDING, O_JSON, "flaghook pending STORE [--json]" },
};

typedef struct opts {
	const struct command *cmd;
	const char *sqlite;
	char *pg;                   /* our copy of the conninfo; zeroed before free */
	int pg_from_env;
	const char *pg_schema;
	unsigned given;             /* O_* seen */
	uint64_t endpoint, delivery;
	int64_t since_us;
	size_t limit;
	int32_t state;
} opts;

static int usage_error(const opts *o, const char *fmt, const char *arg)
{
	fprintf(stderr, "flaghook: %s: ", o->cmd->name);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nusage: %s\n       where STORE is --sqlite PATH or --pg CONNINFO "
	                "(or FLAGHOOK_PG_CONNINFO); see flaghook(1)\n", o->cmd->synopsis);
	return EXIT_USAGE;
}

int fh_store_is_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(name, commands[i].name))
			return 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Arguments                                                           */

/* A positive decimal integer, at most max; 0 when it is not one. */
static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	if (!s || !*s)
		return 0;
	uint64_t v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		unsigned d = (unsigned)(*p - '0');
		if (v > (max - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	if (v == 0)
		return 0;
	*out = v;
	return 1;
}

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 1;
}

/*
 * TIME: "2026-11-22T10:00:00Z" (a fraction of a second allowed), the date
 * "2026-11-22" (midnight UTC), "-30s" / "-30m" / "-2h" / "-7d" / "-2w"
 * before now, or epoch microseconds.  0 on success; otherwise a reason.
 */
static const char *parse_time(const char *s, int64_t *out)
{
	size_t len = strlen(s);
	if (len == 0)
		return "is empty";
	if (s[0] == '-') {
		uint64_t n;
		char unit = s[len - 1];
		int64_t mult = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600
		               : unit == 'd' ? 86400 : unit == 'w' ? 7 * 86400 : 0;
		char num[32];
		if (!mult || len < 3 || len - 2 >= sizeof(num))
			return "is not a relative time such as -30m, -2h or -7d";
		memcpy(num, s + 1, len - 2);
		num[len - 2] = '\0';
		/* At most about 100 years back. */
		if (!parse_uint(num, (uint64_t)(100LL * 366 * 86400 / mult), &n))
			return "is not a relative time such as -30m, -2h or -7d (a whole number, 1 or more, "
			       "of s, m, h, d or w)";
		*out = now_us() - (int64_t)n * mult * 1000000;
		return NULL;
	}
	if (strspn(s, "0123456789") == len) {
		uint64_t v;
		if (!parse_uint(s, INT64_MAX, &v))
			return "is not epoch microseconds (too large, or 0)";
		if ((int64_t)v < EPOCH_US_MIN)
			return "is before 1973 as epoch microseconds: seconds or milliseconds by mistake? "
			       "(multiply seconds by 1000000)";
		*out = (int64_t)v;
		return NULL;
	}
	/* ISO 8601, UTC. */
	int y, mo, d, h = 0, mi = 0, sec = 0;
	long frac_us = 0;
	const char *bad = "is not a time: give 2026-11-22T10:00:00Z (UTC), 2026-11-22, -2h, -30m, "
	                  "-7d, or epoch microseconds";
	if (len < 10 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
	    !digits(s + 8, 2, &d))
		return bad;
	const char *p = s + 10;
	if (*p) {
		if ((*p != 'T' && *p != 't' && *p != ' ') || strlen(p) < 9 || !digits(p + 1, 2, &h) ||
		    p[3] != ':' || !digits(p + 4, 2, &mi) || p[6] != ':' || !digits(p + 7, 2, &sec))
			return bad;
		p += 9;
		if (*p == '.' || *p == ',') {
			p++;
			int n = 0;
			long scale = 100000;
			while (*p >= '0' && *p <= '9') {
				if (n < 6)
					frac_us += (*p - '0') * scale, scale /= 10;
				n++, p++;
			}
			if (n == 0)
				return bad;
		}
		if (*p == '+' || (*p == '-' && p[1]))
			return "has a UTC offset: give the time in UTC, ending in Z (2026-11-22T10:00:00Z)";
		if ((*p != 'Z' && *p != 'z') || p[1])
			return "does not end in Z: give the time in UTC (2026-11-22T10:00:00Z)";
	}
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59)
		return "is not a valid date and time (UTC, from 1970)";
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	time_t t = timegm(&tm);
	struct tm back;
	if (t == (time_t)-1 || !gmtime_r(&t, &back) || back.tm_mday != d || back.tm_mon != mo - 1)
		return "is not a valid date (no such day)";
	int64_t us = (int64_t)t * 1000000 + frac_us;
	if (us <= 0)
		return "is not after 1970-01-01T00:00:00Z";
	*out = us;
	return NULL;
}

/* Keeps a copy of the conninfo and blanks the argument, so ps(1) shows it
 * only for the moment before this runs. */
static int take_conninfo(opts *o, char *arg)
{
	if (o->pg) {
		memset(o->pg, 0, strlen(o->pg));
		free(o->pg);
	}
	o->pg = strdup(arg);
	if (!o->pg) {
		fprintf(stderr, "flaghook: out of memory\n");
		return EXIT_STORE;
	}
	memset(arg, 'x', strlen(arg));
	return 0;
}

static int parse(int argc, char **argv, opts *o)
{
	for (int i = 2; i < argc; i++) {
		char *arg = argv[i];
		char *next = i + 1 < argc ? argv[i + 1] : NULL;
		unsigned opt = 0;
		if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
			printf("usage: %s\n       where STORE is --sqlite PATH or --pg CONNINFO "
			       "(or FLAGHOOK_PG_CONNINFO); see flaghook(1)\n", o->cmd->synopsis);
			return -1;
		}
		if (!strcmp(arg, "--sqlite") || !strcmp(arg, "--pg") || !strcmp(arg, "--pg-schema")) {
			if (!next)
				return usage_error(o, "%s needs a value", arg);
			if (!strcmp(arg, "--sqlite")) {
				o->sqlite = next;
			} else if (!strcmp(arg, "--pg")) {
				int rc = take_conninfo(o, next);
				if (rc)
					return rc;
			} else {
				o->pg_schema = next;
			}
			i++;
			continue;
		}
		if (!strcmp(arg, "--json"))
			opt = O_JSON;
		else if (!strcmp(arg, "--body"))
			opt = O_BODY;
		else if (!strcmp(arg, "--dead"))
			opt = O_DEAD;
		else if (!strcmp(arg, "--endpoint"))
			opt = O_ENDPOINT;
		else if (!strcmp(arg, "--delivery"))
			opt = O_DELIVERY;
		else if (!strcmp(arg, "--since"))
			opt = O_SINCE;
		else if (!strcmp(arg, "--limit"))
			opt = O_LIMIT;
		else if (!strcmp(arg, "--state"))
			opt = O_STATE;
		if (!opt) {
			if (arg[0] == '-' && arg[1]) {
				/* Named up to any "=": "--pg=host=... password=..." stays unshown. */
				char name[64];
				size_t n = strcspn(arg, "=");
				if (n >= sizeof(name))
					n = sizeof(name) - 1;
				memcpy(name, arg, n);
				name[n] = '\0';
				return usage_error(o, "unknown option %s", name);
			}
			/* Not echoed: an unquoted conninfo splits into words like
			 * "password=...". */
			char what[160];
			snprintf(what, sizeof(what),
			         "unexpected argument (word %d after the command; not shown, since it may be part "
			         "of an unquoted conninfo)", i - 1);
			return usage_error(o, "%s", what);
		}
		if (!(o->cmd->takes & opt))
			return usage_error(o, "%s does not apply to this command", arg);
		if (opt & (O_ENDPOINT | O_DELIVERY | O_SINCE | O_LIMIT | O_STATE)) {
			if (!next)
				return usage_error(o, "%s needs a value", arg);
			i++;
			uint64_t v;
			if (opt == O_ENDPOINT || opt == O_DELIVERY) {
				if (!parse_uint(next, UINT64_MAX, &v))
					return usage_error(o, opt == O_ENDPOINT
					                   ? "--endpoint takes an endpoint id (a whole number from 1), not \"%s\""
					                   : "--delivery takes a delivery id (a whole number from 1), not \"%s\"",
					                   next);
				if (opt == O_ENDPOINT)
					o->endpoint = v;
				else
					o->delivery = v;
			} else if (opt == O_LIMIT) {
				if (!parse_uint(next, SIZE_MAX, &v))
					return usage_error(o, "--limit takes a whole number from 1, not \"%s\"", next);
				o->limit = (size_t)v;
			} else if (opt == O_STATE) {
				if (!strcmp(next, "pending"))
					o->state = FLAGHOOK_DELIVERY_PENDING;
				else if (!strcmp(next, "delivered"))
					o->state = FLAGHOOK_DELIVERY_DELIVERED;
				else if (!strcmp(next, "dead"))
					o->state = FLAGHOOK_DELIVERY_DEAD;
				else if (!strcmp(next, "any"))
					o->state = FLAGHOOK_STATE_ANY;
				else
					return usage_error(o, "--state is pending, delivered, dead or any, not \"%s\"", next);
			} else {
				const char *why = parse_time(next, &o->since_us);
				if (why) {
					char msg[320];
					snprintf(msg, sizeof(msg), "--since \"%.40s\" %s", next, why);
					return usage_error(o, "%s", msg);
				}
			}
		}
		o->given |= opt;
	}
	if (o->sqlite && o->pg)
		return usage_error(o, "%s", "give one store: --sqlite or --pg, not both");
	if (!o->sqlite && !o->pg) {
		const char *env = getenv("FLAGHOOK_PG_CONNINFO");
		if (env && *env) {
			o->pg = strdup(env);
			o->pg_from_env = 1;
			if (!o->pg) {
				fprintf(stderr, "flaghook: out of memory\n");
				return EXIT_STORE;
			}
		} else {
			return usage_error(o, "%s", "a store is needed: --sqlite PATH, --pg CONNINFO, "
			                   "or FLAGHOOK_PG_CONNINFO in the environment");
		}
	}
	if (o->pg_schema && !o->pg)
		return usage_error(o, "%s", "--pg-schema goes with a PostgreSQL outbox, not --sqlite");
	if (o->sqlite && !*o->sqlite)
		return usage_error(o, "%s", "--sqlite needs a path");
	if (o->cmd->kind == C_REQUEUE && !(o->given & (O_DELIVERY | O_ENDPOINT | O_SINCE)))
		return usage_error(o, "%s", "refusing to re-queue without a filter: give --delivery ID, "
		                   "--endpoint ID or --since TIME (re-queueing the whole outbox would send "
		                   "every delivery again)");
	return 0;
}

/* ------------------------------------------------------------------ */
/* Output                                                              */

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t len;
	uint32_t cp, min;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07, min = 0x10000;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* A JSON string: valid UTF-8 kept, control characters escaped, invalid
 * bytes replaced by U+FFFD. */
static void json_str(const void *data, size_t n)
{
	const unsigned char *p = data;
	putchar('"');
	for (size_t i = 0; i < n;) {
		unsigned c = p[i];
		if (c == '"' || c == '\\') {
			putchar('\\'), putchar((int)c), i++;
		} else if (c == '\n') {
			fputs("\\n", stdout), i++;
		} else if (c == '\r') {
			fputs("\\r", stdout), i++;
		} else if (c == '\t') {
			fputs("\\t", stdout), i++;
		} else if (c < 0x20 || c == 0x7f) {
			printf("\\u%04x", c), i++;
		} else {
			size_t len = utf8_len(p + i, n - i);
			if (!len) {
				fputs("\\ufffd", stdout), i++;
			} else {
				/* C1 controls (U+0080..U+009F) escaped too. */
				if (len == 2 && c == 0xc2 && p[i + 1] < 0xa0)
					printf("\\u%04x", p[i + 1]);
				else
					fwrite(p + i, 1, len, stdout);
				i += len;
			}
		}
	}
	putchar('"');
}

/* Text for a terminal: printable ASCII and valid UTF-8 as they are, the
 * rest as \n, \t, \xNN; at most `max` characters, then "...". */
static void text_str(const void *data, size_t n, size_t max)
{
	const unsigned char *p = data;
	size_t shown = 0;
	for (size_t i = 0; i < n;) {
		if (max && shown >= max) {
			fputs("...", stdout);
			return;
		}
		unsigned c = p[i];
		size_t len = c >= 0x80 ? utf8_len(p + i, n - i) : 1;
		if (c == '\n')
			fputs("\\n", stdout), i++;
		else if (c == '\r')
			fputs("\\r", stdout), i++;
		else if (c == '\t')
			fputs("\\t", stdout), i++;
		else if (c == '\\')
			fputs("\\\\", stdout), i++;
		else if (c < 0x20 || c == 0x7f || len == 0 || (len == 2 && c == 0xc2 && p[i + 1] < 0xa0))
			printf("\\x%02x", c), i++;
		else
			fwrite(p + i, 1, len, stdout), i += len;
		shown++;
	}
}

/* "2026-11-22T10:00:00Z", or "-" for 0. */
static const char *iso(int64_t us, char *buf, size_t size)
{
	if (us == 0)
		return "-";
	int64_t s = us / 1000000;
	if (us < 0 && us % 1000000)
		s--;
	time_t t = (time_t)s;
	struct tm tm;
	if (!gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, size, "@%" PRId64 "us", us);
	return buf;
}

static void json_time(const char *key, int64_t us)
{
	char buf[64];
	printf(",\"%s\":", key);
	if (us == 0) {
		fputs("null", stdout);
	} else {
		const char *t = iso(us, buf, sizeof(buf));
		json_str(t, strlen(t));
	}
	printf(",\"%s_us\":%" PRId64, key, us);
}

static const char *state_name(int32_t s)
{
	switch (s) {
	case FLAGHOOK_DELIVERY_PENDING: return "pending";
	case FLAGHOOK_DELIVERY_DELIVERED: return "delivered";
	case FLAGHOOK_DELIVERY_DEAD: return "dead";
	default: return "unknown";
	}
}

static const char *type_name(int32_t type, char *buf, size_t size)
{
	const char *n = flaghook_event_type_name(type);
	if (n)
		return n;
	snprintf(buf, size, "UNKNOWN(%d)", (int)type);
	return buf;
}

typedef struct listing {
	const opts *o;
	uint64_t rows;
} listing;

static int print_delivery(const flaghook_delivery *d, void *arg)
{
	listing *l = arg;
	const opts *o = l->o;
	char tbuf[32], ubuf[64];
	const char *type = type_name(d->event_type, tbuf, sizeof(tbuf));
	const char *event_id = d->event_id ? d->event_id : "";
	if (o->given & O_JSON) {
		printf("{\"id\":%" PRIu64 ",\"endpoint\":%" PRIu64 ",\"event_id\":", d->id, d->endpoint_id);
		json_str(event_id, strlen(event_id));
		fputs(",\"event_type\":", stdout);
		json_str(type, strlen(type));
		printf(",\"state\":\"%s\",\"attempts\":%d,\"last_status\":%d", state_name(d->state),
		       (int)d->attempts, (int)d->last_status);
		json_time("created", d->created_us);
		json_time("updated", d->updated_us);
		json_time("next_attempt", d->next_attempt_us);
		printf(",\"fifo\":%s,\"body_bytes\":%zu", d->fifo ? "true" : "false", d->body_len);
		if (o->given & O_BODY) {
			fputs(",\"body\":", stdout);
			json_str(d->body ? d->body : "", d->body ? d->body_len : 0);
		}
		puts("}");
	} else {
		if (l->rows == 0)
			printf("%-8s %-8s %-9s %8s %6s  %-20s  %-21s  %s\n", "ID", "ENDPOINT", "STATE", "ATTEMPTS",
			       "STATUS", "UPDATED", "TYPE", "EVENT");
		char status[16];
		if (d->last_status)
			snprintf(status, sizeof(status), "%d", (int)d->last_status);
		else
			strcpy(status, "-");
		printf("%-8" PRIu64 " %-8" PRIu64 " %-9s %8d %6s  %-20s  %-21s  ", d->id, d->endpoint_id,
		       state_name(d->state), (int)d->attempts, status, iso(d->updated_us, ubuf, sizeof(ubuf)),
		       type);
		text_str(event_id, strlen(event_id), 64);
		putchar('\n');
		if (o->given & O_BODY) {
			fputs("    body: ", stdout);
			text_str(d->body ? d->body : "", d->body ? d->body_len : 0, 0);
			putchar('\n');
		}
	}
	l->rows++;
	return ferror(stdout) ? 1 : 0;
}

static int print_attempt(const flaghook_attempt *a, void *arg)
{
	listing *l = arg;
	const opts *o = l->o;
	const char *event_id = a->event_id ? a->event_id : "";
	const char *error = a->error ? a->error : "";
	const void *response = a->response ? a->response : "";
	size_t response_len = a->response ? a->response_len : 0;
	int64_t duration_ms = a->finished_us >= a->started_us && a->started_us
	                      ? (a->finished_us - a->started_us) / 1000 : -1;
	if (o->given & O_JSON) {
		printf("{\"delivery\":%" PRIu64 ",\"endpoint\":%" PRIu64 ",\"event_id\":", a->delivery_id,
		       a->endpoint_id);
		json_str(event_id, strlen(event_id));
		printf(",\"attempt\":%d,\"outcome\":\"%s\",\"status\":%d,\"errclass\":\"%s\",\"error\":",
		       (int)a->number, flaghook_outcome_name(a->outcome), (int)a->status,
		       flaghook_errclass_name(a->errclass));
		json_str(error, strlen(error));
		json_time("started", a->started_us);
		json_time("finished", a->finished_us);
		if (duration_ms >= 0)
			printf(",\"duration_ms\":%" PRId64, duration_ms);
		else
			fputs(",\"duration_ms\":null", stdout);
		json_time("next_attempt", a->next_attempt_us);
		fputs(",\"response\":", stdout);
		json_str(response, response_len);
		puts("}");
	} else {
		char sbuf[64], status[16], dur[24];
		if (l->rows == 0)
			printf("%-8s %-8s %7s  %-9s %6s  %-8s %-20s %8s  %s\n", "DELIVERY", "ENDPOINT", "ATTEMPT",
			       "OUTCOME", "STATUS", "CLASS", "STARTED", "MS", "ERROR / RESPONSE");
		if (a->status)
			snprintf(status, sizeof(status), "%d", (int)a->status);
		else
			strcpy(status, "-");
		if (duration_ms >= 0)
			snprintf(dur, sizeof(dur), "%" PRId64, duration_ms);
		else
			strcpy(dur, "-");
		printf("%-8" PRIu64 " %-8" PRIu64 " %7d  %-9s %6s  %-8s %-20s %8s  ", a->delivery_id,
		       a->endpoint_id, (int)a->number, flaghook_outcome_name(a->outcome), status,
		       flaghook_errclass_name(a->errclass), iso(a->started_us, sbuf, sizeof(sbuf)), dur);
		if (*error)
			text_str(error, strlen(error), ERROR_TEXT_SHOWN);
		if (response_len) {
			fputs(*error ? " | response \"" : "response \"", stdout);
			text_str(response, response_len, RESPONSE_TEXT_SHOWN);
			putchar('"');
		}
		if (!*error && !response_len)
			putchar('-');
		putchar('\n');
	}
	l->rows++;
	return ferror(stdout) ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* Running                                                             */

/* Reports a store failure: the store's own detail (free of the conninfo),
 * else the code's description. */
static int store_failed(const opts *o, const char *doing, int rc)
{
	const char *detail = flaghook_last_error();
	fprintf(stderr, "flaghook: %s: %s: %s\n", o->cmd->name, doing,
	        detail && *detail ? detail : flaghook_strerror(rc));
	return EXIT_STORE;
}

static int open_store(const opts *o, flaghook_storage *st)
{
	int rc;
	if (o->sqlite) {
		/* Opening would create a missing file: an empty outbox that
		 * lists nothing, which a typo in the path must not look like. */
		struct stat sb;
		if (stat(o->sqlite, &sb) != 0) {
			int e = errno;
			fprintf(stderr, "flaghook: %s: cannot open the SQLite outbox %s: %s%s\n", o->cmd->name,
			        o->sqlite, strerror(e),
			        e == ENOENT ? " (flaghook does not create an outbox; check the path)" : "");
			return EXIT_STORE;
		}
		if (S_ISDIR(sb.st_mode)) {
			fprintf(stderr, "flaghook: %s: cannot open the SQLite outbox %s: it is a directory\n",
			        o->cmd->name, o->sqlite);
			return EXIT_STORE;
		}
		flaghook_sqlite_options so = FLAGHOOK_SQLITE_OPTIONS_INIT;
		so.path = o->sqlite;
		rc = flaghook_sqlite_open(st, &so);
		if (rc) {
			const char *detail = flaghook_last_error();
			fprintf(stderr, "flaghook: %s: cannot open the SQLite outbox %s: %s\n", o->cmd->name,
			        o->sqlite, *detail ? detail : flaghook_strerror(rc));
			return EXIT_STORE;
		}
		return 0;
	}
	flaghook_pg_options po = FLAGHOOK_PG_OPTIONS_INIT;
	po.conninfo = o->pg;
	po.schema = o->pg_schema;
	po.connections = 1;
	rc = flaghook_pg_open(st, &po);
	if (rc) {
		const char *detail = flaghook_last_error();
		fprintf(stderr, "flaghook: %s: cannot open the PostgreSQL outbox (conninfo from %s, not shown): %s\n",
		        o->cmd->name, o->pg_from_env ? "FLAGHOOK_PG_CONNINFO" : "--pg",
		        *detail ? detail : flaghook_strerror(rc));
		return EXIT_STORE;
	}
	return 0;
}

static void fill_query(const opts *o, flaghook_query *q)
{
	flaghook_query init = FLAGHOOK_QUERY_INIT;
	*q = init;
	q->delivery_id = o->delivery;
	q->endpoint_id = o->endpoint;
	q->since_us = o->since_us;
	q->limit = o->limit;
}

static int run_list(const opts *o, const flaghook_storage *st)
{
	flaghook_query q;
	fill_query(o, &q);
	if (o->cmd->kind == C_DEAD)
		q.state = FLAGHOOK_DELIVERY_DEAD;
	else
		q.state = (o->given & O_STATE) ? o->state : FLAGHOOK_STATE_ANY;
	listing l = { o, 0 };
	int rc = o->cmd->kind == C_ATTEMPTS ? flaghook_storage_attempts(st, &q, print_attempt, &l)
	                                    : flaghook_storage_list(st, &q, print_delivery, &l);
	if (rc)
		return store_failed(o, o->cmd->kind == C_ATTEMPTS ? "reading the attempt log"
		                                                  : "listing deliveries", rc);
	if (l.rows == 0 && !(o->given & O_JSON))
		puts(o->cmd->kind == C_DEAD ? "no dead letters" : o->cmd->kind == C_ATTEMPTS
		     ? "no attempts" : "no deliveries");
	return 0;
}

static int find_one(const flaghook_delivery *d, void *arg)
{
	*(int32_t *)arg = d->state;
	return 1;
}

static int run_requeue(const opts *o, const flaghook_storage *st)
{
	flaghook_query q;
	fill_query(o, &q);
	/* --endpoint alone means its dead letters; --dead says so anywhere. */
	if ((o->given & O_DEAD) || !(o->given & (O_DELIVERY | O_SINCE)))
		q.state = FLAGHOOK_DELIVERY_DEAD;
	uint64_t n = 0;
	int rc = flaghook_storage_requeue(st, &q, &n);
	if (rc)
		return store_failed(o, "re-queueing", rc);
	if (o->given & O_JSON)
		printf("{\"requeued\":%" PRIu64 "}\n", n);
	else
		printf("requeued %" PRIu64 " deliver%s\n", n, n == 1 ? "y" : "ies");
	if (n == 0 && (o->given & O_DELIVERY)) {
		/* Say why: a wrong id is an error, a pending one is not. */
		flaghook_query one = FLAGHOOK_QUERY_INIT;
		one.delivery_id = o->delivery;
		int32_t state = -1;
		rc = flaghook_storage_list(st, &one, find_one, &state);
		if (rc)
			return store_failed(o, "looking up the delivery", rc);
		if (state < 0) {
			fprintf(stderr, "flaghook: requeue: there is no delivery %" PRIu64 " in this outbox\n",
			        o->delivery);
			return EXIT_STORE;
		}
		fprintf(stderr, "flaghook: requeue: delivery %" PRIu64 " is %s%s\n", o->delivery,
		        state_name(state), state == FLAGHOOK_DELIVERY_PENDING ? " already; left as it is"
		        : " and does not match the other filters");
	}
	return 0;
}

static int run_pending(const opts *o, const flaghook_storage *st)
{
	if (!st->pending) {
		fprintf(stderr, "flaghook: pending: this store cannot count pending deliveries\n");
		return EXIT_STORE;
	}
	uint64_t n = 0;
	int rc = st->pending(&n, st->user_data);
	if (rc)
		return store_failed(o, "counting pending deliveries", rc);
	if (o->given & O_JSON)
		printf("{\"pending\":%" PRIu64 "}\n", n);
	else
		printf("%" PRIu64 "\n", n);
	return 0;
}

int fh_store_main(int argc, char **argv)
{
	opts o;
	memset(&o, 0, sizeof(o));
	o.state = FLAGHOOK_STATE_ANY;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			o.cmd = &commands[i];
	if (!o.cmd)
		return EXIT_USAGE;

	int rc = parse(argc, argv, &o);
	if (rc == 0) {
		flaghook_storage st = FLAGHOOK_STORAGE_INIT;
		rc = open_store(&o, &st);
		if (rc == 0) {
			switch (o.cmd->kind) {
			case C_REQUEUE: rc = run_requeue(&o, &st); break;
			case C_PENDING: rc = run_pending(&o, &st); break;
			default: rc = run_list(&o, &st); break;
			}
			flaghook_storage_close(&st);
		}
	} else if (rc < 0) {
		rc = 0;                 /* --help */
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "flaghook: %s: writing the output: %s\n", o.cmd->name, strerror(errno));
		if (!rc)
			rc = EXIT_STORE;
	}
	if (o.pg) {
		memset(o.pg, 0, strlen(o.pg));
		free(o.pg);
	}
	return rc;
}
