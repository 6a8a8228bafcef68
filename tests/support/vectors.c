#include "vectors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *read_whole(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "cannot open %s\n", path);
		abort();
	}
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		abort();
	buf[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

const char *test_path(const char *rel)
{
	static char path[1024];
	const char *root = getenv("FLAGHOOK_TESTS");
	snprintf(path, sizeof(path), "%s/%s", root ? root : "tests", rel);
	return path;
}

cJSON *vec_load(const char *name)
{
	const char *dir = getenv("FLAGHOOK_VECTORS");
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/vectors", name);
	char *text = read_whole(path, NULL);
	cJSON *root = cJSON_Parse(text);
	free(text);
	if (!root) {
		fprintf(stderr, "%s is not JSON\n", path);
		abort();
	}
	return root;
}

cJSON *vec_cases(cJSON *root)
{
	cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases");
	if (!cJSON_IsArray(cases) || cJSON_GetArraySize(cases) == 0)
		abort();
	return cases;
}

const char *vec_str(const cJSON *c, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

size_t vec_unhex(const char *hex, uint8_t **out)
{
	size_t n = strlen(hex) / 2;
	*out = malloc(n ? n : 1);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		(*out)[i] = (uint8_t)v;
	}
	return n;
}
