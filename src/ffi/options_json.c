/*
 * Client and endpoint options from JSON: the members of the C structs by
 * their C names, enumerations by name ("mode": "async"), times in
 * milliseconds, and every unknown key an error, so that a typo cannot go
 * unnoticed.  Callbacks, plug-in tables and the allocator have no JSON
 * form: a binding takes its results from the queue (flaghook_result_next).
 */
#include "ffi/ffi.h"

#include <stdio.h>
#include <string.h>

/* A member whose value is one of `names` (NULL-terminated); its index. */
static bool enum_of(fh_jr *r, const cJSON *obj, const char *key, const char *const *names, const int32_t *values,
                    int32_t *out)
{
	const char *s = NULL;
	if (!flaghook__jr_str(r, obj, key, false, false, &s))
		return false;
	if (!s)
		return true;
	for (size_t i = 0; names[i]; i++) {
		if (!strcmp(s, names[i])) {
			*out = values[i];
			return true;
		}
	}
	char what[160];
	size_t len = (size_t)snprintf(what, sizeof(what), "must be one of");
	for (size_t i = 0; names[i] && len < sizeof(what); i++)
		len += (size_t)snprintf(what + len, sizeof(what) - len, "%s \"%s\"", i ? "," : "", names[i]);
	flaghook__jr_push(r, key);
	flaghook__jr_fail(r, FLAGHOOK_EINVAL, what);
	flaghook__jr_pop(r);
	return false;
}

static bool int32_of(fh_jr *r, const cJSON *obj, const char *key, int32_t *out)
{
	int64_t v = *out;
	if (!flaghook__jr_int(r, obj, key, false, &v))
		return false;
	if (v < INT32_MIN || v > INT32_MAX) {
		flaghook__jr_push(r, key);
		flaghook__jr_fail(r, FLAGHOOK_EINVAL, "is out of range");
		flaghook__jr_pop(r);
		return false;
	}
	*out = (int32_t)v;
	return true;
}

static bool size_of(fh_jr *r, const cJSON *obj, const char *key, size_t *out)
{
	int64_t v = (int64_t)*out;
	if (!flaghook__jr_int(r, obj, key, false, &v))
		return false;
	if (v < 0) {
		flaghook__jr_push(r, key);
		flaghook__jr_fail(r, FLAGHOOK_EINVAL, "must not be negative");
		flaghook__jr_pop(r);
		return false;
	}
	*out = (size_t)v;
	return true;
}

static bool flag_of(fh_jr *r, const cJSON *obj, const char *key, int32_t *out)
{
	return flaghook__jr_bool(r, obj, key, false, out);
}

/* An array of strings, as a NULL-free pointer array in the arena. */
static bool strings_of(fh_jr *r, const cJSON *obj, const char *key, const char *const **out, size_t *count)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!a)
		return true;
	flaghook__jr_push(r, key);
	bool ok = cJSON_IsArray(a) || flaghook__jr_fail(r, FLAGHOOK_EINVAL, "must be an array of strings");
	size_t n = ok ? (size_t)cJSON_GetArraySize(a) : 0, k = 0;
	const char **v = ok ? flaghook__jr_alloc(r, (n ? n : 1) * sizeof(*v)) : NULL;
	ok = ok && v;
	for (const cJSON *it = ok ? a->child : NULL; ok && it; it = it->next, k++) {
		flaghook__jr_push_index(r, (long)k);
		ok = cJSON_IsString(it) || flaghook__jr_fail(r, FLAGHOOK_EINVAL, "must be a string");
		if (ok)
			v[k] = it->valuestring;
		flaghook__jr_pop(r);
	}
	flaghook__jr_pop(r);
	if (ok) {
		*out = v;
		*count = n;
	}
	return ok;
}

