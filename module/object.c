/* Objects as the caller sees them: handles, visibility, the attribute
 * rules, C_GetAttributeValue, C_GetObjectSize, C_FindObjects*, and the
 * write-protected C_CreateObject/C_CopyObject/C_DestroyObject/
 * C_SetAttributeValue. The objects themselves are built by object_load.c. */
#include <stdlib.h>
#include <string.h>

#include "module.h"

/* ---- lookup -------------------------------------------------------------- */

int mod_object_visible_inlock(const mod_slot *slot, const mod_object *obj)
{
	return !obj->is_private || slot->logged_in;
}

mod_object *mod_object_get_inlock(mod_slot *slot, CK_OBJECT_HANDLE h)
{
	size_t i = MOD_HANDLE_OBJ(h);

	if (MOD_HANDLE_SLOT(h) != slot->index || i >= slot->n_objects)
		return NULL;
	return mod_object_visible_inlock(slot, &slot->objects[i]) ? &slot->objects[i] : NULL;
}

const CK_ATTRIBUTE *mod_object_attr(const mod_object *obj, CK_ATTRIBUTE_TYPE type)
{
	size_t i;

	for (i = 0; i < obj->n_attrs; i++)
		if (obj->attrs[i].type == type)
			return &obj->attrs[i];
	return NULL;
}

static int is_sensitive(const mod_object *obj, CK_ATTRIBUTE_TYPE t)
{
	if (!obj->private_key)
		return 0;
	switch (t) {
	case CKA_VALUE:
	case CKA_PRIVATE_EXPONENT:
	case CKA_PRIME_1:
	case CKA_PRIME_2:
	case CKA_EXPONENT_1:
	case CKA_EXPONENT_2:
	case CKA_COEFFICIENT:
		return 1;
	default:
		return 0;
	}
}

static int matches(const mod_object *obj, const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	CK_ULONG i;

	for (i = 0; i < n; i++) {
		const CK_ATTRIBUTE *a = mod_object_attr(obj, tmpl[i].type);

		if (!a || a->ulValueLen != tmpl[i].ulValueLen ||
		    (a->ulValueLen && memcmp(a->pValue, tmpl[i].pValue, a->ulValueLen) != 0))
			return 0;
	}
	return 1;
}

/* ---- entry points --------------------------------------------------------- */

/* Per attribute, as PKCS#11 2.40 section 5.7 says: a secret part of the
 * private key gets CK_UNAVAILABLE_INFORMATION and CKR_ATTRIBUTE_SENSITIVE; an
 * attribute the object lacks, CK_UNAVAILABLE_INFORMATION and
 * CKR_ATTRIBUTE_TYPE_INVALID; pValue NULL, the length; a short buffer,
 * CK_UNAVAILABLE_INFORMATION and CKR_BUFFER_TOO_SMALL. Every attribute is
 * processed; the first error is returned. */
CK_RV C_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
			  CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	mod_session *s;
	mod_object *obj;
	CK_ULONG i;
	CK_RV rv;

	if (!pTemplate && ulCount)
		return mod_rv(__func__, CKR_ARGUMENTS_BAD);
	rv = mod_session_enter(hSession, &s);
	if (rv != CKR_OK)
		return mod_rv(__func__, rv);
	obj = mod_object_get_inlock(s->slot, hObject);
	if (!obj) {
		rv = CKR_OBJECT_HANDLE_INVALID;
		goto out;
	}
	for (i = 0; i < ulCount; i++) {
		CK_ATTRIBUTE *t = &pTemplate[i];
		const CK_ATTRIBUTE *a = mod_object_attr(obj, t->type);
		CK_RV r = CKR_OK;

		if (is_sensitive(obj, t->type)) {
			t->ulValueLen = CK_UNAVAILABLE_INFORMATION;
			r = CKR_ATTRIBUTE_SENSITIVE;
		} else if (!a) {
			t->ulValueLen = CK_UNAVAILABLE_INFORMATION;
			r = CKR_ATTRIBUTE_TYPE_INVALID;
		} else if (!t->pValue) {
			t->ulValueLen = a->ulValueLen;
		} else if (t->ulValueLen < a->ulValueLen) {
			t->ulValueLen = CK_UNAVAILABLE_INFORMATION;
			r = CKR_BUFFER_TOO_SMALL;
		} else {
			if (a->ulValueLen)
				memcpy(t->pValue, a->pValue, a->ulValueLen);
			t->ulValueLen = a->ulValueLen;
		}
		if (rv == CKR_OK)
			rv = r;
	}
out:
	mod_unlock();
	return mod_rv(__func__, rv);
}

