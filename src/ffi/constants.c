/*
 * Every public constant by name, for bindings that cannot read a C
 * header.  The list is generated from the public headers at build time
 * (Makefile: constants.inc, every object-like FLAGHOOK_* macro with a
 * number for its value), and the values are the compiler's own, so the
 * table cannot drift from the header.
 */
#include "ffi/ffi.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static const struct fh_constant {
	const char *name;
	int64_t value;
} constants[] = {
#define FH_CONST(name) { #name, (int64_t)(name) },
#include "constants.inc"
#undef FH_CONST
};

#define NCONST (sizeof(constants) / sizeof(constants[0]))

int flaghook_constant(const char *name, int64_t *out)
{
	flaghook__error_clear();
	if (!name || !out)
		return flaghook__error(FLAGHOOK_EINVAL, "name or out is NULL");
	for (size_t i = 0; i < NCONST; i++) {
		if (!strcmp(constants[i].name, name)) {
			*out = constants[i].value;
			return 0;
		}
	}
	return flaghook__error(FLAGHOOK_ENOTFOUND, "no public constant is named \"%.64s\"", name);
}

/* Room for every constant: a name of at most 64 bytes and an int64. */
static char json[NCONST * (64 + 32) + 4];
static pthread_once_t json_once = PTHREAD_ONCE_INIT;

static void make_json(void)
{
	size_t n = 0;
	json[n++] = '{';
	for (size_t i = 0; i < NCONST; i++)
		n += (size_t)snprintf(json + n, sizeof(json) - n, "%s\"%s\": %" PRId64, i ? ", " : "",
		                      constants[i].name, constants[i].value);
	snprintf(json + n, sizeof(json) - n, "}");
}

const char *flaghook_constants_json(void)
{
	pthread_once(&json_once, make_json);
	return json;
}
