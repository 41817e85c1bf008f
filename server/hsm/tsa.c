/* RFC 3161 time-stamp replies signed in the token. The TSTInfo is built
 * with OpenSSL's TS_TST_INFO, the SignedData with its PKCS7 structures and
 * the TSA's public key only: the signed attributes (contentType
 * id-ct-TSTInfo, signingTime, messageDigest, ESS signingCertificateV2) are
 * DER-encoded as the SET they are signed as, hashed and signed by the token
 * (srv_pki_token_sign), and the signature put in place. The reply is then
 * parsed back and verified (TS_RESP_verify_response: signature, ESS
 * certificate id, imprint, nonce, policy) before it is handed out, as
 * pki.c re-verifies every certificate it signs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/ts.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include "rsign/buf.h"
#include "rsign/der.h"
#include "rsign/log.h"
#include "rsign/util.h"
#include "tsa.h"

#define TSA_DER_MAX (256 * 1024)

static int reject(srv_tsa_result *res, int bit, const char *text)
{
	res->fail_bit = bit;
	rs_strlcpy(res->text, text, sizeof(res->text));
	return -1;
}

static void hex_upper(const unsigned char *p, size_t n, char *out, size_t outlen)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t i;
	for (i = 0; i < n && 2 * i + 2 < outlen; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * i] = '\0';
}

/* ---- DER, for the few structures OpenSSL 3.0 cannot build ---------------- */

static void der_tlv(rs_buf *b, unsigned char tag, const unsigned char *c, size_t n)
{
	unsigned char h[6];
	size_t hl = 0;
	h[hl++] = tag;
	if (n < 0x80)
		h[hl++] = (unsigned char)n;
	else if (n < 0x100) {
		h[hl++] = 0x81;
		h[hl++] = (unsigned char)n;
	} else if (n < 0x10000) {
		h[hl++] = 0x82;
		h[hl++] = (unsigned char)(n >> 8);
		h[hl++] = (unsigned char)n;
	} else {
		h[hl++] = 0x83;
		h[hl++] = (unsigned char)(n >> 16);
		h[hl++] = (unsigned char)(n >> 8);
		h[hl++] = (unsigned char)n;
	}
	rs_buf_append(b, h, hl);
	rs_buf_append(b, c, n);
}

/* Wraps what b holds in tag: b becomes tag+length+old contents. */
static int der_wrap(rs_buf *b, unsigned char tag)
{
	rs_buf w;
	size_t n;
	unsigned char *inner;
	if (!rs_buf_ok(b))
		return -1;
	inner = rs_buf_steal(b, &n);
	rs_buf_init(&w, TSA_DER_MAX);
	der_tlv(&w, tag, inner ? inner : (const unsigned char *)"", n);
	free(inner);
	*b = w;
	return rs_buf_ok(b) ? 0 : -1;
}

/* SigningCertificateV2 { certs { ESSCertIDv2 { certHash SHA-256 (the
 * default algorithm, so not encoded), issuerSerial { { directoryName
 * issuer }, serialNumber } } } } (RFC 5035). */
