/* The failover-under-load suite's C_Sign driver (tests/module/run-failover-load):
 * N threads signing through the real rsign-pkcs11.so until told to stop.
 *
 *   p11load CONF LABEL THREADS OUTFILE
 *   p11load --verify CERT.pem OUTFILE
 *
 * C_Initialize once (CKF_OS_LOCKING_OK, CONF as pReserved, as p11drive);
 * the token is found by LABEL; each thread opens its own session, finds the
 * private key and loops C_SignInit(CKM_ECDSA_SHA256) + C_Sign over data of
 * its own (distinct per call: a per-run random prefix, the thread, the call
 * number). Every call appends one line to OUTFILE, flushed at once so the
 * suite can follow the progress while the load runs:
 *
 *   call THREAD SEQ START END STEP RV DATAHEX SIGHEX
 *
 * START/END are CLOCK_MONOTONIC seconds (the clock of Python's
 * time.monotonic() on Linux), STEP the last step made (SignInit or Sign),
 * RV its CK_RV in hex, SIGHEX "-" without a signature. Once every thread
 * has its session and key it prints "started" on stdout; it stops at the
 * first line or EOF on stdin, joins the threads and prints
 * "calls N ok M". Exit 0 when it could run (the suite judges the calls),
 * 1 when the module or the token could not be set up, 2 on bad usage.
 * $P11LOAD_MODULE overrides the module path.
 *
 * --verify checks every CKR_OK signature of such a file with libcrypto
 * against the public key of the certificate (thousands of calls: one openssl
 * process each would take minutes), prints "bad THREAD SEQ" for each that
 * does not verify and then "verified N bad M"; exit 0 when the file and
 * the certificate could be read, 1 otherwise. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "module/pkcs11.h"
#include "tests/contract/p11find.h"

#ifndef RS_BUILDDIR
#define RS_BUILDDIR "."
#endif
#define MODULE RS_BUILDDIR "/module/.libs/rsign-pkcs11.so"
#define MAX_THREADS 64
#define DATA_LEN 32
#define SIG_MAX 1024

typedef struct {
	pthread_t thread;
	int idx, started;
	unsigned long calls, ok;
} worker;

static CK_FUNCTION_LIST_PTR p11;
static CK_SLOT_ID slot;
static unsigned char prefix[16]; /* random per run: data never repeats across runs */
static FILE *calls_out;
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t stop_mu = PTHREAD_MUTEX_INITIALIZER;
static int stop;
static pthread_barrier_t ready;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int stopped(void)
{
	int s;

	pthread_mutex_lock(&stop_mu);
	s = stop;
	pthread_mutex_unlock(&stop_mu);
	return s;
}

static void hex(FILE *f, const unsigned char *b, size_t n)
{
	size_t i;

	if (n == 0)
		fputc('-', f);
	for (i = 0; i < n; i++)
		fprintf(f, "%02x", b[i]);
}

static void record(const worker *w, double start, double end, const char *step, CK_RV rv,
		   const unsigned char *data, const unsigned char *sig, size_t sig_len)
{
	pthread_mutex_lock(&out_mu);
	fprintf(calls_out, "call %d %lu %.6f %.6f %s 0x%lx ", w->idx, w->calls, start, end, step,
		(unsigned long)rv);
	hex(calls_out, data, DATA_LEN);
	fputc(' ', calls_out);
	hex(calls_out, sig, sig_len);
	fputc('\n', calls_out);
	fflush(calls_out);
	pthread_mutex_unlock(&out_mu);
}

static CK_OBJECT_HANDLE find_key(CK_SESSION_HANDLE s)
{
	CK_OBJECT_CLASS klass = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t = {CKA_CLASS, &klass, sizeof(klass)};
	CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
	CK_ULONG got = 0;

	if (p11->C_FindObjectsInit(s, &t, 1) != CKR_OK)
		return CK_INVALID_HANDLE;
	if (p11->C_FindObjects(s, &key, 1, &got) != CKR_OK)
		got = 0;
	p11->C_FindObjectsFinal(s);
	return got == 1 ? key : CK_INVALID_HANDLE;
}

