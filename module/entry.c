/* The exported entry points (C_GetFunctionList, C_GetInterfaceList,
 * C_GetInterface), the PKCS#11 2.40 and 3.0 function lists, and the
 * functions the module does not offer, which answer
 * CKR_FUNCTION_NOT_SUPPORTED so that every entry of both lists is callable
 * (C_SeedRandom and C_GenerateRandom: CKR_RANDOM_NO_RNG).
 * C_LoginUser has no user names to tell apart and behaves as C_Login. */
#include <string.h>

#include "module.h"

#define EXPORT __attribute__((visibility("default")))

#define NOT_SUPPORTED(name, args)                                                                  \
	CK_RV name args                                                                            \
	{                                                                                          \
		return mod_rv(#name, CKR_FUNCTION_NOT_SUPPORTED);                                  \
	}

NOT_SUPPORTED(C_InitToken, (CK_SLOT_ID s, CK_UTF8CHAR_PTR p, CK_ULONG n, CK_UTF8CHAR_PTR l))
NOT_SUPPORTED(C_InitPIN, (CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR p, CK_ULONG n))
NOT_SUPPORTED(C_SetPIN,
	      (CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR o, CK_ULONG on, CK_UTF8CHAR_PTR p, CK_ULONG n))
NOT_SUPPORTED(C_GetOperationState, (CK_SESSION_HANDLE h, CK_BYTE_PTR p, CK_ULONG_PTR n))
NOT_SUPPORTED(C_SetOperationState, (CK_SESSION_HANDLE h, CK_BYTE_PTR p, CK_ULONG n,
				    CK_OBJECT_HANDLE e, CK_OBJECT_HANDLE a))
NOT_SUPPORTED(C_EncryptInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k))
NOT_SUPPORTED(C_Encrypt,
	      (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG n, CK_BYTE_PTR o, CK_ULONG_PTR on))
NOT_SUPPORTED(C_EncryptUpdate,
	      (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG n, CK_BYTE_PTR o, CK_ULONG_PTR on))
NOT_SUPPORTED(C_EncryptFinal, (CK_SESSION_HANDLE h, CK_BYTE_PTR o, CK_ULONG_PTR on))
NOT_SUPPORTED(C_DecryptInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k))
NOT_SUPPORTED(C_Decrypt,
	      (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG n, CK_BYTE_PTR o, CK_ULONG_PTR on))
NOT_SUPPORTED(C_DecryptUpdate,
	      (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG n, CK_BYTE_PTR o, CK_ULONG_PTR on))
NOT_SUPPORTED(C_DecryptFinal, (CK_SESSION_HANDLE h, CK_BYTE_PTR o, CK_ULONG_PTR on))
NOT_SUPPORTED(C_DigestKey, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE k))
NOT_SUPPORTED(C_SignRecoverInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k))
NOT_SUPPORTED(C_SignRecover,
	      (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG n, CK_BYTE_PTR o, CK_ULONG_PTR on))
NOT_SUPPORTED(C_VerifyRecoverInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k))
NOT_SUPPORTED(C_VerifyRecover,
	      (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG n, CK_BYTE_PTR o, CK_ULONG_PTR on))
NOT_SUPPORTED(C_DigestEncryptUpdate,
	      (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG n, CK_BYTE_PTR o, CK_ULONG_PTR on))
NOT_SUPPORTED(C_DecryptDigestUpdate,
	      (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG n, CK_BYTE_PTR o, CK_ULONG_PTR on))
NOT_SUPPORTED(C_SignEncryptUpdate,
	      (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG n, CK_BYTE_PTR o, CK_ULONG_PTR on))
NOT_SUPPORTED(C_DecryptVerifyUpdate,
	      (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG n, CK_BYTE_PTR o, CK_ULONG_PTR on))
NOT_SUPPORTED(C_GenerateKey, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR t,
			      CK_ULONG n, CK_OBJECT_HANDLE_PTR k))
NOT_SUPPORTED(C_GenerateKeyPair,
	      (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR pt, CK_ULONG pn,
	       CK_ATTRIBUTE_PTR st, CK_ULONG sn, CK_OBJECT_HANDLE_PTR pk, CK_OBJECT_HANDLE_PTR sk))
NOT_SUPPORTED(C_WrapKey, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE w,
			  CK_OBJECT_HANDLE k, CK_BYTE_PTR o, CK_ULONG_PTR on))
NOT_SUPPORTED(C_UnwrapKey,
	      (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE u, CK_BYTE_PTR w,
	       CK_ULONG wn, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR k))
NOT_SUPPORTED(C_DeriveKey, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE b,
			    CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR k))

