/* Credentials and the authenticated API call.
 *
 * Sources, first match wins: the config's token_file, $RSIGN_TOKEN,
 * $RSIGN_CLIENT_ID + $RSIGN_CLIENT_SECRET, the config's client_id +
 * client_secret_file, the config's identity_id (OIDC, oidc.h); without any,
 * the PIN of C_Login carries an access token or "clientId:clientSecret". A
 * machine identity logs in with POST /auth/universal-auth/login, or with
 * POST /auth/oidc-auth/login and a fresh JWT; its access token is cached
 * until shortly before expiresIn, renewed by a new login once it expires,
 * and once when the server answers 401. A token
 * read from a file is re-read once after a 401 (an agent may renew it).
 *
 * Shared credentials live in tables guarded by the global lock: a call copies
 * them out, makes its requests unlocked, and stores what changed only if the
 * credential was not replaced meanwhile. Copies are wiped when dropped. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rsign/json.h"
#include "rsign/log.h"

#include "module.h"
#include "auth.h"
#include "errors.h"

#define SECRET_MAX 8192

int mod_cred_is_set(const mod_cred *c)
{
	return c && (c->token || (c->client_id && c->client_secret) || c->oidc.identity_id);
}

void mod_cred_clear(mod_cred *c)
{
	unsigned long gen;

	if (!c)
		return;
	gen = c->gen;
	rs_free_secret(c->token);
	free(c->token_file);
	free(c->client_id);
	rs_free_secret(c->client_secret);
	mod_oidc_clear(&c->oidc);
	rs_free_secret(c->access);
	memset(c, 0, sizeof(*c));
	c->gen = gen + 1;
}

static char *dup_secret(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Reads a one-line secret, refusing a file that group or others may read
 * (it is a credential) or replace. NULL after one log line. */
