/* rsignctl's PKI commands: keys, certificates and the CA, signers and their
 * members, signing, and the signing history. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "rsign/alg.h"
#include "rsign/base64.h"
#include "rsign/json.h"
#include "rsign/util.h"
#include "server/ctl/ctl_cmds.h"

#define PEM_FILE_MAX (256u * 1024)
#define SIGN_DATA_MAX 128 /* the API's limit on decoded data */
#define SIGNATURE_MAX 2048
#define SPKI_MAX 4096
#define DEFAULT_TTL_DAYS 365

/* ---- keys ------------------------------------------------------------- */

int ctl_key_create(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_field map[] = {
		{"name", "name", CTL_F_STR, NULL, NULL},
		{"alg", "keyAlgorithm", CTL_F_STR, NULL, NULL},
		CTL_FIELDS_END,
	};

	return ctl_send(ctx, a, "POST", map, &ctl_fields_out, "/pki/keys");
}

int ctl_key_list(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_column cols[] = {
		{"id", "ID"},
		{"name", "NAME"},
		{"keyAlgorithm", "ALGORITHM"},
		{"createdAt", "CREATED"},
		CTL_COLUMNS_END,
	};
	static const ctl_out out = {ctl_out_table, cols, 0};

	return ctl_request(ctx, a, "GET", NULL, ctl_page_query, &out, "/pki/keys");
}

int ctl_key_get(ctl_ctx *ctx, const ctl_args *a)
{
	return ctl_request(ctx, a, "GET", NULL, NULL, &ctl_fields_out, "/pki/keys/%s", a->pos[0]);
}

int ctl_key_csr(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_field map[] = {
		{"subject", "subject", CTL_F_STR, NULL, NULL},
		CTL_FIELDS_END,
	};
	static const char *const keys[] = {"csrPem", NULL};
	static const ctl_out out = {ctl_out_pem, keys, 0};

	return ctl_send(ctx, a, "POST", map, &out, "/pki/keys/%s/csr", a->pos[0]);
}

/* ---- certificates ----------------------------------------------------- */

static const char *const cert_pems[] = {"certificatePem", "chainPem", NULL};

/* A PEM file as a JSON string: text without NUL bytes. */
static int read_pem(const char *path, rs_buf *b)
{
	int rc = ctl_read_file(path, PEM_FILE_MAX, b);

	if (rc == CTL_EXIT_OK && (b->len == 0 || memchr(b->data, '\0', b->len))) {
		fprintf(stderr, "rsignctl: %s is not a PEM file\n", path);
		rc = CTL_EXIT_DATAERR;
	}
	return rc;
}

int ctl_cert_import(ctl_ctx *ctx, const ctl_args *a)
{
	const char *chain = ctl_arg(a, "chain");
	rs_buf cb, chb;
	cJSON *req = NULL;
	int rc;

	rs_buf_init(&chb, PEM_FILE_MAX);
	rc = read_pem(ctl_arg(a, "cert"), &cb);
	if (rc == CTL_EXIT_OK && chain) {
		rs_buf_free(&chb);
		rc = read_pem(chain, &chb);
	}
	if (rc != CTL_EXIT_OK)
		goto out;
	req = cJSON_CreateObject();
	if (!req || !cJSON_AddStringToObject(req, "certificatePem", rs_buf_str(&cb)) ||
	    (chain && !cJSON_AddStringToObject(req, "chainPem", rs_buf_str(&chb)))) {
		fprintf(stderr, "rsignctl: out of memory\n");
		rc = CTL_EXIT_SOFTWARE;
		goto out;
	}
	rc = ctl_request(ctx, a, "POST", req, NULL, &ctl_fields_out, "/pki/certificates");
out:
	cJSON_Delete(req);
	rs_buf_free(&cb);
	rs_buf_free(&chb);
	return rc;
}

