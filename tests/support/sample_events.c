/* The events of tests/golden/gen.py as libflaghook structs. */
#include "sample_events.h"
#include "sample.h"

#include <stddef.h>

/* ---- segment_override ---- */
static const flaghook_feature_segment seg = { .priority = 1, .segment = { .id = 12, .name = "beta users" } };
static const flaghook_mv_value seg_mv[] = {
	{ .id = 1, .option_id = 10, .option_value = { .type = FLAGHOOK_VALUE_INT, .integer = 7 },
	  .percentage_allocation = { .type = FLAGHOOK_VALUE_FLOAT, .number = 33.3 } },
	{ .id = 2, .option_id = 11, .option_value = { .type = FLAGHOOK_VALUE_BOOL, .boolean = 1 },
	  .percentage_allocation = { .type = FLAGHOOK_VALUE_FLOAT, .number = 66.7 } },
};
static const flaghook_feature_state seg_state = {
	.enabled = 1,
	.environment = { .id = 7, .name = "Prod\xc3\xa9 \xf0\x9f\x9a\x80" },
	.feature = { .id = INT64_MAX, .name = "checkout\tflow\n", .description = NULL, .initial_value = "blue",
	             .default_enabled = 1, .type = "MULTIVARIATE", .created_date_us = 1672628645000000LL,
	             .project = { .id = 3, .name = "Web \"App\" \\ <b>" } },
	.feature_segment = &seg,
	.value = { .type = FLAGHOOK_VALUE_INT, .integer = 42 },
	.mv_values = seg_mv,
	.mv_count = 2,
};
static const flaghook_flag_change seg_change = {
	.changed_by = "ops@example.com", .new_state = &seg_state, .timestamp_us = 1714979289000001LL,
};
static const flaghook_event ev_segment_override = {
	.version = FLAGHOOK_EVENT_VERSION, .type = FLAGHOOK_EVENT_FLAG_UPDATED, .flag = &seg_change,
};

/* ---- flag_deleted ---- */
static const flaghook_identity edge_identity = {
	.identifier = "user-123", .id_string = "0f3c2b1a-9d8e-4f7a-b6c5-d4e3f2a1b0c9",
};
static const flaghook_feature_state deleted_state = {
	.enabled = 0,
	.environment = { .id = -1, .name = "" },
	.feature = { .id = 0, .name = "legacy_flag", .description = "\xe6\x97\xa5\xe6\x9c\xac \xe2\x80\xa8 \x7f \x01",
	             .type = "FLAG", .created_date_us = 1561982400000000LL,
	             .project = { .id = INT64_MIN, .name = "p" } },
	.value = { .type = FLAGHOOK_VALUE_BOOL, .boolean = 0 },
	.identity = &edge_identity,
};
static const flaghook_flag_change deleted_change = {
	.changed_by = "", .previous_state = &deleted_state, .timestamp_us = 1669852799999999LL,
};
static const flaghook_event ev_flag_deleted = {
	.version = FLAGHOOK_EVENT_VERSION, .type = FLAGHOOK_EVENT_FLAG_DELETED, .flag = &deleted_change,
};

