/* The HTTPS daemon's certificate chain and key, handed to GnuTLS at each
 * handshake (libmicrohttpd's certificate callback), so that SIGHUP can put
 * in a new pair without dropping a connection: handshakes after the swap
 * get the new pair, connections already open keep theirs. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include "rsign/util.h"
#include "server/http/tls.h"

#define TLS_MAX_CHAIN 16

typedef struct tls_pair {
	gnutls_pcert_st pcerts[TLS_MAX_CHAIN];
	unsigned int n;
	gnutls_privkey_t key;
	struct tls_pair *older; /* kept until the daemon stops: a session may point at it */
} tls_pair;

/* One daemon of the process serves its pair through the callback (GnuTLS's
 * retrieve function takes no argument of ours); held says whether one does. */
static pthread_mutex_t tls_lock = PTHREAD_MUTEX_INITIALIZER;
static tls_pair *tls_current;
static int tls_held;

static void pair_free(tls_pair *p)
{
	while (p) {
		tls_pair *older = p->older;
		for (unsigned int i = 0; i < p->n; i++)
			gnutls_pcert_deinit(&p->pcerts[i]);
		if (p->key)
			gnutls_privkey_deinit(p->key);
		free(p);
		p = older;
	}
}

/* The key's public half must be the first certificate's: a mismatched pair
 * would fail every handshake after the swap. */
static int key_matches(gnutls_pcert_st *cert, gnutls_privkey_t key)
{
	gnutls_pubkey_t pub = NULL;
	gnutls_datum_t a = {NULL, 0}, b = {NULL, 0};
	int same = 0;
	if (gnutls_pubkey_init(&pub) == 0 && gnutls_pubkey_import_privkey(pub, key, 0, 0) == 0 &&
	    gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &a) == 0 &&
	    gnutls_pubkey_export2(cert->pubkey, GNUTLS_X509_FMT_DER, &b) == 0)
		same = a.size == b.size && memcmp(a.data, b.data, a.size) == 0;
	gnutls_free(a.data);
	gnutls_free(b.data);
	if (pub)
		gnutls_pubkey_deinit(pub);
	return same;
}

static tls_pair *pair_load(const char *cert_pem, const char *key_pem, char *err, size_t errlen)
{
	tls_pair *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	gnutls_datum_t c = {(unsigned char *)cert_pem, (unsigned int)strlen(cert_pem)};
	gnutls_datum_t k = {(unsigned char *)key_pem, (unsigned int)strlen(key_pem)};
	p->n = TLS_MAX_CHAIN;
	int rc = gnutls_pcert_list_import_x509_raw(p->pcerts, &p->n, &c, GNUTLS_X509_FMT_PEM,
						   GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
	if (rc < 0 || p->n == 0) {
		p->n = 0;
		snprintf(err, errlen, "the certificate file: %s",
			 rc < 0 ? gnutls_strerror(rc) : "no certificate");
		goto fail;
	}
	rc = gnutls_privkey_init(&p->key);
	if (rc == 0)
		rc = gnutls_privkey_import_x509_raw(p->key, &k, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (rc < 0) {
		snprintf(err, errlen, "the key file: %s", gnutls_strerror(rc));
		goto fail;
	}
	if (!key_matches(&p->pcerts[0], p->key)) {
		snprintf(err, errlen, "the key is not the certificate's");
		goto fail;
	}
	return p;
fail:
	pair_free(p);
	return NULL;
}

static int retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
		    const gnutls_pk_algorithm_t *algos, int nalgos, gnutls_pcert_st **pcert,
		    unsigned int *pcert_length, gnutls_privkey_t *key)
{
	(void)session;
	(void)req_ca_dn;
	(void)nreqs;
	(void)algos;
	(void)nalgos;
	pthread_mutex_lock(&tls_lock);
	tls_pair *p = tls_current;
	if (p) {
		*pcert = p->pcerts;
		*pcert_length = p->n;
		*key = p->key;
	}
	pthread_mutex_unlock(&tls_lock);
	return p ? 0 : -1;
}

srv_tls_callback srv_tls_claim(const char *cert_pem, const char *key_pem, char *err, size_t errlen)
{
	err[0] = '\0';
	pthread_mutex_lock(&tls_lock);
	int taken = tls_held;
	if (!taken)
		tls_held = 1;
	pthread_mutex_unlock(&tls_lock);
	if (taken)
		return NULL;
	tls_pair *p = pair_load(cert_pem, key_pem, err, errlen);
	pthread_mutex_lock(&tls_lock);
	if (p)
		tls_current = p;
	else
		tls_held = 0;
	pthread_mutex_unlock(&tls_lock);
	return p ? retrieve : NULL;
}

int srv_tls_reload(const char *cert_pem, const char *key_pem, char *err, size_t errlen)
{
	pthread_mutex_lock(&tls_lock);
	int held = tls_held;
	pthread_mutex_unlock(&tls_lock);
	if (!held) {
		snprintf(err, errlen, "no HTTPS daemon serves a reloadable pair");
		return -1;
	}
	tls_pair *p = pair_load(cert_pem, key_pem, err, errlen);
	if (!p)
		return -1;
	pthread_mutex_lock(&tls_lock);
	p->older = tls_current;
	tls_current = p;
	pthread_mutex_unlock(&tls_lock);
	return 0;
}

void srv_tls_release(void)
{
	pthread_mutex_lock(&tls_lock);
	tls_pair *p = tls_current;
	tls_current = NULL;
	tls_held = 0;
	pthread_mutex_unlock(&tls_lock);
	pair_free(p);
}