/* A signing token has no random number generator (no CKF_RNG in its flags):
 * CKR_RANDOM_NO_RNG, which tools such as pkcs11-tool --test read as "RNG not
 * available" rather than as a failure. */

CK_RV C_SeedRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen)
{
	return mod_session_answer(__func__, hSession, CKR_RANDOM_NO_RNG);
}

CK_RV C_GenerateRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pRandomData, CK_ULONG ulRandomLen)
{
	return mod_session_answer(__func__, hSession, CKR_RANDOM_NO_RNG);
}

/* Legacy parallel-function calls: PKCS#11 fixes their answer. */
CK_RV C_GetFunctionStatus(CK_SESSION_HANDLE hSession)
{
	return mod_rv(__func__, CKR_FUNCTION_NOT_PARALLEL);
}

CK_RV C_CancelFunction(CK_SESSION_HANDLE hSession)
{
	return mod_rv(__func__, CKR_FUNCTION_NOT_PARALLEL);
}

/* ---- PKCS#11 3.0 additions -------------------------------------------------- */

CK_RV C_LoginUser(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin,
		  CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pUsername, CK_ULONG ulUsernameLen)
{
	return C_Login(hSession, userType, pPin, ulPinLen);
}

NOT_SUPPORTED(C_MessageEncryptInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k))
NOT_SUPPORTED(C_EncryptMessage,
	      (CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pn, CK_BYTE_PTR a, CK_ULONG an,
	       CK_BYTE_PTR d, CK_ULONG n, CK_BYTE_PTR o, CK_ULONG_PTR on))
NOT_SUPPORTED(C_EncryptMessageBegin,
	      (CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pn, CK_BYTE_PTR a, CK_ULONG an))
NOT_SUPPORTED(C_EncryptMessageNext, (CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pn, CK_BYTE_PTR d,
				     CK_ULONG n, CK_BYTE_PTR o, CK_ULONG_PTR on, CK_FLAGS f))
NOT_SUPPORTED(C_MessageEncryptFinal, (CK_SESSION_HANDLE h))
NOT_SUPPORTED(C_MessageDecryptInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k))
NOT_SUPPORTED(C_DecryptMessage,
	      (CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pn, CK_BYTE_PTR a, CK_ULONG an,
	       CK_BYTE_PTR d, CK_ULONG n, CK_BYTE_PTR o, CK_ULONG_PTR on))
NOT_SUPPORTED(C_DecryptMessageBegin,
	      (CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pn, CK_BYTE_PTR a, CK_ULONG an))
NOT_SUPPORTED(C_DecryptMessageNext, (CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pn, CK_BYTE_PTR d,
				     CK_ULONG n, CK_BYTE_PTR o, CK_ULONG_PTR on, CK_FLAGS f))
NOT_SUPPORTED(C_MessageDecryptFinal, (CK_SESSION_HANDLE h))
NOT_SUPPORTED(C_MessageSignInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k))
NOT_SUPPORTED(C_SignMessage, (CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pn, CK_BYTE_PTR d,
			      CK_ULONG n, CK_BYTE_PTR s, CK_ULONG_PTR sn))
NOT_SUPPORTED(C_SignMessageBegin, (CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pn))
NOT_SUPPORTED(C_SignMessageNext, (CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pn, CK_BYTE_PTR d,
				  CK_ULONG n, CK_BYTE_PTR s, CK_ULONG_PTR sn))
NOT_SUPPORTED(C_MessageSignFinal, (CK_SESSION_HANDLE h))
NOT_SUPPORTED(C_MessageVerifyInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k))
NOT_SUPPORTED(C_VerifyMessage, (CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pn, CK_BYTE_PTR d,
				CK_ULONG n, CK_BYTE_PTR s, CK_ULONG sn))
NOT_SUPPORTED(C_VerifyMessageBegin, (CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pn))
NOT_SUPPORTED(C_VerifyMessageNext, (CK_SESSION_HANDLE h, CK_VOID_PTR p, CK_ULONG pn, CK_BYTE_PTR d,
				    CK_ULONG n, CK_BYTE_PTR s, CK_ULONG sn))
NOT_SUPPORTED(C_MessageVerifyFinal, (CK_SESSION_HANDLE h))

/* Through the 3.0 list C_GetInfo reports version 3.0. */
static CK_RV get_info_3_0(CK_INFO_PTR pInfo)
{
	return mod_rv("C_GetInfo", mod_get_info(pInfo, 3, 0));
}

/* ---- the function lists ----------------------------------------------------- */

