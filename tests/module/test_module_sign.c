/* Signing through the module against the fake rsignd: every mechanism on the
 * RSA-2048 and EC P-256 signers, each signature checked by OpenSSL against
 * the signer's certificate; what the server is asked; parameter and input
 * checks; the length conventions without a round trip; multi-part; local
 * verification; connection reuse; 8 threads signing at once. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "rsign/base64.h"
#include "rsign/der.h"
#include "rsign/json.h"
#include "tests/unit/tap.h"

#include "modtest.h"

static fake_server *f;
static CK_SESSION_HANDLE srsa, sec;
static CK_OBJECT_HANDLE krsa, kec, pubrsa, pubec;
static X509 *crsa, *cec;
static const unsigned char msg[] = "rsign: sign this build artefact";

static void digest(const EVP_MD *md, const unsigned char *p, size_t n, unsigned char *out,
		   size_t *len)
{
	unsigned int l = 0;

	EVP_Digest(p, n, out, &l, md, NULL);
	*len = l;
}

/* What the server was asked last: algorithm, isDigest, data length, salt. */
static int last_request_is(const char *alg, size_t data_len, long salt)
{
	char *body = fake_last_sign_body(f);
	cJSON *o = body ? rs_json_parse(body, strlen(body), 8) : NULL;
	const char *a = NULL, *d = NULL;
	unsigned char buf[256];
	size_t n = 0;
	long long s = -1;
	int dig = 0, good;

	good = o && rs_json_str(o, "signingAlgorithm", 1, 64, &a) == RS_JSON_OK &&
	       rs_json_str(o, "data", 1, 1024, &d) == RS_JSON_OK &&
	       rs_json_bool(o, "isDigest", 1, &dig) == RS_JSON_OK &&
	       rs_json_int(o, "pssSaltLength", 0, 0, 4096, &s) == RS_JSON_OK &&
	       strcmp(a, alg) == 0 && dig &&
	       rs_b64_decode(d, strlen(d), buf, sizeof(buf), &n) == RS_B64_OK && n == data_len &&
	       s == salt;
	cJSON_Delete(o);
	free(body);
	return good;
}

static void check_mech(const char *name, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k, X509 *cert,
		       CK_MECHANISM *m, const unsigned char *in, size_t inlen, size_t want_len,
		       const char *alg, size_t sent_len, long salt)
{
	unsigned char sig[512];
	CK_ULONG siglen = sizeof(sig);
	CK_RV rv = mt_sign(s, k, m, in, inlen, sig, &siglen);

	ok(rv == CKR_OK && siglen == want_len && mt_verify(cert, m, in, inlen, sig, siglen),
	   "sign_%s_verifies_with_openssl", name);
	ok(last_request_is(alg, sent_len, salt), "sign_%s_sends_%s_digest", name, alg);
}

/* Every mechanism on the RSA-2048 and EC P-256 signers: what the module is
 * given (the message, its digest, or a DigestInfo of it) and what it must
 * send the server. */
enum { IN_MESSAGE, IN_DIGEST, IN_DIGESTINFO };

static CK_RSA_PKCS_PSS_PARAMS pss256 = {CKM_SHA256, CKG_MGF1_SHA256, 32};
static CK_RSA_PKCS_PSS_PARAMS pss256max = {CKM_SHA256, CKG_MGF1_SHA256, 256 - 32 - 2};
static CK_RSA_PKCS_PSS_PARAMS pss256zero = {CKM_SHA256, CKG_MGF1_SHA256, 0};
static CK_RSA_PKCS_PSS_PARAMS pss384 = {CKM_SHA384, CKG_MGF1_SHA384, 48};
static CK_RSA_PKCS_PSS_PARAMS pss512 = {CKM_SHA512, CKG_MGF1_SHA512, 64};

