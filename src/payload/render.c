/*
 * Events to bodies.  Each function writes one JSON object of the Flagsmith
 * payload with its members in sorted order (the writer asserts it), and
 * checks its input as it goes: an error names the field by its path in the
 * event ("event.flag.new_state.feature.name").
 */
#include "payload/json.h"
#include "payload/render.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PATH 24

/* The payload's own keys are constant ASCII: no escaping pass for them. */
#define KEY(r, k) flaghook__json_key_ascii(&(r)->w, (k), strlen(k))
#define KEYLIT(r, k) flaghook__json_key_ascii(&(r)->w, (k), sizeof(k) - 1)

typedef struct render {
	fh_json w;
	int profile;
	int err;
	int npath;
	struct { const char *name; long index; } path[MAX_PATH];
} render;

static void push(render *r, const char *name) { if (r->npath < MAX_PATH) { r->path[r->npath].name = name; r->path[r->npath].index = -1; } r->npath++; }
static void push_index(render *r, long index) { if (r->npath < MAX_PATH) { r->path[r->npath].name = NULL; r->path[r->npath].index = index; } r->npath++; }
static void pop(render *r) { r->npath--; }

static void path_text(const render *r, const char *leaf, char *out, size_t n)
{
	size_t len = (size_t)snprintf(out, n, "event");
	int depth = r->npath < MAX_PATH ? r->npath : MAX_PATH;
	for (int i = 0; i < depth && len < n; i++) {
		if (r->path[i].name)
			len += (size_t)snprintf(out + len, n - len, ".%s", r->path[i].name);
		else
			len += (size_t)snprintf(out + len, n - len, "[%ld]", r->path[i].index);
	}
	if (leaf && len < n)
		snprintf(out + len, n - len, ".%s", leaf);
}

/* Records the first error, naming the field at `leaf` under the current path. */
static bool fail(render *r, int code, const char *leaf, const char *what)
{
	if (r->err)
		return false;
	char path[256];
	path_text(r, leaf, path, sizeof(path));
	r->err = flaghook__error(code, "%s: %s", path, what);
	return false;
}

/* Turns a writer error into a reported one. */
static bool check(render *r, const char *leaf)
{
	if (r->err)
		return false;
	if (!r->w.err)
		return true;
	if (r->w.err == FLAGHOOK_EUTF8) {
		char what[64];
		snprintf(what, sizeof(what), "invalid UTF-8 at byte %zu", r->w.bad_offset);
		return fail(r, FLAGHOOK_EUTF8, leaf, what);
	}
	if (r->w.err == FLAGHOOK_ETOOBIG)
		return fail(r, FLAGHOOK_ETOOBIG, NULL, "body is over the size limit");
	if (r->w.err == FLAGHOOK_ENOMEM)
		return fail(r, FLAGHOOK_ENOMEM, NULL, "out of memory");
	return fail(r, r->w.err, leaf, "cannot be written");
}

static bool ok(const render *r) { return !r->err && !r->w.err; }

/* A caller's item count, checked before anything is sized from it: every
 * item writes at least one byte, so more than the body limit cannot fit,
 * and past FLAGHOOK_MAX_ITEMS a count is taken as a mistake.  This also
 * keeps `n + k` and `n * size` from wrapping below. */
static bool count_ok(render *r, size_t count, const char *leaf)
{
	if (!ok(r))
		return false;
	char what[96];
	if (r->w.limit && count > r->w.limit) {
		snprintf(what, sizeof(what), "has %zu items: more than fit in the body limit of %zu bytes",
		         count, r->w.limit);
		return fail(r, FLAGHOOK_ETOOBIG, leaf, what);
	}
	if (count > FLAGHOOK_MAX_ITEMS) {
		snprintf(what, sizeof(what), "has %zu items: at most %d are allowed", count, FLAGHOOK_MAX_ITEMS);
		return fail(r, FLAGHOOK_EEVENT, leaf, what);
	}
	return true;
}

