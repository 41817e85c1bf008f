/* One-line, thread-safe logging to stderr or an append-only file, as text
 * or as one JSON object per line with the calling thread's request. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "rsign/json.h"
#include "rsign/log.h"
#include "rsign/util.h"

#define LOG_LINE_MAX 2048

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_level = RS_LOG_INFO;
static char log_ident[64] = "rsign";
static int log_fd = -1; /* -1 = stderr */
static int log_format = RS_LOG_TEXT;
static __thread const rs_log_request *log_req;
static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const char *const level_tags[] = {"ERROR", "WARN", "INFO", "DEBUG"};

int rs_log_level_parse(const char *s)
{
	int i;

	if (!s)
		return -1;
	for (i = 0; i <= RS_LOG_DEBUG; i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

void rs_log_set_level(int level)
{
	if (level < RS_LOG_ERROR)
		level = RS_LOG_ERROR;
	if (level > RS_LOG_DEBUG)
		level = RS_LOG_DEBUG;
	pthread_mutex_lock(&log_lock);
	log_level = level;
	pthread_mutex_unlock(&log_lock);
}

int rs_log_get_level(void)
{
	int level;

	pthread_mutex_lock(&log_lock);
	level = log_level;
	pthread_mutex_unlock(&log_lock);
	return level;
}

void rs_log_set_ident(const char *ident)
{
	pthread_mutex_lock(&log_lock);
	rs_strlcpy(log_ident, ident ? ident : "rsign", sizeof(log_ident));
	pthread_mutex_unlock(&log_lock);
}

int rs_log_set_file(const char *path)
{
	int fd = -1, old;

	if (path) {
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (fd < 0)
			return -1;
	}
	pthread_mutex_lock(&log_lock);
	old = log_fd;
	log_fd = fd;
	pthread_mutex_unlock(&log_lock);
	if (old >= 0)
		close(old);
	return 0;
}

void rs_log_set_format(int format)
{
	pthread_mutex_lock(&log_lock);
	log_format = format == RS_LOG_JSON ? RS_LOG_JSON : RS_LOG_TEXT;
	pthread_mutex_unlock(&log_lock);
}

void rs_log_set_request(const rs_log_request *req)
{
	log_req = req;
}

/* Appends s as a JSON string (quotes included) at *len, bounded by cap
 * minus room for the closing; control characters escaped, bytes that are
 * not UTF-8 replaced by '?'. A string cut short still closes its quote. */
static void json_str(char *buf, size_t cap, size_t *len, const char *s)
{
	size_t n = *len, room = cap - 8; /* the closing quote, brace, newline */
	const unsigned char *p = (const unsigned char *)s;
	size_t avail = strlen(s);
	if (n >= room)
		return;
	buf[n++] = '"';
	while (avail && n < room - 6) {
		unsigned char c = *p;
		if (c == '"' || c == '\\') {
			buf[n++] = '\\';
			buf[n++] = (char)c;
			p++, avail--;
		} else if (c < 0x20 || c == 0x7f) {
			n += (size_t)snprintf(buf + n, 7, "\\u%04x", c);
			p++, avail--;
		} else {
			size_t k = rs_utf8_seq(p, avail);
			if (k == 0 || n + k >= room - 6) {
				buf[n++] = '?';
				p++, avail--;
				continue;
			}
			memcpy(buf + n, p, k);
			n += k, p += k, avail -= k;
		}
	}
	buf[n++] = '"';
	*len = n;
}

static void json_field(char *buf, size_t cap, size_t *len, const char *key, const char *val)
{
	if (!val || *len + strlen(key) + 8 >= cap - 8)
		return;
	*len += (size_t)snprintf(buf + *len, cap - *len, ",\"%s\":", key);
	json_str(buf, cap, len, val);
}

static void json_num(char *buf, size_t cap, size_t *len, const char *key, long v)
{
	if (*len + strlen(key) + 28 >= cap - 8)
		return;
	*len += (size_t)snprintf(buf + *len, cap - *len, ",\"%s\":%ld", key, v);
}

/* The JSON line of one message: msg is the formatted text. */
static size_t json_line(char *out, size_t cap, const char *ts, const char *ident, int level,
			const char *msg)
{
	size_t n = (size_t)snprintf(out, cap, "{\"time\":\"%s\",\"level\":\"%s\"", ts,
				    level_names[level]);
	json_field(out, cap, &n, "ident", ident);
	json_num(out, cap, &n, "pid", rs_pid());
	json_field(out, cap, &n, "msg", msg);
	const rs_log_request *r = log_req;
	if (r) {
		json_field(out, cap, &n, "reqId", r->req_id);
		json_field(out, cap, &n, "method", r->method);
		json_field(out, cap, &n, "route", r->route);
		json_field(out, cap, &n, "principal", r->principal);
		json_field(out, cap, &n, "signer", r->signer);
		if (r->status)
			json_num(out, cap, &n, "status", r->status);
		json_field(out, cap, &n, "outcome", r->outcome);
		if (r->ms >= 0)
			json_num(out, cap, &n, "ms", r->ms);
	}
	out[n++] = '}';
	out[n++] = '\n';
	return n;
}

/* Control characters from callers (e.g. names taken from requests) must not
 * forge extra log lines. */
static void log_sanitize(char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			s[i] = '?';
}

void rs_log(int level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	char ts[RS_TIME_LEN];
	size_t len, msg_start;
	va_list ap;
	int n, saved_errno = errno;

	if (level > rs_log_get_level())
		return;
	if (level < RS_LOG_ERROR)
		level = RS_LOG_ERROR;
	if (level > RS_LOG_DEBUG)
		level = RS_LOG_DEBUG;
	rs_time_format(time(NULL), ts);

	char ident[sizeof(log_ident)];
	pthread_mutex_lock(&log_lock);
	int format = log_format;
	rs_strlcpy(ident, log_ident, sizeof(ident));
	pthread_mutex_unlock(&log_lock);
	if (format == RS_LOG_JSON) {
		char msg[LOG_LINE_MAX];
		va_start(ap, fmt);
		n = vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		if (n < 0)
			msg[0] = '\0';
		len = json_line(line, sizeof(line), ts, ident, level, msg);
	} else {
		n = snprintf(line, sizeof(line), "%s %s[%ld] %s: ", ts, ident, rs_pid(),
			     level_tags[level]);
		if (n < 0)
			goto out;
		msg_start = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;

		va_start(ap, fmt);
		n = vsnprintf(line + msg_start, sizeof(line) - msg_start, fmt, ap);
		va_end(ap);
		if (n < 0)
			n = 0;
		len = msg_start + (size_t)n;
		if (len > sizeof(line) - 2)
			len = sizeof(line) - 2; /* truncated: keep room for the newline */
		log_sanitize(line + msg_start, len - msg_start);
		line[len++] = '\n';
	}

	/* One write per line keeps lines whole between threads and processes;
	 * the lock only protects the fd from being swapped underneath us. */
	pthread_mutex_lock(&log_lock);
	if (write(log_fd >= 0 ? log_fd : STDERR_FILENO, line, len) < 0) {
		/* Nowhere better to report a failing log. */
	}
	pthread_mutex_unlock(&log_lock);
out:
	errno = saved_errno;
}
