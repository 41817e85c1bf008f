/* Unit tests for rs_ckr_name, the CK_RV name table of the module and the
 * server: every CKR_ macro of p11-kit's pkcs11.h (test_ckr_defined.h, listed
 * by the preprocessor at build time) is named after itself; other values
 * get a vendor or unknown name; threads do not share the buffer. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <p11-kit/pkcs11.h>

#include "rsign/ckr.h"
#include "tap.h"

static const struct {
	CK_RV rv;
	const char *name;
} defined[] = {
#define X(x) {x, #x},
#include "tests/unit/test_ckr_defined.h" /* generated in the build tree */
#undef X
};

#define N_DEFINED (sizeof(defined) / sizeof(defined[0]))

static void every_header_value_has_its_name(void)
{
	size_t i, bad = 0;

	for (i = 0; i < N_DEFINED; i++) {
		const char *got = rs_ckr_name(defined[i].rv);

		if (strcmp(got, defined[i].name) != 0) {
			printf("# 0x%lx: want %s, got %s\n", (unsigned long)defined[i].rv,
			       defined[i].name, got);
			bad++;
		}
	}
	/* p11-kit 0.24 has 95; a header without them would make this vacuous. */
	ok(N_DEFINED >= 90 && bad == 0,
	   "every_ckr_of_the_header_is_named_after_itself (%zu of %zu)", N_DEFINED - bad,
	   N_DEFINED);
}

static void unknown_values_are_spelled_out(void)
{
	const char *a, *b;

	ok(strcmp(rs_ckr_name(CKR_VENDOR_DEFINED), "CKR_VENDOR_DEFINED") == 0,
	   "ckr_vendor_defined_itself_is_named");
	ok(strcmp(rs_ckr_name(CKR_VENDOR_DEFINED | 0x7273001UL), "CKR_VENDOR_DEFINED+0x7273001") ==
		   0,
	   "ckr_vendor_value_is_offset_from_vendor_defined");
	ok(strcmp(rs_ckr_name(0x999UL), "CKR_(unknown 0x999)") == 0,
	   "ckr_unknown_standard_value_shows_its_number");
	ok(strlen(rs_ckr_name(~0UL)) < RS_CKR_NAME_MAX &&
		   strncmp(rs_ckr_name(~0UL), "CKR_VENDOR_DEFINED+0x", 21) == 0,
	   "ckr_largest_value_fits_the_buffer");
	/* Two unknown values in one log line keep their own text. */
	a = rs_ckr_name(0x998UL);
	b = rs_ckr_name(CKR_VENDOR_DEFINED + 2);
	ok(strcmp(a, "CKR_(unknown 0x998)") == 0 && strcmp(b, "CKR_VENDOR_DEFINED+0x2") == 0,
	   "ckr_two_unknown_names_in_one_call_stay_apart");
}

/* Each thread names its own unknown value many times and checks it reads
 * back its own text every time: a shared buffer would mix them. */
static void *name_loop(void *arg)
{
	unsigned long rv = 0x900UL + (unsigned long)(uintptr_t)arg;
	char want[RS_CKR_NAME_MAX];
	long i, wrong = 0;

	snprintf(want, sizeof(want), "CKR_(unknown 0x%lx)", rv);
	for (i = 0; i < 20000; i++)
		if (strcmp(rs_ckr_name(rv), want) != 0)
			wrong++;
	return (void *)(intptr_t)wrong;
}

static void threads_do_not_share_buffers(void)
{
	pthread_t t[4];
	long wrong = 0;
	size_t i, started = 0;

	for (i = 0; i < 4; i++)
		if (pthread_create(&t[i], NULL, name_loop, (void *)(uintptr_t)i) == 0)
			started++;
	for (i = 0; i < started; i++) {
		void *r;

		pthread_join(t[i], &r);
		wrong += (long)(intptr_t)r;
	}
	ok(started == 4 && wrong == 0, "ckr_unknown_names_are_per_thread (%ld wrong)", wrong);
}

int main(void)
{
	plan(7);
	every_header_value_has_its_name();
	unknown_values_are_spelled_out();
	threads_do_not_share_buffers();
	return tap_done();
}
