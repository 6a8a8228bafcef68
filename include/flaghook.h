/*
 * libflaghook — Flagsmith-compatible webhooks for flag servers written in C.
 *
 * One public header.  Every function returns an int: 0 on success or a
 * negative FLAGHOOK_E* code whose value never changes.  Structs passed in
 * start with `unsigned int version` and only ever grow at the end; each has
 * an INIT macro and an init function (FLAGHOOK_CLIENT_OPTIONS_INIT and
 * flaghook_client_options_init(), and so on).  Handles are opaque.  Nothing
 * here uses varargs, bit-fields, ssize_t or passes a struct by value, so the
 * API binds through any FFI.
 *
 * Threads: every function may be called from any thread; the functions that
 * take a client may be called on one client from many threads at once.
 * flaghook_client_free() must not race with other calls on that client.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef FLAGHOOK_H
#define FLAGHOOK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#  define FLAGHOOK_EXTERN __declspec(dllexport)
#elif defined(__GNUC__)
#  define FLAGHOOK_EXTERN __attribute__((visibility("default")))
#else
#  define FLAGHOOK_EXTERN
#endif

#if defined(__GNUC__)
#  define FLAGHOOK_WARN_UNUSED __attribute__((warn_unused_result))
#else
#  define FLAGHOOK_WARN_UNUSED
#endif

/* ------------------------------------------------------------------ */
/* Version                                                             */

#define FLAGHOOK_VERSION_MAJOR 0
#define FLAGHOOK_VERSION_MINOR 1
#define FLAGHOOK_VERSION_PATCH 0
#define FLAGHOOK_VERSION "0.1.0"
/* 0xMMmmpp */
#define FLAGHOOK_VERSION_NUMBER 0x000100

/* The version of the library actually loaded ("0.1.0"). */
FLAGHOOK_EXTERN const char *flaghook_version(void);
/* FLAGHOOK_VERSION_NUMBER of the library actually loaded. */
FLAGHOOK_EXTERN uint32_t flaghook_version_number(void);

/* ------------------------------------------------------------------ */
/* Errors: fixed values, never reused.                                 */

#define FLAGHOOK_OK          0
#define FLAGHOOK_EINVAL     -1  /* a NULL or out-of-range argument */
#define FLAGHOOK_ENOMEM     -2  /* an allocation failed */
#define FLAGHOOK_EUTF8      -3  /* a string is not valid UTF-8 */
#define FLAGHOOK_ETOOBIG    -4  /* the body is over the configured limit */
#define FLAGHOOK_EURL       -5  /* the URL is not an acceptable http(s) URL */
#define FLAGHOOK_ESECRET    -6  /* the secret is not acceptable */
#define FLAGHOOK_ENOTFOUND  -7  /* no such endpoint */
#define FLAGHOOK_EVERSION   -8  /* a struct version this library does not know */
#define FLAGHOOK_EDELIVERY  -9  /* at least one endpoint did not take the event */
#define FLAGHOOK_EVERIFY   -10  /* a signature does not match */
#define FLAGHOOK_ETRANSPORT -11 /* the transport could not be set up */
#define FLAGHOOK_EFULL     -12  /* the delivery queue is full */
#define FLAGHOOK_ESTATE    -13  /* the client is shutting down; or (a shared store's
                                   record) another process holds the delivery now */
#define FLAGHOOK_ESTORAGE  -14  /* the storage plug-in failed */
#define FLAGHOOK_EBUFSIZE  -15  /* the caller's buffer is too small */
#define FLAGHOOK_EEVENT    -16  /* the event does not describe a valid payload */
#define FLAGHOOK_ETIMEOUT  -17  /* a wait ran out of time */
#define FLAGHOOK_ESYSTEM   -18  /* the operating system refused (e.g. no randomness) */
#define FLAGHOOK_ENOTSUP   -19  /* the plug-in does not offer this */
#define FLAGHOOK_EREFUSED  -20  /* the address is one the client may not connect to
                                   (loopback, private, link-local, ...: see
                                   flaghook_url_check) */
/* FLAGHOOK_EFULL, FLAGHOOK_ESTATE and FLAGHOOK_ETIMEOUT come from the
 * asynchronous engine (ESTATE also from a shared store's record). */

/* A short static description of a code ("invalid UTF-8"); never NULL. */
FLAGHOOK_EXTERN const char *flaghook_strerror(int code);

/*
 * Detail of the last failure on the calling thread ("event.flag.new_state.
 * feature.name: invalid UTF-8 at byte 3"), or "" when there was none.  Valid
 * until the next libflaghook call on this thread.  Never contains a secret.
 */
FLAGHOOK_EXTERN const char *flaghook_last_error(void);

/* For plug-ins: sets the calling thread's detail (NULL: "") and returns
 * code, so a transport or store can `return flaghook_error_set(...)`.  The
 * library quotes it in its own message.  Never pass a secret. */
FLAGHOOK_EXTERN int flaghook_error_set(int code, const char *detail);

/* ------------------------------------------------------------------ */
/* Global state: a reference count around libcurl's global init.       */
/* flaghook_client_new() takes a reference itself; call these only to  */
/* control when libcurl is initialised.                                */

FLAGHOOK_EXTERN int flaghook_global_init(void);
FLAGHOOK_EXTERN void flaghook_global_cleanup(void);

/* ------------------------------------------------------------------ */
/* Memory                                                              */

typedef struct flaghook_allocator {
	unsigned int version;
	void *(*malloc)(size_t size, void *user_data);
	void *(*realloc)(void *ptr, size_t size, void *user_data);
	void (*free)(void *ptr, void *user_data);
	void *user_data;
} flaghook_allocator;

#define FLAGHOOK_ALLOCATOR_VERSION 1
#define FLAGHOOK_ALLOCATOR_INIT { FLAGHOOK_ALLOCATOR_VERSION, 0, 0, 0, 0 }
FLAGHOOK_EXTERN int flaghook_allocator_init(flaghook_allocator *allocator,
                                            unsigned int version);

/* Bytes the library allocated for the caller; release with flaghook_buf_free. */
typedef struct flaghook_buf {
	char *ptr;      /* NUL-terminated for convenience; size excludes the NUL */
	size_t size;
	size_t reserved;
	const flaghook_allocator *allocator; /* internal */
} flaghook_buf;