/* A member whose value is a string; NULL is null when nullable. */
static void m_str(render *r, const char *key, const char *s, bool nullable)
{
	if (!ok(r))
		return;
	if (!s && !nullable) {
		fail(r, FLAGHOOK_EEVENT, key, "is NULL but required");
		return;
	}
	KEY(r, key);
	flaghook__json_cstring(&r->w, s);
	check(r, key);
}

static void m_int(render *r, const char *key, int64_t v)
{
	KEY(r, key);
	flaghook__json_int(&r->w, v);
}

static void m_bool(render *r, const char *key, int32_t v)
{
	KEY(r, key);
	flaghook__json_bool(&r->w, v != 0);
}

static void m_time(render *r, const char *key, int64_t us, fh_time_style style)
{
	char t[32];
	if (flaghook__format_time(t, us, style) < 0) {
		fail(r, FLAGHOOK_EEVENT, key, "is outside years 1..9999");
		return;
	}
	KEY(r, key);
	flaghook__json_string(&r->w, t, strlen(t));
}

#define TYPES_FLAG_VALUE ((1u << FLAGHOOK_VALUE_NULL) | (1u << FLAGHOOK_VALUE_STRING) | \
                          (1u << FLAGHOOK_VALUE_INT) | (1u << FLAGHOOK_VALUE_BOOL))
#define TYPES_NUMBER ((1u << FLAGHOOK_VALUE_INT) | (1u << FLAGHOOK_VALUE_FLOAT))
#define TYPES_ANY 0x7Fu

static void value(render *r, const flaghook_value *v, const char *leaf, int depth);

static int member_cmp(const void *a, const void *b)
{
	const flaghook_member *x = *(const flaghook_member *const *)a;
	const flaghook_member *y = *(const flaghook_member *const *)b;
	return strcmp(x->key, y->key);
}