static char *read_secret_file(const char *path, const char *what)
{
	char buf[SECRET_MAX + 1];
	struct stat st;
	ssize_t n;
	size_t len = 0;
	char *out = NULL;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rs_err("%s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rs_err("%s %s: not a regular file", what, path);
		goto out;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		rs_err("%s %s: refused, group or others may read or write it (mode %04o); chmod "
		       "600 it",
		       what, path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	while (len < sizeof(buf) - 1) {
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (len == sizeof(buf) - 1) {
		rs_err("%s %s: larger than %d bytes", what, path, SECRET_MAX);
		goto out;
	}
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
		len--;
	buf[len] = '\0';
	if (!len || memchr(buf, '\0', len)) {
		rs_err("%s %s: empty or not text", what, path);
		goto out;
	}
	out = strdup(buf);
out:
	rs_wipe(buf, sizeof(buf));
	close(fd);
	return out;
}

int mod_cred_load_configured(const mod_config *conf, mod_cred *c)
{
	const char *tok = getenv("RSIGN_TOKEN");
	const char *cid = getenv("RSIGN_CLIENT_ID");
	const char *sec = getenv("RSIGN_CLIENT_SECRET");

	mod_cred_clear(c);
	if (conf->token_file) {
		c->token = read_secret_file(conf->token_file, "token_file");
		c->token_file = strdup(conf->token_file);
		if (!c->token || !c->token_file)
			goto fail;
	} else if (tok && *tok) {
		c->token = dup_secret(tok);
		if (!c->token)
			goto fail;
	} else if (cid && *cid && sec && *sec) {
		c->client_id = strdup(cid);
		c->client_secret = dup_secret(sec);
		if (!c->client_id || !c->client_secret)
			goto fail;
	} else if (conf->client_id && conf->identity_id) {
		rs_err("%s: client_id and identity_id exclude each other",
		       conf->path ? conf->path : "configuration");
		goto fail;
	} else if (conf->identity_id || conf->oidc_token_file || conf->oidc_token_env ||
		   conf->oidc_github) {
		if (mod_oidc_from_config(conf, &c->oidc) != 0)
			goto fail;
	} else if (conf->client_id) {
		if (!conf->client_secret_file) {
			rs_err("%s: client_id needs client_secret_file",
			       conf->path ? conf->path : "configuration");
			goto fail;
		}
		c->client_id = strdup(conf->client_id);
		c->client_secret = read_secret_file(conf->client_secret_file, "client_secret_file");
		if (!c->client_id || !c->client_secret)
			goto fail;
	}
	return 0;
fail:
	mod_cred_clear(c);
	return -1;
}

int mod_cred_from_pin(const unsigned char *pin, size_t len, mod_cred *c)
{
	char *copy, *colon;

	mod_cred_clear(c);
	if (!pin || !len || len > SECRET_MAX || memchr(pin, '\0', len))
		return -1;
	copy = malloc(len + 1);
	if (!copy)
		return -1;
	memcpy(copy, pin, len);
	copy[len] = '\0';
	colon = strchr(copy, ':');
	if (!colon) {
		c->token = copy;
		return 0;
	}
	*colon = '\0';
	if (!copy[0] || !colon[1]) {
		rs_free_secret(copy);
		return -1;
	}
	c->client_id = strdup(copy);
	c->client_secret = strdup(colon + 1);
	rs_free_secret(copy);
	if (!c->client_id || !c->client_secret) {
		mod_cred_clear(c);
		return -1;
	}
	return 0;
}

/* ---- one call with a copy of the credential ------------------------------ */

typedef struct snap {
	char *token, *token_file, *client_id, *client_secret, *access;
	mod_oidc oidc;
	unsigned long gen;
	/* results to store back */
	int new_access;
	long long access_until;
	int new_token;
} snap;

static int snap_take(snap *s, const mod_cred *c)
{
	memset(s, 0, sizeof(*s));
	s->gen = c->gen;
	s->token = dup_secret(c->token);
	s->token_file = dup_secret(c->token_file);
	s->client_id = dup_secret(c->client_id);
	s->client_secret = dup_secret(c->client_secret);
	if (c->access && mod_now() < c->access_until)
		s->access = dup_secret(c->access);
	if (mod_oidc_copy(&s->oidc, &c->oidc) != 0)
		return -1;
	if ((c->token && !s->token) || (c->token_file && !s->token_file) ||
	    (c->client_id && !s->client_id) || (c->client_secret && !s->client_secret) ||
	    (c->access && mod_now() < c->access_until && !s->access))
		return -1;
	return 0;
}

static void snap_drop(snap *s)
{
	rs_free_secret(s->token);
	free(s->token_file);
	free(s->client_id);
	rs_free_secret(s->client_secret);
	mod_oidc_clear(&s->oidc);
	rs_free_secret(s->access);
	memset(s, 0, sizeof(*s));
}

/* Moves renewed secrets into c unless c was replaced since the copy. */
static void snap_store(snap *s, mod_cred *c)
{
	if (c->gen != s->gen)
		return;
	if (s->new_access) {
		rs_free_secret(c->access);
		c->access = s->access;
		c->access_until = s->access_until;
		s->access = NULL;
	}
	if (s->new_token) {
		rs_free_secret(c->token);
		c->token = s->token;
		s->token = NULL;
	}
}

/* cJSON keeps its own copy of every string: wipe it before the tree goes. */
static void json_wipe_strings(cJSON *obj)
{
	cJSON *it;

	cJSON_ArrayForEach (it, obj)
		if (cJSON_IsString(it) && it->valuestring)
			rs_wipe(it->valuestring, strlen(it->valuestring));
}

static CK_RV login(snap *s, const mod_call *orig)
{
	mod_call call = {0};
	cJSON *req = NULL, *resp = NULL;
	const char *tok = NULL;
	long long exp = 3600, margin;
	char *body = NULL, *jwt = NULL;
	CK_RV rv;

	call.what = "login";
	call.signer = orig->signer;
	call.method = "POST";
	call.path = s->oidc.identity_id ? "/auth/oidc-auth/login" : "/auth/universal-auth/login";
	call.in_login = orig->in_login;
	if (s->oidc.identity_id && !(jwt = mod_oidc_jwt(&s->oidc))) {
		/* logged: no JWT to log in with */
		rv = call.in_login ? CKR_PIN_INCORRECT : CKR_USER_NOT_LOGGED_IN;
		goto out;
	}
	req = cJSON_CreateObject();
	if (!req ||
	    (jwt ? !cJSON_AddStringToObject(req, "identityId", s->oidc.identity_id) ||
			     !cJSON_AddStringToObject(req, "jwt", jwt)
		 : !cJSON_AddStringToObject(req, "clientId", s->client_id) ||
			     !cJSON_AddStringToObject(req, "clientSecret", s->client_secret)) ||
	    !(body = cJSON_PrintUnformatted(req))) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	call.body = body;
	mod_http_request(call.method, call.path, NULL, body, NULL, &call.resp);
	if (call.resp.transport_failed || call.resp.status < 200 || call.resp.status > 299) {
		rv = mod_err_http(&call);
		goto out;
	}
	resp = rs_json_parse((const char *)call.resp.body.data, call.resp.body.len,
			     RS_JSON_MAX_DEPTH);
	if (!resp || rs_json_str(resp, "accessToken", 1, 4096, &tok) != RS_JSON_OK || !*tok ||
	    rs_json_int(resp, "expiresIn", 0, 1, 10LL * 365 * 86400, &exp) != RS_JSON_OK) {
		rv = mod_err_response(&call, "login answer without accessToken/expiresIn");
		goto out;
	}
	rs_free_secret(s->access);
	s->access = strdup(tok);
	if (!s->access) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	/* Renew a little early so a token does not expire in flight. */
	margin = exp / 10 < 60 ? exp / 10 : 60;
	s->access_until = mod_now() + (exp - margin) * 1000;
	s->new_access = 1;
	rv = CKR_OK;
out:
	if (resp) {
		json_wipe_strings(resp);
		cJSON_Delete(resp);
	}
	if (req) {
		json_wipe_strings(req);
		cJSON_Delete(req);
	}
	rs_free_secret(body);
	rs_free_secret(jwt);
	mod_call_done(&call);
	return rv;
}

static int is_success(const mod_http_resp *r)
{
	return !r->transport_failed && r->status >= 200 && r->status <= 299;
}

/* The request, preceded by a login when only client credentials are at
 * hand, and repeated once after a 401 when a fresh credential can be had. */
static CK_RV perform(snap *s, mod_call *call)
{
	int logged_in_now = 0, retried = 0;
	CK_RV rv;

	int can_log_in = s->client_id || s->oidc.identity_id;

	if (!s->token && !s->access && can_log_in) {
		rv = login(s, call);
		if (rv != CKR_OK)
			return rv;
		logged_in_now = 1;
	}
	for (;;) {
		const char *bearer = s->token ? s->token : s->access;

		if (!bearer) {
			rs_err("%s%s%s: no credentials: configure token_file or RSIGN_TOKEN, or "
			       "log in with the PIN",
			       call->what, call->signer ? " signer " : "",
			       call->signer ? call->signer : "");
			return call->in_login ? CKR_PIN_INCORRECT : CKR_USER_NOT_LOGGED_IN;
		}
		mod_http_request(call->method, call->path, bearer, call->body, call->idem_key,
				 &call->resp);
		if (is_success(&call->resp))
			return CKR_OK;
		if (call->resp.transport_failed || call->resp.status != 401 || retried)
			break;
		retried = 1;
		if (can_log_in && !s->token && !logged_in_now) {
			rs_info("%s: access token refused, logging in again", call->what);
			rv = login(s, call);
			if (rv != CKR_OK)
				return rv;
		} else if (s->token_file) {
			char *fresh = read_secret_file(s->token_file, "token_file");

			if (!fresh || strcmp(fresh, s->token) == 0) {
				rs_free_secret(fresh);
				break;
			}
			rs_info("%s: token refused, using the renewed token_file", call->what);
			rs_free_secret(s->token);
			s->token = fresh;
			s->new_token = 1;
		} else {
			break;
		}
		mod_http_resp_free(&call->resp);
	}
	return mod_err_http(call);
}

CK_RV mod_api_call(mod_cred *cred, unsigned long gen, mod_call *call)
{
	snap s;
	CK_RV rv;

	memset(&s, 0, sizeof(s));
	memset(&call->resp, 0, sizeof(call->resp));
	rv = mod_reenter(gen);
	if (rv == CKR_OK && snap_take(&s, cred) < 0)
		rv = CKR_HOST_MEMORY;
	mod_unlock();
	if (rv != CKR_OK) {
		snap_drop(&s);
		return rv;
	}
	rv = perform(&s, call);
	if (s.new_access || s.new_token) {
		if (mod_reenter(gen) == CKR_OK)
			snap_store(&s, cred);
		mod_unlock();
	}
	snap_drop(&s);
	return rv;
}

CK_RV mod_cred_call(mod_cred *cred, mod_call *call)
{
	snap s;
	CK_RV rv;

	memset(&call->resp, 0, sizeof(call->resp));
	if (snap_take(&s, cred) < 0) {
		snap_drop(&s);
		return CKR_HOST_MEMORY;
	}
	rv = perform(&s, call);
	snap_store(&s, cred);
	snap_drop(&s);
	return rv;
}

void mod_call_done(mod_call *call)
{
	/* Bodies may hold access tokens (login answers). */
	rs_buf_wipe(&call->resp.body);
}
