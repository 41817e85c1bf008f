/* Growable byte buffer with a hard maximum and a sticky failure flag:
 * many appends may be made and checked once with rs_buf_ok(). */
#ifndef RSIGN_BUF_H
#define RSIGN_BUF_H
#include <stddef.h>

typedef struct {
	unsigned char *data; /* always NUL-terminated after a successful append */
	size_t len;
	size_t cap;
	size_t max; /* appends that would exceed max fail and set failed */
	int failed;
} rs_buf;

void rs_buf_init(rs_buf *b, size_t max);
/* 0 on success, -1 when over max or out of memory (sticky). */
int rs_buf_append(rs_buf *b, const void *p, size_t n);
int rs_buf_append_str(rs_buf *b, const char *s);
int rs_buf_printf(rs_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int rs_buf_ok(const rs_buf *b)
{
	return !b->failed;
}
/* The contents as a C string ("" when empty); never NULL. */
const char *rs_buf_str(const rs_buf *b);
/* Hands the storage to the caller (NUL-terminated), leaves b empty. */
unsigned char *rs_buf_steal(rs_buf *b, size_t *len);
void rs_buf_reset(rs_buf *b);
void rs_buf_free(rs_buf *b);
/* Cleanses the contents before freeing: for buffers that held secrets. */
void rs_buf_wipe(rs_buf *b);

#endif
