/* Certificates: CSRs and certificates signed inside the token (the built-in
 * CA's key lives there too), and the checks an imported certificate must
 * pass. Uses OpenSSL for encoding only; every signature comes from srv_hsm. */
#ifndef SRV_PKI_H
#define SRV_PKI_H
#include <stddef.h>
#include <time.h>
#include "rsign/alg.h"
#include "hsm.h"

/* A key as the PKI code needs it. */
typedef struct {
	rs_key_alg alg;
	unsigned char ckid[SRV_CKID_LEN];
	const unsigned char *spki; /* DER SubjectPublicKeyInfo */
	size_t spki_len;
} srv_pki_key;

/* What rsignd keeps of a certificate after checking it. */
typedef struct {
	char *common_name; /* subject CN, "" when none */
	char *serial;	   /* upper-case hex */
	time_t not_before, not_after;
	unsigned char *spki; /* the certificate's public key, DER */
	size_t spki_len;
	char *cert_pem;	 /* normalised: exactly one PEM block */
	char *chain_pem; /* normalised chain PEM blocks, "" when none */
} srv_cert_info;

void srv_cert_info_free(srv_cert_info *ci); /* frees members; NULL-safe */

/* Failures of the functions below are negative and say which HTTP status
 * fits; err always holds a sentence. -1 is the caller's input (400). */
enum {
	SRV_PKI_OK = 0,
	SRV_PKI_EINVAL = -1,   /* bad subject, name, dates, certificate: 400 */
	SRV_PKI_EUNAVAIL = -2, /* the token cannot be reached: 503 */
	SRV_PKI_EFAIL = -3,    /* anything else: 500 */
};

/* Subject in OpenSSL one-line form "/CN=x/O=y" or RFC 4514 "CN=x,O=y".
 * Returns a PEM CSR signed by the key inside the token. 0 or SRV_PKI_E* + err. */
int srv_pki_csr(srv_hsm *h, const srv_pki_key *key, const char *subject, char **csr_pem, char *err,
		size_t errlen) __attribute__((warn_unused_result));

/* Self-signed CA certificate (basicConstraints CA:TRUE, keyCertSign|cRLSign). */
int srv_pki_ca_create(srv_hsm *h, const srv_pki_key *ca, const char *common_name, int days,
		      char **cert_pem, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Code-signing certificate for key, issued by the CA: CA:FALSE,
 * digitalSignature, EKU codeSigning, SKI/AKI, random 16-byte serial, valid
 * from not_before to not_after. */
int srv_pki_issue(srv_hsm *h, const srv_pki_key *ca, const char *ca_cert_pem,
		  const srv_pki_key *key, const char *common_name, time_t not_before,
		  time_t not_after, char **cert_pem, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* What a certificate the CA issues is for: code signing (above), or a
 * time-stamp authority (the same, but the extended key usage is critical
 * and timeStamping only, as RFC 3161 2.3 requires). */
typedef enum { SRV_PKI_CODE_SIGNING = 0, SRV_PKI_TSA } srv_pki_profile;
int srv_pki_issue_as(srv_hsm *h, const srv_pki_key *ca, const char *ca_cert_pem,
		     const srv_pki_key *key, srv_pki_profile profile, const char *common_name,
		     time_t not_before, time_t not_after, char **cert_pem, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The signature the built-in keys make (sha256WithRSAEncryption for RSA,
 * ECDSA with the curve's hash) and its OpenSSL NID. 0 or -1. */
int srv_pki_sig_alg(rs_key_alg k, rs_sign_alg *sa, int *nid);
/* Hashes tbs with sa's hash and has the token sign it with key; sig holds
 * 1024 bytes (ECDSA: a DER ECDSA-Sig-Value). SRV_PKI_OK or SRV_PKI_E* + err
 * (EUNAVAIL: the token is down). */
int srv_pki_token_sign(srv_hsm *h, const srv_pki_key *key, rs_sign_alg sa, const unsigned char *tbs,
		       size_t tbs_len, unsigned char *sig, size_t *sig_len, char *err,
		       size_t errlen) __attribute__((warn_unused_result));

/* Parses and checks a certificate for use by a signer: one PEM certificate,
 * codeSigning in its EKU, and, when chain_pem is given (may be NULL/""), every
 * chain entry parses and the certificate's signature verifies against the
 * first chain certificate. Does not check validity dates (callers do, at
 * sign time). 0, or -1 with a sentence for the API in err (SRV_PKI_EFAIL when
 * out of memory). */
int srv_pki_parse_cert(const char *cert_pem, const char *chain_pem, srv_cert_info *out, char *err,
		       size_t errlen) __attribute__((warn_unused_result));

/* The same for profile: SRV_PKI_TSA wants, instead of codeSigning, the
 * extended key usage critical and timeStamping only. */
int srv_pki_parse_cert_as(const char *cert_pem, const char *chain_pem, srv_pki_profile profile,
			  srv_cert_info *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Standard base64 of DER, one line, for the API's publicKey fields (malloc'd,
 * NULL on failure). */
char *srv_pki_b64_der(const unsigned char *der, size_t len);

#endif
