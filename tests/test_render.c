/* Rendering: golden bodies for every event type and profile, and bad input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "flaghook.h"
#include "sample.h"
#include "sample_events.h"
#include "vectors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_golden(void **state)
{
	(void)state;
	size_t n;
	const golden_case *cases = golden_cases(&n);
	assert_true(n >= 10);
	for (size_t i = 0; i < n; i++) {
		char rel[256];
		snprintf(rel, sizeof(rel), "golden/%s.json", cases[i].name);
		size_t want_len;
		char *want = read_whole(test_path(rel), &want_len);
		flaghook_render_options o = FLAGHOOK_RENDER_OPTIONS_INIT;
		o.profile = cases[i].profile;
		o.flags = cases[i].flags;
		flaghook_buf out = FLAGHOOK_BUF_INIT;
		int rc = flaghook_render(&out, cases[i].event, &o);
		if (rc)
			fail_msg("%s: rc %d: %s", cases[i].name, rc, flaghook_last_error());
		if (out.size != want_len || memcmp(out.ptr, want, want_len))
			fail_msg("%s differs\n got: %s\nwant: %s", cases[i].name, out.ptr, want);
		assert_int_equal(out.ptr[out.size], '\0');
		flaghook_buf_free(&out);
		free(want);
	}
}

/* The environment sample is what Flagsmith's test button sends today: its
 * pre-multivariate bytes (from the server's own sample code) plus the list. */
static void test_sample_matches_flagsmith(void **state)
{
	(void)state;
	flaghook_buf out = FLAGHOOK_BUF_INIT;
	assert_int_equal(flaghook_render(&out, fh_sample_organisation(), NULL), 0);
	assert_string_equal(out.ptr,
		"{\"data\": {\"author\": {\"email\": \"user@domain.com\", \"first_name\": \"Jane\", \"id\": 1, "
		"\"last_name\": \"Doe\"}, \"created_date\": \"2020-02-23T17:30:57.006318Z\", \"environment\": null, "
		"\"log\": \"New Flag / Remote Config created: my_feature\", \"project\": {\"id\": 1, \"name\": "
		"\"Test Project\", \"organisation\": 1}, \"related_object_id\": 1, \"related_object_type\": "
		"\"FEATURE\"}, \"event_type\": \"AUDIT_LOG_CREATED\"}");
	char sig[65];
	assert_int_equal(flaghook_sign(sig, sizeof(sig), "secret", 6, out.ptr, out.size), 0);
	assert_string_equal(sig, "0efa9dc1c897d8b48ba11bef5a12b7458b45b3bbc4900a41ccec919c1bb06ee4");
	flaghook_buf_free(&out);
}

static void test_null_and_versions(void **state)
{
	(void)state;
	flaghook_buf out = FLAGHOOK_BUF_INIT;
	assert_int_equal(flaghook_render(NULL, fh_sample_environment(), NULL), FLAGHOOK_EINVAL);
	assert_int_equal(flaghook_render(&out, NULL, NULL), FLAGHOOK_EINVAL);
	flaghook_event ev = *fh_sample_environment();
	ev.version = 99;
	assert_int_equal(flaghook_render(&out, &ev, NULL), FLAGHOOK_EVERSION);
	ev.version = FLAGHOOK_EVENT_VERSION;
	ev.type = 42;
	assert_int_equal(flaghook_render(&out, &ev, NULL), FLAGHOOK_EEVENT);
	ev.type = FLAGHOOK_EVENT_AUDIT_LOG_CREATED; /* but only flag is set */
	assert_int_equal(flaghook_render(&out, &ev, NULL), FLAGHOOK_EEVENT);
	flaghook_render_options o = FLAGHOOK_RENDER_OPTIONS_INIT;
	o.version = 0;
	assert_int_equal(flaghook_render(&out, fh_sample_environment(), &o), FLAGHOOK_EVERSION);
	o.version = FLAGHOOK_RENDER_OPTIONS_VERSION;
	o.profile = 7;
	assert_int_equal(flaghook_render(&out, fh_sample_environment(), &o), FLAGHOOK_EINVAL);
	assert_null(out.ptr);
	o.profile = 0;
	o.flags = 0x80;
	assert_int_equal(flaghook_render(&out, fh_sample_environment(), &o), FLAGHOOK_EINVAL);
	flaghook_buf_free(NULL);
	/* NEW_VERSION_PUBLISHED names no environment in its body: the event must. */
	flaghook_version_published vp = { .feature_id = 1, .feature_name = "f", .uuid = "u" };
	flaghook_event pub = FLAGHOOK_EVENT_INIT;
	pub.type = FLAGHOOK_EVENT_NEW_VERSION_PUBLISHED;
	pub.published = &vp;
	assert_int_equal(flaghook_render(&out, &pub, NULL), FLAGHOOK_EEVENT);
	assert_non_null(strstr(flaghook_last_error(), "event.environment_id"));
	pub.environment_id = 3;
	assert_int_equal(flaghook_render(&out, &pub, NULL), 0);
	flaghook_buf_free(&out);
	flaghook_event blank;
	assert_int_equal(flaghook_event_init(&blank, FLAGHOOK_EVENT_VERSION), 0);
	assert_int_equal(blank.version, FLAGHOOK_EVENT_VERSION);
	assert_int_equal(flaghook_event_init(&blank, 2), FLAGHOOK_EVERSION);
}