static int ess_signing_cert_v2(X509 *cert, rs_buf *out)
{
	unsigned char *cder = NULL, *name = NULL, *serial = NULL, hash[32];
	int clen = i2d_X509(cert, &cder);
	int nlen = i2d_X509_NAME(X509_get_issuer_name(cert), &name);
	int slen = i2d_ASN1_INTEGER((ASN1_INTEGER *)X509_get0_serialNumber(cert), &serial);
	rs_buf gn, is;
	int ret = -1;

	rs_buf_init(&gn, TSA_DER_MAX);
	rs_buf_init(&is, TSA_DER_MAX);
	if (clen <= 0 || nlen <= 0 || slen <= 0 ||
	    rs_hash_compute(RS_HASH_SHA256, cder, (size_t)clen, hash) != 0)
		goto out;
	/* GeneralNames { [4] EXPLICIT Name } */
	der_tlv(&gn, 0xa4, name, (size_t)nlen);
	if (der_wrap(&gn, 0x30) != 0)
		goto out;
	rs_buf_append(&is, gn.data, gn.len);
	rs_buf_append(&is, serial, (size_t)slen);
	if (der_wrap(&is, 0x30) != 0)
		goto out;
	der_tlv(out, 0x04, hash, sizeof(hash));
	rs_buf_append(out, is.data, is.len);
	ret = der_wrap(out, 0x30) || der_wrap(out, 0x30) || der_wrap(out, 0x30) ? -1 : 0;
out:
	rs_buf_free(&gn);
	rs_buf_free(&is);
	OPENSSL_free(cder);
	OPENSSL_free(name);
	OPENSSL_free(serial);
	return ret;
}

int srv_tsa_reject_der(int fail_bit, const char *text, unsigned char **der, size_t *len)
{
	rs_buf b, t;
	unsigned char bits[5] = {0};
	size_t nb = 0;
	static const unsigned char rejection[] = {0x02, 0x01, 0x02};

	*der = NULL;
	*len = 0;
	rs_buf_init(&b, TSA_DER_MAX);
	rs_buf_init(&t, TSA_DER_MAX);
	rs_buf_append(&b, rejection, sizeof(rejection));
	if (text && *text) {
		der_tlv(&t, 0x0c, (const unsigned char *)text, strlen(text));
		if (der_wrap(&t, 0x30) != 0)
			goto fail;
		rs_buf_append(&b, t.data, t.len);
	}
	if (fail_bit >= 0 && fail_bit < 32) {
		nb = (size_t)fail_bit / 8 + 1;
		bits[0] = (unsigned char)(7 - fail_bit % 8); /* unused bits */
		bits[nb] = (unsigned char)(0x80 >> (fail_bit % 8));
		der_tlv(&b, 0x03, bits, nb + 1);
	}
	if (der_wrap(&b, 0x30) != 0 || der_wrap(&b, 0x30) != 0)
		goto fail;
	rs_buf_free(&t);
	*der = rs_buf_steal(&b, len);
	return *der ? 0 : -1;
fail:
	rs_buf_free(&t);
	rs_buf_free(&b);
	return -1;
}

void srv_tsa_result_free(srv_tsa_result *res)
{
	if (res) {
		free(res->der);
		res->der = NULL;
		res->der_len = 0;
	}
}

/* ---- the query ------------------------------------------------------------ */

