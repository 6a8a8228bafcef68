/* The JSON writer against Python's rules: the python-json vectors, float
 * repr, integers, UTF-8 checking, and timestamps. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "payload/json.h"
#include "payload/render.h"
#include "vectors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- rebuilding vector values from vectors_typed.py's tokens ---- */

typedef struct tok { char **v; size_t n, i; } tok;

static char *unhex_str(const char *hex, size_t *len)
{
	uint8_t *b;
	*len = vec_unhex(hex, &b);
	char *s = realloc(b, *len + 1);
	s[*len] = '\0';
	return s;
}

/* Builds a flaghook_value tree (all allocations leak into `arena`). */
typedef struct arena { void *p[4096]; size_t n; } arena;
static void *arena_alloc(arena *a, size_t size)
{
	void *p = calloc(1, size ? size : 1);
	assert_true(a->n < 4096);
	a->p[a->n++] = p;
	return p;
}
static void arena_free(arena *a) { while (a->n) free(a->p[--a->n]); }

static bool has_nul;

static void build(tok *t, flaghook_value *out, arena *a)
{
	const char *s = t->v[t->i++];
	size_t len;
	switch (s[0]) {
	case 'N': out->type = FLAGHOOK_VALUE_NULL; break;
	case 'T': out->type = FLAGHOOK_VALUE_BOOL; out->boolean = 1; break;
	case 'F': out->type = FLAGHOOK_VALUE_BOOL; out->boolean = 0; break;
	case 'I': out->type = FLAGHOOK_VALUE_INT; out->integer = strtoll(s + 1, NULL, 10); break;
	case 'D': out->type = FLAGHOOK_VALUE_FLOAT; out->number = strtod(s + 1, NULL); break;
	case 'S': {
		char *str = unhex_str(s + 1, &len);
		has_nul |= strlen(str) != len;
		a->p[a->n++] = str;
		out->type = FLAGHOOK_VALUE_STRING;
		out->string = str;
		break;
	}
	case '[': {
		size_t n = strtoul(s + 1, NULL, 10);
		flaghook_value *items = arena_alloc(a, n * sizeof(*items));
		for (size_t i = 0; i < n; i++)
			build(t, &items[i], a);
		out->type = FLAGHOOK_VALUE_ARRAY;
		out->items = items;
		out->count = n;
		break;
	}
	case '{': {
		size_t n = strtoul(s + 1, NULL, 10);
		flaghook_member *m = arena_alloc(a, n * sizeof(*m));
		for (size_t i = 0; i < n; i++) {
			char *key = unhex_str(t->v[t->i++] + 1, &len);
			a->p[a->n++] = key;
			m[i].key = key;
			build(t, &m[i].value, a);
		}
		out->type = FLAGHOOK_VALUE_OBJECT;
		out->members = m;
		out->count = n;
		break;
	}
	default: fail_msg("bad token %s", s);
	}
}

