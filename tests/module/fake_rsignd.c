/* The fake rsignd's state and its controls: signers (keys, certificates,
 * the caller's role, enabled, validity, the approval stand-in), tokens,
 * faults to inject, counters and signing requests. The HTTP side is in
 * fake_http.c, the handlers of the API in fake_api.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_int.h"
#include "fake_pki.h"

/* ---- signers --------------------------------------------------------------- */

fake_signer *fake_find_inlock(fake_server *f, const char *id_or_name)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (!f->signers[i].removed && (strcmp(f->signers[i].id, id_or_name) == 0 ||
					       strcmp(f->signers[i].name, id_or_name) == 0))
			return &f->signers[i];
	return NULL;
}

/* A new certificate for s, valid from nb to na. */
static int signer_certify(fake_server *f, fake_signer *s, time_t nb, time_t na)
{
	X509 *cert = fake_make_cert(s->key, s->name, f->ca_cert, f->ca_key, 1,
				    100 + (long)(s - f->signers) * 1000 + (long)time(NULL) % 1000,
				    nb, na);
	char *pem = cert ? fake_pem_of_cert(cert) : NULL;

	if (!pem || rs_uuid(s->cert_id) < 0) {
		X509_free(cert);
		free(pem);
		return -1;
	}
	X509_free(s->cert);
	free(s->cert_pem);
	s->cert = cert;
	s->cert_pem = pem;
	s->not_before = nb;
	s->not_after = na;
	return 0;
}

static int signer_add(fake_server *f, const char *name, rs_key_alg alg, const fake_signer *share)
{
	time_t now = time(NULL);
	fake_signer *s;

	if (f->n == FAKE_MAX_SIGNERS)
		return -1;
	s = &f->signers[f->n];
	memset(s, 0, sizeof(*s));
	if (rs_uuid(s->id) < 0)
		return -1;
	rs_strlcpy(s->name, name, sizeof(s->name));
	s->alg = alg;
	s->role = FAKE_ROLE_OPERATOR;
	s->enabled = 1;
	if (share) {
		s->key = share->key;
		s->shared_key = 1;
		s->cert = share->cert;
		X509_up_ref(share->cert);
		s->cert_pem = strdup(share->cert_pem);
		memcpy(s->cert_id, share->cert_id, sizeof(s->cert_id));
		s->not_before = share->not_before;
		s->not_after = share->not_after;
		if (!s->cert_pem)
			return -1;
	} else {
		s->key = fake_keygen(alg);
		if (!s->key || signer_certify(f, s, now - 3600, now + 30L * 86400) < 0) {
			EVP_PKEY_free(s->key);
			X509_free(s->cert);
			return -1;
		}
	}
	f->n++;
	return 0;
}

fake_server *fake_new(int extra)
{
	fake_server *f = calloc(1, sizeof(*f));
	EVP_PKEY *tls_key = NULL;
	X509 *tls_cert = NULL;
	char name[32];
	int i;

	if (!f)
		return NULL;
	pthread_mutex_init(&f->lock, NULL);
	rs_strlcpy(f->user_token, FAKE_USER_TOKEN, sizeof(f->user_token));
	f->expires_in = 3600;
	f->timeout_ms = 2500;
	f->fault_at = -1;
	tls_key = fake_keygen(RS_KEY_EC_P256);
	tls_cert = tls_key ? fake_make_cert(tls_key, "127.0.0.1", NULL, NULL, 2, 1, 0, 0) : NULL;
	f->ca_key = fake_keygen(RS_KEY_EC_P256);
	f->ca_cert = f->ca_key ? fake_make_cert(f->ca_key, "rsign test CA", NULL, NULL, 0, 2,
						time(NULL) - 86400, time(NULL) + 3650L * 86400)
			       : NULL;
	if (!tls_cert || !f->ca_cert)
		goto fail;
	f->tls_key_pem = fake_pem_of_key(tls_key);
	f->tls_cert_pem = fake_pem_of_cert(tls_cert);
	f->ca_pem = fake_pem_of_cert(f->ca_cert);
	if (!f->tls_key_pem || !f->tls_cert_pem || !f->ca_pem ||
	    signer_add(f, FAKE_RSA, RS_KEY_RSA_2048, NULL) < 0 ||
	    signer_add(f, FAKE_EC, RS_KEY_EC_P256, NULL) < 0)
		goto fail;
	for (i = 0; i < extra; i++) {
		snprintf(name, sizeof(name), "extra-%03d", i);
		if (signer_add(f, name, RS_KEY_EC_P256, &f->signers[1]) < 0)
			goto fail;
	}
	EVP_PKEY_free(tls_key);
	X509_free(tls_cert);
	return f;
fail:
	EVP_PKEY_free(tls_key);
	X509_free(tls_cert);
	fake_free(f);
	return NULL;
}

