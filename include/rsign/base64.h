/* Strict standard base64 (RFC 4648 section 4, with padding) and hex. */
#ifndef RSIGN_BASE64_H
#define RSIGN_BASE64_H
#include <stddef.h>

/* Returns a malloc'd NUL-terminated string, NULL on allocation failure. */
char *rs_b64_encode(const unsigned char *p, size_t n);

enum { RS_B64_OK = 0, RS_B64_INVALID = -1, RS_B64_TOO_LARGE = -2 };
/* Decodes slen characters of s into out (at most outmax bytes). Rejects any
 * character outside the alphabet, bad padding and non-zero trailing bits. */
int rs_b64_decode(const char *s, size_t slen, unsigned char *out, size_t outmax, size_t *outlen)
	__attribute__((warn_unused_result));

/* Lower-case hex; out must hold 2*n+1 bytes. */
void rs_hex_encode(const unsigned char *p, size_t n, char *out);
/* 0 on success, -1 on odd length, bad digit or overflow of outmax. */
int rs_hex_decode(const char *s, unsigned char *out, size_t outmax, size_t *outlen)
	__attribute__((warn_unused_result));

#endif
