/* libFuzzer target: what the time-stamp authority reads from the network
 * (server/hsm/tsa.c). The first byte picks the reader, the rest is its input
 * (seeds start with a digit: '0' is even):
 *   - even: srv_tsa_check_query, an RFC 3161 TimeStampReq. It accepts with
 *     imprint_alg SHA256/384/512 and an imprint of that hash's length in
 *     upper-case hex, or refuses with a failure bit it documents and a
 *     statusString; the refusal encodes (srv_tsa_reject_der) and parses
 *     back (d2i_TS_RESP) as a rejection with that bit;
 *   - odd: srv_tsa_authenticode, the legacy TimeStampRequest, with a signer
 *     whose certificate does not parse: never granted; badDataFormat, or
 *     systemFailure once the request parsed (the certificate); the token is
 *     never asked to sign (the stubs below abort).
 * fuzz-sources: server/hsm/tsa.c common/der.c common/buf.c common/util.c
 * fuzz-sources: common/log.c common/json.c common/alg.c common/base64.c
 * fuzz-max-len: 4096
 */
#include <openssl/ts.h>
#include "../../server/hsm/tsa.h"
#include "fuzz.h"

/* the token: never reached by these readers */
int srv_pki_sig_alg(rs_key_alg k, rs_sign_alg *sa, int *nid)
{
	(void)k;
	(void)sa;
	(void)nid;
	return -1;
}

int srv_pki_token_sign(srv_hsm *h, const srv_pki_key *key, rs_sign_alg sa, const unsigned char *tbs,
		       size_t tbs_len, unsigned char *sig, size_t *sig_len, char *err,
		       size_t errlen)
{
	(void)h, (void)key, (void)sa, (void)tbs, (void)tbs_len, (void)sig, (void)sig_len;
	(void)err, (void)errlen;
	fuzz_check(0, "a reader asked the token to sign");
	return -3;
}

static void check_refusal(const srv_tsa_result *res)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t len = 0;
	TS_RESP *resp;

	fuzz_check(res->fail_bit >= 0 && res->fail_bit < 32 && res->text[0],
		   "a refusal without a failure bit or text");
	fuzz_check(srv_tsa_reject_der(res->fail_bit, res->text, &der, &len) == 0,
		   "a refusal does not encode");
	p = der;
	resp = d2i_TS_RESP(NULL, &p, (long)len);
	fuzz_check(resp && p == der + len, "a refusal does not parse back");
	const TS_STATUS_INFO *si = TS_RESP_get_status_info(resp);
	fuzz_check(ASN1_INTEGER_get(TS_STATUS_INFO_get0_status(si)) == 2 &&
			   ASN1_BIT_STRING_get_bit(TS_STATUS_INFO_get0_failure_info(si),
						   res->fail_bit) == 1,
		   "the refusal's status or failure bit is not what was refused");
	TS_RESP_free(resp);
	free(der);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	srv_tsa_result res;
	unsigned char *in;
	size_t n;

	if (size < 1)
		return 0;
	n = size - 1;
	in = fuzz_alloc(n);
	if (n)
		memcpy(in, data + 1, n);
	memset(&res, 0, sizeof(res));
	if (data[0] % 2 == 0) {
		if (srv_tsa_check_query("2.999.1.1", in, n, &res) == 0) {
			size_t want = strcmp(res.imprint_alg, "SHA256") == 0   ? 64
				      : strcmp(res.imprint_alg, "SHA384") == 0 ? 96
				      : strcmp(res.imprint_alg, "SHA512") == 0 ? 128
									       : 0;
			fuzz_check(want && strlen(res.imprint) == want &&
					   strspn(res.imprint, "0123456789ABCDEF") == want,
				   "an accepted query with a bad imprint");
		} else {
			fuzz_check(res.fail_bit == SRV_TSA_BAD_ALG ||
					   res.fail_bit == SRV_TSA_BAD_REQUEST ||
					   res.fail_bit == SRV_TSA_BAD_DATA_FORMAT ||
					   res.fail_bit == SRV_TSA_UNACCEPTED_POLICY ||
					   res.fail_bit == SRV_TSA_UNACCEPTED_EXTENSION,
				   "a query refused with an undocumented failure bit");
			check_refusal(&res);
		}
	} else {
		srv_tsa_signer s;
		memset(&s, 0, sizeof(s));
		s.cert_pem = "not a certificate";
		s.chain_pem = "";
		s.policy_oid = "2.999.1.1";
		fuzz_check(srv_tsa_authenticode(&s, in, n, 0, &res) != 0 && !res.der,
			   "an Authenticode request granted without a certificate");
		fuzz_check(res.fail_bit == SRV_TSA_BAD_DATA_FORMAT ||
				   res.fail_bit == SRV_TSA_SYSTEM_FAILURE,
			   "an Authenticode refusal with an undocumented failure bit");
		check_refusal(&res);
	}
	srv_tsa_result_free(&res);
	free(in);
	return 0;
}
