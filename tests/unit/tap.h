/* A minimal TAP producer for unit tests: each check prints one "ok" or
 * "not ok" line named after the behaviour it checks. */
#ifndef RSIGN_TAP_H
#define RSIGN_TAP_H
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

#define ok(cond, ...)                                                                              \
	do {                                                                                       \
		int ok_c_ = (cond) ? 1 : 0;                                                        \
		printf("%sok %d - ", ok_c_ ? "" : "not ", ++tap_n);                                \
		printf(__VA_ARGS__);                                                               \
		printf("\n");                                                                      \
		if (!ok_c_) {                                                                      \
			tap_failed++;                                                              \
			printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);            \
		}                                                                                  \
		fflush(stdout);                                                                    \
	} while (0)

#define skip(reason, ...)                                                                          \
	do {                                                                                       \
		printf("ok %d - ", ++tap_n);                                                       \
		printf(__VA_ARGS__);                                                               \
		printf(" # SKIP %s\n", reason);                                                    \
	} while (0)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}
#endif