int ctl_cert_issue(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_field map[] = {
		{"key", "keyId", CTL_F_STR, NULL, "/pki/keys"},
		{"cn", "commonName", CTL_F_STR, NULL, NULL},
		{"days", "ttlDays", CTL_F_INT, NULL, NULL},
		{"not-before", "notBefore", CTL_F_STR, NULL, NULL},
		{"not-after", "notAfter", CTL_F_STR, NULL, NULL},
		{"profile", "profile", CTL_F_STR, NULL, NULL},
		CTL_FIELDS_END,
	};
	static const char *const times[] = {"not-before", "not-after"};
	cJSON *req = NULL;
	const char *t;
	time_t when;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(times) / sizeof(times[0]); i++)
		if ((t = ctl_arg(a, times[i])) && rs_time_parse(t, &when) < 0)
			return ctl_usage_error(a,
					       "--%s needs an RFC 3339 UTC time such as "
					       "2026-11-27T03:14:27Z",
					       times[i]);
	if (ctl_arg(a, "days") && ctl_arg_int(a, "days") < 1)
		return ctl_usage_error(a, "--days must be at least 1");
	rc = ctl_body(ctx, a, map, &req);
	if (rc == CTL_EXIT_OK && !ctl_arg(a, "days") &&
	    !cJSON_AddNumberToObject(req, "ttlDays", DEFAULT_TTL_DAYS)) {
		fprintf(stderr, "rsignctl: out of memory\n");
		rc = CTL_EXIT_SOFTWARE;
	}
	if (rc == CTL_EXIT_OK)
		rc = ctl_request(ctx, a, "POST", req, NULL, &ctl_fields_out,
				 "/pki/certificates/issue");
	cJSON_Delete(req);
	return rc;
}

int ctl_cert_list(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_column cols[] = {
		{"id", "ID"},
		{"commonName", "COMMON NAME"},
		{"keyAlgorithm", "ALGORITHM"},
		{"notAfter", "NOT AFTER"},
		{"serialNumber", "SERIAL"},
		CTL_COLUMNS_END,
	};
	static const ctl_out out = {ctl_out_table, cols, 0};

	return ctl_request(ctx, a, "GET", NULL, ctl_page_query, &out, "/pki/certificates");
}

int ctl_cert_get(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_out pem = {ctl_out_pem, cert_pems, 0};

	return ctl_request(ctx, a, "GET", NULL, NULL, ctl_arg(a, "pem") ? &pem : &ctl_fields_out,
			   "/pki/certificates/%s", a->pos[0]);
}

int ctl_ca(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_out out = {ctl_out_pem, cert_pems, 0};

	return ctl_request(ctx, a, "GET", NULL, NULL, &out, "/pki/ca");
}

/* ---- signers ---------------------------------------------------------- */

int ctl_signer_create(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_field map[] = {
		{"name", "name", CTL_F_STR, NULL, NULL},
		{"description", "description", CTL_F_STR, NULL, NULL},
		{"cert", "certificateId", CTL_F_STR, NULL, NULL},
		{"policy", "policyId", CTL_F_STR, NULL, NULL},
		CTL_FIELDS_END,
	};

	return ctl_send(ctx, a, "POST", map, &ctl_fields_out, "/pki/signers");
}

int ctl_signer_list(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_query query[] = {
		{"search", "search", NULL, NULL},
		{"can-sign", "canSign", "true", NULL},
		{"status", "status", NULL, NULL}, /* enabled, disabled, retired, any */
		{"offset", "offset", NULL, NULL},
		{"limit", "limit", NULL, NULL},
		CTL_QUERY_END,
	};
	static const ctl_column cols[] = {
		{"name", "NAME"},
		{"status", "STATUS"},
		{"keyAlgorithm", "ALGORITHM"},
		{"certificateNotAfter", "CERT NOT AFTER"},
		{"lastSignedAt", "LAST SIGNED"},
		{"id", "ID"},
		CTL_COLUMNS_END,
	};
	static const ctl_out out = {ctl_out_table, cols, 0};

	return ctl_request(ctx, a, "GET", NULL, query, &out, "/pki/signers");
}

