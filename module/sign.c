/* Signing and verifying: C_SignInit, C_Sign, C_SignUpdate, C_SignFinal,
 * C_VerifyInit, C_Verify, C_VerifyUpdate, C_VerifyFinal.
 *
 * Signing makes one POST /pki/signers/{id}/sign per signature, multi-part
 * input being hashed locally first. The signature length comes from the key
 * metadata, so pSignature == NULL and CKR_BUFFER_TOO_SMALL are answered
 * without a round trip and keep the operation; a signature once computed is
 * kept in the operation until handed out (ECDSA is randomised: a retry must
 * see the same bytes). RSA signatures are left-padded to the modulus length,
 * ECDSA ones turned from DER into fixed-length r||s.
 *
 * Every other outcome of C_Sign, C_SignFinal, C_Verify and C_VerifyFinal,
 * errors included, ends the operation; so does C_SignInit or C_VerifyInit
 * with a NULL mechanism (PKCS#11 3.0), as C_SessionCancel does.
 *
 * While hashing or waiting for the server the operation is taken out of its
 * session (marked busy) and the lock released; afterwards the session is
 * looked up again by handle. Verification is local, with OpenSSL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "rsign/base64.h"
#include "rsign/der.h"
#include "rsign/json.h"
#include "rsign/log.h"

#include "module.h"
#include "approval.h"
#include "errors.h"
#include "op.h"

/* ---- the remote call ------------------------------------------------------ */

static char *sign_body(const mod_op *op)
{
	cJSON *req = cJSON_CreateObject(), *meta;
	char *b64 = rs_b64_encode(op->digest, op->digest_len), *out = NULL;

	if (!req || !b64 || !cJSON_AddStringToObject(req, "data", b64) ||
	    !cJSON_AddStringToObject(req, "signingAlgorithm", rs_sign_alg_name(op->alg)) ||
	    !cJSON_AddBoolToObject(req, "isDigest", 1))
		goto out;
	if (op->mech->family == MECH_PSS &&
	    !cJSON_AddNumberToObject(req, "pssSaltLength", (double)op->salt_len))
		goto out;
	meta = cJSON_AddObjectToObject(req, "clientMetadata");
	if (!meta || !cJSON_AddStringToObject(meta, "tool", mod_http_tool()) ||
	    !cJSON_AddStringToObject(meta, "hostname", mod_http_hostname()))
		goto out;
	out = cJSON_PrintUnformatted(req);
out:
	cJSON_Delete(req);
	free(b64);
	return out;
}

/* The server's signature in the PKCS#11 form, checked against the key. */
static CK_RV decode_signature(mod_op *op, const mod_call *call)
{
	unsigned char raw[MOD_MAX_SIG + 16];
	const char *b64 = NULL;
	size_t len = 0;
	cJSON *obj;
	CK_RV rv = CKR_OK;
	int r;

	obj = rs_json_parse((const char *)call->resp.body.data, call->resp.body.len,
			    RS_JSON_MAX_DEPTH);
	if (!obj || rs_json_str(obj, "signature", 1, 4 * sizeof(raw), &b64) != RS_JSON_OK) {
		rv = mod_err_response(call, obj ? "no signature" : "not JSON");
		goto out;
	}
	r = rs_b64_decode(b64, strlen(b64), raw, sizeof(raw), &len);
	if (r == RS_B64_INVALID) {
		rv = mod_err_response(call, "signature is not base64");
		goto out;
	}
	if (rs_key_alg_is_rsa(op->key_alg)) {
		if (r != RS_B64_OK || len == 0 || len > op->sig_len) {
			rv = mod_err_response(call, "RSA signature longer than the modulus");
			goto out;
		}
		memset(op->kept, 0, op->sig_len - len);
		memcpy(op->kept + op->sig_len - len, raw, len);
	} else if (r != RS_B64_OK || rs_der_ecdsa_to_raw(raw, len, op->sig_len / 2, op->kept) < 0) {
		rv = mod_err_response(call, "not an ECDSA-Sig-Value for this curve");
		goto out;
	}
	op->kept_len = op->sig_len;
out:
	cJSON_Delete(obj);
	return rv;
}

