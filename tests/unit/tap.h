/* A minimal TAP producer for the C tests. A test declares how many checks
 * it makes, plan(N), before the first; then each check prints one "ok" or
 * "not ok" line named after the behaviour it checks. The TAP driver reports
 * an ERROR when the checks that ran differ from the plan, so a check that
 * silently did not run is a failure; tap_done() says so too. Planned counts
 * of loops come from the tables they loop over (TAP_COUNT). */
#ifndef RSIGN_TAP_H
#define RSIGN_TAP_H
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAP_COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int tap_n, tap_failed, tap_planned = -1;

/* A prerequisite failed and nothing after it can run: says why and exits.
 * The driver counts the run as an ERROR. */
static inline void tap_bail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static inline void tap_bail(const char *fmt, ...)
{
	va_list ap;

	printf("Bail out! ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(1);
}

/* Declares the number of checks; once, before the first. */
static inline void plan(size_t n)
{
	if (tap_planned >= 0 || tap_n > 0 || n > 1000000)
		tap_bail("plan(%zu) after a plan or a check, or too large", n);
	tap_planned = (int)n;
	printf("1..%zu\n", n);
	fflush(stdout);
}

/* The number of the next check; bails out when nothing was planned. */
static inline int tap_next(void)
{
	if (tap_planned < 0)
		tap_bail("a check before plan()");
	return ++tap_n;
}

#define ok(cond, ...)                                                                              \
	do {                                                                                       \
		int ok_c_ = (cond) ? 1 : 0;                                                        \
		printf("%sok %d - ", ok_c_ ? "" : "not ", tap_next());                             \
		printf(__VA_ARGS__);                                                               \
		printf("\n");                                                                      \
		if (!ok_c_) {                                                                      \
			tap_failed++;                                                              \
			printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);            \
		}                                                                                  \
		fflush(stdout);                                                                    \
	} while (0)

/* A planned check that cannot run here; counted and listed with reason. */
#define skip(reason, ...)                                                                          \
	do {                                                                                       \
		printf("ok %d - ", tap_next());                                                    \
		printf(__VA_ARGS__);                                                               \
		printf(" # SKIP %s\n", reason);                                                    \
		fflush(stdout);                                                                    \
	} while (0)

/* The exit status: 0 when every planned check ran and passed. */
static inline int tap_done(void)
{
	if (tap_planned < 0) {
		printf("Bail out! no plan() in this test\n");
		return 1;
	}
	if (tap_n != tap_planned) {
		printf("# planned %d checks but ran %d\n", tap_planned, tap_n);
		fflush(stdout);
		return 1;
	}
	return tap_failed ? 1 : 0;
}
#endif
