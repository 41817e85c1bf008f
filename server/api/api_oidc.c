/* OIDC login for machine identities: an identity's `oidc` config (checked
 * and made canonical here before the store keeps it) and POST
 * /auth/oidc-auth/login, which trades a JWT its CI issuer signed for an
 * access token, as universal-auth does. Every check that refuses a token
 * answers 401 with a reason naming that check, logs one line without the
 * token, and counts as a failed login (ratelimit.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rsign/json.h"
#include "rsign/log.h"
#include "rsign/util.h"
#include "server/api/access.h"
#include "server/api/api.h"
#include "server/http/jwks.h"
#include "server/http/jwt.h"
#include "server/http/ratelimit.h"

#define URL_MAX 1024
#define VALUE_MAX 256 /* an audience, a pattern */
#define NAME_MAX_ 128 /* a claim's dot path */
#define LIST_MAX 16   /* audiences */
#define CLAIMS_MAX 32 /* bound claims, recorded claims */
#define BYPASS_MAX 8  /* a policy's bypassClaims */
#define SKEW_MAX 600

/* recordClaims when the config names none (GitHub's and GitLab's) */
static const char *const default_record[] = {
	"repository",  "ref",	       "workflow",    "run_id", "job_workflow_ref",
	"environment", "project_path", "pipeline_id", NULL,
};

/* ---- the config --------------------------------------------------------- */

static int https_url(const char *s)
{
	size_t n = strlen(s);
	if (n <= 8 || n > URL_MAX || strncmp(s, "https://", 8) != 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

static int valid_value(const char *s)
{
	return rs_is_text(s, VALUE_MAX);
}

/* a.b.c: segments of letters, digits, _ - : */
static int valid_claim_name(const char *s)
{
	size_t n = strlen(s), seg = 0;
	if (n == 0 || n > NAME_MAX_)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '.') {
			if (seg == 0)
				return 0;
			seg = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == ':'))
			return 0;
		seg++;
	}
	return seg > 0;
}

/* Copies v, an object {claim dot path: pattern} of 1..max claims (0..max
 * when empty_ok), into out: 0, or -1 when it is not one. */
static int claim_patterns(const cJSON *v, size_t max, int empty_ok, cJSON *out)
{
	const cJSON *c;
	size_t n = (size_t)cJSON_GetArraySize(v);
	if (!cJSON_IsObject(v) || n > max || (!empty_ok && n == 0))
		return -1;
	cJSON_ArrayForEach (c, v) {
		if (!valid_claim_name(c->string) || !cJSON_IsString(c) ||
		    !valid_value(c->valuestring))
			return -1;
		cJSON_AddStringToObject(out, c->string, c->valuestring);
	}
	return 0;
}

/* Copies the string array name of in (1..max items, each ok) into o. */
static int str_list(const cJSON *in, const char *name, size_t max, int (*ok)(const char *),
		    cJSON *o)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(in, name), *v;
	if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) < 1 || (size_t)cJSON_GetArraySize(a) > max)
		return -1;
	cJSON *out = cJSON_AddArrayToObject(o, name);
	cJSON_ArrayForEach (v, a) {
		if (!cJSON_IsString(v) || !ok(v->valuestring))
			return -1;
		cJSON_AddItemToArray(out, cJSON_CreateString(v->valuestring));
	}
	return 0;
}