#define FLAGHOOK_BUF_INIT { 0, 0, 0, 0 }
/* Frees the bytes and resets *buf to FLAGHOOK_BUF_INIT; NULL is a no-op. */
FLAGHOOK_EXTERN void flaghook_buf_free(flaghook_buf *buf);

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

/* ------------------------------------------------------------------ */
/* Plug-ins                                                            */

/* Error classes of a delivery attempt. */
#define FLAGHOOK_ERRCLASS_NONE     0  /* an HTTP response arrived */
#define FLAGHOOK_ERRCLASS_CONNECT  1  /* could not connect */
#define FLAGHOOK_ERRCLASS_TIMEOUT  2
#define FLAGHOOK_ERRCLASS_DNS      3
#define FLAGHOOK_ERRCLASS_TLS      4
#define FLAGHOOK_ERRCLASS_SEND     5
#define FLAGHOOK_ERRCLASS_RECV     6  /* reset or closed before a full reply */
#define FLAGHOOK_ERRCLASS_HTTP     7  /* a response that is not 2xx */
#define FLAGHOOK_ERRCLASS_OTHER    8
#define FLAGHOOK_ERRCLASS_REFUSED  9  /* the SSRF guard refused the address:
                                         final, never retried */

/* "none", "connect", "timeout", ...; "unknown" otherwise. */
FLAGHOOK_EXTERN const char *flaghook_errclass_name(int errclass);

typedef struct flaghook_header {
	const char *name;
	const char *value;
} flaghook_header;

/* TLS versions (flaghook_client_options.tls_min_version). */
#define FLAGHOOK_TLS_1_2 0x0303
#define FLAGHOOK_TLS_1_3 0x0304

/* One POST, as the library hands it to a transport. */
#define FLAGHOOK_REQUEST_VERSION 2
typedef struct flaghook_request {
	unsigned int version;       /* FLAGHOOK_REQUEST_VERSION of the library */
	const char *url;
	const flaghook_header *headers;
	size_t header_count;
	const void *body;
	size_t body_len;
	int64_t connect_timeout_ms;
	int64_t timeout_ms;
	/* A transport polls this during a transfer when it can; non-zero means
	 * stop now (the client is shutting down).  NULL: nothing to poll. */
	int (*cancelled)(void *cancel_ctx);
	void *cancel_ctx;
	/* ---- version 2 ---- */
	/* The addresses the library resolved the URL's host to and vetted
	 * (numeric, IPv6 without brackets): connect to one of these and
	 * nowhere else, on `port`.  0 count: the host is an IP literal the
	 * library vetted, the guard is off (a proxy), or the transport is the
	 * caller's (the library does not resolve for it). */
	const char *const *addresses;
	size_t address_count;
	int32_t port;
	int32_t tls_min_version;    /* FLAGHOOK_TLS_* */
	const char *ca_file;        /* NULL: the system's */
	const char *ca_path;        /* a directory of CAs; NULL: none */
	const char *client_cert;    /* PEM file for mutual TLS; NULL: none */
	const char *client_key;     /* PEM file of its key */
	const char *client_key_password; /* NULL: the key is not encrypted */
	const char *proxy;          /* NULL: none; never from the environment */
} flaghook_request;

/* What a transport reports back; the library owns the buffers. */
#define FLAGHOOK_RESPONSE_VERSION 1
typedef struct flaghook_response {
	unsigned int version;       /* FLAGHOOK_RESPONSE_VERSION of the library */
	int32_t status;             /* HTTP status, 0 when none arrived */
	int32_t errclass;           /* FLAGHOOK_ERRCLASS_* for a transport failure */
	char *error;                /* NUL-terminated detail, error_size bytes */
	size_t error_size;
	char *body;                 /* response excerpt: up to body_size bytes */
	size_t body_size;
	size_t body_len;            /* set by the transport */
	char retry_after[64];       /* the Retry-After header, if any */
} flaghook_response;

/*
 * A transport sends requests and fills their responses, in one of two ways.
 *
 * start (version 2; preferred): starts the request and returns at once;
 * when it has finished, however it ended, the transport fills `response`
 * and calls done(done_ctx) exactly once, from any thread (possibly before
 * start returns).  request, response and everything they point to stay
 * valid until done is called.  No library thread waits meanwhile: the
 * default transport keeps thousands in flight on one I/O thread.
 *
 * send (version 1): sends and returns when it has finished; the library
 * runs it on an executor thread (or, in SYNC mode, the emitting thread),
 * which waits for it.  Used only when start is NULL.
 *
 * The SSRF guard's name lookup and connect-time check are the default
 * transport's: a transport of the caller's gets the URL (an IP literal in
 * it was judged by flaghook_endpoint_add) and connects its own way, so it
 * vets what it connects to itself (flaghook_url_check does it the
 * library's way).
 *
 * Both return 0 when they could try (the outcome is in the response,
 * transport failures included) and a negative code only when they could
 * not run at all (start then never calls done); the library treats that
 * (and a signing failure) as a transport failure, which the retry policy
 * may retry.  Both may be called from several threads at once.
 */
typedef struct flaghook_transport {
	unsigned int version;
	int (*send)(const flaghook_request *request, flaghook_response *response,
	            void *user_data);
	void (*destroy)(void *user_data); /* nullable; called by flaghook_client_free */
	void *user_data;
	/* ---- version 2 ---- */
	int (*start)(const flaghook_request *request, flaghook_response *response,
	             void (*done)(void *done_ctx), void *done_ctx, void *user_data);
	/* Nullable: end every request in flight soon (shutdown's deadline has
	 * passed); each still gets its done, as a failure. */
	void (*cancel)(void *user_data);
} flaghook_transport;

#define FLAGHOOK_TRANSPORT_VERSION 2
#define FLAGHOOK_TRANSPORT_INIT { FLAGHOOK_TRANSPORT_VERSION, 0, 0, 0, 0, 0 }
FLAGHOOK_EXTERN int flaghook_transport_init(flaghook_transport *transport,
                                            unsigned int version);

/* The caller's thread pool: run job(arg) on some thread, soon.  submit
 * returns 0 when it took the job (it must then run it exactly once, also
 * while flaghook_client_free waits for it: free returns only after every
 * accepted job has run) and non-zero to refuse it (the delivery is tried
 * again shortly).  It is never called with a library lock held, so it may
 * run the job inline. */
typedef struct flaghook_executor {
	unsigned int version;
	int (*submit)(void (*job)(void *arg), void *arg, void *user_data);
	void *user_data;
} flaghook_executor;

