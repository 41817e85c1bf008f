/* Small helpers: bounded copy, error messages, wiping, random ids, RFC 3339
 * time, slugs. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "rsign/base64.h"
#include "rsign/util.h"

size_t rs_strlcpy(char *dst, const char *src, size_t n)
{
	size_t len = strlen(src);

	if (n) {
		size_t c = len < n - 1 ? len : n - 1;
		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return len;
}

void rs_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	if (vsnprintf(err, errlen, fmt, ap) < 0)
		err[0] = '\0';
	va_end(ap);
}

void rs_wipe(void *p, size_t n)
{
	if (p && n)
		OPENSSL_cleanse(p, n);
}

void rs_free_secret(char *s)
{
	if (!s)
		return;
	rs_wipe(s, strlen(s));
	free(s);
}

static void uuid_text(unsigned char r[16], char out[RS_UUID_LEN])
{
	char hex[33];

	rs_hex_encode(r, 16, hex);
	memcpy(out, hex, 8);
	out[8] = '-';
	memcpy(out + 9, hex + 8, 4);
	out[13] = '-';
	memcpy(out + 14, hex + 12, 4);
	out[18] = '-';
	memcpy(out + 19, hex + 16, 4);
	out[23] = '-';
	memcpy(out + 24, hex + 20, 12);
	out[36] = '\0';
}

int rs_uuid(char out[RS_UUID_LEN])
{
	unsigned char r[16];

	if (RAND_bytes(r, sizeof(r)) != 1)
		return -1;
	r[6] = (r[6] & 0x0f) | 0x40; /* version 4 */
	r[8] = (r[8] & 0x3f) | 0x80; /* RFC 4122 variant */
	uuid_text(r, out);
	return 0;
}

int rs_uuid_v7(char out[RS_UUID_LEN])
{
	unsigned char r[16];
	struct timespec ts;

	if (RAND_bytes(r + 6, sizeof(r) - 6) != 1 || clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return -1;
	unsigned long long ms = (unsigned long long)ts.tv_sec * 1000ULL +
				(unsigned long long)ts.tv_nsec / 1000000ULL;
	for (int i = 5; i >= 0; i--, ms >>= 8) /* 48-bit big-endian Unix time in ms */
		r[i] = (unsigned char)(ms & 0xff);
	r[6] = (r[6] & 0x0f) | 0x70; /* version 7 */
	r[8] = (r[8] & 0x3f) | 0x80; /* RFC 9562 variant */
	uuid_text(r, out);
	return 0;
}

int rs_random_hex(size_t n, char *out)
{
	unsigned char r[64];

	/* Chunked so any n works without a heap buffer holding the secret. */
	while (n) {
		size_t c = n < sizeof(r) ? n : sizeof(r);

		if (RAND_bytes(r, (int)c) != 1) {
			OPENSSL_cleanse(r, sizeof(r));
			*out = '\0';
			return -1;
		}
		rs_hex_encode(r, c, out);
		out += 2 * c;
		n -= c;
	}
	*out = '\0';
	OPENSSL_cleanse(r, sizeof(r));
	return 0;
}

void rs_time_format(time_t t, char out[RS_TIME_LEN])
{
	struct tm tm;

	/* Not strftime: its %Y leaves years before 1000 unpadded. */
	if (!gmtime_r(&t, &tm) ||
	    snprintf(out, RS_TIME_LEN, "%04lld-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900LL,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec) >= RS_TIME_LEN)
		rs_strlcpy(out, "1970-01-01T00:00:00Z", RS_TIME_LEN);
}

/* Reads exactly n digits; strptime would accept short fields and spaces. */
static int read_digits(const char **p, int n, int *out)
{
	int v = 0;

	while (n--) {
		if (**p < '0' || **p > '9')
			return -1;
		v = v * 10 + (**p - '0');
		(*p)++;
	}
	*out = v;
	return 0;
}

int rs_time_parse(const char *s, time_t *out)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	struct tm tm;
	int y, mo, d, h, mi, sec;
	const char *p = s;
	time_t t;

	if (read_digits(&p, 4, &y) < 0 || *p++ != '-' || read_digits(&p, 2, &mo) < 0 ||
	    *p++ != '-' || read_digits(&p, 2, &d) < 0 || (*p != 'T' && *p != 't'))
		return -1;
	p++;
	if (read_digits(&p, 2, &h) < 0 || *p++ != ':' || read_digits(&p, 2, &mi) < 0 ||
	    *p++ != ':' || read_digits(&p, 2, &sec) < 0)
		return -1;
	if (*p == 'Z' || *p == 'z')
		p++;
	else if (strncmp(p, "+00:00", 6) == 0)
		p += 6;
	else
		return -1;
	if (*p)
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
		return -1;
	if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t)-1 && !(y == 1969 && mo == 12 && d == 31 && h == 23 && mi == 59))
		return -1;
	*out = t;
	return 0;
}

int rs_is_slug(const char *s)
{
	size_t i;

	if (!s || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return 0;
	for (i = 1; s[i]; i++) {
		char c = s[i];

		if (i > 63)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return 0;
	}
	return 1;
}

int rs_is_text(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

static _Atomic long pid_cached; /* 0: not known yet, or forgotten in a forked child */
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

static void pid_forget(void)
{
	pid_cached = 0;
}

static void pid_watch(void)
{
	pthread_atfork(NULL, NULL, pid_forget);
}

long rs_pid(void)
{
	long pid = pid_cached;
	if (pid)
		return pid;
	pthread_once(&pid_once, pid_watch);
	pid = (long)getpid();
	pid_cached = pid;
	return pid;
}
