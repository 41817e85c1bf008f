/* rsignd's set-up: everything `rsignd init` creates, idempotently, and the
 * context a serving rsignd opens. The built-in CA's key is generated in the
 * token like every other key; the TLS key is a file (it signs no code). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/api/api.h"
#include "server/http/cache.h"
#include "server/api/sign_target.h"
#include "server/hsm/pki.h"
#include "server/rsignd/setup.h"

#define CA_KEY_NAME "rsign-ca"
#define CA_DAYS 3650

void srv_setup_tls_paths(const srv_config *cfg, char *cert, char *key, size_t len)
{
	char dbdir[4096];
	rs_strlcpy(dbdir, cfg->database, sizeof(dbdir));
	const char *dir = dirname(dbdir);
	if (cfg->tls_cert)
		rs_strlcpy(cert, cfg->tls_cert, len);
	else
		snprintf(cert, len, "%s/tls/server.pem", dir);
	if (cfg->tls_key)
		rs_strlcpy(key, cfg->tls_key, len);
	else
		snprintf(key, len, "%s/tls/server.key", dir);
}

static int mkdir_for(const char *path)
{
	char d[4096];
	rs_strlcpy(d, path, sizeof(d));
	const char *dir = dirname(d);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	const char *p = data;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			close(fd);
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return close(fd);
}

/* A self-signed P-256 server certificate for localhost, 127.0.0.1 and ::1. */
static int make_tls_cert(const char *cert_path, const char *key_path, char *err, size_t errlen)
{
	int ret = -1;
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	BIO *kb = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
	X509V3_CTX v3;
	char host[256] = "localhost", san[600];
	if (!pk || !x || !kb || !cb)
		goto out;
	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	snprintf(san, sizeof(san), "DNS:localhost,IP:127.0.0.1,IP:::1%s%s",
		 strcmp(host, "localhost") ? ",DNS:" : "", strcmp(host, "localhost") ? host : "");
	X509_set_version(x, 2);
	unsigned char serial[16];
	if (RAND_bytes(serial, sizeof(serial)) != 1)
		goto out;
	serial[0] &= 0x7f;
	BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	X509_gmtime_adj(X509_getm_notBefore(x), -300);
	X509_gmtime_adj(X509_getm_notAfter(x), 825L * 86400);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)"rsignd", -1,
				   -1, 0);
	X509_set_issuer_name(x, name);
	X509_set_pubkey(x, pk);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	const char *exts[][2] = {{"subjectAltName", san},
				 {"basicConstraints", "critical,CA:TRUE,pathlen:0"},
				 {"keyUsage", "critical,digitalSignature,keyCertSign"},
				 {"extendedKeyUsage", "serverAuth"},
				 {"subjectKeyIdentifier", "hash"}};
	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		X509_EXTENSION *e = X509V3_EXT_conf(NULL, &v3, exts[i][0], exts[i][1]);
		if (!e)
			goto out;
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	if (!X509_sign(x, pk, EVP_sha256()) ||
	    !PEM_write_bio_PrivateKey(kb, pk, NULL, NULL, 0, NULL, NULL) ||
	    !PEM_write_bio_X509(cb, x))
		goto out;
	char *kd, *cd;
	long kl = BIO_get_mem_data(kb, &kd), cl = BIO_get_mem_data(cb, &cd);
	if (mkdir_for(key_path) != 0 || mkdir_for(cert_path) != 0 ||
	    write_file(key_path, kd, (size_t)kl, 0600) != 0 ||
	    write_file(cert_path, cd, (size_t)cl, 0644) != 0) {
		snprintf(err, errlen, "cannot write %s / %s: %s", cert_path, key_path,
			 strerror(errno));
		goto out;
	}
	rs_info("created a self-signed TLS certificate %s", cert_path);
	ret = 0;
out:
	if (ret != 0 && !err[0])
		snprintf(err, errlen, "cannot create the TLS certificate");
	BIO_free(kb);
	BIO_free(cb);
	X509_free(x);
	EVP_PKEY_free(pk);
	return ret;
}

srv_err srv_setup_call(srv_ctx *ctx, const srv_principal *actor, srv_handler h, const char *param,
		       const char *body, cJSON **out, char *err, size_t errlen)
{
	srv_req r;
	memset(&r, 0, sizeof(r));
	r.ctx = ctx;
	r.method = "POST";
	r.path = "(setup)";
	r.params[0] = param;
	r.body = (const unsigned char *)body;
	r.body_len = strlen(body);
	r.actor = *actor;
	r.status = 200;
	rs_strlcpy(r.req_id, "setup", sizeof(r.req_id));
	rs_strlcpy(r.source_ip, "local", sizeof(r.source_ip));
	*out = NULL;
	srv_err e = h(&r, out);
	if (e != SRV_OK)
		snprintf(err, errlen, "%s: %s", srv_err_word(e), r.errmsg);
	return e;
}

