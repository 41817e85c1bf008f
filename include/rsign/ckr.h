/* The names of PKCS#11 return values (CK_RV) for log lines and error
 * messages, shared by the module and the server. */
#ifndef RSIGN_CKR_H
#define RSIGN_CKR_H

/* Room for the longest name rs_ckr_name makes up for an unknown value. */
#define RS_CKR_NAME_MAX 40

/* "CKR_PIN_INCORRECT" for every CKR_ value p11-kit's pkcs11.h defines.
 * Any other value gets "CKR_VENDOR_DEFINED+0x7273001" (above
 * CKR_VENDOR_DEFINED) or "CKR_(unknown 0x999)", written into a buffer of the
 * calling thread that stays valid until that thread has named four more
 * unknown values: safe across threads, and a few may share one printf. */
const char *rs_ckr_name(unsigned long rv);

#endif
