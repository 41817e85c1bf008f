/* Sign and verify operations: mechanism parameters, local hashing, the
 * digest and server algorithm per the mechanism table (mech.c), and local
 * verification with OpenSSL from the public key.
 *
 * CK_RSA_PKCS_PSS_PARAMS: hashAlg and the MGF1 hash must be the same
 * SHA-256/384/512 (and the mechanism's own hash for CKM_SHAxxx_RSA_PKCS_PSS);
 * sLen may be anything from 0 to emLen - hLen - 2, which includes the
 * maximum OpenSSL asks for by default. Anything else is
 * CKR_MECHANISM_PARAM_INVALID. */
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/rsa.h>

#include "rsign/der.h"

#include "op.h"

static CK_RV check_pss(const CK_MECHANISM *m, const mod_mech *mech, rs_key_alg key, rs_hash *hash,
		       long *salt)
{
	const CK_RSA_PKCS_PSS_PARAMS *p = m->pParameter;
	long em_len = (rs_key_alg_bits(key) - 1 + 7) / 8;
	rs_hash h;

	if (!p || m->ulParameterLen != sizeof(*p))
		return CKR_MECHANISM_PARAM_INVALID;
	h = mod_mech_hash_of_ckm(p->hashAlg);
	if (h == RS_HASH_NONE || mod_mech_hash_of_mgf(p->mgf) != h ||
	    (mech->hash != RS_HASH_NONE && mech->hash != h))
		return CKR_MECHANISM_PARAM_INVALID;
	if (p->sLen > (CK_ULONG)(em_len - (long)rs_hash_len(h) - 2))
		return CKR_MECHANISM_PARAM_INVALID;
	*hash = h;
	*salt = (long)p->sLen;
	return CKR_OK;
}

CK_RV mod_op_new_inlock(const CK_MECHANISM *m, const mod_slot *slot, mod_op **out)
{
	const mod_mech *mech = mod_mech_find(m->mechanism);
	rs_hash pss_hash = RS_HASH_NONE;
	long salt = -1;
	mod_op *op;
	CK_RV rv;

	*out = NULL;
	if (!mech)
		return CKR_MECHANISM_INVALID;
	if (!mod_mech_fits_key(mech, slot->key_alg))
		return CKR_KEY_TYPE_INCONSISTENT;
	if (mech->family == MECH_PSS) {
		rv = check_pss(m, mech, slot->key_alg, &pss_hash, &salt);
		if (rv != CKR_OK)
			return rv;
	} else if (m->ulParameterLen) {
		return CKR_MECHANISM_PARAM_INVALID;
	}
	op = calloc(1, sizeof(*op));
	if (!op)
		return CKR_HOST_MEMORY;
	op->mech = mech;
	op->slot_id = slot->id;
	rs_strlcpy(op->signer_id, slot->signer_id, sizeof(op->signer_id));
	rs_strlcpy(op->signer_name, slot->name, sizeof(op->signer_name));
	op->key_alg = slot->key_alg;
	op->sig_len = rs_key_alg_sig_len(slot->key_alg);
	op->pss_hash = pss_hash;
	op->salt_len = salt;
	op->alg = RS_ALG_COUNT;
	rs_buf_init(&op->raw, MOD_RAW_MAX);
	if (mech->hash != RS_HASH_NONE) {
		op->md = EVP_MD_CTX_new();
		if (!op->md || !EVP_DigestInit_ex(op->md, rs_hash_md(mech->hash), NULL)) {
			mod_op_free(op);
			return CKR_HOST_MEMORY;
		}
	}
	*out = op;
	return CKR_OK;
}

void mod_op_free(mod_op *op)
{
	if (!op)
		return;
	EVP_MD_CTX_free(op->md);
	rs_buf_wipe(&op->raw);
	EVP_PKEY_free(op->pub);
	OPENSSL_cleanse(op, sizeof(*op));
	free(op);
}

CK_RV mod_op_update(mod_op *op, const unsigned char *p, size_t n)
{
	if (op->md)
		return EVP_DigestUpdate(op->md, p, n) ? CKR_OK : CKR_FUNCTION_FAILED;
	if (rs_buf_append(&op->raw, p, n) < 0)
		return CKR_DATA_LEN_RANGE;
	return CKR_OK;
}

