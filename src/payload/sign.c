/*
 * The one place a signature is made or checked: X-Flagsmith-Signature
 * (hex HMAC-SHA256 of the body) and Standard Webhooks v1.
 */
#include "payload/sign.h"

#include <mbedtls/base64.h>
#include <mbedtls/md.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHA256_BYTES 32
/* "v1," + base64 of 32 bytes + NUL */
#define STANDARD_SIG_BYTES (3 + 44 + 1)
#define STANDARD_KEY_MAX 128
/* The Standard Webhooks specification's tolerance for webhook-timestamp. */
#define STANDARD_TOLERANCE_S 300

size_t flaghook_signature_hex_bytes(void) { return FLAGHOOK_SIGNATURE_HEX_BYTES; }
size_t flaghook_standard_signature_bytes(void) { return STANDARD_SIG_BYTES; }

static const mbedtls_md_info_t *sha256(void)
{
	return mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
}

int flaghook__hmac_sha256(uint8_t out[32], const void *key, size_t key_len,
                          const void *msg, size_t msg_len)
{
	/* mbedtls_md_hmac() rejects a NULL buffer even with length 0. */
	static const uint8_t empty[1];
	if (mbedtls_md_hmac(sha256(), key_len ? key : empty, key_len,
	                    msg_len ? msg : empty, msg_len, out) != 0)
		return FLAGHOOK_ENOMEM;
	return 0;
}

