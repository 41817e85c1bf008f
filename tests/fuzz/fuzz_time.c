/* libFuzzer target: RFC 3339 times (rs_time_parse, rs_time_format in
 * common/util.c). What parses is exactly "YYYY-MM-DDTHH:MM:SS" then "Z" or
 * "+00:00" (t and z in either case), and formats back to the same text in
 * its canonical spelling, which parses to the same time.
 * fuzz-sources: common/util.c common/base64.c
 * fuzz-max-len: 64
 */
#include <ctype.h>
#include <time.h>

#include "rsign/util.h"
#include "fuzz.h"

/* The shape alone, by a pattern: 'd' a digit, others themselves. */
static int shape_ok(const char *s)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd";
	size_t i;

	for (i = 0; pat[i]; i++) {
		if (pat[i] == 'd'   ? !isdigit((unsigned char)s[i])
		    : pat[i] == 'T' ? toupper((unsigned char)s[i]) != 'T'
				    : s[i] != pat[i])
			return 0;
	}
	return strcmp(s + i, "Z") == 0 || strcmp(s + i, "z") == 0 || strcmp(s + i, "+00:00") == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size), canon[RS_TIME_LEN], out[RS_TIME_LEN];
	time_t t = 12345, t2 = 0;

	if (rs_time_parse(s, &t) != 0) {
		fuzz_check(t == 12345, "a refused time changed *out");
		free(s);
		return 0;
	}
	fuzz_check(shape_ok(s), "accepted a time of another shape");
	/* canonical: upper-case T, Z for +00:00 */
	memcpy(canon, s, 19);
	canon[10] = 'T';
	memcpy(canon + 19, "Z", 2);

	rs_time_format(t, out);
	fuzz_check(rs_time_parse(out, &t2) == 0 && t2 == t, "a formatted time does not parse back");
	if (memcmp(s + 17, "60", 2) == 0) /* a leap second becomes :00 of the next minute */
		fuzz_check(out[17] == '0' && out[18] == '0', "a leap second formats otherwise");
	else
		fuzz_check(strcmp(out, canon) == 0, "a time does not format to its own text");
	free(s);
	return 0;
}
