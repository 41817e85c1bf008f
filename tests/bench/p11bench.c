/* p11bench: C_Sign throughput and latency of any PKCS#11 module, from N
 * threads of one process, each with its own session.
 *
 * It dlopens the module, initialises it with CKF_OS_LOCKING_OK, finds the
 * token (label or index), logs in when a PIN is given through an environment
 * variable and the token wants one, finds the private key (CKA_LABEL, CKA_ID
 * or the first one), then signs a fresh 64-byte message per call with
 * CKM_SHA256_RSA_PKCS or CKM_ECDSA_SHA256 for a fixed time or count after a
 * warm-up. A token without CKM_ECDSA_SHA256 (SoftHSM2 2.6 has none) gets
 * CKM_ECDSA over a SHA-256 computed here, inside the timed call, which is
 * the work a module offering CKM_ECDSA_SHA256 does before it signs. Every call's latency is kept;
 * every Kth message and signature is kept too and verified with OpenSSL after the timed window (so
 * verification costs the measurement nothing) against the public key read from the token.
 * `--list-slots` instead times the first C_GetSlotList + C_GetTokenInfo over
 * every slot.
 *
 * The result is one line on stdout, `p11bench mode=... key=value ...`, that
 * tests/bench/run parses; diagnostics go to stderr. The harness's buffers
 * and its own libcrypto set-up (it hashes and verifies) come before the first
 * RSS reading, so that the RSS differences are the module's. Exit: 0 all
 * signatures good, 1 some errors, 2 the benchmark could not start. */
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include <p11-kit/pkcs11.h>

#define MSG_LEN 64
#define SIG_MAX 1024
#define MAX_CONSECUTIVE_ERRORS 1000

typedef struct {
	const char *module, *token, *pin_env, *key_label, *key_id_hex;
	long slot_index;
	int threads, verify_every, list_mode;
	double seconds, warmup;
	long count;
	size_t max_samples, max_checks;
} opts;

typedef struct {
	unsigned char msg[MSG_LEN];
	unsigned char sig[SIG_MAX];
	CK_ULONG sig_len;
} check;

typedef struct {
	pthread_t thread;
	int idx;
	uint64_t *lat; /* nanoseconds, one per successful C_SignInit+C_Sign */
	size_t lat_cap, lat_n;
	check *checks;
	size_t checks_cap, checks_n;
	unsigned long ops, errors, warmup_ops, warmup_errors;
	CK_RV first_rv;
	uint64_t rng;
	double end; /* monotonic seconds when its last timed call returned */
	int failed_setup;
} worker;

static CK_FUNCTION_LIST_PTR p11;
static opts o = {.slot_index = -1,
		 .threads = 1,
		 .verify_every = 50,
		 .seconds = 5.0,
		 .warmup = 1.0,
		 .max_samples = 1000000,
		 .max_checks = 1000};