static TS_REQ *query_parse(const char *policy_oid, const unsigned char *query, size_t len,
			   srv_tsa_result *res)
{
	const unsigned char *p = query;
	TS_REQ *req;
	TS_MSG_IMPRINT *mi;
	X509_ALGOR *alg;
	ASN1_OCTET_STRING *msg;
	rs_hash h;

	res->fail_bit = -1;
	res->text[0] = '\0';
	if (!query || !len || len > SRV_TSA_QUERY_MAX) {
		reject(res, SRV_TSA_BAD_DATA_FORMAT,
		       len ? "the query is too large" : "the query is empty");
		return NULL;
	}
	req = d2i_TS_REQ(NULL, &p, (long)len);
	if (!req || p != query + len) {
		TS_REQ_free(req);
		ERR_clear_error();
		reject(res, SRV_TSA_BAD_DATA_FORMAT, "the query is not one DER TimeStampReq");
		return NULL;
	}
	if (TS_REQ_get_version(req) != 1) {
		reject(res, SRV_TSA_BAD_REQUEST, "the query's version is not 1");
		goto bad;
	}
	mi = TS_REQ_get_msg_imprint(req);
	alg = TS_MSG_IMPRINT_get_algo(mi);
	msg = TS_MSG_IMPRINT_get_msg(mi);
	switch (alg ? OBJ_obj2nid(alg->algorithm) : NID_undef) {
	case NID_sha256:
		h = RS_HASH_SHA256;
		break;
	case NID_sha384:
		h = RS_HASH_SHA384;
		break;
	case NID_sha512:
		h = RS_HASH_SHA512;
		break;
	default:
		reject(res, SRV_TSA_BAD_ALG,
		       "the message imprint's hash is not SHA-256, SHA-384 or SHA-512");
		goto bad;
	}
	if (alg->parameter && ASN1_TYPE_get(alg->parameter) != V_ASN1_NULL) {
		reject(res, SRV_TSA_BAD_ALG, "the message imprint's hash has parameters");
		goto bad;
	}
	if (!msg || (size_t)ASN1_STRING_length(msg) != rs_hash_len(h)) {
		reject(res, SRV_TSA_BAD_DATA_FORMAT,
		       "the message imprint's length does not fit its hash");
		goto bad;
	}
	if (TS_REQ_get_exts(req) && sk_X509_EXTENSION_num(TS_REQ_get_exts(req)) > 0) {
		reject(res, SRV_TSA_UNACCEPTED_EXTENSION, "the query has extensions");
		goto bad;
	}
	if (TS_REQ_get_policy_id(req)) {
		ASN1_OBJECT *ours = OBJ_txt2obj(policy_oid, 1);
		int same = ours && OBJ_cmp(ours, TS_REQ_get_policy_id(req)) == 0;
		ASN1_OBJECT_free(ours);
		if (!same) {
			reject(res, SRV_TSA_UNACCEPTED_POLICY,
			       "the query asks for a policy this TSA does not use");
			goto bad;
		}
	}
	rs_strlcpy(res->imprint_alg, rs_hash_name(h), sizeof(res->imprint_alg));
	hex_upper(ASN1_STRING_get0_data(msg), (size_t)ASN1_STRING_length(msg), res->imprint,
		  sizeof(res->imprint));
	return req;
bad:
	TS_REQ_free(req);
	ERR_clear_error();
	return NULL;
}

int srv_tsa_check_query(const char *policy_oid, const unsigned char *query, size_t len,
			srv_tsa_result *res)
{
	TS_REQ *req = query_parse(policy_oid, query, len, res);
	TS_REQ_free(req);
	return req ? 0 : -1;
}

/* ---- the token ------------------------------------------------------------ */

static X509 *cert_from_pem(const char *pem)
{
	BIO *b = pem ? BIO_new_mem_buf(pem, -1) : NULL;
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	return x;
}

static STACK_OF(X509) * chain_from_pem(const char *pem)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	BIO *b = pem && *pem ? BIO_new_mem_buf(pem, -1) : NULL;
	X509 *x;
	while (sk && b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		if (!sk_X509_push(sk, x))
			X509_free(x);
	BIO_free(b);
	ERR_clear_error(); /* the end of the PEM text */
	return sk;
}

