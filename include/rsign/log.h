/* One-line, thread-safe logging. Never pass tokens, PINs, secrets or signed
 * data to these functions. */
#ifndef RSIGN_LOG_H
#define RSIGN_LOG_H

enum { RS_LOG_ERROR = 0, RS_LOG_WARN = 1, RS_LOG_INFO = 2, RS_LOG_DEBUG = 3 };

/* "error", "warn", "info", "debug" -> level; -1 when unknown. */
int rs_log_level_parse(const char *s);
void rs_log_set_level(int level);
int rs_log_get_level(void);
void rs_log_set_ident(const char *ident);
/* Appends to path instead of stderr; NULL goes back to stderr. 0 or -1. */
int rs_log_set_file(const char *path);
void rs_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Line format: RS_LOG_TEXT ("TIME ident[pid] LEVEL: message") or RS_LOG_JSON
 * (one object per line: time, level, ident, pid, msg, and the fields of the
 * calling thread's request, when one is set). */
enum { RS_LOG_TEXT = 0, RS_LOG_JSON = 1 };
void rs_log_set_format(int format);

/* The request a thread is serving, added to its JSON lines. The strings are
 * borrowed until rs_log_set_request(NULL); NULL fields and status 0 / ms < 0
 * are left out. Never a token, secret or signed data. */
typedef struct {
	const char *req_id, *method, *route, *principal, *signer, *outcome;
	int status;
	long ms;
} rs_log_request;
void rs_log_set_request(const rs_log_request *req);

#define rs_err(...) rs_log(RS_LOG_ERROR, __VA_ARGS__)
#define rs_warn(...) rs_log(RS_LOG_WARN, __VA_ARGS__)
#define rs_info(...) rs_log(RS_LOG_INFO, __VA_ARGS__)
#define rs_debug(...) rs_log(RS_LOG_DEBUG, __VA_ARGS__)

#endif