/* Sorted pointers to `count` members; checks keys.  NULL after fail(). */
static const flaghook_member **sorted_members(render *r, const flaghook_member *m,
                                              size_t count, const char *leaf)
{
	if (!count_ok(r, count, leaf))
		return NULL;
	if (count && !m) {
		fail(r, FLAGHOOK_EEVENT, leaf, "has members == NULL and a count");
		return NULL;
	}
	const flaghook_member **idx = flaghook__calloc(r->w.out->allocator, count ? count : 1, sizeof(*idx));
	if (!idx) {
		fail(r, FLAGHOOK_ENOMEM, NULL, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < count; i++) {
		if (!m[i].key) {
			flaghook__free(r->w.out->allocator, idx);
			fail(r, FLAGHOOK_EEVENT, leaf, "has a member whose key is NULL");
			return NULL;
		}
		idx[i] = &m[i];
	}
	qsort(idx, count, sizeof(*idx), member_cmp);
	for (size_t i = 1; i < count; i++) {
		if (strcmp(idx[i - 1]->key, idx[i]->key) == 0) {
			flaghook__free(r->w.out->allocator, idx);
			fail(r, FLAGHOOK_EEVENT, leaf, "has a duplicate key");
			return NULL;
		}
	}
	return idx;
}

static void value_typed(render *r, const char *key, const flaghook_value *v, unsigned allowed)
{
	if (!ok(r))
		return;
	if (v->type < 0 || v->type > FLAGHOOK_VALUE_OBJECT || !(allowed & (1u << v->type))) {
		fail(r, FLAGHOOK_EEVENT, key, "has a value type not allowed here");
		return;
	}
	KEY(r, key);
	value(r, v, key, 0);
}

static void value(render *r, const flaghook_value *v, const char *leaf, int depth)
{
	if (!ok(r))
		return;
	if (depth >= FH_JSON_MAX_DEPTH - 8) {
		fail(r, FLAGHOOK_EEVENT, leaf, "nests too deeply");
		return;
	}
	switch (v->type) {
	case FLAGHOOK_VALUE_NULL: flaghook__json_null(&r->w); break;
	case FLAGHOOK_VALUE_BOOL: flaghook__json_bool(&r->w, v->boolean != 0); break;
	case FLAGHOOK_VALUE_INT: flaghook__json_int(&r->w, v->integer); break;
	case FLAGHOOK_VALUE_FLOAT:
		if (flaghook__double_repr((char[32]){0}, v->number) < 0) {
			fail(r, FLAGHOOK_EEVENT, leaf, "is NaN or infinite");
			return;
		}
		flaghook__json_double(&r->w, v->number);
		break;
	case FLAGHOOK_VALUE_STRING:
		if (!v->string) {
			fail(r, FLAGHOOK_EEVENT, leaf, "is a string value whose string is NULL");
			return;
		}
		flaghook__json_cstring(&r->w, v->string);
		break;
	case FLAGHOOK_VALUE_ARRAY:
		if (!count_ok(r, v->count, leaf))
			return;
		if (v->count && !v->items) {
			fail(r, FLAGHOOK_EEVENT, leaf, "has items == NULL and a count");
			return;
		}
		flaghook__json_array_begin(&r->w);
		for (size_t i = 0; i < v->count && ok(r); i++)
			value(r, &v->items[i], leaf, depth + 1);
		flaghook__json_array_end(&r->w);
		break;
	case FLAGHOOK_VALUE_OBJECT: {
		const flaghook_member **idx = sorted_members(r, v->members, v->count, leaf);
		if (!idx)
			return;
		flaghook__json_object_begin(&r->w);
		for (size_t i = 0; i < v->count && ok(r); i++) {
			flaghook__json_key(&r->w, idx[i]->key);
			if (check(r, leaf))
				value(r, &idx[i]->value, idx[i]->key, depth + 1);
		}
		flaghook__json_object_end(&r->w);
		flaghook__free(r->w.out->allocator, idx);
		break;
	}
	default:
		fail(r, FLAGHOOK_EEVENT, leaf, "has an unknown value type");
		return;
	}
	check(r, leaf);
}

/* ---- feature states ---- */

static void project_obj(render *r, const char *key, const flaghook_project *p, bool with_org)
{
	if (!ok(r))
		return;
	KEY(r, key);
	if (r->profile == FLAGHOOK_PROFILE_FLAGSMITH_2020 && !with_org) {
		flaghook__json_int(&r->w, p->id);
		return;
	}
	push(r, key);
	flaghook__json_object_begin(&r->w);
	m_int(r, "id", p->id);
	m_str(r, "name", p->name, false);
	if (with_org)
		m_int(r, "organisation", p->organisation);
	flaghook__json_object_end(&r->w);
	pop(r);
}

/* A feature state's environment is {id, name} (an integer id in 2020); an
 * audit log's is the serializer of its day: {api_key, id, name, project}
 * in 2020 and Bullet Train, and today {id, name} with whatever is set. */
static void environment_obj(render *r, const char *key, const flaghook_environment *e, bool audit)
{
	if (!ok(r))
		return;
	KEY(r, key);
	if (!audit && r->profile == FLAGHOOK_PROFILE_FLAGSMITH_2020) {
		flaghook__json_int(&r->w, e->id);
		return;
	}
	bool full = audit && r->profile != FLAGHOOK_PROFILE_FLAGSMITH;
	push(r, key);
	flaghook__json_object_begin(&r->w);
	if (audit && (full || e->api_key))
		m_str(r, "api_key", e->api_key, true);
	m_int(r, "id", e->id);
	m_str(r, "name", e->name, false);
	if (audit && (full || e->project))
		m_int(r, "project", e->project);
	flaghook__json_object_end(&r->w);
	pop(r);
}

static void feature_obj(render *r, const flaghook_feature *f)
{
	KEYLIT(r, "feature");
	push(r, "feature");
	flaghook__json_object_begin(&r->w);
	/* strftime today; REST framework output in 2020. */
	m_time(r, "created_date", f->created_date_us,
	       r->profile == FLAGHOOK_PROFILE_FLAGSMITH_2020 ? FH_TIME_DRF : FH_TIME_STRFTIME);
	m_bool(r, "default_enabled", f->default_enabled);
	m_str(r, "description", f->description, true);
	m_int(r, "id", f->id);
	m_str(r, "initial_value", f->initial_value, true);
	m_str(r, "name", f->name, false);
	project_obj(r, "project", &f->project, false);
	m_str(r, "type", f->type, false);
	flaghook__json_object_end(&r->w);
	pop(r);
}

static void mv_values(render *r, const flaghook_mv_value *mv, size_t count)
{
	if (!ok(r))
		return;
	const char *key = "multivariate_feature_state_values";
	if (!count_ok(r, count, "mv_count"))
		return;
	if (count && !mv) {
		fail(r, FLAGHOOK_EEVENT, "mv_values", "is NULL with mv_count > 0");
		return;
	}
	KEY(r, key);
	push(r, "mv_values");
	flaghook__json_array_begin(&r->w);
	for (size_t i = 0; i < count && ok(r); i++) {
		push_index(r, (long)i);
		flaghook__json_object_begin(&r->w);
		m_int(r, "id", mv[i].id);
		KEYLIT(r, "multivariate_feature_option");
		flaghook__json_object_begin(&r->w);
		m_int(r, "id", mv[i].option_id);
		value_typed(r, "value", &mv[i].option_value, TYPES_FLAG_VALUE);
		flaghook__json_object_end(&r->w);
		value_typed(r, "percentage_allocation", &mv[i].percentage_allocation, TYPES_NUMBER);
		flaghook__json_object_end(&r->w);
		pop(r);
	}
	flaghook__json_array_end(&r->w);
	pop(r);
}

static void feature_state(render *r, const char *key, const flaghook_feature_state *fs)
{
	if (!ok(r))
		return;
	push(r, key);
	if (fs->identity && fs->feature_segment) {
		fail(r, FLAGHOOK_EEVENT, NULL, "has both an identity and a feature_segment");
		pop(r);
		return;
	}
	KEY(r, key);
	flaghook__json_object_begin(&r->w);
	m_bool(r, "enabled", fs->enabled);
	environment_obj(r, "environment", &fs->environment, false);
	feature_obj(r, &fs->feature);
	KEYLIT(r, "feature_segment");
	if (fs->feature_segment) {
		push(r, "feature_segment");
		flaghook__json_object_begin(&r->w);
		m_int(r, "priority", fs->feature_segment->priority);
		KEYLIT(r, "segment");
		push(r, "segment");
		flaghook__json_object_begin(&r->w);
		m_str(r, "description", fs->feature_segment->segment.description, true);
		m_int(r, "id", fs->feature_segment->segment.id);
		m_str(r, "name", fs->feature_segment->segment.name, false);
		flaghook__json_object_end(&r->w);
		pop(r);
		flaghook__json_object_end(&r->w);
		pop(r);
	} else {
		flaghook__json_null(&r->w);
	}
	value_typed(r, "feature_state_value", &fs->value, TYPES_FLAG_VALUE);
	if (r->profile == FLAGHOOK_PROFILE_FLAGSMITH_2020)
		m_int(r, "id", fs->id);
	if (fs->identity) {
		push(r, "identity");
		if (fs->identity->id_string)
			m_str(r, "identity", fs->identity->id_string, false);
		else
			m_int(r, "identity", fs->identity->id);
		m_str(r, "identity_identifier", fs->identity->identifier, false);
		pop(r);
	} else {
		KEYLIT(r, "identity");
		flaghook__json_null(&r->w);
		KEYLIT(r, "identity_identifier");
		flaghook__json_null(&r->w);
	}
	/* Today's server always sends the list ([] for a plain flag); the 2020
	 * one had none, so its receivers get the shape they know. */
	if (r->profile != FLAGHOOK_PROFILE_FLAGSMITH_2020)
		mv_values(r, fs->mv_values, fs->mv_count);
	flaghook__json_object_end(&r->w);
	pop(r);
}

static void flag_data(render *r, int type, const flaghook_flag_change *fc)
{
	push(r, "flag");
	if (type == FLAGHOOK_EVENT_FLAG_UPDATED && !fc->new_state)
		fail(r, FLAGHOOK_EEVENT, "new_state", "is NULL in a FLAG_UPDATED event");
	else if (type == FLAGHOOK_EVENT_FLAG_DELETED && fc->new_state)
		fail(r, FLAGHOOK_EEVENT, "new_state", "must be NULL in a FLAG_DELETED event");
	else if (type == FLAGHOOK_EVENT_FLAG_DELETED && !fc->previous_state)
		fail(r, FLAGHOOK_EEVENT, "previous_state", "is NULL in a FLAG_DELETED event");
	flaghook__json_object_begin(&r->w);
	m_str(r, "changed_by", fc->changed_by, false);
	if (fc->new_state) {
		feature_state(r, "new_state", fc->new_state);
	} else if (ok(r)) {
		KEYLIT(r, "new_state");
		flaghook__json_null(&r->w);
	}
	if (fc->previous_state)
		feature_state(r, "previous_state", fc->previous_state);
	/* 2020 passed a datetime through DjangoJSONEncoder: milliseconds. */
	m_time(r, "timestamp", fc->timestamp_us,
	       r->profile == FLAGHOOK_PROFILE_FLAGSMITH_2020 ? FH_TIME_DJANGO : FH_TIME_STRFTIME);
	flaghook__json_object_end(&r->w);
	pop(r);
}

/* ---- audit log ---- */

static void user_obj(render *r, const char *key, const flaghook_user *u, bool full)
{
	if (!ok(r))
		return;
	KEY(r, key);
	if (!u) {
		flaghook__json_null(&r->w);
		return;
	}
	push(r, key);
	flaghook__json_object_begin(&r->w);
	m_str(r, "email", u->email, false);
	if (full)
		m_str(r, "first_name", u->first_name, false);
	m_int(r, "id", u->id);
	if (full)
		m_str(r, "last_name", u->last_name, false);
	flaghook__json_object_end(&r->w);
	pop(r);
}

/* The audit log's members, standard and extra, in one sorted pass. */
typedef struct audit_member {
	const char *key;
	const flaghook_member *extra; /* NULL: a standard member */
} audit_member;

static int audit_member_cmp(const void *a, const void *b)
{
	return strcmp(((const audit_member *)a)->key, ((const audit_member *)b)->key);
}

static void audit_standard(render *r, const char *key, const flaghook_audit_log *a)
{
	if (!strcmp(key, "author")) {
		user_obj(r, key, a->author, true);
	} else if (!strcmp(key, "created_date")) {
		m_time(r, key, a->created_date_us, FH_TIME_DRF);
	} else if (!strcmp(key, "environment")) {
		if (a->environment) {
			environment_obj(r, key, a->environment, true);
		} else {
			KEY(r, key);
			flaghook__json_null(&r->w);
		}
	} else if (!strcmp(key, "id")) {
		m_int(r, key, a->id);
	} else if (!strcmp(key, "is_system_event")) {
		m_bool(r, key, a->is_system_event);
	} else if (!strcmp(key, "log")) {
		m_str(r, key, a->log, false);
	} else if (!strcmp(key, "project")) {
		project_obj(r, key, &a->project, true);
	} else if (!strcmp(key, "related_object_id")) {
		KEY(r, key);
		if (a->present & FLAGHOOK_AUDIT_HAS_RELATED_OBJECT_ID)
			flaghook__json_int(&r->w, a->related_object_id);
		else
			flaghook__json_null(&r->w);
	} else if (!strcmp(key, "related_object_type")) {
		m_str(r, key, a->related_object_type, true);
	} else if (!strcmp(key, "related_object_uuid")) {
		m_str(r, key, a->related_object_uuid, false);
	}
}

static void audit_data(render *r, const flaghook_audit_log *a)
{
	push(r, "audit");
	if (!count_ok(r, a->extra_count, "extra_count")) {
		pop(r);
		return;
	}
	if (a->extra_count && !a->extra) {
		fail(r, FLAGHOOK_EEVENT, "extra", "is NULL with extra_count > 0");
		pop(r);
		return;
	}
	size_t n = 0, cap = 10 + a->extra_count;
	audit_member *m = flaghook__calloc(r->w.out->allocator, cap, sizeof(*m));
	if (!m) {
		fail(r, FLAGHOOK_ENOMEM, NULL, "out of memory");
		pop(r);
		return;
	}
	static const char *const always[] = { "author", "created_date", "environment", "log",
	                                      "project", "related_object_id", "related_object_type" };
	for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++)
		m[n++].key = always[i];
	if (a->present & FLAGHOOK_AUDIT_HAS_ID)
		m[n++].key = "id";
	if (a->present & FLAGHOOK_AUDIT_HAS_IS_SYSTEM_EVENT)
		m[n++].key = "is_system_event";
	if (a->related_object_uuid)
		m[n++].key = "related_object_uuid";
	size_t standard = n;
	for (size_t i = 0; i < a->extra_count && ok(r); i++) {
		if (!a->extra[i].key) {
			fail(r, FLAGHOOK_EEVENT, "extra", "has a member whose key is NULL");
			break;
		}
		size_t j = 0;
		while (j < standard && strcmp(m[j].key, a->extra[i].key))
			j++;
		if (j < standard && !m[j].extra) {
			m[j].extra = &a->extra[i]; /* replaces the standard member */
		} else if (j < standard) {
			fail(r, FLAGHOOK_EEVENT, "extra", "repeats a key");
		} else {
			m[n].key = a->extra[i].key;
			m[n++].extra = &a->extra[i];
		}
	}
	qsort(m, n, sizeof(*m), audit_member_cmp);
	for (size_t i = 1; i < n && ok(r); i++)
		if (!strcmp(m[i - 1].key, m[i].key))
			fail(r, FLAGHOOK_EEVENT, "extra", "repeats a key");
	flaghook__json_object_begin(&r->w);
	for (size_t i = 0; i < n && ok(r); i++) {
		if (m[i].extra) {
			push(r, "extra");
			flaghook__json_key(&r->w, m[i].key);
			if (check(r, NULL))
				value(r, &m[i].extra->value, m[i].key, 1);
			pop(r);
		} else {
			audit_standard(r, m[i].key, a);
		}
	}
	flaghook__json_object_end(&r->w);
	flaghook__free(r->w.out->allocator, m);
	pop(r);
}