static void test_python_json_vectors(void **state)
{
	(void)state;
	const char *dir = getenv("FLAGHOOK_VECTORS");
	char cmd[1200];
	snprintf(cmd, sizeof(cmd), "python3 %s %s/python-json.json", test_path("vectors_typed.py"),
	         dir ? dir : "tests/vectors");
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char line[65536];
	int cases = 0, via_value = 0;
	while (fgets(line, sizeof(line), p)) {
		line[strcspn(line, "\n")] = '\0';
		char *save = NULL;
		char *name_hex = strtok_r(line, " ", &save);
		char *want_hex = strtok_r(NULL, " ", &save);
		tok t = { calloc(4096, sizeof(char *)), 0, 0 };
		for (char *w; (w = strtok_r(NULL, " ", &save));)
			t.v[t.n++] = w;
		size_t name_len, want_len;
		char *name = unhex_str(name_hex, &name_len);
		char *want = unhex_str(want_hex, &want_len);
		arena a = { .n = 0 };
		flaghook_value v;
		has_nul = false;
		build(&t, &v, &a);
		if (!has_nul) {
			/* The library's own path: typed values, objects sorted by it. */
			flaghook_buf out = FLAGHOOK_BUF_INIT;
			int rc = flaghook__render_value(&out, &v, 0);
			if (rc || out.size != want_len || memcmp(out.ptr, want, want_len))
				fail_msg("vector '%s': got %s (rc %d), want %s", name, out.ptr ? out.ptr : "", rc, want);
			flaghook_buf_free(&out);
			via_value++;
		} else {
			/* A NUL cannot live in a C string member; check the writer's
			 * length-counted path on the raw bytes instead. */
			assert_int_equal(v.type, FLAGHOOK_VALUE_STRING);
			size_t raw_len;
			char *raw = unhex_str(t.v[0] + 1, &raw_len);
			flaghook_buf out = FLAGHOOK_BUF_INIT;
			fh_json w;
			flaghook__json_init(&w, &out, 0, false);
			flaghook__json_string(&w, raw, raw_len);
			flaghook__json_finish(&w);
			assert_int_equal(w.err, 0);
			if (out.size != want_len || memcmp(out.ptr, want, want_len))
				fail_msg("vector '%s': got %s, want %s", name, out.ptr, want);
			flaghook_buf_free(&out);
			free(raw);
		}
		arena_free(&a);
		free(t.v);
		free(name);
		free(want);
		cases++;
	}
	assert_int_equal(pclose(p), 0);
	assert_true(cases >= 10);
	assert_true(via_value >= cases - 1);
}

/* ---- floats ---- */

static void check_repr(double v, const char *want)
{
	char got[32];
	assert_true(flaghook__double_repr(got, v) > 0);
	if (strcmp(got, want))
		fail_msg("repr(%.17g): got %s, want %s", v, got, want);
}

static void test_float_repr(void **state)
{
	(void)state;
	check_repr(50.0, "50.0");
	check_repr(0.1, "0.1");
	check_repr(1e-05, "1e-05");
	check_repr(0.0001, "0.0001");
	check_repr(1e16, "1e+16");
	check_repr(1e15, "1000000000000000.0");
	check_repr(-0.0, "-0.0");
	check_repr(0.0, "0.0");
	check_repr(5e-324, "5e-324");
	check_repr(1.7976931348623157e308, "1.7976931348623157e+308");
	check_repr(123456789012345678.0, "1.2345678901234568e+17");
	check_repr(0.3, "0.3");
	check_repr(2.0 / 3.0, "0.6666666666666666");
	check_repr(-1.5e-7, "-1.5e-07");
	char tmp[32];
	assert_int_equal(flaghook__double_repr(tmp, NAN), -1);
	assert_int_equal(flaghook__double_repr(tmp, INFINITY), -1);
}

/* ---- integers and strings ---- */

static char *write_int(int64_t v)
{
	static char out[64];
	flaghook_buf b = FLAGHOOK_BUF_INIT;
	fh_json w;
	flaghook__json_init(&w, &b, 0, false);
	flaghook__json_int(&w, v);
	flaghook__json_finish(&w);
	snprintf(out, sizeof(out), "%s", b.ptr);
	flaghook_buf_free(&b);
	return out;
}

static void test_integers(void **state)
{
	(void)state;
	assert_string_equal(write_int(0), "0");
	assert_string_equal(write_int(-1), "-1");
	assert_string_equal(write_int(INT64_MAX), "9223372036854775807");
	assert_string_equal(write_int(INT64_MIN), "-9223372036854775808");
	assert_string_equal(write_int(9007199254740993LL), "9007199254740993");
}

static int write_str(const char *s, size_t len, flaghook_buf *b, size_t *bad)
{
	fh_json w;
	flaghook__json_init(&w, b, 0, false);
	flaghook__json_string(&w, s, len);
	flaghook__json_finish(&w);
	*bad = w.bad_offset;
	return w.err;
}

