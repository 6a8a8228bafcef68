/* Reading JSON from a caller: see json_read.h. */
#include "ffi/json_read.h"
#include "payload/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_JSON_DEPTH 32

/* C99 has no max_align_t: the strictest of what the arena holds. */
typedef union fh_align {
	long double ld;
	int64_t i;
	double d;
	void *p;
} fh_align;

struct fh_arena_block {
	fh_arena_block *next;
	fh_align align[];
};

void *flaghook__jr_alloc(fh_jr *r, size_t size)
{
	if (size > SIZE_MAX - sizeof(fh_arena_block)) {
		flaghook__jr_fail(r, FLAGHOOK_ENOMEM, "out of memory");
		return NULL;
	}
	fh_arena_block *b = flaghook__malloc(r->allocator, sizeof(*b) + size);
	if (!b) {
		flaghook__jr_fail(r, FLAGHOOK_ENOMEM, "out of memory");
		return NULL;
	}
	b->next = r->blocks;
	r->blocks = b;
	memset(b->align, 0, size);
	return b->align;
}

/* ---- the path ---- */

void flaghook__jr_push(fh_jr *r, const char *key)
{
	if (r->depth < 40) {
		r->path[r->depth] = key;
		r->index[r->depth] = -1;
	}
	r->depth++;
}

void flaghook__jr_push_index(fh_jr *r, long index)
{
	if (r->depth < 40) {
		r->path[r->depth] = NULL;
		r->index[r->depth] = index;
	}
	r->depth++;
}

void flaghook__jr_pop(fh_jr *r)
{
	r->depth--;
}

bool flaghook__jr_fail(fh_jr *r, int code, const char *what)
{
	if (r->err)
		return false;
	char path[320];
	size_t len = (size_t)snprintf(path, sizeof(path), "$");
	for (int i = 0; i < r->depth && i < 40 && len < sizeof(path); i++) {
		if (r->path[i])
			len += (size_t)snprintf(path + len, sizeof(path) - len, ".%.60s", r->path[i]);
		else
			len += (size_t)snprintf(path + len, sizeof(path) - len, "[%ld]", r->index[i]);
	}
	r->err = flaghook__error(code, "%s: %s", path, what);
	return false;
}

/* ---- opening: cJSON, plus the number literals ---- */

/* Every number literal outside strings, in document order. */
static int scan_numbers(fh_jr *r, const char *s, size_t len)
{
	size_t cap = 0;
	for (size_t i = 0; i < len;) {
		char ch = s[i];
		if (ch == '"') {
			for (i++; i < len && s[i] != '"'; i++)
				if (s[i] == '\\')
					i++;
			i++;
			continue;
		}
		if (ch == '-' || (ch >= '0' && ch <= '9')) {
			size_t start = i;
			while (i < len && (s[i] == '-' || s[i] == '+' || s[i] == '.' || s[i] == 'e' || s[i] == 'E' ||
			                   (s[i] >= '0' && s[i] <= '9')))
				i++;
			if (r->nnumbers == cap) {
				cap = cap ? cap * 2 : 32;
				void *grown = flaghook__reallocarray(r->allocator, r->numbers, cap, sizeof(*r->numbers));
				if (!grown)
					return FLAGHOOK_ENOMEM;
				r->numbers = grown;
			}
			r->numbers[r->nnumbers].start = start;
			r->numbers[r->nnumbers].len = i - start;
			r->nnumbers++;
			continue;
		}
		i++;
	}
	return 0;
}

/* Whether the string literal at s[i] (its opening quote) escapes a NUL
 * (\u0000); *end gets the index of its closing quote. */
static bool string_has_nul(const char *s, size_t len, size_t i, size_t *end)
{
	bool nul = false;
	for (i++; i < len && s[i] != '"'; i++) {
		if (s[i] == '\\') {
			if (i + 5 < len && s[i + 1] == 'u' && !memcmp(s + i + 2, "0000", 4))
				nul = true;
			i++; /* the escaped character */
		}
	}
	*end = i;
	return nul;
}

/*
 * cJSON ends a C string at an escaped NUL: "ab\u0000cd" would be read as
 * "ab", a different name or a shorter secret without a word.  This walks
 * the (already valid) document for such a string and fails naming its
 * path; false when it found one.
 */