char *api_oidc_config(const cJSON *in, char *why, size_t whylen)
{
	cJSON *o = cJSON_CreateObject();
	char *text = NULL;
	const cJSON *v;
	if (!cJSON_IsObject(in)) {
		snprintf(why, whylen, "oidc must be an object (or null to remove it)");
		goto out;
	}
	static const char *const known[] = {"issuer",	    "jwksUrl",		"jwks",
					    "audiences",    "boundSubject",	"boundClaims",
					    "recordClaims", "clockSkewSeconds", NULL};
	cJSON_ArrayForEach (v, in) {
		size_t i;
		for (i = 0; known[i] && strcmp(known[i], v->string) != 0; i++)
			;
		if (!known[i]) {
			snprintf(why, whylen, "oidc has no field \"%.64s\"", v->string);
			goto out;
		}
	}
	v = cJSON_GetObjectItemCaseSensitive(in, "issuer");
	if (!cJSON_IsString(v) || !https_url(v->valuestring)) {
		snprintf(why, whylen, "oidc.issuer must be an https:// URL of at most %d bytes",
			 URL_MAX);
		goto out;
	}
	cJSON_AddStringToObject(o, "issuer", v->valuestring);
	const cJSON *url = cJSON_GetObjectItemCaseSensitive(in, "jwksUrl");
	const cJSON *set = cJSON_GetObjectItemCaseSensitive(in, "jwks");
	if (!url == !set) {
		snprintf(why, whylen, "oidc needs exactly one of jwksUrl and jwks");
		goto out;
	}
	if (url && (!cJSON_IsString(url) || !https_url(url->valuestring))) {
		snprintf(why, whylen, "oidc.jwksUrl must be an https:// URL of at most %d bytes",
			 URL_MAX);
		goto out;
	}
	if (url)
		cJSON_AddStringToObject(o, "jwksUrl", url->valuestring);
	if (set) {
		char *s = cJSON_PrintUnformatted(set);
		char err[200] = "";
		srv_jwks *k = s ? srv_jwks_parse(s, strlen(s), err, sizeof(err)) : NULL;
		size_t n = srv_jwks_count(k);
		srv_jwks_free(k);
		free(s);
		if (!k || n == 0) {
			snprintf(why, whylen, "oidc.jwks: %s",
				 k ? "no RSA or EC signing key" : err);
			goto out;
		}
		cJSON_AddItemToObject(o, "jwks", cJSON_Duplicate(set, 1));
	}
	if (str_list(in, "audiences", LIST_MAX, valid_value, o) != 0) {
		snprintf(why, whylen, "oidc.audiences must list 1-%d strings of 1-%d characters",
			 LIST_MAX, VALUE_MAX);
		goto out;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(in, "boundSubject"))) {
		if (!cJSON_IsString(v) || !valid_value(v->valuestring)) {
			snprintf(
				why, whylen,
				"oidc.boundSubject must be a pattern of 1-%d characters (exact, or "
				"with * globs)",
				VALUE_MAX);
			goto out;
		}
		cJSON_AddStringToObject(o, "boundSubject", v->valuestring);
	}
	cJSON *bound = cJSON_AddObjectToObject(o, "boundClaims");
	if ((v = cJSON_GetObjectItemCaseSensitive(in, "boundClaims")) &&
	    claim_patterns(v, CLAIMS_MAX, 1, bound) != 0) {
		snprintf(why, whylen,
			 "oidc.boundClaims must be an object of at most %d claims: each name a dot "
			 "path (letters, digits, _ - :) of at most %d bytes, each value a pattern "
			 "of 1-%d characters",
			 CLAIMS_MAX, NAME_MAX_, VALUE_MAX);
		goto out;
	}
	if (cJSON_GetObjectItemCaseSensitive(in, "recordClaims")) {
		if (str_list(in, "recordClaims", CLAIMS_MAX, valid_claim_name, o) != 0) {
			snprintf(why, whylen,
				 "oidc.recordClaims must list 1-%d claim names (dot paths)",
				 CLAIMS_MAX);
			goto out;
		}
	} else {
		cJSON *rec = cJSON_AddArrayToObject(o, "recordClaims");
		for (size_t i = 0; default_record[i]; i++)
			cJSON_AddItemToArray(rec, cJSON_CreateString(default_record[i]));
	}
	long long skew = 60;
	if (rs_json_int(in, "clockSkewSeconds", 0, 0, SKEW_MAX, &skew) != RS_JSON_OK) {
		snprintf(why, whylen, "oidc.clockSkewSeconds must be an integer 0-%d", SKEW_MAX);
		goto out;
	}
	cJSON_AddNumberToObject(o, "clockSkewSeconds", (double)skew);
	if (!(text = cJSON_PrintUnformatted(o)))
		snprintf(why, whylen, "out of memory");
	else if (strlen(text) > SRV_JWKS_MAX_BYTES + 8192) {
		snprintf(why, whylen, "oidc is too large");
		free(text);
		text = NULL;
	}
out:
	cJSON_Delete(o);
	return text;
}

/* ---- matching ------------------------------------------------------------ */