/* The CA key and certificate, created on first init. */
static int ensure_ca(srv_ctx *ctx, const srv_principal *admin, char *err, size_t errlen)
{
	srv_store *st = ctx->store;
	char *v = NULL;
	if (st->ops->meta_get(st, "ca_key_id", &v) == SRV_ST_OK) {
		free(v);
		return 0;
	}
	cJSON *out = NULL;
	char body[128];
	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"keyAlgorithm\":\"EC_P384\"}", CA_KEY_NAME);
	if (srv_setup_call(ctx, admin, api_key_create, NULL, body, &out, err, errlen) != SRV_OK)
		return -1;
	srv_key k = {0};
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(out, "id");
	int ret = -1;
	char *pem = NULL;
	if (!cJSON_IsString(id) || st->ops->key_get(st, id->valuestring, &k) != SRV_ST_OK) {
		snprintf(err, errlen, "cannot read back the CA key");
		goto out;
	}
	srv_pki_key pk = {.alg = k.alg, .spki = k.spki, .spki_len = k.spki_len};
	memcpy(pk.ckid, k.ckid, sizeof(pk.ckid));
	if (srv_pki_ca_create(ctx->hsm, &pk, "rsign built-in CA", CA_DAYS, &pem, err, errlen) != 0)
		goto out;
	if (st->ops->meta_set(st, "ca_cert_pem", pem) != SRV_ST_OK ||
	    st->ops->meta_set(st, "ca_key_id", k.id) != SRV_ST_OK) {
		snprintf(err, errlen, "cannot store the CA");
		goto out;
	}
	rs_info("built-in CA created (key %s, %s)", CA_KEY_NAME, rs_key_alg_name(k.alg));
	ret = 0;
out:
	free(pem);
	srv_key_clear(&k);
	cJSON_Delete(out);
	return ret;
}

/* The first admin, when there is no principal yet. */
static int ensure_admin(srv_ctx *ctx, char token[SRV_TOKEN_LEN], char *err, size_t errlen)
{
	srv_store *st = ctx->store;
	srv_principal *v = NULL;
	size_t n = 0, total = 0;
	token[0] = '\0';
	if (st->ops->principal_list(st, 0, 1, &v, &n, &total) != SRV_ST_OK) {
		snprintf(err, errlen, "cannot read principals");
		return -1;
	}
	srv_principal_list_free(v, n);
	if (total > 0)
		return 0;
	srv_principal boot = {.admin = 1, .name = "rsignd-init"};
	rs_strlcpy(boot.type, "user", sizeof(boot.type));
	cJSON *out = NULL;
	if (srv_setup_call(ctx, &boot, api_principal_create, NULL,
			   "{\"type\":\"user\",\"name\":\"admin\",\"admin\":true}", &out, err,
			   errlen) != SRV_OK)
		return -1;
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(out, "token");
	int ret = -1;
	if (cJSON_IsString(t) && strlen(t->valuestring) < SRV_TOKEN_LEN) {
		rs_strlcpy(token, t->valuestring, SRV_TOKEN_LEN);
		rs_wipe(t->valuestring, strlen(t->valuestring));
		ret = 0;
	} else {
		snprintf(err, errlen, "the admin token was not returned");
	}
	cJSON_Delete(out);
	return ret;
}

static int open_parts(srv_ctx *ctx, const srv_config *cfg, char *err, size_t errlen)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->max_body = cfg->max_body;
	ctx->access_token_ttl = cfg->access_token_ttl;
	if (cfg->softhsm2_conf)
		setenv("SOFTHSM2_CONF", cfg->softhsm2_conf, 1);
	char *pin = srv_config_pin(cfg, err, errlen);
	if (!pin)
		return -1;
	int ret = -1;
	if (mkdir_for(cfg->database) != 0) {
		snprintf(err, errlen, "%s: cannot create its directory", cfg->database);
		goto out;
	}
	ctx->store = srv_store_sqlite_open(cfg->database, err, errlen);
	if (!ctx->store)
		goto out;
	ctx->store->ops->history_set_retention(ctx->store, cfg->history_denied_retention);
	if (srv_hsm_open(cfg->pkcs11_module, cfg->token_label, pin, (int)cfg->hsm_sessions,
			 &ctx->hsm, err, errlen) != SRV_HSM_OK)
		goto out;
	ret = 0;