static bool retry_of(fh_jr *r, const cJSON *obj, flaghook_retry_policy *p, const flaghook_retry_policy **out)
{
	const cJSON *o = NULL;
	if (!flaghook__jr_object(r, obj, "retry", false, true, &o) || !o)
		return !r->err;
	static const char *const keys[] = { "kind", "schedule_ms", "max_attempts", "jitter_percent",
	                                    "retry_after_cap_ms", NULL };
	static const char *const kinds[] = { "flagsmith", "standard", NULL };
	static const int32_t kind_values[] = { FLAGHOOK_RETRY_FLAGSMITH, FLAGHOOK_RETRY_STANDARD };
	flaghook_retry_policy_init(p, FLAGHOOK_RETRY_POLICY_VERSION);
	flaghook__jr_push(r, "retry");
	bool ok = flaghook__jr_keys(r, o, keys) && enum_of(r, o, "kind", kinds, kind_values, &p->kind) &&
	          int32_of(r, o, "max_attempts", &p->max_attempts) && int32_of(r, o, "jitter_percent", &p->jitter_percent) &&
	          flaghook__jr_int(r, o, "retry_after_cap_ms", false, &p->retry_after_cap_ms);
	const cJSON *sched = cJSON_GetObjectItemCaseSensitive(o, "schedule_ms");
	if (ok && sched) {
		flaghook__jr_push(r, "schedule_ms");
		ok = cJSON_IsArray(sched) || flaghook__jr_fail(r, FLAGHOOK_EINVAL, "must be an array of milliseconds");
		size_t n = ok ? (size_t)cJSON_GetArraySize(sched) : 0, k = 0;
		int64_t *ms = ok ? flaghook__jr_alloc(r, (n ? n : 1) * sizeof(*ms)) : NULL;
		ok = ok && ms;
		for (const cJSON *it = ok ? sched->child : NULL; ok && it; it = it->next, k++) {
			flaghook__jr_push_index(r, (long)k);
			double d;
			bool isi = false;
			ok = cJSON_IsNumber(it) ? flaghook__jr_number(r, it, &ms[k], &d, &isi)
			                        : flaghook__jr_fail(r, FLAGHOOK_EINVAL, "must be an integer");
			if (ok && !isi)
				ok = flaghook__jr_fail(r, FLAGHOOK_EINVAL, "must be an integer");
			flaghook__jr_pop(r);
		}
		flaghook__jr_pop(r);
		if (ok && n) {
			p->schedule_ms = ms;
			p->schedule_count = n;
		}
	}
	flaghook__jr_pop(r);
	*out = ok ? p : NULL;
	return ok;
}

static int hexval(char h)
{
	return h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
}

/* "secret_hex": the secret's bytes as hex, for a binding that holds bytes;
 * they are checked as flaghook_endpoint_add checks a secret. */
static bool secret_hex(fh_jr *r, const cJSON *obj, fh_options_json *x)
{
	const char *hex = NULL;
	if (!flaghook__jr_str(r, obj, "secret_hex", false, true, &hex) || !hex)
		return !r->err;
	flaghook__jr_push(r, "secret_hex");
	size_t n = strlen(hex);
	bool ok = true;
	if (cJSON_GetObjectItemCaseSensitive(obj, "secret"))
		ok = flaghook__jr_fail(r, FLAGHOOK_EINVAL, "and \"secret\" are the same thing: give one");
	else if (n % 2)
		ok = flaghook__jr_fail(r, FLAGHOOK_EINVAL, "must have an even number of hex digits");
	char *bytes = ok ? flaghook__jr_alloc(r, n / 2 + 1) : NULL;
	ok = ok && bytes;
	for (size_t i = 0; ok && i < n; i += 2) {
		int hi = hexval(hex[i]), lo = hexval(hex[i + 1]);
		if (hi < 0 || lo < 0)
			ok = flaghook__jr_fail(r, FLAGHOOK_EINVAL, "must be hex digits only");
		else
			bytes[i / 2] = (char)(hi << 4 | lo);
	}
	flaghook__jr_pop(r);
	if (!ok)
		return false;
	bytes[n / 2] = '\0';
	x->secret_bytes = bytes;
	x->secret_len = n / 2;
	return true;
}

