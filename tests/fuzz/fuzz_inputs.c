/*
 * One fuzz target for everything the library parses or escapes that can
 * come from outside: signature headers and hex signatures (receivers feed
 * them from the network), Retry-After values (senders get them from
 * receivers), and strings and trees of values in events (hosts pass user
 * text), including counts that lie about their arrays in ways that would
 * wrap the library's arithmetic; and the JSON bindings hand in (events,
 * render and client options).  The first byte picks the part; the rest
 * is its input.
 *
 * Built with libFuzzer by `make fuzz`; tests/fuzz/replay.c runs the corpus
 * under `make check` with any compiler.
 */
#include "client/policy.h"
#include "ffi/ffi.h"
#include "payload/render.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *cstr(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);
	if (!s)
		abort();
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* A rendered body must be printable ASCII and balanced, outside strings. */
static void check_json(const flaghook_buf *b)
{
	int depth = 0;
	bool in_string = false;
	for (size_t i = 0; i < b->size; i++) {
		unsigned char c = (unsigned char)b->ptr[i];
		if (c < 0x20 || c > 0x7e)
			abort();
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
			continue;
		}
		if (c == '"')
			in_string = true;
		else if (c == '{' || c == '[')
			depth++;
		else if (c == '}' || c == ']')
			depth--;
		if (depth < 0)
			abort();
	}
	if (depth || in_string || b->ptr[b->size] != '\0')
		abort();
}

/* Builds a value tree from bytes: a tiny program, bounded in size. */
typedef struct reader { const uint8_t *p; size_t n; int nodes; } reader;

static uint8_t next(reader *r)
{
	if (!r->n)
		return 0;
	r->n--;
	return *r->p++;
}

