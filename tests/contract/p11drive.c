/* The contract suite's PKCS#11 driver: loads the built rsign-pkcs11.so,
 * initialises it with a configuration file, finds the token by label,
 * optionally logs in with a PIN, and signs the input with a mechanism:
 *
 *   p11drive CONF LABEL MECHANISM HEXDATA
 *
 * $P11DRIVE_PIN, when set, is given to C_Login (CKU_USER) first; with
 * $P11DRIVE_PAUSE set it prints "paused" once the key is found and waits for
 * a line on stdin before C_SignInit (the suite changes the server then).
 * Prints one line per step it reached, "<step> 0x<CK_RV hex>", the last one
 * saying where it stopped; a token that is not there prints "token missing
 * <slots>"; a signature prints "signature <hex>". Exits 0 whenever it
 * could tell what happened (the suite judges the outcome), 2 on bad usage,
 * 1 when the module cannot be loaded. The PIN is never printed. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "module/pkcs11.h"
#include "tests/contract/p11find.h"

#ifndef RS_BUILDDIR
#define RS_BUILDDIR "."
#endif
#define MODULE RS_BUILDDIR "/module/.libs/rsign-pkcs11.so"

static CK_FUNCTION_LIST_PTR p11;
static CK_RSA_PKCS_PSS_PARAMS pss256 = {CKM_SHA256, CKG_MGF1_SHA256, 32};

static const struct {
	const char *name;
	CK_MECHANISM mech;
} mechs[] = {
	{"CKM_ECDSA", {CKM_ECDSA, NULL, 0}},
	{"CKM_ECDSA_SHA256", {CKM_ECDSA_SHA256, NULL, 0}},
	{"CKM_RSA_PKCS", {CKM_RSA_PKCS, NULL, 0}},
	{"CKM_SHA256_RSA_PKCS", {CKM_SHA256_RSA_PKCS, NULL, 0}},
	{"CKM_RSA_PKCS_PSS", {CKM_RSA_PKCS_PSS, &pss256, sizeof(pss256)}},
	{"CKM_SHA256_RSA_PKCS_PSS", {CKM_SHA256_RSA_PKCS_PSS, &pss256, sizeof(pss256)}},
};

static int step(const char *what, CK_RV rv)
{
	printf("%s 0x%lx\n", what, (unsigned long)rv);
	return rv == CKR_OK;
}

static CK_SLOT_ID find_token(const char *label, CK_ULONG *n_slots)
{
	CK_SLOT_ID slot;

	if (!step("C_GetSlotList", p11find_token(p11, label, &slot, n_slots)))
		return (CK_SLOT_ID)-1;
	return slot;
}

/* Logs in (when a PIN is given) and signs in an open session. */
static void sign_in(CK_SESSION_HANDLE s, const CK_MECHANISM *mech, unsigned char *data, size_t len,
		    const char *pin)
{
	CK_OBJECT_CLASS klass = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t = {CKA_CLASS, &klass, sizeof(klass)};
	CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
	CK_MECHANISM m = *mech;
	unsigned char sig[1024];
	CK_ULONG got = 0, siglen = sizeof(sig), i;

	if (pin && !step("C_Login", p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin))))
		return;
	if (!step("C_FindObjectsInit", p11->C_FindObjectsInit(s, &t, 1)))
		return;
	if (!step("C_FindObjects", p11->C_FindObjects(s, &key, 1, &got)))
		return;
	p11->C_FindObjectsFinal(s);
	if (got != 1) {
		printf("key missing\n");
		return;
	}
	if (getenv("P11DRIVE_PAUSE")) {
		char line[8];

		printf("paused\n");
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			return;
	}
	if (!step("C_SignInit", p11->C_SignInit(s, &m, key)) ||
	    !step("C_Sign", p11->C_Sign(s, data, len, sig, &siglen)))
		return;
	printf("signature ");
	for (i = 0; i < siglen; i++)
		printf("%02x", sig[i]);
	printf("\n");
}

int main(int argc, char **argv)
{
	const CK_MECHANISM *mech = NULL;
	CK_C_INITIALIZE_ARGS args;
	CK_C_GetFunctionList get;
	CK_SESSION_HANDLE s;
	CK_SLOT_ID slot;
	CK_ULONG n_slots;
	unsigned char data[1024];
	size_t len, i;
	void *dl;

	for (i = 0; argc >= 5 && i < sizeof(mechs) / sizeof(mechs[0]); i++)
		if (strcmp(argv[3], mechs[i].name) == 0)
			mech = &mechs[i].mech;
	if (argc != 5 || !mech || p11find_unhex(argv[4], data, sizeof(data), &len) < 0) {
		fprintf(stderr, "usage: %s CONF LABEL MECHANISM HEXDATA\n", argv[0]);
		return 2;
	}
	dl = dlopen(getenv("P11DRIVE_MODULE") ? getenv("P11DRIVE_MODULE") : MODULE,
		    RTLD_NOW | RTLD_LOCAL);
	get = dl ? (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList") : NULL;
	if (!get || get(&p11) != CKR_OK) {
		fprintf(stderr, "cannot load %s: %s\n", MODULE,
			dl ? "no C_GetFunctionList" : dlerror());
		return 1;
	}
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	args.pReserved = argv[1];
	if (!step("C_Initialize", p11->C_Initialize(&args)))
		goto out;
	slot = find_token(argv[2], &n_slots);
	if (slot == (CK_SLOT_ID)-1) {
		printf("token missing %lu\n", (unsigned long)n_slots);
	} else if (step("C_OpenSession",
			p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s))) {
		sign_in(s, mech, data, len, getenv("P11DRIVE_PIN"));
		p11->C_CloseSession(s);
	}
	p11->C_Finalize(NULL);
out:
	fflush(stdout);
	/* No dlclose: the module stays mapped until exit. After a dlclose,
	 * LeakSanitizer (GCC 12's) still lists the unloaded library's dynamic
	 * TLS block and its tracer crashes at exit ("DTLS 6 at 0x1a0", "Tracer
	 * caught signal 11"), which failed the first module scenario of the
	 * ASan contract run every time. */
	(void)dl;
	return 0;
}