#define FLAGHOOK_EXECUTOR_VERSION 1
#define FLAGHOOK_EXECUTOR_INIT { FLAGHOOK_EXECUTOR_VERSION, 0, 0 }
FLAGHOOK_EXTERN int flaghook_executor_init(flaghook_executor *executor,
                                           unsigned int version);

/* ------------------------------------------------------------------ */
/* Storage: the outbox                                                 */

/* Where a delivery stands in the store. */
#define FLAGHOOK_DELIVERY_PENDING   0   /* waiting, being sent, or waiting to retry */
#define FLAGHOOK_DELIVERY_DELIVERED 1
#define FLAGHOOK_DELIVERY_DEAD      2   /* given up: a dead letter, until re-queued */

/* A delivery as the storage plug-in sees it: the library fills it for put,
 * a store fills it for claim and list (its pointers valid only during that
 * call). */
#define FLAGHOOK_DELIVERY_VERSION 1
typedef struct flaghook_delivery {
	unsigned int version;       /* FLAGHOOK_DELIVERY_VERSION of whoever filled it */
	uint64_t id;                /* assigned by the store's put; never 0 */
	const char *event_id;       /* UUID text: the same for every endpoint, retry and restart */
	int32_t event_type;
	uint64_t endpoint_id;
	const void *body;
	size_t body_len;
	int32_t attempts;           /* attempts made so far */
	int64_t created_us;         /* wall clock at emit */
	int64_t next_attempt_us;    /* wall clock */
	int32_t fifo;               /* the endpoint takes its deliveries in order */
	/* put: the store sets 1 when this client holds the delivery now, 0 when
	 * it must come through claim (a shared store keeps FIFO deliveries for
	 * claim, which hands out only an endpoint's oldest). */
	int32_t claimed;
	int32_t state;              /* FLAGHOOK_DELIVERY_* (claim, list) */
	int32_t last_status;        /* list: the last attempt's HTTP status, 0 none */
	int64_t updated_us;         /* list: wall clock of the last change */
} flaghook_delivery;

/* Outcome of one attempt, for storage and callbacks. */
#define FLAGHOOK_OUTCOME_DELIVERED 0
#define FLAGHOOK_OUTCOME_RETRY     1  /* will be tried again */
#define FLAGHOOK_OUTCOME_GAVE_UP   2  /* final failure: a dead letter */
#define FLAGHOOK_OUTCOME_ABANDONED 3  /* not completed by flaghook_client_free's
                                         deadline, and the store does not keep it */
#define FLAGHOOK_OUTCOME_RELEASED  4  /* not completed by flaghook_client_free's
                                         deadline; a durable store keeps it pending
                                         and the next client to open it resumes it */

/* One attempt (or the end of a delivery without one), as recorded. */
#define FLAGHOOK_ATTEMPT_VERSION 1
typedef struct flaghook_attempt {
	unsigned int version;       /* FLAGHOOK_ATTEMPT_VERSION of whoever filled it */
	uint64_t delivery_id;
	uint64_t endpoint_id;
	const char *event_id;
	int32_t number;             /* 1 for the first attempt; 0: none was made */
	int32_t outcome;            /* FLAGHOOK_OUTCOME_* */
	int32_t status;             /* HTTP status, 0 when none */
	int32_t errclass;           /* FLAGHOOK_ERRCLASS_* */
	int64_t started_us;         /* wall clock */
	int64_t finished_us;        /* wall clock */
	int64_t next_attempt_us;    /* RETRY: wall clock of the next attempt */
	const char *error;          /* detail, "" when none; never a secret */
	const void *response;       /* reply excerpt */
	size_t response_len;
} flaghook_attempt;

/* Which deliveries or attempts a list or re-queue means.  Unset members
 * match everything. */
#define FLAGHOOK_STATE_ANY -1
#define FLAGHOOK_QUERY_VERSION 1
typedef struct flaghook_query {
	unsigned int version;
	int32_t state;              /* FLAGHOOK_DELIVERY_*, or FLAGHOOK_STATE_ANY */
	uint64_t delivery_id;       /* 0: any */
	uint64_t endpoint_id;       /* 0: any */
	int64_t since_us;           /* deliveries created (attempts started) at or after; 0: any */
	size_t limit;               /* 0: no limit */
} flaghook_query;

#define FLAGHOOK_QUERY_INIT { FLAGHOOK_QUERY_VERSION, FLAGHOOK_STATE_ANY, 0, 0, 0, 0 }
FLAGHOOK_EXTERN int flaghook_query_init(flaghook_query *query, unsigned int version);

/* Storage flags. */
#define FLAGHOOK_STORAGE_DURABLE 1u /* survives the process: shutdown releases
                                       what is pending instead of abandoning it */
#define FLAGHOOK_STORAGE_SHARED  2u /* other processes claim from it too */

/*
 * The outbox.  The memory store (the default), libflaghook-sqlite and
 * libflaghook-pg implement it; every function may be called from several
 * threads at once and returns 0 or a negative FLAGHOOK_E* code.
 *
 * put      records new deliveries, all endpoints of one event at once (all
 *          or none), before the first attempt; it assigns each an id and
 *          sets `claimed`.  A durable store returns only once they would
 *          survive a crash.  A failure means nothing was recorded.
 * claim    hands out, through take(), pending deliveries nobody holds
 *          (left by an earlier process, released, re-queued, or whose
 *          holder's lease ran out) that are due by now_us + horizon_us, at
 *          most `max`, an endpoint's oldest first and, for a FIFO delivery,
 *          only while nothing older of its endpoint is pending.  take()
 *          returns 0 to take one, 1 to leave it (an endpoint this client
 *          does not have), negative to stop.  Taken deliveries are held
 *          by this store instance; a shared store also renews the lease of
 *          every delivery it holds here.  NULL: put is the only source.
 * record   books an attempt, or the end of a delivery without one: RETRY
 *          (attempts and next_attempt_us, still held), DELIVERED, GAVE_UP
 *          (a dead letter), RELEASED (pending again, held by nobody) or
 *          ABANDONED (a store that cannot keep it drops it).
 * list     calls each() for the deliveries `query` matches (each returns
 *          non-zero to stop), oldest first; attempts does the same for the
 *          attempt log; requeue makes the matching deliveries that are not
 *          pending pending again, attempts 0, due now, and counts them.
 *          Each may be NULL (FLAGHOOK_ENOTSUP).
 * pending  counts what is not yet delivered or dead, for flaghook_flush;
 *          nullable.
 * release  hands back, in one go, deliveries this instance holds (pending,
 *          held by nobody, attempts and next_attempt_us kept): what a
 *          client shutting down leaves.  The same as record(RELEASED)
 *          without an attempt for each, in one transaction instead of
 *          `count`.  Nullable: the client then records each.
 */