out:
	rs_free_secret(pin);
	if (ret != 0)
		srv_setup_close(ctx);
	return ret;
}

int srv_setup_init(const srv_config *cfg, char admin_token[SRV_TOKEN_LEN], char *err, size_t errlen)
{
	srv_ctx ctx;
	admin_token[0] = '\0';
	if (cfg->softhsm2_conf)
		setenv("SOFTHSM2_CONF", cfg->softhsm2_conf, 1);
	char *pin = srv_config_pin(cfg, err, errlen);
	if (!pin)
		return -1;
	char so_pin[33];
	if (rs_random_hex(16, so_pin) != 0) {
		rs_free_secret(pin);
		snprintf(err, errlen, "no randomness for the SO PIN");
		return -1;
	}
	/* a token that exists already (a real HSM) is used as it is */
	srv_hsm_rc hr =
		srv_hsm_init_token(cfg->pkcs11_module, cfg->token_label, so_pin, pin, err, errlen);
	rs_wipe(so_pin, sizeof(so_pin));
	rs_free_secret(pin);
	if (hr != SRV_HSM_OK)
		return -1;
	if (open_parts(&ctx, cfg, err, errlen) != 0)
		return -1;
	srv_principal boot = {.admin = 1, .name = "rsignd-init"};
	rs_strlcpy(boot.type, "user", sizeof(boot.type));
	int ret = -1;
	char cert[4096], key[4096];
	srv_setup_tls_paths(cfg, cert, key, sizeof(cert));
	if (ensure_ca(&ctx, &boot, err, errlen) != 0)
		goto out;
	if (!cfg->insecure_http && access(cert, R_OK) != 0 &&
	    make_tls_cert(cert, key, err, errlen) != 0)
		goto out;
	if (ensure_admin(&ctx, admin_token, err, errlen) != 0)
		goto out;
	ret = 0;
out:
	srv_setup_close(&ctx);
	return ret;
}

static int ca_not_after(const char *pem, time_t *out)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	struct tm tm;
	int ret = -1;
	if (x && ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1) {
		*out = timegm(&tm);
		ret = 0;
	}
	X509_free(x);
	BIO_free(b);
	return ret;
}

int srv_setup_open(srv_ctx *ctx, const srv_config *cfg, char *err, size_t errlen)
{
	if (open_parts(ctx, cfg, err, errlen) != 0)
		return -1;
	char *id = NULL;
	srv_store *st = ctx->store;
	if (st->ops->meta_get(st, "ca_key_id", &id) != SRV_ST_OK ||
	    st->ops->meta_get(st, "ca_cert_pem", &ctx->ca_cert_pem) != SRV_ST_OK) {
		free(id);
		snprintf(err, errlen, "%s is not initialised: run `rsignd init` first",
			 cfg->database);
		srv_setup_close(ctx);
		return -1;
	}
	rs_strlcpy(ctx->ca_key_id, id, sizeof(ctx->ca_key_id));
	free(id);
	if (ca_not_after(ctx->ca_cert_pem, &ctx->ca_not_after) != 0) {
		snprintf(err, errlen, "%s: the stored CA certificate does not parse",
			 cfg->database);
		srv_setup_close(ctx);
		return -1;
	}
	ctx->auth_cache = srv_auth_cache_new();
	ctx->signer_cache = srv_cache_new(4096, sizeof(srv_sign_target));
	ctx->role_cache = srv_cache_new(4096, sizeof(srv_role));
	if (!ctx->auth_cache || !ctx->signer_cache || !ctx->role_cache) {
		snprintf(err, errlen, "out of memory");
		srv_setup_close(ctx);
		return -1;
	}
	return 0;
}

void srv_setup_close(srv_ctx *ctx)
{
	srv_hsm_close(ctx->hsm);
	ctx->hsm = NULL;
	if (ctx->store)
		ctx->store->ops->close(ctx->store);
	ctx->store = NULL;
	free(ctx->ca_cert_pem);
	ctx->ca_cert_pem = NULL;
	srv_cache_free(ctx->auth_cache);
	srv_cache_free(ctx->signer_cache);
	srv_cache_free(ctx->role_cache);
	ctx->auth_cache = ctx->signer_cache = ctx->role_cache = NULL;
}