/* A mutable copy of the environment sample's structs. */
typedef struct fixture {
	flaghook_feature_state new_state, old_state;
	flaghook_flag_change change;
	flaghook_event ev;
	flaghook_mv_value mv[1];
} fixture;

static void fixture_init(fixture *f)
{
	const flaghook_event *s = fh_sample_environment();
	f->new_state = *s->flag->new_state;
	f->old_state = *s->flag->previous_state;
	f->mv[0] = s->flag->new_state->mv_values[0];
	f->new_state.mv_values = f->mv;
	f->change = *s->flag;
	f->change.new_state = &f->new_state;
	f->change.previous_state = &f->old_state;
	f->ev = *s;
	f->ev.flag = &f->change;
}

/* Renders and checks the code and that the message names `path`. */
static void expect_error(const flaghook_event *ev, int code, const char *path)
{
	flaghook_buf out = FLAGHOOK_BUF_INIT;
	int rc = flaghook_render(&out, ev, NULL);
	if (rc != code)
		fail_msg("want %d, got %d (%s)", code, rc, flaghook_last_error());
	if (!strstr(flaghook_last_error(), path))
		fail_msg("message '%s' does not name '%s'", flaghook_last_error(), path);
	assert_null(out.ptr);
}

static void test_bad_events(void **state)
{
	(void)state;
	fixture f;

	fixture_init(&f);
	f.new_state.feature.name = "bad \xc3\x28 name";
	expect_error(&f.ev, FLAGHOOK_EUTF8, "event.flag.new_state.feature.name: invalid UTF-8 at byte 4");

	fixture_init(&f);
	f.old_state.environment.name = "\xed\xa0\x80";
	expect_error(&f.ev, FLAGHOOK_EUTF8, "event.flag.previous_state.environment.name");

	fixture_init(&f);
	f.change.changed_by = NULL;
	expect_error(&f.ev, FLAGHOOK_EEVENT, "event.flag.changed_by: is NULL but required");

	fixture_init(&f);
	flaghook_feature_segment seg = { .priority = 1, .segment = { .id = 1, .name = "s" } };
	f.new_state.feature_segment = &seg;
	expect_error(&f.ev, FLAGHOOK_EEVENT, "event.flag.new_state: has both an identity and a feature_segment");

	fixture_init(&f);
	f.mv[0].option_value.type = FLAGHOOK_VALUE_STRING;
	f.mv[0].option_value.string = "\xff";
	expect_error(&f.ev, FLAGHOOK_EUTF8, "event.flag.new_state.mv_values[0].value");

	fixture_init(&f);
	f.mv[0].percentage_allocation.type = FLAGHOOK_VALUE_STRING;
	expect_error(&f.ev, FLAGHOOK_EEVENT, "mv_values[0].percentage_allocation");

	fixture_init(&f);
	f.mv[0].percentage_allocation = (flaghook_value){ .type = FLAGHOOK_VALUE_FLOAT, .number = NAN };
	expect_error(&f.ev, FLAGHOOK_EEVENT, "percentage_allocation: is NaN or infinite");

	fixture_init(&f);
	f.new_state.value = (flaghook_value){ .type = FLAGHOOK_VALUE_FLOAT, .number = 1.5 };
	expect_error(&f.ev, FLAGHOOK_EEVENT, "event.flag.new_state.feature_state_value");

	fixture_init(&f);
	f.new_state.value = (flaghook_value){ .type = FLAGHOOK_VALUE_STRING, .string = NULL };
	expect_error(&f.ev, FLAGHOOK_EEVENT, "feature_state_value");

	fixture_init(&f);
	f.new_state.mv_values = NULL;
	expect_error(&f.ev, FLAGHOOK_EEVENT, "mv_values: is NULL with mv_count > 0");

	fixture_init(&f);
	f.change.timestamp_us = INT64_MAX;
	expect_error(&f.ev, FLAGHOOK_EEVENT, "event.flag.timestamp: is outside years 1..9999");

	fixture_init(&f);
	f.change.new_state = NULL;
	expect_error(&f.ev, FLAGHOOK_EEVENT, "new_state: is NULL in a FLAG_UPDATED event");

	fixture_init(&f);
	f.ev.type = FLAGHOOK_EVENT_FLAG_DELETED;
	expect_error(&f.ev, FLAGHOOK_EEVENT, "new_state: must be NULL in a FLAG_DELETED event");
}

