/* Signed checkpoints of the hash chains: the log key (an ECDSA P-256 key
 * in the token whose public key the API serves, GET /log/key), and the
 * thread that signs {chain, seq, head hash, time} (store_chain.h,
 * srv_checkpoint_msg) into the checkpoints table. Replicas may each sign:
 * the table keeps the first checkpoint of a (chain, seq), and any of them
 * verifies. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/rand.h>
#include "rsign/base64.h"
#include "rsign/der.h"
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/api/api.h"
#include "server/rsignd/checkpoint.h"

#define SIG_MAX 1024 /* what srv_hsm_sign wants room for */
#define POLL_SECS 1  /* how often the thread looks at the heads */

/* The token signs c (its created_at and hash set). 0 or -1. */
static int sign(srv_ctx *ctx, srv_checkpoint *c)
{
	unsigned char msg[256], dig[32], sig[SIG_MAX];
	size_t n = srv_checkpoint_msg(c, msg, sizeof(msg)), siglen = 0;

	if (!n || rs_hash_compute(RS_HASH_SHA256, msg, n, dig) != 0)
		return -1;
	if (srv_hsm_sign(ctx->hsm, ctx->log_ckid, RS_ALG_ECDSA_SHA256, dig, sizeof(dig), -1, sig,
			 sizeof(sig), &siglen) != SRV_HSM_OK ||
	    siglen > sizeof(c->sig))
		return -1;
	memcpy(c->sig, sig, siglen);
	c->sig_len = siglen;
	return 0;
}

#define LOGKEY_META "log_key" /* "<ckid hex>:<SPKI DER hex>", set once */

/* Parses the log key's meta value into ckid and spki. 0 or -1. */
static int logkey_parse(const char *v, unsigned char ckid[SRV_CKID_LEN], unsigned char *spki,
			size_t max, size_t *spki_len)
{
	const char *colon = strchr(v, ':');
	char hex[2 * SRV_CKID_LEN + 1];
	size_t n = 0;

	if (!colon || (size_t)(colon - v) != 2 * SRV_CKID_LEN)
		return -1;
	memcpy(hex, v, 2 * SRV_CKID_LEN);
	hex[2 * SRV_CKID_LEN] = '\0';
	if (rs_hex_decode(hex, ckid, SRV_CKID_LEN, &n) != 0 || n != SRV_CKID_LEN)
		return -1;
	return rs_hex_decode(colon + 1, spki, max, spki_len) == 0 && *spki_len ? 0 : -1;
}

static int meta_get_hex(srv_store *st, const char *key, unsigned char *out, size_t max, size_t *len)
{
	char *v = NULL;
	srv_st_rc r = st->ops->meta_get(st, key, &v);
	int rc = r == SRV_ST_NOT_FOUND ? 1 : -1;

	if (r == SRV_ST_OK)
		rc = rs_hex_decode(v, out, max, len) == 0 ? 0 : -1;
	free(v);
	return rc;
}

/* The recorded log key: 0 found, 1 none yet, -1 unreadable. The pair of
 * keys log_key_ckid/log_key_spki is how rsignd recorded it before log_key. */
static int logkey_read(srv_store *st, unsigned char ckid[SRV_CKID_LEN], unsigned char *spki,
		       size_t max, size_t *spki_len)
{
	char *v = NULL;
	size_t ckid_len = 0;
	srv_st_rc r = st->ops->meta_get(st, LOGKEY_META, &v);
	int rc, a, b;

	if (r == SRV_ST_OK) {
		rc = logkey_parse(v, ckid, spki, max, spki_len);
		free(v);
		return rc;
	}
	if (r != SRV_ST_NOT_FOUND)
		return -1;
	a = meta_get_hex(st, "log_key_ckid", ckid, SRV_CKID_LEN, &ckid_len);
	b = meta_get_hex(st, "log_key_spki", spki, max, spki_len);
	if (a < 0 || b < 0 || a != b || (a == 0 && ckid_len != SRV_CKID_LEN))
		return -1;
	return a;
}