static void build(reader *r, flaghook_value *v, int depth, void **owned, size_t *nowned)
{
	memset(v, 0, sizeof(*v));
	uint8_t op = next(r);
	if (++r->nodes > 200 || *nowned > 500)
		op = 0;
	switch (op % 7) {
	case 0: v->type = FLAGHOOK_VALUE_NULL; break;
	case 1: v->type = FLAGHOOK_VALUE_BOOL; v->boolean = next(r) & 1; break;
	case 2: {
		v->type = FLAGHOOK_VALUE_INT;
		for (int i = 0; i < 8; i++)
			v->integer = (int64_t)((uint64_t)v->integer << 8 | next(r));
		break;
	}
	case 3: {
		v->type = FLAGHOOK_VALUE_FLOAT;
		uint64_t bits = 0;
		for (int i = 0; i < 8; i++)
			bits = bits << 8 | next(r);
		memcpy(&v->number, &bits, sizeof(bits));
		break;
	}
	case 4: {
		size_t len = next(r) % 32;
		len = len < r->n ? len : r->n;
		char *s = cstr(r->p, len); /* any bytes: invalid UTF-8 included */
		r->p += len, r->n -= len;
		owned[(*nowned)++] = s;
		v->type = FLAGHOOK_VALUE_STRING;
		v->string = s;
		break;
	}
	case 5: case 6: {
		size_t count = depth > 40 ? 0 : next(r) % 5;
		bool object = op % 7 == 6;
		if (object) {
			flaghook_member *m = calloc(count ? count : 1, sizeof(*m));
			owned[(*nowned)++] = m;
			for (size_t i = 0; i < count; i++) {
				size_t len = next(r) % 8;
				len = len < r->n ? len : r->n;
				char *k = cstr(r->p, len);
				r->p += len, r->n -= len;
				owned[(*nowned)++] = k;
				m[i].key = k;
				build(r, &m[i].value, depth + 1, owned, nowned);
			}
			v->type = FLAGHOOK_VALUE_OBJECT;
			v->members = m;
		} else {
			flaghook_value *items = calloc(count ? count : 1, sizeof(*items));
			owned[(*nowned)++] = items;
			for (size_t i = 0; i < count; i++)
				build(r, &items[i], depth + 1, owned, nowned);
			v->type = FLAGHOOK_VALUE_ARRAY;
			v->items = items;
		}
		v->count = count;
		break;
	}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t which = data[0];
	data++, size--;
	if (which >= 0xF0) { /* JSON from a binding */
		int rc = 0;
		if ((which & 3) == 0 || (which & 3) == 1) {
			/* an event (0), or render options for a fixed event (1) */
			static const char ev[] = "{\"event_type\": \"FLAG_DELETED\", \"environment_id\": 1, \"data\": "
			                         "{\"changed_by\": \"a\", \"timestamp\": \"2024-01-01T00:00:00Z\", "
			                         "\"new_state\": null, \"previous_state\": {\"enabled\": false, "
			                         "\"environment\": {\"id\": 1, \"name\": \"e\"}, \"feature\": {\"id\": 1, "
			                         "\"name\": \"f\", \"type\": \"STANDARD\", \"created_date\": "
			                         "\"2024-01-01T00:00:00Z\", \"default_enabled\": false, \"description\": null, "
			                         "\"initial_value\": null, \"project\": {\"id\": 1, \"name\": \"p\"}}, "
			                         "\"feature_segment\": null, \"feature_state_value\": null}}}";
			char *opts = (which & 3) == 1 ? cstr(data, size) : NULL;
			char *out = NULL;
			size_t len = 0;
			char err[256];
			rc = (which & 3) == 0 ? flaghook_render_json(&out, &len, (const char *)data, size, NULL, err, sizeof(err))
			                      : flaghook_render_json(&out, &len, ev, sizeof(ev) - 1, opts, err, sizeof(err));
			if (rc == 0) {
				flaghook_buf b = { out, len, len + 1, NULL };
				check_json(&b);
			} else if (out || len || !err[0]) {
				abort(); /* a failure leaves nothing behind and says why */
			}
			flaghook_free(out);
			free(opts);
		} else {
			/* client (2) or endpoint (3) options, read, not used */
			char *json = cstr(data, size);
			fh_options_json x;
			rc = (which & 3) == 2 ? flaghook__client_options_json(&x, json) : flaghook__endpoint_options_json(&x, json);
			if (rc == 0)
				flaghook__options_json_free(&x);
			free(json);
		}
		if (rc != 0 && rc != FLAGHOOK_EEVENT && rc != FLAGHOOK_EINVAL && rc != FLAGHOOK_EUTF8 &&
		    rc != FLAGHOOK_ETOOBIG && rc != FLAGHOOK_ENOMEM)
			abort();
		return 0;
	}
	switch (which % 5) {
	case 0: { /* Standard Webhooks: id NUL timestamp NUL header NUL body */
		const char *secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
		char *s = cstr(data, size);
		const char *part[3] = { "", "", "" };
		size_t off = 0;
		for (int k = 0; k < 3 && off < size; k++) {
			part[k] = s + off;
			off += strlen(s + off) + 1;
		}
		if (off > size)
			off = size;
		/* The tolerance from the input too: 0, negative, INT64_MAX. */
		static const int64_t tolerances[] = { 300, 0, -1, INT64_MAX };
		int64_t tol = tolerances[which / 5 % 4];
		int rc = flaghook_standard_verify(&secret, 1, part[0], part[1], part[2], data + off,
		                                  size - off, 1614265330, tol);
		if (rc != 0 && rc != FLAGHOOK_EVERIFY && !(tol < 0 && rc == FLAGHOOK_EINVAL))
			abort();
		free(s);
		break;
	}
	case 1: { /* X-Flagsmith-Signature as a receiver sees it */
		int rc = flaghook_verify("secret", 6, "{}", 2, (const char *)data, size);
		if (rc != 0 && rc != FLAGHOOK_EVERIFY)
			abort();
		break;
	}
	case 2: { /* Retry-After from a receiver */
		char *s = cstr(data, size);
		int64_t ms = flaghook__retry_after_ms(s, 1445412480);
		if (ms < -1)
			abort();
		free(s);
		break;
	}
	case 3: { /* a tree of values, rendered as an extra member would be */
		void *owned[1024];
		size_t nowned = 0;
		reader r = { data, size, 0 };
		flaghook_value v;
		build(&r, &v, 0, owned, &nowned);
		flaghook_buf out = FLAGHOOK_BUF_INIT;
		int rc = flaghook__render_value(&out, &v, r.n & 1 ? FLAGHOOK_RENDER_COMPACT : 0);
		if (rc == 0)
			check_json(&out);
		else if (rc != FLAGHOOK_EUTF8 && rc != FLAGHOOK_EEVENT)
			abort();
		flaghook_buf_free(&out);
		while (nowned)
			free(owned[--nowned]);
		break;
	}
	case 4: { /* a hostile count: larger than any array could be */
		reader r = { data, size, 0 };
		uint64_t x = 0;
		for (int i = 0; i < 8; i++)
			x = x << 8 | next(&r);
		size_t count = (size_t)FLAGHOOK_MAX_ITEMS + 1 + (size_t)(x % (SIZE_MAX - FLAGHOOK_MAX_ITEMS));
		flaghook_value one = { .type = FLAGHOOK_VALUE_NULL };
		flaghook_member member = { "k", one };
		flaghook_member arr = { "a", { .type = FLAGHOOK_VALUE_ARRAY, .items = &one, .count = count } };
		flaghook_member obj = { "o", { .type = FLAGHOOK_VALUE_OBJECT, .members = &member, .count = count } };
		flaghook_mv_value mv = { .option_value = one,
		                         .percentage_allocation = { .type = FLAGHOOK_VALUE_INT, .integer = 100 } };
		flaghook_published_state ps = { .enabled = 1, .value = one, .mv_values = &mv, .mv_count = 1 };
		flaghook_audit_log audit = { .log = "l", .project = { 1, "p", 1 }, .extra = &member, .extra_count = 1 };
		flaghook_version_published vp = { .feature_id = 1, .feature_name = "f", .states = &ps,
		                                  .state_count = 1, .uuid = "u" };
		flaghook_event ev = FLAGHOOK_EVENT_INIT;
		ev.type = FLAGHOOK_EVENT_AUDIT_LOG_CREATED;
		ev.audit = &audit;
		switch (next(&r) % 5) {
		case 0: audit.extra_count = count; break;
		case 1: audit.extra = &arr; break;
		case 2: audit.extra = &obj; break;
		case 3: ps.mv_count = count; /* fall through */
		case 4:
			if (!ps.mv_count || ps.mv_count == 1)
				vp.state_count = count;
			ev.type = FLAGHOOK_EVENT_NEW_VERSION_PUBLISHED;
			ev.environment_id = 1;
			ev.audit = NULL;
			ev.published = &vp;
			break;
		}
		flaghook_render_options o = FLAGHOOK_RENDER_OPTIONS_INIT;
		o.max_body_bytes = next(&r) & 1 ? 0 : (size_t)next(&r) << 8;
		flaghook_buf out = FLAGHOOK_BUF_INIT;
		int rc = flaghook_render(&out, &ev, &o);
		if (rc != FLAGHOOK_EEVENT && rc != FLAGHOOK_ETOOBIG)
			abort();
		if (out.ptr)
			abort();
		break;
	}
	}
	return 0;
}
