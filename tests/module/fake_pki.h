/* Keys, certificates and signatures for the fake rsignd (fake_pki.c). */
#ifndef FAKE_PKI_H
#define FAKE_PKI_H
#include <time.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "rsign/alg.h"

/* malloc'd PEM text, NULL on failure. */
char *fake_pem_of_cert(X509 *x);
char *fake_pem_of_key(EVP_PKEY *k);
EVP_PKEY *fake_keygen(rs_key_alg alg);
/* A certificate for key, signed by issuer_key (self-signed when issuer is
 * NULL). kind: 0 CA, 1 code signing, 2 TLS server for 127.0.0.1. Valid
 * from not_before to not_after; 0 and 0: from an hour ago for 30 days. */
X509 *fake_make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, int kind,
		     long serial, time_t not_before, time_t not_after);
/* Signs a digest of dlen bytes as alg (salt: PSS salt length) into out;
 * *outlen holds its size. 0 or -1. */
int fake_sign_digest(EVP_PKEY *key, rs_sign_alg alg, const unsigned char *dig, size_t dlen,
		     long salt, unsigned char *out, size_t *outlen);

#endif
