/* Unit tests for hashes, DigestInfo, and ECDSA DER <-> r||s. */
#include <string.h>
#include <openssl/evp.h>

#include "rsign/base64.h"
#include "rsign/der.h"
#include "tap.h"

/* Signs msg with a fresh key on curve and returns the DER signature. */
static size_t ec_sign(const char *curve, const char *msg, unsigned char *sig, size_t max)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t n = max;

	if (!key || !ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(ctx, sig, &n, (const unsigned char *)msg, strlen(msg)) != 1)
		n = 0;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
	return n;
}

int main(void)
{
	static const rs_hash hashes[] = {RS_HASH_SHA256, RS_HASH_SHA384, RS_HASH_SHA512};
	static const struct {
		const char *curve;
		size_t half;
	} curves[] = {{"P-256", 32}, {"P-384", 48}, {"P-521", 66}};
	static const char *const abc_hex[] = {
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		"cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
		"8086072ba1e7cc2358baeca134c825a7",
		"ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
		"2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
	};
	unsigned char dig[64], di[RS_DIGESTINFO_MAX], raw[132], der[160], der2[160];
	const unsigned char *dp;
	size_t n, dl, rl, i;
	char hex[129];
	rs_hash h;

	plan(34 + 8 * TAP_COUNT(hashes) + TAP_COUNT(curves));
	ok(rs_hash_len(RS_HASH_SHA256) == 32 && rs_hash_len(RS_HASH_SHA384) == 48 &&
		   rs_hash_len(RS_HASH_SHA512) == 64 && rs_hash_len(RS_HASH_NONE) == 0,
	   "hash_len_table");
	ok(rs_hash_by_len(32) == RS_HASH_SHA256 && rs_hash_by_len(48) == RS_HASH_SHA384 &&
		   rs_hash_by_len(64) == RS_HASH_SHA512 && rs_hash_by_len(20) == RS_HASH_NONE,
	   "hash_by_len_picks_sha2_or_none");
	ok(strcmp(rs_hash_name(RS_HASH_SHA384), "SHA384") == 0, "hash_name_spelling");
	for (i = 0; i < TAP_COUNT(hashes); i++) {
		ok(rs_hash_compute(hashes[i], "abc", 3, dig) == 0, "hash_compute_%s_succeeds",
		   rs_hash_name(hashes[i]));
		rs_hex_encode(dig, rs_hash_len(hashes[i]), hex);
		ok(strcmp(hex, abc_hex[i]) == 0, "hash_compute_%s_matches_fips_vector",
		   rs_hash_name(hashes[i]));
	}
	ok(rs_hash_compute(RS_HASH_NONE, "abc", 3, dig) == -1, "hash_compute_rejects_none");

	for (i = 0; i < TAP_COUNT(hashes); i++) {
		size_t hl = rs_hash_len(hashes[i]);
		unsigned char d[64];

		memset(d, 0xa5, sizeof(d));
		ok(rs_der_digestinfo_build(hashes[i], d, hl, di, sizeof(di), &n) == 0 &&
			   n == 19 + hl,
		   "digestinfo_build_%s_has_null_params", rs_hash_name(hashes[i]));
		ok(rs_der_digestinfo_parse(di, n, &h, &dp, &dl) == 0 && h == hashes[i] &&
			   dl == hl && dp == di + 19 && memcmp(dp, d, hl) == 0,
		   "digestinfo_round_trip_%s", rs_hash_name(hashes[i]));
		ok(rs_der_digestinfo_parse(di, n - 1, &h, &dp, &dl) == -1,
		   "digestinfo_parse_%s_rejects_truncated", rs_hash_name(hashes[i]));
		{
			unsigned char longer[RS_DIGESTINFO_MAX + 1];

			memcpy(longer, di, n);
			longer[n] = 0;
			ok(rs_der_digestinfo_parse(longer, n + 1, &h, &dp, &dl) == -1,
			   "digestinfo_parse_%s_rejects_trailing_byte", rs_hash_name(hashes[i]));
		}
		{
			/* Same DigestInfo without the NULL: drop "05 00" and fix
			 * both lengths. */
			unsigned char nn[RS_DIGESTINFO_MAX];

			memcpy(nn, di, 15);
			memcpy(nn + 15, di + 17, n - 17);
			nn[1] -= 2;
			nn[3] -= 2;
			ok(rs_der_digestinfo_parse(nn, n - 2, &h, &dp, &dl) == 0 &&
				   h == hashes[i] && dl == hl && memcmp(dp, d, hl) == 0,
			   "digestinfo_parse_%s_accepts_absent_params", rs_hash_name(hashes[i]));
		}
		ok(rs_der_digestinfo_build(hashes[i], d, hl - 1, di, sizeof(di), &n) == -1,
		   "digestinfo_build_%s_rejects_wrong_digest_len", rs_hash_name(hashes[i]));
	}
	{
		static const unsigned char sha256_prefix[] = {
			0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
			0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
		unsigned char d[32] = {1};

		ok(rs_der_digestinfo_build(RS_HASH_SHA256, d, 32, di, sizeof(di), &n) == 0 &&
			   memcmp(di, sha256_prefix, sizeof(sha256_prefix)) == 0,
		   "digestinfo_build_sha256_matches_rfc8017_prefix");
		ok(rs_der_digestinfo_build(RS_HASH_SHA256, d, 32, di, 50, &n) == -1,
		   "digestinfo_build_rejects_small_output");
		ok(rs_der_digestinfo_build(RS_HASH_NONE, d, 32, di, sizeof(di), &n) == -1,
		   "digestinfo_build_rejects_none");
		ok(rs_der_digestinfo_build(RS_HASH_SHA256, d, 32, di, sizeof(di), &n) == 0,
		   "digestinfo_build_sha256_again");
		di[10] ^= 1; /* corrupt the OID */
		ok(rs_der_digestinfo_parse(di, 51, &h, &dp, &dl) == -1,
		   "digestinfo_parse_rejects_unknown_oid");
		memset(di, 0, sizeof(di));
		ok(rs_der_digestinfo_parse(di, 51, &h, &dp, &dl) == -1,
		   "digestinfo_parse_rejects_garbage");
		ok(rs_der_digestinfo_parse(d, 32, &h, &dp, &dl) == -1,
		   "digestinfo_parse_rejects_bare_digest");
		ok(rs_der_digestinfo_parse(di, 0, &h, &dp, &dl) == -1,
		   "digestinfo_parse_rejects_empty");
	}

	/* ECDSA: r and s are positive INTEGERs, minimal, with a 0x00 when the
	 * high bit is set. */
	{
		unsigned char r_s[64];
		static const unsigned char want_hi[] = {0x30, 0x08, 0x02, 0x02, 0x00,
							0x80, 0x02, 0x02, 0x00, 0xff};

		memset(r_s, 0, sizeof(r_s));
		r_s[31] = 0x01;
		r_s[63] = 0x7f;
		ok(rs_der_ecdsa_from_raw(r_s, 64, der, sizeof(der), &n) == 0 && n == 8 &&
			   memcmp(der, "\x30\x06\x02\x01\x01\x02\x01\x7f", 8) == 0,
		   "ecdsa_from_raw_strips_leading_zeros");
		ok(rs_der_ecdsa_to_raw(der, n, 32, raw) == 0 && memcmp(raw, r_s, 64) == 0,
		   "ecdsa_to_raw_left_pads_short_integers");

		memset(r_s, 0, sizeof(r_s));
		r_s[31] = 0x80;
		r_s[63] = 0xff;
		ok(rs_der_ecdsa_from_raw(r_s, 64, der, sizeof(der), &n) == 0 &&
			   n == sizeof(want_hi) && memcmp(der, want_hi, n) == 0,
		   "ecdsa_from_raw_adds_zero_for_high_bit");
		ok(rs_der_ecdsa_to_raw(der, n, 32, raw) == 0 && memcmp(raw, r_s, 64) == 0,
		   "ecdsa_round_trip_high_bit");

		memset(r_s, 0xff, sizeof(r_s));
		ok(rs_der_ecdsa_from_raw(r_s, 64, der, sizeof(der), &n) == 0 && n == 72 &&
			   rs_der_ecdsa_to_raw(der, n, 32, raw) == 0 && memcmp(raw, r_s, 64) == 0,
		   "ecdsa_round_trip_full_width_high_bit");
		ok(rs_der_ecdsa_to_raw(der, n, 31, raw) == -1,
		   "ecdsa_to_raw_rejects_integer_over_half");
		ok(rs_der_ecdsa_to_raw(der, n - 1, 32, raw) == -1,
		   "ecdsa_to_raw_rejects_truncated");
		memcpy(der2, der, n);
		der2[n] = 0;
		ok(rs_der_ecdsa_to_raw(der2, n + 1, 32, raw) == -1,
		   "ecdsa_to_raw_rejects_trailing_bytes");
		ok(rs_der_ecdsa_from_raw(r_s, 64, der, 10, &n) == -1,
		   "ecdsa_from_raw_rejects_small_output");
		ok(rs_der_ecdsa_from_raw(r_s, 63, der, sizeof(der), &n) == -1,
		   "ecdsa_from_raw_rejects_odd_length");
		ok(rs_der_ecdsa_from_raw(r_s, 0, der, sizeof(der), &n) == -1,
		   "ecdsa_from_raw_rejects_empty");
		memset(r_s, 0, 32);
		ok(rs_der_ecdsa_from_raw(r_s, 64, der, sizeof(der), &n) == -1,
		   "ecdsa_from_raw_rejects_zero_r");
	}
	{
		static const unsigned char garbage[] = {0x04, 0x03, 0x01, 0x02, 0x03};
		static const unsigned char negative[] = {0x30, 0x06, 0x02, 0x01,
							 0x81, 0x02, 0x01, 0x01};
		static const unsigned char nonminimal[] = {0x30, 0x07, 0x02, 0x02, 0x00,
							   0x01, 0x02, 0x01, 0x01};
		static const unsigned char zero_r[] = {0x30, 0x06, 0x02, 0x01,
						       0x00, 0x02, 0x01, 0x01};
		static const unsigned char three[] = {0x30, 0x09, 0x02, 0x01, 0x01, 0x02,
						      0x01, 0x01, 0x02, 0x01, 0x01};
		unsigned char huge[80];

		ok(rs_der_ecdsa_to_raw(garbage, sizeof(garbage), 32, raw) == -1,
		   "ecdsa_to_raw_rejects_garbage");
		ok(rs_der_ecdsa_to_raw(negative, sizeof(negative), 32, raw) == -1,
		   "ecdsa_to_raw_rejects_negative");
		ok(rs_der_ecdsa_to_raw(nonminimal, sizeof(nonminimal), 32, raw) == -1,
		   "ecdsa_to_raw_rejects_non_minimal_integer");
		ok(rs_der_ecdsa_to_raw(zero_r, sizeof(zero_r), 32, raw) == -1,
		   "ecdsa_to_raw_rejects_zero");
		ok(rs_der_ecdsa_to_raw(three, sizeof(three), 32, raw) == -1,
		   "ecdsa_to_raw_rejects_extra_integer");
		ok(rs_der_ecdsa_to_raw(garbage, 0, 32, raw) == -1, "ecdsa_to_raw_rejects_empty");
		/* SEQUENCE { INTEGER of 70 bytes, INTEGER 1 }: over any half. */
		huge[0] = 0x30;
		huge[1] = 75;
		huge[2] = 0x02;
		huge[3] = 70;
		memset(huge + 4, 0x11, 70);
		huge[74] = 0x02;
		huge[75] = 0x01;
		huge[76] = 0x01;
		ok(rs_der_ecdsa_to_raw(huge, 77, 66, raw) == -1,
		   "ecdsa_to_raw_rejects_oversize_integer");
	}
	/* The widest halves both converters take, 128 bytes: r||s of 0xff
	 * needs 268 bytes of DER, which to_raw refused past 256 (found by
	 * fuzz_der). */
	{
		unsigned char wide[256], wide_der[268], wide_raw[256];
		size_t wn = 0;

		memset(wide, 0xff, sizeof(wide));
		ok(rs_der_ecdsa_from_raw(wide, sizeof(wide), wide_der, sizeof(wide_der), &wn) ==
				   0 &&
			   wn == sizeof(wide_der),
		   "ecdsa_from_raw_takes_128_byte_halves");
		ok(rs_der_ecdsa_to_raw(wide_der, wn, 128, wide_raw) == 0 &&
			   memcmp(wide_raw, wide, sizeof(wide)) == 0,
		   "ecdsa_round_trip_128_byte_halves");
		ok(rs_der_ecdsa_to_raw(wide_der, wn, 127, wide_raw) == -1,
		   "ecdsa_to_raw_rejects_128_byte_integers_for_half_127");
	}
	{
		for (i = 0; i < TAP_COUNT(curves); i++) {
			unsigned char sig[160];
			size_t sl = ec_sign(curves[i].curve, "hello", sig, sizeof(sig));

			ok(sl > 0 && rs_der_ecdsa_to_raw(sig, sl, curves[i].half, raw) == 0 &&
				   rs_der_ecdsa_from_raw(raw, 2 * curves[i].half, der2,
							 sizeof(der2), &rl) == 0 &&
				   rl == sl && memcmp(der2, sig, sl) == 0,
			   "ecdsa_openssl_signature_round_trips_%s", curves[i].curve);
		}
	}
	return tap_done();
}
