/* Building a signer's objects: GET /pki/signers/{id}/certificate, then
 * the certificate, public key and private key objects sharing CKA_ID (from
 * the signer id) and CKA_LABEL (the signer name), and one object per chain
 * certificate. The certificate is fetched when C_FindObjectsInit first needs
 * it and again after refresh_interval; the public key is the certificate's
 * (the server only accepts certificates whose key is the signer's, so no
 * second request is made).
 *
 * Chain certificates get their own CKA_ID (16 bytes of SHA-256 over the
 * certificate) and label "<signer> CA <n>": tools that pick "the certificate
 * with this ID or label" (libp11, SunPKCS11) must find the signer's own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "rsign/json.h"
#include "rsign/log.h"

#include "module.h"
#include "errors.h"
#include "mech.h"

/* ---- building attribute lists ------------------------------------------- */

typedef struct abuild {
	CK_ATTRIBUTE *v;
	size_t n, cap;
	int failed;
} abuild;

static void add(abuild *b, CK_ATTRIBUTE_TYPE t, const void *p, size_t len)
{
	void *copy = NULL;

	if (b->failed)
		return;
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 32;
		CK_ATTRIBUTE *v = realloc(b->v, cap * sizeof(*v));

		if (!v)
			goto fail;
		b->v = v;
		b->cap = cap;
	}
	if (len) {
		copy = malloc(len);
		if (!copy)
			goto fail;
		memcpy(copy, p, len);
	}
	b->v[b->n].type = t;
	b->v[b->n].pValue = copy;
	b->v[b->n].ulValueLen = len;
	b->n++;
	return;
fail:
	b->failed = 1;
}

static void add_bool(abuild *b, CK_ATTRIBUTE_TYPE t, int v)
{
	CK_BBOOL x = v ? CK_TRUE : CK_FALSE;

	add(b, t, &x, sizeof(x));
}

static void add_ulong(abuild *b, CK_ATTRIBUTE_TYPE t, CK_ULONG v)
{
	add(b, t, &v, sizeof(v));
}

static void add_str(abuild *b, CK_ATTRIBUTE_TYPE t, const char *s)
{
	add(b, t, s, strlen(s));
}

static void attrs_free(CK_ATTRIBUTE *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i].pValue);
	free(v);
}

void mod_objects_free(mod_object *objs, size_t n)
{
	size_t i;

	for (i = 0; objs && i < n; i++)
		attrs_free(objs[i].attrs, objs[i].n_attrs);
	free(objs);
}

/* Adds the i2d encoding of x. */
#define ADD_DER(b, t, i2d, x)                                                                      \
	do {                                                                                       \
		unsigned char *der_ = NULL;                                                        \
		int len_ = i2d(x, &der_);                                                          \
		if (len_ <= 0)                                                                     \
			(b)->failed = 1;                                                           \
		else                                                                               \
			add(b, t, der_, (size_t)len_);                                             \
		OPENSSL_free(der_);                                                                \
	} while (0)

/* ---- what one signer's objects are made of ------------------------------- */

typedef struct key_info {
	int rsa;
	unsigned char *modulus, *exponent; /* RSA */
	size_t modulus_len, exponent_len;
	unsigned char ec_params[16]; /* EC: DER OID of the curve */
	size_t ec_params_len;
	unsigned char ec_point[140]; /* EC: DER OCTET STRING of the point */
	size_t ec_point_len;
	CK_ULONG bits;
} key_info;

static void key_info_free(key_info *k)
{
	OPENSSL_free(k->modulus);
	OPENSSL_free(k->exponent);
}

static int bn_param(EVP_PKEY *pk, const char *name, unsigned char **out, size_t *len)
{
	BIGNUM *bn = NULL;
	int n, rc = -1;

	if (!EVP_PKEY_get_bn_param(pk, name, &bn))
		return -1;
	n = BN_num_bytes(bn);
	*out = OPENSSL_malloc(n > 0 ? (size_t)n : 1);
	if (*out) {
		*len = (size_t)BN_bn2bin(bn, *out);
		rc = 0;
	}
	BN_free(bn);
	return rc;
}