/* The input of a raw mechanism is a hash (or a DigestInfo around one). */
static CK_RV digest_of_raw(mod_op *op, const unsigned char *in, size_t n)
{
	const unsigned char *dig;
	size_t dlen;
	rs_hash h;

	if (!in || !n)
		return op->mech->family == MECH_PKCS1 ? CKR_DATA_INVALID : CKR_DATA_LEN_RANGE;
	switch (op->mech->family) {
	case MECH_PKCS1:
		if (rs_der_digestinfo_parse(in, n, &h, &dig, &dlen) < 0)
			return CKR_DATA_INVALID;
		break;
	case MECH_PSS:
		h = op->pss_hash;
		if (n != rs_hash_len(h))
			return CKR_DATA_LEN_RANGE;
		dig = in;
		dlen = n;
		break;
	case MECH_ECDSA:
	default:
		h = rs_hash_by_len(n);
		if (h == RS_HASH_NONE)
			return CKR_DATA_LEN_RANGE;
		dig = in;
		dlen = n;
		break;
	}
	memcpy(op->digest, dig, dlen);
	op->digest_len = dlen;
	op->alg = mod_mech_alg(op->mech->family, h);
	return CKR_OK;
}

CK_RV mod_op_digest(mod_op *op, const unsigned char *data, size_t n, int final)
{
	unsigned int len = 0;
	CK_RV rv;

	if (op->have_digest)
		return CKR_OK;
	if (op->md) {
		if ((!final && n && !EVP_DigestUpdate(op->md, data, n)) ||
		    !EVP_DigestFinal_ex(op->md, op->digest, &len))
			return CKR_FUNCTION_FAILED;
		op->digest_len = len;
		op->alg = mod_mech_alg(op->mech->family, op->mech->hash);
	} else {
		rv = final ? digest_of_raw(op, op->raw.data, op->raw.len)
			   : digest_of_raw(op, data, n);
		if (rv != CKR_OK)
			return rv;
	}
	op->have_digest = 1;
	return CKR_OK;
}

/* ---- local verification --------------------------------------------------- */

static CK_RV verify_pkcs1(mod_op *op, EVP_PKEY_CTX *ctx, const unsigned char *data, size_t n,
			  const unsigned char *sig, size_t sig_len)
{
	unsigned char rec[MOD_MAX_SIG], expect[RS_DIGESTINFO_MAX];
	const unsigned char *want = data;
	size_t rec_len = sizeof(rec), want_len = n;

	/* Recover and compare: also right for a raw CKM_RSA_PKCS input. */
	if (op->mech->hash != RS_HASH_NONE) {
		if (rs_der_digestinfo_build(op->mech->hash, op->digest, op->digest_len, expect,
					    sizeof(expect), &want_len) < 0)
			return CKR_FUNCTION_FAILED;
		want = expect;
	} else if (op->multipart) {
		want = op->raw.data;
		want_len = op->raw.len;
	}
	if (EVP_PKEY_verify_recover_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0)
		return CKR_FUNCTION_FAILED;
	if (EVP_PKEY_verify_recover(ctx, rec, &rec_len, sig, sig_len) <= 0)
		return CKR_SIGNATURE_INVALID;
	if (rec_len != want_len || CRYPTO_memcmp(rec, want, rec_len) != 0)
		return CKR_SIGNATURE_INVALID;
	return CKR_OK;
}

CK_RV mod_op_verify(mod_op *op, const unsigned char *data, size_t n, const unsigned char *sig,
		    size_t sig_len)
{
	unsigned char der[MOD_MAX_SIG];
	const unsigned char *s = sig;
	size_t slen = sig_len;
	EVP_PKEY_CTX *ctx;
	rs_hash h = rs_sign_alg_hash(op->alg);
	CK_RV rv = CKR_SIGNATURE_INVALID;
	int r;

	if (sig_len != op->sig_len)
		return CKR_SIGNATURE_LEN_RANGE;
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, op->pub, NULL);
	if (!ctx)
		return CKR_HOST_MEMORY;
	if (op->mech->family == MECH_PKCS1) {
		rv = verify_pkcs1(op, ctx, data, n, sig, sig_len);
		goto out;
	}
	if (op->mech->family == MECH_ECDSA) {
		if (rs_der_ecdsa_from_raw(sig, sig_len, der, sizeof(der), &slen) < 0)
			goto out;
		s = der;
	}
	if (EVP_PKEY_verify_init(ctx) <= 0) {
		rv = CKR_FUNCTION_FAILED;
		goto out;
	}
	if (op->mech->family == MECH_PSS &&
	    (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
	     EVP_PKEY_CTX_set_signature_md(ctx, rs_hash_md(h)) <= 0 ||
	     EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, rs_hash_md(h)) <= 0 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, (int)op->salt_len) <= 0)) {
		rv = CKR_FUNCTION_FAILED;
		goto out;
	}
	r = EVP_PKEY_verify(ctx, s, slen, op->digest, op->digest_len);
	rv = r == 1 ? CKR_OK : CKR_SIGNATURE_INVALID;
out:
	EVP_PKEY_CTX_free(ctx);
	return rv;
}