static TS_TST_INFO *tst_build(const srv_tsa_signer *s, TS_REQ *req, X509 *cert,
			      const unsigned char *serial, time_t now)
{
	TS_TST_INFO *tst = TS_TST_INFO_new();
	ASN1_OBJECT *policy = OBJ_txt2obj(s->policy_oid, 1);
	BIGNUM *bn = BN_bin2bn(serial, SRV_TSA_SERIAL_LEN, NULL);
	ASN1_INTEGER *sn = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	ASN1_GENERALIZEDTIME *t = ASN1_GENERALIZEDTIME_set(NULL, now);
	TS_ACCURACY *acc = NULL;
	ASN1_INTEGER *secs = NULL;
	GENERAL_NAME *gn = GENERAL_NAME_new();
	int ok = tst && policy && sn && t && gn && TS_TST_INFO_set_version(tst, 1) &&
		 TS_TST_INFO_set_policy_id(tst, policy) &&
		 TS_TST_INFO_set_msg_imprint(tst, TS_REQ_get_msg_imprint(req)) &&
		 TS_TST_INFO_set_serial(tst, sn) && TS_TST_INFO_set_time(tst, t);
	if (ok && s->accuracy_seconds > 0) {
		acc = TS_ACCURACY_new();
		secs = ASN1_INTEGER_new();
		ok = acc && secs && ASN1_INTEGER_set_int64(secs, s->accuracy_seconds) &&
		     TS_ACCURACY_set_seconds(acc, secs) && TS_TST_INFO_set_accuracy(tst, acc);
	}
	if (ok && TS_REQ_get_nonce(req))
		ok = TS_TST_INFO_set_nonce(tst, TS_REQ_get_nonce(req));
	if (ok) {
		gn->type = GEN_DIRNAME;
		gn->d.dirn = X509_NAME_dup(X509_get_subject_name(cert));
		ok = gn->d.dirn && TS_TST_INFO_set_tsa(tst, gn);
	}
	GENERAL_NAME_free(gn);
	ASN1_INTEGER_free(secs);
	TS_ACCURACY_free(acc);
	ASN1_GENERALIZEDTIME_free(t);
	ASN1_INTEGER_free(sn);
	BN_free(bn);
	ASN1_OBJECT_free(policy);
	if (!ok) {
		TS_TST_INFO_free(tst);
		return NULL;
	}
	return tst;
}

/* The SignedData over tst_der, its signed attributes signed in the token.
 * 0, or SRV_PKI_E* with err. */
/* authenticode: the content is id-data (the signature countersigned) and
 * there is no ESS attribute (the legacy protocol has none); else it is
 * id-ct-TSTInfo. */