int api_oidc_glob(const char *pat, const char *s)
{
	const char *star = NULL, *mark = NULL;
	while (*s) {
		if (*pat == '*') {
			star = pat++;
			mark = s;
		} else if (*pat == *s) {
			pat++;
			s++;
		} else if (star) {
			pat = star + 1;
			s = ++mark;
		} else {
			return 0;
		}
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}

const cJSON *api_oidc_claim(const cJSON *claims, const char *path)
{
	char seg[NAME_MAX_ + 1];
	const cJSON *at = claims;
	while (at && *path) {
		size_t n = strcspn(path, ".");
		if (n >= sizeof(seg) || !cJSON_IsObject(at))
			return NULL;
		memcpy(seg, path, n);
		seg[n] = '\0';
		at = cJSON_GetObjectItemCaseSensitive(at, seg);
		path += n + (path[n] == '.');
	}
	return at;
}

int api_oidc_claim_text(const cJSON *v, char *out, size_t n)
{
	if (cJSON_IsString(v))
		return rs_strlcpy(out, v->valuestring, n) < n ? 0 : -1;
	if (cJSON_IsBool(v))
		return snprintf(out, n, "%s", cJSON_IsTrue(v) ? "true" : "false") < (int)n ? 0 : -1;
	if (cJSON_IsNumber(v) && v->valuedouble == (double)(long long)v->valuedouble)
		return snprintf(out, n, "%lld", (long long)v->valuedouble) < (int)n ? 0 : -1;
	return -1;
}

int api_oidc_claims_match(const cJSON *claims, const cJSON *patterns, const char **failed)
{
	const cJSON *p;
	cJSON_ArrayForEach (p, patterns) {
		char text[1024];
		if (api_oidc_claim_text(api_oidc_claim(claims, p->string), text, sizeof(text)) !=
			    0 ||
		    !cJSON_IsString(p) || !api_oidc_glob(p->valuestring, text)) {
			*failed = p->string;
			return 0;
		}
	}
	return 1;
}

/* ---- a policy's bypassClaims --------------------------------------------- */

char *api_oidc_bypass_claims(const cJSON *in, char *why, size_t whylen)
{
	cJSON *o = cJSON_CreateObject();
	char *text = NULL;
	if (!o || claim_patterns(in, BYPASS_MAX, 0, o) != 0) {
		snprintf(why, whylen,
			 "bypassClaims must be an object of 1-%d claims: each name a claim the "
			 "identity's OIDC login records (recordClaims, a dot path of letters, "
			 "digits, _ - :), or sub or iss, each value a pattern of 1-%d characters "
			 "(exact, or with * globs)",
			 BYPASS_MAX, VALUE_MAX);
	} else if (!(text = cJSON_PrintUnformatted(o))) {
		snprintf(why, whylen, "out of memory");
	} else if (strlen(text) >= SRV_BYPASS_CLAIMS_MAX) {
		snprintf(why, whylen, "bypassClaims is too large (at most %d bytes as JSON)",
			 SRV_BYPASS_CLAIMS_MAX - 1);
		free(text);
		text = NULL;
	}
	cJSON_Delete(o);
	return text;
}

/* The login record keeps recordClaims by name (login_record), so a claim
 * is looked up by its whole name, not walked as a path; sub and iss are
 * the login's subject and issuer unless recorded under those names. */
static const cJSON *recorded(const cJSON *login, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(login, "claims"), name);
	if (!v && strcmp(name, "sub") == 0)
		v = cJSON_GetObjectItemCaseSensitive(login, "subject");
	if (!v && strcmp(name, "iss") == 0)
		v = cJSON_GetObjectItemCaseSensitive(login, "issuer");
	return v;
}

