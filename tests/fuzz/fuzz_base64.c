/* libFuzzer target: strict base64 and hex (include/rsign/base64.h). The input
 * is decoded into buffers of exactly the bound given (so ASan sees any write
 * past it): what decodes must re-encode to the very same text (one spelling
 * per byte string), a bound one byte short must give TOO_LARGE, INVALID must
 * win over TOO_LARGE; and the input as bytes must encode to well-formed text
 * that decodes back to it.
 * fuzz-sources: common/base64.c
 * fuzz-max-len: 1024
 */
#include <ctype.h>

#include "rsign/base64.h"
#include "fuzz.h"

static int is_b64_char(char c)
{
	return isalnum((unsigned char)c) || c == '+' || c == '/';
}

/* Decodes into a block of exactly outmax bytes; returns the result and
 * leaves the decoded bytes in *out (freed by the caller). */
static int b64_decode_bounded(const char *s, size_t slen, size_t outmax, unsigned char **out,
			      size_t *outlen)
{
	int rc;

	*out = fuzz_alloc(outmax);
	*outlen = 12345;
	rc = rs_b64_decode(s, slen, *out, outmax, outlen);
	fuzz_check(rc == RS_B64_OK || rc == RS_B64_INVALID || rc == RS_B64_TOO_LARGE,
		   "rs_b64_decode returned an unknown code");
	fuzz_check(rc == RS_B64_OK || *outlen == 0, "a failed decode left *outlen set");
	fuzz_check(*outlen <= outmax, "decoded more than the bound");
	return rc;
}

static void check_b64_decode(const char *s, size_t slen)
{
	size_t room = slen / 4 * 3, n, n2, pad = 0;
	unsigned char *out, *out2;
	char *again;
	int rc = b64_decode_bounded(s, slen, room, &out, &n);

	if (rc != RS_B64_OK) {
		fuzz_check(rc == RS_B64_INVALID, "TOO_LARGE with room for any result");
		free(out);
		rc = b64_decode_bounded(s, slen, 0, &out, &n);
		fuzz_check(rc == RS_B64_INVALID, "TOO_LARGE won over INVALID");
		free(out);
		return;
	}
	while (pad < 2 && pad < slen && s[slen - 1 - pad] == '=')
		pad++;
	fuzz_check(n == room - pad, "decoded length is not 3/4 of the text less padding");
	again = rs_b64_encode(out, n);
	fuzz_check(again && strlen(again) == slen && memcmp(again, s, slen) == 0,
		   "decoded text does not re-encode to itself");
	free(again);

	rc = b64_decode_bounded(s, slen, n, &out2, &n2);
	fuzz_check(rc == RS_B64_OK && n2 == n && memcmp(out, out2, n) == 0,
		   "an exact bound changed the result");
	free(out2);
	if (n > 0) {
		rc = b64_decode_bounded(s, slen, n - 1, &out2, &n2);
		fuzz_check(rc == RS_B64_TOO_LARGE, "a bound one byte short is not TOO_LARGE");
		free(out2);
	}
	free(out);
}

static void check_b64_encode(const unsigned char *p, size_t size)
{
	char *e = rs_b64_encode(p, size);
	size_t elen, n, pad = (3 - size % 3) % 3;
	unsigned char *back;

	fuzz_check(e != NULL, "rs_b64_encode failed");
	elen = strlen(e);
	fuzz_check(elen == (size + 2) / 3 * 4, "encoded length");
	for (size_t i = 0; i < elen; i++)
		fuzz_check(i < elen - pad ? is_b64_char(e[i]) : e[i] == '=',
			   "encoded text has a stray character or lacks its padding");
	fuzz_check(b64_decode_bounded(e, elen, size, &back, &n) == RS_B64_OK && n == size &&
			   (size == 0 || memcmp(back, p, size) == 0),
		   "encode -> decode is not the identity");
	free(back);
	free(e);
}

static void check_hex(const unsigned char *data, size_t size)
{
	char *s = fuzz_cstr(data, size), *enc;
	size_t slen = strlen(s), n = 12345;
	int valid = slen % 2 == 0;
	unsigned char *out = fuzz_alloc(slen / 2), *small;

	for (size_t i = 0; i < slen; i++)
		valid = valid && isxdigit((unsigned char)s[i]);
	fuzz_check((rs_hex_decode(s, out, slen / 2, &n) == 0) == valid,
		   "rs_hex_decode accepts exactly even runs of hex digits");
	fuzz_check(valid ? n == slen / 2 : n == 0, "rs_hex_decode length");
	if (valid) {
		enc = (char *)fuzz_alloc(slen + 1);
		rs_hex_encode(out, n, enc);
		for (size_t i = 0; i < slen; i++)
			fuzz_check(enc[i] == tolower((unsigned char)s[i]),
				   "hex does not re-encode to its lower case");
		fuzz_check(enc[slen] == '\0', "rs_hex_encode does not terminate");
		free(enc);
		if (n > 0) {
			small = fuzz_alloc(n - 1);
			fuzz_check(rs_hex_decode(s, small, n - 1, &n) == -1 && n == 0,
				   "a bound one byte short is accepted");
			free(small);
		}
	}
	free(out);
	free(s);

	/* the input as bytes: hex of exactly 2n + 1 bytes decodes back */
	enc = (char *)fuzz_alloc(2 * size + 1);
	rs_hex_encode(data, size, enc);
	out = fuzz_alloc(size);
	fuzz_check(rs_hex_decode(enc, out, size, &n) == 0 && n == size &&
			   (size == 0 || memcmp(out, data, size) == 0),
		   "hex encode -> decode is not the identity");
	free(out);
	free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_b64_decode((const char *)data, size);
	check_b64_encode(data, size);
	check_hex(data, size);
	return 0;
}
