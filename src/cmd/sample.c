/*
 * The sample events of the Flagsmith server's "Test webhook" button
 * (api/webhooks/sample_webhook_data.py, generate_*_sample_webhook_data), as
 * libflaghook structs.  The multivariate value is the one the current
 * server's sample carries; its percentage is the integer 50, as there.
 */
#include "sample.h"

#include <stddef.h>

static const flaghook_mv_value sample_mv[] = { {
	.id = 1,
	.option_id = 1,
	.option_value = { .type = FLAGHOOK_VALUE_STRING, .string = "variant_a" },
	.percentage_allocation = { .type = FLAGHOOK_VALUE_INT, .integer = 50 },
} };

static const flaghook_identity sample_identity = { .id = 1, .identifier = "test_identity" };

#define SAMPLE_STATE(ENABLED, VALUE)                                              \
	{                                                                             \
		.enabled = ENABLED,                                                       \
		.environment = { .id = 1, .name = "Development" },                        \
		.feature = {                                                              \
			.id = 1,                                                              \
			.name = "test_feature",                                               \
			.description = "This is a description",                               \
			.initial_value = NULL,                                                \
			.default_enabled = 0,                                                 \
			.type = "CONFIG",                                                     \
			.created_date_us = 1612987423348556LL, /* 2021-02-10T20:03:43.348556Z */ \
			.project = { .id = 1, .name = "Test Project" },                       \
		},                                                                        \
		.feature_segment = NULL,                                                  \
		.value = { .type = FLAGHOOK_VALUE_STRING, .string = VALUE },              \
		.identity = &sample_identity,                                             \
		.mv_values = sample_mv,                                                   \
		.mv_count = 1,                                                            \
	}

static const flaghook_feature_state sample_new = SAMPLE_STATE(1, "feature_state_value");
static const flaghook_feature_state sample_previous = SAMPLE_STATE(0, "old_feature_state_value");

static const flaghook_flag_change sample_change = {
	.changed_by = "user@domain.com",
	.new_state = &sample_new,
	.previous_state = &sample_previous,
	.timestamp_us = 1624002626595298LL, /* 2021-06-18T07:50:26.595298Z */
};

static const flaghook_event sample_env_event = {
	.version = FLAGHOOK_EVENT_VERSION,
	.type = FLAGHOOK_EVENT_FLAG_UPDATED,
	.organisation_id = 1,
	.flag = &sample_change,
};

static const flaghook_user sample_author = {
	.id = 1, .email = "user@domain.com", .first_name = "Jane", .last_name = "Doe",
};

static const flaghook_audit_log sample_audit = {
	.present = FLAGHOOK_AUDIT_HAS_RELATED_OBJECT_ID,
	.author = &sample_author,
	.created_date_us = 1582479057006318LL, /* 2020-02-23T17:30:57.006318Z */
	.environment = NULL,
	.log = "New Flag / Remote Config created: my_feature",
	.project = { .id = 1, .name = "Test Project", .organisation = 1 },
	.related_object_id = 1,
	.related_object_type = "FEATURE",
};

static const flaghook_event sample_org_event = {
	.version = FLAGHOOK_EVENT_VERSION,
	.type = FLAGHOOK_EVENT_AUDIT_LOG_CREATED,
	.audit = &sample_audit,
};

const flaghook_event *fh_sample_environment(void) { return &sample_env_event; }
const flaghook_event *fh_sample_organisation(void) { return &sample_org_event; }