/* The key in the certificate must be the signer's kind of key. EC details
 * come from the SubjectPublicKeyInfo itself (curve OID, point) rather than
 * from EVP_PKEY parameters, which a host's engine (libp11) may have turned
 * into a legacy key that does not answer them. */
static int key_info_make(X509 *x, rs_key_alg alg, key_info *k)
{
	EVP_PKEY *pk = X509_get0_pubkey(x);
	const unsigned char *point;
	const ASN1_OBJECT *alg_oid, *curve;
	const X509_ALGOR *algor;
	const void *pval;
	unsigned char *p = k->ec_params;
	int plen, ptype, nid, want, len;

	memset(k, 0, sizeof(*k));
	if (!pk)
		return -1;
	k->bits = (CK_ULONG)EVP_PKEY_get_bits(pk);
	if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
		k->rsa = 1;
		if (!rs_key_alg_is_rsa(alg) || (int)k->bits != rs_key_alg_bits(alg))
			return -1;
		if (bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &k->modulus, &k->modulus_len) < 0 ||
		    bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &k->exponent, &k->exponent_len) < 0)
			return -1;
		return 0;
	}
	if (rs_key_alg_is_rsa(alg) ||
	    !X509_PUBKEY_get0_param((ASN1_OBJECT **)&alg_oid, &point, &plen, (X509_ALGOR **)&algor,
				    X509_get_X509_PUBKEY(x)) ||
	    OBJ_obj2nid(alg_oid) != NID_X9_62_id_ecPublicKey)
		return -1;
	X509_ALGOR_get0(NULL, &ptype, &pval, algor);
	if (ptype != V_ASN1_OBJECT)
		return -1; /* explicit curve parameters are not a named curve */
	curve = pval;
	nid = OBJ_obj2nid(curve);
	want = alg == RS_KEY_EC_P256   ? NID_X9_62_prime256v1
	       : alg == RS_KEY_EC_P384 ? NID_secp384r1
	       : alg == RS_KEY_EC_P521 ? NID_secp521r1
				       : NID_undef;
	if (nid == NID_undef || nid != want)
		return -1;
	len = i2d_ASN1_OBJECT(curve, NULL);
	if (len <= 0 || (size_t)len > sizeof(k->ec_params))
		return -1;
	k->ec_params_len = (size_t)i2d_ASN1_OBJECT(curve, &p);
	if (plen < 3 || (size_t)plen + 3 > sizeof(k->ec_point) || point[0] != 0x04)
		return -1; /* uncompressed points only */
	/* CKA_EC_POINT is the DER OCTET STRING around the point. */
	k->ec_point[0] = 0x04;
	if (plen < 128) {
		k->ec_point[1] = (unsigned char)plen;
		memcpy(k->ec_point + 2, point, (size_t)plen);
		k->ec_point_len = (size_t)plen + 2;
	} else {
		k->ec_point[1] = 0x81;
		k->ec_point[2] = (unsigned char)plen;
		memcpy(k->ec_point + 3, point, (size_t)plen);
		k->ec_point_len = (size_t)plen + 3;
	}
	return 0;
}

static void add_common(abuild *b, CK_OBJECT_CLASS klass, int private_obj, const char *label,
		       const unsigned char *id, size_t id_len)
{
	add_ulong(b, CKA_CLASS, klass);
	add_bool(b, CKA_TOKEN, 1);
	add_bool(b, CKA_PRIVATE, private_obj);
	add_bool(b, CKA_MODIFIABLE, 0);
	add_bool(b, CKA_COPYABLE, 0);
	add_bool(b, CKA_DESTROYABLE, 0);
	add_str(b, CKA_LABEL, label);
	add(b, CKA_ID, id, id_len);
}