static void test_bad_audit(void **state)
{
	(void)state;
	flaghook_audit_log a = *fh_sample_organisation()->audit;
	flaghook_event ev = *fh_sample_organisation();
	ev.audit = &a;

	a.log = "\xe2\x82";
	expect_error(&ev, FLAGHOOK_EUTF8, "event.audit.log");
	a = *fh_sample_organisation()->audit;

	flaghook_member dup[] = { { "x", { .type = FLAGHOOK_VALUE_NULL } }, { "x", { .type = FLAGHOOK_VALUE_INT } } };
	a.extra = dup;
	a.extra_count = 2;
	expect_error(&ev, FLAGHOOK_EEVENT, "event.audit.extra: repeats a key");

	flaghook_member inner[] = { { "k", { .type = FLAGHOOK_VALUE_NULL } }, { "k", { .type = FLAGHOOK_VALUE_NULL } } };
	flaghook_member nested[] = { { "obj", { .type = FLAGHOOK_VALUE_OBJECT, .members = inner, .count = 2 } } };
	a.extra = nested;
	a.extra_count = 1;
	expect_error(&ev, FLAGHOOK_EEVENT, "has a duplicate key");

	flaghook_member badkey[] = { { "\xc0\x80", { .type = FLAGHOOK_VALUE_NULL } } };
	a.extra = badkey;
	a.extra_count = 1;
	expect_error(&ev, FLAGHOOK_EUTF8, "event.audit.extra");

	/* Deep nesting is refused, not overflowed. */
	flaghook_value chain[40];
	for (int i = 0; i < 40; i++)
		chain[i] = (flaghook_value){ .type = FLAGHOOK_VALUE_ARRAY, .items = i < 39 ? &chain[i + 1] : NULL,
		                             .count = i < 39 ? 1 : 0 };
	flaghook_member deep[] = { { "deep", chain[0] } };
	a.extra = deep;
	expect_error(&ev, FLAGHOOK_EEVENT, "nests too deeply");
}

/* Review defect 3: counts that would wrap `n + k` or `n * size` are
 * refused by name before anything is sized from them (ASan and UBSan in
 * CI watch the rest).  The arrays are real and short: a count is a lie
 * the library must catch before it believes it. */
