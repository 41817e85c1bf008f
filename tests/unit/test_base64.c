/* Unit tests for strict base64 and hex. */
#include <stdlib.h>
#include <string.h>

#include "rsign/base64.h"
#include "tap.h"

static int dec(const char *s, unsigned char *out, size_t outmax, size_t *outlen)
{
	return rs_b64_decode(s, strlen(s), out, outmax, outlen);
}

int main(void)
{
	static const struct {
		const char *plain, *enc;
	} vec[] = {
		{"", ""},
		{"f", "Zg=="},
		{"fo", "Zm8="},
		{"foo", "Zm9v"},
		{"foob", "Zm9vYg=="},
		{"fooba", "Zm9vYmE="},
		{"foobar", "Zm9vYmFy"},
	};
	unsigned char out[64], bin[256];
	size_t n, i;
	char *e, hex[65];
	int all_enc = 1, all_dec = 1, rt = 1;

	plan(36);
	for (i = 0; i < TAP_COUNT(vec); i++) {
		e = rs_b64_encode((const unsigned char *)vec[i].plain, strlen(vec[i].plain));
		if (!e || strcmp(e, vec[i].enc) != 0)
			all_enc = 0;
		free(e);
		if (dec(vec[i].enc, out, sizeof(out), &n) != RS_B64_OK ||
		    n != strlen(vec[i].plain) || memcmp(out, vec[i].plain, n) != 0)
			all_dec = 0;
	}
	ok(all_enc, "b64_encode_matches_rfc4648_vectors");
	ok(all_dec, "b64_decode_matches_rfc4648_vectors");

	for (i = 0; i < sizeof(bin); i++)
		bin[i] = (unsigned char)(i * 7 + 3);
	for (i = 0; i <= sizeof(bin) && rt; i++) {
		unsigned char back[256];

		e = rs_b64_encode(bin, i);
		if (!e || dec(e, back, sizeof(back), &n) != RS_B64_OK || n != i ||
		    memcmp(back, bin, i) != 0)
			rt = 0;
		free(e);
	}
	ok(rt, "b64_round_trips_every_length_0_to_256");

	ok(dec("Zm9v", out, 3, &n) == RS_B64_OK && n == 3, "b64_decode_fits_exact_outmax");
	ok(dec("Zm9vYmFy", out, 5, &n) == RS_B64_TOO_LARGE, "b64_decode_rejects_too_large");
	ok(dec("Zg==", out, 0, &n) == RS_B64_TOO_LARGE, "b64_decode_too_large_with_zero_outmax");
	ok(dec("Zm9", out, sizeof(out), &n) == RS_B64_INVALID,
	   "b64_decode_rejects_length_not_multiple_of_4");
	ok(dec("Zg", out, sizeof(out), &n) == RS_B64_INVALID, "b64_decode_rejects_missing_padding");
	ok(dec("Zg=", out, sizeof(out), &n) == RS_B64_INVALID, "b64_decode_rejects_short_padding");
	ok(dec("Zg===", out, sizeof(out), &n) == RS_B64_INVALID,
	   "b64_decode_rejects_extra_padding");
	ok(dec("Z===", out, sizeof(out), &n) == RS_B64_INVALID,
	   "b64_decode_rejects_three_pad_chars");
	ok(dec("====", out, sizeof(out), &n) == RS_B64_INVALID, "b64_decode_rejects_only_padding");
	ok(dec("Zg==Zm9v", out, sizeof(out), &n) == RS_B64_INVALID,
	   "b64_decode_rejects_padding_in_middle");
	ok(dec("Z=9v", out, sizeof(out), &n) == RS_B64_INVALID,
	   "b64_decode_rejects_pad_char_inside_quantum");
	ok(dec("Zm9v\n", out, sizeof(out), &n) == RS_B64_INVALID,
	   "b64_decode_rejects_trailing_newline");
	ok(dec("Zm 9v", out, sizeof(out), &n) == RS_B64_INVALID, "b64_decode_rejects_whitespace");
	ok(dec("Zm9v Zm9v", out, sizeof(out), &n) == RS_B64_INVALID,
	   "b64_decode_rejects_inner_space");
	ok(dec("Zm9-", out, sizeof(out), &n) == RS_B64_INVALID,
	   "b64_decode_rejects_url_safe_alphabet");
	ok(dec("Zm9_", out, sizeof(out), &n) == RS_B64_INVALID, "b64_decode_rejects_underscore");
	ok(dec("Zm9\x80", out, sizeof(out), &n) == RS_B64_INVALID, "b64_decode_rejects_high_byte");
	ok(rs_b64_decode("Zm\0v", 4, out, sizeof(out), &n) == RS_B64_INVALID,
	   "b64_decode_rejects_embedded_nul");
	ok(dec("Zh==", out, sizeof(out), &n) == RS_B64_INVALID,
	   "b64_decode_rejects_nonzero_trailing_bits_pad2");
	ok(dec("Zm9=", out, sizeof(out), &n) == RS_B64_INVALID,
	   "b64_decode_rejects_nonzero_trailing_bits_pad1");
	ok(dec("Zm8=", out, sizeof(out), &n) == RS_B64_OK && n == 2,
	   "b64_decode_accepts_zero_trailing_bits");
	ok(dec("", out, sizeof(out), &n) == RS_B64_OK && n == 0, "b64_decode_empty_is_empty");
	ok(rs_b64_decode("Zm9vYmFy", 4, out, sizeof(out), &n) == RS_B64_OK && n == 3 &&
		   memcmp(out, "foo", 3) == 0,
	   "b64_decode_honours_slen_without_nul");
	ok(dec("Zm9v!!!!", out, 3, &n) == RS_B64_INVALID, "b64_decode_invalid_wins_over_too_large");
	n = 99;
	ok(dec("Zm9", out, sizeof(out), &n) != RS_B64_OK && n == 0,
	   "b64_decode_zeroes_outlen_on_error");

	{
		const unsigned char b[] = {0x00, 0x01, 0xab, 0xff};
		unsigned char back[8];

		rs_hex_encode(b, sizeof(b), hex);
		ok(strcmp(hex, "0001abff") == 0, "hex_encode_is_lower_case");
		ok(rs_hex_decode("0001ABff", back, sizeof(back), &n) == 0 && n == 4 &&
			   memcmp(back, b, 4) == 0,
		   "hex_decode_accepts_mixed_case");
		ok(rs_hex_decode("abc", back, sizeof(back), &n) == -1,
		   "hex_decode_rejects_odd_length");
		ok(rs_hex_decode("zz", back, sizeof(back), &n) == -1,
		   "hex_decode_rejects_bad_digit");
		ok(rs_hex_decode("0x01", back, sizeof(back), &n) == -1,
		   "hex_decode_rejects_prefix");
		ok(rs_hex_decode("000102", back, 2, &n) == -1, "hex_decode_rejects_overflow");
		ok(rs_hex_decode("", back, sizeof(back), &n) == 0 && n == 0,
		   "hex_decode_empty_is_empty");
		rs_hex_encode(b, 0, hex);
		ok(hex[0] == '\0', "hex_encode_empty_is_empty_string");
	}
	return tap_done();
}
