/* `rsignd dev --dir DIR`: in the spirit of `vault server -dev`. One
 * directory holds a SoftHSM2 token, the SQLite database, the TLS
 * certificate, the admin token and a module config; two demo signers are
 * created; stdout gets the shell exports once the server is ready, logs go
 * to stderr. With --database URI the state is in that PostgreSQL database
 * instead of the SQLite file (the rest stays in the directory). Running it
 * again on the same directory reuses the state, and
 * finishes whatever an interrupted first run left: every file is written
 * atomically; while there is no database yet the token holds no key, so a
 * token left half-initialised is started afresh; a demo signer's key and
 * certificate made before an interruption are used, not made again. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "rsign/conf.h"
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/api/api.h"
#include "server/rsignd/dev.h"
#include "server/rsignd/setup.h"

typedef struct {
	char dir[PATH_MAX];
	char path[8][PATH_MAX + 64];
	const srv_dev_opts *o;
} dev_state;

enum { P_SOFTHSM, P_TOKENS, P_PIN, P_DB, P_ADMIN, P_CONF, P_MODCONF, P_TLSCERT };

static int write_text(const char *path, const char *text, mode_t mode, const char *crash_step)
{
	return srv_setup_write_file(path, text, strlen(text), mode, crash_step);
}

static int read_line(const char *path, char *out, size_t outlen)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	char *ok = fgets(out, (int)outlen, f);
	fclose(f);
	if (!ok)
		return -1;
	out[strcspn(out, "\r\n")] = '\0';
	return out[0] ? 0 : -1;
}

/* Whether the database is still to be made: no SQLite file, or a PostgreSQL
 * database that holds no key yet (keys are only made once it exists, so the
 * token holds none that it names). -1 when it cannot be read. */
static int database_fresh(const dev_state *d)
{
	char err[512] = "";
	srv_key *v = NULL;
	size_t n = 0, total = 0;
	srv_store *st;
	srv_st_rc r;

	if (!d->o->database)
		return access(d->path[P_DB], F_OK) != 0;
	if (!(st = srv_store_pg_open(d->o->database, 1, err, sizeof(err)))) {
		rs_err("dev: %s", err);
		return -1;
	}
	r = st->ops->key_list(st, 0, 1, &v, &n, &total);
	srv_key_list_free(v, n);
	st->ops->close(st);
	return r != SRV_ST_OK ? -1 : total == 0;
}

/* Removes what the tokens directory holds (the directory stays). */
static int rm_token_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	if (ftw->level == 0)
		return 0;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) == 0 ? 0 : -1;
}

/* The PIN file: kept when it holds a PIN; made when missing, or when empty
 * and the token it would open is being started afresh (fresh). */
static int ensure_pin(dev_state *d, int fresh)
{
	char pin[64];
	int have = read_line(d->path[P_PIN], pin, sizeof(pin)) == 0;
	rs_wipe(pin, sizeof(pin));
	if (have)
		return 0;
	if (!fresh) {
		rs_err("dev: %s is missing or empty, but the token of %s was made with it",
		       d->path[P_PIN], d->dir);
		return -1;
	}
	if (rs_random_hex(16, pin) != 0)
		return -1;
	int r = write_text(d->path[P_PIN], pin, 0600, "pin-partial");
	rs_wipe(pin, sizeof(pin));
	return r;
}

