/*
 * libflaghook: events, rendering and signatures.  Pure functions that
 * need no client: build a flaghook_event from plain structs, render the
 * exact bytes Flagsmith sends, sign and verify them.  Include
 * <flaghook.h>, not this file.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef FLAGHOOK_EVENT_H
#define FLAGHOOK_EVENT_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Events                                                              */

/* Event types; also the bit numbers of an endpoint's event mask. */
#define FLAGHOOK_EVENT_FLAG_UPDATED          1
#define FLAGHOOK_EVENT_FLAG_DELETED          2
#define FLAGHOOK_EVENT_AUDIT_LOG_CREATED     3
#define FLAGHOOK_EVENT_NEW_VERSION_PUBLISHED 4

/* "FLAG_UPDATED" etc., or NULL for an unknown type. */
FLAGHOOK_EXTERN const char *flaghook_event_type_name(int type);
/* The type for a name, or FLAGHOOK_EINVAL. */
FLAGHOOK_EXTERN int flaghook_event_type_from_name(const char *name);

/* The most items an array, an object's member list, mv_values, states or
 * extra may have; more is FLAGHOOK_EEVENT (and more than max_body_bytes
 * is FLAGHOOK_ETOOBIG). */
#define FLAGHOOK_MAX_ITEMS 16777216

/* Typed values: flag values, option values, percentages, extra members. */
#define FLAGHOOK_VALUE_NULL   0
#define FLAGHOOK_VALUE_STRING 1
#define FLAGHOOK_VALUE_INT    2
#define FLAGHOOK_VALUE_BOOL   3
#define FLAGHOOK_VALUE_FLOAT  4   /* finite only; printed as Python's repr() */
#define FLAGHOOK_VALUE_ARRAY  5
#define FLAGHOOK_VALUE_OBJECT 6

struct flaghook_member;

typedef struct flaghook_value {
	int32_t type;                          /* FLAGHOOK_VALUE_* */
	int32_t boolean;                       /* BOOL: 0 or 1 */
	int64_t integer;                       /* INT */
	double number;                         /* FLOAT */
	const char *string;                    /* STRING: UTF-8, NUL-terminated */
	const struct flaghook_value *items;    /* ARRAY: `count` items */
	const struct flaghook_member *members; /* OBJECT: `count` members */
	size_t count;
} flaghook_value;

typedef struct flaghook_member {
	const char *key;                       /* UTF-8; unique within its object */
	flaghook_value value;
} flaghook_member;

/*
 * Strings below are UTF-8 and NUL-terminated.  Members documented as
 * "nullable" render as JSON null when NULL; every other string is required.
 * Times are int64 microseconds since the Unix epoch, UTC.
 */

typedef struct flaghook_project {
	int64_t id;
	const char *name;
	int64_t organisation;       /* audit logs only */
} flaghook_project;

typedef struct flaghook_environment {
	int64_t id;
	const char *name;
	/* Audit logs only: rendered when set (always in the 2020 and Bullet
	 * Train profiles); feature states carry {id, name} alone. */
	const char *api_key;        /* nullable */
	int64_t project;            /* 0: not set */
} flaghook_environment;

typedef struct flaghook_feature {
	int64_t id;
	const char *name;
	const char *description;    /* nullable */
	const char *initial_value;  /* nullable */
	int32_t default_enabled;
	const char *type;           /* free text: "STANDARD", "MULTIVARIATE", "FLAG", "CONFIG" */
	int64_t created_date_us;
	flaghook_project project;
} flaghook_feature;

typedef struct flaghook_segment {
	int64_t id;
	const char *name;
	const char *description;    /* nullable */
} flaghook_segment;

typedef struct flaghook_feature_segment {
	int64_t priority;
	flaghook_segment segment;
} flaghook_feature_segment;

typedef struct flaghook_identity {
	int64_t id;
	const char *identifier;
	const char *id_string;      /* nullable: Edge identities, whose id is a string */
} flaghook_identity;

typedef struct flaghook_mv_value {
	int64_t id;
	int64_t option_id;
	flaghook_value option_value;          /* STRING, INT, BOOL or NULL */
	flaghook_value percentage_allocation; /* INT (50) or FLOAT (50.0) */
} flaghook_mv_value;

