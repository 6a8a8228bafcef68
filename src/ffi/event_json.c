/*
 * An event from JSON: the Flagsmith-shaped payload a receiver gets,
 *   {"event_type": "FLAG_UPDATED", "data": {...},
 *    "environment_id": 1, "organisation_id": 2}   (both optional)
 * read into the same structs the C API takes, so that it is checked by
 * the same rules and rendered by the same writer: the bytes are those the
 * structs give.  Times are the payload's own strings.
 */
#include "ffi/ffi.h"
#include "ffi/json_read.h"

#include <stdio.h>
#include <string.h>

/* ---- times: "2024-06-01T00:00:00.000000Z", fraction optional ---- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static bool parse_time(const char *s, int64_t *us)
{
	if (strlen(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
		return false;
	int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
	int h = digits(s + 11, 2), mi = digits(s + 14, 2), se = digits(s + 17, 2);
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 ||
	    se > 59)
		return false;
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap))
		return false;
	const char *p = s + 19;
	int64_t frac = 0;
	if (*p == '.') {
		int n = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, n++)
			if (n < 6)
				frac = frac * 10 + (*p - '0');
		if (n == 0 || n > 6)
			return false;
		for (; n < 6; n++)
			frac *= 10;
	}
	if (strcmp(p, "Z") && strcmp(p, "+00:00"))
		return false;
	int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
	*us = ((days * 86400 + h * 3600 + mi * 60 + se) * 1000000) + frac;
	return true;
}

static bool time_of(fh_jr *r, const cJSON *obj, const char *key, int64_t *us)
{
	const char *s = NULL;
	if (!flaghook__jr_str(r, obj, key, true, false, &s))
		return false;
	if (parse_time(s, us))
		return true;
	flaghook__jr_push(r, key);
	flaghook__jr_fail(r, FLAGHOOK_EEVENT, "is not a UTC time like 2024-06-01T12:00:00.000000Z");
	flaghook__jr_pop(r);
	return false;
}

/* ---- feature states ---- */

static bool flag_value(fh_jr *r, const cJSON *obj, const char *key, flaghook_value *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	flaghook__jr_push(r, key);
	bool ok;
	if (!v)
		ok = flaghook__jr_fail(r, FLAGHOOK_EEVENT, "is missing");
	else if (cJSON_IsArray(v) || cJSON_IsObject(v))
		ok = flaghook__jr_fail(r, FLAGHOOK_EEVENT, "must be a string, an integer, true, false or null");
	else if ((ok = flaghook__jr_value(r, v, out)) && out->type == FLAGHOOK_VALUE_FLOAT)
		ok = flaghook__jr_fail(r, FLAGHOOK_EEVENT, "must be a string, an integer, true, false or null, "
		                                           "not a float");
	flaghook__jr_pop(r);
	return ok;
}

static bool project_of(fh_jr *r, const cJSON *obj, const char *key, flaghook_project *p, bool with_org)
{
	const cJSON *o = NULL;
	if (!flaghook__jr_object(r, obj, key, true, false, &o))
		return false;
	static const char *const keys[] = { "id", "name", NULL };
	static const char *const keys_org[] = { "id", "name", "organisation", NULL };
	flaghook__jr_push(r, key);
	bool ok = flaghook__jr_keys(r, o, with_org ? keys_org : keys) && flaghook__jr_int(r, o, "id", true, &p->id) &&
	          flaghook__jr_str(r, o, "name", true, false, &p->name) &&
	          (!with_org || flaghook__jr_int(r, o, "organisation", true, &p->organisation));
	flaghook__jr_pop(r);
	return ok;
}

