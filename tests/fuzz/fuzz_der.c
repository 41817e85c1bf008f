/* libFuzzer target: the DER helpers of common/der.c. A DigestInfo that
 * parses must be one of the six exact forms and rebuild to the canonical one;
 * ECDSA r||s -> DER -> r||s is the identity for every r||s with non-zero
 * halves, and DER that converts to r||s holds exactly the canonical
 * integers of it (OpenSSL lets the lengths be long-form BER).
 * Outputs go to blocks of exactly the bound given, inputs are the fuzzer's
 * own exact-size block: ASan sees any access past either.
 * fuzz-sources: common/der.c
 * fuzz-max-len: 320
 */
#include "rsign/der.h"
#include "fuzz.h"

/* DER of two 128-byte integers: 2 * (1 + 2 + 129) + 1 + 3 bytes */
#define ECDSA_DER_MAX 268
#define DI_PREFIX 19 /* SEQUENCE, AlgorithmIdentifier with NULL, OCTET STRING */

static void check_digestinfo(const unsigned char *in, size_t inlen)
{
	const unsigned char *dig = NULL, *dig2 = NULL;
	unsigned char out[RS_DIGESTINFO_MAX], *small;
	size_t diglen = 0, diglen2 = 0, outlen = 0, n;
	rs_hash h = RS_HASH_NONE, h2 = RS_HASH_NONE;

	if (rs_der_digestinfo_parse(in, inlen, &h, &dig, &diglen) != 0)
		return;
	fuzz_check(h != RS_HASH_NONE && diglen == rs_hash_len(h) && rs_hash_by_len(diglen) == h,
		   "parsed hash and digest length disagree");
	fuzz_check(dig == in + inlen - diglen, "the digest is not the tail of the input");
	fuzz_check(rs_der_digestinfo_build(h, dig, diglen, out, sizeof(out), &outlen) == 0 &&
			   outlen == DI_PREFIX + diglen,
		   "a parsed DigestInfo does not rebuild");
	if (inlen == outlen) {
		fuzz_check(memcmp(in, out, inlen) == 0,
			   "accepted a DigestInfo unlike the canonical");
	} else {
		/* the form without NULL parameters: same bytes less 05 00 */
		fuzz_check(inlen == outlen - 2, "accepted a DigestInfo of the wrong length");
		fuzz_check(in[0] == 0x30 && in[1] == out[1] - 2 && in[2] == 0x30 &&
				   in[3] == out[3] - 2 && memcmp(in + 4, out + 4, 11) == 0 &&
				   out[15] == 0x05 && out[16] == 0x00 &&
				   memcmp(in + 15, out + 17, inlen - 15) == 0,
			   "accepted a DigestInfo unlike the form without parameters");
	}
	fuzz_check(rs_der_digestinfo_parse(out, outlen, &h2, &dig2, &diglen2) == 0 && h2 == h &&
			   diglen2 == diglen && memcmp(dig2, dig, diglen) == 0,
		   "a built DigestInfo does not parse back");

	small = fuzz_alloc(outlen - 1);
	fuzz_check(rs_der_digestinfo_build(h, dig, diglen, small, outlen - 1, &n) == -1,
		   "built a DigestInfo into a bound one byte short");
	free(small);
	fuzz_check(rs_der_digestinfo_build(h, dig, diglen - 1, out, sizeof(out), &n) == -1 &&
			   rs_der_digestinfo_build(RS_HASH_NONE, dig, diglen, out, sizeof(out),
						   &n) == -1,
		   "built a DigestInfo of the wrong digest length or hash");
}

static int all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* r||s of the whole input: converts unless empty, odd, over 256 bytes or
 * with a zero half; then DER -> r||s is the identity. */
static void check_ecdsa_from_raw(const unsigned char *raw, size_t rawlen)
{
	unsigned char *der = fuzz_alloc(ECDSA_DER_MAX), *back, *small;
	size_t half = rawlen / 2, derlen = 0, n;
	int want = rawlen > 0 && rawlen % 2 == 0 && rawlen <= 256 && !all_zero(raw, half) &&
		   !all_zero(raw + half, half);

	fuzz_check((rs_der_ecdsa_from_raw(raw, rawlen, der, ECDSA_DER_MAX, &derlen) == 0) == want,
		   "rs_der_ecdsa_from_raw accepts exactly even r||s of non-zero halves");
	if (want) {
		fuzz_check(derlen > 0 && derlen <= ECDSA_DER_MAX, "DER length");
		back = fuzz_alloc(rawlen);
		fuzz_check(rs_der_ecdsa_to_raw(der, derlen, half, back) == 0 &&
				   memcmp(back, raw, rawlen) == 0,
			   "r||s -> DER -> r||s is not the identity");
		free(back);
		small = fuzz_alloc(derlen - 1);
		fuzz_check(rs_der_ecdsa_from_raw(raw, rawlen, small, derlen - 1, &n) == -1,
			   "wrote DER into a bound one byte short");
		free(small);
	}
	free(der);
}

