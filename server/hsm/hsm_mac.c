/* The row MAC key: one HMAC-SHA-256 secret key in the token (class
 * CKO_SECRET_KEY, CKK_GENERIC_SECRET, CKA_SENSITIVE, never extractable, for
 * CKA_SIGN and CKA_VERIFY only) found by its label, and the MACs rsignd
 * computes with it over the rows that grant power (CKM_SHA256_HMAC). Every
 * call runs through hsm_run, so a token fault heals as it does for signing. */
#include <string.h>
#include "rsign/log.h"
#include "server/hsm/hsm_int.h"

#define MAC_KEY_BYTES 32

typedef struct {
	const char *label;
	const char *to; /* relabel: the new label */
	const unsigned char *msg;
	size_t len;
	unsigned char *out;
	int found;
} mac_ctx;

/* The first secret key labelled label (HSM_RV_NOT_FOUND when none). */
static CK_RV find_key(srv_hsm *h, CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE *obj,
		      const char **fn)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
	CK_ATTRIBUTE tmpl[] = {
		{CKA_CLASS, &cls, sizeof cls},
		{CKA_KEY_TYPE, &kt, sizeof kt},
		{CKA_LABEL, (void *)label, strlen(label)},
	};
	CK_OBJECT_HANDLE objs[2];
	CK_ULONG n = 0;

	CK_RV rv = hsm_find(h, s, tmpl, sizeof tmpl / sizeof tmpl[0], objs, 2, &n, fn);

	if (rv != CKR_OK)
		return rv;
	if (n == 0) {
		*fn = "no row MAC key with that label";
		return HSM_RV_NOT_FOUND;
	}
	if (n > 1)
		rs_warn("hsm: several secret keys are labelled %s; using the first", label);
	*obj = objs[0];
	return CKR_OK;
}

static CK_RV find_op(srv_hsm *h, CK_SESSION_HANDLE s, void *vctx, const char **fn)
{
	mac_ctx *c = vctx;
	CK_OBJECT_HANDLE obj;
	CK_RV rv = find_key(h, s, c->label, &obj, fn);

	c->found = rv == CKR_OK;
	return rv == HSM_RV_NOT_FOUND ? CKR_OK : rv;
}

srv_hsm_rc srv_hsm_mac_key_find(srv_hsm *h, const char *label, int *found)
{
	mac_ctx c = {.label = label};
	srv_hsm_rc rc;

	if (!h || !label || !found)
		return SRV_HSM_INVALID;
	rc = hsm_run(h, "find the row MAC key", find_op, &c, NULL);
	*found = c.found;
	return rc;
}

static CK_RV create_op(srv_hsm *h, CK_SESSION_HANDLE s, void *vctx, const char **fn)
{
	mac_ctx *c = vctx;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
	CK_ULONG len = MAC_KEY_BYTES;
	CK_MECHANISM mech = {CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
	CK_ATTRIBUTE tmpl[] = {
		{CKA_CLASS, &cls, sizeof cls},
		{CKA_KEY_TYPE, &kt, sizeof kt},
		{CKA_VALUE_LEN, &len, sizeof len},
		{CKA_TOKEN, &yes, sizeof yes},
		{CKA_PRIVATE, &yes, sizeof yes},
		{CKA_SENSITIVE, &yes, sizeof yes},
		{CKA_EXTRACTABLE, &no, sizeof no},
		{CKA_SIGN, &yes, sizeof yes},
		{CKA_VERIFY, &yes, sizeof yes},
		{CKA_ENCRYPT, &no, sizeof no},
		{CKA_DECRYPT, &no, sizeof no},
		{CKA_WRAP, &no, sizeof no},
		{CKA_UNWRAP, &no, sizeof no},
		{CKA_DERIVE, &no, sizeof no},
		{CKA_LABEL, (void *)c->label, strlen(c->label)},
	};
	CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;

	*fn = "C_GenerateKey";
	return h->mod->C_GenerateKey(s, &mech, tmpl, sizeof tmpl / sizeof tmpl[0], &obj);
}

srv_hsm_rc srv_hsm_mac_key_create(srv_hsm *h, const char *label)
{
	mac_ctx c = {.label = label};

	if (!h || !label || !*label)
		return SRV_HSM_INVALID;
	return hsm_run(h, "create the row MAC key", create_op, &c, NULL);
}

static CK_RV relabel_op(srv_hsm *h, CK_SESSION_HANDLE s, void *vctx, const char **fn)
{
	mac_ctx *c = vctx;
	CK_OBJECT_HANDLE obj;
	CK_ATTRIBUTE a = {CKA_LABEL, (void *)c->to, strlen(c->to)};
	CK_RV rv = find_key(h, s, c->label, &obj, fn);

	if (rv != CKR_OK)
		return rv;
	*fn = "C_SetAttributeValue(CKA_LABEL)";
	return h->mod->C_SetAttributeValue(s, obj, &a, 1);
}

srv_hsm_rc srv_hsm_mac_key_relabel(srv_hsm *h, const char *from, const char *to)
{
	mac_ctx c = {.label = from, .to = to};

	if (!h || !from || !to || !*to)
		return SRV_HSM_INVALID;
	return hsm_run(h, "relabel the row MAC key", relabel_op, &c, NULL);
}

static CK_RV mac_op(srv_hsm *h, CK_SESSION_HANDLE s, void *vctx, const char **fn)
{
	mac_ctx *c = vctx;
	CK_MECHANISM mech = {CKM_SHA256_HMAC, NULL, 0};
	CK_OBJECT_HANDLE obj;
	CK_ULONG n = SRV_HSM_MAC_LEN;
	CK_RV rv = find_key(h, s, c->label, &obj, fn);

	if (rv != CKR_OK)
		return rv;
	*fn = "C_SignInit(CKM_SHA256_HMAC)";
	if ((rv = h->mod->C_SignInit(s, &mech, obj)) != CKR_OK)
		return rv;
	*fn = "C_Sign(CKM_SHA256_HMAC)";
	rv = h->mod->C_Sign(s, (CK_BYTE_PTR)c->msg, c->len, c->out, &n);
	if (rv == CKR_OK && n != SRV_HSM_MAC_LEN) {
		*fn = "the token's HMAC has the wrong length";
		return HSM_RV_FAILED;
	}
	return rv;
}

srv_hsm_rc srv_hsm_mac(srv_hsm *h, const char *label, const unsigned char *msg, size_t len,
		       unsigned char out[SRV_HSM_MAC_LEN])
{
	mac_ctx c = {.label = label, .msg = msg, .len = len, .out = out};

	if (!h || !label || !msg || !out)
		return SRV_HSM_INVALID;
	return hsm_run(h, "compute a row MAC", mac_op, &c, NULL);
}