static bool mv_list(fh_jr *r, const cJSON *obj, const flaghook_mv_value **out, size_t *count)
{
	const char *key = "multivariate_feature_state_values";
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key);
	*out = NULL;
	*count = 0;
	if (!a)
		return true;
	flaghook__jr_push(r, key);
	if (!cJSON_IsArray(a)) {
		flaghook__jr_fail(r, FLAGHOOK_EEVENT, "must be an array");
		flaghook__jr_pop(r);
		return false;
	}
	size_t n = (size_t)cJSON_GetArraySize(a);
	flaghook_mv_value *mv = flaghook__jr_alloc(r, (n ? n : 1) * sizeof(*mv));
	bool ok = mv != NULL;
	size_t k = 0;
	static const char *const keys[] = { "id", "multivariate_feature_option", "percentage_allocation", NULL };
	static const char *const opt_keys[] = { "id", "value", NULL };
	for (const cJSON *it = a->child; ok && it; it = it->next, k++) {
		flaghook__jr_push_index(r, (long)k);
		const cJSON *opt = NULL, *pct;
		ok = (cJSON_IsObject(it) || flaghook__jr_fail(r, FLAGHOOK_EEVENT, "must be an object")) &&
		     flaghook__jr_keys(r, it, keys) && flaghook__jr_int(r, it, "id", true, &mv[k].id) &&
		     flaghook__jr_object(r, it, "multivariate_feature_option", true, false, &opt);
		if (ok) {
			flaghook__jr_push(r, "multivariate_feature_option");
			ok = flaghook__jr_keys(r, opt, opt_keys) && flaghook__jr_int(r, opt, "id", true, &mv[k].option_id) &&
			     flag_value(r, opt, "value", &mv[k].option_value);
			flaghook__jr_pop(r);
		}
		if (ok) {
			flaghook__jr_push(r, "percentage_allocation");
			pct = cJSON_GetObjectItemCaseSensitive(it, "percentage_allocation");
			ok = pct ? (cJSON_IsNumber(pct) ? flaghook__jr_value(r, pct, &mv[k].percentage_allocation)
			                                : flaghook__jr_fail(r, FLAGHOOK_EEVENT, "must be a number"))
			         : flaghook__jr_fail(r, FLAGHOOK_EEVENT, "is missing");
			flaghook__jr_pop(r);
		}
		flaghook__jr_pop(r);
	}
	flaghook__jr_pop(r);
	*out = mv;
	*count = n;
	return ok;
}

