/* Checking TLS settings when they are set, not at the first delivery. */
#ifndef FLAGHOOK_NET_TLS_H
#define FLAGHOOK_NET_TLS_H

/* Each argument may be NULL.  A CA file must hold at least one
 * certificate, a CA path must be a readable directory, a client
 * certificate and key come together, load (the key with `password`) and
 * match.  0, or FLAGHOOK_EINVAL with a detail that names `what` and the
 * file, never the password. */
int flaghook__tls_check(const char *what, const char *ca_file, const char *ca_path,
                        const char *client_cert, const char *client_key, const char *password);

#endif