static CK_RV remote_sign(mod_op *op, mod_cred *cred, unsigned long gen)
{
	char seg[3 * MOD_SIGNER_ID_MAX + 1], path[sizeof(seg) + 32], key[RS_UUID_LEN];
	mod_call call = {0};
	char *body;
	CK_RV rv;

	if (mod_http_escape(op->signer_id, seg, sizeof(seg)) < 0)
		return CKR_GENERAL_ERROR;
	snprintf(path, sizeof(path), "/pki/signers/%s/sign", seg);
	body = sign_body(op);
	if (!body)
		return CKR_HOST_MEMORY;
	call.what = "sign";
	call.signer = op->signer_name;
	call.method = "POST";
	call.path = path;
	call.body = body;
	/* one key for this operation: every retry of it (another URL, a new
	 * login, after an approval) is the same operation to rsignd; time-
	 * ordered, so rsignd's index of keys grows at its end */
	if (rs_uuid_v7(key) != 0) {
		free(body);
		return CKR_GENERAL_ERROR;
	}
	call.idem_key = key;
	rv = mod_api_call(cred, gen, &call);
	if (mod_approval_needed(&call)) /* approval = wait|fail: approval.c */
		rv = mod_approval_sign(cred, gen, op->signer_id, &call);
	if (rv == CKR_OK)
		rv = decode_signature(op, &call);
	mod_call_done(&call);
	free(body);
	return rv;
}

/* ---- taking an operation out of its session and putting it back ---------- */

typedef struct taken {
	mod_op *op;
	mod_cred *cred;
	unsigned long gen;
} taken;

static CK_RV take_inlock(mod_session *s, int verify, taken *t)
{
	mod_op **slot_op = verify ? &s->verify : &s->sign;
	int *busy = verify ? &s->verify_busy : &s->sign_busy;

	if (*busy)
		return CKR_OPERATION_ACTIVE;
	if (!*slot_op)
		return CKR_OPERATION_NOT_INITIALIZED;
	t->op = *slot_op;
	t->cred = mod_slot_cred_inlock(s->slot);
	t->gen = mod_generation_inlock();
	*slot_op = NULL;
	*busy = 1;
	return CKR_OK;
}

/* Relocks. The operation goes back into its session when keep, else ends.
 * A session closed meanwhile makes it CKR_SESSION_CLOSED. */
static CK_RV give_back(CK_SESSION_HANDLE h, int verify, taken *t, int keep, CK_RV rv)
{
	mod_session *s;

	rv = mod_session_reenter(h, t->gen, rv, &s);
	if (!s) {
		mod_op_free(t->op);
		return rv;
	}
	if (verify)
		s->verify_busy = 0;
	else
		s->sign_busy = 0;
	if (keep) {
		if (verify)
			s->verify = t->op;
		else
			s->sign = t->op;
	} else {
		mod_op_free(t->op);
	}
	if (rv == CKR_DEVICE_REMOVED)
		mod_slots_mark_stale_inlock();
	return rv;
}

/* An error ends the operation (PKCS#11: C_Sign and C_Verify always end it,
 * but for CKR_BUFFER_TOO_SMALL and the length query). */
static void op_end_inlock(mod_session *s, int verify)
{
	mod_op **op = verify ? &s->verify : &s->sign;

	mod_op_free(*op);
	*op = NULL;
}

/* ---- init ------------------------------------------------------------------ */