static void *run(void *arg)
{
	worker *w = arg;
	CK_MECHANISM m = {CKM_ECDSA_SHA256, NULL, 0};
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
	unsigned char data[DATA_LEN], sig[SIG_MAX];
	CK_RV rv;

	rv = p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	if (rv == CKR_OK)
		key = find_key(s);
	w->started = rv == CKR_OK && key != CK_INVALID_HANDLE;
	if (!w->started)
		fprintf(stderr, "p11load: thread %d: C_OpenSession 0x%lx, key %s\n", w->idx,
			(unsigned long)rv, key == CK_INVALID_HANDLE ? "missing" : "found");
	pthread_barrier_wait(&ready);
	while (w->started && !stopped()) {
		CK_ULONG sig_len = sizeof(sig);
		const char *step = "SignInit";
		double start;

		memcpy(data, prefix, sizeof(prefix));
		data[16] = (unsigned char)w->idx;
		memset(data + 17, 0, DATA_LEN - 17);
		data[24] = (unsigned char)(w->calls >> 24);
		data[25] = (unsigned char)(w->calls >> 16);
		data[26] = (unsigned char)(w->calls >> 8);
		data[27] = (unsigned char)w->calls;
		start = now();
		rv = p11->C_SignInit(s, &m, key);
		if (rv == CKR_OK) {
			step = "Sign";
			rv = p11->C_Sign(s, data, DATA_LEN, sig, &sig_len);
		}
		record(w, start, now(), step, rv, data, sig, rv == CKR_OK ? sig_len : 0);
		w->calls++;
		w->ok += rv == CKR_OK;
	}
	if (s != CK_INVALID_HANDLE)
		p11->C_CloseSession(s);
	return NULL;
}

static int random_prefix(void)
{
	FILE *f = fopen("/dev/urandom", "rb");
	size_t got = f ? fread(prefix, 1, sizeof(prefix), f) : 0;

	if (f)
		fclose(f);
	return got == sizeof(prefix) ? 0 : -1;
}

/* Whether sig (r || s, as C_Sign gives it) is pub's ECDSA signature over
 * SHA-256(data). */
static int verify_one(EVP_PKEY *pub, const unsigned char *data, size_t data_len,
		      const unsigned char *sig, size_t sig_len)
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, (int)(sig_len / 2), NULL);
	BIGNUM *s = BN_bin2bn(sig + sig_len / 2, (int)(sig_len / 2), NULL);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *der = NULL;
	int der_len = -1, good = 0;

	if (es && r && s && sig_len % 2 == 0 && ECDSA_SIG_set0(es, r, s) == 1) {
		r = s = NULL; /* es owns them now */
		der_len = i2d_ECDSA_SIG(es, &der);
	}
	if (der_len > 0 && ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub) == 1)
		good = EVP_DigestVerify(ctx, der, (size_t)der_len, data, data_len) == 1;
	OPENSSL_free(der);
	EVP_MD_CTX_free(ctx);
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	return good;
}

static int verify_file(const char *cert_path, const char *calls_path)
{
	char line[4096], step[16], data_hex[2 * DATA_LEN + 1], sig_hex[2 * SIG_MAX + 1];
	unsigned char data[DATA_LEN], sig[SIG_MAX];
	unsigned long seq, rv, n = 0, bad = 0;
	double start, end;
	size_t data_len, sig_len;
	FILE *cf = fopen(cert_path, "r"), *in = fopen(calls_path, "r");
	X509 *cert = cf ? PEM_read_X509(cf, NULL, NULL, NULL) : NULL;
	EVP_PKEY *pub = cert ? X509_get0_pubkey(cert) : NULL;
	int thread, rc = 1;

	if (!pub || !in) {
		fprintf(stderr, "p11load: cannot read %s or %s\n", cert_path, calls_path);
		goto out;
	}
	while (fgets(line, sizeof(line), in)) {
		if (sscanf(line, "call %d %lu %lf %lf %15s %lx %64s %2048s", &thread, &seq, &start,
			   &end, step, &rv, data_hex, sig_hex) != 8 ||
		    p11find_unhex(data_hex, data, sizeof(data), &data_len) < 0) {
			fprintf(stderr, "p11load: cannot read line %lu of %s\n", n + bad + 1,
				calls_path);
			goto out;
		}
		if (rv != CKR_OK)
			continue;
		if (p11find_unhex(sig_hex, sig, sizeof(sig), &sig_len) == 0 &&
		    verify_one(pub, data, data_len, sig, sig_len)) {
			n++;
		} else {
			printf("bad %d %lu\n", thread, seq);
			bad++;
		}
	}
	printf("verified %lu bad %lu\n", n, bad);
	rc = 0;
out:
	if (in)
		fclose(in);
	if (cf)
		fclose(cf);
	X509_free(cert);
	return rc;
}

