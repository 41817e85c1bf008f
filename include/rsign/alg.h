/* The signing and key algorithms of the API, shared by rsignd, rsignctl and
 * the module. Names are the API's spellings. */
#ifndef RSIGN_ALG_H
#define RSIGN_ALG_H
#include <stddef.h>
#include "rsign/der.h"

typedef enum {
	RS_ALG_RSA_PKCS1_SHA256 = 0,
	RS_ALG_RSA_PKCS1_SHA384,
	RS_ALG_RSA_PKCS1_SHA512,
	RS_ALG_RSA_PSS_SHA256,
	RS_ALG_RSA_PSS_SHA384,
	RS_ALG_RSA_PSS_SHA512,
	RS_ALG_ECDSA_SHA256,
	RS_ALG_ECDSA_SHA384,
	RS_ALG_ECDSA_SHA512,
	RS_ALG_COUNT
} rs_sign_alg;

typedef enum {
	RS_KEY_RSA_2048 = 0,
	RS_KEY_RSA_3072,
	RS_KEY_RSA_4096,
	RS_KEY_EC_P256,
	RS_KEY_EC_P384,
	RS_KEY_EC_P521,
	RS_KEY_COUNT
} rs_key_alg;

const char *rs_sign_alg_name(rs_sign_alg a);
/* Accepts "RSASSA_PSS_SHA256" and the alias "RSASSA_PSS_SHA_256". 0 or -1. */
int rs_sign_alg_parse(const char *s, rs_sign_alg *out) __attribute__((warn_unused_result));
rs_hash rs_sign_alg_hash(rs_sign_alg a);
int rs_sign_alg_is_rsa(rs_sign_alg a);
int rs_sign_alg_is_pss(rs_sign_alg a);
int rs_sign_alg_is_ecdsa(rs_sign_alg a);

const char *rs_key_alg_name(rs_key_alg k);
int rs_key_alg_parse(const char *s, rs_key_alg *out) __attribute__((warn_unused_result));
int rs_key_alg_is_rsa(rs_key_alg k);
int rs_key_alg_bits(rs_key_alg k); /* modulus bits or curve field bits */
/* Bytes of a raw signature: modulus length for RSA, 2 * field bytes for EC. */
size_t rs_key_alg_sig_len(rs_key_alg k);
/* The signing algorithm applies to this key type. */
int rs_alg_fits_key(rs_sign_alg a, rs_key_alg k);

#endif