static bool feature_state(fh_jr *r, const cJSON *obj, const char *key, const flaghook_feature_state **out)
{
	const cJSON *o = NULL;
	if (!flaghook__jr_object(r, obj, key, true, true, &o))
		return false;
	if (!o) {
		*out = NULL; /* null */
		return true;
	}
	flaghook_feature_state *fs = flaghook__jr_alloc(r, sizeof(*fs));
	if (!fs)
		return false;
	flaghook__jr_push(r, key);
	static const char *const keys[] = { "enabled", "environment", "feature", "feature_segment",
	                                    "feature_state_value", "identity", "identity_identifier",
	                                    "multivariate_feature_state_values", "id", NULL };
	static const char *const env_keys[] = { "id", "name", NULL };
	static const char *const feature_keys[] = { "created_date", "default_enabled", "description", "id",
	                                            "initial_value", "name", "project", "type", NULL };
	static const char *const seg_keys[] = { "priority", "segment", NULL };
	static const char *const segment_keys[] = { "description", "id", "name", NULL };
	const cJSON *env = NULL, *feat = NULL, *fseg = NULL;
	bool ok = flaghook__jr_keys(r, o, keys) && flaghook__jr_bool(r, o, "enabled", true, &fs->enabled) &&
	          flaghook__jr_int(r, o, "id", false, &fs->id) &&
	          flaghook__jr_object(r, o, "environment", true, false, &env) &&
	          flaghook__jr_object(r, o, "feature", true, false, &feat) &&
	          flaghook__jr_object(r, o, "feature_segment", false, true, &fseg) &&
	          flag_value(r, o, "feature_state_value", &fs->value) &&
	          mv_list(r, o, &fs->mv_values, &fs->mv_count);
	if (ok) {
		flaghook__jr_push(r, "environment");
		ok = flaghook__jr_keys(r, env, env_keys) && flaghook__jr_int(r, env, "id", true, &fs->environment.id) &&
		     flaghook__jr_str(r, env, "name", true, false, &fs->environment.name);
		flaghook__jr_pop(r);
	}
	if (ok) {
		flaghook_feature *f = &fs->feature;
		flaghook__jr_push(r, "feature");
		ok = flaghook__jr_keys(r, feat, feature_keys) && time_of(r, feat, "created_date", &f->created_date_us) &&
		     flaghook__jr_bool(r, feat, "default_enabled", true, &f->default_enabled) &&
		     flaghook__jr_str(r, feat, "description", true, true, &f->description) &&
		     flaghook__jr_int(r, feat, "id", true, &f->id) &&
		     flaghook__jr_str(r, feat, "initial_value", true, true, &f->initial_value) &&
		     flaghook__jr_str(r, feat, "name", true, false, &f->name) &&
		     project_of(r, feat, "project", &f->project, false) &&
		     flaghook__jr_str(r, feat, "type", true, false, &f->type);
		flaghook__jr_pop(r);
	}
	if (ok && fseg) {
		flaghook_feature_segment *fsg = flaghook__jr_alloc(r, sizeof(*fsg));
		const cJSON *seg = NULL;
		flaghook__jr_push(r, "feature_segment");
		ok = fsg && flaghook__jr_keys(r, fseg, seg_keys) &&
		     flaghook__jr_int(r, fseg, "priority", true, &fsg->priority) &&
		     flaghook__jr_object(r, fseg, "segment", true, false, &seg);
		if (ok) {
			flaghook__jr_push(r, "segment");
			ok = flaghook__jr_keys(r, seg, segment_keys) &&
			     flaghook__jr_str(r, seg, "description", true, true, &fsg->segment.description) &&
			     flaghook__jr_int(r, seg, "id", true, &fsg->segment.id) &&
			     flaghook__jr_str(r, seg, "name", true, false, &fsg->segment.name);
			flaghook__jr_pop(r);
		}
		flaghook__jr_pop(r);
		fs->feature_segment = fsg;
	}
	if (ok) {
		/* identity and identity_identifier come together or not at all; an
		 * Edge identity's id is a string. */
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "identity");
		const char *ident = NULL;
		ok = flaghook__jr_str(r, o, "identity_identifier", false, true, &ident);
		bool has_id = id && !cJSON_IsNull(id);
		if (ok && has_id != (ident != NULL))
			ok = flaghook__jr_fail(r, FLAGHOOK_EEVENT, "has identity and identity_identifier: both or neither");
		if (ok && has_id) {
			flaghook_identity *idn = flaghook__jr_alloc(r, sizeof(*idn));
			ok = idn != NULL;
			if (ok && cJSON_IsString(id))
				ok = flaghook__jr_str(r, o, "identity", true, false, &idn->id_string);
			else if (ok)
				ok = flaghook__jr_int(r, o, "identity", true, &idn->id);
			if (ok) {
				idn->identifier = ident;
				fs->identity = idn;
			}
		}
		if (ok && fs->identity && fs->feature_segment)
			ok = flaghook__jr_fail(r, FLAGHOOK_EEVENT, "has both an identity and a feature_segment");
	}
	flaghook__jr_pop(r);
	*out = fs;
	return ok;
}

static bool flag_data(fh_jr *r, const cJSON *data, int type, flaghook_flag_change *fc)
{
	static const char *const keys[] = { "changed_by", "new_state", "previous_state", "timestamp", NULL };
	if (!flaghook__jr_keys(r, data, keys) || !flaghook__jr_str(r, data, "changed_by", true, false, &fc->changed_by) ||
	    !feature_state(r, data, "new_state", &fc->new_state) ||
	    (cJSON_GetObjectItemCaseSensitive(data, "previous_state") &&
	     !feature_state(r, data, "previous_state", &fc->previous_state)) ||
	    !time_of(r, data, "timestamp", &fc->timestamp_us))
		return false;
	if (type == FLAGHOOK_EVENT_FLAG_UPDATED && !fc->new_state)
		return flaghook__jr_push(r, "new_state"), flaghook__jr_fail(r, FLAGHOOK_EEVENT, "is null in a FLAG_UPDATED event");
	if (type == FLAGHOOK_EVENT_FLAG_DELETED && fc->new_state)
		return flaghook__jr_push(r, "new_state"), flaghook__jr_fail(r, FLAGHOOK_EEVENT, "must be null in a FLAG_DELETED event");
	if (type == FLAGHOOK_EVENT_FLAG_DELETED && !fc->previous_state)
		return flaghook__jr_push(r, "previous_state"),
		       flaghook__jr_fail(r, FLAGHOOK_EEVENT, "is missing in a FLAG_DELETED event");
	return true;
}

/* ---- the audit log ---- */