typedef struct flaghook_storage {
	unsigned int version;
	uint32_t flags;             /* FLAGHOOK_STORAGE_* */
	int (*put)(flaghook_delivery *deliveries, size_t count, void *user_data);
	int (*claim)(int64_t now_us, int64_t horizon_us, size_t max,
	             int (*take)(const flaghook_delivery *delivery, void *arg), void *arg,
	             void *user_data);
	int (*record)(const flaghook_delivery *delivery, const flaghook_attempt *attempt,
	              void *user_data);
	int (*list)(const flaghook_query *query,
	            int (*each)(const flaghook_delivery *delivery, void *arg), void *arg,
	            void *user_data);
	int (*attempts)(const flaghook_query *query,
	                int (*each)(const flaghook_attempt *attempt, void *arg), void *arg,
	                void *user_data);
	int (*requeue)(const flaghook_query *query, uint64_t *count, void *user_data);
	int (*pending)(uint64_t *count, void *user_data);
	int (*release)(const uint64_t *ids, size_t count, void *user_data);
	void (*destroy)(void *user_data); /* nullable; called by flaghook_client_free */
	void *user_data;
} flaghook_storage;

#define FLAGHOOK_STORAGE_VERSION 1
#define FLAGHOOK_STORAGE_INIT { FLAGHOOK_STORAGE_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }
FLAGHOOK_EXTERN int flaghook_storage_init(flaghook_storage *storage,
                                          unsigned int version);

/*
 * Inspection and replay, on any store (a client's, through
 * flaghook_client_storage(), or one opened only to look):
 * flaghook_storage_list lists deliveries (dead letters: state
 * FLAGHOOK_DELIVERY_DEAD), flaghook_storage_attempts the attempt log, and
 * flaghook_storage_requeue sends again one delivery (delivery_id), every
 * dead letter of an endpoint (state DEAD, endpoint_id), or everything
 * created since a time (since_us); *count (may be NULL) gets how many.  A
 * running client with a durable store picks re-queued deliveries up at its
 * next poll; flaghook_client_requeue re-queues through a client and sends
 * at once (ASYNC mode; in TICK mode at the next flaghook_tick).  A SYNC
 * client never claims: it neither resumes nor sends re-queued deliveries.
 */
FLAGHOOK_EXTERN int flaghook_storage_list(const flaghook_storage *storage,
                                          const flaghook_query *query,
                                          int (*each)(const flaghook_delivery *delivery, void *arg),
                                          void *arg);
FLAGHOOK_EXTERN int flaghook_storage_attempts(const flaghook_storage *storage,
                                              const flaghook_query *query,
                                              int (*each)(const flaghook_attempt *attempt, void *arg),
                                              void *arg);
FLAGHOOK_EXTERN int flaghook_storage_requeue(const flaghook_storage *storage,
                                             const flaghook_query *query, uint64_t *count);
/* Releases a store opened only to look (calls its destroy); never one a
 * client owns. */
FLAGHOOK_EXTERN void flaghook_storage_close(flaghook_storage *storage);

/* ------------------------------------------------------------------ */
/* Client                                                              */

typedef struct flaghook_client flaghook_client;

/* What happened to one delivery; valid only during the callback. */
#define FLAGHOOK_RESULT_VERSION 1
typedef struct flaghook_result {
	unsigned int version;       /* FLAGHOOK_RESULT_VERSION of the library */
	uint64_t endpoint_id;
	const char *event_id;
	int32_t event_type;
	int32_t outcome;            /* FLAGHOOK_OUTCOME_* */
	int32_t status;             /* last HTTP status, 0 when none */
	int32_t errclass;           /* FLAGHOOK_ERRCLASS_* of the last attempt */
	int32_t attempts;
	int64_t elapsed_us;         /* from emit to this result */
	const char *error;          /* detail, "" when none; never a secret */
	const char *response;       /* response excerpt (not NUL-safe: see response_len) */
	size_t response_len;
} flaghook_result;

#define FLAGHOOK_MODE_SYNC  0       /* emit tries every endpoint before it returns */
#define FLAGHOOK_MODE_ASYNC 1       /* emit queues and returns; retries on a timer */

/*
 * Who runs the library's I/O and timers.
 *
 * FLAGHOOK_TIMERS_THREAD (default): in ASYNC mode the library starts one
 * I/O thread, which moves every transfer of the default transport (one
 * libcurl multi handle) and runs the retry and circuit timers, and, unless
 * the caller hands in an executor, a built-in pool (`threads`).  In SYNC
 * mode it starts no thread: flaghook_emit drives the transfers it started.
 *
 * FLAGHOOK_TIMERS_TICK: the library starts no thread at all.  The host
 * watches one file descriptor (flaghook_fd) in its own event loop and
 * calls flaghook_tick() whenever it is readable (and when the time
 * flaghook_tick last returned in *next_ms has passed).  Signing, store
 * writes and callbacks then run on the caller's executor, or, with none,
 * on the host's thread inside flaghook_emit and flaghook_tick.
 *
 * Which thread runs what (ASYNC, default transport):
 *   flaghook_emit's thread  validate, render, route, storage put
 *   executor (pool) thread  sign, resolve and vet the address, start the
 *                           transfer; then classify the reply, decide,
 *                           storage record, on_attempt/on_result; storage
 *                           claim (polls)
 *   I/O thread (or tick)    sockets, TLS, HTTP; timers; hands finished
 *                           transfers to the executor in batches.  It
 *                           never calls the store or a callback (unless
 *                           the caller's executor runs jobs inline).
 */
#define FLAGHOOK_TIMERS_THREAD 0
#define FLAGHOOK_TIMERS_TICK   1

/* Why an endpoint was disabled (on_endpoint_disabled). */
#define FLAGHOOK_DISABLED_GONE    1 /* it answered 410 Gone */
#define FLAGHOOK_DISABLED_FAILING 2 /* it failed for disable_after_ms without a success */