static CK_SLOT_ID slot;
static CK_ATTRIBUTE key_tmpl[3];
static CK_ULONG key_tmpl_n;
static CK_OBJECT_CLASS priv_class = CKO_PRIVATE_KEY;
static unsigned char key_id[256];
static CK_MECHANISM mech;
static int prehash; /* CKM_ECDSA over SHA-256(msg) computed here */
static EVP_MD *sha256;
static pthread_barrier_t warm_done, go;
static double t0;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* VmRSS or VmHWM of this process in KiB, -1 when unreadable. */
static long proc_kb(const char *field)
{
	char line[256];
	size_t fl = strlen(field);
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
			kb = strtol(line + fl + 1, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

static const char *rv_name(CK_RV rv)
{
	switch (rv) {
	case CKR_OK:
		return "CKR_OK";
	case CKR_GENERAL_ERROR:
		return "CKR_GENERAL_ERROR";
	case CKR_ARGUMENTS_BAD:
		return "CKR_ARGUMENTS_BAD";
	case CKR_DEVICE_ERROR:
		return "CKR_DEVICE_ERROR";
	case CKR_DEVICE_REMOVED:
		return "CKR_DEVICE_REMOVED";
	case CKR_DATA_INVALID:
		return "CKR_DATA_INVALID";
	case CKR_DATA_LEN_RANGE:
		return "CKR_DATA_LEN_RANGE";
	case CKR_FUNCTION_FAILED:
		return "CKR_FUNCTION_FAILED";
	case CKR_FUNCTION_REJECTED:
		return "CKR_FUNCTION_REJECTED";
	case CKR_KEY_HANDLE_INVALID:
		return "CKR_KEY_HANDLE_INVALID";
	case CKR_MECHANISM_INVALID:
		return "CKR_MECHANISM_INVALID";
	case CKR_OPERATION_ACTIVE:
		return "CKR_OPERATION_ACTIVE";
	case CKR_PIN_INCORRECT:
		return "CKR_PIN_INCORRECT";
	case CKR_SESSION_HANDLE_INVALID:
		return "CKR_SESSION_HANDLE_INVALID";
	case CKR_TOKEN_NOT_PRESENT:
		return "CKR_TOKEN_NOT_PRESENT";
	case CKR_USER_NOT_LOGGED_IN:
		return "CKR_USER_NOT_LOGGED_IN";
	case CKR_BUFFER_TOO_SMALL:
		return "CKR_BUFFER_TOO_SMALL";
	case CKR_CRYPTOKI_NOT_INITIALIZED:
		return "CKR_CRYPTOKI_NOT_INITIALIZED";
	case CKR_HOST_MEMORY:
		return "CKR_HOST_MEMORY";
	case CKR_SIGNATURE_INVALID:
		return "CKR_SIGNATURE_INVALID";
	default:
		return "CKR_other";
	}
}

static void die(const char *what, CK_RV rv)
{
	fprintf(stderr, "p11bench: %s: %s (0x%lx)\n", what, rv_name(rv), (unsigned long)rv);
	exit(2);
}

/* Set-up calls: any failure ends the run with exit status 2. */
#define MUST(call, what)                                                                           \
	do {                                                                                       \
		CK_RV must_rv_ = (call);                                                           \
		if (must_rv_ != CKR_OK)                                                            \
			die(what, must_rv_);                                                       \
	} while (0)

static void usage(void)
{
	fprintf(stderr,
		"usage: p11bench --module PATH [--token LABEL | --slot INDEX] [--pin-env VAR]\n"
		"                [--key-label L | --key-id HEX] [--threads N]\n"
		"                [--seconds S | --count N] [--warmup S] [--verify-every K]\n"
		"                [--max-samples N]\n"
		"       p11bench --module PATH --list-slots\n"
		"The PIN is read from the environment variable VAR, never from argv.\n");
	exit(2);
}

static int parse_hex(const char *hex, unsigned char *out, size_t cap, size_t *len)
{
	size_t n = strlen(hex), i;

	if (n % 2 || n / 2 > cap)
		return -1;
	for (i = 0; i < n / 2; i++) {
		unsigned int b;
		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
			return -1;
		out[i] = (unsigned char)b;
	}
	*len = n / 2;
	return 0;
}

static void parse_args(int argc, char **argv)
{
	static const struct option lo[] = {{"module", required_argument, NULL, 'm'},
					   {"token", required_argument, NULL, 't'},
					   {"slot", required_argument, NULL, 's'},
					   {"pin-env", required_argument, NULL, 'p'},
					   {"key-label", required_argument, NULL, 'l'},
					   {"key-id", required_argument, NULL, 'i'},
					   {"threads", required_argument, NULL, 'n'},
					   {"seconds", required_argument, NULL, 'd'},
					   {"count", required_argument, NULL, 'c'},
					   {"warmup", required_argument, NULL, 'w'},
					   {"verify-every", required_argument, NULL, 'v'},
					   {"max-samples", required_argument, NULL, 'x'},
					   {"list-slots", no_argument, NULL, 'L'},
					   {"help", no_argument, NULL, 'h'},
					   {NULL, 0, NULL, 0}};
	int c;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'm':
			o.module = optarg;
			break;
		case 't':
			o.token = optarg;
			break;
		case 's':
			o.slot_index = strtol(optarg, NULL, 10);
			break;
		case 'p':
			o.pin_env = optarg;
			break;
		case 'l':
			o.key_label = optarg;
			break;
		case 'i':
			o.key_id_hex = optarg;
			break;
		case 'n':
			o.threads = atoi(optarg);
			break;
		case 'd':
			o.seconds = atof(optarg);
			break;
		case 'c':
			o.count = strtol(optarg, NULL, 10);
			break;
		case 'w':
			o.warmup = atof(optarg);
			break;
		case 'v':
			o.verify_every = atoi(optarg);
			break;
		case 'x':
			o.max_samples = strtoul(optarg, NULL, 10);
			break;
		case 'L':
			o.list_mode = 1;
			break;
		default:
			usage();
		}
	}
	if (!o.module || optind != argc || o.threads < 1 || o.threads > 256 ||
	    (o.count <= 0 && o.seconds <= 0) || o.warmup < 0 || o.verify_every < 0 ||
	    (o.token && o.slot_index >= 0))
		usage();
}