/* Whether obj has exactly (or only: `all` false) these keys. */
static bool keys_are(const cJSON *obj, const char *const *keys, bool all)
{
	size_t n = 0, seen = 0;
	for (; keys[n]; n++)
		seen += cJSON_GetObjectItemCaseSensitive(obj, keys[n]) != NULL;
	size_t members = (size_t)cJSON_GetArraySize(obj);
	return members == seen && (!all || seen == n);
}

static bool is_int(const cJSON *v)
{
	return v && cJSON_IsNumber(v);
}

/* A standard member the struct can carry, or (false) an extra that
 * replaces it: how the real server's richer nested objects are sent. */
static bool audit_standard(fh_jr *r, const cJSON *m, flaghook_audit_log *a, bool *ok)
{
	const char *k = m->string;
	*ok = true;
	if (!strcmp(k, "author")) {
		static const char *const keys[] = { "email", "first_name", "id", "last_name", NULL };
		if (cJSON_IsNull(m))
			return true;
		if (!cJSON_IsObject(m) || !keys_are(m, keys, true) || !is_int(cJSON_GetObjectItemCaseSensitive(m, "id")))
			return false;
		flaghook_user *u = flaghook__jr_alloc(r, sizeof(*u));
		flaghook__jr_push(r, k);
		*ok = u && flaghook__jr_str(r, m, "email", true, false, &u->email) &&
		      flaghook__jr_str(r, m, "first_name", true, false, &u->first_name) &&
		      flaghook__jr_int(r, m, "id", true, &u->id) &&
		      flaghook__jr_str(r, m, "last_name", true, false, &u->last_name);
		flaghook__jr_pop(r);
		a->author = u;
		return true;
	}
	if (!strcmp(k, "environment")) {
		static const char *const keys[] = { "api_key", "id", "name", "project", NULL };
		if (cJSON_IsNull(m))
			return true;
		const cJSON *proj = cJSON_GetObjectItemCaseSensitive(m, "project");
		const cJSON *key = cJSON_GetObjectItemCaseSensitive(m, "api_key");
		if (!cJSON_IsObject(m) || !keys_are(m, keys, false) || !is_int(cJSON_GetObjectItemCaseSensitive(m, "id")) ||
		    !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "name")) || (proj && !is_int(proj)) ||
		    (key && !cJSON_IsString(key) && !cJSON_IsNull(key)))
			return false;
		flaghook_environment *e = flaghook__jr_alloc(r, sizeof(*e));
		flaghook__jr_push(r, k);
		*ok = e && flaghook__jr_int(r, m, "id", true, &e->id) && flaghook__jr_str(r, m, "name", true, false, &e->name) &&
		      flaghook__jr_str(r, m, "api_key", false, true, &e->api_key) &&
		      flaghook__jr_int(r, m, "project", false, &e->project);
		flaghook__jr_pop(r);
		a->environment = e;
		return true;
	}
	if (!strcmp(k, "project")) {
		static const char *const keys[] = { "id", "name", "organisation", NULL };
		if (!cJSON_IsObject(m) || !keys_are(m, keys, true) || !is_int(cJSON_GetObjectItemCaseSensitive(m, "id")) ||
		    !is_int(cJSON_GetObjectItemCaseSensitive(m, "organisation")))
			return false;
		flaghook__jr_push(r, k);
		*ok = flaghook__jr_int(r, m, "id", true, &a->project.id) &&
		      flaghook__jr_str(r, m, "name", true, false, &a->project.name) &&
		      flaghook__jr_int(r, m, "organisation", true, &a->project.organisation);
		flaghook__jr_pop(r);
		return true;
	}
	if (!strcmp(k, "related_object_id")) {
		if (cJSON_IsNull(m))
			return true;
		if (!is_int(m))
			return false;
		bool isi;
		double d;
		flaghook__jr_push(r, k);
		*ok = flaghook__jr_number(r, m, &a->related_object_id, &d, &isi);
		flaghook__jr_pop(r);
		if (*ok && !isi)
			return false;
		a->present |= FLAGHOOK_AUDIT_HAS_RELATED_OBJECT_ID;
		return true;
	}
	if (!strcmp(k, "id")) {
		if (!is_int(m))
			return false;
		bool isi;
		double d;
		flaghook__jr_push(r, k);
		*ok = flaghook__jr_number(r, m, &a->id, &d, &isi);
		flaghook__jr_pop(r);
		if (*ok && !isi)
			return false;
		a->present |= FLAGHOOK_AUDIT_HAS_ID;
		return true;
	}
	if (!strcmp(k, "is_system_event")) {
		if (!cJSON_IsBool(m))
			return false;
		a->is_system_event = cJSON_IsTrue(m) ? 1 : 0;
		a->present |= FLAGHOOK_AUDIT_HAS_IS_SYSTEM_EVENT;
		return true;
	}
	return false;
}