static void add_date(abuild *b, CK_ATTRIBUTE_TYPE t, const ASN1_TIME *at)
{
	struct tm tm;
	char s[16];

	if (!at || !ASN1_TIME_to_tm(at, &tm) ||
	    snprintf(s, sizeof(s), "%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday) !=
		    8) {
		add(b, t, NULL, 0);
		return;
	}
	add(b, t, s, 8); /* CK_DATE: YYYYMMDD, no terminator */
}

static int cert_object(mod_object *o, X509 *x, int authority, const char *label,
		       const unsigned char *id, size_t id_len)
{
	abuild b = {0};
	unsigned char md[SHA_DIGEST_LENGTH];
	unsigned char *der = NULL;
	int len;

	add_common(&b, CKO_CERTIFICATE, 0, label, id, id_len);
	add_ulong(&b, CKA_CERTIFICATE_TYPE, CKC_X_509);
	add_bool(&b, CKA_TRUSTED, 0);
	add_ulong(&b, CKA_CERTIFICATE_CATEGORY, authority ? 2 : 1);
	len = i2d_X509(x, &der);
	if (len <= 0) {
		b.failed = 1;
	} else {
		add(&b, CKA_VALUE, der, (size_t)len);
		SHA1(der, (size_t)len, md);
		add(&b, CKA_CHECK_VALUE, md, 3);
	}
	OPENSSL_free(der);
	ADD_DER(&b, CKA_SUBJECT, i2d_X509_NAME, X509_get_subject_name(x));
	ADD_DER(&b, CKA_ISSUER, i2d_X509_NAME, X509_get_issuer_name(x));
	ADD_DER(&b, CKA_SERIAL_NUMBER, i2d_ASN1_INTEGER, X509_get0_serialNumber(x));
	ADD_DER(&b, CKA_PUBLIC_KEY_INFO, i2d_PUBKEY, X509_get0_pubkey(x));
	add_date(&b, CKA_START_DATE, X509_get0_notBefore(x));
	add_date(&b, CKA_END_DATE, X509_get0_notAfter(x));
	add(&b, CKA_URL, NULL, 0);
	add(&b, CKA_HASH_OF_SUBJECT_PUBLIC_KEY, NULL, 0);
	add(&b, CKA_HASH_OF_ISSUER_PUBLIC_KEY, NULL, 0);
	add_ulong(&b, CKA_JAVA_MIDP_SECURITY_DOMAIN, 0);
	add_ulong(&b, CKA_NAME_HASH_ALGORITHM, CKM_SHA_1);
	if (b.failed) {
		attrs_free(b.v, b.n);
		return -1;
	}
	o->klass = CKO_CERTIFICATE;
	o->attrs = b.v;
	o->n_attrs = b.n;
	return 0;
}

static int key_object(mod_object *o, X509 *x, const key_info *k, int private_key, int private_obj,
		      const char *label, const unsigned char *id)
{
	CK_MECHANISM_TYPE mechs[16];
	size_t n_mechs = mod_mech_list(1, k->rsa ? RS_KEY_RSA_2048 : RS_KEY_EC_P256, mechs, 16);
	abuild b = {0};

	add_common(&b, private_key ? CKO_PRIVATE_KEY : CKO_PUBLIC_KEY, private_obj, label, id,
		   MOD_ID_LEN);
	add_ulong(&b, CKA_KEY_TYPE, k->rsa ? CKK_RSA : CKK_EC);
	add_bool(&b, CKA_DERIVE, 0);
	add_bool(&b, CKA_LOCAL, 1);
	add_ulong(&b, CKA_KEY_GEN_MECHANISM, CK_UNAVAILABLE_INFORMATION);
	add(&b, CKA_ALLOWED_MECHANISMS, mechs, n_mechs * sizeof(mechs[0]));
	add(&b, CKA_START_DATE, NULL, 0);
	add(&b, CKA_END_DATE, NULL, 0);
	ADD_DER(&b, CKA_SUBJECT, i2d_X509_NAME, X509_get_subject_name(x));
	ADD_DER(&b, CKA_PUBLIC_KEY_INFO, i2d_PUBKEY, X509_get0_pubkey(x));
	if (private_key) {
		add_bool(&b, CKA_SENSITIVE, 1);
		add_bool(&b, CKA_DECRYPT, 0);
		add_bool(&b, CKA_SIGN, 1);
		add_bool(&b, CKA_SIGN_RECOVER, 0);
		add_bool(&b, CKA_UNWRAP, 0);
		add_bool(&b, CKA_EXTRACTABLE, 0);
		add_bool(&b, CKA_ALWAYS_SENSITIVE, 1);
		add_bool(&b, CKA_NEVER_EXTRACTABLE, 1);
		add_bool(&b, CKA_WRAP_WITH_TRUSTED, 0);
		add_bool(&b, CKA_ALWAYS_AUTHENTICATE, 0);
	} else {
		add_bool(&b, CKA_ENCRYPT, 0);
		add_bool(&b, CKA_VERIFY, 1);
		add_bool(&b, CKA_VERIFY_RECOVER, 0);
		add_bool(&b, CKA_WRAP, 0);
		add_bool(&b, CKA_TRUSTED, 0);
	}
	if (k->rsa) {
		add(&b, CKA_MODULUS, k->modulus, k->modulus_len);
		add_ulong(&b, CKA_MODULUS_BITS, k->bits);
		add(&b, CKA_PUBLIC_EXPONENT, k->exponent, k->exponent_len);
	} else {
		add(&b, CKA_EC_PARAMS, k->ec_params, k->ec_params_len);
		add(&b, CKA_EC_POINT, k->ec_point, k->ec_point_len);
	}
	if (b.failed) {
		attrs_free(b.v, b.n);
		return -1;
	}
	o->klass = private_key ? CKO_PRIVATE_KEY : CKO_PUBLIC_KEY;
	o->attrs = b.v;
	o->n_attrs = b.n;
	o->private_key = private_key;
	o->is_private = private_obj;
	return 0;
}

/* ---- fetching ------------------------------------------------------------ */

typedef struct slot_copy {
	char signer_id[MOD_SIGNER_ID_MAX + 1];
	char name[MOD_NAME_MAX + 1];
	unsigned char ckaid[MOD_ID_LEN];
	rs_key_alg key_alg;
	int private_obj;
} slot_copy;

static X509 *pem_cert(BIO *bio)
{
	return PEM_read_bio_X509(bio, NULL, NULL, NULL);
}

/* Builds the objects from {certificatePem, chainPem}. NULL and a reason on
 * failure. */
static mod_object *build_objects(const cJSON *obj, const slot_copy *sc, size_t *n_out,
				 const char **why)
{
	const char *cert_pem = NULL, *chain_pem = NULL;
	X509 *leaf = NULL, *chain[MOD_MAX_CHAIN];
	mod_object *objs = NULL;
	size_t n_chain = 0, i, n = 0;
	key_info k = {0};
	BIO *bio = NULL;

	*why = "no certificatePem";
	if (rs_json_str(obj, "certificatePem", 1, 256 * 1024, &cert_pem) != RS_JSON_OK ||
	    rs_json_str(obj, "chainPem", 0, 512 * 1024, &chain_pem) != RS_JSON_OK)
		return NULL;
	*why = "certificatePem does not parse";
	bio = BIO_new_mem_buf(cert_pem, -1);
	leaf = bio ? pem_cert(bio) : NULL;
	BIO_free(bio);
	bio = NULL;
	if (!leaf)
		goto fail;
	if (chain_pem && *chain_pem) {
		*why = "chainPem does not parse";
		bio = BIO_new_mem_buf(chain_pem, -1);
		if (!bio)
			goto fail;
		while (n_chain < MOD_MAX_CHAIN && (chain[n_chain] = pem_cert(bio)) != NULL)
			n_chain++;
		ERR_clear_error(); /* the end of the PEM stream reads as an error */
	}
	*why = "the certificate's key is not the signer's key algorithm";
	if (key_info_make(leaf, sc->key_alg, &k) < 0)
		goto fail;
	*why = "out of memory";
	objs = calloc(MOD_OBJ_CHAIN + n_chain, sizeof(*objs));
	if (!objs)
		goto fail;
	if (cert_object(&objs[n++], leaf, 0, sc->name, sc->ckaid, MOD_ID_LEN) < 0 ||
	    key_object(&objs[n++], leaf, &k, 0, 0, sc->name, sc->ckaid) < 0 ||
	    key_object(&objs[n++], leaf, &k, 1, sc->private_obj, sc->name, sc->ckaid) < 0)
		goto fail;
	for (i = 0; i < n_chain; i++) {
		unsigned char *der = NULL, id[SHA256_DIGEST_LENGTH];
		char label[MOD_NAME_MAX + 16];
		int len = i2d_X509(chain[i], &der);

		if (len <= 0)
			goto fail;
		SHA256(der, (size_t)len, id);
		OPENSSL_free(der);
		snprintf(label, sizeof(label), "%s CA %zu", sc->name, i + 1);
		if (cert_object(&objs[n++], chain[i], 1, label, id, MOD_ID_LEN) < 0)
			goto fail;
	}
	*n_out = n;
	goto out;
fail:
	mod_objects_free(objs, n);
	objs = NULL;
out:
	key_info_free(&k);
	BIO_free(bio);
	X509_free(leaf);
	for (i = 0; i < n_chain; i++)
		X509_free(chain[i]);
	return objs;
}

static CK_RV fetch_objects(mod_cred *cred, unsigned long gen, const slot_copy *sc,
			   mod_object **objs, size_t *n)
{
	char seg[3 * MOD_SIGNER_ID_MAX + 1], path[sizeof(seg) + 32];
	mod_call call = {0};
	const char *why;
	cJSON *obj = NULL;
	CK_RV rv;

	if (mod_http_escape(sc->signer_id, seg, sizeof(seg)) < 0)
		return CKR_GENERAL_ERROR;
	snprintf(path, sizeof(path), "/pki/signers/%s/certificate", seg);
	call.what = "fetch certificate";
	call.signer = sc->name;
	call.method = "GET";
	call.path = path;
	rv = mod_api_call(cred, gen, &call);
	if (rv != CKR_OK)
		goto out;
	obj = rs_json_parse((const char *)call.resp.body.data, call.resp.body.len,
			    RS_JSON_MAX_DEPTH);
	*objs = obj ? build_objects(obj, sc, n, &why) : NULL;
	if (!*objs)
		rv = mod_err_response(&call, obj ? why : "not JSON");
out:
	cJSON_Delete(obj);
	mod_call_done(&call);
	return rv;
}

CK_RV mod_objects_load(CK_SLOT_ID id)
{
	const mod_config *conf = mod_conf();
	mod_object *objs = NULL;
	mod_slot *slot;
	mod_cred *cred;
	slot_copy sc;
	size_t n = 0;
	unsigned long gen;
	CK_RV rv;

	rv = mod_enter();
	if (rv != CKR_OK)
		return rv;
	slot = mod_slot_get_inlock(id);
	if (!slot) {
		rv = CKR_SLOT_ID_INVALID;
		goto out;
	}
	/* Nothing to fetch before login (without credentials), or fresh. */
	if (!slot->resolved ||
	    (slot->objects && (conf->refresh_interval == 0 ||
			       mod_now() - slot->objects_time < conf->refresh_interval * 1000)))
		goto out;
	rs_strlcpy(sc.signer_id, slot->signer_id, sizeof(sc.signer_id));
	rs_strlcpy(sc.name, slot->name, sizeof(sc.name));
	memcpy(sc.ckaid, slot->ckaid, sizeof(sc.ckaid));
	sc.key_alg = slot->key_alg;
	sc.private_obj = mod_login_required();
	cred = mod_slot_cred_inlock(slot);
	gen = mod_generation_inlock();
	mod_unlock();

	rv = fetch_objects(cred, gen, &sc, &objs, &n);

	if (mod_reenter(gen) != CKR_OK) {
		rv = CKR_CRYPTOKI_NOT_INITIALIZED;
		goto out;
	}
	slot = mod_slot_get_inlock(id);
	if (rv == CKR_DEVICE_REMOVED)
		mod_slots_mark_stale_inlock();
	if (rv != CKR_OK) {
		/* Stale objects beat none while the server is unreachable. */
		if (slot && slot->objects && rv == CKR_DEVICE_ERROR)
			rv = CKR_OK;
		goto out;
	}
	if (slot && strcmp(slot->signer_id, sc.signer_id) == 0 && slot->key_alg == sc.key_alg) {
		mod_objects_free(slot->objects, slot->n_objects);
		slot->objects = objs;
		slot->n_objects = n;
		slot->objects_time = mod_now();
		objs = NULL;
	}
out:
	mod_unlock();
	mod_objects_free(objs, n);
	return rv;
}
