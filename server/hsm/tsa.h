/* The time-stamp authority's cryptography (RFC 3161): a query parsed and
 * judged, the TSTInfo and its CMS SignedData built, the signed attributes
 * signed in the token, the reply parsed back and verified before it is
 * handed out. OpenSSL only encodes and verifies: it never holds a key. */
#ifndef SRV_TSA_H
#define SRV_TSA_H
#include <stddef.h>
#include <time.h>
#include "pki.h"

/* PKIFailureInfo bits (RFC 3161 2.4.2) */
enum {
	SRV_TSA_BAD_ALG = 0,
	SRV_TSA_BAD_REQUEST = 2,
	SRV_TSA_BAD_DATA_FORMAT = 5,
	SRV_TSA_TIME_NOT_AVAILABLE = 14,
	SRV_TSA_UNACCEPTED_POLICY = 15,
	SRV_TSA_UNACCEPTED_EXTENSION = 16,
	SRV_TSA_SYSTEM_FAILURE = 25,
};

#define SRV_TSA_SERIAL_LEN 16 /* bytes: 128 bits, the first forced to 0x40..0x7f */
#define SRV_TSA_QUERY_MAX 16384

/* The authority that stamps: its key in the token, its certificate and the
 * issuers above it (PEM; "" = none), what its tokens say. */
typedef struct {
	srv_hsm *hsm;
	srv_pki_key key;
	const char *cert_pem;
	const char *chain_pem;
	const char *policy_oid; /* dotted decimal */
	long long accuracy_seconds;
} srv_tsa_signer;

/* What a stamp produced. On success der is the whole TimeStampResp
 * (granted), malloc'd; serial, imprint_alg and imprint describe it. On a
 * refusal fail_bit is the PKIFailureInfo and text says why (der NULL). */
typedef struct {
	unsigned char *der;
	size_t der_len;
	int fail_bit;	/* -1 when granted */
	int token_down; /* the refusal is the token's: unreachable now */
	char text[200];
	char serial[2 * SRV_TSA_SERIAL_LEN + 1]; /* upper-case hex */
	char imprint_alg[8];			 /* "SHA256" ... */
	char imprint[129];			 /* hex */
} srv_tsa_result;

/* Checks query (DER TimeStampReq): version 1, a SHA-256/384/512 imprint of
 * the right length, no extensions, no policy or the TSA's. Fills
 * imprint_alg and imprint of res. 0, or -1 with res->fail_bit and text. */
int srv_tsa_check_query(const char *policy_oid, const unsigned char *query, size_t len,
			srv_tsa_result *res);

/* Stamps query at now with serial (SRV_TSA_SERIAL_LEN bytes): 0 with
 * res->der, or -1 with res->fail_bit (systemFailure when the token is down
 * or the reply does not verify) and text. */
int srv_tsa_stamp(const srv_tsa_signer *s, const unsigned char *query, size_t len,
		  const unsigned char *serial, time_t now, srv_tsa_result *res);

/* The legacy Authenticode protocol (osslsigncode -t, signtool /t): request
 * is the DER TimeStampRequest (already base64-decoded); res->der gets the
 * PKCS#7 SignedData whose SignerInfo countersigns the request's signature
 * (signed in the token, verified before it is returned), imprint_alg and
 * imprint the hash of that signature. No serial: the protocol has none.
 * 0, or -1 with res->fail_bit (badDataFormat, systemFailure) and text. */
int srv_tsa_authenticode(const srv_tsa_signer *s, const unsigned char *request, size_t len,
			 time_t now, srv_tsa_result *res);

/* A rejection reply (PKIStatus rejection, fail_bit, text). 0 or -1. */
int srv_tsa_reject_der(int fail_bit, const char *text, unsigned char **der, size_t *len);

void srv_tsa_result_free(srv_tsa_result *res); /* frees der; NULL-safe */

#endif
