/* Digesting: C_DigestInit, C_Digest, C_DigestUpdate, C_DigestFinal for
 * CKM_SHA256, CKM_SHA384 and CKM_SHA512, computed locally with OpenSSL (no
 * server call, no CKF_HW). Java's SunPKCS11 signs RSASSA-PSS only when the
 * token lists the PSS hash as a digest mechanism, and the hash is what the
 * module computes for CKM_SHAxxx_* anyway. C_DigestKey is not offered.
 *
 * As for signing, the context is taken out of its session (marked busy) and
 * the lock released while hashing; the length query and CKR_BUFFER_TOO_SMALL
 * keep the operation, every other outcome of C_Digest/C_DigestFinal, errors
 * included, ends it; so does C_DigestInit with a NULL mechanism (PKCS#11
 * 3.0), as C_SessionCancel does. */
#include <stdlib.h>
#include <openssl/evp.h>

#include "module.h"
#include "mech.h"

struct mod_digest {
	EVP_MD_CTX *ctx;
	size_t len;
	int multipart;
};

static const CK_MECHANISM_TYPE digests[] = {CKM_SHA256, CKM_SHA384, CKM_SHA512};

#define N_DIGESTS (sizeof(digests) / sizeof(digests[0]))

size_t mod_digest_mechs(CK_MECHANISM_TYPE *out, size_t max)
{
	size_t i;

	for (i = 0; out && i < N_DIGESTS && i < max; i++)
		out[i] = digests[i];
	return N_DIGESTS;
}

int mod_digest_mech_info(CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info)
{
	size_t i;

	for (i = 0; i < N_DIGESTS; i++) {
		if (digests[i] == type) {
			info->ulMinKeySize = info->ulMaxKeySize = 0;
			info->flags = CKF_DIGEST;
			return 1;
		}
	}
	return 0;
}

void mod_digest_free(struct mod_digest *d)
{
	if (!d)
		return;
	EVP_MD_CTX_free(d->ctx);
	free(d);
}

CK_RV C_DigestInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism)
{
	const EVP_MD *md;
	struct mod_digest *d = NULL;
	mod_session *s;
	CK_RV rv;

	rv = mod_session_enter(hSession, &s);
	if (rv != CKR_OK)
		return mod_rv(__func__, rv);
	if (!pMechanism) { /* PKCS#11 3.0: ends the active operation */
		rv = mod_session_cancel_inlock(s, CKF_DIGEST);
		goto out;
	}
	if (s->digest || s->digest_busy) {
		rv = CKR_OPERATION_ACTIVE;
		goto out;
	}
	md = rs_hash_md(mod_mech_hash_of_ckm(pMechanism->mechanism));
	if (!md) {
		rv = CKR_MECHANISM_INVALID;
		goto out;
	}
	if (pMechanism->pParameter || pMechanism->ulParameterLen) {
		rv = CKR_MECHANISM_PARAM_INVALID;
		goto out;
	}
	d = calloc(1, sizeof(*d));
	if (!d || !(d->ctx = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(d->ctx, md, NULL)) {
		mod_digest_free(d);
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	d->len = (size_t)EVP_MD_get_size(md);
	s->digest = d;
out:
	mod_unlock();
	return mod_rv(__func__, rv);
}

/* Takes the context out of its session; the lock is held. */
static CK_RV take_inlock(mod_session *s, struct mod_digest **d)
{
	if (s->digest_busy)
		return CKR_OPERATION_ACTIVE;
	if (!s->digest)
		return CKR_OPERATION_NOT_INITIALIZED;
	*d = s->digest;
	s->digest = NULL;
	s->digest_busy = 1;
	return CKR_OK;
}

/* Relocks; the context goes back when keep, else ends. */
static CK_RV give_back(CK_SESSION_HANDLE h, unsigned long gen, struct mod_digest *d, int keep,
		       CK_RV rv)
{
	mod_session *s;

	rv = mod_session_reenter(h, gen, rv, &s);
	if (!s) {
		mod_digest_free(d);
		return rv;
	}
	s->digest_busy = 0;
	if (keep)
		s->digest = d;
	else
		mod_digest_free(d);
	return rv;
}

/* C_Digest (final = 0, the data given) and C_DigestFinal (final = 1). */
static CK_RV digest_finish(const char *fn, CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData,
			   CK_ULONG ulDataLen, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen,
			   int final)
{
	struct mod_digest *d = NULL;
	mod_session *s;
	unsigned long gen;
	unsigned int len = 0;
	int bad_args = !pulDigestLen || (!pData && ulDataLen);
	CK_RV rv;

	rv = mod_session_enter(hSession, &s);
	if (rv != CKR_OK)
		return mod_rv(fn, bad_args ? CKR_ARGUMENTS_BAD : rv);
	if (s->digest && !s->digest_busy) {
		if (bad_args) {
			rv = CKR_ARGUMENTS_BAD;
		} else if (!final && s->digest->multipart) {
			rv = CKR_OPERATION_ACTIVE; /* C_Digest cannot end a multi-part op */
		} else if (!pDigest || *pulDigestLen < s->digest->len) {
			rv = pDigest ? CKR_BUFFER_TOO_SMALL : CKR_OK;
			*pulDigestLen = s->digest->len;
			goto out;
		}
		if (rv != CKR_OK) { /* an error ends the operation */
			mod_digest_free(s->digest);
			s->digest = NULL;
			goto out;
		}
	} else if (bad_args) {
		rv = CKR_ARGUMENTS_BAD;
		goto out;
	}
	rv = take_inlock(s, &d);
	if (rv != CKR_OK)
		goto out;
	gen = mod_generation_inlock();
	mod_unlock();

	if ((!final && ulDataLen && !EVP_DigestUpdate(d->ctx, pData, ulDataLen)) ||
	    !EVP_DigestFinal_ex(d->ctx, pDigest, &len))
		rv = CKR_FUNCTION_FAILED;
	else
		*pulDigestLen = len;
	rv = give_back(hSession, gen, d, 0, rv);
out:
	mod_unlock();
	return mod_rv(fn, rv);
}

CK_RV C_Digest(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
	       CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen)
{
	return digest_finish(__func__, hSession, pData, ulDataLen, pDigest, pulDigestLen, 0);
}

CK_RV C_DigestFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen)
{
	return digest_finish(__func__, hSession, NULL, 0, pDigest, pulDigestLen, 1);
}

CK_RV C_DigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
	struct mod_digest *d = NULL;
	mod_session *s;
	unsigned long gen;
	CK_RV rv;

	if (!pPart && ulPartLen)
		return mod_rv(__func__, CKR_ARGUMENTS_BAD);
	rv = mod_session_enter(hSession, &s);
	if (rv != CKR_OK)
		return mod_rv(__func__, rv);
	rv = take_inlock(s, &d);
	if (rv != CKR_OK)
		goto out;
	gen = mod_generation_inlock();
	mod_unlock();

	if (ulPartLen && !EVP_DigestUpdate(d->ctx, pPart, ulPartLen))
		rv = CKR_FUNCTION_FAILED;
	d->multipart = 1;
	rv = give_back(hSession, gen, d, rv == CKR_OK, rv);
out:
	mod_unlock();
	return mod_rv(__func__, rv);
}