CK_RV C_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize)
{
	mod_session *s;
	mod_object *obj;
	CK_ULONG size = 0;
	size_t i;
	CK_RV rv;

	if (!pulSize)
		return mod_rv(__func__, CKR_ARGUMENTS_BAD);
	rv = mod_session_enter(hSession, &s);
	if (rv != CKR_OK)
		return mod_rv(__func__, rv);
	obj = mod_object_get_inlock(s->slot, hObject);
	if (!obj) {
		rv = CKR_OBJECT_HANDLE_INVALID;
		goto out;
	}
	for (i = 0; i < obj->n_attrs; i++)
		size += obj->attrs[i].ulValueLen;
	*pulSize = size;
out:
	mod_unlock();
	return mod_rv(__func__, rv);
}

CK_RV C_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	mod_session *s;
	mod_slot *slot;
	CK_SLOT_ID slot_id;
	unsigned long gen;
	size_t i;
	CK_RV rv;

	if (!pTemplate && ulCount)
		return mod_rv(__func__, CKR_ARGUMENTS_BAD);
	rv = mod_session_enter(hSession, &s);
	if (rv != CKR_OK)
		return mod_rv(__func__, rv);
	if (s->find_active) {
		rv = CKR_OPERATION_ACTIVE;
		goto out;
	}
	slot_id = s->slot->id;
	gen = mod_generation_inlock();
	mod_unlock();

	rv = mod_objects_load(slot_id);

	if (mod_reenter(gen) != CKR_OK) {
		rv = CKR_CRYPTOKI_NOT_INITIALIZED;
		goto out;
	}
	if (rv != CKR_OK)
		goto out;
	s = mod_session_get_inlock(hSession);
	if (!s) {
		rv = CKR_SESSION_CLOSED;
		goto out;
	}
	if (s->find_active) {
		rv = CKR_OPERATION_ACTIVE;
		goto out;
	}
	slot = s->slot;
	free(s->found);
	s->found = NULL;
	s->n_found = s->find_pos = 0;
	if (slot->n_objects) {
		s->found = calloc(slot->n_objects, sizeof(*s->found));
		if (!s->found) {
			rv = CKR_HOST_MEMORY;
			goto out;
		}
	}
	for (i = 0; i < slot->n_objects; i++)
		if (mod_object_visible_inlock(slot, &slot->objects[i]) &&
		    matches(&slot->objects[i], pTemplate, ulCount))
			s->found[s->n_found++] = MOD_HANDLE(slot->index, i);
	s->find_active = 1;
out:
	mod_unlock();
	return mod_rv(__func__, rv);
}

CK_RV C_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject,
		    CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount)
{
	mod_session *s;
	CK_ULONG n = 0;
	CK_RV rv;

	if (!pulObjectCount || (!phObject && ulMaxObjectCount))
		return mod_rv(__func__, CKR_ARGUMENTS_BAD);
	rv = mod_session_enter(hSession, &s);
	if (rv != CKR_OK)
		return mod_rv(__func__, rv);
	if (!s->find_active) {
		rv = CKR_OPERATION_NOT_INITIALIZED;
		goto out;
	}
	while (n < ulMaxObjectCount && s->find_pos < s->n_found)
		phObject[n++] = s->found[s->find_pos++];
	*pulObjectCount = n;
out:
	mod_unlock();
	return mod_rv(__func__, rv);
}

CK_RV C_FindObjectsFinal(CK_SESSION_HANDLE hSession)
{
	mod_session *s;
	CK_RV rv;

	rv = mod_session_enter(hSession, &s);
	if (rv != CKR_OK)
		return mod_rv(__func__, rv);
	if (!s->find_active)
		rv = CKR_OPERATION_NOT_INITIALIZED;
	else
		rv = mod_session_cancel_inlock(s, CKF_FIND_OBJECTS);
	mod_unlock();
	return mod_rv(__func__, rv);
}

/* The tokens are write-protected: nothing is created, copied, changed or
 * destroyed. */

CK_RV C_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
		     CK_OBJECT_HANDLE_PTR phObject)
{
	return mod_session_answer(__func__, hSession, CKR_TOKEN_WRITE_PROTECTED);
}

CK_RV C_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
		   CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phNewObject)
{
	return mod_session_answer(__func__, hSession, CKR_TOKEN_WRITE_PROTECTED);
}

CK_RV C_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject)
{
	return mod_session_answer(__func__, hSession, CKR_TOKEN_WRITE_PROTECTED);
}

CK_RV C_SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
			  CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	return mod_session_answer(__func__, hSession, CKR_TOKEN_WRITE_PROTECTED);
}
