/* Shared by the module's tests; see modtest.h. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "rsign/der.h"
#include "rsign/util.h"

#include "tests/unit/tap.h"

#include "modtest.h"

CK_FUNCTION_LIST_PTR p11;
void *mt_dl;
static char tmpdir[64];
static pid_t owner;

static void cleanup_dir(void)
{
	char path[512];
	struct dirent *e;
	DIR *d;

	if (!tmpdir[0] || getpid() != owner)
		return;
	d = opendir(tmpdir);
	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(tmpdir);
}

char *mt_read_file(const char *path)
{
	static char buf[1 << 16];
	FILE *fp = fopen(path, "r");
	size_t n = fp ? fread(buf, 1, sizeof(buf) - 1, fp) : 0;

	if (fp)
		fclose(fp);
	buf[n] = '\0';
	return buf;
}

const char *mt_dir(void)
{
	if (!tmpdir[0]) {
		rs_strlcpy(tmpdir, "/tmp/rsign-modtest-XXXXXX", sizeof(tmpdir));
		if (!mkdtemp(tmpdir))
			tap_bail("mkdtemp: %s", strerror(errno));
		owner = getpid();
		atexit(cleanup_dir);
	}
	return tmpdir;
}

void mt_load(void)
{
	CK_C_GetFunctionList get;

	mt_dl = dlopen(MT_MODULE, RTLD_NOW | RTLD_LOCAL);
	if (!mt_dl)
		tap_bail("dlopen %s: %s", MT_MODULE, dlerror());
	get = (CK_C_GetFunctionList)dlsym(mt_dl, "C_GetFunctionList");
	if (!get || get(&p11) != CKR_OK)
		tap_bail("C_GetFunctionList of %s failed", MT_MODULE);
}

void mt_unload(void)
{
	if (mt_dl)
		dlclose(mt_dl);
	mt_dl = NULL;
	p11 = NULL;
}

void mt_write_file(const char *path, const char *text, int mode)
{
	FILE *fp = fopen(path, "w");

	if (!fp || fputs(text, fp) < 0 || fclose(fp) != 0 || chmod(path, (mode_t)mode) != 0)
		tap_bail("cannot write %s: %s", path, strerror(errno));
}

const char *mt_conf(fake_server *f, const char *extra, int mode)
{
	static char path[256];
	static int seq;
	char ca[200], text[4096];

	snprintf(ca, sizeof(ca), "%s/tls-ca.pem", mt_dir());
	mt_write_file(ca, fake_tls_pem(f), 0644);
	snprintf(path, sizeof(path), "%s/pkcs11-%d.conf", mt_dir(), ++seq);
	snprintf(text, sizeof(text),
		 "# written by the module tests\n"
		 "url = https://127.0.0.1:%u\n"
		 "ca_file = %s\n"
		 "connect_timeout = %d\n"
		 "request_timeout = %d\n"
		 "log_level = %s\n"
		 "%s\n",
		 fake_port(f), ca, mt_request_timeout() + 1, mt_request_timeout(),
		 getenv("MT_LOG_LEVEL") ? getenv("MT_LOG_LEVEL") : "error", extra ? extra : "");
	mt_write_file(path, text, mode);
	return path;
}

CK_RV mt_init_capture(const char *path, char *buf, size_t len)
{
	char file[256];
	int fd, saved;
	ssize_t n;
	CK_RV rv;

	snprintf(file, sizeof(file), "%s/stderr.txt", mt_dir());
	fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	rv = mt_init(path);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	return rv;
}

int mt_request_timeout(void)
{
	const char *e = getenv("MT_REQUEST_TIMEOUT");
	int t = e ? atoi(e) : 1;

	return t > 0 ? t : 1;
}

fake_server *mt_fake(int extra)
{
	fake_server *f = fake_new(extra);

	if (!f || fake_start(f) < 0)
		tap_bail("the fake rsignd did not start");
	return f;
}

void mt_clear_env(void)
{
	unsetenv("RSIGN_TOKEN");
	unsetenv("RSIGN_CLIENT_ID");
	unsetenv("RSIGN_CLIENT_SECRET");
	unsetenv("RSIGN_PKCS11_CONF");
	unsetenv("RSIGN_URL");
}

CK_RV mt_init(const char *conf)
{
	CK_C_INITIALIZE_ARGS args;

	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	args.pReserved = (void *)conf;
	return p11->C_Initialize(&args);
}

CK_SLOT_ID mt_slot(const char *label)
{
	CK_SLOT_ID slots[512];
	CK_ULONG n = 512, i;
	CK_TOKEN_INFO ti;
	size_t len = strlen(label);

	if (p11->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
		return (CK_SLOT_ID)-1;
	for (i = 0; i < n; i++) {
		if (p11->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		if (memcmp(ti.label, label, len) == 0 && (len == 32 || ti.label[len] == ' '))
			return slots[i];
	}
	return (CK_SLOT_ID)-1;
}

CK_SESSION_HANDLE mt_open(const char *label)
{
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_SLOT_ID id = mt_slot(label);

	if (id == (CK_SLOT_ID)-1 ||
	    p11->C_OpenSession(id, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
		return CK_INVALID_HANDLE;
	return s;
}

CK_ULONG mt_find_count(CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	CK_OBJECT_HANDLE h[64];
	CK_ULONG got = 0;

	if (p11->C_FindObjectsInit(s, tmpl, n) != CKR_OK)
		return (CK_ULONG)-1;
	if (p11->C_FindObjects(s, h, 64, &got) != CKR_OK)
		got = (CK_ULONG)-1;
	p11->C_FindObjectsFinal(s);
	return got;
}

CK_OBJECT_HANDLE mt_find(CK_SESSION_HANDLE s, CK_OBJECT_CLASS klass)
{
	CK_ATTRIBUTE t = {CKA_CLASS, &klass, sizeof(klass)};
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_ULONG got = 0;

	if (p11->C_FindObjectsInit(s, &t, 1) != CKR_OK)
		return CK_INVALID_HANDLE;
	if (p11->C_FindObjects(s, &h, 1, &got) != CKR_OK || got != 1)
		h = CK_INVALID_HANDLE;
	p11->C_FindObjectsFinal(s);
	return h;
}

CK_RV mt_sign(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_MECHANISM *mech,
	      const unsigned char *data, size_t len, unsigned char *sig, CK_ULONG *siglen)
{
	CK_RV rv = p11->C_SignInit(s, mech, key);

	if (rv != CKR_OK)
		return rv;
	return p11->C_Sign(s, (CK_BYTE_PTR)data, len, sig, siglen);
}

static const EVP_MD *md_of(CK_MECHANISM_TYPE t)
{
	switch (t) {
	case CKM_SHA256:
	case CKM_SHA256_RSA_PKCS:
	case CKM_SHA256_RSA_PKCS_PSS:
	case CKM_ECDSA_SHA256:
		return EVP_sha256();
	case CKM_SHA384:
	case CKM_SHA384_RSA_PKCS:
	case CKM_SHA384_RSA_PKCS_PSS:
	case CKM_ECDSA_SHA384:
		return EVP_sha384();
	case CKM_SHA512:
	case CKM_SHA512_RSA_PKCS:
	case CKM_SHA512_RSA_PKCS_PSS:
	case CKM_ECDSA_SHA512:
		return EVP_sha512();
	default:
		return NULL;
	}
}

/* Verification written independently of the module: from the certificate
 * with the EVP API, hashing where the mechanism says so. */