static void test_hostile_counts(void **state)
{
	(void)state;
	static const size_t counts[] = { SIZE_MAX, SIZE_MAX - 8, SIZE_MAX / 2 + 1,
	                                 SIZE_MAX / sizeof(flaghook_member) + 1, (size_t)FLAGHOOK_MAX_ITEMS + 1 };
	for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
		size_t n = counts[k];
		flaghook_audit_log a = *fh_sample_organisation()->audit;
		flaghook_event ev = *fh_sample_organisation();
		ev.audit = &a;
		flaghook_member one[] = { { "x", { .type = FLAGHOOK_VALUE_NULL } } };
		a.extra = one;
		a.extra_count = n;
		expect_error(&ev, FLAGHOOK_EEVENT, "event.audit.extra_count: has ");

		flaghook_value items[1] = { { .type = FLAGHOOK_VALUE_NULL } };
		flaghook_member arr[] = { { "arr", { .type = FLAGHOOK_VALUE_ARRAY, .items = items, .count = n } } };
		a.extra = arr;
		a.extra_count = 1;
		expect_error(&ev, FLAGHOOK_EEVENT, "event.audit.extra.arr: has ");

		flaghook_member obj[] = { { "obj", { .type = FLAGHOOK_VALUE_OBJECT, .members = one, .count = n } } };
		a.extra = obj;
		expect_error(&ev, FLAGHOOK_EEVENT, "event.audit.extra.obj: has ");

		fixture f;
		fixture_init(&f);
		f.new_state.mv_count = n;
		expect_error(&f.ev, FLAGHOOK_EEVENT, "event.flag.new_state.mv_count: has ");

		flaghook_published_state st[1] = { { .enabled = 1 } };
		flaghook_version_published vp = { .feature_id = 1, .feature_name = "f", .uuid = "u",
		                                  .states = st, .state_count = n };
		flaghook_event pub = FLAGHOOK_EVENT_INIT;
		pub.type = FLAGHOOK_EVENT_NEW_VERSION_PUBLISHED;
		pub.environment_id = 1;
		pub.published = &vp;
		expect_error(&pub, FLAGHOOK_EEVENT, "event.published.state_count: has ");
	}
	/* Under a body limit, a count that cannot fit is ETOOBIG at once. */
	flaghook_audit_log a = *fh_sample_organisation()->audit;
	flaghook_event ev = *fh_sample_organisation();
	ev.audit = &a;
	flaghook_member one[] = { { "x", { .type = FLAGHOOK_VALUE_NULL } } };
	a.extra = one;
	a.extra_count = 5000;
	flaghook_render_options o = FLAGHOOK_RENDER_OPTIONS_INIT;
	o.max_body_bytes = 4096;
	flaghook_buf out = FLAGHOOK_BUF_INIT;
	assert_int_equal(flaghook_render(&out, &ev, &o), FLAGHOOK_ETOOBIG);
	assert_non_null(strstr(flaghook_last_error(), "extra_count: has 5000 items"));
	assert_null(out.ptr);
}

/* Counts live blocks of a test allocator. */
static long live_blocks;
static void *count_malloc(size_t n, void *ud) { (void)ud; live_blocks++; return malloc(n); }
static void *count_realloc(void *p, size_t n, void *ud)
{
	(void)ud;
	void *q = realloc(p, n);
	if (q && !p)
		live_blocks++;
	return q;
}
static void count_free(void *p, void *ud) { (void)ud; if (p) live_blocks--; free(p); }

/* Review defect 8: rendering into a buffer that holds a body reuses its
 * memory; it never leaks the old one. */
