/* Hashes, the PKCS#1 DigestInfo, and ECDSA DER <-> r||s. */
#ifndef RSIGN_DER_H
#define RSIGN_DER_H
#include <stddef.h>
#include <openssl/types.h>

typedef enum { RS_HASH_SHA256 = 0, RS_HASH_SHA384, RS_HASH_SHA512, RS_HASH_NONE } rs_hash;

size_t rs_hash_len(rs_hash h);
/* By digest length: 32/48/64 -> SHA-256/384/512, else RS_HASH_NONE. */
rs_hash rs_hash_by_len(size_t len);
const char *rs_hash_name(rs_hash h); /* "SHA256" ... */
/* OpenSSL's digest for h; NULL for RS_HASH_NONE or a value out of range. */
const EVP_MD *rs_hash_md(rs_hash h);
/* One-shot digest; out must hold 64 bytes. 0 or -1. */
int rs_hash_compute(rs_hash h, const void *data, size_t len, unsigned char *out)
	__attribute__((warn_unused_result));

#define RS_DIGESTINFO_MAX 83
/* DigestInfo DER for h over dig (must be rs_hash_len(h) bytes). 0 or -1. */
int rs_der_digestinfo_build(rs_hash h, const unsigned char *dig, size_t diglen, unsigned char *out,
			    size_t outmax, size_t *outlen) __attribute__((warn_unused_result));
/* Recognises a SHA-256/384/512 DigestInfo (with or without NULL params).
 * *dig points into in. 0 or -1. */
int rs_der_digestinfo_parse(const unsigned char *in, size_t inlen, rs_hash *h,
			    const unsigned char **dig, size_t *diglen)
	__attribute__((warn_unused_result));

/* DER ECDSA-Sig-Value -> r||s with each half exactly half bytes. 0 or -1. */
int rs_der_ecdsa_to_raw(const unsigned char *der, size_t derlen, size_t half, unsigned char *out)
	__attribute__((warn_unused_result));
/* r||s (even length) -> DER ECDSA-Sig-Value. 0 or -1. */
int rs_der_ecdsa_from_raw(const unsigned char *raw, size_t rawlen, unsigned char *out,
			  size_t outmax, size_t *outlen) __attribute__((warn_unused_result));

#endif