static const struct mech_case {
	const char *name;
	int ec;
	CK_MECHANISM_TYPE mech;
	CK_RSA_PKCS_PSS_PARAMS *pss;
	int input;
	rs_hash hash; /* of the digest the module is given */
	const char *alg;
	size_t sent_len;
	long salt;
} mech_cases[] = {
	{"rsa_pkcs_digestinfo_sha256", 0, CKM_RSA_PKCS, NULL, IN_DIGESTINFO, RS_HASH_SHA256,
	 "RSASSA_PKCS1_V1_5_SHA256", 32, -1},
	{"rsa_pkcs_digestinfo_sha384", 0, CKM_RSA_PKCS, NULL, IN_DIGESTINFO, RS_HASH_SHA384,
	 "RSASSA_PKCS1_V1_5_SHA384", 48, -1},
	{"rsa_pkcs_digestinfo_sha512", 0, CKM_RSA_PKCS, NULL, IN_DIGESTINFO, RS_HASH_SHA512,
	 "RSASSA_PKCS1_V1_5_SHA512", 64, -1},
	{"sha256_rsa_pkcs", 0, CKM_SHA256_RSA_PKCS, NULL, IN_MESSAGE, RS_HASH_NONE,
	 "RSASSA_PKCS1_V1_5_SHA256", 32, -1},
	{"sha384_rsa_pkcs", 0, CKM_SHA384_RSA_PKCS, NULL, IN_MESSAGE, RS_HASH_NONE,
	 "RSASSA_PKCS1_V1_5_SHA384", 48, -1},
	{"sha512_rsa_pkcs", 0, CKM_SHA512_RSA_PKCS, NULL, IN_MESSAGE, RS_HASH_NONE,
	 "RSASSA_PKCS1_V1_5_SHA512", 64, -1},
	{"rsa_pkcs_pss_sha256", 0, CKM_RSA_PKCS_PSS, &pss256, IN_DIGEST, RS_HASH_SHA256,
	 "RSASSA_PSS_SHA256", 32, 32},
	{"rsa_pkcs_pss_max_salt", 0, CKM_RSA_PKCS_PSS, &pss256max, IN_DIGEST, RS_HASH_SHA256,
	 "RSASSA_PSS_SHA256", 32, 222},
	{"rsa_pkcs_pss_zero_salt", 0, CKM_RSA_PKCS_PSS, &pss256zero, IN_DIGEST, RS_HASH_SHA256,
	 "RSASSA_PSS_SHA256", 32, 0},
	{"rsa_pkcs_pss_sha384", 0, CKM_RSA_PKCS_PSS, &pss384, IN_DIGEST, RS_HASH_SHA384,
	 "RSASSA_PSS_SHA384", 48, 48},
	{"rsa_pkcs_pss_sha512", 0, CKM_RSA_PKCS_PSS, &pss512, IN_DIGEST, RS_HASH_SHA512,
	 "RSASSA_PSS_SHA512", 64, 64},
	{"sha256_rsa_pkcs_pss", 0, CKM_SHA256_RSA_PKCS_PSS, &pss256, IN_MESSAGE, RS_HASH_NONE,
	 "RSASSA_PSS_SHA256", 32, 32},
	{"sha384_rsa_pkcs_pss", 0, CKM_SHA384_RSA_PKCS_PSS, &pss384, IN_MESSAGE, RS_HASH_NONE,
	 "RSASSA_PSS_SHA384", 48, 48},
	{"sha512_rsa_pkcs_pss", 0, CKM_SHA512_RSA_PKCS_PSS, &pss512, IN_MESSAGE, RS_HASH_NONE,
	 "RSASSA_PSS_SHA512", 64, 64},
	{"ecdsa_sha256_hash", 1, CKM_ECDSA, NULL, IN_DIGEST, RS_HASH_SHA256, "ECDSA_SHA256", 32,
	 -1},
	{"ecdsa_sha384_hash_on_p256", 1, CKM_ECDSA, NULL, IN_DIGEST, RS_HASH_SHA384, "ECDSA_SHA384",
	 48, -1},
	{"ecdsa_sha512_hash_on_p256", 1, CKM_ECDSA, NULL, IN_DIGEST, RS_HASH_SHA512, "ECDSA_SHA512",
	 64, -1},
	{"ecdsa_sha256", 1, CKM_ECDSA_SHA256, NULL, IN_MESSAGE, RS_HASH_NONE, "ECDSA_SHA256", 32,
	 -1},
	{"ecdsa_sha384", 1, CKM_ECDSA_SHA384, NULL, IN_MESSAGE, RS_HASH_NONE, "ECDSA_SHA384", 48,
	 -1},
	{"ecdsa_sha512", 1, CKM_ECDSA_SHA512, NULL, IN_MESSAGE, RS_HASH_NONE, "ECDSA_SHA512", 64,
	 -1},
};