static int signed_data(const srv_tsa_signer *s, X509 *cert, STACK_OF(X509) * chain, int cert_req,
		       int authenticode, EVP_PKEY *pub, const unsigned char *tst_der,
		       size_t tst_len, time_t now, unsigned char **p7_der, int *p7_len, char *err,
		       size_t errlen)
{
	int ret = SRV_PKI_EFAIL, nid, alen;
	rs_sign_alg sa;
	const EVP_MD *md;
	PKCS7 *p7 = PKCS7_new(), *inner = PKCS7_new();
	PKCS7_SIGNER_INFO *si;
	ASN1_OCTET_STRING *os = NULL;
	ASN1_STRING *ess = NULL;
	ASN1_UTCTIME *st = NULL;
	unsigned char dig[64], sig[1024], *attrs = NULL;
	size_t sig_len = 0;
	unsigned int dlen = 0;
	rs_buf essb;

	rs_buf_init(&essb, TSA_DER_MAX);
	rs_errf(err, errlen, "encoding the timestamp failed");
	if (srv_pki_sig_alg(s->key.alg, &sa, &nid) != 0 || !(md = rs_hash_md(rs_sign_alg_hash(sa))))
		goto out;
	if (!p7 || !inner || !PKCS7_set_type(p7, NID_pkcs7_signed) ||
	    !ASN1_INTEGER_set(p7->d.sign->version, 3))
		goto out;
	if (cert_req) {
		if (!PKCS7_add_certificate(p7, cert))
			goto out;
		for (int i = 0; i < sk_X509_num(chain); i++)
			if (!PKCS7_add_certificate(p7, sk_X509_value(chain, i)))
				goto out;
	}
	/* the public key only: it names the algorithms */
	if (!(si = PKCS7_add_signature(p7, cert, pub, md)))
		goto out;
	if (!PKCS7_add_signed_attribute(
		    si, NID_pkcs9_contentType, V_ASN1_OBJECT,
		    OBJ_nid2obj(authenticode ? NID_pkcs7_data : NID_id_smime_ct_TSTInfo)))
		goto out;
	if (!(st = ASN1_UTCTIME_set(NULL, now)) || !PKCS7_add0_attrib_signing_time(si, st))
		goto out;
	st = NULL;
	if (!EVP_Digest(tst_der, tst_len, dig, &dlen, md, NULL) ||
	    !PKCS7_add1_attrib_digest(si, dig, (int)dlen))
		goto out;
	if (authenticode) {
		/* content: id-data, the countersigned signature */
		if (!PKCS7_set_type(inner, NID_pkcs7_data) ||
		    !ASN1_OCTET_STRING_set(inner->d.data, tst_der, (int)tst_len))
			goto out;
	} else {
		if (ess_signing_cert_v2(cert, &essb) != 0 || !(ess = ASN1_STRING_new()) ||
		    !ASN1_STRING_set(ess, essb.data, (int)essb.len) ||
		    !PKCS7_add_signed_attribute(si, NID_id_smime_aa_signingCertificateV2,
						V_ASN1_SEQUENCE, ess))
			goto out;
		ess = NULL;
		/* eContent: the TSTInfo, as an OCTET STRING of type id-ct-TSTInfo */
		inner->type = OBJ_nid2obj(NID_id_smime_ct_TSTInfo);
		if (!(inner->d.other = ASN1_TYPE_new()) || !(os = ASN1_OCTET_STRING_new()) ||
		    !ASN1_OCTET_STRING_set(os, tst_der, (int)tst_len))
			goto out;
		ASN1_TYPE_set(inner->d.other, V_ASN1_OCTET_STRING, os);
		os = NULL;
	}
	if (!PKCS7_set_content(p7, inner))
		goto out;
	inner = NULL;
	/* the signed attributes as the SET they are signed as (RFC 5652 5.4) */
	alen = ASN1_item_i2d((ASN1_VALUE *)si->auth_attr, &attrs, ASN1_ITEM_rptr(PKCS7_ATTR_SIGN));
	if (alen <= 0)
		goto out;
	ret = srv_pki_token_sign(s->hsm, &s->key, sa, attrs, (size_t)alen, sig, &sig_len, err,
				 errlen);
	if (ret != SRV_PKI_OK)
		goto out;
	ret = SRV_PKI_EFAIL;
	if (!ASN1_OCTET_STRING_set(si->enc_digest, sig, (int)sig_len))
		goto out;
	*p7_len = i2d_PKCS7(p7, p7_der);
	if (*p7_len <= 0)
		goto out;
	ret = SRV_PKI_OK;
	if (err && errlen)
		err[0] = '\0';
out:
	rs_buf_free(&essb);
	OPENSSL_free(attrs);
	ASN1_UTCTIME_free(st);
	ASN1_STRING_free(ess);
	ASN1_OCTET_STRING_free(os);
	PKCS7_free(inner);
	PKCS7_free(p7);
	return ret;
}

/* The reply as a client would check it: signature with the TSA's
 * certificate (trusted here as the anchor, X509_V_FLAG_PARTIAL_CHAIN, its
 * purpose timeStamping), ESS certificate id, imprint, nonce, policy. */
static int reply_verifies(TS_REQ *req, const unsigned char *der, size_t len, X509 *cert,
			  STACK_OF(X509) * chain)
{
	const unsigned char *p = der;
	TS_RESP *resp = d2i_TS_RESP(NULL, &p, (long)len);
	TS_VERIFY_CTX *v = resp && p == der + len ? TS_REQ_to_TS_VERIFY_CTX(req, NULL) : NULL;
	X509_STORE *store = X509_STORE_new();
	STACK_OF(X509) *certs = sk_X509_new_null();
	int ok = 0;

	if (!v || !store || !certs || !X509_STORE_add_cert(store, cert) ||
	    !X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN) || !X509_up_ref(cert) ||
	    !sk_X509_push(certs, cert))
		goto out;
	for (int i = 0; i < sk_X509_num(chain); i++) {
		X509 *c = sk_X509_value(chain, i);
		if (!X509_up_ref(c))
			goto out;
		if (!sk_X509_push(certs, c)) {
			X509_free(c);
			goto out;
		}
	}
	TS_VERIFY_CTX_add_flags(v, TS_VFY_SIGNATURE | TS_VFY_SIGNER);
	TS_VERIFY_CTX_set_store(v, store);
	store = NULL;
	TS_VERIFY_CTS_set_certs(v, certs);
	certs = NULL;
	ok = TS_RESP_verify_response(v, resp) == 1;
	if (!ok) {
		unsigned long e = ERR_peek_last_error();
		rs_err("tsa: the reply signed in the token does not verify: %s",
		       e ? ERR_reason_error_string(e) : "?");
	}
