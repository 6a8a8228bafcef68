/* TLS settings: see tls.h.  mbedTLS parses the files here; the transport
 * (libcurl with its own TLS library) uses them. */
#include "net/tls.h"
#include "internal.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/pkcs5.h>
#include <mbedtls/x509_crt.h>

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A path that is not there or not the right kind says so plainly. */
static int check_path(const char *what, const char *field, const char *path, bool dir)
{
	struct stat st;
	const char *why = NULL;
	if (stat(path, &st) != 0)
		why = strerror(errno);
	else if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
		why = dir ? "not a directory" : "not a regular file";
	else if (access(path, dir ? R_OK | X_OK : R_OK) != 0)
		why = strerror(errno);
	if (why)
		return flaghook__error(FLAGHOOK_EINVAL, "%s %s %s: %s", what, field, path, why);
	return 0;
}

static int key_matches(mbedtls_x509_crt *crt, mbedtls_pk_context *key)
{
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_entropy_init(&entropy);
	mbedtls_ctr_drbg_init(&drbg);
	int rc = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0);
	if (!rc)
		rc = mbedtls_pk_check_pair(&crt->pk, key, mbedtls_ctr_drbg_random, &drbg);
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&entropy);
	return rc == 0;
#else
	return mbedtls_pk_check_pair(&crt->pk, key) == 0;
#endif
}

int flaghook__tls_check(const char *what, const char *ca_file, const char *ca_path,
                        const char *client_cert, const char *client_key, const char *password)
{
	int rc = 0;
	if (ca_file && (rc = check_path(what, "ca_file", ca_file, false)))
		return rc;
	if (ca_path && (rc = check_path(what, "ca_path", ca_path, true)))
		return rc;
	if (!client_cert != !client_key)
		return flaghook__error(FLAGHOOK_EINVAL, "%s: client_cert and client_key come together", what);
	if (password && !client_key)
		return flaghook__error(FLAGHOOK_EINVAL, "%s: client_key_password without a client_key", what);
	if (client_cert && ((rc = check_path(what, "client_cert", client_cert, false)) ||
	                    (rc = check_path(what, "client_key", client_key, false))))
		return rc;
	if (ca_file) {
		mbedtls_x509_crt cas;
		mbedtls_x509_crt_init(&cas);
		/* A positive result counts certificates it skipped: fine when at
		 * least one loaded. */
		int prc = mbedtls_x509_crt_parse_file(&cas, ca_file);
		bool any = prc >= 0 && cas.version != 0;
		mbedtls_x509_crt_free(&cas);
		if (!any)
			return flaghook__error(FLAGHOOK_EINVAL, "%s ca_file %s: holds no PEM certificate", what, ca_file);
	}
	if (!client_cert)
		return 0;
	mbedtls_x509_crt crt;
	mbedtls_pk_context key;
	mbedtls_x509_crt_init(&crt);
	mbedtls_pk_init(&key);
	if (mbedtls_x509_crt_parse_file(&crt, client_cert) != 0) {
		rc = flaghook__error(FLAGHOOK_EINVAL, "%s client_cert %s: not a PEM certificate", what, client_cert);
	} else {
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
		mbedtls_entropy_context entropy;
		mbedtls_ctr_drbg_context drbg;
		mbedtls_entropy_init(&entropy);
		mbedtls_ctr_drbg_init(&drbg);
		mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0);
		int krc = mbedtls_pk_parse_keyfile(&key, client_key, password, mbedtls_ctr_drbg_random, &drbg);
		mbedtls_ctr_drbg_free(&drbg);
		mbedtls_entropy_free(&entropy);
#else
		int krc = mbedtls_pk_parse_keyfile(&key, client_key, password);
#endif
		if (krc == MBEDTLS_ERR_PKCS5_FEATURE_UNAVAILABLE && password) {
			/* PKCS#8 encrypted with a cipher mbedTLS cannot decrypt (AES
			 * under PBES2) but libcurl's TLS library can: the file is
			 * there and is a key; its password and its match with the
			 * certificate are checked by the first handshake. */
			rc = 0;
		} else if (krc != 0) {
			rc = flaghook__error(FLAGHOOK_EINVAL, "%s client_key %s: cannot be loaded (%s)", what, client_key,
			                     password ? "a wrong password, or not a PEM key"
			                              : "not a PEM key, or encrypted: give client_key_password");
		} else if (!key_matches(&crt, &key))
			rc = flaghook__error(FLAGHOOK_EINVAL, "%s client_key %s does not match client_cert %s", what,
			                     client_key, client_cert);
	}
	mbedtls_pk_free(&key);
	mbedtls_x509_crt_free(&crt);
	return rc;
}