int ctl_signer_get(ctl_ctx *ctx, const ctl_args *a)
{
	return ctl_request(ctx, a, "GET", NULL, NULL, &ctl_fields_out, "/pki/signers/%s",
			   a->pos[0]);
}

int ctl_signer_update(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_field map[] = {
		{"description", "description", CTL_F_STR, NULL, NULL},
		{"enable", "status", CTL_F_CONST, "enabled", NULL},
		{"disable", "status", CTL_F_CONST, "disabled", NULL},
		{"cert", "certificateId", CTL_F_STR, NULL, NULL},
		{"policy", "policyId", CTL_F_STR, NULL, NULL},
		{"no-policy", "policyId", CTL_F_NULL, NULL, NULL},
		CTL_FIELDS_END,
	};
	int rc;

	if ((rc = ctl_exclusive(a, "enable", "disable")) != CTL_EXIT_OK ||
	    (rc = ctl_exclusive(a, "policy", "no-policy")) != CTL_EXIT_OK)
		return rc;
	if (!ctl_any_option(a))
		return ctl_usage_error(a, "nothing to change");
	return ctl_send(ctx, a, "PATCH", map, &ctl_fields_out, "/pki/signers/%s", a->pos[0]);
}

int ctl_signer_delete(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_out out = {ctl_out_fields, "signer retired", 0};

	return ctl_request(ctx, a, "DELETE", NULL, NULL, &out, "/pki/signers/%s", a->pos[0]);
}

/* publicKey (base64 DER SubjectPublicKeyInfo) as a PEM block. */
static int out_spki_pem(const cJSON *body, const void *unused)
{
	unsigned char der[SPKI_MAX];
	const char *b64 = NULL;
	char *norm;
	size_t n, len, i;

	if (!cJSON_IsObject(body) ||
	    rs_json_str(body, "publicKey", 1, SPKI_MAX * 2, &b64) != RS_JSON_OK ||
	    rs_b64_decode(b64, strlen(b64), der, sizeof(der), &n) != RS_B64_OK || n == 0) {
		fprintf(stderr, "rsignctl: the response has no valid publicKey\n");
		return CTL_EXIT_SERVER;
	}
	if (!(norm = rs_b64_encode(der, n))) {
		fprintf(stderr, "rsignctl: out of memory\n");
		return CTL_EXIT_SOFTWARE;
	}
	len = strlen(norm);
	puts("-----BEGIN PUBLIC KEY-----");
	for (i = 0; i < len; i += 64)
		printf("%.*s\n", (int)(len - i < 64 ? len - i : 64), norm + i);
	puts("-----END PUBLIC KEY-----");
	free(norm);
	return CTL_EXIT_OK;
}

int ctl_signer_public_key(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_out pem = {out_spki_pem, NULL, 0};

	return ctl_request(ctx, a, "GET", NULL, NULL, ctl_arg(a, "pem") ? &pem : &ctl_fields_out,
			   "/pki/signers/%s/public-key", a->pos[0]);
}

int ctl_signer_cert(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_out out = {ctl_out_pem, cert_pems, 0};

	return ctl_request(ctx, a, "GET", NULL, NULL, &out, "/pki/signers/%s/certificate",
			   a->pos[0]);
}

int ctl_member_add(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_field map[] = {
		{"principal", "principalId", CTL_F_STR, NULL, "/principals"},
		{"role", "role", CTL_F_STR, NULL, NULL},
		CTL_FIELDS_END,
	};
	static const ctl_out out = {ctl_out_fields, "member added", 0};

	return ctl_send(ctx, a, "POST", map, &out, "/pki/signers/%s/members", a->pos[0]);
}