static bool refuse_escaped_nul(fh_jr *r, const char *s, size_t len)
{
	struct frame { bool object; long index; size_t key, key_len; } st[MAX_JSON_DEPTH + 2];
	int depth = 0;
	bool want_key = false;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if ((ch == '{' || ch == '[') && depth < MAX_JSON_DEPTH + 2) {
			st[depth++] = (struct frame){ ch == '{', 0, 0, 0 };
			want_key = ch == '{';
		} else if (ch == '}' || ch == ']') {
			depth -= depth > 0;
			want_key = false;
		} else if (ch == ',' && depth) {
			st[depth - 1].index++;
			want_key = st[depth - 1].object;
		} else if (ch == ':') {
			want_key = false;
		} else if (ch == '"') {
			size_t close;
			bool nul = string_has_nul(s, len, i, &close);
			bool is_key = want_key && depth && st[depth - 1].object;
			if (is_key) {
				st[depth - 1].key = i + 1;
				st[depth - 1].key_len = close - i - 1;
			}
			if (nul) {
				char path[320];
				size_t n = (size_t)snprintf(path, sizeof(path), "$");
				for (int d = 0; d < depth - (is_key ? 1 : 0) && n < sizeof(path); d++) {
					if (st[d].object)
						n += (size_t)snprintf(path + n, sizeof(path) - n, ".%.*s",
						                      (int)(st[d].key_len < 60 ? st[d].key_len : 60), s + st[d].key);
					else
						n += (size_t)snprintf(path + n, sizeof(path) - n, "[%ld]", st[d].index);
				}
				r->err = flaghook__error(r->code, "%s: %s holds \\u0000 (a NUL), which no string here may", path,
				                         is_key ? "a key" : "the string");
				return false;
			}
			i = close;
		}
	}
	return true;
}

/* cJSON's number items in document order get the index of their literal
 * in valueint (which cJSON only fills with a clamped copy). */
static bool number_items(fh_jr *r, cJSON *item, size_t *k, int depth)
{
	if (depth > MAX_JSON_DEPTH)
		return false;
	for (; item; item = item->next) {
		if (cJSON_IsNumber(item)) {
			if (*k >= r->nnumbers)
				return false;
			item->valueint = (int)*k;
			(*k)++;
		} else if ((cJSON_IsArray(item) || cJSON_IsObject(item)) && !number_items(r, item->child, k, depth + 1)) {
			return false;
		}
	}
	return true;
}

int flaghook__jr_open(fh_jr *r, const char *json, size_t len, const flaghook_allocator *a, int code)
{
	memset(r, 0, sizeof(*r));
	r->allocator = a;
	r->code = code;
	if (!json)
		return flaghook__error(FLAGHOOK_EINVAL, "the JSON is NULL");
	if (len > (size_t)INT32_MAX)
		return flaghook__error(FLAGHOOK_ETOOBIG, "the JSON is over 2 GiB");
	const char *nul = memchr(json, '\0', len);
	if (nul)
		return flaghook__error(code, "not valid JSON: a NUL byte at byte %zu (is the length right?)",
		                       (size_t)(nul - json));

	const char *end = NULL;
	r->root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
	if (!r->root) {
		size_t at = end && end >= json ? (size_t)(end - json) : 0;
		return flaghook__error(code, "not valid JSON at byte %zu", at);
	}
	/* Only white space may follow the value. */
	for (const char *p = end; p && p < json + len && *p; p++) {
		if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
			flaghook__jr_close(r);
			return flaghook__error(code, "not valid JSON: more after the value at byte %zu",
			                       (size_t)(p - json));
		}
	}
	r->text = json;
	if (memmem(json, len, "\\u0000", 6) && !refuse_escaped_nul(r, json, len)) {
		int err = r->err;
		flaghook__jr_close(r);
		return err;
	}
	size_t k = 0;
	int rc = scan_numbers(r, json, len);
	if (rc) {
		flaghook__jr_close(r);
		return flaghook__error(rc, "out of memory");
	}
	if (!number_items(r, r->root, &k, 0) || k != r->nnumbers) {
		flaghook__jr_close(r);
		return flaghook__error(code, "JSON nests more than %d deep, or its numbers could not "
		                                        "be read exactly", MAX_JSON_DEPTH);
	}
	return 0;
}