static int prepare_dir(dev_state *d)
{
	static const char *names[] = {"softhsm2.conf",	   "tokens",	    "pin",
				      "rsign.db",	   "admin.token",   "rsignd.conf",
				      "rsign-pkcs11.conf", "tls/server.pem"};
	if (mkdir(d->o->dir, 0700) != 0 && errno != EEXIST) {
		rs_err("dev: cannot create %s: %s", d->o->dir, strerror(errno));
		return -1;
	}
	if (!realpath(d->o->dir, d->dir)) {
		rs_err("dev: %s: %s", d->o->dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < 8; i++)
		if (snprintf(d->path[i], sizeof(d->path[i]), "%s/%s", d->dir, names[i]) >=
		    (int)sizeof(d->path[i]))
			return -1;
	if (mkdir(d->path[P_TOKENS], 0700) != 0 && errno != EEXIST)
		return -1;
	/* The database is made right after the token, and keys only after
	 * that: without it, the token holds no key, and may be one whose
	 * initialisation was interrupted (no user PIN). Start it afresh. */
	int fresh = database_fresh(d);
	if (fresh < 0)
		return -1;
	if (fresh && nftw(d->path[P_TOKENS], rm_token_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
		rs_err("dev: cannot empty %s: %s", d->path[P_TOKENS], strerror(errno));
		return -1;
	}
	char text[PATH_MAX + 300];
	int n = snprintf(
		text, sizeof(text),
		"# SoftHSM2 for rsignd dev\ndirectories.tokendir = %s\nobjectstore.backend = file\n"
		"log.level = ERROR\nslots.removable = false\n",
		d->path[P_TOKENS]);
	if (n >= (int)sizeof(text) || write_text(d->path[P_SOFTHSM], text, 0600, NULL) != 0)
		return -1;
	return ensure_pin(d, fresh);
}

static int set_str(char **field, const char *v)
{
	char *n = strdup(v);
	if (!n)
		return -1;
	free(*field);
	*field = n;
	return 0;
}

static int make_config(dev_state *d, srv_config *cfg)
{
	char err[RS_CONF_ERRLEN], listen[64];
	if (srv_config_load(cfg, NULL, err, sizeof(err)) != 0)
		return -1;
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", d->o->port);
	cfg->threads = d->o->threads;
	cfg->access_token_ttl = d->o->access_token_ttl;
	if (d->o->console_session_idle > 0)
		cfg->console_session_idle = d->o->console_session_idle;
	cfg->log_level = rs_log_get_level();
	/* a development box need not run a time daemon: serve.c says so in the log */
	cfg->tsa_require_synced_clock = 0;
	free(cfg->pin_env);
	cfg->pin_env = NULL;
	/* the TLS pair stays in the directory whatever the database */
	char tls_key[PATH_MAX + 64];
	snprintf(tls_key, sizeof(tls_key), "%s/tls/server.key", d->dir);
	return set_str(&cfg->listen, listen) |
	       set_str(&cfg->database, d->o->database ? d->o->database : d->path[P_DB]) |
	       set_str(&cfg->tls_cert, d->path[P_TLSCERT]) | set_str(&cfg->tls_key, tls_key) |
	       set_str(&cfg->softhsm2_conf, d->path[P_SOFTHSM]) |
	       set_str(&cfg->pin_file, d->path[P_PIN]) | set_str(&cfg->token_label, "rsign-dev");
}

/* The id of a certificate of key_id valid now, as an interrupted earlier run
 * may have issued. 1 found, 0 none, -1 when the store fails. */
static int find_cert(srv_ctx *ctx, const char *key_id, srv_id out)
{
	srv_cert *v = NULL;
	size_t n = 0, total = 0, offset = 0;
	time_t now = time(NULL);
	int found = 0;
	do {
		if (ctx->store->ops->cert_list(ctx->store, offset, 100, &v, &n, &total) !=
		    SRV_ST_OK)
			return -1;
		for (size_t i = 0; i < n && !found; i++)
			if (strcmp(v[i].key_id, key_id) == 0 && v[i].not_before <= now &&
			    now < v[i].not_after) {
				rs_strlcpy(out, v[i].id, sizeof(srv_id));
				found = 1;
			}
		srv_cert_list_free(v, n);
		offset += n;
	} while (!found && n > 0 && offset < total);
	return found;
}

/* The certificate of key k for demo name: one an interrupted run issued,
 * or a new one from the CA (profile: NULL = code signing, "tsa"), then the
 * crash point NAME-cert-issued. 0, or -1 + err. */
static int demo_cert(srv_ctx *ctx, const srv_principal *admin, const srv_key *k, const char *name,
		     const char *profile, srv_id cert_id, char *err, size_t errlen)
{
	char body[512], step[96];
	cJSON *cert = NULL;
	int have = find_cert(ctx, k->id, cert_id);
	if (have < 0) {
		rs_strlcpy(err, "cannot read certificates", errlen);
		return -1;
	}
	if (have)
		return 0;
	snprintf(body, sizeof(body),
		 "{\"keyId\":\"%s\",\"commonName\":\"rsign %s\",\"ttlDays\":365%s%s%s}", k->id,
		 name, profile ? ",\"profile\":\"" : "", profile ? profile : "",
		 profile ? "\"" : "");
	if (srv_setup_call(ctx, admin, api_cert_issue, NULL, body, &cert, err, errlen) != SRV_OK)
		return -1;
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(cert, "id");
	int ok = cJSON_IsString(id) && strlen(id->valuestring) < sizeof(srv_id);
	if (ok)
		rs_strlcpy(cert_id, id->valuestring, sizeof(srv_id));
	else
		rs_strlcpy(err, "the new certificate has no id", errlen);
	cJSON_Delete(cert);
	if (!ok)
		return -1;
	snprintf(step, sizeof(step), "%s-cert-issued", name);
	srv_setup_crash_point(step);
	return 0;
}

/* key -> certificate -> signer through the API's own handlers; a key or
 * certificate an interrupted run made is used rather than made again. */
static int demo_signer(srv_ctx *ctx, const srv_principal *admin, const char *name, const char *alg)
{
	srv_signer s = {0};
	if (ctx->store->ops->signer_get(ctx->store, name, &s) == SRV_ST_OK) {
		srv_signer_clear(&s);
		return 0;
	}
	char body[512], err[512] = "", key_name[80], step[96];
	srv_key k = {0};
	srv_id cert_id = "";
	cJSON *signer = NULL;
	int ret = -1;
	snprintf(key_name, sizeof(key_name), "%s-key", name);
	snprintf(step, sizeof(step), "%s-key-created", name);
	if (srv_setup_key(ctx, admin, key_name, alg, step, &k, err, sizeof(err)) != 0)
		goto out;
	if (demo_cert(ctx, admin, &k, name, NULL, cert_id, err, sizeof(err)) != 0)
		goto out;
	snprintf(body, sizeof(body),
		 "{\"name\":\"%s\",\"description\":\"rsignd dev demo signer "
		 "(%s)\",\"certificateId\":\"%s\"}",
		 name, alg, cert_id);
	if (srv_setup_call(ctx, admin, api_signer_create, NULL, body, &signer, err, sizeof(err)) !=
	    SRV_OK)
		goto out;
	rs_info("dev: demo signer %s (%s) ready", name, alg);
	ret = 0;
out:
	if (ret != 0)
		rs_err("dev: cannot create demo signer %s: %s", name, err);
	srv_key_clear(&k);
	cJSON_Delete(signer);
	return ret;
}

/* demo-tsa: a P-256 key, a certificate of the tsa profile from the CA,
 * the TSA object (policy 2.999.1.1: under 2.999, the arc X.660 keeps for examples).
 * Made again where an interrupted run left off, as demo_signer does. */
static int demo_tsa(srv_ctx *ctx, const srv_principal *admin)
{
	srv_tsa t = {0};
	if (ctx->store->ops->tsa_get(ctx->store, "demo-tsa", &t) == SRV_ST_OK) {
		srv_tsa_clear(&t);
		return 0;
	}
	char body[512], err[512] = "";
	srv_key k = {0};
	srv_id cert_id = "";
	cJSON *tsa = NULL;
	int ret = -1;
	if (srv_setup_key(ctx, admin, "demo-tsa-key", "EC_P256", "demo-tsa-key-created", &k, err,
			  sizeof(err)) != 0)
		goto out;
	if (demo_cert(ctx, admin, &k, "demo-tsa", "tsa", cert_id, err, sizeof(err)) != 0)
		goto out;
	snprintf(body, sizeof(body),
		 "{\"name\":\"demo-tsa\",\"certificateId\":\"%s\","
		 "\"policyOid\":\"2.999.1.1\",\"accuracySeconds\":1}",
		 cert_id);
	if (srv_setup_call(ctx, admin, api_tsa_create, NULL, body, &tsa, err, sizeof(err)) !=
	    SRV_OK)
		goto out;
	rs_info("dev: demo time-stamp authority demo-tsa ready");
	ret = 0;
out:
	if (ret != 0)
		rs_err("dev: cannot create demo-tsa: %s", err);
	srv_key_clear(&k);
	cJSON_Delete(tsa);
	return ret;
}

static void on_ready(void *arg, int port)
{
	dev_state *d = arg;
	char text[8 * PATH_MAX];
	int n = snprintf(text, sizeof(text),
			 "# written by rsignd dev; `rsignd serve -c %s` serves this state again\n"
			 "listen = 127.0.0.1:%d\ndatabase = %s\nsofthsm2_conf = %s\ntoken_label = "
			 "rsign-dev\n"
			 "pin_file = %s\ntsa_require_synced_clock = false\n",
			 d->path[P_CONF], port, d->o->database ? d->o->database : d->path[P_DB],
			 d->path[P_SOFTHSM], d->path[P_PIN]);
	if (d->o->database && n < (int)sizeof(text))
		n += snprintf(text + n, sizeof(text) - (size_t)n,
			      "tls_cert = %s\ntls_key = %s/tls/server.key\n", d->path[P_TLSCERT],
			      d->dir);
	if (n >= (int)sizeof(text) || write_text(d->path[P_CONF], text, 0600, NULL) != 0)
		rs_warn("dev: cannot write %s", d->path[P_CONF]);
	n = snprintf(text, sizeof(text),
		     "# rsign-pkcs11.so configuration written by rsignd dev\n"
		     "url = https://127.0.0.1:%d\nca_file = %s\ntoken_file = %s\n",
		     port, d->path[P_TLSCERT], d->path[P_ADMIN]);
	if (n >= (int)sizeof(text) || write_text(d->path[P_MODCONF], text, 0600, NULL) != 0)
		rs_warn("dev: cannot write %s", d->path[P_MODCONF]);
	char token[SRV_TOKEN_LEN + 8];
	if (read_line(d->path[P_ADMIN], token, sizeof(token)) != 0)
		token[0] = '\0';
	/* RSIGN_PKCS11_CONF last: tests take it as the end of the exports */
	printf("export RSIGN_URL='https://127.0.0.1:%d'\n"
	       "export RSIGN_TOKEN='%s'\n"
	       "export RSIGN_CA_FILE='%s'\n"
	       "export RSIGN_TSA_URL='https://127.0.0.1:%d/tsa/demo-tsa'\n"
	       "export RSIGN_PKCS11_CONF='%s'\n"
	       "# web console: https://127.0.0.1:%d/ (sign in with RSIGN_TOKEN); a request's "
	       "page: https://127.0.0.1:%d/requests/{id}\n",
	       port, token, d->path[P_TLSCERT], port, d->path[P_MODCONF], port, port);
	fflush(stdout);
	rs_wipe(token, sizeof(token));
}

/* The first admin's token lands in admin.token. */
static int deliver_admin_token(void *arg, const char *token)
{
	dev_state *d = arg;
	if (write_text(d->path[P_ADMIN], token, 0600, "admin-token-partial") != 0) {
		rs_err("dev: cannot write %s: %s", d->path[P_ADMIN], strerror(errno));
		return -1;
	}
	return 0;
}

int srv_dev_main(const srv_dev_opts *o)
{
	dev_state d = {.o = o};
	srv_config cfg;
	srv_ctx ctx;
	char err[512] = "", held[SRV_TOKEN_LEN + 8];
	int ret = 1;
	memset(&cfg, 0, sizeof(cfg));
	if (srv_setup_crash_check(err, sizeof(err)) != 0) {
		rs_err("dev: %s", err);
		return 1;
	}
	if (prepare_dir(&d) != 0) {
		rs_err("dev: cannot prepare %s", o->dir);
		return 1;
	}
	if (make_config(&d, &cfg) != 0) {
		rs_err("dev: out of memory");
		goto out;
	}
	srv_setup_admin adm = {.deliver = deliver_admin_token, .arg = &d, .renew = 1};
	if (read_line(d.path[P_ADMIN], held, sizeof(held)) == 0)
		adm.held = held;
	int r = srv_setup_init(&cfg, &adm, err, sizeof(err));
	rs_wipe(held, sizeof(held));
	if (r != 0) {
		rs_err("dev: %s", err);
		goto out;
	}
	if (srv_setup_open(&ctx, &cfg, err, sizeof(err)) != 0) {
		rs_err("dev: %s", err);
		goto out;
	}
	srv_principal admin = {.admin = 1, .name = "rsignd-dev"};
	rs_strlcpy(admin.type, "user", sizeof(admin.type));
	if (demo_signer(&ctx, &admin, "demo-rsa", "RSA_3072") == 0 &&
	    demo_signer(&ctx, &admin, "demo-ec", "EC_P256") == 0 && demo_tsa(&ctx, &admin) == 0)
		ret = srv_run(&ctx, &cfg, on_ready, &d);
	srv_setup_close(&ctx);
out:
	srv_config_free(&cfg);
	return ret;
}