void fake_free(fake_server *f)
{
	size_t i;

	if (!f)
		return;
	fake_stop(f);
	fake_stop_replica(f);
	for (i = 0; i < f->n; i++) {
		if (!f->signers[i].shared_key)
			EVP_PKEY_free(f->signers[i].key);
		X509_free(f->signers[i].cert);
		free(f->signers[i].cert_pem);
	}
	for (i = 0; i < f->n_access; i++)
		free(f->access[i]);
	free(f->tls_key_pem);
	free(f->tls_cert_pem);
	free(f->ca_pem);
	EVP_PKEY_free(f->ca_key);
	X509_free(f->ca_cert);
	free(f->last_sign);
	free(f->replay_body);
	for (i = 0; i < FAKE_MAX_KEYED; i++)
		free(f->keyed[i].answer);
	for (i = 0; i < (size_t)f->n_reqs; i++)
		free(f->reqs[i].body);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

/* ---- controls ----------------------------------------------------------- */

unsigned short fake_port(const fake_server *f)
{
	return f->port;
}

const char *fake_tls_pem(const fake_server *f)
{
	return f->tls_cert_pem;
}

const char *fake_ca_pem(const fake_server *f)
{
	return f->ca_pem;
}

void fake_fault_set_at(fake_server *f, int listener, fake_fault fault, int count, const char *match)
{
	pthread_mutex_lock(&f->lock);
	f->fault = fault;
	f->fault_count = count;
	f->fault_at = listener;
	rs_strlcpy(f->fault_match, match ? match : "", sizeof(f->fault_match));
	pthread_mutex_unlock(&f->lock);
}

void fake_fault_set(fake_server *f, fake_fault fault, int count, const char *match)
{
	fake_fault_set_at(f, -1, fault, count, match);
}

void fake_replay(fake_server *f, int status, const char *body, int count, const char *match)
{
	char *copy = strdup(body);

	pthread_mutex_lock(&f->lock);
	free(f->replay_body);
	f->replay_body = copy;
	f->replay_status = status;
	pthread_mutex_unlock(&f->lock);
	fake_fault_set(f, copy ? FAULT_REPLAY : FAULT_500, count, match);
}

void fake_set_timeout_ms(fake_server *f, int ms)
{
	f->timeout_ms = ms;
}

void fake_expire_tokens(fake_server *f)
{
	size_t i;

	pthread_mutex_lock(&f->lock);
	for (i = 0; i < f->n_access; i++)
		free(f->access[i]);
	f->n_access = 0;
	pthread_mutex_unlock(&f->lock);
}

void fake_set_expires_in(fake_server *f, long seconds)
{
	f->expires_in = seconds;
}

void fake_set_user_token(fake_server *f, const char *token)
{
	pthread_mutex_lock(&f->lock);
	rs_strlcpy(f->user_token, token, sizeof(f->user_token));
	pthread_mutex_unlock(&f->lock);
}

int fake_count(fake_server *f, fake_counter c)
{
	int n;

	pthread_mutex_lock(&f->lock);
	n = f->counts[c];
	pthread_mutex_unlock(&f->lock);
	return n;
}

void fake_reset_counts(fake_server *f)
{
	pthread_mutex_lock(&f->lock);
	memset(f->counts, 0, sizeof(f->counts));
	pthread_mutex_unlock(&f->lock);
}

int fake_sign_seen(fake_server *f)
{
	int n;

	pthread_mutex_lock(&f->lock);
	n = f->n_seen;
	pthread_mutex_unlock(&f->lock);
	return n;
}

int fake_sign_seen_at(fake_server *f, int i, char *key, size_t keylen)
{
	int listener = -1;

	pthread_mutex_lock(&f->lock);
	if (i >= 0 && i < f->n_seen) {
		listener = f->seen[i].listener;
		rs_strlcpy(key, f->seen[i].key, keylen);
	}
	pthread_mutex_unlock(&f->lock);
	return listener;
}

int fake_keyed_total(fake_server *f)
{
	int n;

	pthread_mutex_lock(&f->lock);
	n = f->n_keyed;
	pthread_mutex_unlock(&f->lock);
	return n;
}

char *fake_last_sign_body(fake_server *f)
{
	char *p;

	pthread_mutex_lock(&f->lock);
	p = f->last_sign ? strdup(f->last_sign) : NULL;
	pthread_mutex_unlock(&f->lock);
	return p;
}

const char *fake_signer_id(fake_server *f, const char *name)
{
	fake_signer *s;

	pthread_mutex_lock(&f->lock);
	s = fake_find_inlock(f, name);
	pthread_mutex_unlock(&f->lock);
	return s ? s->id : NULL;
}

X509 *fake_signer_cert(fake_server *f, const char *name)
{
	fake_signer *s;

	pthread_mutex_lock(&f->lock);
	s = fake_find_inlock(f, name);
	pthread_mutex_unlock(&f->lock);
	return s ? s->cert : NULL;
}

int fake_add_signer(fake_server *f, const char *name, rs_key_alg alg)
{
	int rc = -1;

	pthread_mutex_lock(&f->lock);
	if (!fake_find_inlock(f, name))
		rc = signer_add(f, name, alg, NULL);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

/* Runs fn on the named signer under the lock; -1 when there is none. */
static int with_signer(fake_server *f, const char *name,
		       int (*fn)(fake_server *, fake_signer *, const void *), const void *arg)
{
	fake_signer *s;
	int rc = -1;

	pthread_mutex_lock(&f->lock);
	s = fake_find_inlock(f, name);
	if (s)
		rc = fn(f, s, arg);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

static int do_remove(fake_server *f, fake_signer *s, const void *arg)
{
	(void)f;
	(void)arg;
	s->removed = 1;
	return 0;
}

static int do_role(fake_server *f, fake_signer *s, const void *arg)
{
	(void)f;
	s->role = *(const fake_role *)arg;
	return 0;
}

static int do_enable(fake_server *f, fake_signer *s, const void *arg)
{
	(void)f;
	s->enabled = *(const int *)arg;
	return 0;
}

static int do_validity(fake_server *f, fake_signer *s, const void *arg)
{
	const time_t *t = arg;

	if (s->shared_key) { /* its own key from now on: the certificate is its own */
		s->key = fake_keygen(s->alg);
		s->shared_key = 0;
		if (!s->key)
			return -1;
	}
	return signer_certify(f, s, t[0], t[1]);
}

static int do_approval(fake_server *f, fake_signer *s, const void *arg)
{
	const int *a = arg;

	(void)f;
	s->needs_approval = a[0];
	s->grant_signings = a[1];
	s->grants_left = 0;
	return 0;
}

int fake_remove_signer(fake_server *f, const char *name)
{
	return with_signer(f, name, do_remove, NULL);
}

void fake_set_role(fake_server *f, const char *name, fake_role role)
{
	(void)with_signer(f, name, do_role, &role);
}

void fake_set_enabled(fake_server *f, const char *name, int enabled)
{
	(void)with_signer(f, name, do_enable, &enabled);
}

int fake_set_validity(fake_server *f, const char *name, time_t not_before, time_t not_after)
{
	time_t t[2] = {not_before, not_after};

	return with_signer(f, name, do_validity, t);
}

void fake_set_approval(fake_server *f, const char *name, int required, int signings)
{
	int a[2] = {required, signings};

	(void)with_signer(f, name, do_approval, a);
}

void fake_set_auto_decision(fake_server *f, const char *status, int polls)
{
	pthread_mutex_lock(&f->lock);
	rs_strlcpy(f->auto_status, status ? status : "", sizeof(f->auto_status));
	f->auto_polls = polls;
	pthread_mutex_unlock(&f->lock);
}

void fake_decide_inlock(fake_server *f, fake_request *q, const char *status)
{
	if (strcmp(q->status, "pending") != 0)
		return;
	rs_strlcpy(q->status, status, sizeof(q->status));
	if (strcmp(status, "approved") == 0)
		f->signers[q->signer].grants_left += f->signers[q->signer].grant_signings;
}

int fake_decide_last(fake_server *f, const char *status)
{
	int rc = -1;

	pthread_mutex_lock(&f->lock);
	if (f->n_reqs > 0) {
		fake_decide_inlock(f, &f->reqs[f->n_reqs - 1], status);
		rc = 0;
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int fake_request_total(fake_server *f)
{
	int n;

	pthread_mutex_lock(&f->lock);
	n = f->n_reqs;
	pthread_mutex_unlock(&f->lock);
	return n;
}

char *fake_last_request(fake_server *f, char *id_out, size_t id_len)
{
	char *p = NULL;

	pthread_mutex_lock(&f->lock);
	if (id_out && id_len)
		id_out[0] = '\0';
	if (f->n_reqs > 0) {
		if (id_out)
			rs_strlcpy(id_out, f->reqs[f->n_reqs - 1].id, id_len);
		p = f->reqs[f->n_reqs - 1].body ? strdup(f->reqs[f->n_reqs - 1].body) : NULL;
	}
	pthread_mutex_unlock(&f->lock);
	return p;
}

void fake_set_control(fake_server *f, fake_control_fn fn)
{
	f->control = fn;
}
