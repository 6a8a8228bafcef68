/* Reading the known-answer files in ../shared/vectors (or tests/vectors). */
#ifndef TEST_VECTORS_H
#define TEST_VECTORS_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* Parses $FLAGHOOK_VECTORS/<name>; aborts the test program when missing. */
cJSON *vec_load(const char *name);
/* The "cases" array of a loaded file. */
cJSON *vec_cases(cJSON *root);
const char *vec_str(const cJSON *c, const char *key);
/* Hex string to bytes; returns the length.  *out is malloc'd. */
size_t vec_unhex(const char *hex, uint8_t **out);
/* Reads a whole file; aborts when missing.  *len gets its size. */
char *read_whole(const char *path, size_t *len);
/* Path under the source tree's tests/ folder. */
const char *test_path(const char *rel);

#endif
