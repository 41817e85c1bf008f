/* The module against a real rsignd + SoftHSM2 token: every C_Initialize
 * argument variant followed by a verified signature, the length conventions
 * against the real server, 8 threads signing at once, C_Finalize while 8
 * threads sign, a forked child that re-initialises and signs, PIN-mode login (user token,
 * clientId:secret, wrong PIN), machine-identity credentials from the environment (only the
 * identity's signers, a renewed access token after expiry), signers named in
 * the configuration, the server's refusals as CK_RV (disabled signer,
 * expired certificate, policy without grant) and a stopped then restarted
 * server.
 * Every signature is checked with OpenSSL against the certificate read
 * through C_GetAttributeValue.
 *
 * tests/module/run-integration starts `rsignd dev`, prepares the signers,
 * principals and configurations, and runs this program with:
 *   RSIGN_PKCS11_CONF          the dev configuration (credentials: token_file)
 *   RSIGN_LIVE_SIGNERS         signers for the threads (comma list)
 *   RSIGN_LIVE_LOCALHOST_CONF  the same with url https://localhost:PORT
 *   RSIGN_LIVE_PIN_CONF        no credentials, signers = demo-ec, demo-rsa
 *   RSIGN_LIVE_NOCRED_CONF     no credentials, no signers (credentials then
 *                              come from RSIGN_CLIENT_ID/RSIGN_CLIENT_SECRET)
 *   RSIGN_LIVE_NAMED_CONF      token_file, signers = NAMED_SIGNERS
 *   RSIGN_LIVE_NAMED_EXPECT    the slots that configuration must show
 *   RSIGN_LIVE_USER_TOKEN, RSIGN_LIVE_CLIENT_ID, RSIGN_LIVE_CLIENT_SECRET
 *   RSIGN_LIVE_DISABLED, RSIGN_LIVE_EXPIRED, RSIGN_LIVE_POLICY  signer names
 *   RSIGN_LIVE_CTL             "RFD,WFD": pipes to ask the runner to "stop"
 *                              and "start" rsignd (same --dir and --port)
 *   RSIGN_LIVE_TOKEN_TTL       access-token lifetime of the restarted rsignd
 * Without RSIGN_PKCS11_CONF it prints "1..0 # SKIP no rsignd"; a missing
 * RSIGN_LIVE_* variable skips the checks that need it (each one counted).
 * `test_module_live --plan` prints the plan line and exits: run-integration
 * merges these checks into its own TAP and plans for them first. */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "rsign/der.h"
#include "tests/unit/tap.h"

#include "modtest.h"

#define EC_SIGNER "demo-ec"
#define RSA_SIGNER "demo-rsa"
#define N_THREADS 8
#define PER_THREAD 6
#define MAX_SIGNERS 16

static const char *conf;
static const unsigned char msg[] = "rsign live: sign this build artefact";

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- the signer's objects ------------------------------------------------ */

static CK_OBJECT_HANDLE find_labelled(CK_SESSION_HANDLE s, CK_OBJECT_CLASS klass, const char *label)
{
	CK_ATTRIBUTE t[2] = {{CKA_CLASS, &klass, sizeof(klass)},
			     {CKA_LABEL, (void *)label, strlen(label)}};
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_ULONG got = 0;

	if (p11->C_FindObjectsInit(s, t, 2) != CKR_OK)
		return CK_INVALID_HANDLE;
	if (p11->C_FindObjects(s, &h, 1, &got) != CKR_OK || got != 1)
		h = CK_INVALID_HANDLE;
	p11->C_FindObjectsFinal(s);
	return h;
}