/* ---- audit_full ---- */
static const flaghook_environment audit_env = { .id = 7, .name = "Production", .api_key = "ser.abc", .project = 3 };
static const flaghook_member rich_project_members[] = {
	{ "uuid", { .type = FLAGHOOK_VALUE_STRING, .string = "3fa85f64-5717-4562-b3fc-2c963f66afa6" } },
	{ "name", { .type = FLAGHOOK_VALUE_STRING, .string = "Web" } },
	{ "id", { .type = FLAGHOOK_VALUE_INT, .integer = 3 } },
	{ "stale_flags_limit_days", { .type = FLAGHOOK_VALUE_INT, .integer = 30 } },
	{ "organisation", { .type = FLAGHOOK_VALUE_INT, .integer = 1 } },
	{ "hide_disabled_flags", { .type = FLAGHOOK_VALUE_BOOL, .boolean = 0 } },
};
static const flaghook_value note_a_items[] = {
	{ .type = FLAGHOOK_VALUE_FLOAT, .number = 1e-05 },
	{ .type = FLAGHOOK_VALUE_FLOAT, .number = 1e16 },
};
static const flaghook_member note_obj_members[] = {
	{ "b", { .type = FLAGHOOK_VALUE_INT, .integer = 1 } },
	{ "a", { .type = FLAGHOOK_VALUE_ARRAY, .items = note_a_items, .count = 2 } },
};
static const flaghook_value note_items[] = {
	{ .type = FLAGHOOK_VALUE_INT, .integer = 1 },
	{ .type = FLAGHOOK_VALUE_FLOAT, .number = 2.5 },
	{ .type = FLAGHOOK_VALUE_NULL },
	{ .type = FLAGHOOK_VALUE_STRING, .string = "z" },
	{ .type = FLAGHOOK_VALUE_OBJECT, .members = note_obj_members, .count = 2 },
};
static const flaghook_member audit_extra[] = {
	{ "x_note", { .type = FLAGHOOK_VALUE_ARRAY, .items = note_items, .count = 5 } },
	{ "project", { .type = FLAGHOOK_VALUE_OBJECT, .members = rich_project_members, .count = 6 } },
};
static const flaghook_audit_log audit_full = {
	.present = FLAGHOOK_AUDIT_HAS_ID | FLAGHOOK_AUDIT_HAS_IS_SYSTEM_EVENT,
	.id = 9001,
	.created_date_us = 1793491200000000LL,
	.environment = &audit_env,
	.log = "Flag state / Remote Config value updated for feature: dark_mode",
	.project = { .id = 3, .name = "ignored: replaced by extra", .organisation = 1 },
	.related_object_type = "FEATURE_STATE",
	.related_object_uuid = "6b1f6c1e-1111-4a2b-9c3d-000000000001",
	.is_system_event = 0,
	.extra = audit_extra,
	.extra_count = 2,
};
static const flaghook_event ev_audit_full = {
	.version = FLAGHOOK_EVENT_VERSION, .type = FLAGHOOK_EVENT_AUDIT_LOG_CREATED, .audit = &audit_full,
};

/* ---- version_published ---- */
static const flaghook_mv_value pub_mv[] = {
	{ .id = 1, .option_id = 2, .option_value = { .type = FLAGHOOK_VALUE_STRING, .string = "a" },
	  .percentage_allocation = { .type = FLAGHOOK_VALUE_FLOAT, .number = 50.0 } },
};
static const flaghook_published_state pub_states[] = {
	{ .enabled = 1, .value = { .type = FLAGHOOK_VALUE_STRING, .string = "on" }, .mv_values = pub_mv, .mv_count = 1 },
	{ .enabled = 0, .value = { .type = FLAGHOOK_VALUE_NULL } },
};
static const flaghook_user publisher = { .id = 4, .email = "pub@example.com" };
static const flaghook_version_published published = {
	.feature_id = 5, .feature_name = "checkout_v2", .states = pub_states, .state_count = 2,
	.published_by = &publisher, .uuid = "f4b8a2e0-5c1d-4e6f-8a9b-0c1d2e3f4a5b",
};
static const flaghook_event ev_version_published = {
	.version = FLAGHOOK_EVENT_VERSION, .type = FLAGHOOK_EVENT_NEW_VERSION_PUBLISHED,
	.environment_id = 7, .published = &published,
};
static const flaghook_version_published published_api = {
	.feature_id = 6, .feature_name = "x", .uuid = "00000000-0000-4000-8000-000000000000",
};
static const flaghook_event ev_version_published_api = {
	.version = FLAGHOOK_EVENT_VERSION, .type = FLAGHOOK_EVENT_NEW_VERSION_PUBLISHED,
	.environment_id = 7, .published = &published_api,
};