/* Retry policies. */
#define FLAGHOOK_RETRY_FLAGSMITH 0 /* 3 attempts, 2 s then 4 s, transport errors only */
#define FLAGHOOK_RETRY_STANDARD  1 /* 8 attempts over ~28 h with jitter; every
                                      failure without an HTTP reply (timeout,
                                      connect, DNS, TLS, reset), 408, 429, 5xx;
                                      Retry-After; 410 disables the endpoint */

typedef struct flaghook_retry_policy {
	unsigned int version;
	int32_t kind;               /* FLAGHOOK_RETRY_* */
	/* Waits before the 2nd, 3rd, ... attempt, in ms; the last repeats.
	 * NULL: the kind's (flagsmith: 2000, 4000; standard: 5 s, 5 min,
	 * 30 min, 2 h, 5 h, 10 h, 10 h).  Copied by the client; at most
	 * FLAGHOOK_SCHEDULE_MAX entries. */
	const int64_t *schedule_ms;
	size_t schedule_count;
	int32_t max_attempts;       /* 0: the kind's (3; 8) */
	int32_t jitter_percent;     /* each wait +-this %; 0: the kind's (0; 20); <0: none */
	int64_t retry_after_cap_ms; /* longest Retry-After honoured; 0: 1 hour (standard only) */
	/* schedule_ms and schedule_count are set together or not at all. */
} flaghook_retry_policy;

#define FLAGHOOK_SCHEDULE_MAX 256
#define FLAGHOOK_RETRY_POLICY_VERSION 1
#define FLAGHOOK_RETRY_POLICY_INIT { FLAGHOOK_RETRY_POLICY_VERSION, 0, 0, 0, 0, 0, 0 }
FLAGHOOK_EXTERN int flaghook_retry_policy_init(flaghook_retry_policy *policy,
                                               unsigned int version);

typedef struct flaghook_client_options {
	unsigned int version;
	int32_t mode;               /* FLAGHOOK_MODE_* */
	int64_t connect_timeout_ms; /* 0: 10000 */
	int64_t timeout_ms;         /* 0: 10000 (whole request) */
	size_t max_body_bytes;      /* 0: 1 MiB; larger bodies are FLAGHOOK_ETOOBIG */
	size_t max_response_bytes;  /* 0: 64 KiB read from a reply, the rest dropped */
	const char *user_agent;     /* NULL: "libflaghook/<version>" */
	const char *ca_file;        /* NULL: the system CAs (default transport) */
	const flaghook_transport *transport; /* NULL: libcurl */
	const flaghook_executor *executor;   /* NULL: built-in */
	const flaghook_storage *storage;     /* NULL: memory */
	const flaghook_allocator *allocator; /* NULL: malloc */
	/* Called once per delivery with its final result.  In SYNC mode, on the
	 * thread that called flaghook_emit, before it returns.  In ASYNC mode,
	 * on the executor thread that finished the last attempt, or on the
	 * thread of the library call that ended the delivery without one
	 * (disabling an endpoint, shutdown, an executor that keeps refusing).
	 * The library is done with every callback and user_data once
	 * flaghook_client_free has returned. */
	void (*on_result)(const flaghook_result *result, void *user_data);
	void *user_data;
	/* Callbacks may call flaghook_emit and the endpoint functions, but not
	 * flaghook_flush or flaghook_client_free: those wait for the very
	 * callback that would be calling them.  A callback's own delivery is
	 * still pending while it runs, so an emit from it on a full queue
	 * waits (up to emit_wait_ms) like any other. */

	/* ---- asynchronous delivery (FLAGHOOK_MODE_ASYNC) ---- */
	int32_t threads;            /* built-in pool size when executor is NULL; 0: 4 */
	size_t max_pending;         /* deliveries accepted and not finished; 0: 100000
	                               (deliveries claimed from a store count too; a
	                               claim racing emits may pass it by one batch,
	                               at most 256) */
	int64_t emit_wait_ms;       /* when full: 0 returns FLAGHOOK_EFULL at once */
	const flaghook_retry_policy *retry;   /* NULL: FLAGHOOK_RETRY_FLAGSMITH */
	int32_t max_in_flight;      /* attempts in flight per endpoint; 0: 16 */
	int32_t breaker_threshold;  /* consecutive failed attempts that open the
	                               circuit; 0: 5; <0: no breaker */
	int64_t breaker_cooldown_ms;/* open this long, then one probe; 0: 30000 */
	int64_t disable_after_ms;   /* failing this long with no success disables
	                               the endpoint; 0: never */
	int64_t shutdown_timeout_ms;/* flaghook_client_free drains this long;
	                               0: 5000; <0: no drain, abandon at once */
	int32_t timers;             /* FLAGHOOK_TIMERS_THREAD or FLAGHOOK_TIMERS_TICK */
	/* Monotonic clock in microseconds for retry and breaker times; NULL:
	 * CLOCK_MONOTONIC.  Tests drive schedules with it and flaghook_tick(). */
	int64_t (*clock)(void *user_data);
	/* Called after every attempt (outcome RETRY, DELIVERED, GAVE_UP, or
	 * ABANDONED when shutdown cut it short): the hook for "webhook failed"
	 * mail.  On the thread that ran the attempt.  A transport that returns
	 * a negative code counts as a transport failure. */
	void (*on_attempt)(const flaghook_result *attempt, void *user_data);
	/* An endpoint was disabled (FLAGHOOK_DISABLED_*); its waiting
	 * deliveries are given up (on_result says so for each). */
	void (*on_endpoint_disabled)(uint64_t endpoint_id, int32_t reason, void *user_data);
	/* A store with claim (every store here): how often the client asks it
	 * for deliveries nobody holds (from a restart, a re-queue, or a dead
	 * process's expired lease); 0: 1000.  Adding an endpoint asks at once. */
	int64_t poll_interval_ms;

	/* ---- version 2: the network ---- */
	/* The SSRF guard.  Every address the default transport is about to
	 * connect to is vetted, and a host name is resolved and vetted before
	 * the transfer starts (the transfer then goes only to the addresses
	 * vetted, so DNS rebinding cannot redirect it).  Refused unless allowed
	 * here: loopback and "localhost", unspecified, private (10/8,
	 * 172.16/12, 192.168/16), carrier-grade NAT (100.64/10), link-local
	 * (169.254/16, fe80::/10: cloud metadata), unique-local (fc00::/7),
	 * multicast, documentation, benchmarking and reserved ranges, and the
	 * IPv6 forms that embed such an IPv4 address (mapped, compatible,
	 * NAT64, 6to4).  A refusal is final (FLAGHOOK_ERRCLASS_REFUSED); an IP
	 * literal in a refused range is refused already by
	 * flaghook_endpoint_add (FLAGHOOK_EREFUSED). */
	int32_t allow_private;      /* 1: allow every class but unspecified and
	                               multicast (intranet receivers, tests) */
	const char *const *allow_cidrs; /* always allowed: "10.1.0.0/16", "fd00::/8", ... */
	size_t allow_cidr_count;
	/* An HTTP(S) proxy for every request ("http://proxy:3128"); NULL: none,
	 * and http_proxy/https_proxy from the environment are ignored.  With a
	 * proxy the guard does not vet addresses: the proxy connects, so it
	 * must do the egress filtering (as Stripe's smokescreen does). */
	const char *proxy;
	int32_t tls_min_version;    /* 0: FLAGHOOK_TLS_1_2; or FLAGHOOK_TLS_1_3 */
	const char *ca_path;        /* a directory of CA certificates (c_rehash'd) */
	int32_t max_transfers;      /* attempts in flight at once, every endpoint
	                               together; 0: 1000 */
	int32_t max_host_connections; /* connections open to one host; 0: no limit */
	int32_t http_version;       /* FLAGHOOK_HTTP_* */

	/* ---- version 3: for bindings and operators ---- */
	/* 1: every final result, endpoint disabled and log record (at
	 * log_level) is also queued as one line of JSON for
	 * flaghook_result_next(), and the descriptor from flaghook_results_fd()
	 * is readable while any waits: for hosts that cannot take callbacks on
	 * library threads (Python, Node).  The callbacks above still run. */
	int32_t result_queue;
	/* Log records at log_level and more severe, on whichever thread the
	 * event happened (user_data as above).  Never a secret or a URL's
	 * credentials: endpoints are named by id.  NULL: none. */
	void (*on_log)(int32_t level, const char *message, void *user_data);
	int32_t log_level;          /* FLAGHOOK_LOG_*; 0: FLAGHOOK_LOG_WARN */
	/* The library is done with every callback here and user_data once
	 * flaghook_client_free has returned: a binding may release them then
	 * and not before. */
} flaghook_client_options;

