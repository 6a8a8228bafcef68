/* Signatures against the known answers in ../shared/vectors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "payload/sign.h"
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
		/* Tolerance 0 is the specification's 300 s, never "any age". */
		assert_int_equal(flaghook_standard_verify(&secret, 1, id, ts, want, body, strlen(body), now + 300, 0), 0);
		assert_int_equal(flaghook_standard_verify(&secret, 1, id, ts, want, body, strlen(body), now + 301, 0),
		                 FLAGHOOK_EVERIFY);
		assert_int_equal(flaghook_standard_verify(&secret, 1, id, ts, want, body, strlen(body),
		                                          now + 365 * 86400, 0), FLAGHOOK_EVERIFY);
	}
	cJSON_Delete(root);
	char out[64];
	assert_int_equal(flaghook_standard_sign(out, sizeof(out), "whsec_!!!", "id", 1, "", 0), FLAGHOOK_ESECRET);
	assert_int_equal(flaghook_standard_sign(out, 10, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "id", 1, "", 0),
	                 FLAGHOOK_EBUFSIZE);
}

/* Review defect 4: an empty key makes an HMAC anybody can compute; it
 * must never sign or verify. */
static void test_empty_secret(void **state)
{
	(void)state;
	const char body[] = "{\"data\": 1}";
	char sig[65];
	assert_int_equal(flaghook_sign(sig, sizeof(sig), "", 0, body, strlen(body)), FLAGHOOK_ESECRET);
	assert_non_null(strstr(flaghook_last_error(), "empty"));
	/* The HMAC of the empty key, made by hand, does not verify. */
	uint8_t mac[32];
	assert_int_equal(flaghook__hmac_sha256(mac, "", 0, body, strlen(body)), 0);
	flaghook__hex(sig, mac, sizeof(mac));
	assert_int_equal(flaghook_verify("", 0, body, strlen(body), sig, 64), FLAGHOOK_ESECRET);
	assert_int_equal(flaghook_verify(NULL, 0, body, strlen(body), sig, 64), FLAGHOOK_ESECRET);

	/* Standard Webhooks: an empty secret, "whsec_" alone, or none. */
	char out[64];
	assert_int_equal(flaghook_standard_sign(out, sizeof(out), "", "id", 1, body, strlen(body)), FLAGHOOK_ESECRET);
	assert_int_equal(flaghook_standard_sign(out, sizeof(out), "whsec_", "id", 1, body, strlen(body)),
	                 FLAGHOOK_ESECRET);
	const char *empty[] = { "whsec_" }, *blank[] = { "" };
	assert_int_equal(flaghook_standard_verify(empty, 1, "id", "1", "v1,x", body, strlen(body), 1, 300),
	                 FLAGHOOK_ESECRET);
	assert_int_equal(flaghook_standard_verify(blank, 1, "id", "1", "v1,x", body, strlen(body), 1, 300),
	                 FLAGHOOK_ESECRET);
	assert_int_equal(flaghook_standard_verify(NULL, 0, "id", "1", "v1,x", body, strlen(body), 1, 300),
	                 FLAGHOOK_ESECRET);
	/* One good secret beside a bad one is still a configuration error. */
	const char *mixed[] = { "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "" };
	assert_int_equal(flaghook_standard_verify(mixed, 2, "id", "1", "v1,x", body, strlen(body), 1, 300),
	                 FLAGHOOK_ESECRET);
}

/* Review defect 5: tolerances at the edges, under UBSan in CI. */
static void test_standard_tolerance_edges(void **state)
{
	(void)state;
	const char *secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
	const char body[] = "{}";
	char sig[64];
	assert_int_equal(flaghook_standard_sign(sig, sizeof(sig), secret, "msg_1", 1000, body, 2), 0);
	/* Negative: an error, not "no check". */
	assert_int_equal(flaghook_standard_verify(&secret, 1, "msg_1", "1000", sig, body, 2, 1000, -1),
	                 FLAGHOOK_EINVAL);
	/* The widest window saturates instead of overflowing, at either end
	 * of time. */
	assert_int_equal(flaghook_standard_verify(&secret, 1, "msg_1", "1000", sig, body, 2, 1000, INT64_MAX), 0);
	assert_int_equal(flaghook_standard_verify(&secret, 1, "msg_1", "1000", sig, body, 2, INT64_MAX, INT64_MAX), 0);
	assert_int_equal(flaghook_standard_verify(&secret, 1, "msg_1", "1000", sig, body, 2, INT64_MIN, 300),
	                 FLAGHOOK_EVERIFY);
	/* A timestamp beyond long long is not a number. */
	assert_int_equal(flaghook_standard_verify(&secret, 1, "msg_1", "99999999999999999999", sig, body, 2, 1000,
	                                          INT64_MAX), FLAGHOOK_EVERIFY);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hmac_rfc4231),
		cmocka_unit_test(test_flagsmith_signature),
		cmocka_unit_test(test_sign_arguments),
		cmocka_unit_test(test_standard_webhooks),
		cmocka_unit_test(test_empty_secret),
		cmocka_unit_test(test_standard_tolerance_edges),
	};
	return cmocka_run_group_tests_name("sign", tests, NULL, NULL);
}