int ctl_member_remove(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_out out = {ctl_out_fields, "member removed", 0};
	char id[CTL_ID_MAX];
	int rc;

	rc = ctl_resolve(ctx, "/principals", ctl_arg(a, "principal"), id);
	if (rc != CTL_EXIT_OK)
		return rc;
	return ctl_request(ctx, a, "DELETE", NULL, NULL, &out, "/pki/signers/%s/members/%s",
			   a->pos[0], id);
}

int ctl_member_list(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_column cols[] = {
		{"principalName", "PRINCIPAL"},
		{"role", "ROLE"},
		{"principalId", "PRINCIPAL ID"},
		CTL_COLUMNS_END,
	};
	static const ctl_out out = {ctl_out_table, cols, 0};

	return ctl_request(ctx, a, "GET", NULL, NULL, &out, "/pki/signers/%s/members", a->pos[0]);
}

/* ---- sign ------------------------------------------------------------- */

/* --file: up to 128 bytes go as they are; longer input is hashed here with
 * the algorithm's hash, reading it once in chunks. */
static int read_data(const char *path, rs_hash h, unsigned char *out, size_t *outlen,
		     int *is_digest)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	unsigned char buf[8192];
	unsigned int dlen = 0;
	EVP_MD_CTX *md = NULL;
	size_t have = 0, n;
	int rc = CTL_EXIT_OK;

	if (!f) {
		fprintf(stderr, "rsignctl: cannot read %s: %s\n", path, strerror(errno));
		return CTL_EXIT_NOINPUT;
	}
	while (have <= SIGN_DATA_MAX && (n = fread(buf + have, 1, SIGN_DATA_MAX + 1 - have, f)) > 0)
		have += n;
	if (have > SIGN_DATA_MAX) {
		md = EVP_MD_CTX_new();
		/* rs_hash_name's "SHA256" style names are OpenSSL digest names. */
		if (!md || !EVP_DigestInit_ex(md, EVP_get_digestbyname(rs_hash_name(h)), NULL) ||
		    !EVP_DigestUpdate(md, buf, have)) {
			rc = CTL_EXIT_SOFTWARE;
			goto out;
		}
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
			if (!EVP_DigestUpdate(md, buf, n)) {
				rc = CTL_EXIT_SOFTWARE;
				goto out;
			}
	}
	if (ferror(f)) {
		fprintf(stderr, "rsignctl: cannot read %s: %s\n", path, strerror(errno));
		rc = CTL_EXIT_NOINPUT;
	} else if (have == 0) {
		fprintf(stderr, "rsignctl: %s is empty\n", path);
		rc = CTL_EXIT_DATAERR;
	} else if (md) {
		rc = EVP_DigestFinal_ex(md, out, &dlen) ? CTL_EXIT_OK : CTL_EXIT_SOFTWARE;
		*outlen = dlen;
		*is_digest = 1;
	} else {
		memcpy(out, buf, have);
		*outlen = have;
		*is_digest = 0;
	}
out:
	if (rc == CTL_EXIT_SOFTWARE)
		fprintf(stderr, "rsignctl: cannot hash %s\n", path);
	EVP_MD_CTX_free(md);
	rs_wipe(buf, sizeof(buf));
	if (f != stdin)
		fclose(f);
	return rc;
}

/* --digest-file: the raw digest, or its hex with surrounding white space. */
static int read_digest_file(const char *path, size_t want, unsigned char *out, size_t *outlen)
{
	char hex[2 * SIGN_DATA_MAX + 1];
	const char *s, *e;
	rs_buf b;
	int rc;

	rc = ctl_read_file(path, 4 * SIGN_DATA_MAX, &b);
	if (rc != CTL_EXIT_OK)
		goto out;
	if (b.len == want) {
		memcpy(out, b.data, want);
		*outlen = want;
		goto out;
	}
	s = rs_buf_str(&b);
	e = s + b.len;
	while (s < e && strchr(" \t\r\n", *s))
		s++;
	while (e > s && strchr(" \t\r\n", e[-1]))
		e--;
	rc = CTL_EXIT_DATAERR;
	if ((size_t)(e - s) == 2 * want) {
		memcpy(hex, s, 2 * want);
		hex[2 * want] = '\0';
		if (rs_hex_decode(hex, out, SIGN_DATA_MAX, outlen) == 0 && *outlen == want)
			rc = CTL_EXIT_OK;
	}
	if (rc != CTL_EXIT_OK)
		fprintf(stderr, "rsignctl: %s holds no %zu-byte digest, raw or hex\n", path, want);
out:
	rs_buf_free(&b);
	return rc;
}