void flaghook__jr_close(fh_jr *r)
{
	cJSON_Delete(r->root);
	r->root = NULL;
	flaghook__free(r->allocator, r->numbers);
	r->numbers = NULL;
	while (r->blocks) {
		fh_arena_block *b = r->blocks;
		r->blocks = b->next;
		flaghook__free(r->allocator, b);
	}
}

/* ---- typed reads ---- */

bool flaghook__jr_keys(fh_jr *r, const cJSON *obj, const char *const *known)
{
	for (const cJSON *m = obj->child; m; m = m->next) {
		bool ok = false;
		for (size_t i = 0; known && known[i] && !ok; i++)
			ok = !strcmp(m->string, known[i]);
		flaghook__jr_push(r, m->string);
		if (!ok) {
			flaghook__jr_fail(r, r->code, "is not a member this object has");
			flaghook__jr_pop(r);
			return false;
		}
		for (const cJSON *n = m->next; n; n = n->next) {
			if (!strcmp(n->string, m->string)) {
				flaghook__jr_fail(r, r->code, "is given twice");
				flaghook__jr_pop(r);
				return false;
			}
		}
		flaghook__jr_pop(r);
	}
	return true;
}

static const cJSON *member(const cJSON *obj, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(obj, key);
}

bool flaghook__jr_number(fh_jr *r, const cJSON *item, int64_t *i, double *d, bool *is_int)
{
	size_t k = (size_t)item->valueint;
	if (!cJSON_IsNumber(item) || k >= r->nnumbers)
		return flaghook__jr_fail(r, r->code, "is not a number");
	char text[64];
	size_t n = r->numbers[k].len;
	if (n >= sizeof(text))
		return flaghook__jr_fail(r, r->code, "is a number with too many digits");
	memcpy(text, r->text + r->numbers[k].start, n);
	text[n] = '\0';
	*is_int = !strpbrk(text, ".eE");
	char *end;
	errno = 0;
	if (*is_int) {
		long long v = strtoll(text, &end, 10);
		if (errno == ERANGE)
			return flaghook__jr_fail(r, r->code, "is an integer outside the 64-bit range");
		*i = v;
		*d = (double)v;
	} else {
		*d = strtod(text, &end);
		if (errno == ERANGE)
			return flaghook__jr_fail(r, r->code, "is a number outside the double range");
		*i = 0;
	}
	if (*end)
		return flaghook__jr_fail(r, r->code, "is not a number");
	return true;
}

bool flaghook__jr_int(fh_jr *r, const cJSON *obj, const char *key, bool need, int64_t *out)
{
	const cJSON *v = member(obj, key);
	if (!v)
		return need ? (flaghook__jr_push(r, key), flaghook__jr_fail(r, r->code, "is missing"),
		               flaghook__jr_pop(r), false)
		            : true;
	flaghook__jr_push(r, key);
	int64_t i;
	double d;
	bool is_int = false;
	bool ok = cJSON_IsNumber(v) ? flaghook__jr_number(r, v, &i, &d, &is_int)
	                            : flaghook__jr_fail(r, r->code, "must be an integer");
	if (ok && !is_int)
		ok = flaghook__jr_fail(r, r->code, "must be an integer, not a float");
	if (ok)
		*out = i;
	flaghook__jr_pop(r);
	return ok;
}

bool flaghook__jr_bool(fh_jr *r, const cJSON *obj, const char *key, bool need, int32_t *out)
{
	const cJSON *v = member(obj, key);
	flaghook__jr_push(r, key);
	bool ok = true;
	if (!v)
		ok = need ? flaghook__jr_fail(r, r->code, "is missing") : true;
	else if (!cJSON_IsBool(v))
		ok = flaghook__jr_fail(r, r->code, "must be true or false");
	else
		*out = cJSON_IsTrue(v) ? 1 : 0;
	flaghook__jr_pop(r);
	return ok;
}

static bool utf8_ok(fh_jr *r, const char *s)
{
	size_t bad = flaghook__utf8_invalid_at(s, strlen(s));
	if (bad == (size_t)-1)
		return true;
	char what[64];
	snprintf(what, sizeof(what), "invalid UTF-8 at byte %zu", bad);
	return flaghook__jr_fail(r, FLAGHOOK_EUTF8, what);
}