static void test_mechanisms(void)
{
	for (size_t i = 0; i < TAP_COUNT(mech_cases); i++) {
		const struct mech_case *c = &mech_cases[i];
		CK_MECHANISM m = {c->mech, c->pss, c->pss ? sizeof(*c->pss) : 0};
		unsigned char dig[64], di[RS_DIGESTINFO_MAX];
		const unsigned char *in = msg;
		size_t inlen = sizeof(msg), dlen = rs_hash_len(c->hash);

		/* a digest that cannot be made is an empty input: both checks fail */
		if (c->input != IN_MESSAGE) {
			in = dig;
			inlen = rs_hash_compute(c->hash, msg, sizeof(msg), dig) == 0 ? dlen : 0;
		}
		if (c->input == IN_DIGESTINFO) {
			in = di;
			if (!inlen || rs_der_digestinfo_build(c->hash, dig, dlen, di, sizeof(di),
							      &inlen) != 0)
				inlen = 0;
		}
		check_mech(c->name, c->ec ? sec : srsa, c->ec ? kec : krsa, c->ec ? cec : crsa, &m,
			   in, inlen, c->ec ? 64 : 256, c->alg, c->sent_len, c->salt);
	}
}

static void test_metadata(void)
{
	char *body = fake_last_sign_body(f), host[256];
	cJSON *o = body ? rs_json_parse(body, strlen(body), 8) : NULL, *meta;
	const char *tool = NULL, *h = NULL;

	gethostname(host, sizeof(host));
	meta = o ? cJSON_GetObjectItemCaseSensitive(o, "clientMetadata") : NULL;
	ok(meta && rs_json_str(meta, "tool", 1, 256, &tool) == RS_JSON_OK &&
		   strcmp(tool, "test_module_sign") == 0,
	   "sign_sends_program_name_as_client_metadata_tool");
	ok(meta && rs_json_str(meta, "hostname", 1, 256, &h) == RS_JSON_OK && strcmp(h, host) == 0,
	   "sign_sends_hostname_as_client_metadata");
	cJSON_Delete(o);
	free(body);
}

static CK_RV init_only(CK_SESSION_HANDLE s, CK_MECHANISM_TYPE t, void *param, CK_ULONG plen,
		       CK_OBJECT_HANDLE k)
{
	CK_MECHANISM m = {t, param, plen};
	CK_RV rv = p11->C_SignInit(s, &m, k);
	unsigned char sig[512];
	CK_ULONG n = sizeof(sig);

	if (rv == CKR_OK) /* end it again */
		p11->C_Sign(s, (CK_BYTE_PTR)msg, 1, sig, &n);
	return rv;
}

