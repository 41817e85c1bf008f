/* Small helpers with no better home: bounded strings, error messages, ids,
 * time, secrets. */
#ifndef RSIGN_UTIL_H
#define RSIGN_UTIL_H
#include <stddef.h>
#include <time.h>

/* Copies at most n-1 bytes and always terminates; returns strlen(src). */
size_t rs_strlcpy(char *dst, const char *src, size_t n);
/* printf into a caller's error buffer of errlen bytes: always terminated,
 * cut when longer; does nothing when err is NULL or errlen is 0. */
void rs_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Zeroes memory in a way the compiler keeps (OPENSSL_cleanse). */
void rs_wipe(void *p, size_t n);
/* free() after rs_wipe over strlen; NULL-safe. */
void rs_free_secret(char *s);

#define RS_UUID_LEN 37
/* Random RFC 4122 version 4 UUID, lower case. 0 or -1. */
int rs_uuid(char out[RS_UUID_LEN]) __attribute__((warn_unused_result));
/* A time-ordered UUID (RFC 9562 version 7: 48 bits of Unix time in ms, then
 * random): ids made one after another sort together, so a database index
 * of them grows at its end instead of at a random page. */
int rs_uuid_v7(char out[RS_UUID_LEN]) __attribute__((warn_unused_result));
/* This process's pid without a getpid(2) per call: kept after the first
 * call, forgotten by a fork handler in the child (which then asks again).
 * A child made by a raw clone(2) or vfork(2) runs no fork handler. */
long rs_pid(void);
/* Random lower-case hex of n bytes of entropy; out holds 2n+1. 0 or -1. */
int rs_random_hex(size_t n, char *out) __attribute__((warn_unused_result));

#define RS_TIME_LEN 32
/* RFC 3339 UTC, "2026-11-27T03:14:27Z". */
void rs_time_format(time_t t, char out[RS_TIME_LEN]);
/* Parses the format above; -1 on error. */
int rs_time_parse(const char *s, time_t *out) __attribute__((warn_unused_result));
/* Slug: ^[a-z0-9][a-z0-9-]{0,63}$ */
int rs_is_slug(const char *s);
/* A value taken as text from a request: 1..max bytes, no control
 * character (below 0x20, or 0x7f). 1 when it is, else 0. */
int rs_is_text(const char *s, size_t max);

#endif
