/* Hashes, the PKCS#1 v1.5 DigestInfo, and ECDSA signatures as DER or r||s. */
#include <string.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "rsign/der.h"

/* DigestInfo prefixes from RFC 8017 section 9.2 note 1; the digest follows.
 * The form without the NULL parameter is rare but still produced by some
 * signers, so parse accepts it; build always emits the normal form. */
#define OID_SHA2(n) 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, (n)
static const unsigned char di_sha256[] = {0x30, 0x31, 0x30, 0x0d, OID_SHA2(1),
					  0x05, 0x00, 0x04, 0x20};
static const unsigned char di_sha384[] = {0x30, 0x41, 0x30, 0x0d, OID_SHA2(2),
					  0x05, 0x00, 0x04, 0x30};
static const unsigned char di_sha512[] = {0x30, 0x51, 0x30, 0x0d, OID_SHA2(3),
					  0x05, 0x00, 0x04, 0x40};
static const unsigned char di_sha256_nonull[] = {0x30, 0x2f, 0x30, 0x0b, OID_SHA2(1), 0x04, 0x20};
static const unsigned char di_sha384_nonull[] = {0x30, 0x3f, 0x30, 0x0b, OID_SHA2(2), 0x04, 0x30};
static const unsigned char di_sha512_nonull[] = {0x30, 0x4f, 0x30, 0x0b, OID_SHA2(3), 0x04, 0x40};

static const struct {
	rs_hash hash;
	const unsigned char *prefix;
	size_t len;
} di_prefixes[] = {
	{RS_HASH_SHA256, di_sha256, sizeof(di_sha256)},
	{RS_HASH_SHA384, di_sha384, sizeof(di_sha384)},
	{RS_HASH_SHA512, di_sha512, sizeof(di_sha512)},
	{RS_HASH_SHA256, di_sha256_nonull, sizeof(di_sha256_nonull)},
	{RS_HASH_SHA384, di_sha384_nonull, sizeof(di_sha384_nonull)},
	{RS_HASH_SHA512, di_sha512_nonull, sizeof(di_sha512_nonull)},
};

size_t rs_hash_len(rs_hash h)
{
	switch (h) {
	case RS_HASH_SHA256:
		return 32;
	case RS_HASH_SHA384:
		return 48;
	case RS_HASH_SHA512:
		return 64;
	default:
		return 0;
	}
}

rs_hash rs_hash_by_len(size_t len)
{
	switch (len) {
	case 32:
		return RS_HASH_SHA256;
	case 48:
		return RS_HASH_SHA384;
	case 64:
		return RS_HASH_SHA512;
	default:
		return RS_HASH_NONE;
	}
}

const char *rs_hash_name(rs_hash h)
{
	switch (h) {
	case RS_HASH_SHA256:
		return "SHA256";
	case RS_HASH_SHA384:
		return "SHA384";
	case RS_HASH_SHA512:
		return "SHA512";
	default:
		return "NONE";
	}
}

const EVP_MD *rs_hash_md(rs_hash h)
{
	switch (h) {
	case RS_HASH_SHA256:
		return EVP_sha256();
	case RS_HASH_SHA384:
		return EVP_sha384();
	case RS_HASH_SHA512:
		return EVP_sha512();
	default:
		return NULL;
	}
}

int rs_hash_compute(rs_hash h, const void *data, size_t len, unsigned char *out)
{
	const EVP_MD *md = rs_hash_md(h);
	unsigned int outlen = 0;

	if (!md || EVP_Digest(data, len, out, &outlen, md, NULL) != 1)
		return -1;
	return outlen == rs_hash_len(h) ? 0 : -1;
}

int rs_der_digestinfo_build(rs_hash h, const unsigned char *dig, size_t diglen, unsigned char *out,
			    size_t outmax, size_t *outlen)
{
	size_t i;

	/* The first three rows are the NULL-parameter forms, one per hash. */
	for (i = 0; i < 3; i++) {
		size_t total = di_prefixes[i].len + diglen;

		if (di_prefixes[i].hash != h)
			continue;
		if (diglen != rs_hash_len(h) || total > outmax)
			return -1;
		memcpy(out, di_prefixes[i].prefix, di_prefixes[i].len);
		memcpy(out + di_prefixes[i].len, dig, diglen);
		*outlen = total;
		return 0;
	}
	return -1;
}

int rs_der_digestinfo_parse(const unsigned char *in, size_t inlen, rs_hash *h,
			    const unsigned char **dig, size_t *diglen)
{
	size_t i;

	/* Each prefix fixes the total length, so a match with the exact length
	 * leaves no room for trailing bytes. */
	for (i = 0; i < sizeof(di_prefixes) / sizeof(di_prefixes[0]); i++) {
		size_t hl = rs_hash_len(di_prefixes[i].hash);

		if (inlen != di_prefixes[i].len + hl ||
		    memcmp(in, di_prefixes[i].prefix, di_prefixes[i].len) != 0)
			continue;
		*h = di_prefixes[i].hash;
		*dig = in + di_prefixes[i].len;
		*diglen = hl;
		return 0;
	}
	return -1;
}

int rs_der_ecdsa_to_raw(const unsigned char *der, size_t derlen, size_t half, unsigned char *out)
{
	const unsigned char *p = der;
	const BIGNUM *r, *s;
	ECDSA_SIG *sig;
	int ret = -1;

	/* Two 128-byte integers take up to 268 bytes of DER. */
	if (!der || derlen == 0 || derlen > 268 || half == 0 || half > 128)
		return -1;
	sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	if (!sig)
		return -1;
	if (p != der + derlen)
		goto out; /* trailing bytes */
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_is_negative(r) || BN_is_negative(s) || BN_is_zero(r) || BN_is_zero(s))
		goto out;
	if ((size_t)BN_num_bytes(r) > half || (size_t)BN_num_bytes(s) > half)
		goto out;
	if (BN_bn2binpad(r, out, (int)half) < 0 || BN_bn2binpad(s, out + half, (int)half) < 0)
		goto out;
	ret = 0;
out:
	ECDSA_SIG_free(sig);
	return ret;
}

int rs_der_ecdsa_from_raw(const unsigned char *raw, size_t rawlen, unsigned char *out,
			  size_t outmax, size_t *outlen)
{
	ECDSA_SIG *sig = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *p = out;
	size_t half = rawlen / 2;
	int n, ret = -1;

	if (!raw || rawlen == 0 || rawlen % 2 || rawlen > 256)
		return -1;
	r = BN_bin2bn(raw, (int)half, NULL);
	s = BN_bin2bn(raw + half, (int)half, NULL);
	sig = ECDSA_SIG_new();
	if (!r || !s || !sig || BN_is_zero(r) || BN_is_zero(s))
		goto out;
	if (ECDSA_SIG_set0(sig, r, s) != 1)
		goto out;
	r = s = NULL; /* owned by sig now */
	n = i2d_ECDSA_SIG(sig, NULL);
	if (n <= 0 || (size_t)n > outmax)
		goto out;
	n = i2d_ECDSA_SIG(sig, &p);
	if (n <= 0)
		goto out;
	*outlen = (size_t)n;
	ret = 0;
out:
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(sig);
	return ret;
}
