/* The JWT of an OIDC login (oidc.h): a file read at each login, an
 * environment variable, or GitHub Actions' token endpoint over HTTPS. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <curl/curl.h>

#include "rsign/buf.h"
#include "rsign/json.h"
#include "rsign/log.h"
#include "rsign/util.h"

#include "oidc.h"

#define JWT_MAX 16384

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

void mod_oidc_clear(mod_oidc *o)
{
	if (!o)
		return;
	free(o->identity_id);
	free(o->token_file);
	free(o->token_env);
	free(o->audience);
	free(o->ca_file);
	memset(o, 0, sizeof(*o));
}

int mod_oidc_copy(mod_oidc *dst, const mod_oidc *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->github = src->github;
	dst->identity_id = dup_or_null(src->identity_id);
	dst->token_file = dup_or_null(src->token_file);
	dst->token_env = dup_or_null(src->token_env);
	dst->audience = dup_or_null(src->audience);
	dst->ca_file = dup_or_null(src->ca_file);
	if ((src->identity_id && !dst->identity_id) || (src->token_file && !dst->token_file) ||
	    (src->token_env && !dst->token_env) || (src->audience && !dst->audience) ||
	    (src->ca_file && !dst->ca_file)) {
		mod_oidc_clear(dst);
		return -1;
	}
	return 0;
}

int mod_oidc_from_config(const mod_config *conf, mod_oidc *o)
{
	const char *where = conf->path ? conf->path : "configuration";
	int sources = !!conf->oidc_token_file + !!conf->oidc_token_env + !!conf->oidc_github;

	memset(o, 0, sizeof(*o));
	if (!conf->identity_id) {
		if (sources)
			rs_err("%s: oidc_token_file, oidc_token_env and oidc_github need "
			       "identity_id",
			       where);
		return sources ? -1 : 0;
	}
	if (sources != 1) {
		rs_err("%s: identity_id needs exactly one of oidc_token_file, oidc_token_env and "
		       "oidc_github = true",
		       where);
		return -1;
	}
	if (conf->oidc_github && !conf->oidc_audience) {
		rs_err("%s: oidc_github needs oidc_audience (the audience of the identity's "
		       "oidc config)",
		       where);
		return -1;
	}
	mod_oidc src = {conf->identity_id,   conf->oidc_token_file, conf->oidc_token_env,
			conf->oidc_audience, conf->oidc_ca_file,    conf->oidc_github};
	if (mod_oidc_copy(o, &src) != 0) {
		rs_err("%s: out of memory", where);
		return -1;
	}
	return 0;
}

/* A JWT's characters: base64url and the two dots. */
static int jwt_text(const char *s, size_t n)
{
	if (n == 0 || n > JWT_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return 0;
	}
	return 1;
}

static char *from_file(const char *path)
{
	char *buf = malloc(JWT_MAX + 2), *out = NULL;
	size_t len = 0;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (!buf || fd < 0) {
		rs_err("oidc_token_file %s: %s", path, fd < 0 ? strerror(errno) : "out of memory");
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rs_err("oidc_token_file %s: not a regular file", path);
		goto out;
	}
	while (len < JWT_MAX + 1) {
		ssize_t n = read(fd, buf + len, JWT_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
		len--;
	buf[len] = '\0';
	if (!jwt_text(buf, len)) {
		rs_err("oidc_token_file %s: empty, larger than %d bytes, or not a JWT", path,
		       JWT_MAX);
		goto out;
	}
	out = strdup(buf);
out:
	if (buf)
		rs_wipe(buf, JWT_MAX + 2);
	free(buf);
	if (fd >= 0)
		close(fd);
	return out;
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *arg)
{
	rs_buf *b = arg;
	return rs_buf_append(b, p, size * nmemb) == 0 ? size * nmemb : 0;
}

/* GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=AUD with the request token as
 * bearer; the answer is {"value": JWT}. */
static char *from_github(const mod_oidc *o)
{
	const char *url = getenv("ACTIONS_ID_TOKEN_REQUEST_URL");
	const char *tok = getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN");
	char *full = NULL, *aud = NULL, *auth = NULL, *out = NULL, err[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	cJSON *j = NULL;
	const char *v = NULL;
	long status = 0;
	rs_buf b;
	CURL *h = curl_easy_init();

	rs_buf_init(&b, JWT_MAX * 2);
	if (!url || !*url || !tok || !*tok) {
		rs_err("oidc_github: ACTIONS_ID_TOKEN_REQUEST_URL and "
		       "ACTIONS_ID_TOKEN_REQUEST_TOKEN "
		       "are not set (does the job have permissions: id-token: write?)");
		goto out;
	}
	size_t n = strlen(url) + 3 * strlen(o->audience) + 16, an = strlen(tok) + 32;
	if (!h || !(aud = curl_easy_escape(h, o->audience, 0)) || !(full = malloc(n)) ||
	    !(auth = malloc(an))) {
		rs_err("oidc_github: out of memory");
		goto out;
	}
	snprintf(full, n, "%s%caudience=%s", url, strchr(url, '?') ? '&' : '?', aud);
	snprintf(auth, an, "Authorization: Bearer %s", tok);
	if (!(hdrs = curl_slist_append(NULL, auth)) ||
	    !(hdrs = curl_slist_append(hdrs, "Accept: application/json"))) {
		rs_err("oidc_github: out of memory");
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_URL, full);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85 */
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS);
#endif
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (o->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_file);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "rsign-pkcs11/" RSIGN_VERSION);
	CURLcode rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK || status != 200) {
		rs_err("oidc_github: the token request failed: %s",
		       rc != CURLE_OK ? (err[0] ? err : curl_easy_strerror(rc)) : "HTTP status");
		if (rc == CURLE_OK)
			rs_err("oidc_github: HTTP %ld", status);
		goto out;
	}
	j = rs_json_parse((const char *)b.data, b.len, RS_JSON_MAX_DEPTH);
	if (!j || rs_json_str(j, "value", 1, JWT_MAX, &v) != RS_JSON_OK ||
	    !jwt_text(v, strlen(v))) {
		rs_err("oidc_github: the answer holds no JWT in \"value\"");
		goto out;
	}
	out = strdup(v);
out:
	if (j) {
		if (v)
			rs_wipe((char *)v, strlen(v));
		cJSON_Delete(j);
	}
	if (auth)
		rs_wipe(auth, strlen(auth));
	free(auth);
	free(full);
	curl_free(aud);
	curl_slist_free_all(hdrs);
	rs_buf_wipe(&b);
	if (h)
		curl_easy_cleanup(h);
	return out;
}

char *mod_oidc_jwt(const mod_oidc *o)
{
	if (o->token_file)
		return from_file(o->token_file);
	if (o->github)
		return from_github(o);
	const char *v = o->token_env ? getenv(o->token_env) : NULL;
	if (!v || !jwt_text(v, strlen(v))) {
		rs_err("oidc_token_env: $%s is unset, empty or not a JWT",
		       o->token_env ? o->token_env : "");
		return NULL;
	}
	return strdup(v);
}