typedef struct flaghook_feature_state {
	int64_t id;                 /* 2020 profile only */
	int32_t enabled;
	flaghook_environment environment;
	flaghook_feature feature;
	const flaghook_feature_segment *feature_segment; /* NULL: null */
	flaghook_value value;       /* feature_state_value: STRING, INT, BOOL or NULL */
	const flaghook_identity *identity; /* NULL: identity and identity_identifier null */
	const flaghook_mv_value *mv_values;
	size_t mv_count;
} flaghook_feature_state;

/* FLAG_UPDATED and FLAG_DELETED. */
typedef struct flaghook_flag_change {
	const char *changed_by;
	const flaghook_feature_state *new_state;      /* NULL for FLAG_DELETED */
	const flaghook_feature_state *previous_state; /* NULL: left out */
	int64_t timestamp_us;
} flaghook_flag_change;

typedef struct flaghook_user {
	int64_t id;
	const char *email;
	const char *first_name;     /* audit logs only */
	const char *last_name;      /* audit logs only */
} flaghook_user;

/* Bits of flaghook_audit_log.present: optional members the caller set. */
#define FLAGHOOK_AUDIT_HAS_ID                1u
#define FLAGHOOK_AUDIT_HAS_IS_SYSTEM_EVENT   2u
#define FLAGHOOK_AUDIT_HAS_RELATED_OBJECT_ID 4u

/* AUDIT_LOG_CREATED. */
typedef struct flaghook_audit_log {
	uint32_t present;           /* FLAGHOOK_AUDIT_HAS_* */
	int64_t id;
	const flaghook_user *author;              /* NULL: null */
	int64_t created_date_us;
	const flaghook_environment *environment;  /* NULL: null */
	const char *log;
	flaghook_project project;
	int64_t related_object_id;  /* null unless FLAGHOOK_AUDIT_HAS_RELATED_OBJECT_ID */
	const char *related_object_type;          /* nullable */
	const char *related_object_uuid;          /* NULL: left out */
	int32_t is_system_event;
	/* More members of the data object.  A member named like a standard one
	 * ("environment", "project", "author") replaces it: that is how the real
	 * server's richer nested objects are sent. */
	const flaghook_member *extra;
	size_t extra_count;
} flaghook_audit_log;

typedef struct flaghook_published_state {
	int32_t enabled;
	flaghook_value value;
	const flaghook_mv_value *mv_values;
	size_t mv_count;
} flaghook_published_state;

/* NEW_VERSION_PUBLISHED. */
typedef struct flaghook_version_published {
	int64_t feature_id;
	const char *feature_name;
	const flaghook_published_state *states;
	size_t state_count;
	const flaghook_user *published_by;        /* NULL: null; id and email only */
	const char *uuid;
} flaghook_version_published;

/*
 * One event.  `version` covers the layout of every struct reached from it.
 * Exactly one of flag / audit / published is set, matching `type`.
 */
typedef struct flaghook_event {
	unsigned int version;
	int32_t type;               /* FLAGHOOK_EVENT_* */
	/* Routing.  0: taken from the payload (the feature state's environment,
	 * the audit log's environment and project.organisation).  A flag event
	 * reaches organisation endpoints only when organisation_id is set;
	 * NEW_VERSION_PUBLISHED needs environment_id. */
	int64_t environment_id;
	int64_t organisation_id;
	const flaghook_flag_change *flag;
	const flaghook_audit_log *audit;
	const flaghook_version_published *published;
} flaghook_event;

#define FLAGHOOK_EVENT_VERSION 1
#define FLAGHOOK_EVENT_INIT { FLAGHOOK_EVENT_VERSION, 0, 0, 0, 0, 0, 0 }
FLAGHOOK_EXTERN int flaghook_event_init(flaghook_event *event, unsigned int version);

/* ------------------------------------------------------------------ */
/* Rendering: the exact bytes Python's json.dumps(payload,             */
/* sort_keys=True) writes.  Pure; needs no client.                     */

/* The current Flagsmith server (2.265). */
#define FLAGHOOK_PROFILE_FLAGSMITH      0
/* Flagsmith 2020: integer environment and project ids, a feature-state id,
 * timestamps in milliseconds, and no multivariate list (left out). */
#define FLAGHOOK_PROFILE_FLAGSMITH_2020 1
/* Bullet Train: environment endpoints got flag changes as AUDIT_LOG_CREATED
 * events with environment {api_key, id, name, project}.  Flag events do not
 * render in this profile (FLAGHOOK_EEVENT); emit the audit log. */