int api_oidc_bypass_holds(const char *login, const char *bypass_claims, char *why, size_t n)
{
	cJSON *l = login && *login ? cJSON_Parse(login) : NULL;
	cJSON *pats = cJSON_Parse(bypass_claims);
	const cJSON *p;
	int ok = 0;
	if (!login || !*login) {
		snprintf(why, n, "the access token is not from an OIDC login");
		goto out;
	}
	if (!l || !cJSON_IsObject(pats)) {
		snprintf(why, n, "the login or the policy's bypassClaims cannot be read");
		goto out;
	}
	cJSON_ArrayForEach (p, pats) {
		const cJSON *v = recorded(l, p->string);
		if (!cJSON_IsString(v)) {
			snprintf(why, n, "the OIDC login does not record the claim %.128s",
				 p->string);
			goto out;
		}
		if (!cJSON_IsString(p) || !api_oidc_glob(p->valuestring, v->valuestring)) {
			snprintf(why, n,
				 "the OIDC login's %.128s \"%.256s\" does not match \"%.256s\"",
				 p->string, v->valuestring,
				 cJSON_IsString(p) ? p->valuestring : "?");
			goto out;
		}
	}
	ok = 1;
out:
	cJSON_Delete(l);
	cJSON_Delete(pats);
	return ok;
}

/* ---- login --------------------------------------------------------------- */

