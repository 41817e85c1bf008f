/* libFuzzer target: the configuration parser (common/conf.c), from memory
 * and from a file on tmpfs (a memfd, loaded by its /proc path; both must
 * agree). A refusal names "file:line: " with a line the text has, everything
 * before that line parses and the text through it fails the same way. What
 * parses is read again line by line by rules of the target's own; its values
 * lie within the table's bounds and, written back as a configuration file,
 * parse to the same values.
 * fuzz-sources: common/conf.c common/util.c common/base64.c
 * fuzz-max-len: 2048
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <limits.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rsign/conf.h"
#include "fuzz.h"

struct cfg {
	char *name;
	char *path;
	long long port;
	long long skew;
	int debug;
	int mode;
};

static const char *const modes[] = {"off", "dev", "prod", NULL};

static const rs_conf_item tab[] = {
	{"name", RS_CONF_STR, offsetof(struct cfg, name), "rsign", 0, 16, NULL},
	{"path", RS_CONF_STR, offsetof(struct cfg, path), NULL, 0, 0, NULL},
	{"port", RS_CONF_INT, offsetof(struct cfg, port), "8443", 1, 65535, NULL},
	{"skew", RS_CONF_INT, offsetof(struct cfg, skew), "0", LLONG_MIN, LLONG_MAX, NULL},
	{"debug", RS_CONF_BOOL, offsetof(struct cfg, debug), "false", 0, 0, NULL},
	{"mode", RS_CONF_ENUM, offsetof(struct cfg, mode), "prod", 0, 0, modes},
	{NULL, 0, 0, NULL, 0, 0, NULL},
};

static int memfd = -1;
static char path[64]; /* /proc/self/fd/N: the file's name in every error */

/* Parses len bytes of text on fresh defaults into c. */
static int parse(const char *text, size_t len, struct cfg *c, char *err)
{
	memset(c, 0, sizeof(*c));
	fuzz_check(rs_conf_defaults(tab, c, err, RS_CONF_ERRLEN) == 0, "the defaults apply");
	err[0] = '\0';
	return rs_conf_parse(path, text, len, tab, c, err, RS_CONF_ERRLEN);
}

/* The same through the file: the memfd now holds text. */
static int load(const uint8_t *text, size_t len, struct cfg *c, char *err)
{
	fuzz_check(ftruncate(memfd, 0) == 0 && pwrite(memfd, text, len, 0) == (ssize_t)len,
		   "writing the tmpfs file");
	memset(c, 0, sizeof(*c));
	fuzz_check(rs_conf_defaults(tab, c, err, RS_CONF_ERRLEN) == 0, "the defaults apply");
	err[0] = '\0';
	return rs_conf_load(path, 1, tab, c, err, RS_CONF_ERRLEN);
}

static int str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static int cfg_eq(const struct cfg *a, const struct cfg *b)
{
	return str_eq(a->name, b->name) && str_eq(a->path, b->path) && a->port == b->port &&
	       a->skew == b->skew && a->debug == b->debug && a->mode == b->mode;
}

/* A refusal names the first bad line of the text. */
static void check_error(const char *text, size_t len, const char *err)
{
	size_t plen = strlen(path), start = 0, end;
	unsigned long line;
	const char *nl;
	char *after, err2[RS_CONF_ERRLEN];
	struct cfg c;

	fuzz_check(strncmp(err, path, plen) == 0 && err[plen] == ':', "the error names no file");
	line = strtoul(err + plen + 1, &after, 10);
	fuzz_check(after != err + plen + 1 && line >= 1 && after[0] == ':' && after[1] == ' ' &&
			   after[2] != '\0',
		   "the error is not \"file:line: message\"");
	for (unsigned long l = 1; l < line; l++) {
		nl = memchr(text + start, '\n', len - start);
		fuzz_check(nl != NULL, "the error names a line past the end");
		start = (size_t)(nl - text) + 1;
	}
	fuzz_check(start < len, "the error names a line past the end");
	nl = memchr(text + start, '\n', len - start);
	end = nl ? (size_t)(nl - text) : len;

	fuzz_check(parse(text, start, &c, err2) == 0, "the lines before the error do not parse");
	rs_conf_free(tab, &c);
	fuzz_check(parse(text, end, &c, err2) == -1 && strcmp(err2, err) == 0,
		   "the text through the line of the error fails otherwise");
	rs_conf_free(tab, &c);
}

/* A parsed string value, written back: quoted unless it holds a quote (a
 * quoted value has none), in which case it came unquoted, so it has no '#'
 * and no surrounding space. Returns the bytes written. */
static size_t put_str(char *out, size_t room, const char *name, const char *v)
{
	int n;

	fuzz_check(!strchr(v, '\n'), "a value holds a newline");
	if (strchr(v, '"')) {
		fuzz_check(v[0] != '"' && !strchr(v, '#') && !strchr(" \t\r\v\f", v[0]) &&
				   !strchr(" \t\r\v\f", v[strlen(v) - 1]),
			   "an unquoted value with a quote has a '#' or surrounding space");
		n = snprintf(out, room, "%s = %s\n", name, v);
	} else {
		n = snprintf(out, room, "%s = \"%s\"\n", name, v);
	}
	fuzz_check(n > 0 && (size_t)n < room, "the rendered file fits");
	return (size_t)n;
}