/* ---- NEW_VERSION_PUBLISHED ---- */

static void published_data(render *r, const flaghook_version_published *p)
{
	push(r, "published");
	if (!count_ok(r, p->state_count, "state_count")) {
		pop(r);
		return;
	}
	if (p->state_count && !p->states) {
		fail(r, FLAGHOOK_EEVENT, "states", "is NULL with state_count > 0");
		pop(r);
		return;
	}
	flaghook__json_object_begin(&r->w);
	KEYLIT(r, "feature");
	flaghook__json_object_begin(&r->w);
	m_int(r, "id", p->feature_id);
	m_str(r, "name", p->feature_name, false);
	flaghook__json_object_end(&r->w);
	KEYLIT(r, "feature_states");
	push(r, "states");
	flaghook__json_array_begin(&r->w);
	for (size_t i = 0; i < p->state_count && ok(r); i++) {
		const flaghook_published_state *s = &p->states[i];
		push_index(r, (long)i);
		flaghook__json_object_begin(&r->w);
		m_bool(r, "enabled", s->enabled);
		mv_values(r, s->mv_values, s->mv_count);
		value_typed(r, "value", &s->value, TYPES_FLAG_VALUE);
		flaghook__json_object_end(&r->w);
		pop(r);
	}
	flaghook__json_array_end(&r->w);
	pop(r);
	user_obj(r, "published_by", p->published_by, false);
	m_str(r, "uuid", p->uuid, false);
	flaghook__json_object_end(&r->w);
	pop(r);
}