/* One BER tag-length header at p (before e) with the given tag: sets the
 * contents and their length (SIZE_MAX: indefinite). NULL when malformed. */
static const unsigned char *ber_header(const unsigned char *p, const unsigned char *e,
				       unsigned char tag, const unsigned char **c, size_t *n)
{
	size_t k;

	if (e - p < 2 || *p++ != tag)
		return NULL;
	*n = 0;
	if (*p < 0x80) {
		*n = *p++;
	} else if (*p == 0x80) {
		*n = SIZE_MAX;
		p++;
	} else {
		k = *p++ & 0x7f;
		if (k > 4 || (size_t)(e - p) < k)
			return NULL;
		while (k--)
			*n = *n << 8 | *p++;
	}
	if (*n != SIZE_MAX && (size_t)(e - p) < *n)
		return NULL;
	*c = p;
	return p;
}

/* SEQUENCE { INTEGER r, INTEGER s } and nothing after it, lengths in any BER
 * form; sets the contents of r and s. 0 or -1. */
static int ber_ecdsa_sig(const unsigned char *p, size_t len, const unsigned char *rs[2],
			 size_t rsn[2])
{
	const unsigned char *e = p + len, *c, *ce;
	size_t n;

	if (!ber_header(p, e, 0x30, &c, &n))
		return -1;
	if (n == SIZE_MAX) {
		if (e - c < 2 || e[-2] || e[-1])
			return -1; /* end-of-contents */
		ce = e - 2;
	} else {
		ce = c + n;
		if (ce != e)
			return -1;
	}
	for (int i = 0; i < 2; i++) {
		if (!ber_header(c, ce, 0x02, &rs[i], &rsn[i]) || rsn[i] == SIZE_MAX)
			return -1;
		c = rs[i] + rsn[i];
	}
	return c == ce ? 0 : -1;
}

/* The first byte is the half length asked for, the rest the DER. */
static void check_ecdsa_to_raw(const unsigned char *data, size_t size)
{
	size_t half, derlen, relen = 0, inn[2], canonn[2];
	const unsigned char *in[2], *canon[2];
	unsigned char *raw, *der;

	if (size < 1)
		return;
	half = data[0];
	raw = fuzz_alloc(2 * half);
	if (rs_der_ecdsa_to_raw(data + 1, size - 1, half, raw) == 0) {
		derlen = size - 1;
		fuzz_check(half > 0 && half <= 128 && derlen <= 256,
			   "accepted an out-of-range size");
		fuzz_check(!all_zero(raw, half) && !all_zero(raw + half, half), "a zero r or s");
		der = fuzz_alloc(ECDSA_DER_MAX);
		fuzz_check(rs_der_ecdsa_from_raw(raw, 2 * half, der, ECDSA_DER_MAX, &relen) == 0,
			   "r||s from DER does not convert back");
		/* OpenSSL takes long-form (BER) lengths; r and s themselves must be
		 * exactly the canonical INTEGER contents. */
		fuzz_check(ber_ecdsa_sig(data + 1, derlen, in, inn) == 0,
			   "accepted what is not SEQUENCE { INTEGER, INTEGER }");
		fuzz_check(ber_ecdsa_sig(der, relen, canon, canonn) == 0, "from_raw output");
		fuzz_check(inn[0] == canonn[0] && memcmp(in[0], canon[0], inn[0]) == 0 &&
				   inn[1] == canonn[1] && memcmp(in[1], canon[1], inn[1]) == 0,
			   "accepted an r or s that is not a minimal positive INTEGER");
		fuzz_check(relen <= derlen, "the canonical DER is longer than the input");
		free(der);
	}
	free(raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_digestinfo(data, size);
	check_ecdsa_from_raw(data, size);
	check_ecdsa_to_raw(data, size);
	return 0;
}