static void test_rejections(void)
{
	CK_RSA_PKCS_PSS_PARAMS mgf_mismatch = {CKM_SHA256, CKG_MGF1_SHA384, 32};
	CK_RSA_PKCS_PSS_PARAMS sha1 = {CKM_SHA_1, CKG_MGF1_SHA1, 20};
	CK_RSA_PKCS_PSS_PARAMS too_much_salt = {CKM_SHA256, CKG_MGF1_SHA256, 223};
	CK_RSA_PKCS_PSS_PARAMS p384 = {CKM_SHA384, CKG_MGF1_SHA384, 48};
	CK_MECHANISM m = {CKM_RSA_PKCS, NULL, 0};
	unsigned char sig[512], dig[64];
	CK_ULONG n = sizeof(sig);
	int before = fake_count(f, CNT_SIGN);
	CK_OBJECT_HANDLE cert = mt_find(srsa, CKO_CERTIFICATE);

	ok(mt_sign(srsa, krsa, &m, msg, sizeof(msg), sig, &n) == CKR_DATA_INVALID,
	   "rsa_pkcs_without_digestinfo_is_data_invalid");
	m.mechanism = CKM_ECDSA;
	memset(dig, 7, 20);
	n = sizeof(sig);
	ok(mt_sign(sec, kec, &m, dig, 20, sig, &n) == CKR_DATA_LEN_RANGE,
	   "ecdsa_with_sha1_length_input_is_data_len_range");
	m.mechanism = CKM_RSA_PKCS_PSS;
	m.pParameter = &p384;
	m.ulParameterLen = sizeof(p384);
	n = sizeof(sig);
	ok(mt_sign(srsa, krsa, &m, dig, 32, sig, &n) == CKR_DATA_LEN_RANGE,
	   "rsa_pkcs_pss_input_not_of_params_hash_length_is_data_len_range");
	ok(fake_count(f, CNT_SIGN) == before, "rejected_input_makes_no_server_call");

	ok(init_only(srsa, CKM_RSA_PKCS_PSS, &mgf_mismatch, sizeof(mgf_mismatch), krsa) ==
		   CKR_MECHANISM_PARAM_INVALID,
	   "pss_mgf1_hash_differing_from_hash_is_param_invalid");
	ok(init_only(srsa, CKM_RSA_PKCS_PSS, &sha1, sizeof(sha1), krsa) ==
		   CKR_MECHANISM_PARAM_INVALID,
	   "pss_sha1_is_param_invalid");
	ok(init_only(srsa, CKM_RSA_PKCS_PSS, &too_much_salt, sizeof(too_much_salt), krsa) ==
		   CKR_MECHANISM_PARAM_INVALID,
	   "pss_salt_over_maximum_is_param_invalid");
	ok(init_only(srsa, CKM_SHA256_RSA_PKCS_PSS, &p384, sizeof(p384), krsa) ==
		   CKR_MECHANISM_PARAM_INVALID,
	   "sha256_pss_with_sha384_params_is_param_invalid");
	ok(init_only(srsa, CKM_RSA_PKCS_PSS, NULL, 0, krsa) == CKR_MECHANISM_PARAM_INVALID,
	   "pss_without_params_is_param_invalid");
	ok(init_only(srsa, CKM_RSA_PKCS_PSS, &p384, sizeof(p384) - 1, krsa) ==
		   CKR_MECHANISM_PARAM_INVALID,
	   "pss_params_of_wrong_size_are_param_invalid");
	ok(init_only(srsa, CKM_ECDSA, NULL, 0, krsa) == CKR_KEY_TYPE_INCONSISTENT,
	   "ecdsa_on_rsa_key_is_key_type_inconsistent");
	ok(init_only(sec, CKM_SHA256_RSA_PKCS, NULL, 0, kec) == CKR_KEY_TYPE_INCONSISTENT,
	   "rsa_on_ec_key_is_key_type_inconsistent");
	ok(init_only(srsa, CKM_MD5_RSA_PKCS, NULL, 0, krsa) == CKR_MECHANISM_INVALID,
	   "unknown_mechanism_is_mechanism_invalid");
	ok(init_only(srsa, CKM_SHA256_RSA_PKCS, NULL, 0, pubrsa) == CKR_KEY_FUNCTION_NOT_PERMITTED,
	   "sign_with_public_key_is_key_function_not_permitted");
	ok(init_only(srsa, CKM_SHA256_RSA_PKCS, NULL, 0, cert) == CKR_KEY_HANDLE_INVALID,
	   "sign_with_certificate_is_key_handle_invalid");
	ok(init_only(srsa, CKM_ECDSA_SHA256, NULL, 0, kec) == CKR_KEY_HANDLE_INVALID,
	   "sign_with_other_tokens_key_is_key_handle_invalid");
	n = sizeof(sig);
	ok(p11->C_Sign(srsa, (CK_BYTE_PTR)msg, 1, sig, &n) == CKR_OPERATION_NOT_INITIALIZED,
	   "sign_without_init_is_operation_not_initialized");
	m.mechanism = CKM_SHA256_RSA_PKCS;
	m.pParameter = NULL;
	m.ulParameterLen = 0;
	ok(p11->C_SignInit(srsa, &m, krsa) == CKR_OK &&
		   p11->C_SignInit(srsa, &m, krsa) == CKR_OPERATION_ACTIVE,
	   "second_sign_init_is_operation_active");
	n = sizeof(sig);
	p11->C_Sign(srsa, (CK_BYTE_PTR)msg, 1, sig, &n);
}

