/* Signatures: the one place one is made or checked (sign.c). */
#ifndef FLAGHOOK_PAYLOAD_SIGN_H
#define FLAGHOOK_PAYLOAD_SIGN_H

#include "internal.h"

int flaghook__hmac_sha256(uint8_t out[32], const void *key, size_t key_len,
                          const void *a, size_t a_len);
void flaghook__hex(char *out, const uint8_t *in, size_t n);

#endif