/* Log levels (on_log, log_level). */
#define FLAGHOOK_LOG_ERROR 1
#define FLAGHOOK_LOG_WARN  2
#define FLAGHOOK_LOG_INFO  3
#define FLAGHOOK_LOG_DEBUG 4

/* HTTP versions (flaghook_client_options.http_version). */
#define FLAGHOOK_HTTP_DEFAULT 0  /* HTTP/2 over TLS when the receiver offers it */
#define FLAGHOOK_HTTP_1_1     1  /* HTTP/1.1 only */

#define FLAGHOOK_CLIENT_OPTIONS_VERSION 3
#define FLAGHOOK_CLIENT_OPTIONS_INIT \
	{ FLAGHOOK_CLIENT_OPTIONS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, \
	  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, \
	  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }
FLAGHOOK_EXTERN int flaghook_client_options_init(flaghook_client_options *opts,
                                                 unsigned int version);

/* NULL opts: every default.  The client copies what it needs from opts.
 * On success the client owns the transport's and storage's user_data and
 * calls their destroy in flaghook_client_free(); on failure it calls
 * neither, and they stay the caller's. */
FLAGHOOK_EXTERN int flaghook_client_new(flaghook_client **out,
                                        const flaghook_client_options *opts);
/* NULL is a no-op.  Secrets are zeroed before their memory is released. */
FLAGHOOK_EXTERN void flaghook_client_free(flaghook_client *client);

/*
 * Copies the detail of the client's most recent failure (from any thread)
 * into buf, NUL-terminated and truncated to buf_size.  Returns the length of
 * the full message.
 */
FLAGHOOK_EXTERN size_t flaghook_client_last_error(const flaghook_client *client,
                                                  char *buf, size_t buf_size);

/* The client's store (its own table; the client still owns it), for
 * flaghook_storage_list, _attempts and _requeue. */
FLAGHOOK_EXTERN int flaghook_client_storage(flaghook_client *client,
                                            const flaghook_storage **out);
/* flaghook_storage_requeue on the client's store, then sends what it
 * re-queued without waiting for a poll. */
FLAGHOOK_EXTERN int flaghook_client_requeue(flaghook_client *client, const flaghook_query *query,
                                            uint64_t *count);

/* ------------------------------------------------------------------ */
/* Endpoints                                                           */

#define FLAGHOOK_SCOPE_ENVIRONMENT  1
#define FLAGHOOK_SCOPE_ORGANISATION 2

/* Event mask bit for an event type. */
#define FLAGHOOK_EVENT_BIT(type) (1u << (type))
/* Environment default: FLAG_UPDATED, FLAG_DELETED, NEW_VERSION_PUBLISHED.
 * Organisation default: AUDIT_LOG_CREATED, FLAG_UPDATED, FLAG_DELETED. */
#define FLAGHOOK_EVENTS_DEFAULT 0u

typedef struct flaghook_endpoint_options {
	unsigned int version;
	int32_t scope;              /* FLAGHOOK_SCOPE_* */
	int64_t scope_id;           /* the environment or organisation id */
	const char *url;            /* http:// or https:// */
	const char *secret;         /* nullable: no X-Flagsmith-Signature */
	size_t secret_len;
	uint32_t events;            /* FLAGHOOK_EVENT_BIT()s, or FLAGHOOK_EVENTS_DEFAULT */
	int32_t disabled;           /* registered but not sent to */
	int32_t profile;            /* FLAGHOOK_PROFILE_* */
	uint32_t render_flags;      /* FLAGHOOK_RENDER_* */
	/* Standard Webhooks: "whsec_..." secrets; several during a rotation
	 * (at most FLAGHOOK_STANDARD_SECRETS_MAX).  With any given,
	 * webhook-id/-timestamp/-signature headers are sent. */
	const char *const *standard_secrets;
	size_t standard_secret_count;
	/* Asynchronous delivery. */
	int32_t fifo;               /* one in flight, in emit order, retries included */
	int32_t max_in_flight;      /* 0: the client's */
	const flaghook_retry_policy *retry; /* NULL: the client's */
	/* The endpoint's id, unique in the client; 0: the library picks the
	 * next free one.  A durable store needs one given (FLAGHOOK_EINVAL
	 * otherwise), the same in every run (its row's key, say): stored
	 * deliveries name their endpoint by id, and a restarted client resumes
	 * them for the endpoint registered under it. */
	uint64_t id;

	/* ---- version 2: TLS, checked by flaghook_endpoint_add ---- */
	const char *ca_file;        /* NULL: the client's */
	const char *ca_path;        /* NULL: the client's */
	/* Mutual TLS: a PEM certificate and its key (both or neither); the key
	 * may be encrypted with client_key_password (copied, wiped on free). */
	const char *client_cert;
	const char *client_key;
	const char *client_key_password;
} flaghook_endpoint_options;