/* pSignature NULL and a short buffer need no round trip and keep the op;
 * the signature then comes from one server call. Six checks. */
#define LENGTH_CHECKS 6
static void test_length_conventions(const char *name, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k,
				    X509 *cert, CK_MECHANISM_TYPE t, CK_ULONG want, int multipart)
{
	CK_MECHANISM m = {t, NULL, 0};
	unsigned char sig[512];
	CK_ULONG n = 0;
	int before = fake_count(f, CNT_SIGN);
	CK_RV r1, r2, r3;

	p11->C_SignInit(s, &m, k);
	if (multipart) {
		p11->C_SignUpdate(s, (CK_BYTE_PTR)msg, 10);
		p11->C_SignUpdate(s, (CK_BYTE_PTR)msg + 10, sizeof(msg) - 10);
		r1 = p11->C_SignFinal(s, NULL, &n);
	} else {
		r1 = p11->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg), NULL, &n);
	}
	ok(r1 == CKR_OK && n == want, "%s_null_output_gives_length_from_metadata", name);
	n = 8;
	r2 = multipart ? p11->C_SignFinal(s, sig, &n)
		       : p11->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, &n);
	ok(r2 == CKR_BUFFER_TOO_SMALL && n == want, "%s_short_buffer_is_buffer_too_small", name);
	ok(fake_count(f, CNT_SIGN) == before, "%s_length_queries_make_no_round_trip", name);
	n = sizeof(sig);
	r3 = multipart ? p11->C_SignFinal(s, sig, &n)
		       : p11->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, &n);
	ok(r3 == CKR_OK && n == want && mt_verify(cert, &m, msg, sizeof(msg), sig, n),
	   "%s_operation_kept_for_the_retry_and_verifies", name);
	ok(fake_count(f, CNT_SIGN) == before + 1, "%s_signs_with_one_server_call", name);
	n = sizeof(sig);
	ok(p11->C_Sign(s, (CK_BYTE_PTR)msg, 1, sig, &n) == CKR_OPERATION_NOT_INITIALIZED,
	   "%s_success_ends_the_operation", name);
}

