/* Helpers shared by the C PKCS#11 drivers the suites script
 * (tests/contract/p11drive.c, tests/module/p11load.c): hex input and the
 * token found by its label. Header-only: each driver is one file. */
#ifndef RSIGN_TESTS_P11FIND_H
#define RSIGN_TESTS_P11FIND_H

#include <stdio.h>
#include <string.h>

#include "module/pkcs11.h"

#define P11FIND_MAX_SLOTS 512
#define P11FIND_NONE ((CK_SLOT_ID)-1)

/* s (hex, even length, at most max bytes) into out; -1 when it is not. */
static inline int p11find_unhex(const char *s, unsigned char *out, size_t max, size_t *len)
{
	size_t n = strlen(s), i;
	unsigned int b;

	if (n % 2 || n / 2 > max)
		return -1;
	for (i = 0; i < n / 2; i++) {
		if (sscanf(s + 2 * i, "%2x", &b) != 1)
			return -1;
		out[i] = (unsigned char)b;
	}
	*len = n / 2;
	return 0;
}

/* The slot whose token label is label (*slot = P11FIND_NONE when none);
 * *n_slots the number of slots with a token. Returns C_GetSlotList's CK_RV. */
static inline CK_RV p11find_token(CK_FUNCTION_LIST_PTR p11, const char *label, CK_SLOT_ID *slot,
				  CK_ULONG *n_slots)
{
	CK_SLOT_ID slots[P11FIND_MAX_SLOTS];
	CK_ULONG n = P11FIND_MAX_SLOTS, i;
	CK_TOKEN_INFO ti;
	size_t len = strlen(label);
	CK_RV rv = p11->C_GetSlotList(CK_TRUE, slots, &n);

	*slot = P11FIND_NONE;
	*n_slots = rv == CKR_OK ? n : 0;
	for (i = 0; rv == CKR_OK && i < n; i++)
		if (p11->C_GetTokenInfo(slots[i], &ti) == CKR_OK && len <= 32 &&
		    memcmp(ti.label, label, len) == 0 && (len == 32 || ti.label[len] == ' ')) {
			*slot = slots[i];
			break;
		}
	return rv;
}

#endif