#define FLAGHOOK_STANDARD_SECRETS_MAX 8
#define FLAGHOOK_ENDPOINT_OPTIONS_VERSION 2
#define FLAGHOOK_ENDPOINT_OPTIONS_INIT \
	{ FLAGHOOK_ENDPOINT_OPTIONS_VERSION, FLAGHOOK_SCOPE_ENVIRONMENT, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, \
	  0, 0, 0, 0, 0, 0, 0, 0, 0 }
FLAGHOOK_EXTERN int flaghook_endpoint_options_init(flaghook_endpoint_options *opts,
                                                   unsigned int version);

/* Registers an endpoint; its id goes to *out_id (may be NULL).  An id
 * already registered is FLAGHOOK_EINVAL; a URL whose host is an IP literal
 * the client's guard refuses is FLAGHOOK_EREFUSED; TLS files that do not
 * load (or a key that does not match its certificate) FLAGHOOK_EINVAL. */
FLAGHOOK_EXTERN int flaghook_endpoint_add(flaghook_client *client, uint64_t *out_id,
                                          const flaghook_endpoint_options *opts);
FLAGHOOK_EXTERN int flaghook_endpoint_remove(flaghook_client *client, uint64_t id);
/* A disabled endpoint gets no new events; in ASYNC mode the deliveries
 * still waiting for it in this client are given up (on_result says so for
 * each).  With a shared store, FIFO deliveries waiting unheld in the store
 * stay there for a process that still sends to the endpoint. */
FLAGHOOK_EXTERN int flaghook_endpoint_set_enabled(flaghook_client *client, uint64_t id,
                                                  int enabled);

/* Counters of one endpoint, readable at any time. */
typedef struct flaghook_endpoint_stats {
	unsigned int version;
	uint64_t queued;            /* accepted, waiting to be sent or for a retry */
	uint64_t in_flight;         /* being sent now */
	uint64_t delivered;
	uint64_t retried;           /* failed attempts that were scheduled again */
	uint64_t gave_up;
	uint64_t abandoned;         /* left at shutdown */
	int32_t disabled;           /* 1 when disabled (by the caller or the library) */
	int32_t breaker_open;       /* 1 while the circuit is open */
	int32_t consecutive_failures;
	uint64_t released;          /* left pending in a durable store at shutdown */
} flaghook_endpoint_stats;

#define FLAGHOOK_ENDPOINT_STATS_VERSION 1
#define FLAGHOOK_ENDPOINT_STATS_INIT { FLAGHOOK_ENDPOINT_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }
/* Fills *out (whose version the caller sets) for endpoint id. */
FLAGHOOK_EXTERN int flaghook_endpoint_stats_get(flaghook_client *client, uint64_t id,
                                                flaghook_endpoint_stats *out);

/* Counters of the whole client, readable at any time. */
typedef struct flaghook_client_stats {
	unsigned int version;
	uint64_t pending;           /* accepted, not finished (ASYNC) */
	uint64_t running;           /* attempts under way, or being reported */
	uint64_t transfers;         /* of those, requests on the wire */
	uint64_t waiting;           /* on a timer: retries and circuits */
} flaghook_client_stats;

#define FLAGHOOK_CLIENT_STATS_VERSION 1
#define FLAGHOOK_CLIENT_STATS_INIT { FLAGHOOK_CLIENT_STATS_VERSION, 0, 0, 0, 0 }
/* Fills *out (whose version the caller sets). */
FLAGHOOK_EXTERN int flaghook_client_stats_get(flaghook_client *client, flaghook_client_stats *out);

/* ------------------------------------------------------------------ */
/* Emitting                                                            */

/*
 * Validates and renders `event`, then delivers it to every enabled endpoint
 * whose scope and event mask match.  In SYNC mode it returns after each has
 * been tried once: 0 when every one answered 2xx (or none matched),
 * FLAGHOOK_EDELIVERY when any did not; on_result tells which.  Invalid input
 * returns its code and nothing is sent.  Safe from many threads at once.
 *
 * Every delivery is recorded in the store before its first attempt; with a
 * durable store emit returns only once they are durable, and a store
 * failure (FLAGHOOK_ESTORAGE: the database went away, the disk is full)
 * means nothing of the event was recorded or sent.  Each request carries
 * the event's id in X-Flaghook-Event-Id (and webhook-id with Standard
 * Webhooks): the same across endpoints, retries and restarts, so a
 * receiver can drop the duplicates at-least-once delivery allows.
 */
FLAGHOOK_EXTERN int flaghook_emit(flaghook_client *client, const flaghook_event *event);

/*
 * ASYNC mode: waits until every accepted delivery has finished (delivered
 * or given up) or timeout_ms has passed (FLAGHOOK_ETIMEOUT).  In TICK mode
 * it runs the timers itself while it waits.  SYNC mode: returns 0.
 */
FLAGHOOK_EXTERN int flaghook_flush(flaghook_client *client, int64_t timeout_ms);

/*
 * TICK mode: runs what waits: transfers' I/O, finished transfers, retries
 * whose time has come, circuits whose cooldown is over, store polls.
 * Never blocks on the network.  *next_ms (may be NULL) gets how long until
 * it should be called again at the latest, -1 when nothing waits on a
 * timer; the descriptor from flaghook_fd becomes readable sooner when
 * there is more to do.
 */
FLAGHOOK_EXTERN int flaghook_tick(flaghook_client *client, int64_t *next_ms);

/*
 * TICK mode (ASYNC or SYNC): the one file descriptor a host's event loop
 * watches for reading (poll, epoll, libuv, asyncio's add_reader); when it
 * is readable, call flaghook_tick().  It stays the same for the client's
 * life; do not read it or close it.  Other modes: FLAGHOOK_EINVAL.
 */
