/* What every fuzz target shares: an invariant check that aborts (so
 * libFuzzer saves the input) and exact-size copies that let AddressSanitizer
 * catch a read or write one byte past a bound. */
#ifndef RSIGN_FUZZ_H
#define RSIGN_FUZZ_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An invariant of the code under test; on violation, name it and abort. */
#define fuzz_check(cond, what)                                                                     \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz invariant violated at %s:%d: %s (%s)\n", __FILE__,   \
				__LINE__, what, #cond);                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* A heap block of exactly n bytes (n may be 0): any access past it is an
 * ASan report. Aborts when out of memory, which no invariant excuses. */
static inline unsigned char *fuzz_alloc(size_t n)
{
	unsigned char *p = malloc(n);

	fuzz_check(p || n == 0, "out of memory");
	return p;
}

/* The input up to its first NUL, as a C string in a block of exactly its
 * length + 1 bytes: for APIs that take NUL-terminated text. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t n = nul ? (size_t)(nul - data) : size;
	char *s = (char *)fuzz_alloc(n + 1);

	memcpy(s, data, n);
	s[n] = '\0';
	return s;
}

#endif