static bool audit_data(fh_jr *r, const cJSON *data, flaghook_audit_log *a)
{
	size_t n = (size_t)cJSON_GetArraySize(data), nextra = 0;
	flaghook_member *extra = flaghook__jr_alloc(r, (n ? n : 1) * sizeof(*extra));
	if (!extra)
		return false;
	bool have_created = false, have_log = false, have_project = false;
	for (const cJSON *m = data->child; m; m = m->next) {
		for (const cJSON *o = m->next; o; o = o->next)
			if (!strcmp(o->string, m->string))
				return flaghook__jr_push(r, m->string), flaghook__jr_fail(r, FLAGHOOK_EEVENT, "is given twice");
		bool ok;
		if (!strcmp(m->string, "created_date")) {
			if (!(ok = time_of(r, data, "created_date", &a->created_date_us)))
				return false;
			have_created = true;
			continue;
		}
		if (!strcmp(m->string, "log")) {
			if (!flaghook__jr_str(r, data, "log", true, false, &a->log))
				return false;
			have_log = true;
			continue;
		}
		if (!strcmp(m->string, "related_object_type") && (cJSON_IsString(m) || cJSON_IsNull(m))) {
			if (!flaghook__jr_str(r, data, m->string, true, true, &a->related_object_type))
				return false;
			continue;
		}
		if (!strcmp(m->string, "related_object_uuid") && cJSON_IsString(m)) {
			if (!flaghook__jr_str(r, data, m->string, true, false, &a->related_object_uuid))
				return false;
			continue;
		}
		if (audit_standard(r, m, a, &ok)) {
			if (!ok)
				return false;
			have_project |= !strcmp(m->string, "project");
			continue;
		}
		flaghook__jr_push(r, m->string);
		ok = flaghook__jr_value(r, m, &extra[nextra].value);
		flaghook__jr_pop(r);
		if (!ok)
			return false;
		extra[nextra++].key = m->string;
		have_project |= !strcmp(m->string, "project");
	}
	if (!have_created)
		return flaghook__jr_push(r, "created_date"), flaghook__jr_fail(r, FLAGHOOK_EEVENT, "is missing");
	if (!have_log)
		return flaghook__jr_push(r, "log"), flaghook__jr_fail(r, FLAGHOOK_EEVENT, "is missing");
	if (!have_project)
		return flaghook__jr_push(r, "project"), flaghook__jr_fail(r, FLAGHOOK_EEVENT, "is missing");
	a->extra = extra;
	a->extra_count = nextra;
	return true;
}

/* ---- NEW_VERSION_PUBLISHED ---- */