#define LIST_2_40(get_info)                                                                        \
	C_Initialize, C_Finalize, get_info, C_GetFunctionList, C_GetSlotList, C_GetSlotInfo,       \
		C_GetTokenInfo, C_GetMechanismList, C_GetMechanismInfo, C_InitToken, C_InitPIN,    \
		C_SetPIN, C_OpenSession, C_CloseSession, C_CloseAllSessions, C_GetSessionInfo,     \
		C_GetOperationState, C_SetOperationState, C_Login, C_Logout, C_CreateObject,       \
		C_CopyObject, C_DestroyObject, C_GetObjectSize, C_GetAttributeValue,               \
		C_SetAttributeValue, C_FindObjectsInit, C_FindObjects, C_FindObjectsFinal,         \
		C_EncryptInit, C_Encrypt, C_EncryptUpdate, C_EncryptFinal, C_DecryptInit,          \
		C_Decrypt, C_DecryptUpdate, C_DecryptFinal, C_DigestInit, C_Digest,                \
		C_DigestUpdate, C_DigestKey, C_DigestFinal, C_SignInit, C_Sign, C_SignUpdate,      \
		C_SignFinal, C_SignRecoverInit, C_SignRecover, C_VerifyInit, C_Verify,             \
		C_VerifyUpdate, C_VerifyFinal, C_VerifyRecoverInit, C_VerifyRecover,               \
		C_DigestEncryptUpdate, C_DecryptDigestUpdate, C_SignEncryptUpdate,                 \
		C_DecryptVerifyUpdate, C_GenerateKey, C_GenerateKeyPair, C_WrapKey, C_UnwrapKey,   \
		C_DeriveKey, C_SeedRandom, C_GenerateRandom, C_GetFunctionStatus,                  \
		C_CancelFunction, C_WaitForSlotEvent

static CK_FUNCTION_LIST list_2_40 = {
	{2, 40},
	LIST_2_40(C_GetInfo),
};

static CK_FUNCTION_LIST_3_0 list_3_0 = {
	{3, 0},
	LIST_2_40(get_info_3_0),
	C_GetInterfaceList,
	C_GetInterface,
	C_LoginUser,
	C_SessionCancel,
	C_MessageEncryptInit,
	C_EncryptMessage,
	C_EncryptMessageBegin,
	C_EncryptMessageNext,
	C_MessageEncryptFinal,
	C_MessageDecryptInit,
	C_DecryptMessage,
	C_DecryptMessageBegin,
	C_DecryptMessageNext,
	C_MessageDecryptFinal,
	C_MessageSignInit,
	C_SignMessage,
	C_SignMessageBegin,
	C_SignMessageNext,
	C_MessageSignFinal,
	C_MessageVerifyInit,
	C_VerifyMessage,
	C_VerifyMessageBegin,
	C_VerifyMessageNext,
	C_MessageVerifyFinal,
};

static CK_UTF8CHAR interface_name[] = "PKCS 11";

/* 3.0 first: the default when a caller asks for no version. Not
 * CKF_INTERFACE_FORK_SAFE: a forked child must call C_Initialize again. */
static CK_INTERFACE interfaces[] = {
	{interface_name, &list_3_0, 0},
	{interface_name, &list_2_40, 0},
};

#define N_INTERFACES (sizeof(interfaces) / sizeof(interfaces[0]))

EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
	if (!ppFunctionList)
		return mod_rv(__func__, CKR_ARGUMENTS_BAD);
	*ppFunctionList = &list_2_40;
	return CKR_OK;
}

EXPORT CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount)
{
	CK_RV rv = CKR_OK;

	if (!pulCount)
		return mod_rv(__func__, CKR_ARGUMENTS_BAD);
	if (pInterfacesList && *pulCount < N_INTERFACES)
		rv = CKR_BUFFER_TOO_SMALL;
	else if (pInterfacesList)
		memcpy(pInterfacesList, interfaces, sizeof(interfaces));
	*pulCount = N_INTERFACES;
	return mod_rv(__func__, rv);
}

EXPORT CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
			    CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags)
{
	size_t i;

	if (!ppInterface)
		return mod_rv(__func__, CKR_ARGUMENTS_BAD);
	for (i = 0; i < N_INTERFACES; i++) {
		const CK_VERSION *v = interfaces[i].pFunctionList; /* first member */

		if (pInterfaceName && strcmp((const char *)pInterfaceName,
					     (const char *)interfaces[i].pInterfaceName) != 0)
			continue;
		if (pVersion && (pVersion->major != v->major || pVersion->minor != v->minor))
			continue;
		if ((interfaces[i].flags & flags) != flags)
			continue;
		*ppInterface = &interfaces[i];
		return CKR_OK;
	}
	return mod_rv(__func__, CKR_ARGUMENTS_BAD);
}
