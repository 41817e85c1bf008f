/* JSON Web Tokens (RFC 7519) as OIDC issuers sign them: the compact form
 * parsed into its header and claims, and its signature checked with a key
 * of the issuer's JWKS (jwks.h). Only RS256/384/512 and ES256/384 are
 * accepted: `none`, HS* and everything else are refused before any key is
 * looked at. Nothing here logs a token. */
#ifndef SRV_JWT_H
#define SRV_JWT_H
#include <stddef.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>

#define SRV_JWT_MAX 16384 /* a longer token is refused unparsed */
#define SRV_JWT_KID_MAX 128

typedef enum {
	SRV_JWT_OK = 0,
	SRV_JWT_MALFORMED, /* not three base64url parts of JSON objects, or too long */
	SRV_JWT_ALG,	   /* an algorithm outside the allow-list */
	SRV_JWT_SIGNATURE, /* the signature does not verify with the key */
} srv_jwt_rc;

typedef enum {
	SRV_JWT_RS256,
	SRV_JWT_RS384,
	SRV_JWT_RS512,
	SRV_JWT_ES256,
	SRV_JWT_ES384
} srv_jwt_alg;

typedef struct {
	srv_jwt_alg alg;
	char kid[SRV_JWT_KID_MAX + 1]; /* "" when the header has none */
	cJSON *claims;		       /* the payload object */
	size_t signed_len;	       /* header.payload: the first signed_len bytes of the token */
	unsigned char *sig;
	size_t sig_len;
} srv_jwt;

/* Parses token (NUL-terminated). On SRV_JWT_OK *out holds the parts (free
 * with srv_jwt_clear); otherwise out is left empty. */
srv_jwt_rc srv_jwt_parse(const char *token, srv_jwt *out);
void srv_jwt_clear(srv_jwt *j);
/* The signature of token (the one j was parsed from) under key: OK, ALG
 * when key is not of the kind j's alg needs, SIGNATURE when it fails. */
srv_jwt_rc srv_jwt_verify(const srv_jwt *j, const char *token, EVP_PKEY *key);
/* "RS256" ... */
const char *srv_jwt_alg_name(srv_jwt_alg a);

/* base64url without padding (RFC 7515 section 2): 0, or -1 on a character
 * outside the alphabet, padding, bad trailing bits or more than outmax. */
int srv_b64url_decode(const char *s, size_t n, unsigned char *out, size_t outmax, size_t *outlen);

#endif