static bool published_data(fh_jr *r, const cJSON *data, flaghook_version_published *p)
{
	static const char *const keys[] = { "feature", "feature_states", "published_by", "uuid", NULL };
	static const char *const feature_keys[] = { "id", "name", NULL };
	static const char *const state_keys[] = { "enabled", "multivariate_feature_state_values", "value", NULL };
	static const char *const user_keys[] = { "email", "id", NULL };
	const cJSON *feat = NULL, *by = NULL;
	if (!flaghook__jr_keys(r, data, keys) || !flaghook__jr_object(r, data, "feature", true, false, &feat) ||
	    !flaghook__jr_object(r, data, "published_by", true, true, &by) ||
	    !flaghook__jr_str(r, data, "uuid", true, false, &p->uuid))
		return false;
	flaghook__jr_push(r, "feature");
	bool ok = flaghook__jr_keys(r, feat, feature_keys) && flaghook__jr_int(r, feat, "id", true, &p->feature_id) &&
	          flaghook__jr_str(r, feat, "name", true, false, &p->feature_name);
	flaghook__jr_pop(r);
	if (ok && by) {
		flaghook_user *u = flaghook__jr_alloc(r, sizeof(*u));
		flaghook__jr_push(r, "published_by");
		ok = u && flaghook__jr_keys(r, by, user_keys) && flaghook__jr_str(r, by, "email", true, false, &u->email) &&
		     flaghook__jr_int(r, by, "id", true, &u->id);
		flaghook__jr_pop(r);
		p->published_by = u;
	}
	const cJSON *states = cJSON_GetObjectItemCaseSensitive(data, "feature_states");
	flaghook__jr_push(r, "feature_states");
	if (ok && !cJSON_IsArray(states))
		ok = flaghook__jr_fail(r, FLAGHOOK_EEVENT, states ? "must be an array" : "is missing");
	if (ok) {
		size_t n = (size_t)cJSON_GetArraySize(states), k = 0;
		flaghook_published_state *ps = flaghook__jr_alloc(r, (n ? n : 1) * sizeof(*ps));
		ok = ps != NULL;
		for (const cJSON *it = ok ? states->child : NULL; ok && it; it = it->next, k++) {
			flaghook__jr_push_index(r, (long)k);
			ok = (cJSON_IsObject(it) || flaghook__jr_fail(r, FLAGHOOK_EEVENT, "must be an object")) &&
			     flaghook__jr_keys(r, it, state_keys) && flaghook__jr_bool(r, it, "enabled", true, &ps[k].enabled) &&
			     flag_value(r, it, "value", &ps[k].value) && mv_list(r, it, &ps[k].mv_values, &ps[k].mv_count);
			flaghook__jr_pop(r);
		}
		p->states = ps;
		p->state_count = n;
	}
	flaghook__jr_pop(r);
	return ok;
}

/* ---- the envelope ---- */

int flaghook__event_json(fh_event_json *e, const char *json, size_t len, const flaghook_allocator *a)
{
	memset(e, 0, sizeof(*e));
	int rc = flaghook__jr_open(&e->r, json, len, a, FLAGHOOK_EEVENT);
	if (rc)
		return rc;
	fh_jr *r = &e->r;
	flaghook_event *ev = &e->ev;
	flaghook_event_init(ev, FLAGHOOK_EVENT_VERSION);
	const char *type = NULL;
	const cJSON *data = NULL;
	static const char *const keys[] = { "event_type", "data", "environment_id", "organisation_id", NULL };
	if (!cJSON_IsObject(r->root)) {
		flaghook__jr_fail(r, FLAGHOOK_EEVENT, "must be an object: {\"event_type\": ..., \"data\": {...}}");
		goto out;
	}
	if (!flaghook__jr_keys(r, r->root, keys) || !flaghook__jr_str(r, r->root, "event_type", true, false, &type) ||
	    !flaghook__jr_object(r, r->root, "data", true, false, &data) ||
	    !flaghook__jr_int(r, r->root, "environment_id", false, &ev->environment_id) ||
	    !flaghook__jr_int(r, r->root, "organisation_id", false, &ev->organisation_id))
		goto out;
	int t = flaghook_event_type_from_name(type);
	if (t < 0) {
		flaghook__jr_push(r, "event_type");
		flaghook__jr_fail(r, FLAGHOOK_EEVENT, "is not FLAG_UPDATED, FLAG_DELETED, AUDIT_LOG_CREATED or "
		                                      "NEW_VERSION_PUBLISHED");
		goto out;
	}
	ev->type = t;
	flaghook__jr_push(r, "data");
	if (t == FLAGHOOK_EVENT_FLAG_UPDATED || t == FLAGHOOK_EVENT_FLAG_DELETED) {
		flaghook_flag_change *fc = flaghook__jr_alloc(r, sizeof(*fc));
		if (fc && flag_data(r, data, t, fc))
			ev->flag = fc;
	} else if (t == FLAGHOOK_EVENT_AUDIT_LOG_CREATED) {
		flaghook_audit_log *al = flaghook__jr_alloc(r, sizeof(*al));
		if (al && audit_data(r, data, al))
			ev->audit = al;
	} else {
		flaghook_version_published *p = flaghook__jr_alloc(r, sizeof(*p));
		if (p && published_data(r, data, p))
			ev->published = p;
	}
	flaghook__jr_pop(r);
out:
	rc = r->err;
	if (rc)
		flaghook__event_json_free(e);
	return rc;
}

void flaghook__event_json_free(fh_event_json *e)
{
	flaghook__jr_close(&e->r);
}