static CK_RV op_init(const char *fn, CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
		     CK_OBJECT_HANDLE hKey, int verify)
{
	mod_session *s;
	mod_slot *slot;
	mod_object *key = NULL;
	const CK_ATTRIBUTE *spki;
	const unsigned char *p;
	mod_op *op = NULL;
	size_t want = verify ? MOD_OBJ_PUBKEY : MOD_OBJ_PRIVKEY;
	CK_RV rv;

	if (pMechanism && !pMechanism->pParameter && pMechanism->ulParameterLen)
		return mod_rv(fn, CKR_ARGUMENTS_BAD);
	rv = mod_session_enter(hSession, &s);
	if (rv != CKR_OK)
		return mod_rv(fn, rv);
	if (!pMechanism) { /* PKCS#11 3.0: ends the active operation */
		rv = mod_session_cancel_inlock(s, verify ? CKF_VERIFY : CKF_SIGN);
		goto out;
	}
	if (verify ? (s->verify || s->verify_busy) : (s->sign || s->sign_busy)) {
		rv = CKR_OPERATION_ACTIVE;
		goto out;
	}
	slot = s->slot;
	if (!slot->present) {
		rv = CKR_DEVICE_REMOVED;
		goto out;
	}
	if (mod_login_required() && !slot->logged_in) {
		rv = CKR_USER_NOT_LOGGED_IN;
		goto out;
	}
	/* Handles are fixed per slot: the private key is usable before the
	 * certificate was fetched; verification needs the fetched public key. */
	if (MOD_HANDLE_SLOT(hKey) != slot->index || !slot->resolved ||
	    MOD_HANDLE_OBJ(hKey) > MOD_OBJ_PRIVKEY || MOD_HANDLE_OBJ(hKey) == MOD_OBJ_CERT) {
		rv = CKR_KEY_HANDLE_INVALID;
		goto out;
	}
	if (MOD_HANDLE_OBJ(hKey) != want) {
		rv = CKR_KEY_FUNCTION_NOT_PERMITTED;
		goto out;
	}
	if (verify) {
		key = mod_object_get_inlock(slot, hKey);
		spki = key ? mod_object_attr(key, CKA_PUBLIC_KEY_INFO) : NULL;
		if (!spki) {
			rv = CKR_KEY_HANDLE_INVALID;
			goto out;
		}
	}
	rv = mod_op_new_inlock(pMechanism, slot, &op);
	if (rv != CKR_OK)
		goto out;
	if (verify) {
		p = spki->pValue;
		op->pub = d2i_PUBKEY(NULL, &p, (long)spki->ulValueLen);
		if (!op->pub) {
			ERR_clear_error();
			mod_op_free(op);
			rv = CKR_FUNCTION_FAILED;
			goto out;
		}
		s->verify = op;
	} else {
		s->sign = op;
	}
out:
	mod_unlock();
	return mod_rv(fn, rv);
}

CK_RV C_SignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	return op_init(__func__, hSession, pMechanism, hKey, 0);
}

CK_RV C_VerifyInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	return op_init(__func__, hSession, pMechanism, hKey, 1);
}

/* ---- sign ------------------------------------------------------------------ */

/* C_Sign (final = 0, the data given) and C_SignFinal (final = 1). */
static CK_RV sign_finish(const char *fn, CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData,
			 CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen,
			 int final)
{
	mod_session *s;
	taken t = {0};
	int keep, bad_args = !pulSignatureLen || (!pData && ulDataLen);
	CK_RV rv;

	rv = mod_session_enter(hSession, &s);
	if (rv != CKR_OK)
		return mod_rv(fn, bad_args ? CKR_ARGUMENTS_BAD : rv);
	if (s->sign && !s->sign_busy) { /* else take_inlock says why not */
		if (bad_args) {
			rv = CKR_ARGUMENTS_BAD;
		} else if (!final && s->sign->multipart) {
			rv = CKR_OPERATION_ACTIVE; /* C_Sign cannot end a multi-part op */
		} else if (!pSignature || *pulSignatureLen < s->sign->sig_len) {
			/* The length query and the short buffer: no round trip, op kept. */
			rv = pSignature ? CKR_BUFFER_TOO_SMALL : CKR_OK;
			*pulSignatureLen = s->sign->sig_len;
			goto out;
		}
		if (rv != CKR_OK) {
			op_end_inlock(s, 0);
			goto out;
		}
	} else if (bad_args) {
		rv = CKR_ARGUMENTS_BAD;
		goto out;
	}
	rv = take_inlock(s, 0, &t);
	if (rv != CKR_OK)
		goto out;
	mod_unlock();

	rv = mod_op_digest(t.op, pData, ulDataLen, final);
	if (rv == CKR_OK && !t.op->kept_len)
		rv = remote_sign(t.op, t.cred, t.gen);
	keep = 0;
	if (rv == CKR_OK && *pulSignatureLen < t.op->kept_len) {
		keep = 1;
		rv = CKR_BUFFER_TOO_SMALL;
		*pulSignatureLen = t.op->kept_len;
	} else if (rv == CKR_OK) {
		memcpy(pSignature, t.op->kept, t.op->kept_len);
		*pulSignatureLen = t.op->kept_len;
	}
	rv = give_back(hSession, 0, &t, keep, rv);
out:
	mod_unlock();
	return mod_rv(fn, rv);
}

