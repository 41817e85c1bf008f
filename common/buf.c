/* Growable byte buffer with a hard maximum and a sticky failure flag. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "rsign/buf.h"

void rs_buf_init(rs_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	/* Keeps max + 1 (room for the NUL) from wrapping. */
	b->max = max < SIZE_MAX - 1 ? max : SIZE_MAX - 2;
	b->failed = 0;
}

/* Makes room for need more bytes plus the NUL, doubling but never past
 * max + 1 so a hostile length cannot make us allocate more than allowed. */
static int buf_reserve(rs_buf *b, size_t need)
{
	size_t want, cap;
	unsigned char *p;

	if (b->failed)
		return -1;
	if (need > b->max || b->len > b->max - need) {
		b->failed = 1;
		return -1;
	}
	want = b->len + need + 1;
	if (want <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	p = realloc(b->data, cap);
	if (!p) {
		b->failed = 1;
		return -1;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

int rs_buf_append(rs_buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return -1;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int rs_buf_append_str(rs_buf *b, const char *s)
{
	return rs_buf_append(b, s, strlen(s));
}

int rs_buf_printf(rs_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return -1;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = 1;
		return -1;
	}
	if (buf_reserve(b, (size_t)n) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

const char *rs_buf_str(const rs_buf *b)
{
	return b->data ? (const char *)b->data : "";
}

unsigned char *rs_buf_steal(rs_buf *b, size_t *len)
{
	unsigned char *p = b->data;

	/* Truncated contents must not pass for the real thing. */
	if (b->failed) {
		free(p);
		p = NULL;
	} else if (!p) {
		/* An empty buffer still hands back a terminated string. */
		p = calloc(1, 1);
	}
	if (len)
		*len = p ? b->len : 0;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

void rs_buf_reset(rs_buf *b)
{
	b->len = 0;
	b->failed = 0;
	if (b->data)
		b->data[0] = '\0';
}

void rs_buf_free(rs_buf *b)
{
	if (!b)
		return;
	free(b->data);
	rs_buf_init(b, b->max);
}

void rs_buf_wipe(rs_buf *b)
{
	if (!b)
		return;
	if (b->data)
		OPENSSL_cleanse(b->data, b->cap);
	rs_buf_free(b);
}
