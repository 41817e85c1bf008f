/* One-line, thread-safe logging to stderr or an append-only file. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "rsign/log.h"
#include "rsign/util.h"

#define LOG_LINE_MAX 2048

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_level = RS_LOG_INFO;
static char log_ident[64] = "rsign";
static int log_fd = -1; /* -1 = stderr */

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

	pthread_mutex_lock(&log_lock);
	n = snprintf(line, sizeof(line), "%s %s[%ld] %s: ", ts, log_ident, (long)getpid(),
		     level_tags[level]);
	pthread_mutex_unlock(&log_lock);
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