static void test_invalid_utf8(void **state)
{
	(void)state;
	static const struct { const char *s; size_t at; } bad[] = {
		{ "ok\xc0\x80", 2 },            /* overlong NUL */
		{ "\xe0\x80\xaf", 0 },          /* overlong slash */
		{ "ab\xed\xa0\x80", 2 },        /* UTF-16 surrogate */
		{ "\xf4\x90\x80\x80", 0 },      /* above U+10FFFF */
		{ "x\x80", 1 },                 /* stray continuation */
		{ "xy\xe6\x97", 2 },            /* truncated */
		{ "\xff", 0 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		flaghook_buf b = FLAGHOOK_BUF_INIT;
		size_t at = 0;
		assert_int_equal(write_str(bad[i].s, strlen(bad[i].s), &b, &at), FLAGHOOK_EUTF8);
		assert_int_equal(at, bad[i].at);
		assert_int_equal(flaghook__utf8_invalid_at(bad[i].s, strlen(bad[i].s)), bad[i].at);
		flaghook_buf_free(&b);
	}
	/* The largest code points of each length are fine. */
	flaghook_buf b = FLAGHOOK_BUF_INIT;
	size_t at;
	const char *edge = "\x7f\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf";
	assert_int_equal(write_str(edge, strlen(edge), &b, &at), 0);
	assert_string_equal(b.ptr, "\"\\u007f\\u07ff\\uffff\\udbff\\udfff\"");
	flaghook_buf_free(&b);
}

static void test_size_limit(void **state)
{
	(void)state;
	flaghook_buf b = FLAGHOOK_BUF_INIT;
	fh_json w;
	flaghook__json_init(&w, &b, 10, false);
	flaghook__json_string(&w, "0123456789", 10);
	assert_int_equal(w.err, FLAGHOOK_ETOOBIG);
	flaghook_buf_free(&b);
}

/* ---- timestamps ---- */

static void check_time(int64_t us, fh_time_style style, const char *want)
{
	char got[32];
	assert_int_equal(flaghook__format_time(got, us, style), (int)strlen(want));
	assert_string_equal(got, want);
}

static void test_times(void **state)
{
	(void)state;
	check_time(0, FH_TIME_STRFTIME, "1970-01-01T00:00:00.000000Z");
	check_time(0, FH_TIME_DRF, "1970-01-01T00:00:00Z");
	check_time(0, FH_TIME_DJANGO, "1970-01-01T00:00:00Z");
	check_time(1582479057006318LL, FH_TIME_DRF, "2020-02-23T17:30:57.006318Z");
	check_time(1583589547040123LL, FH_TIME_DJANGO, "2020-03-07T13:59:07.040Z");
	check_time(-1, FH_TIME_STRFTIME, "1969-12-31T23:59:59.999999Z");
	check_time(951782400000000LL, FH_TIME_STRFTIME, "2000-02-29T00:00:00.000000Z");
	check_time(-62135596800LL * 1000000, FH_TIME_STRFTIME, "1-01-01T00:00:00.000000Z");
	check_time(-62135596800LL * 1000000, FH_TIME_DRF, "0001-01-01T00:00:00Z");
	check_time(-62009268954999994LL, FH_TIME_STRFTIME, "5-01-02T03:04:05.000006Z");
	check_time(-62009268954999994LL, FH_TIME_DJANGO, "0005-01-02T03:04:05.000Z");
	check_time(253402300799LL * 1000000 + 999999, FH_TIME_STRFTIME, "9999-12-31T23:59:59.999999Z");
	char t[32];
	assert_int_equal(flaghook__format_time(t, 253402300800LL * 1000000, FH_TIME_STRFTIME), -1);
	assert_int_equal(flaghook__format_time(t, INT64_MIN, FH_TIME_STRFTIME), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_python_json_vectors),
		cmocka_unit_test(test_float_repr),
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_times),
	};
	return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