/* The signer's certificate as the module shows it (CKA_VALUE). */
static X509 *read_cert(CK_SESSION_HANDLE s, const char *label)
{
	CK_OBJECT_HANDLE h = find_labelled(s, CKO_CERTIFICATE, label);
	CK_ATTRIBUTE a = {CKA_VALUE, NULL, 0};
	const unsigned char *p;
	unsigned char *der;
	X509 *x = NULL;

	if (h == CK_INVALID_HANDLE || p11->C_GetAttributeValue(s, h, &a, 1) != CKR_OK ||
	    a.ulValueLen == 0 || a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
		return NULL;
	der = malloc(a.ulValueLen);
	a.pValue = der;
	if (der && p11->C_GetAttributeValue(s, h, &a, 1) == CKR_OK) {
		p = der;
		x = d2i_X509(NULL, &p, (long)a.ulValueLen);
	}
	free(der);
	return x;
}

static int cert_is_rsa(X509 *x)
{
	return EVP_PKEY_get_base_id(X509_get0_pubkey(x)) == EVP_PKEY_RSA;
}

/* ---- one signature, verified --------------------------------------------- */

static void hash(const EVP_MD *md, unsigned char *out, size_t *len)
{
	unsigned int l = 0;

	EVP_Digest(msg, sizeof(msg), out, &l, md, NULL);
	*len = l;
}

/* Signs msg (or its hash, or its DigestInfo, as the mechanism wants) with
 * one of a few mechanisms picked by variant; 1 when OpenSSL verifies the
 * signature against cert. *rv gets the first failing CK_RV. */
static int sign_verified(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, X509 *cert, int variant,
			 CK_RV *rv)
{
	CK_RSA_PKCS_PSS_PARAMS pss256 = {CKM_SHA256, CKG_MGF1_SHA256, 32};
	CK_RSA_PKCS_PSS_PARAMS pss384 = {CKM_SHA384, CKG_MGF1_SHA384, 48};
	CK_MECHANISM m = {CKM_ECDSA_SHA256, NULL, 0};
	unsigned char dig[64], di[RS_DIGESTINFO_MAX], sig[512];
	const unsigned char *in = msg;
	size_t inlen = sizeof(msg), dlen = 0;
	CK_ULONG siglen = sizeof(sig);
	CK_RV r;

	if (cert_is_rsa(cert)) {
		switch (variant % 4) {
		case 0:
			m.mechanism = CKM_SHA256_RSA_PKCS;
			break;
		case 1:
			m.mechanism = CKM_SHA384_RSA_PKCS_PSS;
			m.pParameter = &pss384;
			m.ulParameterLen = sizeof(pss384);
			break;
		case 2:
			m.mechanism = CKM_RSA_PKCS;
			hash(EVP_sha512(), dig, &dlen);
			if (rs_der_digestinfo_build(RS_HASH_SHA512, dig, dlen, di, sizeof(di),
						    &inlen) < 0)
				return 0;
			in = di;
			break;
		default:
			m.mechanism = CKM_RSA_PKCS_PSS;
			m.pParameter = &pss256;
			m.ulParameterLen = sizeof(pss256);
			hash(EVP_sha256(), dig, &inlen);
			in = dig;
			break;
		}
	} else {
		switch (variant % 3) {
		case 0:
			m.mechanism = CKM_ECDSA_SHA256;
			break;
		case 1:
			m.mechanism = CKM_ECDSA;
			hash(EVP_sha384(), dig, &inlen);
			in = dig;
			break;
		default:
			m.mechanism = CKM_ECDSA_SHA512;
			break;
		}
	}
	r = mt_sign(s, key, &m, in, inlen, sig, &siglen);
	if (rv)
		*rv = r;
	return r == CKR_OK && mt_verify(cert, &m, in, inlen, sig, siglen);
}

/* A session on label's token with its private key and certificate. */
typedef struct signer {
	char label[65];
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	X509 *cert;
} signer;

static int signer_open(signer *g, const char *label)
{
	memset(g, 0, sizeof(*g));
	snprintf(g->label, sizeof(g->label), "%s", label);
	g->s = mt_open(label);
	if (g->s == CK_INVALID_HANDLE)
		return 0;
	g->key = find_labelled(g->s, CKO_PRIVATE_KEY, label);
	g->cert = read_cert(g->s, label);
	return g->key != CK_INVALID_HANDLE && g->cert != NULL;
}

static void signer_close(signer *g)
{
	if (g->s != CK_INVALID_HANDLE && p11)
		p11->C_CloseSession(g->s);
	X509_free(g->cert);
	memset(g, 0, sizeof(*g));
}

/* Opens label's token and signs once with a verified signature. */
static int sign_once(const char *label, int variant)
{
	signer g;
	int good = signer_open(&g, label) && sign_verified(g.s, g.key, g.cert, variant, NULL);

	signer_close(&g);
	return good;
}

/* ---- C_Initialize variants ------------------------------------------------ */

static CK_RV mx_create(void **m)
{
	*m = malloc(1);
	return *m ? CKR_OK : CKR_HOST_MEMORY;
}
static CK_RV mx_destroy(void *m)
{
	free(m);
	return CKR_OK;
}
static CK_RV mx_lock(void *m)
{
	(void)m;
	return CKR_OK;
}
static CK_RV mx_unlock(void *m)
{
	(void)m;
	return CKR_OK;
}

/* C_Initialize(args), a verified signature on each demo signer, C_Finalize. */
static int init_sign_finalize(CK_C_INITIALIZE_ARGS *args, int variant)
{
	int good;

	if (p11->C_Initialize(args) != CKR_OK)
		return 0;
	good = sign_once(EC_SIGNER, variant) && sign_once(RSA_SIGNER, variant);
	return p11->C_Finalize(NULL) == CKR_OK && good;
}

static void test_initialize_variants(void)
{
	CK_C_INITIALIZE_ARGS a;
	const char *lh = env("RSIGN_LIVE_LOCALHOST_CONF");

	/* NULL: the configuration comes from RSIGN_PKCS11_CONF. */
	ok(init_sign_finalize(NULL, 0), "initialize_null_then_verified_signatures");
	ok(p11->C_Initialize(NULL) == CKR_OK &&
		   p11->C_Initialize(NULL) == CKR_CRYPTOKI_ALREADY_INITIALIZED &&
		   p11->C_Finalize(NULL) == CKR_OK,
	   "second_initialize_is_already_initialized");

	memset(&a, 0, sizeof(a));
	ok(init_sign_finalize(&a, 1), "initialize_empty_args_then_verified_signatures");

	a.flags = CKF_OS_LOCKING_OK;
	ok(init_sign_finalize(&a, 2), "initialize_os_locking_ok_without_callbacks_then_signs");
	a.pReserved = (void *)conf;
	ok(init_sign_finalize(&a, 3), "initialize_with_config_path_in_preserved_then_signs");
	a.pReserved = NULL;

	a.CreateMutex = mx_create;
	a.DestroyMutex = mx_destroy;
	a.LockMutex = mx_lock;
	a.UnlockMutex = mx_unlock;
	ok(init_sign_finalize(&a, 4), "initialize_os_locking_ok_with_mutex_callbacks_then_signs");
	a.flags = 0;
	ok(p11->C_Initialize(&a) == CKR_CANT_LOCK,
	   "mutex_callbacks_without_os_locking_ok_is_cant_lock");

	memset(&a, 0, sizeof(a));
	a.flags = CKF_LIBRARY_CANT_CREATE_OS_THREADS;
	ok(init_sign_finalize(&a, 5), "initialize_library_cant_create_os_threads_then_signs");
	a.flags = CKF_LIBRARY_CANT_CREATE_OS_THREADS | CKF_OS_LOCKING_OK;
	ok(init_sign_finalize(&a, 6),
	   "initialize_cant_create_os_threads_with_os_locking_ok_then_signs");
	if (lh) {
		/* a host name, resolved in the caller's thread */
		a.pReserved = (void *)lh;
		ok(init_sign_finalize(&a, 7), "cant_create_os_threads_with_localhost_url_signs");
	} else {
		skip("RSIGN_LIVE_LOCALHOST_CONF not set",
		     "cant_create_os_threads_with_localhost_url_signs");
	}
}

/* ---- the length conventions and multi-part against the real server ------- */

static void test_conventions(void)
{
	CK_MECHANISM m = {CKM_ECDSA_SHA384, NULL, 0};
	unsigned char sig[512], sig2[512];
	CK_ULONG n = 0, n2;
	signer ec, rsa;
	CK_RV rv;
	int good;

	ok(p11->C_Initialize(NULL) == CKR_OK, "initialize_for_conventions");
	ok(signer_open(&ec, EC_SIGNER) && signer_open(&rsa, RSA_SIGNER),
	   "certificates_read_with_get_attribute_value");
	/* without a session, key or certificate every check below fails */

	/* Length query, short buffer (the signature is kept: ECDSA is
	 * randomised, the retry must see the same bytes), then the signature. */
	rv = p11->C_SignInit(ec.s, &m, ec.key);
	good = rv == CKR_OK &&
	       p11->C_Sign(ec.s, (CK_BYTE_PTR)msg, sizeof(msg), NULL, &n) == CKR_OK && n == 64;
	ok(good, "ecdsa_length_query_answers_64_for_p256");
	n = 10;
	ok(p11->C_Sign(ec.s, (CK_BYTE_PTR)msg, sizeof(msg), sig, &n) == CKR_BUFFER_TOO_SMALL &&
		   n == 64,
	   "ecdsa_short_buffer_is_buffer_too_small");
	n = sizeof(sig);
	ok(p11->C_Sign(ec.s, (CK_BYTE_PTR)msg, sizeof(msg), sig, &n) == CKR_OK && n == 64 &&
		   mt_verify(ec.cert, &m, msg, sizeof(msg), sig, n),
	   "ecdsa_signature_after_length_query_verifies");

	/* Multi-part: hashed locally, one remote call. */
	m.mechanism = CKM_SHA512_RSA_PKCS;
	n = sizeof(sig);
	good = p11->C_SignInit(rsa.s, &m, rsa.key) == CKR_OK &&
	       p11->C_SignUpdate(rsa.s, (CK_BYTE_PTR)msg, 10) == CKR_OK &&
	       p11->C_SignUpdate(rsa.s, (CK_BYTE_PTR)msg + 10, sizeof(msg) - 10) == CKR_OK &&
	       p11->C_SignFinal(rsa.s, sig, &n) == CKR_OK && n == 384 &&
	       mt_verify(rsa.cert, &m, msg, sizeof(msg), sig, n);
	ok(good, "multi_part_sha512_rsa_pkcs_verifies_and_is_modulus_long");
	/* PKCS#1 v1.5 is deterministic: single- and multi-part agree. */
	n2 = sizeof(sig2);
	ok(mt_sign(rsa.s, rsa.key, &m, msg, sizeof(msg), sig2, &n2) == CKR_OK && n2 == n &&
		   memcmp(sig, sig2, n) == 0,
	   "single_part_equals_multi_part_pkcs1");

	/* Local verification with the public key. */
	m.mechanism = CKM_SHA512_RSA_PKCS;
	{
		CK_OBJECT_HANDLE pub = find_labelled(rsa.s, CKO_PUBLIC_KEY, RSA_SIGNER);

		ok(pub != CK_INVALID_HANDLE && p11->C_VerifyInit(rsa.s, &m, pub) == CKR_OK &&
			   p11->C_Verify(rsa.s, (CK_BYTE_PTR)msg, sizeof(msg), sig, n) == CKR_OK,
		   "c_verify_accepts_the_servers_signature");
	}
	signer_close(&ec);
	signer_close(&rsa);
	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize_after_conventions");
}

/* ---- 8 threads ------------------------------------------------------------ */

typedef struct worker {
	pthread_t t;
	int index;
	const char *label;
	X509 *cert;
	int signed_ok, failed;
	CK_RV last_rv;
} worker;

static pthread_barrier_t start_line;

static void *worker_run(void *arg)
{
	worker *w = arg;
	CK_SESSION_HANDLE s = mt_open(w->label);
	CK_OBJECT_HANDLE k = s != CK_INVALID_HANDLE ? find_labelled(s, CKO_PRIVATE_KEY, w->label)
						    : CK_INVALID_HANDLE;
	int i;

	pthread_barrier_wait(&start_line);
	for (i = 0; i < PER_THREAD; i++) {
		CK_RV rv = CKR_GENERAL_ERROR;

		if (k != CK_INVALID_HANDLE && sign_verified(s, k, w->cert, w->index + i, &rv))
			w->signed_ok++;
		else {
			w->failed++;
			w->last_rv = rv;
		}
	}
	if (s != CK_INVALID_HANDLE)
		p11->C_CloseSession(s);
	return NULL;
}

static void test_threads(void)
{
	char list[1024], *tok, *save = NULL;
	const char *labels[MAX_SIGNERS];
	X509 *certs[MAX_SIGNERS];
	worker w[N_THREADS];
	size_t n = 0, i;
	int total = 0, bad = 0, started = 0, have_certs = 1;
	double t0;

	snprintf(list, sizeof(list), "%s",
		 env("RSIGN_LIVE_SIGNERS") ? env("RSIGN_LIVE_SIGNERS") : EC_SIGNER "," RSA_SIGNER);
	for (tok = strtok_r(list, ", ", &save); tok && n < MAX_SIGNERS;
	     tok = strtok_r(NULL, ", ", &save))
		labels[n++] = tok;

	ok(p11->C_Initialize(NULL) == CKR_OK, "initialize_for_threads");
	for (i = 0; i < n; i++) {
		CK_SESSION_HANDLE s = mt_open(labels[i]);

		certs[i] = s != CK_INVALID_HANDLE ? read_cert(s, labels[i]) : NULL;
		have_certs = have_certs && certs[i];
		if (!certs[i])
			printf("# no certificate for signer %s\n", labels[i]);
		if (s != CK_INVALID_HANDLE)
			p11->C_CloseSession(s);
	}
	ok(n > 0 && have_certs, "threads_read_%zu_signer_certificates", n);
	if (n > 0 && have_certs) {
		pthread_barrier_init(&start_line, NULL, N_THREADS);
		memset(w, 0, sizeof(w));
		t0 = now_s();
		for (i = 0; i < N_THREADS; i++) {
			w[i].index = (int)i;
			w[i].label = labels[i % n];
			w[i].cert = certs[i % n];
			if (pthread_create(&w[i].t, NULL, worker_run, &w[i]) == 0)
				started++;
		}
		for (i = 0; i < (size_t)started; i++)
			pthread_join(w[i].t, NULL);
		pthread_barrier_destroy(&start_line);
		for (i = 0; i < (size_t)started; i++) {
			total += w[i].signed_ok;
			bad += w[i].failed;
			if (w[i].failed)
				printf("# thread %zu (%s): %d failed, last CK_RV 0x%lx\n", i,
				       w[i].label, w[i].failed, (unsigned long)w[i].last_rv);
		}
		printf("# %d signatures by %d threads over %zu signers in %.2fs\n", total, started,
		       n, now_s() - t0);
	}
	ok(started == N_THREADS && total == N_THREADS * PER_THREAD && bad == 0,
	   "eight_threads_sign_concurrently_every_signature_verified");
	for (i = 0; i < n; i++)
		X509_free(certs[i]);
	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize_after_threads");
}

/* ---- C_Finalize while threads are signing ----------------------------------- */

/* PKCS#11 leaves this undefined; the module means to survive it (each call
 * notices the initialisation it started under is gone): no crash, no
 * sanitizer report, every call ends with CKR_OK (a verified signature) or
 * CKR_CRYPTOKI_NOT_INITIALIZED / a session error, and the module initialises
 * and signs again afterwards. */
typedef struct racer {
	pthread_t t;
	signer g;
	int ok;
	int bad_signature;
	CK_RV end;
} racer;

static void *racer_run(void *arg)
{
	racer *r = arg;
	int i;

	for (i = 0; i < 100000; i++) {
		CK_RV rv = CKR_GENERAL_ERROR;

		if (sign_verified(r->g.s, r->g.key, r->g.cert, i, &rv)) {
			r->ok++;
			continue;
		}
		if (rv == CKR_OK)
			r->bad_signature++;
		r->end = rv;
		break;
	}
	return NULL;
}

static void test_finalize_under_load(void)
{
	racer r[N_THREADS];
	int started = 0, opened = 1, ends_ok = 1, signed_ok = 0, bad = 0;
	size_t i;

	memset(r, 0, sizeof(r));
	ok(p11->C_Initialize(NULL) == CKR_OK, "initialize_for_finalize_under_load");
	for (i = 0; i < N_THREADS; i++)
		opened = opened && signer_open(&r[i].g, i % 2 ? RSA_SIGNER : EC_SIGNER);
	ok(opened, "eight_sessions_open_for_finalize_under_load");
	if (opened) {
		for (i = 0; i < N_THREADS; i++)
			if (pthread_create(&r[i].t, NULL, racer_run, &r[i]) == 0)
				started++;
		usleep(150 * 1000);
	}
	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize_while_threads_sign");
	for (i = 0; i < (size_t)started; i++) {
		pthread_join(r[i].t, NULL);
		signed_ok += r[i].ok;
		bad += r[i].bad_signature;
		if (r[i].end != CKR_CRYPTOKI_NOT_INITIALIZED && r[i].end != CKR_SESSION_CLOSED &&
		    r[i].end != CKR_SESSION_HANDLE_INVALID) {
			ends_ok = 0;
			printf("#   thread %zu ended with CK_RV 0x%lx\n", i,
			       (unsigned long)r[i].end);
		}
	}
	printf("# %d signatures before C_Finalize stopped %d threads\n", signed_ok, started);
	ok(started == N_THREADS && ends_ok && bad == 0,
	   "threads_end_with_not_initialized_after_finalize");
	for (i = 0; i < N_THREADS; i++) {
		X509_free(r[i].g.cert);
		r[i].g.cert = NULL;
	}
	ok(init_sign_finalize(NULL, 1), "initialize_and_sign_again_after_finalize_under_load");
}

/* ---- fork ----------------------------------------------------------------- */

static void test_fork(void)
{
	CK_C_INITIALIZE_ARGS a;
	CK_ULONG n = 0;
	int status = -1, code;
	pid_t pid;

	memset(&a, 0, sizeof(a));
	a.flags = CKF_OS_LOCKING_OK;
	ok(p11->C_Initialize(&a) == CKR_OK && sign_once(EC_SIGNER, 0) && sign_once(RSA_SIGNER, 0),
	   "parent_signs_before_fork");
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		code = 0;
		if (p11->C_GetSlotList(CK_TRUE, NULL, &n) != CKR_CRYPTOKI_NOT_INITIALIZED)
			code |= 1;
		/* as p11-kit does: C_Initialize again, no C_Finalize */
		if (p11->C_Initialize(&a) != CKR_OK)
			code |= 2;
		if (!sign_once(EC_SIGNER, 1) || !sign_once(RSA_SIGNER, 1))
			code |= 4;
		if (p11->C_Finalize(NULL) != CKR_OK)
			code |= 8;
		fflush(stdout);
		_exit(code);
	}
	if (pid > 0)
		waitpid(pid, &status, 0);
	code = pid > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : 99;
	ok(code != 99 && !(code & 1), "forked_child_is_not_initialized_until_it_initializes");
	ok(code != 99 && !(code & 2), "forked_child_reinitializes_without_finalize");
	ok(code != 99 && !(code & 4), "forked_child_signs_verified");
	ok(code != 99 && !(code & 8), "forked_child_finalizes");
	ok(sign_once(EC_SIGNER, 2) && sign_once(RSA_SIGNER, 2), "parent_keeps_signing_after_fork");
	ok(p11->C_Finalize(NULL) == CKR_OK, "parent_finalizes_after_fork");
}

