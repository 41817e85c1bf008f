/* rsignd's set-up: everything `rsignd init` creates, idempotently, and the
 * context a serving rsignd opens. The built-in CA's key is generated in the
 * token like every other key; the TLS key is a file (it signs no code).
 *
 * Each step finishes what an interrupted run left, in this order: token;
 * database; CA key, CA certificate, then ca_key_id (the CA is complete once
 * that is stored); TLS key, then certificate, each written atomically; the
 * first admin, marked pending before it is created and done only after its
 * token was delivered. The crash points (srv_setup_crash_point) sit between
 * the steps. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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
#include "server/rsignd/checkpoint.h"
#include "server/rsignd/rowmac.h"
#include "server/rsignd/setup.h"

#define CA_KEY_NAME "rsign-ca"
#define CA_DAYS 3650
#define ADMIN_NAME "admin"
#define ADMIN_STATE "admin_setup" /* meta key: "pending", then "done" */

/* A PostgreSQL database has no directory to keep the TLS pair beside. */
#define PG_TLS_DIR "/var/lib/rsign"

void srv_setup_tls_paths(const srv_config *cfg, char *cert, char *key, size_t len)
{
	char dbdir[4096];
	rs_strlcpy(dbdir, srv_store_is_pg_uri(cfg->database) ? PG_TLS_DIR "/db" : cfg->database,
		   sizeof(dbdir));
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

/* The database as messages name it: a URI may hold a password. */
static const char *db_name(const srv_config *cfg)
{
	return srv_store_is_pg_uri(cfg->database) ? "the PostgreSQL database" : cfg->database;
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

/* Every crash point, in the order a first `rsignd dev` reaches them (`rsignd
 * init` reaches those it shares). tests/api/run-setup-tests reads this
 * table and runs each. */
static const char *const crash_points[] = {
	"pin-partial",		"token-ready",		"store-opened",
	"ca-key-created",	"ca-cert-stored",	"tls-key-written",
	"tls-cert-partial",	"admin-pending",	"admin-created",
	"admin-token-partial",	"admin-delivered",	"demo-rsa-key-created",
	"demo-rsa-cert-issued", "demo-ec-key-created",	"demo-ec-cert-issued",
	"demo-tsa-key-created", "demo-tsa-cert-issued", NULL,
};

static int crash_point_known(const char *step)
{
	for (size_t i = 0; crash_points[i]; i++)
		if (strcmp(crash_points[i], step) == 0)
			return 1;
	return 0;
}

int srv_setup_crash_check(char *err, size_t errlen)
{
	const char *at = getenv("RSIGN_TEST_CRASH_AT");
	if (!at || crash_point_known(at))
		return 0;
	snprintf(err, errlen, "RSIGN_TEST_CRASH_AT=%s names no crash point", at);
	return -1;
}

void srv_setup_crash_point(const char *step)
{
	if (!crash_point_known(step)) {
		rs_err("internal error: %s is not in the table of crash points", step);
		abort();
	}
	const char *at = getenv("RSIGN_TEST_CRASH_AT");
	if (!at || strcmp(at, step) != 0)
		return;
	rs_warn("RSIGN_TEST_CRASH_AT=%s: killing rsignd here, as kill -9 would", step);
	raise(SIGKILL);
	_exit(137); /* not reached */
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int srv_setup_write_file(const char *path, const void *data, size_t len, mode_t mode,
			 const char *crash_step)
{
	char tmp[4200];
	const char *p = data;
	size_t half = len / 2;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	int r = fchmod(fd, 0600) == 0 && write_all(fd, p, half) == 0 ? 0 : -1;
	if (r == 0 && crash_step)
		srv_setup_crash_point(crash_step);
	if (r == 0)
		r = write_all(fd, p + half, len - half) == 0 && fsync(fd) == 0 &&
				    fchmod(fd, mode) == 0
			    ? 0
			    : -1;
	int saved = errno;
	if (close(fd) != 0 && r == 0) {
		r = -1;
		saved = errno;
	}
	if (r == 0 && rename(tmp, path) != 0) {
		r = -1;
		saved = errno;
	}
	if (r != 0)
		unlink(tmp);
	errno = saved;
	return r;
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
	/* the key first: a certificate on disk always has its key beside it */
	if (mkdir_for(key_path) != 0 || mkdir_for(cert_path) != 0 ||
	    srv_setup_write_file(key_path, kd, (size_t)kl, 0600, NULL) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", key_path, strerror(errno));
		goto out;
	}
	srv_setup_crash_point("tls-key-written");
	if (srv_setup_write_file(cert_path, cd, (size_t)cl, 0644, "tls-cert-partial") != 0) {
		snprintf(err, errlen, "cannot write %s: %s", cert_path, strerror(errno));
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

/* A key's private half must be in the token: a row without it belongs to
 * another token (the token was reset or replaced), and no set-up step can
 * make it whole. */
static int key_in_token(srv_ctx *ctx, const srv_key *k, char *err, size_t errlen)
{
	srv_hsm_rc hr = srv_hsm_key_exists(ctx->hsm, k->ckid);
	if (hr == SRV_HSM_OK)
		return 0;
	if (hr == SRV_HSM_NOT_FOUND)
		snprintf(err, errlen,
			 "key %s (%s) is in the database but not in the token: this database was "
			 "made with another token",
			 k->name, k->id);
	else
		snprintf(err, errlen, "cannot look for key %s in the token", k->name);
	return -1;
}

int srv_setup_key(srv_ctx *ctx, const srv_principal *actor, const char *name, const char *alg,
		  const char *crash_step, srv_key *out, char *err, size_t errlen)
{
	srv_store *st = ctx->store;
	srv_st_rc rc = st->ops->key_get(st, name, out);
	if (rc == SRV_ST_OK) {
		rs_info("set-up: key %s exists from an earlier run; using it", name);
		return key_in_token(ctx, out, err, errlen);
	}
	if (rc != SRV_ST_NOT_FOUND) {
		snprintf(err, errlen, "cannot read key %s", name);
		return -1;
	}
	cJSON *res = NULL;
	char body[160];
	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"keyAlgorithm\":\"%s\"}", name, alg);
	if (srv_setup_call(ctx, actor, api_key_create, NULL, body, &res, err, errlen) != SRV_OK)
		return -1;
	cJSON_Delete(res);
	srv_setup_crash_point(crash_step);
	if (st->ops->key_get(st, name, out) != SRV_ST_OK) {
		snprintf(err, errlen, "cannot read back key %s", name);
		return -1;
	}
	return 0;
}

/* The built-in CA: its key (CA_KEY_NAME) and certificate. ca_key_id is
 * stored last: while it is missing, the next run finishes the CA with the
 * key it finds. */
static int ensure_ca(srv_ctx *ctx, const srv_principal *actor, char *err, size_t errlen)
{
	srv_store *st = ctx->store;
	char *id = NULL, *pem = NULL;
	srv_key k = {0};
	int ret = -1;
	if (st->ops->meta_get(st, "ca_key_id", &id) == SRV_ST_OK) {
		if (st->ops->meta_get(st, "ca_cert_pem", &pem) != SRV_ST_OK ||
		    st->ops->key_get(st, id, &k) != SRV_ST_OK) {
			snprintf(err, errlen,
				 "the database names a CA key but lacks it or its "
				 "certificate");
			goto out;
		}
		ret = key_in_token(ctx, &k, err, errlen);
		goto out;
	}
	if (srv_setup_key(ctx, actor, CA_KEY_NAME, "EC_P384", "ca-key-created", &k, err, errlen) !=
	    0)
		goto out;
	srv_pki_key pk = {.alg = k.alg, .spki = k.spki, .spki_len = k.spki_len};
	memcpy(pk.ckid, k.ckid, sizeof(pk.ckid));
	if (srv_pki_ca_create(ctx->hsm, &pk, "rsign built-in CA", CA_DAYS, &pem, err, errlen) != 0)
		goto out;
	if (st->ops->meta_set(st, "ca_cert_pem", pem) != SRV_ST_OK) {
		snprintf(err, errlen, "cannot store the CA certificate");
		goto out;
	}
	srv_setup_crash_point("ca-cert-stored");
	if (st->ops->meta_set(st, "ca_key_id", k.id) != SRV_ST_OK) {
		snprintf(err, errlen, "cannot store the CA");
		goto out;
	}
	rs_info("built-in CA created (key %s, %s)", CA_KEY_NAME, rs_key_alg_name(k.alg));
	ret = 0;
out:
	free(id);
	free(pem);
	srv_key_clear(&k);
	return ret;
}

/* The TLS pair at the configured or default paths. A key without its
 * certificate is what an interrupted run leaves (the key is written first):
 * both are made again. A certificate without its key is not: refused. */
static int ensure_tls(const srv_config *cfg, char *err, size_t errlen)
{
	char cert[4096], key[4096];
	if (cfg->insecure_http)
		return 0;
	srv_setup_tls_paths(cfg, cert, key, sizeof(cert));
	int have_cert = access(cert, F_OK) == 0, have_key = access(key, F_OK) == 0;
	if (have_cert && have_key)
		return 0;
	if (have_cert) {
		snprintf(err, errlen,
			 "%s exists but its key %s does not: restore the key, or remove the "
			 "certificate and run init again",
			 cert, key);
		return -1;
	}
	if (have_key)
		rs_info("set-up: %s has no certificate (an interrupted run?): making both again",
			key);
	return make_tls_cert(cert, key, err, errlen);
}

static int admin_token_works(srv_ctx *ctx, const char *token)
{
	char hash[65];
	srv_principal p = {0};
	srv_auth_hash(token, hash);
	int ok = ctx->store->ops->token_lookup(ctx->store, hash, time(NULL), &p, NULL) ==
			 SRV_ST_OK &&
		 p.admin && !p.disabled;
	srv_principal_clear(&p);
	return ok;
}

/* A token for the principal "admin", created (with a token) when absent,
 * else given a new one. tok receives it. */
static int admin_token_new(srv_ctx *ctx, const srv_principal *actor, char tok[SRV_TOKEN_LEN],
			   char *err, size_t errlen)
{
	srv_store *st = ctx->store;
	srv_principal p = {0};
	cJSON *out = NULL;
	srv_err e;
	srv_st_rc rc = st->ops->principal_get(st, ADMIN_NAME, &p);
	if (rc == SRV_ST_NOT_FOUND) {
		e = srv_setup_call(ctx, actor, api_principal_create, NULL,
				   "{\"type\":\"user\",\"name\":\"" ADMIN_NAME "\",\"admin\":true}",
				   &out, err, errlen);
	} else if (rc != SRV_ST_OK) {
		snprintf(err, errlen, "cannot read the principal %s", ADMIN_NAME);
		return -1;
	} else if (!p.admin || p.disabled || strcmp(p.type, "user") != 0) {
		snprintf(err, errlen,
			 "the principal \"%s\" is not an enabled admin user: no admin token can be "
			 "made for it",
			 ADMIN_NAME);
		srv_principal_clear(&p);
		return -1;
	} else {
		e = srv_setup_call(ctx, actor, api_token_create, p.id, "{}", &out, err, errlen);
	}
	srv_principal_clear(&p);
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(out, "token");
	int ret = -1;
	if (e != SRV_OK) {
		/* err says why */
	} else if (cJSON_IsString(t) && strlen(t->valuestring) < SRV_TOKEN_LEN) {
		rs_strlcpy(tok, t->valuestring, SRV_TOKEN_LEN);
		ret = 0;
	} else {
		snprintf(err, errlen, "the admin token was not returned");
	}
	if (cJSON_IsString(t))
		rs_wipe(t->valuestring, strlen(t->valuestring));
	cJSON_Delete(out);
	return ret;
}

/* The first admin and the delivery of its token. ADMIN_STATE is "pending"
 * from before the admin is created until its token was delivered, then
 * "done"; a pending admin found by the next run gets a new token (the one
 * made before the interruption may never have reached anyone). A database
 * with principals and no ADMIN_STATE was set up before this rule, and has
 * its admin. */
static int ensure_admin(srv_ctx *ctx, const srv_principal *actor, const srv_setup_admin *adm,
			char *err, size_t errlen)
{
	srv_store *st = ctx->store;
	srv_principal *v = NULL;
	size_t n = 0, total = 0;
	char *state = NULL, tok[SRV_TOKEN_LEN] = "";
	int ret = -1;
	srv_st_rc rc = st->ops->meta_get(st, ADMIN_STATE, &state);
	if (rc != SRV_ST_OK && rc != SRV_ST_NOT_FOUND) {
		snprintf(err, errlen, "cannot read the set-up state");
		return -1;
	}
	int pending = state && strcmp(state, "pending") == 0;
	free(state);
	if (adm->held && admin_token_works(ctx, adm->held)) {
		if (pending && st->ops->meta_set(st, ADMIN_STATE, "done") != SRV_ST_OK) {
			snprintf(err, errlen, "cannot store the set-up state");
			return -1;
		}
		return 0;
	}
	if (st->ops->principal_list(st, 0, 1, &v, &n, &total) != SRV_ST_OK) {
		snprintf(err, errlen, "cannot read principals");
		return -1;
	}
	srv_principal_list_free(v, n);
	if (total > 0 && !pending && !adm->renew)
		return 0;
	if (pending)
		rs_info("set-up: the first admin's token was not delivered; making a new one");
	else if (total == 0 && st->ops->meta_set(st, ADMIN_STATE, "pending") != SRV_ST_OK) {
		snprintf(err, errlen, "cannot store the set-up state");
		return -1;
	}
	srv_setup_crash_point("admin-pending");
	if (admin_token_new(ctx, actor, tok, err, errlen) != 0)
		goto out;
	srv_setup_crash_point("admin-created");
	if (adm->deliver(adm->arg, tok) != 0) {
		snprintf(err, errlen, "the admin token could not be delivered");
		goto out;
	}
	srv_setup_crash_point("admin-delivered");
	if (st->ops->meta_set(st, ADMIN_STATE, "done") != SRV_ST_OK) {
		snprintf(err, errlen, "cannot store the set-up state");
		goto out;
	}
	ret = 0;
out:
	rs_wipe(tok, sizeof(tok));
	return ret;
}

static int open_parts(srv_ctx *ctx, const srv_config *cfg, const char *pin, char *err,
		      size_t errlen)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->max_body = cfg->max_body;
	ctx->access_token_ttl = cfg->access_token_ttl;
	ctx->session_idle = cfg->console_session_idle;
	ctx->max_tokens = cfg->max_tokens_per_principal;
	if (cfg->softhsm2_conf)
		setenv("SOFTHSM2_CONF", cfg->softhsm2_conf, 1);
	if (srv_store_is_pg_uri(cfg->database)) {
		ctx->store =
			srv_store_pg_open(cfg->database, (int)cfg->db_connections, err, errlen);
	} else {
		if (mkdir_for(cfg->database) != 0) {
			snprintf(err, errlen, "%s: cannot create its directory", cfg->database);
			return -1;
		}
		ctx->store = srv_store_sqlite_open(cfg->database, err, errlen);
	}
	if (ctx->store)
		ctx->store->ops->history_set_retention(ctx->store, cfg->history_denied_retention);
	/* the row MAC key before any row is read or written */
	if (!ctx->store ||
	    srv_hsm_open(cfg->pkcs11_module, cfg->token_label, pin, (int)cfg->hsm_sessions,
			 &ctx->hsm, err, errlen) != SRV_HSM_OK ||
	    srv_rowmac_start(ctx->hsm, ctx->store, err, errlen) != 0 ||
	    srv_logkey_start(ctx, err, errlen) != 0) {
		srv_setup_close(ctx);
		return -1;
	}
	srv_hsm_set_shared_writes(ctx->hsm, !cfg->hsm_exclusive_writes);
	return 0;
}

int srv_setup_init(const srv_config *cfg, const srv_setup_admin *admin, char *err, size_t errlen)
{
	srv_ctx ctx;
	if (srv_setup_crash_check(err, errlen) != 0)
		return -1;
	if (cfg->softhsm2_conf)
		setenv("SOFTHSM2_CONF", cfg->softhsm2_conf, 1);
	/* read once: reading it takes it out of the environment */
	char *pin = srv_config_pin(cfg, err, errlen);
	if (!pin)
		return -1;
	char so_pin[33];
	int ret = -1;
	if (rs_random_hex(16, so_pin) != 0) {
		snprintf(err, errlen, "no randomness for the SO PIN");
		goto wipe;
	}
	/* a token that exists already (a real HSM) is used as it is */
	srv_hsm_rc hr =
		srv_hsm_init_token(cfg->pkcs11_module, cfg->token_label, so_pin, pin, err, errlen);
	rs_wipe(so_pin, sizeof(so_pin));
	if (hr != SRV_HSM_OK)
		goto wipe;
	srv_setup_crash_point("token-ready");
	if (open_parts(&ctx, cfg, pin, err, errlen) != 0)
		goto wipe;
	srv_setup_crash_point("store-opened");
	srv_principal boot = {.admin = 1, .name = "rsignd-init"};
	rs_strlcpy(boot.type, "user", sizeof(boot.type));
	if (ensure_ca(&ctx, &boot, err, errlen) == 0 && ensure_tls(cfg, err, errlen) == 0 &&
	    ensure_admin(&ctx, &boot, admin, err, errlen) == 0)
		ret = 0;
	srv_setup_close(&ctx);
wipe:
	rs_free_secret(pin);
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
	if (cfg->softhsm2_conf)
		setenv("SOFTHSM2_CONF", cfg->softhsm2_conf, 1);
	char *pin = srv_config_pin(cfg, err, errlen);
	if (!pin)
		return -1;
	int r = open_parts(ctx, cfg, pin, err, errlen);
	rs_free_secret(pin);
	if (r != 0)
		return -1;
	char *id = NULL;
	srv_store *st = ctx->store;
	if (st->ops->meta_get(st, "ca_key_id", &id) != SRV_ST_OK ||
	    st->ops->meta_get(st, "ca_cert_pem", &ctx->ca_cert_pem) != SRV_ST_OK) {
		free(id);
		snprintf(err, errlen, "%s is not initialised: run `rsignd init` first",
			 db_name(cfg));
		srv_setup_close(ctx);
		return -1;
	}
	rs_strlcpy(ctx->ca_key_id, id, sizeof(ctx->ca_key_id));
	free(id);
	if (ca_not_after(ctx->ca_cert_pem, &ctx->ca_not_after) != 0) {
		snprintf(err, errlen, "%s: the stored CA certificate does not parse", db_name(cfg));
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
	free(ctx->log_spki);
	ctx->log_spki = NULL;
	ctx->log_spki_len = 0;
}
