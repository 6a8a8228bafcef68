/*
 * The one place a body byte is written: Python's json.dumps(sort_keys=True)
 * with its defaults (ensure_ascii, separators ", " and ": ") or, compact,
 * "," and ":".  Integers never pass through a double; floats print as
 * Python's repr().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strtod_l, newlocale */
#endif
#include "payload/json.h"

#include <assert.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A typical body is 1 to 2 KiB: one allocation, no regrowth. */
#define FIRST_RESERVE 2048

void flaghook__json_init(fh_json *w, flaghook_buf *out, size_t limit, bool compact)
{
	memset(w, 0, sizeof(*w));
	w->out = out;
	w->limit = limit;
	w->room = limit ? limit : SIZE_MAX;
	w->compact = compact;
	if (!out->reserved) {
		size_t first = limit && limit < FIRST_RESERVE ? limit : FIRST_RESERVE;
		int rc = flaghook__buf_reserve(out, first, 0);
		if (rc)
			w->err = rc;
	}
}

void flaghook__json_finish(fh_json *w)
{
	if (!w->err && w->out->ptr)
		w->out->ptr[w->out->size] = '\0'; /* reserve always keeps room for it */
}

/* Every byte goes through here.  The common case (room in the buffer) is a
 * compare and a memcpy; growing, the limit and errors take the slow path.
 * The NUL terminator is written once, by flaghook__json_finish. */
static void put_slow(fh_json *w, const char *s, size_t n)
{
	if (w->err)
		return;
	int rc = flaghook__buf_reserve(w->out, n, w->limit);
	if (rc) {
		w->err = rc;
		return;
	}
	memcpy(w->out->ptr + w->out->size, s, n);
	w->out->size += n;
}

static inline void put(fh_json *w, const char *s, size_t n)
{
	flaghook_buf *b = w->out;
	if (b->size + n < b->reserved && b->size + n <= w->room && !w->err) {
		memcpy(b->ptr + b->size, s, n);
		b->size += n;
		return;
	}
	put_slow(w, s, n);
}

#define PUT_LIT(w, lit) put((w), (lit), sizeof(lit) - 1)

/* ", " (or ",") before every item of the open container but the first. */
static void separator(fh_json *w)
{
	if (!w->first[w->depth - 1]) {
		if (w->compact)
			PUT_LIT(w, ",");
		else
			PUT_LIT(w, ", ");
	}
	w->first[w->depth - 1] = false;
}

/* Array items are separated here; object members in flaghook__json_key. */
static void value_start(fh_json *w)
{
	if (w->depth > 0 && !w->in_object[w->depth - 1])
		separator(w);
}

static void open_container(fh_json *w, char c, bool object)
{
	value_start(w);
	if (w->err)
		return;
	if (w->depth >= FH_JSON_MAX_DEPTH) {
		w->err = FLAGHOOK_EEVENT;
		return;
	}
	put(w, &c, 1);
	w->first[w->depth] = true;
	w->in_object[w->depth] = object;
	w->last_key[w->depth] = NULL;
	w->depth++;
}

static void close_container(fh_json *w, char c)
{
	if (w->err)
		return;
	assert(w->depth > 0);
	w->depth--;
	put(w, &c, 1);
}

void flaghook__json_object_begin(fh_json *w) { open_container(w, '{', true); }
void flaghook__json_object_end(fh_json *w) { close_container(w, '}'); }
void flaghook__json_array_begin(fh_json *w) { open_container(w, '[', false); }
void flaghook__json_array_end(fh_json *w) { close_container(w, ']'); }

/* sort_keys: render.c lists members in code-point (= UTF-8 byte) order;
 * debug and sanitizer builds check it. */
static void check_key_order(fh_json *w, const char *key)
{
	assert(w->depth > 0 && w->in_object[w->depth - 1]);
#ifndef NDEBUG
	assert(!w->last_key[w->depth - 1] || strcmp(w->last_key[w->depth - 1], key) < 0);
	w->last_key[w->depth - 1] = key;
#else
	(void)w;
	(void)key;
#endif
}