static void load_module(void)
{
	CK_C_GetFunctionList get;
	void *dl = dlopen(o.module, RTLD_NOW | RTLD_LOCAL);

	if (!dl) {
		fprintf(stderr, "p11bench: dlopen %s: %s\n", o.module, dlerror());
		exit(2);
	}
	*(void **)&get = dlsym(dl, "C_GetFunctionList");
	if (!get) {
		fprintf(stderr, "p11bench: %s has no C_GetFunctionList\n", o.module);
		exit(2);
	}
	MUST(get(&p11), "C_GetFunctionList");
	/* dl stays open: modules may keep threads or atexit handlers. */
}

static CK_SLOT_ID *slot_list(CK_ULONG *n)
{
	CK_SLOT_ID *ids;

	MUST(p11->C_GetSlotList(CK_TRUE, NULL, n), "C_GetSlotList");
	ids = calloc(*n ? *n : 1, sizeof(*ids));
	if (!ids)
		die("calloc", CKR_HOST_MEMORY);
	MUST(p11->C_GetSlotList(CK_TRUE, ids, n), "C_GetSlotList");
	return ids;
}

/* Compares a blank-padded 32-byte token label with a C string. */
static int label_is(const CK_UTF8CHAR lab[32], const char *want)
{
	size_t wl = strlen(want), i;

	if (wl > 32 || memcmp(lab, want, wl) != 0)
		return 0;
	for (i = wl; i < 32; i++)
		if (lab[i] != ' ')
			return 0;
	return 1;
}

static int run_list_mode(long rss_before, long rss_loaded, double init_ms)
{
	CK_ULONG n, i;
	CK_TOKEN_INFO ti;
	unsigned long bad = 0;
	double t = now(), list_ms;
	CK_SLOT_ID *ids = slot_list(&n);

	for (i = 0; i < n; i++)
		if (p11->C_GetTokenInfo(ids[i], &ti) != CKR_OK)
			bad++;
	list_ms = (now() - t) * 1e3;
	printf("p11bench mode=list slots=%lu errors=%lu init_ms=%.3f list_ms=%.3f "
	       "rss_before_kb=%ld rss_loaded_kb=%ld rss_end_kb=%ld hwm_kb=%ld\n",
	       (unsigned long)n, bad, init_ms, list_ms, rss_before, rss_loaded, proc_kb("VmRSS"),
	       proc_kb("VmHWM"));
	fflush(stdout);
	free(ids);
	p11->C_Finalize(NULL);
	return bad ? 1 : 0;
}

static CK_SLOT_ID pick_slot(CK_TOKEN_INFO *ti)
{
	CK_ULONG n, i;
	CK_SLOT_ID *ids = slot_list(&n), found = 0;
	int ok = 0;

	for (i = 0; i < n && !ok; i++) {
		if (p11->C_GetTokenInfo(ids[i], ti) != CKR_OK)
			continue;
		if (o.token ? label_is(ti->label, o.token)
			    : (long)i == (o.slot_index < 0 ? 0 : o.slot_index)) {
			found = ids[i];
			ok = 1;
		}
	}
	free(ids);
	if (!ok) {
		fprintf(stderr, "p11bench: no token %s%s among %lu slots\n",
			o.token ? "labelled " : "at index ", o.token ? o.token : "",
			(unsigned long)n);
		exit(2);
	}
	return found;
}