bool flaghook__jr_str(fh_jr *r, const cJSON *obj, const char *key, bool need, bool nullable, const char **out)
{
	const cJSON *v = member(obj, key);
	flaghook__jr_push(r, key);
	bool ok = true;
	if (!v)
		ok = need ? flaghook__jr_fail(r, r->code, "is missing") : true;
	else if (cJSON_IsNull(v) && nullable)
		*out = NULL;
	else if (!cJSON_IsString(v))
		ok = flaghook__jr_fail(r, r->code, nullable ? "must be a string or null" : "must be a string");
	else if ((ok = utf8_ok(r, v->valuestring)))
		*out = v->valuestring;
	flaghook__jr_pop(r);
	return ok;
}

bool flaghook__jr_object(fh_jr *r, const cJSON *obj, const char *key, bool need, bool nullable, const cJSON **out)
{
	const cJSON *v = member(obj, key);
	flaghook__jr_push(r, key);
	bool ok = true;
	if (!v)
		ok = need ? flaghook__jr_fail(r, r->code, "is missing") : true;
	else if (cJSON_IsNull(v) && nullable)
		*out = NULL;
	else if (!cJSON_IsObject(v))
		ok = flaghook__jr_fail(r, r->code, nullable ? "must be an object or null" : "must be an object");
	else
		*out = v;
	flaghook__jr_pop(r);
	return ok;
}

bool flaghook__jr_value(fh_jr *r, const cJSON *v, flaghook_value *out)
{
	memset(out, 0, sizeof(*out));
	if (cJSON_IsNull(v)) {
		out->type = FLAGHOOK_VALUE_NULL;
	} else if (cJSON_IsBool(v)) {
		out->type = FLAGHOOK_VALUE_BOOL;
		out->boolean = cJSON_IsTrue(v) ? 1 : 0;
	} else if (cJSON_IsNumber(v)) {
		bool is_int;
		if (!flaghook__jr_number(r, v, &out->integer, &out->number, &is_int))
			return false;
		out->type = is_int ? FLAGHOOK_VALUE_INT : FLAGHOOK_VALUE_FLOAT;
	} else if (cJSON_IsString(v)) {
		if (!utf8_ok(r, v->valuestring))
			return false;
		out->type = FLAGHOOK_VALUE_STRING;
		out->string = v->valuestring;
	} else if (cJSON_IsArray(v)) {
		size_t n = (size_t)cJSON_GetArraySize(v);
		flaghook_value *items = flaghook__jr_alloc(r, (n ? n : 1) * sizeof(*items));
		if (!items)
			return false;
		size_t k = 0;
		for (const cJSON *it = v->child; it; it = it->next, k++) {
			flaghook__jr_push_index(r, (long)k);
			bool ok = flaghook__jr_value(r, it, &items[k]);
			flaghook__jr_pop(r);
			if (!ok)
				return false;
		}
		out->type = FLAGHOOK_VALUE_ARRAY;
		out->items = items;
		out->count = n;
	} else if (cJSON_IsObject(v)) {
		size_t n = (size_t)cJSON_GetArraySize(v);
		flaghook_member *m = flaghook__jr_alloc(r, (n ? n : 1) * sizeof(*m));
		if (!m)
			return false;
		size_t k = 0;
		for (const cJSON *it = v->child; it; it = it->next, k++) {
			flaghook__jr_push(r, it->string);
			for (const cJSON *o = it->next; o; o = o->next) {
				if (!strcmp(o->string, it->string)) {
					flaghook__jr_fail(r, r->code, "is given twice");
					flaghook__jr_pop(r);
					return false;
				}
			}
			bool ok = utf8_ok(r, it->string) && flaghook__jr_value(r, it, &m[k].value);
			flaghook__jr_pop(r);
			if (!ok)
				return false;
			m[k].key = it->string;
		}
		out->type = FLAGHOOK_VALUE_OBJECT;
		out->members = m;
		out->count = n;
	} else {
		return flaghook__jr_fail(r, r->code, "is not a JSON value");
	}
	return true;
}
