/* The HTTPS daemon's certificate and key, swappable while it serves
 * (SIGHUP): GnuTLS asks for them at each handshake. */
#ifndef SRV_HTTP_TLS_H
#define SRV_HTTP_TLS_H
#include <stddef.h>
#include <gnutls/abstract.h>

typedef int (*srv_tls_callback)(gnutls_session_t, const gnutls_datum_t *, int,
				const gnutls_pk_algorithm_t *, int, gnutls_pcert_st **,
				unsigned int *, gnutls_privkey_t *);

/* Loads the pair (PEM: the certificate, then its chain; the key, which
 * must be the certificate's) for the process's one reloadable daemon and
 * returns the callback for MHD_OPTION_HTTPS_CERT_CALLBACK. NULL + err on a
 * bad pair; NULL with err "" when another daemon of the process holds it
 * (that one then serves fixed files). */
srv_tls_callback srv_tls_claim(const char *cert_pem, const char *key_pem, char *err, size_t errlen);
/* Puts in a new pair for the handshakes to come; on a bad pair -1 + err
 * and the old pair stays. Each replaced pair is kept until
 * srv_tls_release (a session may still point at it): a few KiB a reload. */
int srv_tls_reload(const char *cert_pem, const char *key_pem, char *err, size_t errlen);
/* After the daemon has stopped: frees every pair, frees the claim. */
void srv_tls_release(void);

#endif