/* ---- the server's refusals ------------------------------------------------ */

/* Signs on label's token; returns C_Sign's CK_RV (or the first failure). */
static CK_RV sign_rv(const char *label)
{
	CK_MECHANISM m = {CKM_ECDSA_SHA256, NULL, 0};
	unsigned char sig[512];
	CK_ULONG n = sizeof(sig);
	CK_SESSION_HANDLE s = mt_open(label);
	CK_OBJECT_HANDLE k;
	CK_KEY_TYPE kt = CKK_EC;
	CK_ATTRIBUTE a = {CKA_KEY_TYPE, &kt, sizeof(kt)};
	CK_RV rv;

	if (s == CK_INVALID_HANDLE)
		return CKR_SLOT_ID_INVALID;
	k = find_labelled(s, CKO_PRIVATE_KEY, label);
	if (k == CK_INVALID_HANDLE) {
		p11->C_CloseSession(s);
		return CKR_KEY_HANDLE_INVALID;
	}
	if (p11->C_GetAttributeValue(s, k, &a, 1) == CKR_OK && kt == CKK_RSA)
		m.mechanism = CKM_SHA256_RSA_PKCS;
	rv = mt_sign(s, k, &m, msg, sizeof(msg), sig, &n);
	p11->C_CloseSession(s);
	return rv;
}