/* Records ckid and spki as the log key unless a replica did first:
 * 0 recorded, 1 another's is there, -1 error. */
static int logkey_add(srv_store *st, const unsigned char ckid[SRV_CKID_LEN],
		      const unsigned char *spki, size_t spki_len)
{
	char *v = malloc(2 * SRV_CKID_LEN + 1 + 2 * spki_len + 1);
	srv_st_rc r = SRV_ST_FAILED;

	if (v) {
		rs_hex_encode(ckid, SRV_CKID_LEN, v);
		v[2 * SRV_CKID_LEN] = ':';
		rs_hex_encode(spki, spki_len, v + 2 * SRV_CKID_LEN + 1);
		r = st->ops->meta_add(st, LOGKEY_META, v);
	}
	free(v);
	return r == SRV_ST_OK ? 0 : r == SRV_ST_CONFLICT ? 1 : -1;
}

int srv_logkey_start(srv_ctx *ctx, char *err, size_t errlen)
{
	srv_store *st = ctx->store;
	unsigned char spki[512], *gen = NULL;
	size_t spki_len = 0, gen_len = 0;
	int a = logkey_read(st, ctx->log_ckid, spki, sizeof(spki), &spki_len);

	if (a < 0) {
		snprintf(err, errlen, "the log key's record in the database is unreadable");
		return -1;
	}
	if (a == 1) { /* the first start: a new key */
		if (RAND_bytes(ctx->log_ckid, SRV_CKID_LEN) != 1 ||
		    srv_hsm_generate(ctx->hsm, RS_KEY_EC_P256, ctx->log_ckid, SRV_LOG_KEY_LABEL,
				     &gen, &gen_len) != SRV_HSM_OK ||
		    gen_len > sizeof(spki)) {
			free(gen);
			snprintf(err, errlen, "cannot create the log key in the token");
			return -1;
		}
		memcpy(spki, gen, gen_len);
		spki_len = gen_len;
		free(gen);
		a = logkey_add(st, ctx->log_ckid, spki, spki_len);
		if (a == 1) /* a replica starting at the same time recorded its key first */
			a = logkey_read(st, ctx->log_ckid, spki, sizeof(spki), &spki_len) == 0 ? 1
											       : -1;
		if (a < 0) {
			snprintf(err, errlen, "cannot record the log key in the database");
			return -1;
		}
		if (a == 0)
			rs_info("log key created in the token (label %s)", SRV_LOG_KEY_LABEL);
		else
			rs_info("log key: another replica recorded its key first; using that one "
				"(the "
				"key made here stays unused in the token, label %s)",
				SRV_LOG_KEY_LABEL);
	}
	if (!(ctx->log_spki = malloc(spki_len))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(ctx->log_spki, spki, spki_len);
	ctx->log_spki_len = spki_len;
	/* the pair: the token signs, the recorded public key must verify */
	srv_checkpoint probe = {.chain = SRV_CHAIN_AUDIT, .created_at = time(NULL)};
	rs_strlcpy(probe.hash, srv_chain_genesis, sizeof(probe.hash));
	if (sign(ctx, &probe) != 0 || api_log_verify_sig(ctx, &probe) != 0) {
		snprintf(err, errlen,
			 "the log key recorded in the database is not the token's key %s (label "
			 "%s): refusing to sign checkpoints with it",
			 LOGKEY_META, SRV_LOG_KEY_LABEL);
		free(ctx->log_spki);
		ctx->log_spki = NULL;
		ctx->log_spki_len = 0;
		return -1;
	}
	return 0;
}

int srv_checkpoint_now(srv_ctx *ctx, srv_chain c, int *wrote)
{
	srv_checkpoint cp = {.chain = c}, last;
	srv_store *st = ctx->store;
	srv_st_rc r;

	if (wrote)
		*wrote = 0;
	if (!ctx->log_spki || st->ops->chain_head(st, c, &cp.seq, cp.hash) != SRV_ST_OK)
		return -1;
	if (cp.seq == 0)
		return 0;
	r = st->ops->checkpoint_last(st, c, &last);
	if (r == SRV_ST_OK && last.seq >= cp.seq)
		return 0;
	if (r != SRV_ST_OK && r != SRV_ST_NOT_FOUND)
		return -1;
	cp.created_at = time(NULL);
	if (gethostname(cp.replica, sizeof(cp.replica) - 1) != 0)
		cp.replica[0] = '\0';
	if (sign(ctx, &cp) != 0) {
		rs_warn("checkpoint: the token cannot sign the %s head now", srv_chain_name(c));
		return -1;
	}
	if (st->ops->checkpoint_insert(st, &cp) != SRV_ST_OK)
		return -1;
	rs_debug("checkpoint: %s at %lld signed", srv_chain_name(c), cp.seq);
	if (wrote)
		*wrote = 1;
	return 0;
}

struct srv_checkpointer {
	srv_ctx *ctx;
	long long every, interval;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	long long seq[SRV_CHAIN_COUNT]; /* the head at the last checkpoint */
	time_t at[SRV_CHAIN_COUNT];	/* when it was taken */
};

/* Signs chain c when due: every records past the last checkpoint, or
 * interval seconds after it with the head moved. */
static void maybe(srv_checkpointer *p, srv_chain c, time_t now)
{
	srv_store *st = p->ctx->store;
	char hash[SRV_CHAIN_HEX];
	long long head = 0;
	int wrote = 0;

	if (st->ops->chain_head(st, c, &head, hash) != SRV_ST_OK || head <= p->seq[c])
		return;
	if (head - p->seq[c] < p->every && now - p->at[c] < p->interval)
		return;
	if (srv_checkpoint_now(p->ctx, c, &wrote) == 0) {
		p->seq[c] = head;
		p->at[c] = now;
	}
}

static void *run(void *arg)
{
	srv_checkpointer *p = arg;

	pthread_mutex_lock(&p->mu);
	while (!p->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += POLL_SECS;
		pthread_cond_timedwait(&p->cv, &p->mu, &ts);
		if (p->stop)
			break;
		pthread_mutex_unlock(&p->mu);
		time_t now = time(NULL);
		for (int c = 0; c < SRV_CHAIN_COUNT; c++)
			maybe(p, (srv_chain)c, now);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

srv_checkpointer *srv_checkpointer_start(srv_ctx *ctx, long long every, long long interval,
					 char *err, size_t errlen)
{
	srv_checkpointer *p = calloc(1, sizeof(*p));
	time_t now = time(NULL);

	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	*p = (srv_checkpointer){.ctx = ctx, .every = every, .interval = interval};
	for (int c = 0; c < SRV_CHAIN_COUNT; c++) {
		srv_checkpoint last;
		if (ctx->store->ops->checkpoint_last(ctx->store, c, &last) == SRV_ST_OK)
			p->seq[c] = last.seq;
		p->at[c] = now;
	}
	if (pthread_mutex_init(&p->mu, NULL) != 0)
		goto fail_mu;
	if (pthread_cond_init(&p->cv, NULL) != 0)
		goto fail_cv;
	if (pthread_create(&p->th, NULL, run, p) != 0)
		goto fail_th;
	return p;
fail_th:
	pthread_cond_destroy(&p->cv);
fail_cv:
	pthread_mutex_destroy(&p->mu);
fail_mu:
	free(p);
	snprintf(err, errlen, "cannot start the checkpoint thread");
	return NULL;
}

void srv_checkpointer_stop(srv_checkpointer *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->th, NULL);
	for (int c = 0; c < SRV_CHAIN_COUNT; c++)
		if (srv_checkpoint_now(p->ctx, (srv_chain)c, NULL) != 0)
			rs_warn("checkpoint: the %s chain's head was not signed at stop",
				srv_chain_name((srv_chain)c));
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}