/* ---- flag_2020 ---- */
#define STATE_2020(ENABLED)                                                                      \
	{ .id = 10430, .enabled = ENABLED, .environment = { .id = 23, .name = "unused in 2020" },      \
	  .feature = { .id = 2411, .name = "feature_name", .initial_value = "blue", .type = "CONFIG",  \
	               .created_date_us = 1582668676355547LL, .project = { .id = 12, .name = "unused" } }, \
	  .value = { .type = FLAGHOOK_VALUE_NULL } }
static const flaghook_feature_state new_2020 = STATE_2020(1);
static const flaghook_feature_state old_2020 = STATE_2020(0);
static const flaghook_flag_change change_2020 = {
	.changed_by = "Some User", .new_state = &new_2020, .previous_state = &old_2020,
	.timestamp_us = 1583589547040123LL,
};
static const flaghook_event ev_flag_2020 = {
	.version = FLAGHOOK_EVENT_VERSION, .type = FLAGHOOK_EVENT_FLAG_UPDATED, .flag = &change_2020,
};

/* ---- audit_bullet_train ---- */
static const flaghook_user ben = { .id = 8, .email = "ben@bullet-train.io", .first_name = "Ben", .last_name = "Rometsch" };
static const flaghook_environment bt_env = { .id = 14, .name = "Development", .api_key = "AF6tmkbBLywFXChJ7dTyCo", .project = 7 };
static const flaghook_audit_log bt_audit = {
	.present = FLAGHOOK_AUDIT_HAS_RELATED_OBJECT_ID,
	.author = &ben,
	.created_date_us = 1582543108809498LL,
	.environment = &bt_env,
	.log = "Flag state / Remote Config value updated for feature: power_user",
	.project = { .id = 7, .name = "This is great", .organisation = 7 },
	.related_object_id = 37,
	.related_object_type = "FEATURE_STATE",
};
static const flaghook_event ev_audit_bt = {
	.version = FLAGHOOK_EVENT_VERSION, .type = FLAGHOOK_EVENT_AUDIT_LOG_CREATED, .audit = &bt_audit,
};

const golden_case *golden_cases(size_t *n)
{
	static golden_case cases[12];
	size_t k = 0;
	cases[k++] = (golden_case){ "sample_environment", fh_sample_environment(), FLAGHOOK_PROFILE_FLAGSMITH, 0 };
	cases[k++] = (golden_case){ "sample_organisation", fh_sample_organisation(), FLAGHOOK_PROFILE_FLAGSMITH, 0 };
	cases[k++] = (golden_case){ "sample_environment_compact", fh_sample_environment(), FLAGHOOK_PROFILE_FLAGSMITH,
	                            FLAGHOOK_RENDER_COMPACT };
	cases[k++] = (golden_case){ "segment_override", &ev_segment_override, FLAGHOOK_PROFILE_FLAGSMITH, 0 };
	cases[k++] = (golden_case){ "flag_deleted", &ev_flag_deleted, FLAGHOOK_PROFILE_FLAGSMITH, 0 };
	cases[k++] = (golden_case){ "audit_full", &ev_audit_full, FLAGHOOK_PROFILE_FLAGSMITH, 0 };
	cases[k++] = (golden_case){ "version_published", &ev_version_published, FLAGHOOK_PROFILE_FLAGSMITH, 0 };
	cases[k++] = (golden_case){ "version_published_by_api_key", &ev_version_published_api, FLAGHOOK_PROFILE_FLAGSMITH, 0 };
	cases[k++] = (golden_case){ "flag_2020", &ev_flag_2020, FLAGHOOK_PROFILE_FLAGSMITH_2020, 0 };
	cases[k++] = (golden_case){ "audit_bullet_train", &ev_audit_bt, FLAGHOOK_PROFILE_BULLET_TRAIN, 0 };
	*n = k;
	return cases;
}