void flaghook__json_key_ascii(fh_json *w, const char *key, size_t len)
{
	if (w->err)
		return;
	check_key_order(w, key);
#ifndef NDEBUG
	for (size_t i = 0; i < len; i++)
		assert(key[i] > 0x20 && key[i] < 0x7f && key[i] != '"' && key[i] != '\\');
#endif
	/* ', "key": ' in one go: this runs for every member of every body. */
	char tmp[96];
	if (len > sizeof(tmp) - 6) {
		separator(w);
		put(w, "\"", 1);
		put(w, key, len);
		put(w, w->compact ? "\":" : "\": ", w->compact ? 2 : 3);
		return;
	}
	size_t n = 0;
	if (!w->first[w->depth - 1]) {
		tmp[n++] = ',';
		if (!w->compact)
			tmp[n++] = ' ';
	}
	w->first[w->depth - 1] = false;
	tmp[n++] = '"';
	memcpy(tmp + n, key, len);
	n += len;
	tmp[n++] = '"';
	tmp[n++] = ':';
	if (!w->compact)
		tmp[n++] = ' ';
	put(w, tmp, n);
}

void flaghook__json_key(fh_json *w, const char *key)
{
	if (w->err)
		return;
	check_key_order(w, key);
	separator(w);
	flaghook__json_string(w, key, strlen(key));
	if (w->compact)
		PUT_LIT(w, ":");
	else
		PUT_LIT(w, ": ");
}

/* Decodes one UTF-8 sequence at s (n > 0 bytes left).  Returns its length
 * and the code point, or 0 for an invalid sequence (overlong forms,
 * surrogates and values past U+10FFFF included). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned c = s[0];
	size_t len;
	uint32_t min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xC2 && c <= 0xDF) {
		len = 2; min = 0x80; *cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3; min = 0x800; *cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4; min = 0x10000; *cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		*cp = (*cp << 6) | (s[i] & 0x3F);
	}
	if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF))
		return 0;
	return len;
}

size_t flaghook__utf8_invalid_at(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = utf8_decode(p + i, len - i, &cp);
		if (!n)
			return i;
		i += n;
	}
	return (size_t)-1;
}

static const char hexdig[] = "0123456789abcdef";

/* Bytes that pass through unescaped: 0x20..0x7e but '"' and '\\'. */
static const bool plain[256] = {
#define R8(x) x, x, x, x, x, x, x, x
	R8(0), R8(0), R8(0), R8(0),                                  /* 0x00-0x1f */
	1, 1, 0, 1, 1, 1, 1, 1, R8(1), R8(1), R8(1),                 /* 0x20-0x3f: '"' */
	R8(1), R8(1), R8(1), 1, 1, 1, 1, 0, 1, 1, 1,                 /* 0x40-0x5f: '\\' */
	R8(1), R8(1), R8(1), 1, 1, 1, 1, 1, 1, 1, 0,                 /* 0x60-0x7f: DEL */
#undef R8
};

static void put_u16(fh_json *w, uint32_t u)
{
	char e[6] = { '\\', 'u', hexdig[(u >> 12) & 15], hexdig[(u >> 8) & 15],
	              hexdig[(u >> 4) & 15], hexdig[u & 15] };
	put(w, e, 6);
}

void flaghook__json_string(fh_json *w, const char *s, size_t len)
{
	value_start(w);
	if (w->err)
		return;
	const unsigned char *p = (const unsigned char *)s;
	/* Worst case per input byte is 6 output bytes; reserve for the common
	 * case and let put() grow the rest. */
	PUT_LIT(w, "\"");
	size_t i = 0;
	while (i < len && !w->err) {
		size_t run = i;
		while (run < len && plain[p[run]])
			run++;
		if (run > i) {
			put(w, s + i, run - i);
			i = run;
			continue;
		}
		unsigned c = p[i];
		switch (c) {
		case '"': PUT_LIT(w, "\\\""); i++; continue;
		case '\\': PUT_LIT(w, "\\\\"); i++; continue;
		case '\n': PUT_LIT(w, "\\n"); i++; continue;
		case '\r': PUT_LIT(w, "\\r"); i++; continue;
		case '\t': PUT_LIT(w, "\\t"); i++; continue;
		case '\b': PUT_LIT(w, "\\b"); i++; continue;
		case '\f': PUT_LIT(w, "\\f"); i++; continue;
		default: break;
		}
		uint32_t cp;
		size_t n = utf8_decode(p + i, len - i, &cp);
		if (!n) {
			w->err = FLAGHOOK_EUTF8;
			w->bad_offset = i;
			return;
		}
		if (cp >= 0x10000) {
			cp -= 0x10000;
			put_u16(w, 0xD800 | (cp >> 10));
			put_u16(w, 0xDC00 | (cp & 0x3FF));
		} else {
			put_u16(w, cp);
		}
		i += n;
	}
	PUT_LIT(w, "\"");
}

