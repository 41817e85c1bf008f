/* Keys and certificates for the fake rsignd (fake_pki.c). */
#ifndef FAKE_PKI_H
#define FAKE_PKI_H
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "rsign/alg.h"

/* malloc'd PEM text, NULL on failure. */
char *fake_pem_of_cert(X509 *x);
char *fake_pem_of_key(EVP_PKEY *k);
EVP_PKEY *fake_keygen(rs_key_alg alg);
/* A certificate for key, signed by issuer_key (self-signed when issuer is
 * NULL). kind: 0 CA, 1 code signing, 2 TLS server for 127.0.0.1. */
X509 *fake_make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, int kind,
		     long serial);

#endif