static bool string_of(fh_jr *r, const cJSON *obj, const char *key, const char **out)
{
	return flaghook__jr_str(r, obj, key, false, true, out);
}

int flaghook__client_options_json(fh_options_json *x, const char *json)
{
	memset(x, 0, sizeof(*x));
	int rc = flaghook__jr_open(&x->r, json ? json : "{}", json ? strlen(json) : 2, NULL, FLAGHOOK_EINVAL);
	if (rc)
		return rc;
	fh_jr *r = &x->r;
	flaghook_client_options *o = &x->o.client;
	flaghook_client_options_init(o, FLAGHOOK_CLIENT_OPTIONS_VERSION);
	static const char *const keys[] = {
		"mode", "connect_timeout_ms", "timeout_ms", "max_body_bytes", "max_response_bytes", "user_agent",
		"ca_file", "threads", "max_pending", "emit_wait_ms", "retry", "max_in_flight", "breaker_threshold",
		"breaker_cooldown_ms", "disable_after_ms", "shutdown_timeout_ms", "timers", "poll_interval_ms",
		"allow_private", "allow_cidrs", "proxy", "tls_min_version", "ca_path", "max_transfers",
		"max_host_connections", "http_version", "result_queue", "log_level", NULL
	};
	static const char *const modes[] = { "sync", "async", NULL };
	static const int32_t mode_values[] = { FLAGHOOK_MODE_SYNC, FLAGHOOK_MODE_ASYNC };
	static const char *const timers[] = { "thread", "tick", NULL };
	static const int32_t timer_values[] = { FLAGHOOK_TIMERS_THREAD, FLAGHOOK_TIMERS_TICK };
	static const char *const tls[] = { "1.2", "1.3", NULL };
	static const int32_t tls_values[] = { FLAGHOOK_TLS_1_2, FLAGHOOK_TLS_1_3 };
	static const char *const http[] = { "default", "1.1", NULL };
	static const int32_t http_values[] = { FLAGHOOK_HTTP_DEFAULT, FLAGHOOK_HTTP_1_1 };
	static const char *const levels[] = { "error", "warn", "info", "debug", NULL };
	static const int32_t level_values[] = { FLAGHOOK_LOG_ERROR, FLAGHOOK_LOG_WARN, FLAGHOOK_LOG_INFO,
	                                        FLAGHOOK_LOG_DEBUG };
	const cJSON *root = r->root;
	if (!cJSON_IsObject(root)) {
		flaghook__jr_fail(r, FLAGHOOK_EINVAL, "client options must be a JSON object");
	} else if (flaghook__jr_keys(r, root, keys) && enum_of(r, root, "mode", modes, mode_values, &o->mode) &&
	           flaghook__jr_int(r, root, "connect_timeout_ms", false, &o->connect_timeout_ms) &&
	           flaghook__jr_int(r, root, "timeout_ms", false, &o->timeout_ms) &&
	           size_of(r, root, "max_body_bytes", &o->max_body_bytes) &&
	           size_of(r, root, "max_response_bytes", &o->max_response_bytes) &&
	           string_of(r, root, "user_agent", &o->user_agent) && string_of(r, root, "ca_file", &o->ca_file) &&
	           int32_of(r, root, "threads", &o->threads) && size_of(r, root, "max_pending", &o->max_pending) &&
	           flaghook__jr_int(r, root, "emit_wait_ms", false, &o->emit_wait_ms) &&
	           retry_of(r, root, &x->retry, &o->retry) && int32_of(r, root, "max_in_flight", &o->max_in_flight) &&
	           int32_of(r, root, "breaker_threshold", &o->breaker_threshold) &&
	           flaghook__jr_int(r, root, "breaker_cooldown_ms", false, &o->breaker_cooldown_ms) &&
	           flaghook__jr_int(r, root, "disable_after_ms", false, &o->disable_after_ms) &&
	           flaghook__jr_int(r, root, "shutdown_timeout_ms", false, &o->shutdown_timeout_ms) &&
	           enum_of(r, root, "timers", timers, timer_values, &o->timers) &&
	           flaghook__jr_int(r, root, "poll_interval_ms", false, &o->poll_interval_ms) &&
	           flag_of(r, root, "allow_private", &o->allow_private) &&
	           strings_of(r, root, "allow_cidrs", &o->allow_cidrs, &o->allow_cidr_count) &&
	           string_of(r, root, "proxy", &o->proxy) &&
	           enum_of(r, root, "tls_min_version", tls, tls_values, &o->tls_min_version) &&
	           string_of(r, root, "ca_path", &o->ca_path) && int32_of(r, root, "max_transfers", &o->max_transfers) &&
	           int32_of(r, root, "max_host_connections", &o->max_host_connections) &&
	           enum_of(r, root, "http_version", http, http_values, &o->http_version) &&
	           flag_of(r, root, "result_queue", &o->result_queue) &&
	           enum_of(r, root, "log_level", levels, level_values, &o->log_level)) {
		/* every member read */
	}
	rc = r->err;
	if (rc)
		flaghook__options_json_free(x);
	return rc;
}