void flaghook__json_cstring(fh_json *w, const char *s)
{
	if (s)
		flaghook__json_string(w, s, strlen(s));
	else
		flaghook__json_null(w);
}

static void put_integer(fh_json *w, uint64_t u, bool negative)
{
	char tmp[24];
	char *e = tmp + sizeof(tmp), *p = e;
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (negative)
		*--p = '-';
	value_start(w);
	put(w, p, (size_t)(e - p));
}

void flaghook__json_int(fh_json *w, int64_t v)
{
	/* Work in unsigned so INT64_MIN negates without overflow. */
	put_integer(w, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, v < 0);
}

void flaghook__json_uint(fh_json *w, uint64_t v)
{
	put_integer(w, v, false);
}

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void make_c_locale(void) { c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

/*
 * Shortest digits that read back as v, laid out as Python's float_repr_style
 * 'short' does (repr): positional when -4 <= exponent < 16 with at least one
 * fractional digit, otherwise d[.ddd]e[+-]XX.  snprintf and strtod follow
 * the host's LC_NUMERIC, so digits are taken out of snprintf's text whatever
 * its decimal point, and read back in the C locale.
 */
int flaghook__double_repr(char out[32], double v)
{
	if (!isfinite(v))
		return -1;
	if (v == 0) {
		strcpy(out, signbit(v) ? "-0.0" : "0.0");
		return signbit(v) ? 4 : 3;
	}
	pthread_once(&c_locale_once, make_c_locale);

	char digits[20];
	int ndig = 0, exp10 = 0;
	for (int prec = 1; prec <= 17; prec++) {
		char tmp[40];
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
		/* Collect the mantissa digits and the exponent. */
		ndig = 0;
		const char *q = tmp;
		if (*q == '-')
			q++;
		for (; *q && *q != 'e'; q++)
			if (*q >= '0' && *q <= '9')
				digits[ndig++] = *q;
		exp10 = atoi(q + 1);
		char canon[48];
		snprintf(canon, sizeof(canon), "%s%c.%.*se%d", v < 0 ? "-" : "",
		         digits[0], ndig - 1, digits + 1, exp10);
		double back = c_locale ? strtod_l(canon, NULL, c_locale) : strtod(canon, NULL);
		if (back == v)
			break;
	}
	while (ndig > 1 && digits[ndig - 1] == '0')
		ndig--;

	char *p = out;
	if (v < 0)
		*p++ = '-';
	if (exp10 >= -4 && exp10 < 16) {
		if (exp10 < 0) {
			*p++ = '0';
			*p++ = '.';
			for (int i = -1; i > exp10; i--)
				*p++ = '0';
			memcpy(p, digits, (size_t)ndig);
			p += ndig;
		} else {
			int intlen = exp10 + 1;
			for (int i = 0; i < intlen; i++)
				*p++ = i < ndig ? digits[i] : '0';
			*p++ = '.';
			if (ndig > intlen) {
				memcpy(p, digits + intlen, (size_t)(ndig - intlen));
				p += ndig - intlen;
			} else {
				*p++ = '0';
			}
		}
	} else {
		*p++ = digits[0];
		if (ndig > 1) {
			*p++ = '.';
			memcpy(p, digits + 1, (size_t)(ndig - 1));
			p += ndig - 1;
		}
		p += sprintf(p, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
	}
	*p = '\0';
	return (int)(p - out);
}

void flaghook__json_double(fh_json *w, double v)
{
	char tmp[32];
	int n = flaghook__double_repr(tmp, v);
	if (n < 0) {
		if (!w->err)
			w->err = FLAGHOOK_EEVENT;
		return;
	}
	value_start(w);
	put(w, tmp, (size_t)n);
}

void flaghook__json_bool(fh_json *w, bool v)
{
	value_start(w);
	if (v)
		PUT_LIT(w, "true");
	else
		PUT_LIT(w, "false");
}

void flaghook__json_null(fh_json *w)
{
	value_start(w);
	PUT_LIT(w, "null");
}
