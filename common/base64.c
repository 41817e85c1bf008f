/* Strict base64 (RFC 4648 section 4, padded) and lower-case hex. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rsign/base64.h"

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *rs_b64_encode(const unsigned char *p, size_t n)
{
	size_t i, o = 0, outlen;
	char *out;

	if (n > (SIZE_MAX - 1) / 4 * 3 - 3)
		return NULL;
	outlen = (n + 2) / 3 * 4;
	out = malloc(outlen + 1);
	if (!out)
		return NULL;
	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = b64_alphabet[v >> 6 & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;
		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = b64_alphabet[v >> 6 & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* One canonical encoding per byte string: anything else (whitespace, missing
 * or extra padding, stray bits) is refused so signatures over the decoded
 * bytes cannot be reached through several spellings. */
int rs_b64_decode(const char *s, size_t slen, unsigned char *out, size_t outmax, size_t *outlen)
{
	size_t i, o = 0, pad = 0, need;

	*outlen = 0;
	if (slen % 4)
		return RS_B64_INVALID;
	if (slen == 0)
		return RS_B64_OK;
	if (s[slen - 1] == '=')
		pad = s[slen - 2] == '=' ? 2 : 1;
	need = slen / 4 * 3 - pad;
	for (i = 0; i < slen; i += 4) {
		int v[4], k, last = i + 4 == slen;
		uint32_t w = 0;

		for (k = 0; k < 4; k++) {
			if (last && k >= 4 - (int)pad) {
				v[k] = 0;
				continue;
			}
			v[k] = b64_value((unsigned char)s[i + k]);
			if (v[k] < 0)
				return RS_B64_INVALID;
		}
		if (last && pad == 2 && (v[1] & 0x0f))
			return RS_B64_INVALID;
		if (last && pad == 1 && (v[2] & 0x03))
			return RS_B64_INVALID;
		w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
		    (uint32_t)v[3];
		if (need > outmax)
			continue; /* keep validating so INVALID wins over TOO_LARGE */
		out[o++] = w >> 16 & 0xff;
		if (!(last && pad == 2))
			out[o++] = w >> 8 & 0xff;
		if (!(last && pad >= 1))
			out[o++] = w & 0xff;
	}
	if (need > outmax)
		return RS_B64_TOO_LARGE;
	*outlen = o;
	return RS_B64_OK;
}

void rs_hex_encode(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int rs_hex_decode(const char *s, unsigned char *out, size_t outmax, size_t *outlen)
{
	size_t i, n = strlen(s);

	*outlen = 0;
	if (n % 2 || n / 2 > outmax)
		return -1;
	for (i = 0; i < n; i += 2) {
		int hi = hex_value((unsigned char)s[i]);
		int lo = hex_value((unsigned char)s[i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (unsigned char)(hi << 4 | lo);
	}
	*outlen = n / 2;
	return 0;
}