FLAGHOOK_EXTERN int flaghook_fd(flaghook_client *client, int *out_fd);

/*
 * What the SSRF guard would say about a URL, without sending anything: for
 * a server's "save webhook" form.  Parses it as flaghook_endpoint_add does,
 * then resolves its host (a blocking name lookup) and vets every address
 * with the client's guard settings (NULL client: the defaults, which allow
 * no private address).  0: it may be sent to; FLAGHOOK_EURL: not an
 * acceptable URL; FLAGHOOK_EREFUSED: it names or resolves to a refused
 * address (the detail says which class, never the URL); FLAGHOOK_ETRANSPORT:
 * the name does not resolve.  Later deliveries are vetted again when they
 * connect: a name's addresses can change.
 */
FLAGHOOK_EXTERN int flaghook_url_check(const flaghook_client *client, const char *url);

/* ------------------------------------------------------------------ */
/* For bindings: JSON in, JSON out, no struct layouts                  */
/*                                                                     */
/* Everything above is reachable without copying a struct: events and  */
/* options as JSON, results from a queue a host's event loop watches,  */
/* constants by name.  Strings the library returns here are malloc'd   */
/* and released with flaghook_free.  Functions that take `error` write */
/* the detail of a failure there (NUL-terminated, truncated to         */
/* error_size; "" on success), whichever thread they ran on; NULL      */
/* error or 0 error_size: none.                                        */

/* Releases a string these functions returned; NULL is a no-op. */
FLAGHOOK_EXTERN void flaghook_free(void *ptr);

/*
 * Renders the event given as JSON: the payload's own shape,
 * {"event_type": "FLAG_UPDATED", "data": {...}} (as Flagsmith sends it;
 * "timestamp" is the event time and "sent_at" the send time), plus the
 * routing ids "environment_id" and "organisation_id" where the event
 * needs them.  Integers are exact over all of int64.  options_json (NULL:
 * defaults): {"profile": "flagsmith"|"flagsmith_2020"|"bullet_train",
 * "compact": false, "max_body_bytes": 0}.  The body is the same bytes
 * flaghook_render writes from the structs.  An error names the JSON path:
 * "$.data.new_state.feature.name: invalid UTF-8 at byte 3".
 */
FLAGHOOK_EXTERN int flaghook_render_json(char **out, size_t *out_len,
                                         const char *event_json, size_t event_len,
                                         const char *options_json,
                                         char *error, size_t error_size);

/* flaghook_client_new with the options as JSON: the members of
 * flaghook_client_options by name ("mode": "async", "retry": {...}),
 * every unknown key an error.  Callbacks, plug-ins and the allocator have
 * no JSON form: take results from the queue ("result_queue": true). */
FLAGHOOK_EXTERN int flaghook_client_new_json(flaghook_client **out, const char *options_json,
                                             char *error, size_t error_size);

/* flaghook_endpoint_add with the options as JSON ("url", "secret" as a
 * string (its UTF-8 bytes) or "secret_hex" (the same bytes in hex, for a
 * binding that holds bytes), "events": ["FLAG_UPDATED", ...], "scope":
 * "environment", ...).  The secret is checked as flaghook_endpoint_add
 * checks it. */
FLAGHOOK_EXTERN int flaghook_endpoint_add_json(flaghook_client *client, uint64_t *out_id,
                                               const char *options_json,
                                               char *error, size_t error_size);

/* flaghook_emit with the event as JSON (see flaghook_render_json). */
FLAGHOOK_EXTERN int flaghook_emit_json(flaghook_client *client,
                                       const char *event_json, size_t event_len,
                                       char *error, size_t error_size);

/*
 * The result queue (client option result_queue).  flaghook_results_fd
 * gives a descriptor that is readable exactly while the queue holds a
 * record: watch it with asyncio's add_reader or libuv; do not read or
 * close it.  flaghook_result_next takes the oldest record as one line of
 * JSON (no newline), waiting up to timeout_ms for one (0: not at all;
 * <0: until one comes or the client is freed); FLAGHOOK_ETIMEOUT when
 * none came.  Records (keys sorted):
 *   {"kind": "result", "endpoint_id": 1, "event_id": "...",
 *    "event_type": "FLAG_UPDATED", "outcome": "delivered", "status": 200,
 *    "errclass": "none", "attempts": 1, "elapsed_us": 1234, "error": "",
 *    "response": "..."}
 *   {"kind": "disabled", "endpoint_id": 1, "reason": "gone"|"failing"}
 *   {"kind": "log", "level": "warn", "message": "..."}
 * In SYNC mode a result is queued before flaghook_emit returns.
 */
FLAGHOOK_EXTERN int flaghook_results_fd(flaghook_client *client, int *out_fd);
FLAGHOOK_EXTERN int flaghook_result_next(flaghook_client *client, int64_t timeout_ms,
                                         char **out, size_t *out_len);

/* The client's counters and every endpoint's as JSON:
 * {"client": {"pending": 0, ...}, "endpoints": [{"id": 1, "delivered": 3,
 * ...}]}: flaghook_client_stats and flaghook_endpoint_stats by name. */
FLAGHOOK_EXTERN int flaghook_stats_json(flaghook_client *client, char **out, size_t *out_len);

/*
 * Metrics in the Prometheus text exposition format (version 0.0.4), for a
 * server's /metrics: per endpoint (label endpoint="<id>") the deliveries
 * by outcome, attempts, retries, what is queued and in flight, whether it
 * is disabled or its circuit open, and a histogram of attempt latency in
 * seconds; per client what is pending and running.  Names start with
 * "flaghook_".  Never a URL or a secret.
 */
FLAGHOOK_EXTERN int flaghook_metrics(flaghook_client *client, char **out, size_t *out_len);

/* The value of a public constant by its name ("FLAGHOOK_EINVAL",
 * "FLAGHOOK_EVENT_FLAG_UPDATED", "FLAGHOOK_CLIENT_OPTIONS_VERSION"):
 * 0, or FLAGHOOK_ENOTFOUND for a name that is not one. */
FLAGHOOK_EXTERN int flaghook_constant(const char *name, int64_t *out);
/* Every public constant, as a JSON object {"FLAGHOOK_EINVAL": -1, ...}
 * (static; do not free): generated from this header at build time. */
FLAGHOOK_EXTERN const char *flaghook_constants_json(void);

#ifdef __cplusplus
}
#endif

#endif /* FLAGHOOK_H */