static const struct {
	const char *var, *test;
} refusal_cases[] = {
	{"RSIGN_LIVE_DISABLED", "disabled_signer_is_function_rejected"},
	{"RSIGN_LIVE_EXPIRED", "expired_certificate_is_function_rejected"},
	{"RSIGN_LIVE_POLICY", "policy_without_grant_is_function_rejected"},
};
#define REFUSAL_CHECKS (2 + 2 * TAP_COUNT(refusal_cases))

static void test_refusals(void)
{
	size_t i;

	ok(p11->C_Initialize(NULL) == CKR_OK, "initialize_for_refusals");
	for (i = 0; i < TAP_COUNT(refusal_cases); i++) {
		const char *name = env(refusal_cases[i].var);
		CK_RV rv;

		if (!name) {
			skip("not set by run-integration", "%s", refusal_cases[i].test);
			skip("not set by run-integration", "module_signs_after_%s",
			     refusal_cases[i].test);
			continue;
		}
		rv = sign_rv(name);
		ok(rv == CKR_FUNCTION_REJECTED, "%s", refusal_cases[i].test);
		if (rv != CKR_FUNCTION_REJECTED)
			printf("#   signer %s: CK_RV 0x%lx\n", name, (unsigned long)rv);
		ok(sign_once(EC_SIGNER, (int)i), "module_signs_after_%s", refusal_cases[i].test);
	}
	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize_after_refusals");
}