#define FLAGHOOK_PROFILE_BULLET_TRAIN   2

#define FLAGHOOK_RENDER_COMPACT 1u       /* separators "," and ":" */

typedef struct flaghook_render_options {
	unsigned int version;
	int32_t profile;            /* FLAGHOOK_PROFILE_* */
	uint32_t flags;             /* FLAGHOOK_RENDER_* */
	size_t max_body_bytes;      /* 0: no limit */
	const flaghook_allocator *allocator; /* NULL: malloc; must outlive the buf */
} flaghook_render_options;

#define FLAGHOOK_RENDER_OPTIONS_VERSION 1
#define FLAGHOOK_RENDER_OPTIONS_INIT { FLAGHOOK_RENDER_OPTIONS_VERSION, 0, 0, 0, 0 }
FLAGHOOK_EXTERN int flaghook_render_options_init(flaghook_render_options *opts,
                                                 unsigned int version);

/* Validates `event` and writes its body to `out` (NULL opts: defaults).
 * *out must be empty (FLAGHOOK_BUF_INIT, or freed); it is left empty on
 * failure. */
FLAGHOOK_EXTERN int flaghook_render(flaghook_buf *out, const flaghook_event *event,
                                    const flaghook_render_options *opts);

/* ------------------------------------------------------------------ */
/* Signatures                                                          */

#define FLAGHOOK_SIGNATURE_HEX_BYTES 64
FLAGHOOK_EXTERN size_t flaghook_signature_hex_bytes(void);

/*
 * X-Flagsmith-Signature: lowercase hex HMAC-SHA256 of body, key = secret.
 * Writes 64 characters and a NUL to out (out_size >= 65).  An empty secret
 * is FLAGHOOK_ESECRET: anybody can make that HMAC.
 */
FLAGHOOK_EXTERN int flaghook_sign(char *out, size_t out_size,
                                  const char *secret, size_t secret_len,
                                  const void *body, size_t body_len);

/* 0 when signature_hex (any case) is the signature of body; otherwise
 * non-zero: FLAGHOOK_EVERIFY, FLAGHOOK_ESECRET for an empty secret (never
 * a match), or FLAGHOOK_EINVAL for a NULL argument.  Constant time in the
 * contents.  Treat every non-zero result as "reject". */
FLAGHOOK_EXTERN FLAGHOOK_WARN_UNUSED int flaghook_verify(
	const char *secret, size_t secret_len, const void *body, size_t body_len,
	const char *signature_hex, size_t signature_len);

/*
 * Standard Webhooks v1 (standardwebhooks.com): "v1,<base64>" over
 * "msg_id.timestamp.body" with key = the base64 after the "whsec_" prefix
 * (the prefix may be left off; the key is at most 128 bytes).  Writes a
 * NUL-terminated string to out; FLAGHOOK_EBUFSIZE when out is too small
 * (flaghook_standard_signature_bytes() is always enough for one secret).
 */
FLAGHOOK_EXTERN size_t flaghook_standard_signature_bytes(void);
FLAGHOOK_EXTERN int flaghook_standard_sign(char *out, size_t out_size,
                                           const char *secret,
                                           const char *msg_id, int64_t timestamp,
                                           const void *body, size_t body_len);

/*
 * Verifies a webhook-signature header (one or more space-separated "v1,..."
 * entries) against any of `secret_count` secrets.  The timestamp must be
 * within tolerance_s seconds of now_s; 0 means the specification's 300,
 * a negative tolerance is FLAGHOOK_EINVAL.  0 when one matches; otherwise
 * non-zero: FLAGHOOK_EVERIFY, FLAGHOOK_ESECRET (no secret, or one that is
 * not a non-empty whsec_ key), or FLAGHOOK_EINVAL.
 */
FLAGHOOK_EXTERN FLAGHOOK_WARN_UNUSED int flaghook_standard_verify(
	const char *const *secrets, size_t secret_count,
	const char *msg_id, const char *timestamp, const char *signature_header,
	const void *body, size_t body_len, int64_t now_s, int64_t tolerance_s);

#ifdef __cplusplus
}
#endif

#endif /* FLAGHOOK_EVENT_H */