out:
	sk_X509_pop_free(certs, X509_free);
	X509_STORE_free(store);
	TS_VERIFY_CTX_free(v);
	TS_RESP_free(resp);
	ERR_clear_error();
	return ok;
}

int srv_tsa_stamp(const srv_tsa_signer *s, const unsigned char *query, size_t len,
		  const unsigned char *serial, time_t now, srv_tsa_result *res)
{
	TS_REQ *req;
	TS_TST_INFO *tst = NULL;
	X509 *cert = NULL;
	STACK_OF(X509) *chain = NULL;
	EVP_PKEY *pub = NULL;
	const unsigned char *kp;
	unsigned char *tst_der = NULL, *p7_der = NULL;
	int tst_len, p7_len = 0, rc, ret = -1;
	char err[200] = "";
	rs_buf b;

	memset(res, 0, sizeof(*res));
	res->fail_bit = -1;
	rs_buf_init(&b, TSA_DER_MAX);
	if (!s || !serial)
		return reject(res, SRV_TSA_SYSTEM_FAILURE, "invalid arguments");
	if (!(req = query_parse(s->policy_oid, query, len, res)))
		return -1;
	kp = s->key.spki;
	cert = cert_from_pem(s->cert_pem);
	chain = chain_from_pem(s->chain_pem);
	pub = kp ? d2i_PUBKEY(NULL, &kp, (long)s->key.spki_len) : NULL;
	if (!cert || !chain || !pub || EVP_PKEY_eq(X509_get0_pubkey(cert), pub) != 1) {
		rs_err("tsa: the TSA's certificate does not match its key");
		reject(res, SRV_TSA_SYSTEM_FAILURE, "the TSA's certificate does not match its key");
		goto out;
	}
	hex_upper(serial, SRV_TSA_SERIAL_LEN, res->serial, sizeof(res->serial));
	if (!(tst = tst_build(s, req, cert, serial, now)) ||
	    (tst_len = i2d_TS_TST_INFO(tst, &tst_der)) <= 0) {
		reject(res, SRV_TSA_SYSTEM_FAILURE, "encoding the TSTInfo failed");
		goto out;
	}
	rc = signed_data(s, cert, chain, TS_REQ_get_cert_req(req), 0, pub, tst_der, (size_t)tst_len,
			 now, &p7_der, &p7_len, err, sizeof(err));
	if (rc != SRV_PKI_OK) {
		reject(res, SRV_TSA_SYSTEM_FAILURE, err[0] ? err : "signing failed");
		res->token_down = rc == SRV_PKI_EUNAVAIL;
		goto out;
	}
	/* TimeStampResp { PKIStatusInfo { granted }, timeStampToken } */
	static const unsigned char granted[] = {0x30, 0x03, 0x02, 0x01, 0x00};
	rs_buf_append(&b, granted, sizeof(granted));
	rs_buf_append(&b, p7_der, (size_t)p7_len);
	if (der_wrap(&b, 0x30) != 0) {
		reject(res, SRV_TSA_SYSTEM_FAILURE, "encoding the reply failed");
		goto out;
	}
	if (!reply_verifies(req, b.data, b.len, cert, chain)) {
		reject(res, SRV_TSA_SYSTEM_FAILURE,
		       "the timestamp signed in the HSM does not verify");
		goto out;
	}
	res->der = rs_buf_steal(&b, &res->der_len);
	ret = res->der ? 0 : reject(res, SRV_TSA_SYSTEM_FAILURE, "out of memory");
out:
	rs_buf_free(&b);
	OPENSSL_free(p7_der);
	OPENSSL_free(tst_der);
	TS_TST_INFO_free(tst);
	EVP_PKEY_free(pub);
	sk_X509_pop_free(chain, X509_free);
	X509_free(cert);
	TS_REQ_free(req);
	ERR_clear_error();
	return ret;
}