/* ---- the envelope ---- */

const char *flaghook_event_type_name(int type)
{
	switch (type) {
	case FLAGHOOK_EVENT_FLAG_UPDATED: return "FLAG_UPDATED";
	case FLAGHOOK_EVENT_FLAG_DELETED: return "FLAG_DELETED";
	case FLAGHOOK_EVENT_AUDIT_LOG_CREATED: return "AUDIT_LOG_CREATED";
	case FLAGHOOK_EVENT_NEW_VERSION_PUBLISHED: return "NEW_VERSION_PUBLISHED";
	default: return NULL;
	}
}

int flaghook_event_type_from_name(const char *name)
{
	for (int t = FLAGHOOK_EVENT_FLAG_UPDATED; name && t <= FLAGHOOK_EVENT_NEW_VERSION_PUBLISHED; t++)
		if (!strcmp(name, flaghook_event_type_name(t)))
			return t;
	return flaghook__error(FLAGHOOK_EINVAL, "unknown event type name");
}

static const size_t event_sizes[] = { 0, sizeof(flaghook_event) };
static const size_t render_options_sizes[] = { 0, sizeof(flaghook_render_options) };

int flaghook_event_init(flaghook_event *ev, unsigned int version)
{
	return flaghook__struct_init(ev, version, event_sizes, FH_COUNT(event_sizes), "event");
}