/* The first object matching tmpl, or CK_INVALID_HANDLE. */
static CK_OBJECT_HANDLE find_one(CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_ULONG got = 0;

	if (p11->C_FindObjectsInit(s, tmpl, n) != CKR_OK)
		return CK_INVALID_HANDLE;
	if (p11->C_FindObjects(s, &h, 1, &got) != CKR_OK || got != 1)
		h = CK_INVALID_HANDLE;
	p11->C_FindObjectsFinal(s);
	return h;
}

/* Reads one variable-length attribute into a new buffer; NULL when absent. */
static unsigned char *get_attr(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE t,
			       CK_ULONG *len)
{
	CK_ATTRIBUTE a = {t, NULL, 0};
	unsigned char *v;

	if (p11->C_GetAttributeValue(s, h, &a, 1) != CKR_OK || a.ulValueLen == 0 ||
	    a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
		return NULL;
	v = malloc(a.ulValueLen);
	if (!v)
		return NULL;
	a.pValue = v;
	if (p11->C_GetAttributeValue(s, h, &a, 1) != CKR_OK) {
		free(v);
		return NULL;
	}
	*len = a.ulValueLen;
	return v;
}

static EVP_PKEY *pkey_from_params(const char *type, OSSL_PARAM_BLD *bld)
{
	EVP_PKEY *pk = NULL;
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);

	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pk = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pk;
}

static EVP_PKEY *rsa_from_attrs(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h)
{
	CK_ULONG nl = 0, el = 0;
	unsigned char *nv = get_attr(s, h, CKA_MODULUS, &nl),
		      *ev = get_attr(s, h, CKA_PUBLIC_EXPONENT, &el);
	BIGNUM *n = nv ? BN_bin2bn(nv, (int)nl, NULL) : NULL,
	       *e = ev ? BN_bin2bn(ev, (int)el, NULL) : NULL;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY *pk = NULL;

	if (n && e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
		pk = pkey_from_params("RSA", bld);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	free(nv);
	free(ev);
	return pk;
}

/* CKA_EC_POINT is a DER OCTET STRING by the spec; some modules give the raw
 * point. Accept both, deciding by the length an uncompressed point has. */
static const unsigned char *ec_point_raw(const unsigned char *v, CK_ULONG len, size_t want,
					 size_t *out_len)
{
	if (len == want) { /* a wrapped point would be 2 or 3 bytes longer */
		*out_len = len;
		return v;
	}
	if (len >= 2 && v[0] == 0x04) {
		size_t hl = 2, l = v[1];
		if (l == 0x81 && len >= 3) {
			l = v[2];
			hl = 3;
		} else if (l == 0x82 && len >= 4) {
			l = (size_t)v[2] << 8 | v[3];
			hl = 4;
		}
		if (hl + l == len && l == want) {
			*out_len = l;
			return v + hl;
		}
	}
	*out_len = len;
	return v;
}

static EVP_PKEY *ec_from_attrs(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h)
{
	CK_ULONG pl = 0, ql = 0;
	unsigned char *pv = get_attr(s, h, CKA_EC_PARAMS, &pl),
		      *qv = get_attr(s, h, CKA_EC_POINT, &ql);
	const unsigned char *p = pv, *q;
	ASN1_OBJECT *oid = pv ? d2i_ASN1_OBJECT(NULL, &p, (long)pl) : NULL;
	const char *group = oid ? OBJ_nid2sn(OBJ_obj2nid(oid)) : NULL;
	EC_GROUP *g = group ? EC_GROUP_new_by_curve_name(OBJ_obj2nid(oid)) : NULL;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY *pk = NULL;
	size_t qlen;

	if (g && qv && bld) {
		size_t fb = ((size_t)EC_GROUP_get_degree(g) + 7) / 8;
		q = ec_point_raw(qv, ql, 1 + 2 * fb, &qlen);
		if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) &&
		    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, q, qlen))
			pk = pkey_from_params("EC", bld);
	}
	OSSL_PARAM_BLD_free(bld);
	EC_GROUP_free(g);
	ASN1_OBJECT_free(oid);
	free(pv);
	free(qv);
	return pk;
}

static EVP_PKEY *pkey_from_cert(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h)
{
	CK_ULONG len = 0;
	unsigned char *der = get_attr(s, h, CKA_VALUE, &len);
	const unsigned char *p = der;
	X509 *x = der ? d2i_X509(NULL, &p, (long)len) : NULL;
	EVP_PKEY *pk = x ? X509_get_pubkey(x) : NULL;

	X509_free(x);
	free(der);
	return pk;
}