/* A refused login: one log line, counted as a failure of the identity. */
static srv_err refuse(srv_req *r, const char *id, srv_reason why, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static srv_err refuse(srv_req *r, const char *id, srv_reason why, const char *fmt, ...)
{
	char msg[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	srv_limit_login_result(r, id, 0);
	rs_warn("oidc login of identity %.64s refused: %s", id, msg);
	return srv_fail(r, why, "%s", msg);
}

/* The signing key for j, from the inline set or the issuer's JWKS URL. */
static srv_err find_key(srv_req *r, const char *id, const cJSON *cfg, const srv_jwt *j,
			EVP_PKEY **key)
{
	const cJSON *url = cJSON_GetObjectItemCaseSensitive(cfg, "jwksUrl");
	const cJSON *set = cJSON_GetObjectItemCaseSensitive(cfg, "jwks");
	char err[400] = "";
	if (cJSON_IsString(url)) {
		if (!r->ctx->jwks)
			return srv_fail(r, SRV_R_INTERNAL, "no key set cache");
		srv_jwks_rc rc = srv_jwks_cache_key(r->ctx->jwks, url->valuestring, j->kid, key,
						    err, sizeof(err));
		if (rc == SRV_JWKS_UNAVAILABLE) {
			rs_warn("oidc login of identity %.64s failed: %s", id, err);
			return srv_fail(r, SRV_R_JWKS_UNAVAILABLE,
					"the issuer's key set cannot be fetched now");
		}
	} else {
		char *s = cJSON_PrintUnformatted(set);
		srv_jwks *k = s ? srv_jwks_parse(s, strlen(s), err, sizeof(err)) : NULL;
		*key = srv_jwks_find(k, j->kid);
		srv_jwks_free(k);
		free(s);
	}
	if (!*key)
		return refuse(r, id, SRV_R_JWT_UNKNOWN_KID,
			      "the issuer's key set has no key \"%.64s\"", j->kid);
	return SRV_OK;
}

/* aud: a string or an array of strings, one of them configured. */
static int audience_ok(const cJSON *claims, const cJSON *cfg)
{
	const cJSON *aud = cJSON_GetObjectItemCaseSensitive(claims, "aud");
	const cJSON *want = cJSON_GetObjectItemCaseSensitive(cfg, "audiences"), *w, *a;
	cJSON_ArrayForEach (w, want) {
		if (cJSON_IsString(aud) && strcmp(aud->valuestring, w->valuestring) == 0)
			return 1;
		if (cJSON_IsArray(aud))
			cJSON_ArrayForEach (a, aud)
				if (cJSON_IsString(a) &&
				    strcmp(a->valuestring, w->valuestring) == 0)
					return 1;
	}
	return 0;
}

static int num_claim(const cJSON *claims, const char *name, long long *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(claims, name);
	if (!v)
		return 0;
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e15)
		return -1;
	*out = (long long)v->valuedouble;
	return 1;
}

/* Every check of the token against the identity's config, in the order
 * the issue lists them; SRV_OK with *exp set. */
static srv_err check_token(srv_req *r, const char *id, const cJSON *cfg, const char *token,
			   srv_jwt *j, long long *exp)
{
	srv_jwt_rc jr = srv_jwt_parse(token, j);
	if (jr == SRV_JWT_ALG)
		return refuse(r, id, SRV_R_JWT_ALGORITHM,
			      "the token's alg is not one of RS256 RS384 RS512 ES256 ES384");
	if (jr != SRV_JWT_OK)
		return refuse(r, id, SRV_R_JWT_MALFORMED,
			      "the token is not a signed JWT of at most 16384 bytes");
	EVP_PKEY *key = NULL;
	srv_err e = find_key(r, id, cfg, j, &key);
	if (e != SRV_OK)
		return e;
	jr = srv_jwt_verify(j, token, key);
	EVP_PKEY_free(key);
	if (jr == SRV_JWT_ALG)
		return refuse(r, id, SRV_R_JWT_ALGORITHM,
			      "the token's alg does not fit the kind of key \"%.64s\"", j->kid);
	if (jr != SRV_JWT_OK)
		return refuse(r, id, SRV_R_JWT_SIGNATURE, "the token's signature does not verify");
	const cJSON *iss = cJSON_GetObjectItemCaseSensitive(j->claims, "iss");
	const cJSON *want = cJSON_GetObjectItemCaseSensitive(cfg, "issuer");
	if (!cJSON_IsString(iss) || strcmp(iss->valuestring, want->valuestring) != 0)
		return refuse(r, id, SRV_R_JWT_ISSUER,
			      "the token's iss is not the identity's issuer");
	if (!audience_ok(j->claims, cfg))
		return refuse(r, id, SRV_R_JWT_AUDIENCE,
			      "the token's aud names none of the identity's audiences");
	long long skew = (long long)cJSON_GetObjectItemCaseSensitive(cfg, "clockSkewSeconds")
				 ->valuedouble,
		  now = (long long)time(NULL), nbf = 0, iat = 0;
	if (num_claim(j->claims, "exp", exp) != 1)
		return refuse(r, id, SRV_R_JWT_MALFORMED, "the token has no numeric exp");
	if (now > *exp + skew)
		return refuse(r, id, SRV_R_JWT_EXPIRED, "the token has expired");
	int has_nbf = num_claim(j->claims, "nbf", &nbf),
	    has_iat = num_claim(j->claims, "iat", &iat);
	if (has_nbf < 0 || has_iat < 0)
		return refuse(r, id, SRV_R_JWT_MALFORMED, "the token's nbf or iat is not a time");
	if ((has_nbf && now + skew < nbf) || (has_iat && now + skew < iat))
		return refuse(r, id, SRV_R_JWT_NOT_YET_VALID, "the token is not valid yet");
	const cJSON *bs = cJSON_GetObjectItemCaseSensitive(cfg, "boundSubject");
	const cJSON *sub = cJSON_GetObjectItemCaseSensitive(j->claims, "sub");
	if (bs && (!cJSON_IsString(sub) || !api_oidc_glob(bs->valuestring, sub->valuestring)))
		return refuse(r, id, SRV_R_JWT_SUBJECT,
			      "the token's sub does not match the identity's boundSubject");
	const char *failed = NULL;
	if (!api_oidc_claims_match(j->claims, cJSON_GetObjectItemCaseSensitive(cfg, "boundClaims"),
				   &failed))
		return refuse(r, id, SRV_R_JWT_CLAIM,
			      "the token's claim \"%.128s\" does not match the identity's pattern",
			      failed);
	return SRV_OK;
}

/* What the access token and every signing with it keep of the login:
 * {"issuer", "subject", "claims": {name: text}} for the identity's
 * recordClaims the token has (strings, integers, booleans), within
 * SRV_OIDC_LOGIN_MAX bytes (a claim that does not fit is left out). */
static char *login_record(const cJSON *cfg, const cJSON *claims)
{
	const cJSON *sub = cJSON_GetObjectItemCaseSensitive(claims, "sub"), *name;
	cJSON *o = cJSON_CreateObject(), *kept = NULL;
	char *text = NULL;
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "issuer",
				cJSON_GetObjectItemCaseSensitive(cfg, "issuer")->valuestring);
	char subject[VALUE_MAX + 1] = "";
	if (cJSON_IsString(sub))
		rs_strlcpy(subject, sub->valuestring, sizeof(subject));
	cJSON_AddStringToObject(o, "subject", subject);
	kept = cJSON_AddObjectToObject(o, "claims");
	cJSON_ArrayForEach (name, cJSON_GetObjectItemCaseSensitive(cfg, "recordClaims")) {
		char v[VALUE_MAX + 1];
		if (!kept || api_oidc_claim_text(api_oidc_claim(claims, name->valuestring), v,
						 sizeof(v)) != 0)
			continue;
		cJSON_AddItemToObject(kept, name->valuestring, cJSON_CreateString(v));
		char *t = cJSON_PrintUnformatted(o);
		size_t n = t ? strlen(t) : SRV_OIDC_LOGIN_MAX;
		free(t);
		if (n >= SRV_OIDC_LOGIN_MAX) /* does not fit: left out */
			cJSON_DeleteItemFromObjectCaseSensitive(kept, name->valuestring);
	}
	text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (text && strlen(text) >= SRV_OIDC_LOGIN_MAX) { /* a long issuer alone */
		free(text);
		text = NULL;
	}
	return text;
}

