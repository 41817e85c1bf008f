/* libFuzzer target: the name parsers of common/: signing and key algorithm
 * names (alg.c), log levels (log.c) and slugs (util.c). Each takes exactly
 * the spellings its table prints (algorithms also "SHA_256" for "SHA256",
 * log levels in any case), and what it takes has consistent properties; a
 * slug is exactly ^[a-z0-9][a-z0-9-]{0,63}$.
 * fuzz-sources: common/alg.c common/der.c common/log.c common/json.c common/util.c common/base64.c
 * fuzz-max-len: 80
 */
#include <strings.h>

#include "rsign/alg.h"
#include "rsign/log.h"
#include "rsign/util.h"
#include "fuzz.h"

/* s is name with '_' before its last three characters (the digits). */
static int is_alias(const char *s, const char *name)
{
	size_t n = strlen(name);

	return strlen(s) == n + 1 && strncmp(s, name, n - 3) == 0 && s[n - 3] == '_' &&
	       strcmp(s + n - 2, name + n - 3) == 0;
}

static int starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void check_sign_alg(const char *s)
{
	rs_sign_alg a = RS_ALG_COUNT;
	const char *name;
	int i, listed = 0;

	for (i = 0; i < RS_ALG_COUNT; i++) {
		name = rs_sign_alg_name((rs_sign_alg)i);
		fuzz_check(name != NULL, "an algorithm has no name");
		listed |= strcmp(s, name) == 0 || is_alias(s, name);
	}
	fuzz_check((rs_sign_alg_parse(s, &a) == 0) == listed,
		   "rs_sign_alg_parse takes exactly the names and their aliases");
	if (!listed)
		return;
	name = rs_sign_alg_name(a);
	fuzz_check(strcmp(s, name) == 0 || is_alias(s, name), "parsed to another algorithm");
	fuzz_check(strstr(name, rs_hash_name(rs_sign_alg_hash(a))) != NULL,
		   "the algorithm's hash is not the one it names");
	fuzz_check(rs_sign_alg_is_ecdsa(a) == starts(name, "ECDSA_") &&
			   rs_sign_alg_is_pss(a) == starts(name, "RSASSA_PSS_") &&
			   rs_sign_alg_is_rsa(a) == starts(name, "RSASSA_"),
		   "the algorithm's family is not the one it names");
}

static void check_key_alg(const char *s)
{
	rs_key_alg k = RS_KEY_COUNT;
	int i, listed = 0, bits;
	size_t bytes;

	for (i = 0; i < RS_KEY_COUNT; i++)
		listed |= strcmp(s, rs_key_alg_name((rs_key_alg)i)) == 0;
	fuzz_check((rs_key_alg_parse(s, &k) == 0) == listed,
		   "rs_key_alg_parse takes exactly the names");
	if (!listed)
		return;
	fuzz_check(strcmp(rs_key_alg_name(k), s) == 0, "parsed to another key type");
	bits = rs_key_alg_bits(k);
	bytes = ((size_t)bits + 7) / 8;
	fuzz_check(rs_key_alg_is_rsa(k) == starts(s, "RSA_"), "the key family is not its name's");
	fuzz_check(rs_key_alg_sig_len(k) == (rs_key_alg_is_rsa(k) ? bytes : 2 * bytes),
		   "signature length");
	for (i = 0; i < RS_ALG_COUNT; i++)
		fuzz_check(rs_alg_fits_key((rs_sign_alg)i, k) ==
				   (rs_sign_alg_is_rsa((rs_sign_alg)i) == rs_key_alg_is_rsa(k)),
			   "an algorithm fits a key of the other family");
}

static void check_log_level(const char *s)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	int want = -1;

	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, names[i]) == 0)
			want = i;
	fuzz_check(rs_log_level_parse(s) == want, "rs_log_level_parse");
}

static void check_slug(const char *s)
{
	size_t n = strlen(s), i;
	int want = n >= 1 && n <= 64 && s[0] != '-';

	for (i = 0; i < n && want; i++)
		want = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-';
	fuzz_check(rs_is_slug(s) == want, "rs_is_slug takes exactly ^[a-z0-9][a-z0-9-]{0,63}$");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);

	check_sign_alg(s);
	check_key_alg(s);
	check_log_level(s);
	check_slug(s);
	free(s);
	return 0;
}