/* The verification key: the public-key object with the private key's
 * CKA_ID, else a certificate with it, else the private key's own public
 * attributes. `from` names where it came from. */
static EVP_PKEY *find_public_key(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv, CK_KEY_TYPE kt,
				 const char **from)
{
	CK_OBJECT_CLASS pub = CKO_PUBLIC_KEY, cert = CKO_CERTIFICATE;
	CK_ULONG id_len = 0;
	unsigned char *id = get_attr(s, priv, CKA_ID, &id_len);
	CK_ATTRIBUTE t[2] = {{CKA_CLASS, &pub, sizeof(pub)}, {CKA_ID, id, id_len}};
	CK_OBJECT_HANDLE h;
	EVP_PKEY *pk = NULL;

	if (id && (h = find_one(s, t, 2)) != CK_INVALID_HANDLE) {
		pk = kt == CKK_RSA ? rsa_from_attrs(s, h) : ec_from_attrs(s, h);
		*from = "pubkey";
	}
	t[0].pValue = &cert;
	t[0].ulValueLen = sizeof(cert);
	if (!pk && id && (h = find_one(s, t, 2)) != CK_INVALID_HANDLE) {
		pk = pkey_from_cert(s, h);
		*from = "certificate";
	}
	if (!pk) {
		pk = kt == CKK_RSA ? rsa_from_attrs(s, priv) : ec_from_attrs(s, priv);
		*from = "privkey";
	}
	free(id);
	return pk;
}

/* Verifies one kept signature; ECDSA r||s is turned into DER first. */
static int verify(EVP_PKEY *pk, const check *c)
{
	unsigned char der[SIG_MAX + 16], *dp = der;
	const unsigned char *sig = c->sig;
	size_t sig_len = c->sig_len;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = 0;

	if (mech.mechanism != CKM_SHA256_RSA_PKCS) {
		ECDSA_SIG *es = ECDSA_SIG_new();
		size_t half = c->sig_len / 2;
		BIGNUM *r = BN_bin2bn(c->sig, (int)half, NULL),
		       *s = BN_bin2bn(c->sig + half, (int)half, NULL);
		int dl = -1;
		if (es && r && s && c->sig_len % 2 == 0 && ECDSA_SIG_set0(es, r, s) == 1) {
			r = s = NULL; /* owned by es now */
			dl = i2d_ECDSA_SIG(es, &dp);
		}
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		if (dl <= 0)
			goto out;
		sig = der;
		sig_len = (size_t)dl;
	}
	ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk) == 1 &&
	     EVP_DigestVerify(md, sig, sig_len, c->msg, MSG_LEN) == 1;
out:
	EVP_MD_CTX_free(md);
	return ok;
}

static void fill_msg(worker *w, unsigned char *msg)
{
	size_t i;

	for (i = 0; i < MSG_LEN; i += 8) {
		uint64_t x = w->rng; /* xorshift64*: cheap, and every message differs */
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		w->rng = x;
		x *= 0x2545F4914F6CDD1DULL;
		memcpy(msg + i, &x, 8);
	}
}