CK_RV C_Sign(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
	     CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
	return sign_finish(__func__, hSession, pData, ulDataLen, pSignature, pulSignatureLen, 0);
}

CK_RV C_SignFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
	return sign_finish(__func__, hSession, NULL, 0, pSignature, pulSignatureLen, 1);
}

/* C_SignUpdate and C_VerifyUpdate: hashing happens without the lock. */
static CK_RV op_update(const char *fn, CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart,
		       CK_ULONG ulPartLen, int verify)
{
	mod_session *s;
	taken t = {0};
	CK_RV rv;

	if (!pPart && ulPartLen)
		return mod_rv(fn, CKR_ARGUMENTS_BAD);
	rv = mod_session_enter(hSession, &s);
	if (rv != CKR_OK)
		return mod_rv(fn, rv);
	rv = take_inlock(s, verify, &t);
	if (rv != CKR_OK)
		goto out;
	mod_unlock();

	rv = t.op->have_digest ? CKR_OPERATION_ACTIVE : mod_op_update(t.op, pPart, ulPartLen);
	if (rv == CKR_OK)
		t.op->multipart = 1;
	rv = give_back(hSession, verify, &t, rv == CKR_OK, rv);
out:
	mod_unlock();
	return mod_rv(fn, rv);
}

CK_RV C_SignUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
	return op_update(__func__, hSession, pPart, ulPartLen, 0);
}

CK_RV C_VerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
	return op_update(__func__, hSession, pPart, ulPartLen, 1);
}

/* ---- verify ---------------------------------------------------------------- */

static CK_RV verify_finish(const char *fn, CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData,
			   CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen,
			   int final)
{
	mod_session *s;
	taken t = {0};
	int bad_args = !pSignature || (!pData && ulDataLen);
	CK_RV rv;

	rv = mod_session_enter(hSession, &s);
	if (rv != CKR_OK)
		return mod_rv(fn, bad_args ? CKR_ARGUMENTS_BAD : rv);
	if (s->verify && !s->verify_busy && (bad_args || (!final && s->verify->multipart))) {
		/* C_Verify cannot end a multi-part op; either error ends it */
		rv = bad_args ? CKR_ARGUMENTS_BAD : CKR_OPERATION_ACTIVE;
		op_end_inlock(s, 1);
		goto out;
	}
	if (bad_args) {
		rv = CKR_ARGUMENTS_BAD;
		goto out;
	}
	rv = take_inlock(s, 1, &t);
	if (rv != CKR_OK)
		goto out;
	mod_unlock();

	rv = mod_op_digest(t.op, pData, ulDataLen, final);
	if (rv == CKR_OK)
		rv = mod_op_verify(t.op, pData, ulDataLen, pSignature, ulSignatureLen);
	ERR_clear_error();
	rv = give_back(hSession, 1, &t, 0, rv);
out:
	mod_unlock();
	return mod_rv(fn, rv);
}

CK_RV C_Verify(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
	       CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
	return verify_finish(__func__, hSession, pData, ulDataLen, pSignature, ulSignatureLen, 0);
}

CK_RV C_VerifyFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
	return verify_finish(__func__, hSession, NULL, 0, pSignature, ulSignatureLen, 1);
}