int mt_verify(X509 *cert, CK_MECHANISM *mech, const unsigned char *data, size_t len,
	      const unsigned char *sig, size_t siglen)
{
	EVP_PKEY *pk = X509_get0_pubkey(cert);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
	const EVP_MD *md = md_of(mech->mechanism);
	unsigned char dig[64], der[256], rec[1024];
	const unsigned char *in = data, *s = sig;
	size_t inlen = len, slen = siglen, reclen = sizeof(rec);
	unsigned int dlen;
	int ok = 0;

	if (!ctx)
		return 0;
	if (md) {
		if (!EVP_Digest(data, len, dig, &dlen, md, NULL))
			goto out;
		in = dig;
		inlen = dlen;
	}
	switch (mech->mechanism) {
	case CKM_RSA_PKCS:
		/* raw: what is recovered is exactly the input */
		ok = EVP_PKEY_verify_recover_init(ctx) > 0 &&
		     EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0 &&
		     EVP_PKEY_verify_recover(ctx, rec, &reclen, sig, siglen) > 0 && reclen == len &&
		     memcmp(rec, data, len) == 0;
		goto out;
	case CKM_SHA256_RSA_PKCS:
	case CKM_SHA384_RSA_PKCS:
	case CKM_SHA512_RSA_PKCS:
		ok = EVP_PKEY_verify_init(ctx) > 0 &&
		     EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0 &&
		     EVP_PKEY_CTX_set_signature_md(ctx, md) > 0;
		break;
	case CKM_RSA_PKCS_PSS:
	case CKM_SHA256_RSA_PKCS_PSS:
	case CKM_SHA384_RSA_PKCS_PSS:
	case CKM_SHA512_RSA_PKCS_PSS: {
		const CK_RSA_PKCS_PSS_PARAMS *p = mech->pParameter;
		const EVP_MD *pmd = md_of(p->hashAlg);

		ok = EVP_PKEY_verify_init(ctx) > 0 &&
		     EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) > 0 &&
		     EVP_PKEY_CTX_set_signature_md(ctx, pmd) > 0 &&
		     EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, pmd) > 0 &&
		     EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, (int)p->sLen) > 0;
		break;
	}
	default: {
		/* ECDSA: r||s back to DER */
		ECDSA_SIG *es = ECDSA_SIG_new();
		BIGNUM *r = BN_bin2bn(sig, (int)siglen / 2, NULL);
		BIGNUM *ss = BN_bin2bn(sig + siglen / 2, (int)siglen / 2, NULL);
		unsigned char *p = der;
		int n;

		if (!es || !r || !ss || !ECDSA_SIG_set0(es, r, ss)) {
			ECDSA_SIG_free(es);
			BN_free(r);
			BN_free(ss);
			goto out;
		}
		n = i2d_ECDSA_SIG(es, &p);
		ECDSA_SIG_free(es);
		if (n <= 0)
			goto out;
		s = der;
		slen = (size_t)n;
		ok = EVP_PKEY_verify_init(ctx) > 0;
		break;
	}
	}
	ok = ok && EVP_PKEY_verify(ctx, s, slen, in, inlen) == 1;
out:
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}