/* --out: the raw signature bytes. */
static int write_signature(const cJSON *body, const void *path)
{
	const char *name = path;
	unsigned char sig[SIGNATURE_MAX];
	const char *b64 = NULL;
	FILE *f;
	size_t n;
	int ok;

	if (!cJSON_IsObject(body) ||
	    rs_json_str(body, "signature", 1, 2 * SIGNATURE_MAX, &b64) != RS_JSON_OK ||
	    rs_b64_decode(b64, strlen(b64), sig, sizeof(sig), &n) != RS_B64_OK || n == 0) {
		fprintf(stderr, "rsignctl: the response has no valid signature\n");
		return CTL_EXIT_SERVER;
	}
	f = strcmp(name, "-") == 0 ? stdout : fopen(name, "wb");
	ok = f && fwrite(sig, 1, n, f) == n;
	if (f && f != stdout)
		ok = (fclose(f) == 0) && ok;
	if (!ok) {
		fprintf(stderr, "rsignctl: cannot write %s: %s\n", name, strerror(errno));
		return CTL_EXIT_CANTCREAT;
	}
	return CTL_EXIT_OK;
}

static cJSON *client_metadata(void)
{
	char host[256];
	cJSON *m = cJSON_CreateObject();

	if (!m || !cJSON_AddStringToObject(m, "tool", "rsignctl"))
		goto fail;
	if (gethostname(host, sizeof(host)) == 0) {
		host[sizeof(host) - 1] = '\0';
		if (!cJSON_AddStringToObject(m, "hostname", host))
			goto fail;
	}
	return m;
fail:
	cJSON_Delete(m);
	return NULL;
}

/* The data to send, from exactly one of --digest, --digest-file, --file. */
static int sign_input(const ctl_args *a, rs_sign_alg alg, unsigned char *data, size_t *n,
		      int *is_digest)
{
	const char *digest = ctl_arg(a, "digest"), *dfile = ctl_arg(a, "digest-file");
	const char *file = ctl_arg(a, "file");
	rs_hash h = rs_sign_alg_hash(alg);
	size_t want = rs_hash_len(h);

	if (!!digest + !!dfile + !!file != 1)
		return ctl_usage_error(a, "give exactly one of --digest, --digest-file, --file");
	*is_digest = 1;
	if (file)
		return read_data(file, h, data, n, is_digest);
	if (dfile)
		return read_digest_file(dfile, want, data, n);
	if (rs_hex_decode(digest, data, SIGN_DATA_MAX, n) < 0 || *n != want)
		return ctl_usage_error(a, "--digest needs %zu bytes in hex for %s", want,
				       rs_sign_alg_name(alg));
	return CTL_EXIT_OK;
}

/* --idempotency-key as rsignd takes it (1 to 64 visible ASCII characters),
 * else a fresh UUID: every run is one signing operation. */
static int sign_key(const ctl_args *a, char key[65])
{
	const char *k = ctl_arg(a, "idempotency-key");
	size_t n;

	if (!k) {
		if (rs_uuid_v7(key) != 0) {
			fprintf(stderr, "rsignctl: no randomness for an Idempotency-Key\n");
			return CTL_EXIT_SOFTWARE;
		}
		return CTL_EXIT_OK;
	}
	for (n = 0; k[n] && n < 64 && k[n] >= 0x21 && k[n] <= 0x7e; n++)
		;
	if (n == 0 || k[n])
		return ctl_usage_error(a, "--idempotency-key must be 1 to 64 visible ASCII "
					  "characters");
	rs_strlcpy(key, k, 65);
	return CTL_EXIT_OK;
}

