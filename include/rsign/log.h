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

#define rs_err(...) rs_log(RS_LOG_ERROR, __VA_ARGS__)
#define rs_warn(...) rs_log(RS_LOG_WARN, __VA_ARGS__)
#define rs_info(...) rs_log(RS_LOG_INFO, __VA_ARGS__)
#define rs_debug(...) rs_log(RS_LOG_DEBUG, __VA_ARGS__)

#endif