static void trim(const char **p, const char **e)
{
	while (*p < *e && isspace((unsigned char)**p))
		(*p)++;
	while (*e > *p && isspace((unsigned char)(*e)[-1]))
		(*e)--;
}

/* Each line of an accepted text, read by rules of its own: blank, a
 * comment, or a known name, given once, '=' and a value; a quoted value
 * ends at the next quote with only space or a comment after it, an
 * unquoted one at '#'. A string setting holds its value exactly. */
static void check_lines(const char *text, size_t len, const struct cfg *c)
{
	const char *end = text + len, *l = text, *nl, *k, *ke, *v, *ve, *q;
	int seen[sizeof(tab) / sizeof(tab[0])] = {0}, i;

	for (; l < end; l = nl < end ? nl + 1 : end) {
		nl = memchr(l, '\n', (size_t)(end - l));
		nl = nl ? nl : end;
		k = l;
		ve = nl;
		trim(&k, &ve);
		if (k == ve || *k == '#')
			continue;
		v = memchr(k, '=', (size_t)(ve - k));
		fuzz_check(v != NULL, "accepted a line without '='");
		ke = v++;
		trim(&k, &ke);
		for (i = 0; tab[i].name; i++)
			if (strlen(tab[i].name) == (size_t)(ke - k) &&
			    !memcmp(tab[i].name, k, ke - k))
				break;
		fuzz_check(tab[i].name != NULL, "accepted an unknown name");
		fuzz_check(!seen[i]++, "accepted a name twice");
		trim(&v, &ve);
		if (v < ve && *v == '"') {
			q = memchr(v + 1, '"', (size_t)(ve - v - 1));
			fuzz_check(q != NULL, "accepted an unterminated quote");
			for (k = q + 1; k < ve && isspace((unsigned char)*k); k++)
				;
			fuzz_check(k == ve || *k == '#', "accepted text after a closing quote");
			v++;
			ve = q;
		} else if ((q = memchr(v, '#', (size_t)(ve - v)))) {
			ve = q;
			trim(&v, &ve);
		}
		if (tab[i].type == RS_CONF_STR) {
			const char *got = i == 0 ? c->name : c->path;

			fuzz_check(got && strlen(got) == (size_t)(ve - v) &&
					   !memcmp(got, v, ve - v),
				   "a string setting does not hold its value as written");
		}
	}
}

/* Values in bounds; written back as a file they parse to the same. */
static void check_values(const struct cfg *c, size_t len)
{
	size_t room = len + 256, o = 0;
	char *text = (char *)fuzz_alloc(room), err[RS_CONF_ERRLEN];
	struct cfg again;
	int n;

	fuzz_check(c->name && strlen(c->name) <= 16, "name is unset or longer than its bound");
	fuzz_check(c->port >= 1 && c->port <= 65535, "port is out of its bounds");
	fuzz_check(c->debug == 0 || c->debug == 1, "debug is not a boolean");
	fuzz_check(c->mode >= 0 && c->mode <= 2, "mode is not an index of its values");

	o += put_str(text + o, room - o, "name", c->name);
	if (c->path)
		o += put_str(text + o, room - o, "path", c->path);
	n = snprintf(text + o, room - o, "port = %lld\nskew = %lld\ndebug = %s\nmode = %s\n",
		     c->port, c->skew, c->debug ? "on" : "off", modes[c->mode]);
	fuzz_check(n > 0 && (size_t)n < room - o, "the rendered file fits");
	o += (size_t)n;
	fuzz_check(parse(text, o, &again, err) == 0, "the values written back do not parse");
	fuzz_check(cfg_eq(c, &again), "the values written back parse otherwise");
	rs_conf_free(tab, &again);
	free(text);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct cfg c;
	char err[RS_CONF_ERRLEN];

	(void)argc;
	(void)argv;
	memfd = memfd_create("fuzz.conf", MFD_CLOEXEC);
	fuzz_check(memfd >= 0, "memfd_create");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	/* strict_perms refuses a file others may write; 0600 passes below */
	fuzz_check(fchmod(memfd, 0620) == 0, "fchmod");
	fuzz_check(load((const uint8_t *)"", 0, &c, err) == -1 && strstr(err, "writable"),
		   "a group-writable file was read");
	rs_conf_free(tab, &c);
	fuzz_check(fchmod(memfd, 0600) == 0, "fchmod");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	char err[RS_CONF_ERRLEN], err2[RS_CONF_ERRLEN];
	struct cfg c, c2;
	int rc = parse(text, size, &c, err), rc2 = load(data, size, &c2, err2);

	fuzz_check(rc == 0 || rc == -1, "rs_conf_parse returned neither 0 nor -1");
	fuzz_check(rc2 == rc && strcmp(err, err2) == 0 && cfg_eq(&c, &c2),
		   "the file and the same text in memory parse differently");
	if (rc == 0) {
		fuzz_check(err[0] == '\0', "success left an error");
		check_lines(text, size, &c);
		check_values(&c, size);
	} else {
		check_error(text, size, err);
	}
	rs_conf_free(tab, &c);
	rs_conf_free(tab, &c2);
	return 0;
}