int main(int argc, char **argv)
{
	static worker w[MAX_THREADS];
	CK_C_INITIALIZE_ARGS args;
	CK_C_GetFunctionList get;
	unsigned long calls = 0, ok = 0;
	CK_ULONG n_slots;
	int n = argc == 5 ? atoi(argv[3]) : 0, i, started = 1;
	char line[16];
	void *dl;

	if (argc == 4 && strcmp(argv[1], "--verify") == 0)
		return verify_file(argv[2], argv[3]);
	if (argc != 5 || n < 1 || n > MAX_THREADS) {
		fprintf(stderr,
			"usage: %s CONF LABEL THREADS(1-%d) OUTFILE\n"
			"       %s --verify CERT.pem OUTFILE\n",
			argv[0], MAX_THREADS, argv[0]);
		return 2;
	}
	calls_out = fopen(argv[4], "w");
	if (!calls_out || random_prefix() < 0) {
		fprintf(stderr, "p11load: cannot open %s or read /dev/urandom\n", argv[4]);
		return 1;
	}
	dl = dlopen(getenv("P11LOAD_MODULE") ? getenv("P11LOAD_MODULE") : MODULE,
		    RTLD_NOW | RTLD_LOCAL);
	get = dl ? (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList") : NULL;
	if (!get || get(&p11) != CKR_OK) {
		fprintf(stderr, "p11load: cannot load %s: %s\n", MODULE,
			dl ? "no C_GetFunctionList" : dlerror());
		return 1;
	}
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	args.pReserved = argv[1];
	if (p11->C_Initialize(&args) != CKR_OK) {
		fprintf(stderr, "p11load: C_Initialize failed\n");
		return 1;
	}
	if (p11find_token(p11, argv[2], &slot, &n_slots) != CKR_OK || slot == P11FIND_NONE) {
		fprintf(stderr, "p11load: no token %s\n", argv[2]);
		p11->C_Finalize(NULL);
		return 1;
	}
	pthread_barrier_init(&ready, NULL, (unsigned)n + 1);
	for (i = 0; i < n; i++) {
		w[i].idx = i;
		if (pthread_create(&w[i].thread, NULL, run, &w[i]) != 0) {
			fprintf(stderr, "p11load: cannot start thread %d\n", i);
			abort(); /* the barrier would wait for it for ever */
		}
	}
	pthread_barrier_wait(&ready);
	for (i = 0; i < n; i++)
		started = started && w[i].started;
	if (started) {
		printf("started\n");
		fflush(stdout);
		(void)!fgets(line, sizeof(line), stdin); /* a line or EOF: either stops */
	}
	pthread_mutex_lock(&stop_mu);
	stop = 1;
	pthread_mutex_unlock(&stop_mu);
	for (i = 0; i < n; i++) {
		pthread_join(w[i].thread, NULL);
		calls += w[i].calls;
		ok += w[i].ok;
	}
	pthread_barrier_destroy(&ready);
	p11->C_Finalize(NULL);
	fclose(calls_out);
	printf("calls %lu ok %lu\n", calls, ok);
	/* No dlclose, as p11drive: the module stays mapped until exit. */
	return started ? 0 : 1;
}