int flaghook__endpoint_options_json(fh_options_json *x, const char *json)
{
	memset(x, 0, sizeof(*x));
	int rc = flaghook__jr_open(&x->r, json ? json : "", json ? strlen(json) : 0, NULL, FLAGHOOK_EINVAL);
	if (rc)
		return rc;
	fh_jr *r = &x->r;
	flaghook_endpoint_options *o = &x->o.endpoint;
	flaghook_endpoint_options_init(o, FLAGHOOK_ENDPOINT_OPTIONS_VERSION);
	static const char *const keys[] = {
		"scope", "scope_id", "url", "secret", "secret_hex", "events", "disabled", "profile", "compact", "standard_secrets",
		"fifo", "max_in_flight", "retry", "id", "ca_file", "ca_path", "client_cert", "client_key",
		"client_key_password", NULL
	};
	static const char *const scopes[] = { "environment", "organisation", NULL };
	static const int32_t scope_values[] = { FLAGHOOK_SCOPE_ENVIRONMENT, FLAGHOOK_SCOPE_ORGANISATION };
	static const char *const profiles[] = { "flagsmith", "flagsmith_2020", "bullet_train", NULL };
	static const int32_t profile_values[] = { FLAGHOOK_PROFILE_FLAGSMITH, FLAGHOOK_PROFILE_FLAGSMITH_2020,
	                                          FLAGHOOK_PROFILE_BULLET_TRAIN };
	const cJSON *root = r->root;
	const char *const *events = NULL;
	size_t nevents = 0;
	int32_t compact = 0;
	int64_t id = 0;
	if (!cJSON_IsObject(root)) {
		flaghook__jr_fail(r, FLAGHOOK_EINVAL, "endpoint options must be a JSON object");
	} else if (flaghook__jr_keys(r, root, keys) && enum_of(r, root, "scope", scopes, scope_values, &o->scope) &&
	           flaghook__jr_int(r, root, "scope_id", false, &o->scope_id) &&
	           flaghook__jr_str(r, root, "url", true, false, &o->url) && string_of(r, root, "secret", &o->secret) &&
	           strings_of(r, root, "events", &events, &nevents) && flag_of(r, root, "disabled", &o->disabled) &&
	           enum_of(r, root, "profile", profiles, profile_values, &o->profile) &&
	           flag_of(r, root, "compact", &compact) &&
	           strings_of(r, root, "standard_secrets", &o->standard_secrets, &o->standard_secret_count) &&
	           flag_of(r, root, "fifo", &o->fifo) && int32_of(r, root, "max_in_flight", &o->max_in_flight) &&
	           retry_of(r, root, &x->retry, &o->retry) && flaghook__jr_int(r, root, "id", false, &id) &&
	           string_of(r, root, "ca_file", &o->ca_file) && string_of(r, root, "ca_path", &o->ca_path) &&
	           string_of(r, root, "client_cert", &o->client_cert) && string_of(r, root, "client_key", &o->client_key) &&
	           string_of(r, root, "client_key_password", &o->client_key_password)) {
		/* The secret as the UTF-8 bytes of the JSON string: what any
		 * language means by it, whatever its own string length counts;
		 * or the same bytes given as hex. */
		o->secret_len = o->secret ? strlen(o->secret) : 0;
		if (secret_hex(r, root, x) && x->secret_bytes) {
			o->secret = x->secret_bytes;
			o->secret_len = x->secret_len;
		}
		o->render_flags = compact ? FLAGHOOK_RENDER_COMPACT : 0;
		if (id < 0) {
			flaghook__jr_push(r, "id");
			flaghook__jr_fail(r, FLAGHOOK_EINVAL, "must not be negative");
		}
		o->id = (uint64_t)id;
		for (size_t i = 0; i < nevents && !r->err; i++) {
			int t = flaghook_event_type_from_name(events[i]);
			if (t < 0) {
				flaghook__jr_push(r, "events");
				flaghook__jr_push_index(r, (long)i);
				flaghook__jr_fail(r, FLAGHOOK_EINVAL, "is not an event type name");
			} else {
				o->events |= FLAGHOOK_EVENT_BIT(t);
			}
		}
	}
	rc = r->err;
	if (rc)
		flaghook__options_json_free(x);
	return rc;
}