/* Checks the event's own members (the payload is checked while it renders). */
static int check_event(const flaghook_event *ev)
{
	const void *want;
	switch (ev->type) {
	case FLAGHOOK_EVENT_FLAG_UPDATED:
	case FLAGHOOK_EVENT_FLAG_DELETED: want = ev->flag; break;
	case FLAGHOOK_EVENT_AUDIT_LOG_CREATED: want = ev->audit; break;
	case FLAGHOOK_EVENT_NEW_VERSION_PUBLISHED:
		/* Its payload names no environment, and it goes to one. */
		if (!ev->environment_id)
			return flaghook__error(FLAGHOOK_EEVENT, "event.environment_id: NEW_VERSION_PUBLISHED needs it");
		want = ev->published;
		break;
	default: return flaghook__error(FLAGHOOK_EEVENT, "event.type: %d is not an event type", (int)ev->type);
	}
	int set = (ev->flag != NULL) + (ev->audit != NULL) + (ev->published != NULL);
	if (!want || set != 1)
		return flaghook__error(FLAGHOOK_EEVENT,
		                       "event: set exactly the one of flag, audit, published that matches type %s",
		                       flaghook_event_type_name(ev->type));
	return 0;
}

int flaghook__render(flaghook_buf *out, const flaghook_event *caller_ev, int profile,
                     uint32_t flags, size_t max_body)
{
	/* The caller's event at its version, widened to ours. */
	flaghook_event copy;
	int rc = flaghook__struct_read(&copy, caller_ev, event_sizes, FH_COUNT(event_sizes), "event");
	if (rc || (rc = check_event(&copy)))
		return rc;
	const flaghook_event *ev = &copy;
	if (profile < FLAGHOOK_PROFILE_FLAGSMITH || profile > FLAGHOOK_PROFILE_BULLET_TRAIN)
		return flaghook__error(FLAGHOOK_EINVAL, "profile %d is not a profile", profile);
	if (flags & ~FLAGHOOK_RENDER_COMPACT)
		return flaghook__error(FLAGHOOK_EINVAL, "render flags 0x%x has unknown bits", (unsigned)flags);

	render r;
	memset(&r, 0, sizeof(r));
	r.profile = profile;
	flaghook__json_init(&r.w, out, max_body, (flags & FLAGHOOK_RENDER_COMPACT) != 0);

	/* Bullet Train told receivers of a flag change with the audit log it
	 * wrote; a flag event alone lacks the author and log text for that. */
	if (profile == FLAGHOOK_PROFILE_BULLET_TRAIN && ev->type != FLAGHOOK_EVENT_AUDIT_LOG_CREATED)
		return flaghook__error(FLAGHOOK_EEVENT,
		                       "event.type: %s has no Bullet Train form; emit the AUDIT_LOG_CREATED event",
		                       flaghook_event_type_name(ev->type));
	const char *type_name = flaghook_event_type_name(ev->type);
	flaghook__json_object_begin(&r.w);
	KEYLIT(&r, "data");
	switch (ev->type) {
	case FLAGHOOK_EVENT_FLAG_UPDATED:
	case FLAGHOOK_EVENT_FLAG_DELETED:
		flag_data(&r, ev->type, ev->flag);
		break;
	case FLAGHOOK_EVENT_AUDIT_LOG_CREATED: audit_data(&r, ev->audit); break;
	case FLAGHOOK_EVENT_NEW_VERSION_PUBLISHED: published_data(&r, ev->published); break;
	}
	KEYLIT(&r, "event_type");
	flaghook__json_cstring(&r.w, type_name);
	flaghook__json_object_end(&r.w);
	flaghook__json_finish(&r.w);
	check(&r, NULL);
	return r.err;
}