static void test_render_reuses_buffer(void **state)
{
	(void)state;
	flaghook_allocator al = { FLAGHOOK_ALLOCATOR_VERSION, count_malloc, count_realloc, count_free, NULL };
	flaghook_render_options o = FLAGHOOK_RENDER_OPTIONS_INIT;
	o.allocator = &al;
	flaghook_buf out = FLAGHOOK_BUF_INIT;
	live_blocks = 0;
	assert_int_equal(flaghook_render(&out, fh_sample_environment(), &o), 0);
	char *first = strdup(out.ptr);
	for (int i = 0; i < 2000; i++) {
		const flaghook_event *ev = i % 2 ? fh_sample_environment() : fh_sample_organisation();
		assert_int_equal(flaghook_render(&out, ev, &o), 0);
		assert_int_equal(live_blocks, 1); /* the body; render's own scratch is freed */
	}
	/* The last render (the environment sample) is whole and exact. */
	assert_string_equal(out.ptr, first);
	assert_int_equal(out.size, strlen(first));
	free(first);
	/* A buffer from another allocator is not ours to reuse or free. */
	assert_int_equal(flaghook_render(&out, fh_sample_environment(), NULL), FLAGHOOK_EINVAL);
	assert_non_null(strstr(flaghook_last_error(), "another allocator"));
	assert_non_null(out.ptr);
	/* A failed render leaves the buffer empty, its memory released. */
	fixture f;
	fixture_init(&f);
	f.change.changed_by = NULL;
	assert_int_equal(flaghook_render(&out, &f.ev, &o), FLAGHOOK_EEVENT);
	assert_null(out.ptr);
	assert_int_equal(live_blocks, 0);
}

static void test_profiles(void **state)
{
	(void)state;
	flaghook_render_options o = FLAGHOOK_RENDER_OPTIONS_INIT;
	flaghook_buf out = FLAGHOOK_BUF_INIT;
	/* Bullet Train receivers took audit logs only. */
	o.profile = FLAGHOOK_PROFILE_BULLET_TRAIN;
	assert_int_equal(flaghook_render(&out, fh_sample_environment(), &o), FLAGHOOK_EEVENT);
	assert_non_null(strstr(flaghook_last_error(), "AUDIT_LOG_CREATED"));
	/* The 2020 server had no multivariate values: the list is left out. */
	o.profile = FLAGHOOK_PROFILE_FLAGSMITH_2020;
	assert_int_equal(flaghook_render(&out, fh_sample_environment(), &o), 0);
	assert_null(strstr(out.ptr, "multivariate"));
	assert_non_null(strstr(out.ptr, "\"environment\": 1,"));
	flaghook_buf_free(&out);
	/* The size limit is checked as the body grows. */
	o.profile = FLAGHOOK_PROFILE_FLAGSMITH;
	o.max_body_bytes = 100;
	assert_int_equal(flaghook_render(&out, fh_sample_environment(), &o), FLAGHOOK_ETOOBIG);
	assert_null(out.ptr);
	o.max_body_bytes = 0;
	assert_int_equal(flaghook_render(&out, fh_sample_environment(), &o), 0);
	size_t full = out.size;
	flaghook_buf_free(&out);
	o.max_body_bytes = full;
	assert_int_equal(flaghook_render(&out, fh_sample_environment(), &o), 0);
	flaghook_buf_free(&out);
	o.max_body_bytes = full - 1;
	assert_int_equal(flaghook_render(&out, fh_sample_environment(), &o), FLAGHOOK_ETOOBIG);
}

static void test_names(void **state)
{
	(void)state;
	for (int t = FLAGHOOK_EVENT_FLAG_UPDATED; t <= FLAGHOOK_EVENT_NEW_VERSION_PUBLISHED; t++)
		assert_int_equal(flaghook_event_type_from_name(flaghook_event_type_name(t)), t);
	assert_null(flaghook_event_type_name(0));
	assert_int_equal(flaghook_event_type_from_name("FLAG_CREATED"), FLAGHOOK_EINVAL);
	assert_int_equal(flaghook_event_type_from_name(NULL), FLAGHOOK_EINVAL);
	for (int code = 0; code >= -17; code--)
		assert_string_not_equal(flaghook_strerror(code), "unknown error");
	assert_string_equal(flaghook_strerror(-1000), "unknown error");
	assert_string_equal(flaghook_version(), FLAGHOOK_VERSION);
	assert_int_equal(flaghook_version_number(), FLAGHOOK_VERSION_NUMBER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_sample_matches_flagsmith),
		cmocka_unit_test(test_null_and_versions),
		cmocka_unit_test(test_bad_events),
		cmocka_unit_test(test_bad_audit),
		cmocka_unit_test(test_hostile_counts),
		cmocka_unit_test(test_render_reuses_buffer),
		cmocka_unit_test(test_profiles),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests_name("render", tests, NULL, NULL);
}