static void test_multipart(void)
{
	static unsigned char big[1 << 20];
	CK_RSA_PKCS_PSS_PARAMS pss = {CKM_SHA512, CKG_MGF1_SHA512, 64};
	CK_MECHANISM m = {CKM_SHA512_RSA_PKCS_PSS, &pss, sizeof(pss)};
	unsigned char sig[512];
	CK_ULONG n = sizeof(sig);
	size_t i;
	int before = fake_count(f, CNT_SIGN), good = 1;

	for (i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 7);
	good = p11->C_SignInit(srsa, &m, krsa) == CKR_OK;
	for (i = 0; good && i < sizeof(big); i += 65536)
		good = p11->C_SignUpdate(srsa, big + i, 65536) == CKR_OK;
	good = good && p11->C_SignFinal(srsa, sig, &n) == CKR_OK && n == 256;
	ok(good && mt_verify(crsa, &m, big, sizeof(big), sig, n),
	   "multipart_sha512_pss_over_1mib_verifies");
	ok(fake_count(f, CNT_SIGN) == before + 1, "multipart_makes_one_server_call");

	m.mechanism = CKM_ECDSA_SHA384;
	m.pParameter = NULL;
	m.ulParameterLen = 0;
	n = sizeof(sig);
	good = p11->C_SignInit(sec, &m, kec) == CKR_OK &&
	       p11->C_SignUpdate(sec, (CK_BYTE_PTR)msg, 5) == CKR_OK &&
	       p11->C_Sign(sec, (CK_BYTE_PTR)msg, sizeof(msg), sig, &n) == CKR_OPERATION_ACTIVE &&
	       p11->C_SignUpdate(sec, (CK_BYTE_PTR)msg, 5) == CKR_OPERATION_NOT_INITIALIZED &&
	       p11->C_SignInit(sec, &m, kec) == CKR_OK &&
	       p11->C_SignUpdate(sec, (CK_BYTE_PTR)msg, 5) == CKR_OK &&
	       p11->C_SignUpdate(sec, (CK_BYTE_PTR)msg + 5, sizeof(msg) - 5) == CKR_OK &&
	       p11->C_SignFinal(sec, sig, &n) == CKR_OK;
	ok(good && mt_verify(cec, &m, msg, sizeof(msg), sig, n),
	   "multipart_ecdsa_sha384_verifies_and_c_sign_on_it_ends_it");
	m.mechanism = CKM_ECDSA;
	{
		unsigned char dig[64];
		size_t dl;

		digest(EVP_sha256(), msg, sizeof(msg), dig, &dl);
		n = sizeof(sig);
		good = p11->C_SignInit(sec, &m, kec) == CKR_OK &&
		       p11->C_SignUpdate(sec, dig, 16) == CKR_OK &&
		       p11->C_SignUpdate(sec, dig + 16, 16) == CKR_OK &&
		       p11->C_SignFinal(sec, sig, &n) == CKR_OK;
		ok(good && mt_verify(cec, &m, dig, dl, sig, n),
		   "multipart_raw_ecdsa_collects_the_hash");
	}
}

static CK_MECHANISM verify_mechs[] = {{CKM_SHA256_RSA_PKCS, NULL, 0},
				      {CKM_SHA384_RSA_PKCS_PSS, &pss384, sizeof(pss384)},
				      {CKM_ECDSA_SHA256, NULL, 0}};

static void test_verify(void)
{
	unsigned char sig[512];
	CK_ULONG n;

	for (size_t i = 0; i < TAP_COUNT(verify_mechs); i++) {
		CK_MECHANISM *m = &verify_mechs[i];
		int ec = m->mechanism == CKM_ECDSA_SHA256;
		CK_SESSION_HANDLE s = ec ? sec : srsa;
		CK_OBJECT_HANDLE pub = ec ? pubec : pubrsa;

		n = sizeof(sig);
		if (mt_sign(s, ec ? kec : krsa, m, msg, sizeof(msg), sig, &n) != CKR_OK)
			n = 0;
		ok(p11->C_VerifyInit(s, m, pub) == CKR_OK &&
			   p11->C_Verify(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, n) == CKR_OK,
		   "local_verify_accepts_%zu", i);
		sig[5] ^= 1;
		ok(p11->C_VerifyInit(s, m, pub) == CKR_OK &&
			   p11->C_Verify(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, n) ==
				   CKR_SIGNATURE_INVALID,
		   "local_verify_rejects_tampered_%zu", i);
		sig[5] ^= 1;
		ok(p11->C_VerifyInit(s, m, pub) == CKR_OK &&
			   p11->C_Verify(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, n - 1) ==
				   CKR_SIGNATURE_LEN_RANGE,
		   "local_verify_wrong_length_is_signature_len_range_%zu", i);
		ok(p11->C_VerifyInit(s, m, pub) == CKR_OK &&
			   p11->C_VerifyUpdate(s, (CK_BYTE_PTR)msg, 3) == CKR_OK &&
			   p11->C_VerifyUpdate(s, (CK_BYTE_PTR)msg + 3, sizeof(msg) - 3) ==
				   CKR_OK &&
			   p11->C_VerifyFinal(s, sig, n) == CKR_OK,
		   "local_multipart_verify_accepts_%zu", i);
	}
	ok(p11->C_VerifyInit(srsa, &verify_mechs[0], krsa) == CKR_KEY_FUNCTION_NOT_PERMITTED,
	   "verify_with_private_key_is_key_function_not_permitted");
}

