/* libFuzzer target: the JWT parser and signature check (server/http/jwt.h),
 * and base64url. The input is a token (NUL-terminated copy). Whatever
 * srv_jwt_parse accepts has three parts, a header alg of the allow-list, a
 * claims object, a signature that base64url-decodes, and signed_len at the
 * second dot; what it refuses leaves the result empty. Every accepted token
 * is then verified with a fixed RSA and a fixed P-256 key: a random input
 * never verifies, and the key of the wrong kind is ALG. base64url: what
 * decodes re-encodes to the same text.
 * fuzz-sources: server/http/jwt.c common/base64.c common/util.c
 * fuzz-max-len: 4096
 */
#include <openssl/evp.h>

#include "rsign/base64.h"
#include "server/http/jwt.h"
#include "fuzz.h"

static EVP_PKEY *rsa, *ec;

static void keys(void)
{
	if (rsa)
		return;
	rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	fuzz_check(rsa && ec, "no test keys");
}

/* base64url of p as JWS writes it (no padding). */
static char *b64url(const unsigned char *p, size_t n)
{
	char *s = rs_b64_encode(p, n);
	fuzz_check(s != NULL, "out of memory");
	size_t len = strlen(s);
	while (len && s[len - 1] == '=')
		s[--len] = '\0';
	for (size_t i = 0; i < len; i++)
		s[i] = s[i] == '+' ? '-' : s[i] == '/' ? '_' : s[i];
	return s;
}

static void check_b64url(const uint8_t *data, size_t size)
{
	unsigned char *out = fuzz_alloc(size + 1);
	size_t n = 0;
	if (srv_b64url_decode((const char *)data, size, out, size, &n) == 0) {
		char *again = b64url(out, n);
		fuzz_check(strlen(again) == size && memcmp(again, data, size) == 0,
			   "base64url decodes two spellings to the same bytes");
		free(again);
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *tok = (char *)fuzz_alloc(size + 1);
	srv_jwt j;

	keys();
	check_b64url(data, size);
	memcpy(tok, data, size);
	tok[size] = '\0';
	srv_jwt_rc rc = srv_jwt_parse(tok, &j);
	if (rc != SRV_JWT_OK) {
		fuzz_check(!j.claims && !j.sig && !j.sig_len && !j.signed_len,
			   "a refused token left parts behind");
		free(tok);
		return 0;
	}
	size_t len = strlen(tok);
	fuzz_check(len <= SRV_JWT_MAX, "accepted a token too long"); /* NUL ends the text */
	fuzz_check(j.signed_len < len && tok[j.signed_len] == '.', "signed_len not at a dot");
	fuzz_check(cJSON_IsObject(j.claims), "claims not an object");
	fuzz_check(j.sig && j.sig_len > 0, "no signature");
	fuzz_check(strlen(j.kid) <= SRV_JWT_KID_MAX, "kid too long");
	int dots = 0;
	for (size_t i = 0; i < len; i++)
		dots += tok[i] == '.';
	fuzz_check(dots == 2, "accepted a token without exactly three parts");
	const char *name = srv_jwt_alg_name(j.alg);
	fuzz_check(name[0] == 'R' || name[0] == 'E', "an alg outside the allow-list");
	int is_ec = name[0] == 'E';
	fuzz_check(srv_jwt_verify(&j, tok, is_ec ? rsa : ec) == SRV_JWT_ALG,
		   "a key of the wrong kind was not refused");
	/* the P-256 key does not fit ES384: ALG; else the signature fails */
	fuzz_check(srv_jwt_verify(&j, tok, is_ec ? ec : rsa) ==
			   (j.alg == SRV_JWT_ES384 ? SRV_JWT_ALG : SRV_JWT_SIGNATURE),
		   "a random token verified, or a fitting key was refused");
	srv_jwt_clear(&j);
	fuzz_check(!j.claims && !j.sig, "srv_jwt_clear left parts");
	free(tok);
	return 0;
}
