/* Signatures against the known answers in ../shared/vectors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "internal.h"
#include "vectors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_hmac_rfc4231(void **state)
{
	(void)state;
	cJSON *root = vec_load("hmac-sha256.json");
	cJSON *c;
	int n = 0;
	cJSON_ArrayForEach(c, vec_cases(root)) {
		uint8_t *key, *data, *want, got[32];
		size_t kl = vec_unhex(vec_str(c, "key_hex"), &key);
		size_t dl = vec_unhex(vec_str(c, "data_hex"), &data);
		size_t wl = vec_unhex(vec_str(c, "hmac_sha256_hex"), &want);
		assert_int_equal(wl, 32);
		assert_int_equal(flaghook__hmac_sha256(got, key, kl, data, dl), 0);
		if (memcmp(got, want, 32))
			fail_msg("%s: HMAC differs", vec_str(c, "name"));
		free(key), free(data), free(want);
		n++;
	}
	assert_true(n >= 5);
	cJSON_Delete(root);
}

static void test_flagsmith_signature(void **state)
{
	(void)state;
	cJSON *root = vec_load("flagsmith-signature.json");
	cJSON *c;
	cJSON_ArrayForEach(c, vec_cases(root)) {
		const char *secret = vec_str(c, "secret"), *body = vec_str(c, "body");
		const char *want = vec_str(c, "x_flagsmith_signature");
		char got[65];
		assert_int_equal(flaghook_sign(got, sizeof(got), secret, strlen(secret), body, strlen(body)), 0);
		if (strcmp(got, want))
			fail_msg("%s: got %s want %s", vec_str(c, "name"), got, want);
		assert_int_equal(flaghook_verify(secret, strlen(secret), body, strlen(body), want, strlen(want)), 0);

		/* Uppercase hex is the same signature. */
		char upper[65];
		for (int i = 0; i < 65; i++)
			upper[i] = (char)(want[i] >= 'a' && want[i] <= 'f' ? want[i] - 32 : want[i]);
		assert_int_equal(flaghook_verify(secret, strlen(secret), body, strlen(body), upper, 64), 0);

		/* One flipped hex digit, a different body, a wrong secret, a short
		 * or long signature: all mismatches. */
		char flipped[65];
		memcpy(flipped, want, 65);
		flipped[63] = flipped[63] == '0' ? '1' : '0';
		assert_int_equal(flaghook_verify(secret, strlen(secret), body, strlen(body), flipped, 64), FLAGHOOK_EVERIFY);
		assert_int_equal(flaghook_verify(secret, strlen(secret), "x", 1, want, 64), FLAGHOOK_EVERIFY);
		assert_int_equal(flaghook_verify("wrong", 5, body, strlen(body), want, 64), FLAGHOOK_EVERIFY);
		assert_int_equal(flaghook_verify(secret, strlen(secret), body, strlen(body), want, 63), FLAGHOOK_EVERIFY);
		/* Every other byte at each of two positions is a mismatch: only the
		 * digit itself, or a letter's capital, is equal. */
		for (int pos = 0; pos < 64; pos += 63) {
			for (int ch = 0; ch < 256; ch++) {
				char junk[65];
				memcpy(junk, want, 65);
				junk[pos] = (char)ch;
				int same = ch == want[pos] || (want[pos] >= 'a' && ch == want[pos] - 32);
				int rc = flaghook_verify(secret, strlen(secret), body, strlen(body), junk, 64);
				if (rc != (same ? 0 : FLAGHOOK_EVERIFY))
					fail_msg("byte 0x%02x at %d: verify returned %d", ch, pos, rc);
			}
		}
	}
	cJSON_Delete(root);
}

static void test_sign_arguments(void **state)
{
	(void)state;
	char out[65];
	assert_int_equal(flaghook_sign(out, 64, "k", 1, "b", 1), FLAGHOOK_EBUFSIZE);
	assert_int_equal(flaghook_sign(NULL, 65, "k", 1, "b", 1), FLAGHOOK_EINVAL);
	assert_int_equal(flaghook_sign(out, 65, NULL, 1, "b", 1), FLAGHOOK_EINVAL);
	assert_int_equal(flaghook_verify("k", 1, "b", 1, NULL, 64), FLAGHOOK_EINVAL);
	assert_int_equal(flaghook_signature_hex_bytes(), 64);
	/* Errors never carry the secret. */
	assert_int_equal(flaghook_verify("topsecret", 9, "b", 1, "00", 2), FLAGHOOK_EVERIFY);
	assert_null(strstr(flaghook_last_error(), "topsecret"));
}

static void test_standard_webhooks(void **state)
{
	(void)state;
	cJSON *root = vec_load("standard-webhooks.json");
	cJSON *c;
	cJSON_ArrayForEach(c, vec_cases(root)) {
		const char *secret = vec_str(c, "secret"), *id = vec_str(c, "webhook_id");
		const char *ts = vec_str(c, "webhook_timestamp"), *body = vec_str(c, "body");
		const char *want = vec_str(c, "webhook_signature");
		char got[64];
		assert_int_equal(flaghook_standard_sign(got, sizeof(got), secret, id, atoll(ts), body, strlen(body)), 0);
		assert_string_equal(got, want);
		assert_true(strlen(got) + 1 <= flaghook_standard_signature_bytes());

		const char *secrets[] = { "whsec_dGhlIG9sZCBzZWNyZXQ=", secret };
		int64_t now = atoll(ts);
		assert_int_equal(flaghook_standard_verify(secrets, 2, id, ts, want, body, strlen(body), now, 300), 0);
		/* Rotation: several signatures in one header, any may match. */
		char header[200];
		snprintf(header, sizeof(header), "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= %s", want);
		assert_int_equal(flaghook_standard_verify(&secret, 1, id, ts, header, body, strlen(body), now, 300), 0);
		/* Old secret only, tampered body, other id, stale timestamp. */
		assert_int_equal(flaghook_standard_verify(secrets, 1, id, ts, want, body, strlen(body), now, 300), FLAGHOOK_EVERIFY);
		assert_int_equal(flaghook_standard_verify(&secret, 1, id, ts, want, "{}", 2, now, 300), FLAGHOOK_EVERIFY);
		assert_int_equal(flaghook_standard_verify(&secret, 1, "msg_x", ts, want, body, strlen(body), now, 300), FLAGHOOK_EVERIFY);
		assert_int_equal(flaghook_standard_verify(&secret, 1, id, ts, want, body, strlen(body), now + 301, 300), FLAGHOOK_EVERIFY);
		/* Tolerance 0 skips the clock check. */
		assert_int_equal(flaghook_standard_verify(&secret, 1, id, ts, want, body, strlen(body), 0, 0), 0);
	}
	cJSON_Delete(root);
	char out[64];
	assert_int_equal(flaghook_standard_sign(out, sizeof(out), "whsec_!!!", "id", 1, "", 0), FLAGHOOK_ESECRET);
	assert_int_equal(flaghook_standard_sign(out, 10, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "id", 1, "", 0),
	                 FLAGHOOK_EBUFSIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hmac_rfc4231),
		cmocka_unit_test(test_flagsmith_signature),
		cmocka_unit_test(test_sign_arguments),
		cmocka_unit_test(test_standard_webhooks),
	};
	return cmocka_run_group_tests_name("sign", tests, NULL, NULL);
}