void flaghook__hex(char *out, const uint8_t *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Equal lengths assumed; the time taken does not depend on the contents. */
static int ct_equal(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t d = 0;
	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

int flaghook_sign(char *out, size_t out_size, const char *secret, size_t secret_len,
                  const void *body, size_t body_len)
{
	flaghook__error_clear();
	if (!out || (!secret && secret_len) || (!body && body_len))
		return flaghook__error(FLAGHOOK_EINVAL, "flaghook_sign: out, secret or body is NULL");
	/* An HMAC with an empty key is no signature: anybody can make it. */
	if (!secret_len)
		return flaghook__error(FLAGHOOK_ESECRET, "flaghook_sign: the secret is empty");
	if (out_size < FLAGHOOK_SIGNATURE_HEX_BYTES + 1)
		return flaghook__error(FLAGHOOK_EBUFSIZE, "flaghook_sign: out needs %d bytes",
		                       FLAGHOOK_SIGNATURE_HEX_BYTES + 1);
	uint8_t mac[SHA256_BYTES];
	int rc = flaghook__hmac_sha256(mac, secret, secret_len, body, body_len);
	if (rc)
		return flaghook__error(rc, "flaghook_sign: HMAC failed");
	flaghook__hex(out, mac, sizeof(mac));
	flaghook__wipe(mac, sizeof(mac));
	return 0;
}

int flaghook_verify(const char *secret, size_t secret_len, const void *body, size_t body_len,
                    const char *signature_hex, size_t signature_len)
{
	flaghook__error_clear();
	if ((!secret && secret_len) || (!body && body_len) || !signature_hex)
		return flaghook__error(FLAGHOOK_EINVAL, "flaghook_verify: secret, body or signature is NULL");
	/* Anybody can make the HMAC of an empty key: it proves nothing. */
	if (!secret_len)
		return flaghook__error(FLAGHOOK_ESECRET, "flaghook_verify: the secret is empty");
	if (signature_len != FLAGHOOK_SIGNATURE_HEX_BYTES)
		return flaghook__error(FLAGHOOK_EVERIFY, "signature does not match");
	char expect[FLAGHOOK_SIGNATURE_HEX_BYTES + 1], given[FLAGHOOK_SIGNATURE_HEX_BYTES];
	uint8_t mac[SHA256_BYTES];
	if (flaghook__hmac_sha256(mac, secret, secret_len, body, body_len))
		return flaghook__error(FLAGHOOK_ENOMEM, "flaghook_verify: HMAC failed");
	flaghook__hex(expect, mac, sizeof(mac));
	/* Fold case without branching on the bytes: hex letters differ from
	 * their capitals by 0x20 and no other character is accepted as equal. */
	for (size_t i = 0; i < sizeof(given); i++) {
		unsigned char c = (unsigned char)signature_hex[i];
		unsigned upper = (unsigned)c - 'A' <= (unsigned)('F' - 'A');
		given[i] = (char)(c | (upper << 5));
	}
	int match = ct_equal(expect, given, sizeof(given));
	flaghook__wipe(mac, sizeof(mac));
	flaghook__wipe(expect, sizeof(expect));
	return match ? 0 : flaghook__error(FLAGHOOK_EVERIFY, "signature does not match");
}

/* "whsec_<base64>" (the prefix is optional) to key bytes. */
static int standard_key(uint8_t *key, size_t *key_len, const char *secret)
{
	if (!strncmp(secret, "whsec_", 6))
		secret += 6;
	size_t n = 0;
	if (mbedtls_base64_decode(key, STANDARD_KEY_MAX, &n, (const unsigned char *)secret,
	                          strlen(secret)) != 0 || n == 0)
		return FLAGHOOK_ESECRET;
	*key_len = n;
	return 0;
}

static int standard_mac(uint8_t mac[SHA256_BYTES], const uint8_t *key, size_t key_len,
                        const char *msg_id, const char *ts, const void *body, size_t body_len)
{
	mbedtls_md_context_t ctx;
	mbedtls_md_init(&ctx);
	int rc = mbedtls_md_setup(&ctx, sha256(), 1);
	if (!rc) rc = mbedtls_md_hmac_starts(&ctx, key, key_len);
	if (!rc) rc = mbedtls_md_hmac_update(&ctx, (const unsigned char *)msg_id, strlen(msg_id));
	if (!rc) rc = mbedtls_md_hmac_update(&ctx, (const unsigned char *)".", 1);
	if (!rc) rc = mbedtls_md_hmac_update(&ctx, (const unsigned char *)ts, strlen(ts));
	if (!rc) rc = mbedtls_md_hmac_update(&ctx, (const unsigned char *)".", 1);
	if (!rc && body_len) rc = mbedtls_md_hmac_update(&ctx, body, body_len);
	if (!rc) rc = mbedtls_md_hmac_finish(&ctx, mac);
	mbedtls_md_free(&ctx);
	return rc ? FLAGHOOK_ENOMEM : 0;
}

/* Writes "v1,<base64>" for one key. */
static int standard_signature(char out[STANDARD_SIG_BYTES], const char *secret,
                              const char *msg_id, const char *ts, const void *body, size_t body_len)
{
	uint8_t key[STANDARD_KEY_MAX], mac[SHA256_BYTES];
	size_t key_len = 0, olen = 0;
	int rc = standard_key(key, &key_len, secret);
	if (!rc)
		rc = standard_mac(mac, key, key_len, msg_id, ts, body, body_len);
	if (!rc) {
		memcpy(out, "v1,", 3);
		mbedtls_base64_encode((unsigned char *)out + 3, STANDARD_SIG_BYTES - 3, &olen, mac, sizeof(mac));
	}
	flaghook__wipe(key, sizeof(key));
	flaghook__wipe(mac, sizeof(mac));
	return rc;
}

int flaghook_standard_sign(char *out, size_t out_size, const char *secret, const char *msg_id,
                           int64_t timestamp, const void *body, size_t body_len)
{
	flaghook__error_clear();
	if (!out || !secret || !msg_id || (!body && body_len))
		return flaghook__error(FLAGHOOK_EINVAL, "flaghook_standard_sign: an argument is NULL");
	if (out_size < STANDARD_SIG_BYTES)
		return flaghook__error(FLAGHOOK_EBUFSIZE, "flaghook_standard_sign: out needs %d bytes",
		                       STANDARD_SIG_BYTES);
	char ts[24];
	snprintf(ts, sizeof(ts), "%lld", (long long)timestamp);
	int rc = standard_signature(out, secret, msg_id, ts, body, body_len);
	if (rc == FLAGHOOK_ESECRET)
		return flaghook__error(rc, "standard webhooks secret is not whsec_ followed by base64");
	return rc ? flaghook__error(rc, "flaghook_standard_sign: HMAC failed") : 0;
}

int flaghook_standard_verify(const char *const *secrets, size_t secret_count, const char *msg_id,
                             const char *timestamp, const char *header, const void *body,
                             size_t body_len, int64_t now_s, int64_t tolerance_s)
{
	flaghook__error_clear();
	if ((!secrets && secret_count) || !msg_id || !timestamp || !header || (!body && body_len))
		return flaghook__error(FLAGHOOK_EINVAL, "flaghook_standard_verify: an argument is NULL");
	if (tolerance_s < 0)
		return flaghook__error(FLAGHOOK_EINVAL, "flaghook_standard_verify: tolerance_s is negative "
		                                        "(0 means the specification's %d s)", STANDARD_TOLERANCE_S);
	if (!secret_count)
		return flaghook__error(FLAGHOOK_ESECRET, "flaghook_standard_verify: no secret given");
	/* A secret that is not a key (empty, "whsec_" alone, not base64) is a
	 * configuration error, said as such, not a mismatch to shrug off. */
	for (size_t k = 0; k < secret_count; k++) {
		uint8_t key[STANDARD_KEY_MAX];
		size_t key_len = 0;
		int bad = !secrets[k] || standard_key(key, &key_len, secrets[k]) != 0;
		flaghook__wipe(key, sizeof(key));
		if (bad)
			return flaghook__error(FLAGHOOK_ESECRET,
			                       "flaghook_standard_verify: secrets[%zu] is not whsec_ followed by "
			                       "non-empty base64", k);
	}
	char *end = NULL;
	errno = 0;
	long long ts = strtoll(timestamp, &end, 10);
	if (!*timestamp || *end || errno == ERANGE)
		return flaghook__error(FLAGHOOK_EVERIFY, "webhook-timestamp is not a number");
	/* 0 is the specification's five minutes, never "any age": a replay
	 * of a year-old message must not pass because a caller meant
	 * "default".  The window saturates instead of overflowing. */
	int64_t tol = tolerance_s ? tolerance_s : STANDARD_TOLERANCE_S;
	if (ts < flaghook__sat_add(now_s, -tol) || ts > flaghook__sat_add(now_s, tol))
		return flaghook__error(FLAGHOOK_EVERIFY, "webhook-timestamp is outside the tolerance");
	int match = 0;
	for (size_t k = 0; k < secret_count; k++) {
		char expect[STANDARD_SIG_BYTES];
		if (standard_signature(expect, secrets[k], msg_id, timestamp, body, body_len))
			continue;
		size_t elen = strlen(expect);
		/* Every entry is compared, matched or not, so timing says nothing
		 * about which one matched. */
		for (const char *p = header; *p;) {
			while (*p == ' ')
				p++;
			const char *q = p;
			while (*q && *q != ' ')
				q++;
			if ((size_t)(q - p) == elen)
				match |= ct_equal(p, expect, elen);
			p = q;
		}
		flaghook__wipe(expect, sizeof(expect));
	}
	return match ? 0 : flaghook__error(FLAGHOOK_EVERIFY, "signature does not match");
}
