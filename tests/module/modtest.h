/* Helpers for the module's tests: load the built rsign-pkcs11.so with dlopen,
 * write a configuration for a fake server, find slots and objects, and check
 * signatures with OpenSSL against the signer's certificate. */
#ifndef MODTEST_H
#define MODTEST_H
#include <openssl/x509.h>

#include "module/pkcs11.h"
#include "fake_rsignd.h"

#ifndef RS_BUILDDIR
#define RS_BUILDDIR "."
#endif
#define MT_MODULE RS_BUILDDIR "/module/.libs/rsign-pkcs11.so"

extern CK_FUNCTION_LIST_PTR p11;
extern void *mt_dl;

/* Writes text to path with mode, or bails out (TAP "Bail out!"). */
void mt_write_file(const char *path, const char *text, int mode);
/* dlopen + C_GetFunctionList; bails out on failure. */
void mt_load(void);
void mt_unload(void);
/* The text of a file (up to 64 KiB; "" when unreadable), in static storage
 * that the next call reuses. */
char *mt_read_file(const char *path);
/* A private temporary directory, removed at exit. */
const char *mt_dir(void);
/* Writes the TLS trust anchor once and a config file for f with extra
 * lines; returns its path (static storage). mode as for chmod. */
const char *mt_conf(fake_server *f, const char *extra, int mode);
/* The request_timeout written into configurations: 1 second, or
 * $MT_REQUEST_TIMEOUT (slow runs such as valgrind). */
int mt_request_timeout(void);
/* Starts a fake server (bails out on failure). */
fake_server *mt_fake(int extra);
/* Clears the credential variables of the environment. */
void mt_clear_env(void);

/* C_Initialize with the config path in pReserved. */
CK_RV mt_init(const char *conf);
/* mt_init with the module's stderr (its log) captured into buf. */
CK_RV mt_init_capture(const char *conf, char *buf, size_t len);
/* Slot whose token label is label; (CK_SLOT_ID)-1 when none. */
CK_SLOT_ID mt_slot(const char *label);
CK_SESSION_HANDLE mt_open(const char *label);
/* The only object of this class in the session's token. */
CK_OBJECT_HANDLE mt_find(CK_SESSION_HANDLE s, CK_OBJECT_CLASS klass);
CK_ULONG mt_find_count(CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n);

/* Signs data with mech (params may be NULL) and checks the signature with
 * OpenSSL against cert. Returns the CK_RV of the first failing call, or
 * CKR_OK; *verified is 1 when OpenSSL accepted the signature. */
CK_RV mt_sign(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_MECHANISM *mech,
	      const unsigned char *data, size_t len, unsigned char *sig, CK_ULONG *siglen);
int mt_verify(X509 *cert, CK_MECHANISM *mech, const unsigned char *data, size_t len,
	      const unsigned char *sig, size_t siglen);

#endif