/* One C_SignInit + C_Sign; returns the latency in ns or 0 on failure. */
static uint64_t sign_once(worker *w, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, unsigned char *msg,
			  unsigned char *sig, CK_ULONG *sig_len)
{
	unsigned char md[32];
	unsigned int md_len = 0;
	uint64_t t = now_ns();
	CK_RV rv = CKR_OK;

	if (prehash && EVP_Digest(msg, MSG_LEN, md, &md_len, sha256, NULL) != 1)
		rv = CKR_HOST_MEMORY;
	if (rv == CKR_OK)
		rv = p11->C_SignInit(s, &mech, key);
	*sig_len = SIG_MAX;
	if (rv == CKR_OK)
		rv = prehash ? p11->C_Sign(s, md, md_len, sig, sig_len)
			     : p11->C_Sign(s, msg, MSG_LEN, sig, sig_len);
	if (rv != CKR_OK) {
		if (!w->errors)
			w->first_rv = rv;
		w->errors++;
		return 0;
	}
	t = now_ns() - t;
	return t ? t : 1;
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
	unsigned char msg[MSG_LEN], sig[SIG_MAX];
	CK_ULONG sig_len;
	unsigned long consecutive = 0;
	double warm_end = now() + o.warmup, deadline;
	CK_RV rv = p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s);

	if (rv == CKR_OK)
		key = find_one(s, key_tmpl, key_tmpl_n);
	if (rv != CKR_OK || key == CK_INVALID_HANDLE) {
		w->failed_setup = 1;
		w->first_rv = rv != CKR_OK ? rv : CKR_KEY_HANDLE_INVALID;
		w->errors++;
	}
	/* warm-up: at least one call (it opens connections), then until warm_end */
	while (!w->failed_setup && o.warmup > 0) {
		fill_msg(w, msg);
		if (sign_once(w, s, key, msg, sig, &sig_len))
			w->warmup_ops++;
		if (now() >= warm_end || w->errors > MAX_CONSECUTIVE_ERRORS)
			break;
	}
	if (!w->failed_setup) { /* warm-up failures are reported apart */
		w->warmup_errors = w->errors;
		w->errors = 0;
	}
	pthread_barrier_wait(&warm_done);
	pthread_barrier_wait(&go);
	deadline = t0 + o.seconds;
	w->end = t0;
	while (!w->failed_setup) {
		uint64_t ns;
		if (o.count > 0 ? (long)w->ops >= o.count : now() >= deadline)
			break;
		fill_msg(w, msg);
		ns = sign_once(w, s, key, msg, sig, &sig_len);
		if (!ns) {
			if (++consecutive >= MAX_CONSECUTIVE_ERRORS)
				break;
			continue;
		}
		consecutive = 0;
		w->ops++;
		if (w->lat_n < w->lat_cap)
			w->lat[w->lat_n++] = ns;
		if (o.verify_every && w->ops % (unsigned long)o.verify_every == 0 &&
		    w->checks_n < w->checks_cap && sig_len <= SIG_MAX) {
			check *c = &w->checks[w->checks_n++];
			memcpy(c->msg, msg, MSG_LEN);
			memcpy(c->sig, sig, sig_len);
			c->sig_len = sig_len;
		}
	}
	w->end = now();
	if (s != CK_INVALID_HANDLE)
		p11->C_CloseSession(s);
	return NULL;
}

/* CPU seconds (user + system) of every thread of the process so far. */
static double cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile in milliseconds. */
static double pct_ms(const uint64_t *v, size_t n, double p)
{
	size_t k;

	if (!n)
		return 0;
	k = (size_t)(p / 100.0 * (double)n + 0.999999);
	k = k ? k - 1 : 0;
	return (double)v[k < n ? k : n - 1] / 1e6;
}

/* Writes to every page so that it counts in the RSS now (a zeroing memset
 * after malloc may become a calloc that touches nothing). */
static void touch(void *p, size_t len)
{
	volatile unsigned char *b = p;
	size_t i;

	for (i = 0; i < len; i += 4096)
		b[i] = 1;
	if (len)
		b[len - 1] = 1;
}

/* Buffers for every worker, touched now so they are in the RSS baseline. */
static worker *make_workers(void)
{
	worker *ws = calloc((size_t)o.threads, sizeof(*ws));
	int i;

	if (!ws)
		die("calloc", CKR_HOST_MEMORY);
	for (i = 0; i < o.threads; i++) {
		worker *w = &ws[i];
		w->idx = i;
		w->rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1) ^ now_ns();
		w->lat_cap = o.max_samples / (size_t)o.threads + 1;
		w->checks_cap = o.verify_every ? o.max_checks : 0;
		w->lat = malloc(w->lat_cap * sizeof(*w->lat));
		w->checks = calloc(w->checks_cap + 1, sizeof(*w->checks));
		if (!w->lat || !w->checks)
			die("malloc", CKR_HOST_MEMORY);
		touch(w->lat, w->lat_cap * sizeof(*w->lat));
		touch(w->checks, (w->checks_cap + 1) * sizeof(*w->checks));
	}
	return ws;
}

static int has_sign_mech(CK_MECHANISM_TYPE m)
{
	CK_MECHANISM_INFO mi;

	return p11->C_GetMechanismInfo(slot, m, &mi) == CKR_OK && (mi.flags & CKF_SIGN);
}

