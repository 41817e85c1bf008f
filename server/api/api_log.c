/* The tamper-evident log (issue 15 item 7): GET /log/verify walks the hash
 * chains of the history and the audit log (store_chain.h) and checks the
 * signed checkpoints; GET /log/key serves the log key's public key, so an
 * auditor can check checkpoints offline. */
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include "rsign/log.h"
#include "server/api/api.h"

int api_log_verify_sig(void *arg, const srv_checkpoint *c)
{
	const srv_ctx *ctx = arg;
	const unsigned char *p = ctx->log_spki;
	unsigned char msg[256];
	size_t n = srv_checkpoint_msg(c, msg, sizeof(msg));
	EVP_PKEY *k;
	EVP_MD_CTX *md;
	int v = -1;

	if (!p || !(k = d2i_PUBKEY(NULL, &p, (long)ctx->log_spki_len)))
		return -1;
	if (!n) { /* a checkpoint whose hash is no hash signs nothing */
		EVP_PKEY_free(k);
		return 1;
	}
	if ((md = EVP_MD_CTX_new()) && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k) == 1)
		v = EVP_DigestVerify(md, c->sig, c->sig_len, msg, n) == 1 ? 0 : 1;
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(k);
	return v;
}

static cJSON *report_json(const srv_chain_report *rep)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "chain", srv_chain_name(rep->chain));
	cJSON_AddBoolToObject(o, "ok", rep->bad == SRV_CHAIN_GOOD);
	cJSON_AddNumberToObject(o, "records", (double)rep->records);
	cJSON_AddNumberToObject(o, "tombstones", (double)rep->tombstones);
	cJSON_AddNumberToObject(o, "checkpoints", (double)rep->checkpoints);
	if (rep->bad != SRV_CHAIN_GOOD) {
		cJSON *b = cJSON_AddObjectToObject(o, "firstBad");
		cJSON_AddStringToObject(b, "what", srv_chain_bad_name(rep->bad));
		cJSON_AddNumberToObject(b, "seq", (double)rep->seq);
		cJSON_AddStringToObject(b, "recordId", rep->id);
		cJSON_AddStringToObject(b, "detail", rep->detail);
	}
	return o;
}

srv_err api_log_verify(srv_req *r, cJSON **out)
{
	const char *which = srv_query(r, "chain");
	srv_chain only = SRV_CHAIN_HISTORY;
	srv_chain_report rep;
	cJSON *arr;
	int all_ok = 1;

	if (which && srv_chain_parse(which, &only) != 0)
		return srv_fail(r, SRV_R_INVALID_QUERY, "chain must be history or audit");
	if (!r->ctx->log_spki)
		return srv_fail(r, SRV_R_INTERNAL, "no log key: checkpoints cannot be checked");
	*out = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(*out, "chains");
	for (int c = 0; c < SRV_CHAIN_COUNT; c++) {
		if (which && (srv_chain)c != only)
			continue;
		srv_st_rc rc = srv_chain_verify(r->ctx->store, (srv_chain)c, api_log_verify_sig,
						r->ctx, &rep);
		if (rc != SRV_ST_OK) {
			cJSON_Delete(*out);
			*out = NULL;
			return srv_fail(r, srv_reason_from_store(rc), "cannot read the log");
		}
		all_ok = all_ok && rep.bad == SRV_CHAIN_GOOD;
		cJSON_AddItemToArray(arr, report_json(&rep));
	}
	cJSON_AddBoolToObject(*out, "ok", all_ok);
	return SRV_OK;
}

srv_err api_log_key(srv_req *r, cJSON **out)
{
	const unsigned char *p = r->ctx->log_spki;
	EVP_PKEY *k = p ? d2i_PUBKEY(NULL, &p, (long)r->ctx->log_spki_len) : NULL;
	BIO *b = BIO_new(BIO_s_mem());
	char *pem = NULL;
	long n;

	if (!k || !b || PEM_write_bio_PUBKEY(b, k) != 1 || (n = BIO_get_mem_data(b, &pem)) <= 0) {
		EVP_PKEY_free(k);
		BIO_free(b);
		return srv_fail(r, SRV_R_INTERNAL, "no log key");
	}
	*out = cJSON_CreateObject();
	cJSON_AddStringToObject(*out, "algorithm", "ECDSA_SHA256");
	char *s = strndup(pem, (size_t)n);
	cJSON_AddStringToObject(*out, "publicKeyPem", s ? s : "");
	free(s);
	EVP_PKEY_free(k);
	BIO_free(b);
	return SRV_OK;
}