static void test_connection_reuse(void)
{
	CK_MECHANISM m = {CKM_ECDSA_SHA256, NULL, 0};
	unsigned char sig[64];
	CK_ULONG n;
	int i, good = 1, before = fake_count(f, CNT_CONNECTIONS);

	for (i = 0; i < 20; i++) {
		n = sizeof(sig);
		good = good && mt_sign(sec, kec, &m, msg, sizeof(msg), sig, &n) == CKR_OK;
	}
	ok(good && fake_count(f, CNT_CONNECTIONS) - before <= 1,
	   "twenty_sequential_signatures_reuse_the_connection");
}

struct worker {
	int index, failures, done;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	int ec = w->index % 2;
	CK_SESSION_HANDLE s = mt_open(ec ? FAKE_EC : FAKE_RSA);
	CK_OBJECT_HANDLE k = mt_find(s, CKO_PRIVATE_KEY);
	CK_MECHANISM m = {ec ? CKM_ECDSA_SHA256 : CKM_SHA256_RSA_PKCS, NULL, 0};
	unsigned char data[32], sig[512];
	CK_ULONG n;
	int i;

	for (i = 0; i < 10; i++) {
		memset(data, w->index * 16 + i, sizeof(data));
		n = sizeof(sig);
		if (mt_sign(s, k, &m, data, sizeof(data), sig, &n) == CKR_OK &&
		    mt_verify(ec ? cec : crsa, &m, data, sizeof(data), sig, n))
			w->done++;
		else
			w->failures++;
	}
	p11->C_CloseSession(s);
	return NULL;
}

static void test_threads(void)
{
	pthread_t t[8];
	struct worker w[8];
	int i, failures = 0, done = 0, before = fake_count(f, CNT_SIGN);

	for (i = 0; i < 8; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].index = i;
		pthread_create(&t[i], NULL, worker_run, &w[i]);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		failures += w[i].failures;
		done += w[i].done;
	}
	ok(failures == 0 && done == 80,
	   "eight_threads_sign_concurrently_and_every_signature_verifies");
	ok(fake_count(f, CNT_SIGN) - before == 80, "eight_threads_make_one_call_per_signature");
}

int main(void)
{
	plan(2 + 2 * TAP_COUNT(mech_cases) + 2 + 18 + 3 * LENGTH_CHECKS + 4 +
	     (4 * TAP_COUNT(verify_mechs) + 1) + 1 + 2 + 1);
	mt_clear_env();
	setenv("RSIGN_TOKEN", FAKE_USER_TOKEN, 1);
	f = mt_fake(0);
	crsa = fake_signer_cert(f, FAKE_RSA);
	cec = fake_signer_cert(f, FAKE_EC);
	mt_load();
	ok(mt_init(mt_conf(f, NULL, 0600)) == CKR_OK, "initialize_with_token_from_environment");
	srsa = mt_open(FAKE_RSA);
	sec = mt_open(FAKE_EC);
	krsa = mt_find(srsa, CKO_PRIVATE_KEY);
	kec = mt_find(sec, CKO_PRIVATE_KEY);
	pubrsa = mt_find(srsa, CKO_PUBLIC_KEY);
	pubec = mt_find(sec, CKO_PUBLIC_KEY);
	ok(krsa != CK_INVALID_HANDLE && kec != CK_INVALID_HANDLE, "private_keys_found");

	test_mechanisms();
	test_metadata();
	test_rejections();
	test_length_conventions("rsa_sign", srsa, krsa, crsa, CKM_SHA256_RSA_PKCS, 256, 0);
	test_length_conventions("ecdsa_sign", sec, kec, cec, CKM_ECDSA_SHA256, 64, 0);
	test_length_conventions("ecdsa_signfinal", sec, kec, cec, CKM_ECDSA_SHA384, 64, 1);
	test_multipart();
	test_verify();
	test_connection_reuse();
	test_threads();

	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize");
	mt_unload();
	fake_free(f);
	return tap_done();
}