static const char *mech_name(void)
{
	if (mech.mechanism == CKM_SHA256_RSA_PKCS)
		return "CKM_SHA256_RSA_PKCS";
	return prehash ? "CKM_ECDSA+sha256" : "CKM_ECDSA_SHA256";
}

static void select_key(CK_SESSION_HANDLE s, CK_KEY_TYPE *kt)
{
	CK_OBJECT_HANDLE h;
	CK_ATTRIBUTE a = {CKA_KEY_TYPE, kt, sizeof(*kt)};
	size_t id_len;

	key_tmpl[0] = (CK_ATTRIBUTE){CKA_CLASS, &priv_class, sizeof(priv_class)};
	key_tmpl_n = 1;
	if (o.key_label)
		key_tmpl[key_tmpl_n++] =
			(CK_ATTRIBUTE){CKA_LABEL, (void *)o.key_label, strlen(o.key_label)};
	if (o.key_id_hex) {
		if (parse_hex(o.key_id_hex, key_id, sizeof(key_id), &id_len) != 0)
			usage();
		key_tmpl[key_tmpl_n++] = (CK_ATTRIBUTE){CKA_ID, key_id, id_len};
	}
	h = find_one(s, key_tmpl, key_tmpl_n);
	if (h == CK_INVALID_HANDLE) {
		fprintf(stderr, "p11bench: no private key%s%s on the token%s\n",
			o.key_label ? " labelled " : "", o.key_label ? o.key_label : "",
			o.pin_env ? "" : " (private objects need a login: --pin-env VAR)");
		exit(2);
	}
	MUST(p11->C_GetAttributeValue(s, h, &a, 1), "C_GetAttributeValue(CKA_KEY_TYPE)");
	if (*kt != CKK_RSA && *kt != CKK_EC) {
		fprintf(stderr, "p11bench: key type 0x%lx is neither RSA nor EC\n",
			(unsigned long)*kt);
		exit(2);
	}
	mech.mechanism = *kt == CKK_RSA ? CKM_SHA256_RSA_PKCS : CKM_ECDSA_SHA256;
	if (*kt == CKK_EC && !has_sign_mech(CKM_ECDSA_SHA256) && has_sign_mech(CKM_ECDSA)) {
		mech.mechanism = CKM_ECDSA;
		prehash = 1;
	}
}

static EVP_PKEY *public_key(CK_SESSION_HANDLE s, CK_KEY_TYPE kt, const char **from)
{
	CK_OBJECT_HANDLE h = find_one(s, key_tmpl, key_tmpl_n);
	EVP_PKEY *pk = h != CK_INVALID_HANDLE ? find_public_key(s, h, kt, from) : NULL;

	if (!pk && o.verify_every) {
		fprintf(stderr, "p11bench: cannot read the public key from the token\n");
		exit(2);
	}
	return pk;
}