int flaghook__render_value(flaghook_buf *out, const flaghook_value *v, uint32_t flags)
{
	render r;
	memset(&r, 0, sizeof(r));
	flaghook__json_init(&r.w, out, 0, (flags & FLAGHOOK_RENDER_COMPACT) != 0);
	value(&r, v, "value", 0);
	flaghook__json_finish(&r.w);
	check(&r, "value");
	return r.err;
}

void flaghook__event_scope(const flaghook_event *ev, int64_t *env_id, int64_t *org_id)
{
	*env_id = ev->environment_id;
	*org_id = ev->organisation_id;
	if (!*env_id) {
		if (ev->flag) {
			const flaghook_feature_state *fs = ev->flag->new_state ? ev->flag->new_state
			                                                         : ev->flag->previous_state;
			if (fs)
				*env_id = fs->environment.id;
		} else if (ev->audit && ev->audit->environment) {
			*env_id = ev->audit->environment->id;
		}
	}
	if (!*org_id && ev->audit)
		*org_id = ev->audit->project.organisation;
}

int flaghook_render_options_init(flaghook_render_options *opts, unsigned int version)
{
	return flaghook__struct_init(opts, version, render_options_sizes, FH_COUNT(render_options_sizes),
	                             "render options");
}

int flaghook_render(flaghook_buf *out, const flaghook_event *ev,
                    const flaghook_render_options *opts)
{
	flaghook__error_clear();
	if (!out)
		return flaghook__error(FLAGHOOK_EINVAL, "out is NULL");
	flaghook_render_options o;
	int rc = opts ? flaghook__struct_read(&o, opts, render_options_sizes, FH_COUNT(render_options_sizes),
	                                      "render options")
	              : flaghook_render_options_init(&o, FLAGHOOK_RENDER_OPTIONS_VERSION);
	if (rc)
		return rc;
	/* A buffer that holds an earlier body is rendered over: its memory is
	 * reused, never leaked.  It must come from the same allocator. */
	flaghook_buf b = FLAGHOOK_BUF_INIT;
	if (out->ptr) {
		if (out->allocator != o.allocator)
			return flaghook__error(FLAGHOOK_EINVAL, "out holds a body from another allocator: "
			                                        "flaghook_buf_free it first");
		b = *out;
		b.size = 0;
	}
	b.allocator = o.allocator;
	rc = flaghook__render(&b, ev, o.profile, o.flags, o.max_body_bytes);
	if (rc) {
		flaghook_buf_free(&b);
		*out = (flaghook_buf)FLAGHOOK_BUF_INIT;
		return rc;
	}
	*out = b;
	return 0;
}