/* A group of n checks that cannot run without what reason names: each one
 * is counted as a skip. */
static void skip_group(size_t n, const char *reason, const char *group)
{
	for (size_t i = 1; i <= n; i++)
		skip(reason, "%s_%zu_of_%zu", group, i, n);
}

/* ---- the slots a configuration shows --------------------------------------- */

/* The token labels of the present slots, comma-separated, in slot order. */
static void slot_labels(char *out, size_t n)
{
	CK_SLOT_ID slots[512];
	CK_ULONG count = 512, i;
	CK_TOKEN_INFO ti;
	size_t o = 0;

	out[0] = '\0';
	if (p11->C_GetSlotList(CK_TRUE, slots, &count) != CKR_OK)
		return;
	for (i = 0; i < count && o < n; i++) {
		int len = 32;

		if (p11->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		while (len > 0 && ti.label[len - 1] == ' ')
			len--;
		o += (size_t)snprintf(out + o, n - o, "%s%.*s", o ? "," : "", len,
				      (const char *)ti.label);
	}
}

#define NAMED_CHECKS 4

static void test_named_signers(void)
{
	const char *named = env("RSIGN_LIVE_NAMED_CONF"), *expect = env("RSIGN_LIVE_NAMED_EXPECT");
	char labels[4096];
	char first[65];

	if (!named || !expect) {
		skip_group(NAMED_CHECKS, "RSIGN_LIVE_NAMED_CONF not set", "named_signers");
		return;
	}
	ok(mt_init(named) == CKR_OK, "initialize_with_signers_named_in_the_configuration");
	slot_labels(labels, sizeof(labels));
	ok(strcmp(labels, expect) == 0, "named_signers_are_the_only_slots (%s)", labels);
	if (strcmp(labels, expect) != 0)
		printf("#   expected %s\n", expect);
	snprintf(first, sizeof(first), "%.*s", (int)strcspn(expect, ","), expect);
	ok(sign_once(first, 0) && sign_once(first, 1), "named_signer_signs_verified");
	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize_after_named_signers");
}

/* RSIGN_CLIENT_ID + RSIGN_CLIENT_SECRET: the module logs in as the machine
 * identity, shows only the signers it may sign with and renews its access
 * token when it expires. */
#define CLIENT_CHECKS 6

static void test_client_credentials(void)
{
	const char *nocred = env("RSIGN_LIVE_NOCRED_CONF"), *ttl = env("RSIGN_LIVE_TOKEN_TTL");
	const char *cid = env("RSIGN_LIVE_CLIENT_ID"), *sec = env("RSIGN_LIVE_CLIENT_SECRET");
	char labels[4096];
	CK_TOKEN_INFO ti;

	if (!nocred || !cid || !sec) {
		skip_group(CLIENT_CHECKS, "RSIGN_LIVE_NOCRED_CONF/CLIENT_ID/CLIENT_SECRET not set",
			   "client_credentials");
		return;
	}
	unsetenv("RSIGN_TOKEN");
	setenv("RSIGN_CLIENT_ID", cid, 1);
	setenv("RSIGN_CLIENT_SECRET", sec, 1);
	ok(mt_init(nocred) == CKR_OK, "initialize_with_client_credentials_from_environment");
	slot_labels(labels, sizeof(labels));
	ok(strcmp(labels, EC_SIGNER "," RSA_SIGNER) == 0,
	   "machine_identity_sees_only_its_signers (%s)", labels);
	ok(p11->C_GetTokenInfo(mt_slot(EC_SIGNER), &ti) == CKR_OK &&
		   !(ti.flags & CKF_LOGIN_REQUIRED),
	   "client_credentials_need_no_login");
	ok(sign_once(EC_SIGNER, 0) && sign_once(RSA_SIGNER, 1), "machine_identity_signs_verified");
	if (ttl && atoi(ttl) > 0 && atoi(ttl) < 30) {
		sleep((unsigned)atoi(ttl) + 1);
		ok(sign_once(EC_SIGNER, 2), "signs_after_the_access_token_expired");
	} else {
		skip("RSIGN_LIVE_TOKEN_TTL not set", "signs_after_the_access_token_expired");
	}
	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize_after_client_credentials");
	unsetenv("RSIGN_CLIENT_ID");
	unsetenv("RSIGN_CLIENT_SECRET");
}

/* ---- PIN mode: no credentials configured ---------------------------------- */

static CK_RV login(CK_SESSION_HANDLE s, const char *pin)
{
	return p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
}

#define PIN_CHECKS 13

static void test_pin_mode(void)
{
	const char *pin_conf = env("RSIGN_LIVE_PIN_CONF"), *user = env("RSIGN_LIVE_USER_TOKEN");
	const char *cid = env("RSIGN_LIVE_CLIENT_ID"), *sec = env("RSIGN_LIVE_CLIENT_SECRET");
	char pair[1024];
	CK_TOKEN_INFO ti;
	CK_MECHANISM m = {CKM_ECDSA_SHA256, NULL, 0};
	unsigned char sig[512];
	CK_ULONG n = sizeof(sig);
	CK_SESSION_HANDLE s, s2;
	CK_OBJECT_HANDLE k;
	signer g;

	if (!pin_conf || !user || !cid || !sec) {
		skip_group(PIN_CHECKS,
			   "RSIGN_LIVE_PIN_CONF/USER_TOKEN/CLIENT_ID/CLIENT_SECRET not set",
			   "pin_mode");
		return;
	}
	snprintf(pair, sizeof(pair), "%s:%s", cid, sec);
	/* The configured credentials would win over the PIN: none at all. */
	unsetenv("RSIGN_TOKEN");
	unsetenv("RSIGN_CLIENT_ID");
	unsetenv("RSIGN_CLIENT_SECRET");
	ok(mt_init(pin_conf) == CKR_OK, "initialize_without_credentials");
	s = mt_open(EC_SIGNER);
	ok(s != CK_INVALID_HANDLE && p11->C_GetTokenInfo(mt_slot(EC_SIGNER), &ti) == CKR_OK &&
		   (ti.flags & CKF_LOGIN_REQUIRED),
	   "pin_mode_token_requires_login");
	ok(login(s, "rsu_0000000000000000000000000000000000000000000000000000000000000000") ==
		   CKR_PIN_INCORRECT,
	   "pin_mode_wrong_token_is_pin_incorrect");
	ok(login(s, "00000000-0000-0000-0000-000000000000:rss_wrong") == CKR_PIN_INCORRECT,
	   "pin_mode_wrong_client_secret_is_pin_incorrect");
	ok(login(s, user) == CKR_OK, "pin_mode_login_with_user_token");
	k = find_labelled(s, CKO_PRIVATE_KEY, EC_SIGNER);
	ok(k != CK_INVALID_HANDLE, "pin_mode_private_key_found_after_login");
	ok(signer_open(&g, EC_SIGNER) && sign_verified(g.s, g.key, g.cert, 0, NULL) &&
		   sign_verified(g.s, g.key, g.cert, 1, NULL),
	   "pin_mode_user_token_signs_verified");
	signer_close(&g);
	ok(p11->C_Logout(s) == CKR_OK, "pin_mode_logout");
	ok(mt_sign(s, k, &m, msg, sizeof(msg), sig, &n) == CKR_USER_NOT_LOGGED_IN,
	   "pin_mode_sign_after_logout_is_user_not_logged_in");
	ok(login(s, pair) == CKR_OK, "pin_mode_login_with_client_id_and_secret");
	ok(signer_open(&g, EC_SIGNER) && sign_verified(g.s, g.key, g.cert, 2, NULL),
	   "pin_mode_machine_identity_signs_verified");
	signer_close(&g);
	/* Login is per token: the RSA token needs its own. */
	s2 = mt_open(RSA_SIGNER);
	ok(s2 != CK_INVALID_HANDLE && login(s2, pair) == CKR_OK && sign_once(RSA_SIGNER, 0),
	   "pin_mode_machine_identity_signs_on_second_token");
	p11->C_CloseSession(s2);
	p11->C_CloseSession(s);
	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize_after_pin_mode");
}

/* ---- rsignd stopped, then restarted ---------------------------------------- */

static int ctl_in = -1, ctl_out = -1;

/* Asks run-integration to act on rsignd; 1 when it answers "ok". */
static int ctl(const char *cmd)
{
	char buf[256];
	size_t len = 0;
	struct pollfd p;

	if (ctl_out < 0 || dprintf(ctl_out, "%s\n", cmd) < 0)
		return 0;
	p.fd = ctl_in;
	p.events = POLLIN;
	while (len < sizeof(buf) - 1) {
		ssize_t r;

		if (poll(&p, 1, 120000) <= 0)
			return 0;
		r = read(ctl_in, buf + len, 1);
		if (r <= 0)
			return 0;
		if (buf[len] == '\n')
			break;
		len++;
	}
	buf[len] = '\0';
	if (strcmp(buf, "ok") != 0)
		printf("# runner: %s -> %s\n", cmd, buf);
	return strcmp(buf, "ok") == 0;
}

#define SERVER_DOWN_CHECKS 9

/* Whether the stopped server's refusal was a refused connection rather than
 * a timeout is run-integration's check, on the module's log. */
static void test_server_down(void)
{
	const char *c = env("RSIGN_LIVE_CTL");
	CK_SLOT_ID slots[512];
	CK_ULONG n = 512;
	CK_RV rv = CKR_OK;
	signer ec;
	double t;

	if (!c || sscanf(c, "%d,%d", &ctl_in, &ctl_out) != 2) {
		skip_group(SERVER_DOWN_CHECKS, "RSIGN_LIVE_CTL not set", "server_stopped");
		return;
	}
	ok(p11->C_Initialize(NULL) == CKR_OK && signer_open(&ec, EC_SIGNER) &&
		   sign_verified(ec.s, ec.key, ec.cert, 0, NULL),
	   "signs_before_the_server_stops");
	ok(ctl("stop"), "runner_stops_rsignd");
	t = now_s();
	sign_verified(ec.s, ec.key, ec.cert, 0, &rv);
	t = now_s() - t;
	ok(rv == CKR_DEVICE_ERROR, "server_stopped_sign_is_device_error (in %.2fs)", t);
	ok(p11->C_GetSlotList(CK_TRUE, slots, &n) == CKR_OK && n > 0,
	   "server_stopped_slot_list_still_answers");
	ok(ctl("start"), "runner_restarts_rsignd_on_the_same_dir_and_port");
	ok(sign_verified(ec.s, ec.key, ec.cert, 1, NULL) &&
		   sign_verified(ec.s, ec.key, ec.cert, 2, NULL),
	   "same_session_signs_again_after_restart");
	ok(sign_once(RSA_SIGNER, 0), "new_session_signs_after_restart");
	signer_close(&ec);
	ok(p11->C_Finalize(NULL) == CKR_OK, "finalize_after_restart");
	ok(init_sign_finalize(NULL, 3), "fresh_initialize_signs_after_restart");
}

int main(int argc, char **argv)
{
	/* one term per test below, in order */
	size_t checks = 10 + 9 + 4 + 7 + 5 + REFUSAL_CHECKS + NAMED_CHECKS + SERVER_DOWN_CHECKS +
			CLIENT_CHECKS + PIN_CHECKS;

	if (argc == 2 && strcmp(argv[1], "--plan") == 0) {
		printf("1..%zu\n", checks);
		return 0;
	}
	conf = env("RSIGN_PKCS11_CONF");
	if (!conf) {
		printf("1..0 # SKIP no rsignd (run by tests/module/run-integration)\n");
		return 0;
	}
	conf = strdup(conf);
	plan(checks);
	mt_load();
	test_initialize_variants();
	test_conventions();
	test_threads();
	test_fork();
	test_finalize_under_load();
	test_refusals();
	test_named_signers();
	test_server_down();
	/* last: they change the credential variables */
	test_client_credentials();
	test_pin_mode();
	mt_unload();
	free((void *)conf);
	return tap_done();
}