void flaghook__options_json_free(fh_options_json *x)
{
	/* A secret or a key password passed through the JSON text: wiped in
	 * cJSON's copy before it goes. */
	if (x->r.root) {
		static const char *const secret_keys[] = { "secret", "secret_hex", "client_key_password", NULL };
		for (size_t i = 0; secret_keys[i]; i++) {
			cJSON *s = cJSON_GetObjectItemCaseSensitive(x->r.root, secret_keys[i]);
			if (cJSON_IsString(s))
				flaghook__wipe(s->valuestring, strlen(s->valuestring));
		}
		cJSON *std = cJSON_GetObjectItemCaseSensitive(x->r.root, "standard_secrets");
		for (cJSON *it = cJSON_IsArray(std) ? std->child : NULL; it; it = it->next)
			if (cJSON_IsString(it))
				flaghook__wipe(it->valuestring, strlen(it->valuestring));
	}
	if (x->secret_bytes)
		flaghook__wipe(x->secret_bytes, x->secret_len);
	flaghook__jr_close(&x->r);
}

int flaghook__render_options_json(fh_options_json *x, const char *json)
{
	memset(x, 0, sizeof(*x));
	int rc = flaghook__jr_open(&x->r, json ? json : "{}", json ? strlen(json) : 2, NULL, FLAGHOOK_EINVAL);
	if (rc)
		return rc;
	fh_jr *r = &x->r;
	flaghook_render_options *o = &x->o.render;
	flaghook_render_options_init(o, FLAGHOOK_RENDER_OPTIONS_VERSION);
	static const char *const keys[] = { "profile", "compact", "max_body_bytes", NULL };
	static const char *const profiles[] = { "flagsmith", "flagsmith_2020", "bullet_train", NULL };
	static const int32_t profile_values[] = { FLAGHOOK_PROFILE_FLAGSMITH, FLAGHOOK_PROFILE_FLAGSMITH_2020,
	                                          FLAGHOOK_PROFILE_BULLET_TRAIN };
	int32_t compact = 0;
	if (!cJSON_IsObject(r->root))
		flaghook__jr_fail(r, FLAGHOOK_EINVAL, "render options must be a JSON object");
	else if (flaghook__jr_keys(r, r->root, keys) &&
	         enum_of(r, r->root, "profile", profiles, profile_values, &o->profile) &&
	         flag_of(r, r->root, "compact", &compact) && size_of(r, r->root, "max_body_bytes", &o->max_body_bytes))
		o->flags = compact ? FLAGHOOK_RENDER_COMPACT : 0;
	rc = r->err;
	if (rc)
		flaghook__options_json_free(x);
	return rc;
}