srv_err api_oidc_login(srv_req *r, cJSON **out)
{
	srv_err e = SRV_OK;
	const char *id = NULL;
	srv_principal p = {0};
	srv_jwt j = {0};
	cJSON *cfg = NULL;
	char *login = NULL;
	cJSON *body = srv_body_json(r);
	if (!body)
		return r->err;
	const cJSON *tok = cJSON_GetObjectItemCaseSensitive(body, "jwt");
	if (rs_json_str(body, "identityId", 1, 64, &id) != RS_JSON_OK || !cJSON_IsString(tok)) {
		e = srv_fail(r, SRV_R_INVALID_FIELD, "identityId and jwt are required strings");
		goto out;
	}
	if ((e = srv_limit_login(r, id)) != SRV_OK) /* 429 before the token is read */
		goto out;
	srv_st_rc rc = r->ctx->store->ops->principal_get(r->ctx->store, id, &p);
	if (rc != SRV_ST_OK && rc != SRV_ST_NOT_FOUND) {
		e = srv_fail(r, srv_reason_from_store(rc), "cannot read the identity");
		goto out;
	}
	if (rc == SRV_ST_NOT_FOUND || strcmp(p.type, "identity") != 0 || !p.oidc ||
	    !(cfg = cJSON_Parse(p.oidc))) {
		e = refuse(r, id, SRV_R_OIDC_NOT_ENABLED, "no identity \"%.64s\" with OIDC login",
			   id);
		goto out;
	}
	long long exp = 0;
	if ((e = check_token(r, id, cfg, tok->valuestring, &j, &exp)) != SRV_OK)
		goto out;
	srv_reason why = srv_may_log_in(&p);
	if (why != SRV_R_NONE) {
		e = refuse(r, id, why, "identity %.64s is disabled", p.name);
		goto out;
	}
	srv_limit_login_result(r, id, 1);
	long long now = (long long)time(NULL), ttl = r->ctx->access_token_ttl;
	if (exp - now < ttl) /* never outlives the JWT (which may be inside the skew) */
		ttl = exp - now > 0 ? exp - now : 1;
	if (!(login = login_record(cfg, j.claims))) {
		e = srv_fail(r, SRV_R_INTERNAL, "out of memory");
		goto out;
	}
	*out = cJSON_CreateObject();
	e = api_add_token(r, p.id, "rsa_", "access", (time_t)(now + ttl), login, *out,
			  "accessToken", NULL);
	if (e != SRV_OK) {
		cJSON_Delete(*out);
		*out = NULL;
		goto out;
	}
	cJSON_AddNumberToObject(*out, "expiresIn", (double)ttl);
	cJSON_AddStringToObject(*out, "tokenType", "Bearer");
	const cJSON *sub = cJSON_GetObjectItemCaseSensitive(j.claims, "sub");
	rs_info("oidc login of identity %s (sub %.128s)", p.name,
		cJSON_IsString(sub) ? sub->valuestring : "-");
out:
	/* the JWT lives in the parsed tree until it expires: wipe it */
	if (cJSON_IsString(tok))
		rs_wipe(tok->valuestring, strlen(tok->valuestring));
	srv_jwt_clear(&j);
	free(login);
	cJSON_Delete(cfg);
	srv_principal_clear(&p);
	cJSON_Delete(body);
	return e;
}