/* ---- the legacy Authenticode protocol ---------------------------------- */

/* TimeStampRequest ::= SEQUENCE { countersignatureType OBJECT IDENTIFIER
 * (1.3.6.1.4.1.311.3.2.1), attributes OPTIONAL, content ContentInfo {
 * id-data, [0] EXPLICIT OCTET STRING (the signature to countersign) } }.
 * *blob points into der. 0 or -1. */
static int authenticode_parse(const unsigned char *der, size_t len, const unsigned char **blob,
			      size_t *blob_len)
{
	static const unsigned char ms_oid[] = {0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04,
					       0x01, 0x82, 0x37, 0x03, 0x02, 0x01};
	static const unsigned char data_oid[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
						 0xf7, 0x0d, 0x01, 0x07, 0x01};
	const unsigned char *p = der, *end, *ci_end;
	long l;
	int tag, cls, inf;

	if (len > SRV_TSA_QUERY_MAX)
		return -1;
#define NEXT(want)                                                                                 \
	do {                                                                                       \
		const unsigned char *q = p;                                                        \
		inf = ASN1_get_object(&p, &l, &tag, &cls, (long)(end - q));                        \
		if ((inf & 0x80) || inf != (want) || (size_t)l > (size_t)(end - p))                \
			return -1;                                                                 \
	} while (0)
	end = der + len;
	NEXT(V_ASN1_CONSTRUCTED);
	if (tag != V_ASN1_SEQUENCE || cls != V_ASN1_UNIVERSAL || p + l != end)
		return -1;
	if ((size_t)(end - p) < sizeof(ms_oid) || memcmp(p, ms_oid, sizeof(ms_oid)) != 0)
		return -1;
	p += sizeof(ms_oid);
	if (p < end && *p == 0x31) { /* attributes: skipped */
		NEXT(V_ASN1_CONSTRUCTED);
		p += l;
	}
	NEXT(V_ASN1_CONSTRUCTED);
	if (tag != V_ASN1_SEQUENCE || p + l != end)
		return -1;
	ci_end = p + l;
	if ((size_t)(ci_end - p) < sizeof(data_oid) || memcmp(p, data_oid, sizeof(data_oid)) != 0)
		return -1;
	p += sizeof(data_oid);
	end = ci_end;
	NEXT(V_ASN1_CONSTRUCTED);
	if (tag != 0 || cls != V_ASN1_CONTEXT_SPECIFIC || p + l != end)
		return -1;
	NEXT(0);
	if (tag != V_ASN1_OCTET_STRING || cls != V_ASN1_UNIVERSAL || p + l != end || l < 1)
		return -1;
#undef NEXT
	*blob = p;
	*blob_len = (size_t)l;
	return 0;
}

/* The countersignature as a client checks it: the SignerInfo's signature
 * over the authenticated attributes with the TSA's certificate, and its
 * messageDigest over the countersigned blob. */