int ctl_sign(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_out print = {ctl_out_string, "signature", 0};
	const char *out_path = ctl_arg(a, "out");
	const ctl_out write = {write_signature, out_path, 1};
	unsigned char data[SIGN_DATA_MAX];
	cJSON *req = NULL, *meta;
	char *b64 = NULL;
	rs_sign_alg alg;
	int is_digest = 0, rc;
	size_t n = 0;
	char key[65];

	if ((rc = sign_key(a, key)) != CTL_EXIT_OK)
		return rc;
	if (rs_sign_alg_parse(ctl_arg(a, "alg"), &alg) < 0)
		return ctl_usage_error(a, "unknown --alg %s", ctl_arg(a, "alg"));
	if (ctl_arg(a, "salt") && !rs_sign_alg_is_pss(alg))
		return ctl_usage_error(a, "--salt applies to RSASSA_PSS_* only");
	rc = sign_input(a, alg, data, &n, &is_digest);
	if (rc != CTL_EXIT_OK)
		goto out;
	rc = CTL_EXIT_SOFTWARE;
	if (!(b64 = rs_b64_encode(data, n)) || !(req = cJSON_CreateObject()) ||
	    !cJSON_AddStringToObject(req, "data", b64) ||
	    !cJSON_AddStringToObject(req, "signingAlgorithm", rs_sign_alg_name(alg)) ||
	    !cJSON_AddBoolToObject(req, "isDigest", is_digest) ||
	    (ctl_arg(a, "salt") &&
	     !cJSON_AddNumberToObject(req, "pssSaltLength", (double)ctl_arg_int(a, "salt"))) ||
	    !(meta = client_metadata()))
		goto nomem;
	if (!cJSON_AddItemToObject(req, "clientMetadata", meta)) {
		cJSON_Delete(meta);
		goto nomem;
	}
	if (ctl_http_set_idempotency_key(ctx->http, key) < 0)
		goto nomem;
	rc = ctl_request(ctx, a, "POST", req, NULL, out_path ? &write : &print,
			 "/pki/signers/%s/sign", a->pos[0]);
	if (rc == CTL_EXIT_TRANSPORT)
		fprintf(stderr,
			"rsignctl: the server may have signed; to get that signing rather than "
			"a second one, run the same command with --idempotency-key %s\n",
			key);
	goto out;
nomem:
	fprintf(stderr, "rsignctl: out of memory\n");
out:
	cJSON_Delete(req);
	free(b64);
	rs_wipe(data, sizeof(data));
	return rc;
}

int ctl_history(ctl_ctx *ctx, const ctl_args *a)
{
	static const ctl_query query[] = {
		{"status", "status", NULL, NULL}, {"algorithm", "algorithm", NULL, NULL},
		{"actor", "actor", NULL, NULL},	  {"since", "from", NULL, NULL},
		{"until", "to", NULL, NULL},	  {"offset", "offset", NULL, NULL},
		{"limit", "limit", NULL, NULL},	  CTL_QUERY_END,
	};
	static const ctl_column cols[] = {
		{"createdAt", "TIME"},	{"status", "STATUS"},	{"signingAlgorithm", "ALGORITHM"},
		{"actorName", "ACTOR"}, {"errorCode", "ERROR"}, {"id", "ID"},
		{"oidc", "OIDC"},	CTL_COLUMNS_END,
	};
	static const ctl_out out = {ctl_out_table, cols, 0};

	return ctl_request(ctx, a, "GET", NULL, query, &out, "/pki/signers/%s/operations",
			   a->pos[0]);
}