int main(int argc, char **argv)
{
	CK_C_INITIALIZE_ARGS init = {.flags = CKF_OS_LOCKING_OK};
	CK_TOKEN_INFO ti;
	CK_SESSION_HANDLE s;
	CK_KEY_TYPE kt = 0;
	EVP_PKEY *pk;
	worker *ws = NULL;
	const char *from = "none";
	long rss_before, rss_loaded, rss_init, anon_before;
	unsigned long ops = 0, errors = 0, warm_ops = 0, warm_errors = 0, checked = 0, bad = 0;
	size_t nlat = 0, i, j;
	uint64_t *all;
	double init_ms, secs, end = 0, cpu;
	int k;

	parse_args(argc, argv);
	/* p11bench uses libcrypto itself (hashing, verification): set it up
	 * before the first RSS reading so the module is not charged for it. */
	if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL) != 1 ||
	    !(sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)))
		die("OpenSSL initialisation", CKR_GENERAL_ERROR);
	if (!o.list_mode)
		ws = make_workers();
	rss_before = proc_kb("VmRSS");
	anon_before = proc_kb("RssAnon");
	load_module();
	rss_loaded = proc_kb("VmRSS");
	init_ms = now();
	MUST(p11->C_Initialize(&init), "C_Initialize");
	init_ms = (now() - init_ms) * 1e3;
	if (o.list_mode)
		return run_list_mode(rss_before, rss_loaded, init_ms);

	slot = pick_slot(&ti);
	MUST(p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s), "C_OpenSession");
	if (o.pin_env && (ti.flags & CKF_LOGIN_REQUIRED)) {
		const char *pin = getenv(o.pin_env);
		CK_RV rv;
		if (!pin) {
			fprintf(stderr, "p11bench: %s is not set\n", o.pin_env);
			exit(2);
		}
		rv = p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
		if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
			die("C_Login", rv);
	}
	select_key(s, &kt);
	pk = public_key(s, kt, &from);
	rss_init = proc_kb("VmRSS");

	if (pthread_barrier_init(&warm_done, NULL, (unsigned)o.threads + 1) ||
	    pthread_barrier_init(&go, NULL, (unsigned)o.threads + 1))
		die("pthread_barrier_init", CKR_HOST_MEMORY);
	for (k = 0; k < o.threads; k++)
		if (pthread_create(&ws[k].thread, NULL, worker_main, &ws[k]) != 0)
			die("pthread_create", CKR_HOST_MEMORY);
	pthread_barrier_wait(&warm_done);
	t0 = now();
	cpu = cpu_seconds();
	pthread_barrier_wait(&go);
	for (k = 0; k < o.threads; k++) {
		pthread_join(ws[k].thread, NULL);
		ops += ws[k].ops;
		errors += ws[k].errors;
		warm_errors += ws[k].warmup_errors;
		nlat += ws[k].lat_n;
		warm_ops += ws[k].warmup_ops;
		if (ws[k].end > end)
			end = ws[k].end;
	}
	secs = end - t0;
	cpu = cpu_seconds() - cpu;

	all = malloc((nlat ? nlat : 1) * sizeof(*all));
	if (!all)
		die("malloc", CKR_HOST_MEMORY);
	for (k = 0, j = 0; k < o.threads; k++)
		for (i = 0; i < ws[k].lat_n; i++)
			all[j++] = ws[k].lat[i];
	qsort(all, nlat, sizeof(*all), cmp_u64);
	for (k = 0; k < o.threads && pk; k++)
		for (i = 0; i < ws[k].checks_n; i++, checked++)
			if (!verify(pk, &ws[k].checks[i]))
				bad++;

	printf("p11bench mode=sign key=%s-%d mech=%s threads=%d ops=%lu seconds=%.3f ops_s=%.1f "
	       "p50_ms=%.3f p99_ms=%.3f errors=%lu cpu_ms=%.1f warmup_ops=%lu warmup_errors=%lu "
	       "verified=%lu verify_fail=%lu pubkey_from=%s "
	       "samples=%zu init_ms=%.3f rss_before_kb=%ld rss_loaded_kb=%ld rss_init_kb=%ld "
	       "rss_end_kb=%ld hwm_kb=%ld anon_before_kb=%ld anon_end_kb=%ld",
	       kt == CKK_RSA ? "rsa" : "ec", pk ? EVP_PKEY_get_bits(pk) : 0, mech_name(), o.threads,
	       ops, secs, secs > 0 ? (double)ops / secs : 0.0, pct_ms(all, nlat, 50),
	       pct_ms(all, nlat, 99), errors + bad, cpu * 1e3, warm_ops, warm_errors, checked, bad,
	       from, nlat, init_ms, rss_before, rss_loaded, rss_init, proc_kb("VmRSS"),
	       proc_kb("VmHWM"), anon_before, proc_kb("RssAnon"));
	for (k = 0; k < o.threads; k++)
		if (ws[k].errors || ws[k].warmup_errors || ws[k].failed_setup) {
			printf(" first_error=%s/0x%lx", rv_name(ws[k].first_rv),
			       (unsigned long)ws[k].first_rv);
			break;
		}
	printf("\n");
	fflush(stdout);

	p11->C_CloseSession(s);
	p11->C_Finalize(NULL);
	EVP_PKEY_free(pk);
	EVP_MD_free(sha256);
	free(all);
	for (k = 0; k < o.threads; k++) {
		free(ws[k].lat);
		free(ws[k].checks);
	}
	free(ws);
	return (errors + bad > 0 || ops == 0) ? 1 : 0;
}