static int countersig_verifies(const unsigned char *der, size_t len, X509 *cert,
			       const unsigned char *blob, size_t blob_len)
{
	const unsigned char *p = der;
	PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)len);
	BIO *data = BIO_new_mem_buf(blob, (int)blob_len);
	STACK_OF(X509) *signers = sk_X509_new_null();
	X509_STORE *store = X509_STORE_new();
	int ok = 0;

	if (p7 && p == der + len && data && signers && store && X509_up_ref(cert)) {
		if (!sk_X509_push(signers, cert))
			X509_free(cert);
		else /* NOVERIFY: the chain is the client's to judge (its CA, its time) */
			ok = PKCS7_verify(p7, signers, store, data, NULL,
					  PKCS7_NOVERIFY | PKCS7_NOINTERN | PKCS7_BINARY) == 1;
	}
	if (!ok)
		rs_err("tsa: the countersignature signed in the token does not verify");
	sk_X509_pop_free(signers, X509_free);
	X509_STORE_free(store);
	BIO_free(data);
	PKCS7_free(p7);
	ERR_clear_error();
	return ok;
}

int srv_tsa_authenticode(const srv_tsa_signer *s, const unsigned char *request, size_t len,
			 time_t now, srv_tsa_result *res)
{
	const unsigned char *blob = NULL, *kp;
	size_t blob_len = 0;
	unsigned char dig[64], *p7_der = NULL;
	int p7_len = 0, rc, ret = -1, nid;
	rs_sign_alg sa;
	char err[200] = "";
	X509 *cert = NULL;
	STACK_OF(X509) *chain = NULL;
	EVP_PKEY *pub = NULL;
	rs_hash h;

	memset(res, 0, sizeof(*res));
	res->fail_bit = -1;
	if (!s || !request || authenticode_parse(request, len, &blob, &blob_len) != 0)
		return reject(res, SRV_TSA_BAD_DATA_FORMAT,
			      "the request is not an Authenticode TimeStampRequest");
	kp = s->key.spki;
	cert = cert_from_pem(s->cert_pem);
	chain = chain_from_pem(s->chain_pem);
	pub = kp ? d2i_PUBKEY(NULL, &kp, (long)s->key.spki_len) : NULL;
	if (!cert || !chain || !pub || EVP_PKEY_eq(X509_get0_pubkey(cert), pub) != 1 ||
	    srv_pki_sig_alg(s->key.alg, &sa, &nid) != 0) {
		reject(res, SRV_TSA_SYSTEM_FAILURE, "the TSA's certificate does not match its key");
		goto out;
	}
	h = rs_sign_alg_hash(sa);
	if (rs_hash_compute(h, blob, blob_len, dig) != 0) {
		reject(res, SRV_TSA_SYSTEM_FAILURE, "hashing failed");
		goto out;
	}
	rs_strlcpy(res->imprint_alg, rs_hash_name(h), sizeof(res->imprint_alg));
	hex_upper(dig, rs_hash_len(h), res->imprint, sizeof(res->imprint));
	rc = signed_data(s, cert, chain, 1, 1, pub, blob, blob_len, now, &p7_der, &p7_len, err,
			 sizeof(err));
	if (rc != SRV_PKI_OK) {
		reject(res, SRV_TSA_SYSTEM_FAILURE, err[0] ? err : "signing failed");
		res->token_down = rc == SRV_PKI_EUNAVAIL;
		goto out;
	}
	if (!countersig_verifies(p7_der, (size_t)p7_len, cert, blob, blob_len)) {
		reject(res, SRV_TSA_SYSTEM_FAILURE,
		       "the countersignature signed in the HSM does not verify");
		goto out;
	}
	if (!(res->der = malloc((size_t)p7_len))) {
		reject(res, SRV_TSA_SYSTEM_FAILURE, "out of memory");
		goto out;
	}
	memcpy(res->der, p7_der, (size_t)p7_len);
	res->der_len = (size_t)p7_len;
	ret = 0;
out:
	OPENSSL_free(p7_der);
	EVP_PKEY_free(pub);
	sk_X509_pop_free(chain, X509_free);
	X509_free(cert);
	ERR_clear_error();
	return ret;
}
