/* Slots and tokens: C_GetSlotList, C_GetSlotInfo, C_GetTokenInfo,
 * C_GetMechanismList, C_GetMechanismInfo, C_WaitForSlotEvent.
 *
 * C_GetSlotList is where the signer list is first fetched (and refreshed when
 * due); it never fails because the server is unreachable, it shows what it
 * has (p11-kit-proxy would otherwise fail every module it aggregates). */
#include <stdio.h>
#include <string.h>

#include "module.h"
#include "mech.h"

CK_RV C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount)
{
	size_t n;
	CK_RV rv;

	if (!pulCount)
		return mod_rv(__func__, CKR_ARGUMENTS_BAD);
	mod_slots_refresh();
	rv = mod_enter();
	if (rv != CKR_OK)
		return mod_rv(__func__, rv);
	n = mod_slots_list_inlock(tokenPresent, NULL, 0);
	if (pSlotList && *pulCount < n)
		rv = CKR_BUFFER_TOO_SMALL;
	else if (pSlotList)
		mod_slots_list_inlock(tokenPresent, pSlotList, n);
	*pulCount = n;
	mod_unlock();
	return mod_rv(__func__, rv);
}

CK_RV C_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
{
	char desc[MOD_NAME_MAX + 32];
	mod_slot *slot;
	CK_RV rv;

	if (!pInfo)
		return mod_rv(__func__, CKR_ARGUMENTS_BAD);
	rv = mod_slot_enter(slotID, 0, &slot);
	if (rv != CKR_OK)
		return mod_rv(__func__, rv);
	memset(pInfo, 0, sizeof(*pInfo));
	snprintf(desc, sizeof(desc), "rsign signer %s%s", slot->name,
		 slot->resolved && !slot->enabled ? " (disabled)" : "");
	mod_pad(pInfo->slotDescription, sizeof(pInfo->slotDescription), desc);
	mod_pad(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), MOD_MANUFACTURER);
	pInfo->flags = slot->present ? CKF_TOKEN_PRESENT : 0;
	pInfo->hardwareVersion.major = MOD_VERSION_MAJOR;
	pInfo->hardwareVersion.minor = MOD_VERSION_MINOR;
	pInfo->firmwareVersion = pInfo->hardwareVersion;
	mod_unlock();
	return mod_rv(__func__, rv);
}

/* 16 characters: the signer id's first hex digits; without credentials (id
 * unknown before login) the slot ID, which is derived from the name. */
static void token_serial(const mod_slot *slot, char out[17])
{
	size_t i, o = 0;

	if (!mod_login_required()) {
		for (i = 0; slot->signer_id[i] && o < 16; i++)
			if (slot->signer_id[i] != '-')
				out[o++] = slot->signer_id[i];
		out[o] = '\0';
		if (o)
			return;
	}
	snprintf(out, 17, "%016lx", (unsigned long)slot->id);
}

CK_RV C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
	mod_slot *slot;
	char serial[17];
	CK_RV rv;

	if (!pInfo)
		return mod_rv(__func__, CKR_ARGUMENTS_BAD);
	rv = mod_slot_enter(slotID, 1, &slot);
	if (rv != CKR_OK)
		return mod_rv(__func__, rv);
	memset(pInfo, 0, sizeof(*pInfo));
	mod_pad(pInfo->label, sizeof(pInfo->label), slot->name);
	mod_pad(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), MOD_MANUFACTURER);
	mod_pad(pInfo->model, sizeof(pInfo->model),
		slot->resolved ? rs_key_alg_name(slot->key_alg) : "signer");
	token_serial(slot, serial);
	mod_pad(pInfo->serialNumber, sizeof(pInfo->serialNumber), serial);
	pInfo->flags = CKF_TOKEN_INITIALIZED | CKF_WRITE_PROTECTED | CKF_USER_PIN_INITIALIZED;
	if (mod_login_required())
		pInfo->flags |= CKF_LOGIN_REQUIRED;
	pInfo->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
	pInfo->ulSessionCount = slot->sessions;
	pInfo->ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
	pInfo->ulRwSessionCount = slot->rw_sessions;
	pInfo->ulMaxPinLen = 8192;
	pInfo->ulMinPinLen = mod_login_required() ? 1 : 0;
	pInfo->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
	pInfo->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
	pInfo->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
	pInfo->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
	pInfo->hardwareVersion.major = MOD_VERSION_MAJOR;
	pInfo->hardwareVersion.minor = MOD_VERSION_MINOR;
	pInfo->firmwareVersion = pInfo->hardwareVersion;
	memset(pInfo->utcTime, ' ', sizeof(pInfo->utcTime)); /* no CKF_CLOCK_ON_TOKEN */
	mod_unlock();
	return mod_rv(__func__, rv);
}

CK_RV C_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList,
			 CK_ULONG_PTR pulCount)
{
	mod_slot *slot;
	size_t n;
	CK_RV rv;

	if (!pulCount)
		return mod_rv(__func__, CKR_ARGUMENTS_BAD);
	rv = mod_slot_enter(slotID, 1, &slot);
	if (rv != CKR_OK)
		return mod_rv(__func__, rv);
	/* Before login without credentials the key is unknown: all of them. */
	n = mod_mech_list(slot->resolved, slot->key_alg, NULL, 0) + mod_digest_mechs(NULL, 0);
	if (pMechanismList && *pulCount < n)
		rv = CKR_BUFFER_TOO_SMALL;
	else if (pMechanismList) {
		size_t k = mod_mech_list(slot->resolved, slot->key_alg, pMechanismList, n);

		mod_digest_mechs(pMechanismList + k, n - k);
	}
	*pulCount = n;
	mod_unlock();
	return mod_rv(__func__, rv);
}

CK_RV C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo)
{
	const mod_mech *m = mod_mech_find(type);
	mod_slot *slot;
	int ec;
	CK_RV rv;

	if (!pInfo)
		return mod_rv(__func__, CKR_ARGUMENTS_BAD);
	rv = mod_slot_enter(slotID, 1, &slot);
	if (rv != CKR_OK)
		return mod_rv(__func__, rv);
	memset(pInfo, 0, sizeof(*pInfo));
	if (mod_digest_mech_info(type, pInfo))
		goto out;
	if (!m || (slot->resolved && !mod_mech_fits_key(m, slot->key_alg))) {
		rv = CKR_MECHANISM_INVALID;
		goto out;
	}
	ec = m->family == MECH_ECDSA;
	memset(pInfo, 0, sizeof(*pInfo));
	if (slot->resolved) {
		pInfo->ulMinKeySize = pInfo->ulMaxKeySize =
			(CK_ULONG)rs_key_alg_bits(slot->key_alg);
	} else {
		pInfo->ulMinKeySize = ec ? 256 : 2048;
		pInfo->ulMaxKeySize = ec ? 521 : 4096;
	}
	/* Verification is local (OpenSSL, from the public key). */
	pInfo->flags = CKF_HW | CKF_SIGN | CKF_VERIFY;
	if (ec)
		pInfo->flags |= CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
out:
	mod_unlock();
	return mod_rv(__func__, rv);
}

/* Signers come and go only at a refresh; there is no event to wait for. */
CK_RV C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved)
{
	return mod_rv(__func__, CKR_FUNCTION_NOT_SUPPORTED);
}
